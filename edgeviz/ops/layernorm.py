"""LayerNorm over channels, in integers: see intmath.layernorm (integer sqrt and reciprocal)."""
from __future__ import annotations

import numpy as np

from .. import intmath
from .base import Op


class LayerNorm(Op):
    name = "layernorm"
    rowwise_inputs = (0,)

    def run_float(self, node, xs):
        x = xs[0]
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + node.attrs["eps"]) * node.attrs["gamma"] + node.attrs["beta"]

    def quantize(self, node, g, stats):
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        gq, bq = intmath.layernorm_params(node.attrs["gamma"], node.attrs["beta"], s_y)
        c = g.tensors[node.inputs[0]].channels
        node.qattrs = {"g": gq, "b": bq, "eps": intmath.layernorm_eps(node.attrs["eps"], s_x, c)}

    def run_int8(self, node, xs):
        q = node.qattrs
        return intmath.layernorm(xs[0], q["g"], q["b"], q["eps"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        ch = q["g"].shape[0]
        return [f"ev_layernorm_s8({ins[0]}, {ch}, {rows}, {ch}, {c.const(node.name + '.g', q['g'])}, "
                f"{c.const(node.name + '.b', q['b'])}, {q['eps']}LL, {out}, {ch});"]


OP = LayerNorm()
