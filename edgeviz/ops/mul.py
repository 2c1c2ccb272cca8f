"""Element-wise product of two int8 tensors: the gate of a gated MLP (SwiGLU: act(x W_g) * (x W_x)).

One requantisation multiplier for the whole tensor: y = requant(a * b, s_a s_b / s_y)."""
from __future__ import annotations

from .. import intmath
from .base import Elementwise, requant_params


class Mul(Elementwise):
    name = "mul"
    rowwise_inputs = (0, 1)
    inplace = True               # element i is read before it is written

    def run_float(self, node, xs):
        return xs[0] * xs[1]

    def quantize(self, node, g, stats):
        sa, sb, sy = (g.tensors[t].scale for t in (*node.inputs, node.outputs[0]))
        m, s = requant_params(sa * sb / sy)
        node.qattrs = {"m": int(m[0]), "s": int(s[0])}

    def run_int8(self, node, xs):
        return intmath.mul(xs[0], xs[1], node.qattrs["m"], node.qattrs["s"])

    hls_kind = "mul"

    def emit_hls(self, node, e, ins, out, rows, chained):
        n = rows * e.g.tensors[node.outputs[0]].channels
        q = node.qattrs
        return [f"ev_mul<{n}, {e.reuse[node.name]}>({ins[0]}, {ins[1]}, {out}, {q['m']}, {q['s']});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n, q = g.tensors[node.outputs[0]].channels, node.qattrs
        return [f"ev_mul_s8({ins[0]}, {ins[1]}, {n} * ({rows}), {q['m']}, {q['s']}, {out});"]


OP = Mul()
