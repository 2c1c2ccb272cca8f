"""Linear layer y = x W^T + b, int8 with per-channel weights and an optional GELU table epilogue."""
from __future__ import annotations

import numpy as np

from .. import intmath
from .attention import QUERY_BLOCK
from .base import Op, hls_mac_reuse, quantize_weights, requant_params


# The MCU linear kernels' fast paths (ev_linear.c: path S, the row pairs) stream inputs in groups of
# 4. A low-rank layer's second factor reads the rank r, which otherwise ends on 1..3 inputs and falls
# to the slower paths (measured on the emulator: 5 x 25 -> 192 ran at 0.29 MACs/instruction). Padding
# to 16, as when those paths took 16 inputs a pass, cost the 10-token subnet of bench_cores 3.9% more
# instructions than 4 (rank 26: 32 against 28).
RANK_ALIGN = 4


class Linear(Op):
    name = "linear"
    rowwise_inputs = (0,)
    takes_table_epilogue = True          # GELU & co. run as the requantisation's table
    rows_per_channel = True

    def pad_rank(self, node, g):
        """Round up the width r of a tensor that this linear writes and only linears read (a low-rank
        pair's rank) to a multiple of RANK_ALIGN: the writer gets zero weight rows and zero bias, each
        reader zero weight columns. The added channels are exactly 0 (symmetric int8: a zero sum
        requantises to 0) and add 0 to every reader's sum: same bits, more (but faster) MACs."""
        t = g.tensors[node.outputs[0]]
        readers = g.consumers(t.name)
        pad = -t.channels % RANK_ALIGN
        if (not pad or t.rows < 4 or "lut" in node.qattrs or t.name in g.outputs or not readers
                or any(r.op != self.name for r in readers)):
            return 0
        before = sum(self.flash_bytes(n) for n in [node, *readers])
        q = node.qattrs
        node.qattrs = {**q, "w": np.pad(q["w"], ((0, pad), (0, 0))), "bias": np.pad(q["bias"], (0, pad)),
                       "mult": np.pad(q["mult"], (0, pad), mode="edge"),
                       "shift": np.pad(q["shift"], (0, pad), mode="edge")}
        for r in readers:
            r.qattrs = {**r.qattrs, "w": np.pad(r.qattrs["w"], ((0, 0), (0, pad)))}
        t.shape = t.shape[:-1] + (t.channels + pad,)
        return sum(self.flash_bytes(n) for n in [node, *readers]) - before

    def scatters_rows(self, node):
        return "v_t" in node.attrs           # V^T columns land all over the tensor

    def fold_add(self, node, m):         # a bias: the same for every row
        if not (m == m[:1]).all():
            return False
        node.attrs["b"] = m[0] if node.attrs.get("b") is None else node.attrs["b"] + m[0]
        return True

    def fold_mul(self, node, m):         # LayerScale: a per-channel factor
        if not (m == m[:1]).all():
            return False
        a = node.attrs
        a["w"] = a["w"] * m[0][:, None]
        a["b"] = None if a.get("b") is None else a["b"] * m[0]
        return True

    def run_float(self, node, xs):
        y = xs[0] @ node.attrs["w"].T
        return y + node.attrs["b"] if node.attrs.get("b") is not None else y

    def quantize(self, node, g, stats):
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        b = node.attrs.get("b")
        b = np.zeros(node.attrs["w"].shape[0]) if b is None else b
        wq, s_w = quantize_weights(node.attrs["w"], np.abs(b), s_x)
        node.qattrs = {
            "w": wq,
            "bias": np.round(b / (s_x * s_w)).astype(np.int32),
            **dict(zip(("mult", "shift"), requant_params(s_x * s_w / s_y))),
        }
        if node.attrs.get("lut") is not None:     # fused GELU, filled in by passes
            node.qattrs["lut"] = node.attrs["lut"]

    def run_int8(self, node, xs):
        q = node.qattrs
        return intmath.linear(xs[0], q["w"], q["bias"], q["mult"], q["shift"], q.get("lut"))

    def macs(self, node, g):
        w = node.qattrs.get("w", node.attrs["w"])     # a schedule may run a slice of the weights
        return g.tensors[node.inputs[0]].rows * w.size

    def scratch_bytes(self, node, g):
        # with V transposed (Op.transpose_v in ops/attention.py): a block of V rows before they become columns
        e = node.attrs.get("v_t", 0)
        return min(QUERY_BLOCK, g.tensors[node.outputs[0]].rows) * e

    hls_template = True

    def hls_ops(self, node, g, chained):
        return int(node.qattrs["w"].size)

    def hls_spec(self, node, g, chained):
        o, k = node.qattrs["w"].shape
        return "linear", {"rows": g.tensors[node.outputs[0]].rows, "in": k, "out": o, "lut": "lut" in node.qattrs}

    def hls_reuse(self, node, g, chained, r):
        return hls_mac_reuse(node, r)

    def emit_hls(self, node, e, ins, out, rows, chained):
        q, c, r = node.qattrs, e.c, e.reuse[node.name]
        o, k = q["w"].shape
        lut = c.add(node, "lut", q["lut"], np.int8) if "lut" in q else "ev_no_lut"
        return [f"ev_linear<{rows}, {k}, {o}, {r}, {'true' if 'lut' in q else 'false'}, false>("
                f"{ins[0]}, {out}, {c.add(node, 'w', q['w'], np.int8)}, {c.add(node, 'bias', q['bias'], np.int32)}, "
                f"{c.add(node, 'mult', q['mult'], np.int32)}, {c.add(node, 'shift', q['shift'], np.int8)}, {lut});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        o, k = q["w"].shape
        lut = c.const(f"{node.name}.lut", q["lut"]) if "lut" in q else "NULL"
        w, bias = c.const(node.name + ".w", q["w"]), c.const(node.name + ".bias", q["bias"])
        mult, shift = c.const(node.name + ".mult", q["mult"]), c.const(node.name + ".shift", q["shift"])
        e = node.attrs.get("v_t")
        if not e:
            return [f"ev_linear_s8({ins[0]}, {k}, {rows}, {k}, {o}, {w}, {bias}, 0, {mult}, {shift}, {lut}, "
                    f"{out}, {o});"]
        # The output is [N, o - e] rows, then V^T [e, N] (Op.transpose_v in ops/attention.py). `out` points at row
        # row0 of an [N, o] tensor, so the tensor starts at out - row0 * o. V goes through scratch a
        # block of rows at a time and is written as columns.
        n_tok, head, b = g.tensors[node.outputs[0]].rows, o - e, QUERY_BLOCK
        base = f"({out} - ({row0}) * {o})"
        return [f"for (int vb = 0; vb < {rows}; vb += {b}) {{",
                f"  const int vn = {rows} - vb < {b} ? {rows} - vb : {b};",
                f"  ev_linear_s8({ins[0]} + vb * {k}, {k}, vn, {k}, {head}, {w}, {bias}, 0, {mult}, {shift}, "
                f"{lut}, {base} + ({row0} + vb) * {head}, {head});",
                f"  ev_linear_s8({ins[0]} + vb * {k}, {k}, vn, {k}, {e}, {w} + {head * k}, {bias} + {head}, 0, "
                f"{mult} + {head}, {shift} + {head}, {lut}, {scratch}, {e});",
                f"  ev_transpose_s8({scratch}, vn, {e}, {base} + {n_tok * head} + {row0} + vb, {n_tok});",
                "}"]


OP = Linear()
