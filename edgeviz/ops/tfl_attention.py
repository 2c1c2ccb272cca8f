"""An imported .tflite file's attention, a block of query rows at a time: the converter's BATCH_MATMUL
(q k^T), its element-wise tables (the 1/sqrt(d) MUL), SOFTMAX and BATCH_MATMUL (p v) as one node
whose C runs the same four kernels on QUERY_ROWS query rows of one head (batch) at a time, so the
[H, N, N] scores exist one [QUERY_ROWS, N] block at a time (an MCU schedule: Switches.stream_scores).
Each kernel's rows are independent and each table and softmax row reads only its own row, so every
byte is the unfused ops' own: the reference is theirs, run in order."""
from __future__ import annotations

import dataclasses

import numpy as np

from .tfl_base import Args, TflOp
from .tfl_eltwise import TABLE
from .tfl_matmul import BATCH_MATMUL
from .tfl_reduce import SOFTMAX

# Query rows a block: the scores block is QUERY_ROWS * N bytes of scratch, and each block's
# BATCH_MATMULs widen K again and copy V transposed again (ev_tfl_bmm_s8), so fewer rows cost
# instructions. vit_relu (64 tokens, 2 heads; its scores whole: 16,384 B, 2,962,640 instructions
# with the kernels of d18d13f; +61,440 = 2.3% at 16 rows with those of 6772d34):
# 4 rows 11,520 B / +22%, 8 rows 11,776 B / +9.9%, 16 rows 12,288 B / +3.7%, 32 rows 13,312 B / +1.3%.
QUERY_ROWS = 16


class TflAttention(TflOp):
    name = "tfl_attention"
    hls_template = False            # FPGA schedules keep the four nodes (Switches.stream_scores off)

    @staticmethod
    def parts(node):
        """(q k^T BATCH_MATMUL, its tables, SOFTMAX, p v BATCH_MATMUL): the nodes it replaced."""
        p = node.attrs["parts"]
        return p[0], p[1:-2], p[-2], p[-1]

    def run_int8(self, node, xs):
        qk, tables, sm, pv = self.parts(node)
        s = BATCH_MATMUL.run_int8(qk, xs[:2]).reshape(-1)
        for t in tables:
            s = TABLE.run_int8(t, [s])
        s = SOFTMAX.run_int8(sm, [s.reshape(-1, qk.attrs["cols"])])
        return BATCH_MATMUL.run_int8(pv, [s.reshape(-1), xs[2]])

    def macs(self, node, g):
        qk, _, _, pv = self.parts(node)
        return BATCH_MATMUL.macs(qk, g) + BATCH_MATMUL.macs(pv, g)

    def fits(self, node, in_sizes, out_size):
        qk, _, _, pv = self.parts(node)
        scores = int(np.prod(qk.attrs["out_shape"]))
        return (BATCH_MATMUL.fits(qk, in_sizes[:2], scores)
                and BATCH_MATMUL.fits(pv, [scores, in_sizes[2]], out_size))

    def flash_bytes(self, node):
        qk, tables, sm, pv = self.parts(node)
        return sum(op.flash_bytes(p) for op, p in
                   [(BATCH_MATMUL, qk), *((TABLE, t) for t in tables), (SOFTMAX, sm), (BATCH_MATMUL, pv)])

    def scratch_bytes(self, node, g):
        """The scores block, then the kernels' own copy of a B whose depth is strided (V, or K), one
        product at a time: both BATCH_MATMULs take it in turn."""
        qk, _, _, pv = self.parts(node)
        bt = max(BATCH_MATMUL.scratch_bytes(qk, g), BATCH_MATMUL.scratch_bytes(pv, g))
        return min(QUERY_ROWS, qk.attrs["rows"]) * qk.attrs["cols"] + bt

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        qk, tables, sm, pv = self.parts(node)
        at, bt = qk.attrs, pv.attrs
        n, keys, dv = at["rows"], at["cols"], bt["cols"]
        block = min(QUERY_ROWS, n)
        # per head (the flattened batch index, in the kernels' order): where q, k and v start, from the
        # nodes' batch strides and offsets
        heads = np.indices([int(d) for d in at["batch_dims"]]).reshape(4, -1).T
        (oq, ok), ov = at.get("offsets", (0, 0)), bt.get("offsets", (0, 0))[1]
        starts = {name: [o + int(np.dot(h, s[:4])) for h in heads] for name, o, s in
                  (("q0", oq, at["strides"][0]), ("k0", ok, at["strides"][1]), ("v0", ov, bt["strides"][1]))}
        s_blk, b_copy = f"({scratch})", f"({scratch} + {block * keys})"
        one_head = {"batch_dims": [1, 1, 1, 1], "rows": "rows", "offsets": [0, 0]}
        qk1 = dataclasses.replace(qk, attrs={**at, **one_head, "strides": [[0] * 4 + list(s[4:]) for s in at["strides"]]})
        pv1 = dataclasses.replace(pv, attrs={**bt, **one_head,
                                             "strides": [[0] * 4 + [keys, 1], [0] * 4 + list(bt["strides"][1][4:])]})
        lines = [f"for (int h = 0; h < {len(heads)}; h++) {{",
                 "  static const int32_t " + ", ".join(f"{k}[{len(heads)}] = {{{', '.join(map(str, v))}}}"
                                                    for k, v in starts.items()) + ";"]
        lines.append(f"  for (int r = 0; r < {n}; r += {block}) {{")
        lines.append(f"    const int rows = {n} - r < {block} ? {n} - r : {block};")
        body = BATCH_MATMUL.emit_c(qk1, g, c, [f"{ins[0]} + q0[h] + r * {at['strides'][0][4]}", f"{ins[1]} + k0[h]"],
                                   s_blk, "rows", "0", b_copy)
        for t in tables:            # one 256-entry table each (stream_scores)
            body.append(f"ev_tfl_lut_s8({s_blk}, rows * {keys}, 1, {Args(t, c, 'int32_t').rom('lut', t.qattrs['lut'], np.int8)}, "
                        f"{s_blk});")
        exp = Args(sm, c, "int32_t").rom("exp", sm.qattrs["exp"], np.int32)
        body.append(f"ev_tfl_softmax_s8({s_blk}, rows, {keys}, {exp}, {sm.qattrs['diff_min']}, "
                    f"{SOFTMAX.exp_q12(sm, c)}, {s_blk});")
        body += BATCH_MATMUL.emit_c(pv1, g, c, [s_blk, f"{ins[2]} + v0[h]"], f"{out} + (h * {n} + r) * {dv}", "rows",
                                    "0", b_copy)
        lines += ["    " + b for b in body] + ["  }", "}"]
        return lines


