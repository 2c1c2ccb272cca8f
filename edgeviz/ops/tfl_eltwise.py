"""An imported .tflite file's element-wise ops, in TFLite's integer semantics (edgeviz/tflmath.py).

tfl_binary: ADD, SUB, MUL, SQUARED_DIFFERENCE of two int8 tensors (or a tensor and a constant), with
numpy broadcasting. The output is walked as up to 4 dimensions; each operand has a stride per
dimension (0 along a broadcast one), so no operand is ever expanded in memory.
tfl_table: any element-wise function of one int8 tensor (LOGISTIC, GELU, RSQRT, TANH, QUANTIZE, a
float island DEQUANTIZE -> ... -> QUANTIZE): a 256-entry table read off LiteRT at import, or one
table per channel when the function has per-channel constants.
"""
from __future__ import annotations

import numpy as np

from .. import tflmath
from ..ir import Node
from .tfl_base import TflOp, within

BINARY_KINDS = {"add": 0, "sub": 1, "mul": 2, "squared_difference": 3}
LEFT = {"add": tflmath.ADD_LEFT_SHIFT, "sub": tflmath.ADD_LEFT_SHIFT, "squared_difference": tflmath.SQDIFF_LEFT_SHIFT}


def input_tables(kind: str, q: dict) -> np.ndarray | None:
    """ADD / SUB / SQUARED_DIFFERENCE: each input's scaled value, mq((v - zp) << left), depends on its
    int8 value alone: both as 256-entry int32 tables (a's, then b's, v = -128..127) made here with
    tflmath's own function, then max |a's| + max |b's| (the C kernel's bound for its one-SMMLAR
    requantisation). In flash, so no call builds them. None for MUL."""
    if kind not in LEFT:
        return None
    ma, sa, mb, sb = q["params"][:4]
    v = np.arange(-128, 128, dtype=np.int64)
    ta = tflmath.multiply_by_quantized_multiplier((v - q["a_zp"]) << LEFT[kind], ma, sa)
    tb = tflmath.multiply_by_quantized_multiplier((v - q["b_zp"]) << LEFT[kind], mb, sb)
    bound = int(np.abs(ta).max()) + int(np.abs(tb).max())
    return np.concatenate([ta, tb, [min(bound, (1 << 31) - 1)]]).astype(np.int32)


