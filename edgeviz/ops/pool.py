"""Token pooling before the classifier: cls-token selection or the mean over tokens."""
from __future__ import annotations

from .. import intmath
from .base import Op, requant_params


class SelectToken(Op):
    name = "select_token"
    keeps_scale = True

    def simplify(self, node, g):
        """select_token(layernorm(x)) == layernorm(select_token(x)) row for row: normalise one token only."""
        ln = g.producer(node.inputs[0])
        if ln is None or ln.op != "layernorm" or len(g.consumers(ln.outputs[0])) != 1:
            return
        x, ln_out, sel_out = ln.inputs[0], ln.outputs[0], node.outputs[0]
        for c in g.consumers(sel_out):
            c.inputs = [ln_out if i == sel_out else i for i in c.inputs]
        if sel_out in g.outputs:
            g.outputs = [ln_out if o == sel_out else o for o in g.outputs]
        node.inputs, ln.inputs = [x], [sel_out]
        g.tensors[ln_out].shape = g.tensors[sel_out].shape
        i, j = g.nodes.index(ln), g.nodes.index(node)
        g.nodes[i], g.nodes[j] = g.nodes[j], g.nodes[i]

    def reads_prefix_scaled(self, node, prefix_rows):
        return True

    def run_float(self, node, xs):
        i = node.attrs["index"]
        return xs[0][..., i:i + 1, :]

    run_int8 = run_float

    hls_template = True

    def hls_spec(self, node, g, chained):
        return "copy", {"c": g.tensors[node.outputs[0]].channels}

    def emit_hls(self, node, e, ins, out, rows, chained):
        ch = e.g.tensors[node.outputs[0]].channels
        return [f"ev_copy_row<{ch}>({ins[0]} + {node.attrs['index'] * ch}, {out});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        ch = g.tensors[node.inputs[0]].channels
        return [f"memmove({out}, {ins[0]} + {node.attrs['index'] * ch}, {ch});"]


class MeanTokens(Op):
    """Mean over the token rows from `first` on (timm's avg pooling leaves out its prefix tokens)."""
    name = "mean_tokens"

    def reads_prefix_scaled(self, node, prefix_rows):
        return node.attrs.get("first", 0) >= prefix_rows     # the prefix rows left out of the pool

    def _pooled(self, node, g):
        x = g.tensors[node.inputs[0]]
        first = node.attrs.get("first", 0)
        return first, x.rows - first, x.channels

    def run_float(self, node, xs):
        return xs[0][..., node.attrs.get("first", 0):, :].mean(axis=-2, keepdims=True)

    def quantize(self, node, g, stats):
        _, rows, _ = self._pooled(node, g)
        m, s = requant_params(g.tensors[node.inputs[0]].scale / (rows * g.tensors[node.outputs[0]].scale))
        node.qattrs = {"m": int(m[0]), "s": int(s[0])}

    def run_int8(self, node, xs):
        return intmath.mean_tokens(xs[0][node.attrs.get("first", 0):], node.qattrs["m"], node.qattrs["s"])

    def macs(self, node, g):
        _, rows, ch = self._pooled(node, g)
        return rows * ch

    hls_template = True

    def hls_ops(self, node, g, chained):
        return g.tensors[node.outputs[0]].channels

    def hls_spec(self, node, g, chained):
        _, rows, ch = self._pooled(node, g)
        return "mean", {"tokens": rows, "c": ch}

    def emit_hls(self, node, e, ins, out, rows, chained):
        first, n, ch = self._pooled(node, e.g)       # prefix tokens left out of the pool
        q = node.qattrs
        return [f"ev_mean_tokens<{n}, {ch}, {e.reuse[node.name]}>({ins[0]} + {first * ch}, {out}, {q['m']}, {q['s']});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        first, n, ch = self._pooled(node, g)
        q = node.qattrs
        return [f"ev_mean_tokens_s8({ins[0]} + {first * ch}, {n}, {ch}, {q['m']}, {q['s']}, {out});"]


SELECT = SelectToken()
MEAN = MeanTokens()
