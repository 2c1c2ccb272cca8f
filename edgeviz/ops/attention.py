"""Multi-head attention core: softmax(q k^T * scale) v per head, from the fused qkv tensor.

Operator integration computes it a few query rows at a time (up to QUERY_BLOCK, the chain's row
block) with a QUERY_BLOCK x N score block, so the H x N x N score matrix never exists. Without integration the schedule splits it into attn_scores -> softmax ->
attn_av over materialised [H, N, N] tensors. Both give the same bits as intmath.attention.
"""
from __future__ import annotations

import numpy as np

from .. import intmath
from .base import Op, requant_params

# Query rows per pass over K and V (ev_attn_scores_rows / ev_attn_av_rows reuse each widened K/V
# word for four rows); the score scratch is QUERY_BLOCK x N bytes. Equal to passes.CHAIN_BLOCK.
QUERY_BLOCK = 4


def _score_scratch(rows: int, n: int) -> int:
    return min(QUERY_BLOCK, rows) * n


def _split(qkv, heads):
    """[..., N, 3E] -> q, k, v each [..., H, N, dh]."""
    *lead, n, three_e = qkv.shape
    t = qkv.reshape(*lead, n, 3, heads, three_e // 3 // heads)
    t = np.moveaxis(t, (-4, -3, -2), (-2, -4, -3))      # [..., 3, H, N, dh]
    return t[..., 0, :, :, :], t[..., 1, :, :, :], t[..., 2, :, :, :]


class Attention(Op):
    name = "attention"

    def _scores(self, node, qkv):
        q, k, _ = _split(qkv, node.attrs["heads"])
        return q @ np.swapaxes(k, -1, -2) * node.attrs["scale"]

    def run_float(self, node, xs):
        _, _, v = _split(xs[0], node.attrs["heads"])
        s = self._scores(node, xs[0])
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        o = np.swapaxes(p @ v, -3, -2)                  # [..., N, H, dh]
        return o.reshape(*o.shape[:-2], -1)

    def calibrate(self, node, xs, stats):
        key = node.name + ".scores"
        stats[key] = max(stats.get(key, 0.0), float(np.abs(self._scores(node, xs[0])).max()))

    def quantize(self, node, g, stats):
        s_qkv = g.tensors[node.inputs[0]].scale
        s_out = g.tensors[node.outputs[0]].scale
        s_scores = max(stats[node.name + ".scores"], 1e-6) / 127.0
        m_qk, s_qk = requant_params(s_qkv * s_qkv * node.attrs["scale"] / s_scores)
        m_av, s_av = requant_params(s_qkv / intmath.SOFTMAX_OUT_MAX / s_out)
        node.qattrs = {"m_qk": int(m_qk[0]), "s_qk": int(s_qk[0]), "exp_lut": intmath.softmax_lut(s_scores),
                       "m_av": int(m_av[0]), "s_av": int(s_av[0])}

    def run_int8(self, node, xs):
        q = node.qattrs
        return intmath.attention(xs[0], node.attrs["heads"], q["m_qk"], q["s_qk"], q["exp_lut"],
                                 q["m_av"], q["s_av"])

    def macs(self, node, g):
        n, three_e = g.tensors[node.inputs[0]].shape
        return 2 * n * n * (three_e // 3)

    def scratch_bytes(self, node, g):
        n = g.tensors[node.inputs[0]].shape[0]
        return _score_scratch(n, n)                    # a block of score rows

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        """Fused form: rows query rows starting at row0, their block of score rows in scratch."""
        n, three_e = g.tensors[node.inputs[0]].shape
        e = three_e // 3
        return _emit_rows(node, c, n, e, f"{ins[0]} + ({row0} + r) * {three_e}", three_e,
                          f"{ins[0]} + {e}", f"{ins[0]} + {2 * e}", three_e, out, rows, scratch)


def _emit_rows(node, c, n, e, q_row, q_stride, k, v, kv_stride, out, rows, scratch) -> list[str]:
    """Per block of up to QUERY_BLOCK query rows and per head: the block's scores against every
    key ([nr][n] in scratch), softmax of each score row in place, then p.v for the block."""
    h = node.attrs["heads"]
    dh = e // h
    q = node.qattrs
    lut = c.const(node.name + ".exp_lut", q["exp_lut"])
    b = QUERY_BLOCK
    return [f"for (int r = 0; r < {rows}; r += {b}) {{",
            f"  const int nr = {rows} - r < {b} ? {rows} - r : {b};",
            f"  const int8_t *qrow = {q_row};",
            f"  for (int hd = 0; hd < {h}; hd++) {{",
            f"    ev_attn_scores_rows(qrow + hd * {dh}, {q_stride}, nr, {k} + hd * {dh}, {kv_stride}, "
            f"{n}, {dh}, {q['m_qk']}, {q['s_qk']}, {scratch}, {n});",
            f"    for (int i = 0; i < nr; i++) ev_softmax_s8({scratch} + i * {n}, {n}, {lut}, "
            f"{scratch} + i * {n});",
            f"    ev_attn_av_rows({scratch}, {n}, nr, {v} + hd * {dh}, {kv_stride}, {n}, {dh}, "
            f"{q['m_av']}, {q['s_av']}, {out} + r * {e} + hd * {dh}, {e});",
            "  }", "}"]


class AttentionSplit(Op):
    """Fused form after the qkv split (passes._split_qkv): query rows arrive one block at a time,
    K and V for all tokens sit in kv [N, 2E] laid out per token as [2, H, dh]."""
    name = "attention_split"
    rowwise_inputs = (0,)

    def scratch_bytes(self, node, g):
        return _score_scratch(g.tensors[node.inputs[0]].rows, g.tensors[node.inputs[1]].rows)

    def macs(self, node, g):
        n, two_e = g.tensors[node.inputs[1]].shape
        return 2 * n * n * (two_e // 2)

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n, two_e = g.tensors[node.inputs[1]].shape
        e = two_e // 2
        return _emit_rows(node, c, n, e, f"{ins[0]} + r * {e}", e, ins[1], f"{ins[1]} + {e}", two_e, out, rows,
                          scratch)


class AttnScores(Op):
    """Unfused step 1: scores[h, i, :] for every head and query row."""
    name = "attn_scores"

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        a = node.attrs
        n, e, h = a["tokens"], a["embed"], a["heads"]
        dh = e // h
        b = QUERY_BLOCK
        return [f"for (int hd = 0; hd < {h}; hd++) for (int i = 0; i < {n}; i += {b})",
                f"  ev_attn_scores_rows({ins[0]} + i * {3 * e} + hd * {dh}, {3 * e}, {n} - i < {b} ? {n} - i : {b}, "
                f"{ins[0]} + {e} + hd * {dh}, {3 * e}, {n}, {dh}, {a['m_qk']}, {a['s_qk']}, "
                f"{out} + (hd * {n} + i) * {n}, {n});"]


class Softmax(Op):
    """Unfused step 2: row softmax over the materialised scores."""
    name = "softmax"
    rowwise_inputs = (0,)

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n = g.tensors[node.inputs[0]].channels
        lut = c.const(node.attrs["lut_name"], node.attrs["exp_lut"])
        return [f"for (int i = 0; i < {rows}; i++) ev_softmax_s8({ins[0]} + i * {n}, {n}, {lut}, {out} + i * {n});"]


class AttnAV(Op):
    """Unfused step 3: out[i, h*dh:(h+1)*dh] = probs[h, i, :] v_h."""
    name = "attn_av"

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        a = node.attrs
        n, e, h = a["tokens"], a["embed"], a["heads"]
        dh = e // h
        b = QUERY_BLOCK
        return [f"for (int hd = 0; hd < {h}; hd++) for (int i = 0; i < {n}; i += {b})",
                f"  ev_attn_av_rows({ins[0]} + (hd * {n} + i) * {n}, {n}, {n} - i < {b} ? {n} - i : {b}, "
                f"{ins[1]} + {2 * e} + hd * {dh}, {3 * e}, {n}, {dh}, {a['m_av']}, {a['s_av']}, "
                f"{out} + i * {e} + hd * {dh}, {e});"]


OP = Attention()
SPLIT = AttentionSplit()
SCORES, SOFTMAX, AV = AttnScores(), Softmax(), AttnAV()
