"""LayerNorm over channels, in integers: see intmath.layernorm (integer sqrt and reciprocal)."""
from __future__ import annotations

import numpy as np

from .. import intmath
from .base import Op, hls_prefix_split, hls_rows_at, prefix_split_c, row_offset


class LayerNorm(Op):
    name = "layernorm"
    rowwise_inputs = (0,)
    inplace = True
    writes_prefix_scaled = True        # a pre-norm on the residual stream

    def reads_prefix_scaled(self, node, prefix_rows):
        return True

    def fold_add(self, node, m):         # a written-out LayerNorm's beta
        if not (m == m[:1]).all():
            return False
        node.attrs["beta"] = node.attrs["beta"] + m[0]
        return True

    def fold_mul(self, node, m):         # ... and gamma
        if not (m == m[:1]).all():
            return False
        node.attrs["gamma"], node.attrs["beta"] = node.attrs["gamma"] * m[0], node.attrs["beta"] * m[0]
        return True

    def min_output_scale(self, node, g):
        # Q16 gamma must fit int32 (intmath.layernorm_params)
        return float(np.abs(node.attrs["gamma"]).max(initial=0.0)) * 2.0 ** -15 * 1.001

    def run_float(self, node, xs):
        x = xs[0]
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + node.attrs["eps"]) * node.attrs["gamma"] + node.attrs["beta"]

    def quantize(self, node, g, stats):
        x, y = g.tensors[node.inputs[0]], g.tensors[node.outputs[0]]
        gq, bq = intmath.layernorm_params(node.attrs["gamma"], node.attrs["beta"], y.scale)
        node.qattrs = {"g": gq, "b": bq, "eps": intmath.layernorm_eps(node.attrs["eps"], x.scale, x.channels)}
        k = max(x.prefix_rows, y.prefix_rows)
        if k:   # prefix-token rows at scales of their own: eps is in input units, gamma / beta in output units
            node.qattrs["prefix_rows"] = k
            node.qattrs["eps_prefix"] = intmath.layernorm_eps(node.attrs["eps"], x.row_scales()[0], x.channels)
            if y.prefix_rows:
                node.qattrs["g_prefix"], node.qattrs["b_prefix"] = intmath.layernorm_params(
                    node.attrs["gamma"], node.attrs["beta"], y.row_scales()[0])

    def run_int8(self, node, xs):
        q = node.qattrs
        y = intmath.layernorm(xs[0], q["g"], q["b"], q["eps"])
        if "prefix_rows" in q:
            k = q["prefix_rows"]
            y[..., :k, :] = intmath.layernorm(xs[0][..., :k, :], q.get("g_prefix", q["g"]), q.get("b_prefix", q["b"]),
                                              q["eps_prefix"])
        return y

    hls_template = True

    def hls_ops(self, node, g, chained):
        return g.tensors[node.outputs[0]].channels

    def hls_spec(self, node, g, chained):
        t = g.tensors[node.outputs[0]]
        return "layernorm", {"rows": t.rows, "c": t.channels}

    def emit_hls(self, node, e, ins, out, rows, chained):
        q, r = node.qattrs, e.reuse[node.name]
        ch = e.g.tensors[node.outputs[0]].channels
        roms = {k: e.c.add(node, k, q[k], np.int32 if k.startswith("g") else np.int64)
                for k in ("g", "b", "g_prefix", "b_prefix") if k in q}

        def call(prefix, nrows, skip):
            gk, bk = ("g_prefix", "b_prefix") if prefix and "g_prefix" in q else ("g", "b")
            eps = q["eps_prefix"] if prefix else q["eps"]
            return (f"ev_layernorm<{nrows}, {ch}, {r}>({hls_rows_at(ins[0], skip, ch)}, {hls_rows_at(out, skip, ch)}, "
                    f"{roms[gk]}, {roms[bk]}, {int(eps)}LL);")
        return hls_prefix_split(q.get("prefix_rows", 0), rows, chained, call)

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        ch = q["g"].shape[0]
        keys = [k for k in ("g", "b", "g_prefix", "b_prefix") if k in q]
        pre = prescaled(q)
        if pre is None:
            fn, consts = "ev_layernorm_s8", {k: c.const(f"{node.name}.{k}", q[k]) for k in keys}
        else:   # the same integers, the rounding folded into the constants (ev_kernels.h)
            fn = "ev_layernorm_pre_s8"
            consts = {k: c.const(f"{node.name}.{k}16", pre[k]) for k in keys}

        def call(prefix, r, skip):
            eps = q["eps_prefix"] if prefix else q["eps"]
            gv = consts["g_prefix" if prefix and "g_prefix" in q else "g"]
            bv = consts["b_prefix" if prefix and "b_prefix" in q else "b"]
            return (f"{fn}({row_offset(ins[0], skip, ch)}, {ch}, {r}, {ch}, {gv}, {bv}, {eps}LL, "
                    f"{row_offset(out, skip, ch)}, {ch});")
        return prefix_split_c(q["prefix_rows"], rows, row0, call) if "prefix_rows" in q else [call(False, rows, "0")]


def prescaled(q: dict) -> dict | None:
    """ev_layernorm_pre_s8's constants for qattrs q: g' = 16 g (int32) and b' = 16 b + 2^31
    (int64), with which intmath.layernorm's floor((n g + b + 2^27) / 2^28) is the high word of
    n g' + b', so the firmware's per-value loop drops the rounding and the 64-bit shift. None where
    a value would not fit (|g| >= 2^27 or |b| >= 2^58: gamma or beta over 2^11 or 2^30 output steps,
    which no trained model here comes near); ev_layernorm_s8 then takes the constants as they are."""
    out = {}
    for k in ("g", "b", "g_prefix", "b_prefix"):
        if k not in q:
            continue
        v = np.asarray(q[k], np.int64)
        if k.startswith("g"):
            if np.abs(v).max(initial=0) >= 1 << 27:
                return None
            out[k] = (v * 16).astype(np.int32)
        else:
            if np.abs(v).max(initial=0) >= 1 << 58:
                return None
            out[k] = v * 16 + (1 << 31)
    return out


OP = LayerNorm()
