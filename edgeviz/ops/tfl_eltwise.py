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
