"""Token pooling before the classifier: cls-token selection or the mean over tokens."""
from __future__ import annotations

from .. import intmath
from .base import Op, requant_params


class SelectToken(Op):
    name = "select_token"
    keeps_scale = True

    def run_float(self, node, xs):
        i = node.attrs["index"]
        return xs[0][..., i:i + 1, :]

    run_int8 = run_float

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        ch = g.tensors[node.inputs[0]].channels
        return [f"memmove({out}, {ins[0]} + {node.attrs['index'] * ch}, {ch});"]


class MeanTokens(Op):
    name = "mean_tokens"

    def run_float(self, node, xs):
        return xs[0].mean(axis=-2, keepdims=True)

    def quantize(self, node, g, stats):
        x = g.tensors[node.inputs[0]]
        m, s = requant_params(x.scale / (x.rows * g.tensors[node.outputs[0]].scale))
        node.qattrs = {"m": int(m[0]), "s": int(s[0])}

    def run_int8(self, node, xs):
        return intmath.mean_tokens(xs[0], node.qattrs["m"], node.qattrs["s"])

    def macs(self, node, g):
        return g.tensors[node.inputs[0]].nbytes

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        x = g.tensors[node.inputs[0]]
        q = node.qattrs
        return [f"ev_mean_tokens_s8({ins[0]}, {x.rows}, {x.channels}, {q['m']}, {q['s']}, {out});"]


SELECT = SelectToken()
MEAN = MeanTokens()