def _strided(x: np.ndarray, strides, dims) -> np.ndarray:
    """The [dims] view of flat x with element strides (0 for a broadcast dimension)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    return np.lib.stride_tricks.as_strided(flat, shape=tuple(dims), strides=tuple(s * flat.itemsize for s in strides))


class TflBinary(TflOp):
    name = "tfl_binary"
    kernel = "binary"
    hls_kind = "mul"

    def operands(self, node, xs):
        a = node.attrs
        vals = list(xs)
        if "const" in node.qattrs:
            vals.insert(a["const_index"], node.qattrs["const"])
        return [_strided(v, s, a["dims"]) for v, s in zip(vals, a["strides"])]

    def run_int8(self, node, xs):
        a, q = node.attrs, node.qattrs
        x, y = self.operands(node, xs)
        kind = a["kind"]
        if kind == "mul":
            return tflmath.mul(x, y, q["a_zp"], q["b_zp"], q["y_zp"], q["m"], q["shift"], q["lo"], q["hi"])
        if kind == "squared_difference":
            return tflmath.squared_difference(x, y, q["a_zp"], q["b_zp"], q["y_zp"], q["params"], q["lo"], q["hi"])
        return tflmath.add(x, y, q["a_zp"], q["b_zp"], q["y_zp"], q["params"], q["lo"], q["hi"], subtract=kind == "sub")

    def fits(self, node, in_sizes, out_size):
        at = node.attrs
        sizes = list(in_sizes)
        if "const" in node.qattrs:
            sizes.insert(at["const_index"], node.qattrs["const"].size)
        return (all(within(n, 0, at["dims"], s) for n, s in zip(sizes, at["strides"]))
                and out_size == int(np.prod(at["dims"])))

    def call(self, node, g, a, ins, out):
        at, q = node.attrs, node.qattrs
        ptrs = list(ins)
        if "const" in q:
            ptrs.insert(at["const_index"], a.rom("const", q["const"], np.int8))
        params = [q["m"], q["shift"], 0, 0, 0, 0] if at["kind"] == "mul" else list(q["params"])
        tabs = input_tables(at["kind"], q)
        return [str(BINARY_KINDS[at["kind"]]), ptrs[0], ptrs[1], a.ints("dims", at["dims"]), a.ints("sa", at["strides"][0]),
                a.ints("sb", at["strides"][1]), str(q["a_zp"]), str(q["b_zp"]), str(q["y_zp"]), a.ints("p", params),
                "0" if tabs is None else a.rom("tabs", tabs, np.int32), str(q["lo"]), str(q["hi"]), out]

    def flash_bytes(self, node):
        tabs = input_tables(node.attrs["kind"], node.qattrs)
        return super().flash_bytes(node) + (0 if tabs is None else tabs.nbytes)


class TflTable(TflOp):
    name = "tfl_table"
    kernel = "lut"
    hls_kind = "lut"
    inplace = True

    def run_int8(self, node, xs):
        lut = node.qattrs["lut"]
        idx = xs[0].astype(np.int16) + 128
        if lut.ndim == 1:
            return lut[idx]
        ch = lut.shape[0]                  # one table per channel (the last axis)
        return lut[np.arange(ch)[None, :], idx.reshape(-1, ch)].reshape(idx.shape)

    def fits(self, node, in_sizes, out_size):
        lut = node.qattrs.get("lut")
        ch = 1 if lut is None or lut.ndim == 1 else lut.shape[0]
        return in_sizes[0] == out_size and out_size % ch == 0

    def call(self, node, g, a, ins, out):
        lut = node.qattrs["lut"]
        ch = 1 if lut.ndim == 1 else lut.shape[0]
        return [ins[0], str(g.tensors[node.inputs[0]].nbytes), str(ch), a.rom("lut", lut, np.int8), out]


BINARY, TABLE = TflBinary(), TflTable()


# ---------------------------------------------------------------- element-wise chains as one table

def fuse_unary_chains(g) -> int:
    """An element-wise function of one int8 tensor spread over several nodes becomes one tfl_table
    node: a chain of 1-D tables (x -> T1 -> T2), and a binary op of x and such a chain of x walked
    element by element (x * sigmoid(1.702 x): MUL(x, LOGISTIC(MUL(x, 1.702)))). Each output byte
    depends on one input byte alone, so the table is the replaced nodes' own reference (run_int8)
    run over all 256 inputs: the same bytes by construction. The chain's inner tensors must have no
    other reader and not be graph outputs. Returns how many nodes were removed."""
    removed = 0
    while True:
        cons: dict[str, list] = {}
        for k in g.nodes:
            for t in set(k.inputs):
                cons.setdefault(t, []).append(k)
        prod = {k.outputs[0]: k for k in g.nodes}

        def inner(t):       # a tensor only its one consumer reads
            return len(cons.get(t, [])) == 1 and t not in g.outputs

        def flat_table(k):
            return k is not None and k.op == "tfl_table" and k.qattrs.get("lut") is not None and k.qattrs["lut"].ndim == 1

        def chain(t):
            """The 1-D single-reader tables ending in tensor t, back to their source: (source, nodes)."""
            nodes = []
            while flat_table(prod.get(t)) and (not nodes or inner(t)):
                nodes.insert(0, prod[t])
                t = prod[t].inputs[0]
            return t, nodes

        done = None
        for k in g.nodes:
            if flat_table(k) and flat_table(prod.get(k.inputs[0])) and inner(k.inputs[0]):
                src, nodes = chain(k.outputs[0])
                done = (k, src, nodes, None)
                break
            if k.op == "tfl_binary" and "const" not in k.qattrs and len(k.inputs) == 2:
                for side in (0, 1):
                    src, nodes = chain(k.inputs[1 - side])
                    if nodes and src == k.inputs[side] and inner(k.inputs[1 - side]) and _walks_flat(k, g):
                        done = (k, src, nodes, side)
                        break
                if done:
                    break
        if done is None:
            return removed
        last, src, nodes, side = done
        v = np.arange(-128, 128).astype(np.int8)
        f = v
        for n in nodes:
            f = TABLE.run_int8(n, [f])
        if side is not None:        # the binary op itself over the 256 pairs (v, chain(v)), walked flat
            flat = Node(last.op, last.name, list(last.inputs), list(last.outputs),
                        {**last.attrs, "dims": [1, 1, 1, 256], "strides": [[0, 0, 0, 1], [0, 0, 0, 1]]}, last.qattrs)
            f = BINARY.run_int8(flat, [v, f] if side == 0 else [f, v]).reshape(-1)
        fns = [n.attrs.get("function", n.op) for n in nodes] + ([last.attrs["kind"].upper()] if side is not None else [])
        # the node keeps the last replaced node's name and output
        node = Node("tfl_table", last.name, [src], list(last.outputs),
                    {"function": "+".join(fns), "tfl_name": last.attrs.get("tfl_name", "")},
                    {"lut": np.asarray(f, np.int8).reshape(-1)})
        gone = {id(n) for n in nodes} | {id(last)}
        at = next(i for i, k in enumerate(g.nodes) if k is last)
        g.nodes[at] = node
        g.nodes[:] = [k for k in g.nodes if id(k) not in gone or k is node]
        for n in nodes:
            if n is not last:
                g.tensors.pop(n.outputs[0], None)
        removed += len(nodes) + (1 if side is not None else 0) - 1


def _walks_flat(node, g) -> bool:
    """Whether a binary node reads both operands element by element as its output (no broadcast)."""
    n = int(np.prod(node.attrs["dims"]))
    if any(g.tensors[t].nbytes != n for t in (*node.inputs, *node.outputs)):
        return False
    idx = np.arange(n, dtype=np.int64)
    return all(np.array_equal(np.asarray(o).reshape(-1), idx) for o in BINARY.operands(node, [idx, idx]))
