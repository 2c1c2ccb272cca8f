"""Multi-head attention core: softmax(q k^T * scale) v per head, from the fused qkv tensor.

Operator integration computes it a few query rows at a time (up to QUERY_BLOCK, the chain's row
block) with a QUERY_BLOCK x N score block, so the H x N x N score matrix never exists. Without integration the schedule splits it into attn_scores -> softmax ->
attn_av over materialised [H, N, N] tensors. Both give the same bits as intmath.attention.
"""
from __future__ import annotations

import math

import numpy as np

from .. import intmath
from ..ir import Node
from .base import OPS, Op

# Query rows per pass over K and V (ev_attn_scores_rows / ev_attn_av_rows reuse each widened K/V
# word for four rows); the score scratch is QUERY_BLOCK x N bytes. passes.CHAIN_BLOCK is this block.
QUERY_BLOCK = 4


def _score_scratch(rows: int, n: int) -> int:
    return min(QUERY_BLOCK, rows) * n


def _split(qkv, heads):
    """[..., N, 3E] -> q, k, v each [..., H, N, dh]."""
    *lead, n, three_e = qkv.shape
    t = qkv.reshape(*lead, n, 3, heads, three_e // 3 // heads)
    t = np.moveaxis(t, (-4, -3, -2), (-2, -4, -3))      # [..., 3, H, N, dh]
    return t[..., 0, :, :, :], t[..., 1, :, :, :], t[..., 2, :, :, :]


# V^T pays for its scattered writes once there are enough keys to stream: measured on the emulator
# (whole models, -icount), 5 tokens +0.4..+0.7% instructions with V^T, 10 tokens -0.2%, 17-65 tokens
# -0.7..-2.1%.
V_T_MIN_TOKENS = 8


class _StreamsKV(Op):
    """What the ops that read K and V over all tokens for each query row share: V^T, the HLS side."""
    reads_kv = True
    hls_template = True
    kv_parts = 3                 # the K/V tensor they read is [q | k | v] (the split's kv: [k | v])
    products = (True, True)      # (q.k, p.v) the op runs: the fused forms both, the unfused steps one each

    def work(self, node, g):
        """The fused forms: every head's softmax scores, and the MACs the DSP kernels run one query row
        at a time (row_macs)."""
        n, dh = self.dims(node, g)
        return dict(super().work(node, g), scores=_scores(node, g),
                    row_macs=row_by_row_macs(g.tensors[node.outputs[0]].rows, n, dh, node.attrs["heads"],
                                             "v_t" in node.attrs))

    def transpose_v(self, node, g):
        """The linear that writes the K/V tensor (qkv, or the split's kv: V is its last E columns) puts V
        transposed after the other rows: [N, C - E] rows, then V^T [E, N]. p.v then reads each head
        dim's values over all keys as one contiguous row, the same streaming kernel as q.k (ev__rk4).
        Same bytes, same bits; a layout of the C backend (the HLS templates keep their own row layout
        and ignore the mark)."""
        t = node.inputs[-1]
        lin = g.producer(t)
        if (lin is None or lin.op != "linear" or "lut" in lin.qattrs or "v_t" in lin.attrs
                or g.tensors[t].shape[0] < V_T_MIN_TOKENS
                or any(not OPS[c.op].reads_kv for c in g.consumers(t))):
            return
        e = g.tensors[t].channels // self.kv_parts
        lin.attrs = {**lin.attrs, "v_t": e}       # a new dict: the split's q linear shares the old one
        for reader in g.consumers(t):
            reader.attrs = {**reader.attrs, "v_t": e}

    def dims(self, node, g) -> tuple[int, int]:
        """(tokens, head dim)."""
        ntok, three_e = g.tensors[node.inputs[0]].shape
        return ntok, three_e // 3 // node.attrs["heads"]

    def hls_ops(self, node, g, chained):
        n, dh = self.dims(node, g)
        return n * dh

    def hls_spec(self, node, g, chained):
        n, dh = self.dims(node, g)
        return "attention", dict(tokens=n, heads=node.attrs["heads"], dh=dh, kv_copy=not chained)

    def hls_reuse(self, node, g, chained, r):
        """The K / V bank is split cyclic by LANES (bank_partitions): LANES is cut to a power of two that
        divides dh, so the LANES bytes of one cycle (one key row, consecutive channels) always sit in
        distinct partitions, or in one word of a reshaped bank."""
        if self.hls_kv_buffer(node, chained) is None:
            return r
        ntok, dh = self.dims(node, g)
        total = ntok * dh
        want = math.ceil(total / r)
        lanes = 1
        while lanes * 2 <= want and dh % (lanes * 2) == 0:
            lanes *= 2
        return total // lanes

    def _hls_args(self, node, e):
        a = {**node.attrs, **node.qattrs}
        lut = e.c.add(node, "exp_lut", a["exp_lut"], np.uint16)
        return f"{a['m_qk']}, {a['s_qk']}, {lut}, {a['m_av']}, {a['s_av']}"


def _slice_linear(q: dict, rows) -> dict:
    """A linear's parameters for some of its output channels (a slice or an index array)."""
    return {k: (v[rows] if k in ("w", "bias", "mult", "shift") else v) for k, v in q.items()}


def _from_layernorm(lin: Node, g) -> list[Node] | None:
    """The nodes from a LayerNorm to the linear lin (a low-rank pair's factors between), each output
    read only by the next; None when lin's input does not come from one that way."""
    path = [lin]
    while path[0].op != "layernorm":
        p = g.producer(path[0].inputs[0])
        if p is None or p.op not in ("linear", "layernorm") or len(g.consumers(p.outputs[0])) != 1:
            return None
        path.insert(0, p)
    return path


def _recompute(path: list[Node], x: str, g, suffix: str, into: list[Node]) -> str:
    """Copies of path's nodes from x, appended to into; their output tensors get names with suffix and
    the copies keep the nodes' names, so their constants are shared, not duplicated in flash. Returns
    the last copy's output (x for an empty path)."""
    for n in path:
        t = g.add_tensor(n.outputs[0] + suffix, g.tensors[n.outputs[0]].shape)
        t.scale = g.tensors[n.outputs[0]].scale
        into.append(Node(n.op, n.name, [x], [t.name], n.attrs, n.qattrs))
        x = t.name
    return x


# The DSP path's multi-row kernels and their limits (EV__RK_MAXQ in firmware/kernels/ev_dsp.h,
# EV__ATT_KQ in ev_attention.c; tests/test_latency.py holds these equal to the C): past them
# ev_attn_scores_rows / ev_attn_av_rows run one query row at a time, at about twice the instructions
# per MAC, so the latency model counts those MACs apart (e.g. p.v over V^T with more than 512 keys).
RK4_MAX_DIMS = 4 * 128         # ev__scores_rk4: 4..512-long dot products (s == 32, what quantize gives)
QUAD_MAX = 4 * 32              # ev__scores_quad: dims, ev__av_quad: keys


def row_by_row_macs(rows: int, keys: int, dh: int, heads: int, v_t: bool, qk: bool = True, av: bool = True) -> int:
    """MACs of q.k (qk) and p.v (av) that the DSP kernels run one query row at a time."""
    qk_multi = 4 <= dh <= RK4_MAX_DIMS or (dh >= 8 and dh % 4 == 0 and dh <= QUAD_MAX)
    # p.v over V^T is q.k's kernel with keys as the dot product's length
    av_multi = 4 <= keys <= RK4_MAX_DIMS if v_t else (dh >= 4 and dh % 4 == 0 and 4 <= keys <= QUAD_MAX)
    return rows * keys * dh * heads * ((qk and not qk_multi) + (av and not av_multi))


def _scores(node, g) -> int:
    """Softmax elements of a fused attention op: every head's query rows x keys."""
    rows = g.tensors[node.outputs[0]].rows
    keys = g.tensors[node.inputs[-1]].rows
    return node.attrs["heads"] * rows * keys


class Attention(_StreamsKV):
    name = "attention"
    row_producer = True          # inside a chain it takes the chain's query rows (QUERY_BLOCK)

    def split_qkv(self, node, g, keep_rank=False):
        """qkv = linear(LN(x)) feeding attention -> kv = linear_kv(LN(x)) for all rows, plus a per-row
        chain LN(x) -> linear_q -> attention row. Same bytes (per-channel requantisation, one output
        scale), 3NE instead of 4NE live at the attention; costs one more LayerNorm (and the low-rank V
        product) per row. keep_rank, for a low-rank qkv: the rows read the V product (tokens x rank)
        that the K/V step made, kept whole, instead of recomputing it."""
        qkv = node.inputs[0]
        lin = g.producer(qkv)
        if lin is None or lin.op != "linear" or len(g.consumers(qkv)) != 1 or "lut" in lin.qattrs:
            return
        path = _from_layernorm(lin, g)
        if path is None:
            return
        rows, e = g.tensors[qkv].rows, g.tensors[qkv].channels // 3
        scale = g.tensors[qkv].scale
        kv = g.add_tensor(node.name + "_kv", (rows, 2 * e))
        q = g.add_tensor(node.name + "_q", (rows, e))
        kv.scale = q.scale = scale
        q_lin = Node("linear", lin.name + ".q", [], [q.name], lin.attrs, _slice_linear(lin.qattrs, slice(0, e)))
        lin.qattrs = _slice_linear(lin.qattrs, slice(e, 3 * e))
        lin.outputs = [kv.name]
        del g.tensors[qkv]
        copies = []
        if keep_rank and len(path) > 2:
            q_lin.inputs = [path[-2].outputs[0]]
        else:
            q_lin.inputs = [_recompute(path[:-1], path[0].inputs[0], g, "_q", copies)]
        split = Node("attention_split", node.name, [q.name, kv.name], list(node.outputs), node.attrs, node.qattrs)
        i = g.nodes.index(node)
        g.nodes[i:i + 1] = copies + [q_lin, split]

    def unfuse(self, node, g):
        """scores (q k^T for every head) -> softmax -> p v, each materialised whole."""
        qkv = node.inputs[0]
        n_tok, three_e = g.tensors[qkv].shape
        h = node.attrs["heads"]
        q = node.qattrs
        common = {"tokens": n_tok, "embed": three_e // 3, "heads": h}
        scores = g.add_tensor(node.name + "_scores", (h * n_tok, n_tok))
        probs = g.add_tensor(node.name + "_probs", (h * n_tok, n_tok))
        i = g.nodes.index(node)
        g.nodes[i:i + 1] = [
            Node("attn_scores", node.name + ".scores", [qkv], [scores.name],
                 dict(common, m_qk=q["m_qk"], s_qk=q["s_qk"])),
            Node("softmax", node.name + ".softmax", [scores.name], [probs.name],
                 {"exp_lut": q["exp_lut"], "lut_name": node.name + ".exp_lut"}),
            Node("attn_av", node.name + ".av", [probs.name, qkv], list(node.outputs),
                 dict(common, m_av=q["m_av"], s_av=q["s_av"])),
        ]

    def hls_kv_buffer(self, node, chained):
        return node.inputs[0] if chained else None     # unchained: ev_attention copies K and V itself

    def emit_hls(self, node, e, ins, out, rows, chained):
        n, dh = self.dims(node, e.g)
        h, r = node.attrs["heads"], e.reuse[node.name]
        if chained:
            return [f"ev_attention_row<{n}, {h}, {dh}, {r}>({ins[0]}, r, {out}, {self._hls_args(node, e)});"]
        return [f"ev_attention<{n}, {h}, {dh}, {r}>({ins[0]}, {out}, {self._hls_args(node, e)});"]

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
        # shift 32 where it fits: the Cortex-M kernels requantise it with one SMMULR
        m_qk, s_qk = intmath.quantize_multiplier_s32(s_qkv * s_qkv * node.attrs["scale"] / s_scores)
        m_av, s_av = intmath.quantize_multiplier_s32(s_qkv / intmath.SOFTMAX_OUT_MAX / s_out)
        node.qattrs = {"m_qk": m_qk, "s_qk": s_qk, "exp_lut": intmath.softmax_lut(s_scores), "m_av": m_av,
                       "s_av": s_av}

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
        qk = 2 * e if node.attrs.get("v_t") else three_e      # row stride of q and k
        return _emit_rows(node, c, n, e, f"{ins[0]} + ({row0} + r) * {qk}", qk, f"{ins[0]} + {e}", qk,
                          _v_source(node, ins[0], n, e, qk), out, rows, scratch)


def _v_source(node, t: str, n: int, e: int, row_stride: int) -> tuple[str, bool]:
    """Where V starts in tensor t and whether it is transposed (Op.transpose_v in ops/attention.py: V^T [E, N]
    after the [N, row_stride] rows) or the last E columns of each row."""
    if node.attrs.get("v_t"):
        return f"{t} + {n * row_stride}", True
    return f"{t} + {row_stride - e}", False


def _av_call(node, p: str, p_stride: int, rows: str, v: tuple[str, bool], v_stride: int, n: int, dh: int,
             out: str, out_stride: int) -> str:
    """p.v for rows probability rows and head hd: over V^T it is q.k's kernel with keys and dims
    swapped (head hd's dims are rows hd*dh.. of V^T, each n keys long)."""
    a = node.qattrs if "m_av" in node.qattrs else node.attrs
    base, transposed = v
    if transposed:
        return (f"ev_attn_scores_rows({p}, {p_stride}, {rows}, {base} + hd * {dh * n}, {n}, {dh}, {n}, "
                f"{a['m_av']}, {a['s_av']}, {out}, {out_stride});")
    return (f"ev_attn_av_rows({p}, {p_stride}, {rows}, {base} + hd * {dh}, {v_stride}, {n}, {dh}, "
            f"{a['m_av']}, {a['s_av']}, {out}, {out_stride});")


def _emit_rows(node, c, n, e, q_row, q_stride, k, k_stride, v, out, rows, scratch, heads=None, out_e=None,
               col0=0) -> list[str]:
    """Per block of up to QUERY_BLOCK query rows and per head: the block's scores against every
    key ([nr][n] in scratch), softmax of each score row in place, then p.v for the block. e: the
    width of q (heads x dh); the output rows are out_e wide (default e), the heads' columns from col0."""
    h = heads or node.attrs["heads"]
    dh = e // h
    oe = out_e or e
    q = node.qattrs
    lut = c.const(node.attrs.get("lut_name", node.name + ".exp_lut"), q["exp_lut"])   # one per attention
    b = QUERY_BLOCK
    return [f"for (int r = 0; r < {rows}; r += {b}) {{",
            f"  const int nr = {rows} - r < {b} ? {rows} - r : {b};",
            f"  const int8_t *qrow = {q_row};",
            f"  for (int hd = 0; hd < {h}; hd++) {{",
            f"    ev_attn_scores_rows(qrow + hd * {dh}, {q_stride}, nr, {k} + hd * {dh}, {k_stride}, "
            f"{n}, {dh}, {q['m_qk']}, {q['s_qk']}, {scratch}, {n});",
            f"    for (int i = 0; i < nr; i++) ev_softmax_s8({scratch} + i * {n}, {n}, {lut}, "
            f"{scratch} + i * {n});",
            "    " + _av_call(node, scratch, n, "nr", v, k_stride, n, dh,
                         f"{out} + r * {oe}{f' + {col0}' if col0 else ''} + hd * {dh}", oe),
            "  }", "}"]


class AttentionSplit(_StreamsKV):
    """Fused form after the qkv split (Attention.split_qkv): query rows arrive one block at a time,
    K and V for all tokens sit in kv [N, 2E] laid out per token as [2, H, dh]."""
    name = "attention_split"
    rowwise_inputs = (0,)
    kv_parts = 2

    def dims(self, node, g):
        ntok, two_e = g.tensors[node.inputs[1]].shape
        return ntok, two_e // 2 // node.attrs["heads"]

    def split_kv_heads(self, node, g):
        """K/V per head: kv = linear_kv(LN(x)) for all heads -> per head h, K_h V_h = linear_kv_h(LN(x)) for
        all rows [N, 2 dh], then a per-row chain LN(x) -> linear_q_h -> attention_head h over every query
        row, writing head h's columns of the output (over the previous heads' output). Same bytes (the
        heads are independent and each linear row keeps its requantisation); live at head h's attention:
        x + out + K_h + V_h = (2 + 2/H) NE instead of x + K + V = 3NE; costs the LayerNorm (and a low-rank
        first factor) recomputed for every head, twice (once for K_h V_h, once in the query chain)."""
        q_t, kv_t = node.inputs
        kv_lin, q_lin = g.producer(kv_t), g.producer(q_t)
        if (kv_lin is None or q_lin is None or kv_lin.op != "linear" or q_lin.op != "linear"
                or len(g.consumers(kv_t)) != 1 or len(g.consumers(q_t)) != 1 or "v_t" in kv_lin.attrs):
            return
        kv_path, q_path = _from_layernorm(kv_lin, g), _from_layernorm(q_lin, g)
        if kv_path is None or q_path is None or kv_path[0].inputs[0] != q_path[0].inputs[0]:
            return
        x, heads = kv_path[0].inputs[0], node.attrs["heads"]
        n_tok, two_e = g.tensors[kv_t].shape
        e = two_e // 2
        dh = e // heads
        out = g.tensors[node.outputs[0]]
        new, prev = [], None
        for h in range(heads):
            cols = np.arange(h * dh, (h + 1) * dh)
            kv_h = g.add_tensor(f"{node.name}_kv{h}", (n_tok, 2 * dh))
            q_h = g.add_tensor(f"{node.name}_q{h}", (n_tok, dh))
            kv_h.scale = q_h.scale = g.tensors[kv_t].scale
            src = _recompute(kv_path[:-1], x, g, f"_kv{h}", new)
            new.append(Node("linear", f"{kv_lin.name}.h{h}", [src], [kv_h.name], kv_lin.attrs,
                            _slice_linear(kv_lin.qattrs, np.concatenate([cols, e + cols]))))
            src = _recompute(q_path[:-1], x, g, f"_q{h}", new)
            new.append(Node("linear", f"{q_lin.name}.h{h}", [src], [q_h.name], q_lin.attrs,
                            _slice_linear(q_lin.qattrs, cols)))
            o = out.name if h == heads - 1 else g.add_tensor(f"{out.name}_h{h}", out.shape).name
            g.tensors[o].scale = out.scale
            new.append(Node("attention_head", f"{node.name}.h{h}", [q_h.name] + ([prev] if prev else []) + [kv_h.name],
                            [o], {**node.attrs, "head": h, "lut_name": node.name + ".exp_lut"}, node.qattrs))
            prev = o
        old = kv_path + q_path + [node]
        i = g.nodes.index(node) - sum(1 for n in old[:-1] if g.nodes.index(n) < g.nodes.index(node))
        g.nodes = [n for n in g.nodes if not any(n is m for m in old)]
        g.nodes[i:i] = new
        for n in old[:-1]:
            del g.tensors[n.outputs[0]]

    def hls_kv_buffer(self, node, chained):
        return node.inputs[1]

    def emit_hls(self, node, e, ins, out, rows, chained):
        # the query row comes from the chain, K and V of every token from the kv buffer
        n, dh = self.dims(node, e.g)
        return [f"ev_attention_kv_row<{n}, {node.attrs['heads']}, {dh}, {e.reuse[node.name]}>({ins[0]}, {ins[1]}, "
                f"{out}, {self._hls_args(node, e)});"]

    def scratch_bytes(self, node, g):
        return _score_scratch(g.tensors[node.inputs[0]].rows, g.tensors[node.inputs[1]].rows)

    def run_int8(self, node, xs):
        # the attention op over [q | kv]: per token [3][H][dh], the fused qkv layout
        return OP.run_int8(node, [np.concatenate(xs, axis=-1)])

    def macs(self, node, g):
        n, two_e = g.tensors[node.inputs[1]].shape
        return 2 * n * n * (two_e // 2)

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n, two_e = g.tensors[node.inputs[1]].shape
        e = two_e // 2
        kv = e if node.attrs.get("v_t") else two_e           # row stride of k
        return _emit_rows(node, c, n, e, f"{ins[0]} + r * {e}", e, ins[1], kv, _v_source(node, ins[1], n, e, kv),
                          out, rows, scratch)


class AttentionHead(AttentionSplit):
    """One head of the split attention (AttentionSplit.split_kv_heads): inputs q_h [N, dh] (a chain's
    query rows), the previous heads' output [N, E] (absent for head 0) and K_h V_h [N, 2 dh] for all
    tokens; writes columns head*dh.. of the output, which is the previous heads' output written over
    (Op.writes_over). No HLS template: the FPGA backend builds without K/V per head."""
    name = "attention_head"
    hls_template = False
    fills_columns = True
    costs_like = "attention_split"       # the same kernels, on one head

    def writes_over(self, node):
        return node.inputs[1] if len(node.inputs) == 3 else None

    def dims(self, node, g):
        ntok, two_dh = g.tensors[node.inputs[-1]].shape
        return ntok, two_dh // 2

    def scratch_bytes(self, node, g):
        return _score_scratch(g.tensors[node.inputs[0]].rows, g.tensors[node.inputs[-1]].rows)

    def run_int8(self, node, xs):
        # the attention op over [q_h | k_h | v_h]: one head of width dh, put into its columns
        q = node.qattrs
        y = intmath.attention(np.concatenate([xs[0], xs[-1]], axis=-1), 1, q["m_qk"], q["s_qk"], q["exp_lut"],
                              q["m_av"], q["s_av"])
        out = (np.array(xs[1], dtype=np.int8) if len(xs) == 3
               else np.zeros((y.shape[0], y.shape[1] * node.attrs["heads"]), np.int8))
        dh = y.shape[1]
        out[:, node.attrs["head"] * dh:(node.attrs["head"] + 1) * dh] = y
        return out

    def macs(self, node, g):
        n, dh = self.dims(node, g)
        return 2 * n * n * dh

    def work(self, node, g):
        n, dh = self.dims(node, g)
        rows = g.tensors[node.inputs[0]].rows
        return dict(Op.work(self, node, g), macs=self.macs(node, g), scores=rows * n,
                    row_macs=row_by_row_macs(rows, n, dh, 1, "v_t" in node.attrs))

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n, dh = self.dims(node, g)
        kv = dh if node.attrs.get("v_t") else 2 * dh         # row stride of k
        return _emit_rows(node, c, n, dh, f"{ins[0]} + r * {dh}", dh, ins[-1], kv, _v_source(node, ins[-1], n, dh, kv),
                          out, rows, scratch, heads=1, out_e=g.tensors[node.outputs[0]].channels,
                          col0=node.attrs["head"] * dh)


class AttnScores(_StreamsKV):
    """Unfused step 1: scores[h, i, :] for every head and query row."""
    name = "attn_scores"
    products = (True, False)

    def dims(self, node, g):
        return node.attrs["tokens"], node.attrs["embed"] // node.attrs["heads"]

    def hls_spec(self, node, g, chained):
        n, dh = self.dims(node, g)
        return node.op, dict(tokens=n, heads=node.attrs["heads"], dh=dh)

    def hls_kv_buffer(self, node, chained):
        return node.inputs[0]

    def emit_hls(self, node, e, ins, out, rows, chained):
        n, dh = self.dims(node, e.g)
        a = node.attrs
        return [f"ev_attn_scores<{n}, {a['heads']}, {dh}, {e.reuse[node.name]}>({ins[0]}, {out}, {a['m_qk']}, "
                f"{a['s_qk']});"]

    def macs(self, node, g):            # q.k: half of the attention op's 2 N^2 E
        a = node.attrs
        return a["tokens"] * a["tokens"] * a["embed"]

    def work(self, node, g):          # no softmax here: the unfused schedule's softmax step counts it
        n, dh = self.dims(node, g)
        qk, av = self.products
        return dict(Op.work(self, node, g),
                    row_macs=row_by_row_macs(n, n, dh, node.attrs["heads"], "v_t" in node.attrs, qk=qk, av=av))

    def run_int8(self, node, xs):       # intmath.attention's first product, every head's [N, N] scores
        a = node.attrs
        q, k, _ = (t.astype(np.int32) for t in _split(xs[0], a["heads"]))
        scores = intmath.requantize(q @ np.swapaxes(k, -1, -2), a["m_qk"], a["s_qk"])
        return scores.reshape(a["heads"] * a["tokens"], a["tokens"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        a = node.attrs
        n, e, h = a["tokens"], a["embed"], a["heads"]
        dh = e // h
        b = QUERY_BLOCK
        qk = 2 * e if a.get("v_t") else 3 * e               # row stride of q and k
        return [f"for (int hd = 0; hd < {h}; hd++) for (int i = 0; i < {n}; i += {b})",
                f"  ev_attn_scores_rows({ins[0]} + i * {qk} + hd * {dh}, {qk}, {n} - i < {b} ? {n} - i : {b}, "
                f"{ins[0]} + {e} + hd * {dh}, {qk}, {n}, {dh}, {a['m_qk']}, {a['s_qk']}, "
                f"{out} + (hd * {n} + i) * {n}, {n});"]


class Softmax(Op):
    """Unfused step 2: row softmax over the materialised scores."""
    name = "softmax"
    inplace = True
    rowwise_inputs = (0,)

    def run_int8(self, node, xs):
        return intmath.softmax(xs[0], node.attrs["exp_lut"])

    hls_template = True

    def hls_ops(self, node, g, chained):
        return g.tensors[node.outputs[0]].channels

    def hls_spec(self, node, g, chained):
        t = g.tensors[node.outputs[0]]
        return "softmax", {"rows": t.rows, "len": t.channels}

    def emit_hls(self, node, e, ins, out, rows, chained):
        lut = e.c.add(node, "exp_lut", node.attrs["exp_lut"], np.uint16)
        return [f"ev_softmax<{rows}, {e.g.tensors[node.outputs[0]].channels}, {e.reuse[node.name]}>({ins[0]}, {out}, "
                f"{lut});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n = g.tensors[node.inputs[0]].channels
        lut = c.const(node.attrs["lut_name"], node.attrs["exp_lut"])
        return [f"for (int i = 0; i < {rows}; i++) ev_softmax_s8({ins[0]} + i * {n}, {n}, {lut}, {out} + i * {n});"]


class AttnAV(AttnScores):
    """Unfused step 3: out[i, h*dh:(h+1)*dh] = probs[h, i, :] v_h."""
    name = "attn_av"
    products = (False, True)

    def hls_kv_buffer(self, node, chained):
        return node.inputs[1]

    def emit_hls(self, node, e, ins, out, rows, chained):
        n, dh = self.dims(node, e.g)
        a = node.attrs
        return [f"ev_attn_av<{n}, {a['heads']}, {dh}, {e.reuse[node.name]}>({ins[0]}, {ins[1]}, {out}, {a['m_av']}, "
                f"{a['s_av']});"]

    # macs: AttnScores's N^2 E, p.v being the other half of the attention op's 2 N^2 E

    def run_int8(self, node, xs):       # intmath.attention's last product, heads put back side by side
        a = node.attrs
        _, _, v = _split(xs[1], a["heads"])
        probs = xs[0].reshape(a["heads"], a["tokens"], a["tokens"]).astype(np.int32)
        out = intmath.requantize(probs @ v.astype(np.int32), a["m_av"], a["s_av"])
        return np.swapaxes(out, 0, 1).reshape(a["tokens"], a["embed"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        a = node.attrs
        n, e, h = a["tokens"], a["embed"], a["heads"]
        dh = e // h
        b = QUERY_BLOCK
        qk = 2 * e if a.get("v_t") else 3 * e
        return [f"for (int hd = 0; hd < {h}; hd++) for (int i = 0; i < {n}; i += {b})",
                "  " + _av_call(node, f"{ins[0]} + (hd * {n} + i) * {n}", n, f"{n} - i < {b} ? {n} - i : {b}",
                                _v_source(node, ins[1], n, e, qk), 3 * e, n, dh, f"{out} + i * {e} + hd * {dh}", e)]


OP = Attention()
SPLIT = AttentionSplit()
HEAD = AttentionHead()
SCORES, SOFTMAX, AV = AttnScores(), Softmax(), AttnAV()