ATTENTION = TflAttention()


def stream_scores(g, only_where_smaller: bool = True) -> int:
    """Each BATCH_MATMUL -> tables -> SOFTMAX -> BATCH_MATMUL whose scores and probabilities nothing
    else reads, where p v reads the probabilities in the order they are written (checked by walking
    an index array through its strides) and the tables are one 256-entry table each, becomes one
    tfl_attention node at p v's place (q, k and v are all made by then), where the scores are more
    bytes than q, k and a block (a 16-token attention's are not). The build still keeps it only where
    the planner finds a smaller arena. only_where_smaller=False: every such attention (tests).
    Returns how many were fused."""
    fused = 0
    for pv in [k for k in g.nodes if k.op == "tfl_batch_matmul"]:
        made = {t: k for k in g.nodes for t in k.outputs}
        sm = made.get(pv.inputs[0])
        if sm is None or sm.op != "tfl_softmax":
            continue
        tables, t = [], sm.inputs[0]
        while t in made and made[t].op == "tfl_table":
            tables.insert(0, made[t])
            t = made[t].inputs[0]
        qk = made.get(t)
        if qk is None or qk.op != "tfl_batch_matmul":
            continue
        chain = [qk, *tables, sm]
        inner = [k.outputs[0] for k in chain]
        scores = g.tensors[qk.outputs[0]].nbytes
        keys = qk.attrs["cols"]
        # streamed, q and k stay live until p v's place: worth it only where the scores outweigh them
        held = sum(g.tensors[x].nbytes for x in set(qk.inputs)) + min(QUERY_ROWS, qk.attrs["rows"]) * keys
        if ((only_where_smaller and scores <= held) or any(sum(x in k.inputs for k in g.nodes) != 1 or x in g.outputs for x in inner)
                or list(pv.attrs["batch_dims"]) != list(qk.attrs["batch_dims"])
                or pv.attrs["rows"] != qk.attrs["rows"] or pv.attrs["depth"] != keys
                or g.tensors[sm.inputs[0]].channels != keys or any(t.qattrs["lut"].ndim != 1 for t in tables)
                or not np.array_equal(BATCH_MATMUL.box(pv, 0, np.arange(scores)).reshape(-1), np.arange(scores))):
            continue
        node = dataclasses.replace(pv, op="tfl_attention", name=pv.name + ".attention",
                                   inputs=[qk.inputs[0], qk.inputs[1], pv.inputs[1]],
                                   attrs={"parts": [*chain, pv]}, qattrs={})
        for x in inner:
            g.tensors.pop(x, None)
        g.nodes[:] = [node if k is pv else k for k in g.nodes if not any(k is m for m in chain)]
        fused += 1
    return fused
