"""A .tflite file read and verified in one pass, before any interpreter sees it.

A .tflite file is a FlatBuffer: tables reached through offsets stored in the file. A damaged or
hostile file can point anywhere; every offset, length and index read here is checked against the
file's size and the model's own counts, so a bad file ends in one EdgevizError naming what is wrong.
Only the parts of TFLite's schema an int8 ViT uses are read (field numbers from schema.fbs).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import EdgevizError

# TensorType -> numpy dtype (schema.fbs enum TensorType)
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
                7: np.int16, 9: np.int8, 10: np.float64}
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
              7: "int16", 8: "complex64", 9: "int8", 10: "float64", 17: "int4"}

# BuiltinOperator codes edgeviz reads (schema.fbs enum BuiltinOperator); others are named by number
BUILTINS = {0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC",
            18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 36: "GATHER",
            39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV", 43: "SQUEEZE", 45: "STRIDED_SLICE", 47: "EXP",
            49: "SPLIT", 53: "CAST", 59: "NEG", 65: "SLICE", 70: "EXPAND_DIMS", 74: "SUM", 75: "SQRT",
            76: "RSQRT", 78: "POW", 83: "PACK", 88: "UNPACK", 92: "SQUARE", 99: "SQUARED_DIFFERENCE",
            102: "SPLIT_V", 114: "QUANTIZE", 117: "HARD_SWISH", 126: "BATCH_MATMUL", 150: "GELU",
            4: "DEPTHWISE_CONV_2D", 1: "AVERAGE_POOL_2D", 17: "MAX_POOL_2D", 34: "PAD", 32: "CUSTOM"}

# Builtin options tables: op -> [(field number, name, struct format)], scalars only
OPTIONS = {
    "ADD": [(0, "activation", "b")], "SUB": [(0, "activation", "b")], "MUL": [(0, "activation", "b")],
    "FULLY_CONNECTED": [(0, "activation", "b"), (1, "weights_format", "b"), (2, "keep_num_dims", "?")],
    "CONV_2D": [(0, "padding", "b"), (1, "stride_w", "i"), (2, "stride_h", "i"), (3, "activation", "b"),
                (4, "dilation_w", "i"), (5, "dilation_h", "i")],
    "SOFTMAX": [(0, "beta", "f")], "CONCATENATION": [(0, "axis", "i"), (1, "activation", "b")],
    "MEAN": [(0, "keep_dims", "?")], "SUM": [(0, "keep_dims", "?")],
    "STRIDED_SLICE": [(0, "begin_mask", "i"), (1, "end_mask", "i"), (2, "ellipsis_mask", "i"),
                      (3, "new_axis_mask", "i"), (4, "shrink_axis_mask", "i"), (5, "offset", "?")],
    "GATHER": [(0, "axis", "i"), (1, "batch_dims", "i")], "BATCH_MATMUL": [(0, "adj_x", "?"), (1, "adj_y", "?")],
    "GELU": [(0, "approximate", "?")], "PACK": [(0, "values_count", "i"), (1, "axis", "i")],
    "UNPACK": [(0, "num", "i"), (1, "axis", "i")], "SPLIT": [(0, "num_splits", "i")],
    "SQUEEZE": [], "RESHAPE": [],
}


# any one tensor: 256 MB of int8 is far beyond every target, and a damaged file must not make
# edgeviz allocate what it claims
MAX_ELEMENTS = 1 << 28


@dataclass
class TflTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                          # TYPE_NAMES value
    scales: np.ndarray | None           # float32, one per tensor or per channel
    zero_points: np.ndarray | None      # int64
    quantized_dim: int
    data: np.ndarray | None             # constant tensors: their values, shaped

    @property
    def scale(self) -> float:
        return float(self.scales[0]) if self.scales is not None and len(self.scales) else 0.0

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points is not None and len(self.zero_points) else 0


@dataclass
class TflOperator:
    index: int
    builtin: str                        # builtin op name, or "BUILTIN_<code>" / "CUSTOM:<name>"
    inputs: list[int]                   # tensor indices; -1 for an absent optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TflModel:
    tensors: list[TflTensor]
    operators: list[TflOperator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""


class _Reader:
    """Bounds-checked access to FlatBuffer tables in `buf`; every failure is a BadFile."""

    def __init__(self, buf: bytes, shown: str):
        self.buf, self.shown, self.n = buf, shown, len(buf)

    def bad(self, what: str):
        return EdgevizError(f"{self.shown} is not a valid .tflite file: {what}; re-export it with the "
                            f"TFLite converter")

    def u(self, fmt: str, pos: int, what: str):
        size = struct.calcsize("<" + fmt)
        if pos < 0 or pos + size > self.n:
            raise self.bad(f"{what} lies outside the file")
        return struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def table(self, pos: int, what: str) -> tuple[int, int, int]:
        """(table position, vtable position, vtable size) of the table at pos."""
        vt = pos - self.u("i", pos, what)
        vsize = self.u("H", vt, what + " vtable")
        if vsize < 4 or vsize % 2 or vt + vsize > self.n:
            raise self.bad(f"{what} has a damaged vtable")
        return pos, vt, vsize

    def field_pos(self, t, n: int) -> int | None:
        pos, vt, vsize = t
        if 4 + 2 * n + 2 > vsize:
            return None
        off = self.u("H", vt + 4 + 2 * n, "vtable entry")
        return pos + off if off else None

    def scalar(self, t, n: int, fmt: str, default, what: str):
        p = self.field_pos(t, n)
        return default if p is None else self.u(fmt, p, what)

    def ref(self, t, n: int, what: str) -> int | None:
        p = self.field_pos(t, n)
        return None if p is None else p + self.u("I", p, what)

    def vector(self, t, n: int, what: str, elem: int = 4) -> tuple[int, int]:
        """(first element position, length) of a vector field; (0, 0) when absent."""
        p = self.ref(t, n, what)
        if p is None:
            return 0, 0
        length = self.u("I", p, what + " length")
        if p + 4 + length * elem > self.n:
            raise self.bad(f"{what} runs past the end of the file")
        return p + 4, length

    def ints(self, t, n: int, fmt: str, what: str) -> list:
        start, length = self.vector(t, n, what, struct.calcsize(fmt))
        return list(struct.unpack_from(f"<{length}{fmt}", self.buf, start)) if length else []

    def tables(self, t, n: int, what: str) -> list:
        start, length = self.vector(t, n, what)
        return [self.table(start + 4 * i + self.u("I", start + 4 * i, what), f"{what}[{i}]") for i in range(length)]

    def string(self, t, n: int, what: str) -> str:
        start, length = self.vector(t, n, what, 1)
        return bytes(self.buf[start:start + length]).decode("utf-8", "replace") if length else ""


def read_tflite(buf: bytes, shown: str = "model") -> TflModel:
    """Parse and verify a .tflite file's bytes (one subgraph: an exported image model has one)."""
    r = _Reader(buf, shown)
    if len(buf) < 8:
        raise r.bad("it is too short")
    if bytes(buf[4:8]) != b"TFL3":
        raise r.bad("it lacks the TFL3 identifier")
    model = r.table(r.u("I", 0, "root"), "model")
    codes = []
    for i, oc in enumerate(r.tables(model, 1, "operator_codes")):
        code = max(r.scalar(oc, 0, "b", 0, "operator code"), r.scalar(oc, 3, "i", 0, "operator code"))
        custom = r.string(oc, 1, "custom code")
        codes.append(f"CUSTOM:{custom}" if code == 32 and custom else BUILTINS.get(code, f"BUILTIN_{code}"))
    subgraphs = r.tables(model, 2, "subgraphs")
    if len(subgraphs) != 1:
        raise EdgevizError(f"{shown} has {len(subgraphs)} subgraphs; edgeviz reads a model with one (control "
                           f"flow such as WHILE or IF is not supported)")
    buffers = r.tables(model, 4, "buffers")
    sg = subgraphs[0]
    tensors = [_tensor(r, t, i, buffers) for i, t in enumerate(r.tables(sg, 0, "tensors"))]
    nt = len(tensors)

    def indices(values, what, optional=False):
        for v in values:
            if not (0 <= v < nt or (optional and v == -1)):
                raise r.bad(f"{what} names tensor {v} of {nt}")
        return values

    operators = []
    for i, o in enumerate(r.tables(sg, 3, "operators")):
        ci = r.scalar(o, 0, "I", 0, "opcode index")
        if ci >= len(codes):
            raise r.bad(f"operator {i} uses opcode {ci} of {len(codes)}")
        name = codes[ci]
        opts = {}
        opt_ref = r.ref(o, 4, "builtin options")
        if opt_ref is not None and name in OPTIONS:
            ot = r.table(opt_ref, f"options of operator {i}")
            for n, key, fmt in OPTIONS[name]:
                opts[key] = r.scalar(ot, n, fmt, False if fmt == "?" else 0, f"option {key}")
            if name == "SQUEEZE":
                opts["squeeze_dims"] = r.ints(ot, 0, "i", "squeeze dims")
        operators.append(TflOperator(i, name, indices(r.ints(o, 1, "i", "operator inputs"), f"operator {i}", True),
                                     indices(r.ints(o, 2, "i", "operator outputs"), f"operator {i}"), opts))
    model_inputs = indices(r.ints(sg, 1, "i", "subgraph inputs"), "the model input")
    model_outputs = indices(r.ints(sg, 2, "i", "subgraph outputs"), "the model output")
    return TflModel(tensors, operators, model_inputs, model_outputs, r.string(model, 3, "description"))


