"""Residual add of two int8 tensors at different scales, integer multipliers only."""
from __future__ import annotations

from .. import intmath
from .base import Op


class Add(Op):
    name = "add"
    rowwise_inputs = (0, 1)

    def run_float(self, node, xs):
        return xs[0] + xs[1]

    def quantize(self, node, g, stats):
        sa, sb = (g.tensors[t].scale for t in node.inputs)
        ma, mb, sh = intmath.add_params(sa, sb, g.tensors[node.outputs[0]].scale)
        node.qattrs = {"ma": ma, "mb": mb, "shift": sh}

    def run_int8(self, node, xs):
        q = node.qattrs
        return intmath.add(xs[0], xs[1], q["ma"], q["mb"], q["shift"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        n = g.tensors[node.outputs[0]].channels
        return [f"ev_add_s8({ins[0]}, {ins[1]}, {n} * {rows}, {q['ma']}, {q['mb']}, {q['shift']}, {out});"]


OP = Add()