def _tensor(r: _Reader, t, i: int, buffers) -> TflTensor:
    shape = tuple(r.ints(t, 0, "i", f"tensor {i} shape"))
    if any(s < 0 for s in shape) or len(shape) > 8:
        raise r.bad(f"tensor {i} has shape {list(shape)}")
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise EdgevizError(f"{r.shown}: tensor {i} has shape {list(shape)}, more than {MAX_ELEMENTS:,} values: far "
                           f"beyond any microcontroller or FPGA edgeviz builds for")
    ttype = r.scalar(t, 1, "b", 0, f"tensor {i} type")
    name = r.string(t, 3, f"tensor {i} name")
    scales = zps = None
    qdim = 0
    q = r.ref(t, 4, f"tensor {i} quantization")
    if q is not None:
        qt = r.table(q, f"tensor {i} quantization")
        scales = np.array(r.ints(qt, 2, "f", f"tensor {i} scales"), dtype=np.float32) if r.field_pos(qt, 2) else None
        zps = np.array(r.ints(qt, 3, "q", f"tensor {i} zero points"), dtype=np.int64) if r.field_pos(qt, 3) else None
        qdim = r.scalar(qt, 6, "i", 0, f"tensor {i} quantized dimension")
    data = None
    bi = r.scalar(t, 2, "I", 0, f"tensor {i} buffer")
    if bi >= len(buffers):
        raise r.bad(f"tensor {i} ({name}) uses buffer {bi} of {len(buffers)}")
    if bi:
        b = buffers[bi]
        start, length = r.vector(b, 0, f"buffer {bi}", 1)
        offset = r.scalar(b, 1, "Q", 0, f"buffer {bi} offset")
        if offset > 1:                   # data kept after the flatbuffer (models over 2 GB)
            length = r.scalar(b, 2, "Q", 0, f"buffer {bi} size")
            start = offset
            if offset + length > r.n:
                raise r.bad(f"buffer {bi} of tensor {i} ({name}) lies outside the file")
        if length:
            if ttype not in TENSOR_TYPES:
                raise EdgevizError(f"{r.shown}: tensor {i} ({name}) holds {TYPE_NAMES.get(ttype, ttype)} data, "
                                   f"which edgeviz does not read")
            dt = np.dtype(TENSOR_TYPES[ttype]).newbyteorder("<")
            count = int(np.prod(shape)) if shape else 1
            if length != count * dt.itemsize:
                raise r.bad(f"tensor {i} ({name}) holds {length} bytes for shape {list(shape)} "
                            f"({count * dt.itemsize} expected)")
            data = np.frombuffer(bytes(r.buf[start:start + length]), dtype=dt).reshape(shape).astype(dt.newbyteorder("="))
    return TflTensor(i, name, shape, TYPE_NAMES.get(ttype, f"type{ttype}"), scales, zps, qdim, data)
