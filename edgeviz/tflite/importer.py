"""An int8 .tflite file as an edgeviz graph that keeps the file's own quantisation.

Each TFLite operator becomes a tfl_* op (edgeviz/ops/tfl_*.py) whose integer parameters are derived
from the file's scales and zero points exactly as LiteRT's reference kernels derive them
(edgeviz/tflmath.py). Shape-only operators (RESHAPE, SQUEEZE, EXPAND_DIMS) move no byte: their output
names the input's tensor. Element-wise functions of one int8 tensor, float islands the converter
leaves inside "full int8" models (DEQUANTIZE -> NEG -> QUANTIZE in every LayerNorm) included, become
256-entry tables read off LiteRT. The graph then takes the same passes, planner and backends as
every model; its C kernels are the ones in firmware/kernels/ev_tfl.c.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import tflmath
from ..errors import EdgevizError
from ..ir import Graph, Node
from ..ops import OPS
from ..ops.tfl_copy import fuse_copies
from ..ops.tfl_eltwise import BINARY, fuse_unary_chains
from ..ops.tfl_matmul import fold_copies_into_bmm, split_fc_by_readers
from ..ops.tfl_norm import fuse_layernorms
from . import litert
from .flatbuffer import TflModel, TflOperator, TflTensor, read_tflite

# functions of one tensor: each becomes a table
UNARY = {"LOGISTIC", "TANH", "GELU", "RSQRT", "SQRT", "NEG", "RELU", "RELU6", "HARD_SWISH", "EXP", "ABS",
         "SQUARE", "QUANTIZE", "LEAKY_RELU", "ELU", "RELU_N1_TO_1"}
# float ops allowed inside an island between DEQUANTIZE and QUANTIZE (element-wise)
FLOAT_ELEMENTWISE = UNARY | {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW"}
ALIASES = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


class _Importer:
    def __init__(self, data: bytes, m: TflModel, shown: str):
        self.data, self.m, self.shown = data, m, shown
        self.g = Graph()
        self.names: dict[int, str] = {}         # TFLite tensor index -> IR tensor name
        self.island: dict[int, tuple[int, list[int]]] = {}    # float tensor -> (int8 source, operators)
        self.tables: list = []           # (tfl_table node, what LiteRT runs to fill its lut), after the walk

    # ------------------------------------------------------------------ helpers
    def t(self, i: int) -> TflTensor:
        return self.m.tensors[i]

    def where(self, o: TflOperator) -> str:
        out = self.t(o.outputs[0]).name if o.outputs else ""
        return f"operator {o.index} ({o.builtin}, output '{out[:60]}')"

    def need(self, cond: bool, o: TflOperator, what: str):
        if not cond:
            raise EdgevizError(f"{self.shown}: {self.where(o)}: {what}")

    def const(self, i: int, o: TflOperator, what: str) -> np.ndarray:
        self.need(i >= 0 and self.t(i).data is not None, o, f"{what} must be a constant tensor")
        return self.t(i).data

    def int8_input(self, i: int, o: TflOperator) -> str:
        t = self.t(i)
        self.need(t.dtype == "int8", o, f"input '{t.name[:60]}' is {t.dtype}; edgeviz runs int8 models "
                                        f"(convert with full-integer quantisation, TFLITE_BUILTINS_INT8)")
        self.need(i in self.names, o, f"input '{t.name[:60]}' is not computed by the model")
        return self.names[i]

    def tensor(self, i: int) -> str:
        """A fresh IR tensor for TFLite tensor i, with the file's scale and zero point."""
        t = self.t(i)
        ir = self.g.add_tensor(f"t{i}", t.shape or (1,))
        ir.scale, ir.zero_point = t.scale, t.zero_point
        self.names[i] = ir.name
        return ir.name

    def node(self, op: str, o: TflOperator, inputs: list[str], attrs: dict, qattrs: dict):
        out = self.tensor(o.outputs[0])
        n = Node(op, f"{o.builtin.lower()}_{o.index}", inputs, [out], {**attrs, "tfl_name": self.t(o.outputs[0]).name[:80]},
                 qattrs)
        self.check(n, o)
        self.g.nodes.append(n)
        return n

    def check(self, n: Node, o: TflOperator):
        """The shapes the file states must agree with what the op reads and writes (a damaged file's
        would send the reference and the C past a buffer)."""
        sizes = [self.g.tensors[i].nbytes for i in n.inputs]
        self.need(OPS[n.op].fits(n, sizes, self.g.tensors[n.outputs[0]].nbytes), o,
                  "its tensor shapes do not fit together (a damaged file?)")

    def act(self, o: TflOperator) -> tuple[int, int]:
        y = self.t(o.outputs[0])
        a = o.options.get("activation", 0)
        self.need(a in (0, 1, 2, 3), o, f"fused activation {a} is not supported (NONE, RELU, RELU_N1_TO_1, RELU6 are)")
        return tflmath.activation_range(a, y.scale, y.zero_point)

    # ------------------------------------------------------------------ the walk
    def run(self) -> Graph:
        m = self.m
        if len(m.inputs) != 1 or len(m.outputs) != 1:
            raise EdgevizError(f"{self.shown} has {len(m.inputs)} inputs and {len(m.outputs)} outputs; edgeviz "
                               f"builds a model with one of each")
        x = self.t(m.inputs[0])
        first = [o for o in m.operators if m.inputs[0] in o.inputs]
        if x.dtype == "float32" and len(first) == 1 and first[0].builtin == "QUANTIZE":
            # a float interface: the first QUANTIZE is the input's own quantisation
            self.skip = {first[0].index}
            self.input_tensor(first[0].outputs[0])
        else:
            self.skip = set()
            if x.dtype != "int8":
                raise EdgevizError(f"{self.shown}: the model input is {x.dtype}; edgeviz builds int8 models "
                                   f"(convert with inference_input_type=tf.int8, or with a float input followed "
                                   f"by QUANTIZE)")
            self.input_tensor(m.inputs[0])
        for o in m.operators:
            if o.index not in self.skip:
                self.operator(o)
        for (n, r), lut in zip(self.tables, litert.element_tables(self.data, [r for _, r in self.tables])):
            n.qattrs["lut"] = lut
            self.check(n, self.m.operators[r[0][-1]])
        fuse_layernorms(self.g)           # each converter LayerNorm as one row op (ops/tfl_norm.py)
        fuse_unary_chains(self.g)         # element-wise chains of one tensor as one table (ops/tfl_eltwise.py)
        fuse_copies(self.g)               # a copy of a copy as one copy (ops/tfl_copy.py)
        fold_copies_into_bmm(self.g)      # BATCH_MATMUL reads through the copies only it reads (ops/tfl_matmul.py)
        split_fc_by_readers(self.g)       # a packed qkv FULLY_CONNECTED as one per reader (ops/tfl_matmul.py)
        y = m.outputs[0]
        if self.t(y).dtype == "float32":          # a float interface: the last DEQUANTIZE's input is the output
            prod = [o for o in m.operators if y in o.outputs]
            if prod and prod[0].builtin == "DEQUANTIZE" and prod[0].inputs[0] in self.names:
                y = prod[0].inputs[0]
        if y not in self.names or self.t(y).dtype != "int8":
            raise EdgevizError(f"{self.shown}: the model output '{self.t(y).name[:60]}' is not an int8 tensor "
                               f"edgeviz computes")
        self.g.outputs = [self.names[y]]
        self.g.prequantized = True
        return self.g

    def input_tensor(self, i: int):
        shape = self.t(i).shape
        if len(shape) != 4 or shape[0] != 1:
            raise EdgevizError(f"{self.shown}: the model input has shape {list(shape)}; edgeviz builds image models "
                               f"with one [1, H, W, C] input")
        self.g.inputs = [self.tensor(i)]
        self.g.input_layout = "nhwc"

    def operator(self, o: TflOperator):
        name = o.builtin
        if name == "DEQUANTIZE":
            self.need(self.t(o.inputs[0]).dtype == "int8", o, "dequantizes a non-int8 tensor")
            self.island[o.outputs[0]] = (o.inputs[0], [o.index])
            return
        floats = [i for i in o.inputs if i >= 0 and self.t(i).dtype == "float32" and self.t(i).data is None]
        if floats:
            return self.float_op(o, floats)
        handler = getattr(self, "op_" + name.lower(), None)
        if name in UNARY:
            return self.table(o, o.inputs[0], [o.index])
        if handler is None:
            raise EdgevizError(f"{self.shown}: {self.where(o)} is not supported; edgeviz reads FULLY_CONNECTED, "
                               f"CONV_2D, BATCH_MATMUL, SOFTMAX, ADD, SUB, MUL, SQUARED_DIFFERENCE, MEAN, "
                               f"RESHAPE, TRANSPOSE, CONCATENATION, STRIDED_SLICE, SLICE, GATHER, PACK, UNPACK, "
                               f"SPLIT and element-wise functions of one tensor")
        handler(o)

    def float_op(self, o: TflOperator, floats: list[int]):
        sources = {self.island[i][0] for i in floats if i in self.island}
        self.need(len(sources) == 1 and all(i in self.island for i in floats), o,
                  "float arithmetic on more than one int8 tensor; edgeviz folds float islands of one tensor "
                  "into tables (convert with full-integer quantisation)")
        src = sources.pop()
        ops = sorted({k for i in floats for k in self.island[i][1]} | {o.index})
        if o.builtin == "QUANTIZE" and self.t(o.outputs[0]).dtype == "int8":
            return self.table(o, src, ops)
        self.need(o.builtin in FLOAT_ELEMENTWISE, o, "a float op that is not element-wise inside a float island")
        self.island[o.outputs[0]] = (src, ops)

    def table(self, o: TflOperator, src: int, ops: list[int]):
        ins = self.int8_input(src, o)
        self.need(self.t(o.outputs[0]).dtype == "int8", o, "an element-wise function whose output is not int8")
        self.need(self.t(src).shape == self.t(o.outputs[0]).shape, o, "an element-wise function that broadcasts")
        n = self.node("tfl_table", o, [ins], {"function": "+".join(self.m.operators[k].builtin for k in ops)}, {})
        self.tables.append((n, (ops, src, o.outputs[0], f"{self.shown}: {self.where(o)}")))

    # ------------------------------------------------------------------ one method per TFLite op
    def op_reshape(self, o):
        i = o.inputs[0]
        x, y = self.t(i), self.t(o.outputs[0])
        self.int8_input(i, o)
        self.need(x.scale == y.scale and x.zero_point == y.zero_point, o, "changes the quantisation")
        self.need(int(np.prod(x.shape)) == int(np.prod(y.shape)), o, "its tensor shapes do not fit together "
                  "(a damaged file?)")
        self.names[o.outputs[0]] = self.names[i]

    op_squeeze = op_expand_dims = op_reshape

    def op_fully_connected(self, o):
        x, w = self.t(o.inputs[0]), self.t(o.inputs[1])
        wq = self.const(o.inputs[1], o, "the weights").astype(np.int64)
        self.need(w.dtype == "int8" and (w.zero_points is None or not w.zero_points.any()), o,
                  "weights must be int8 with zero point 0")
        self.need(o.options.get("weights_format", 0) == 0, o, "shuffled weights are not supported")
        oc, k = wq.shape
        bias = (self.const(o.inputs[2], o, "the bias").astype(np.int64) if len(o.inputs) > 2 and o.inputs[2] >= 0
                else np.zeros(oc, np.int64))
        y = self.t(o.outputs[0])
        sw = w.scales.astype(np.float64) if len(w.scales) > 1 else np.full(oc, np.float64(w.scales[0]))
        scale = np.float64(x.scale) * sw / np.float64(y.scale)
        folded = _wrap32(bias - x.zero_point * wq.sum(axis=1))
        lo, hi = self.act(o)
        self.node("tfl_fully_connected", o, [self.int8_input(o.inputs[0], o)], {},
                  {"w": wq.astype(np.int8), "bias": folded, "scale": scale, "y_zp": y.zero_point, "lo": lo, "hi": hi})

    def op_conv_2d(self, o):
        x, w, y = self.t(o.inputs[0]), self.t(o.inputs[1]), self.t(o.outputs[0])
        wq = self.const(o.inputs[1], o, "the filter")
        opt = o.options
        self.need(opt.get("dilation_w", 1) in (0, 1) and opt.get("dilation_h", 1) in (0, 1), o, "dilated convolution")
        self.need(len(x.shape) == 4 and x.shape[0] == 1 and wq.shape[3] == x.shape[3], o,
                  "a grouped or batched convolution")
        oc, kh, kw, _ = wq.shape
        _, h, wd, _ = x.shape
        _, oh, ow, _ = y.shape
        sh, sw = opt.get("stride_h", 1), opt.get("stride_w", 1)
        if opt.get("padding", 0) == 0:            # SAME
            pt = max((oh - 1) * sh + kh - h, 0) // 2
            pl = max((ow - 1) * sw + kw - wd, 0) // 2
        else:
            pt = pl = 0
        bias = (self.const(o.inputs[2], o, "the bias").astype(np.int64) if len(o.inputs) > 2 and o.inputs[2] >= 0
                else np.zeros(oc, np.int64))
        # the input's zero point folded into the bias: taps outside the image then hold the zero point
        bias = _wrap32(bias - x.zero_point * wq.reshape(oc, -1).astype(np.int64).sum(axis=1))
        fs = w.scales if len(w.scales) > 1 else np.repeat(w.scales[:1], oc)
        ms = [tflmath.quantize_multiplier(float(np.float64(x.scale) * np.float64(s) / np.float64(y.scale))) for s in fs]
        lo, hi = self.act(o)
        self.node("tfl_conv", o, [self.int8_input(o.inputs[0], o)],
                  {"in_hwc": (h, wd, x.shape[3]), "kernel": (kh, kw), "out_hw": (oh, ow), "stride": (sh, sw),
                   "pad": (pt, pl)},
                  {"w": wq.astype(np.int8), "bias": bias, "m": np.array([a for a, _ in ms], np.int32),
                   "shift": np.array([b for _, b in ms], np.int32), "x_zp": x.zero_point, "y_zp": y.zero_point,
                   "lo": lo, "hi": hi})

    def op_batch_matmul(self, o):
        a, b, y = self.t(o.inputs[0]), self.t(o.inputs[1]), self.t(o.outputs[0])
        ins = [self.int8_input(o.inputs[0], o), self.int8_input(o.inputs[1], o)]
        adj_x, adj_y = bool(o.options.get("adj_x")), bool(o.options.get("adj_y"))
        out = y.shape
        rank = len(out)
        self.need(2 <= rank <= 6 and len(a.shape) <= rank and len(b.shape) <= rank, o, "operand ranks")
        ash, bsh = (1,) * (rank - len(a.shape)) + a.shape, (1,) * (rank - len(b.shape)) + b.shape
        m_rows, depth = (ash[-1], ash[-2]) if adj_x else (ash[-2], ash[-1])
        n_cols = bsh[-2] if adj_y else bsh[-1]
        batch = out[:-2]
        self.need(len(batch) <= 4, o, "more than 4 batch dimensions")
        pad = 4 - len(batch)

        def strides(shape, row_axis, depth_axis):
            full = np.cumprod((1,) + shape[::-1])[:-1][::-1]
            bs = [0 if shape[d] == 1 else int(full[d]) for d in range(rank - 2)]
            return [0] * pad + bs + [int(full[row_axis]), int(full[depth_axis])]
        sa = strides(ash, rank - 1 if adj_x else rank - 2, rank - 2 if adj_x else rank - 1)
        sb = strides(bsh, rank - 2 if adj_y else rank - 1, rank - 1 if adj_y else rank - 2)
        mult, shift = tflmath.quantize_multiplier(
            float(np.float64(np.float32(a.scale) * np.float32(b.scale)) / np.float64(y.scale)))
        self.node("tfl_batch_matmul", o, ins,
                  {"a_shape": a.shape, "b_shape": b.shape, "adj_x": adj_x, "adj_y": adj_y, "out_shape": out,
                   "batch_dims": [1] * pad + list(batch), "strides": [sa, sb], "rows": m_rows, "cols": n_cols,
                   "depth": depth},
                  {"a_zp": a.zero_point, "b_zp": b.zero_point, "y_zp": y.zero_point, "m": mult, "shift": shift})

    def op_softmax(self, o):
        x, y = self.t(o.inputs[0]), self.t(o.outputs[0])
        self.need(y.zero_point == -128 and abs(y.scale - 1 / 256) < 1e-3 / 256, o,
                  "int8 SOFTMAX needs an output scale 1/256 and zero point -128")
        mult, shift, diff_min = tflmath.softmax_params(x.scale, o.options.get("beta", 1.0))
        self.node("tfl_softmax", o, [self.int8_input(o.inputs[0], o)], {},
                  {"exp": tflmath.softmax_exp_table(mult, shift, diff_min), "diff_min": diff_min})

    def binary(self, o, kind: str):
        ia, ib = o.inputs[:2]
        a, b, y = self.t(ia), self.t(ib), self.t(o.outputs[0])
        ins, qattrs, attrs = [], {}, {"kind": kind}
        for i in (ia, ib):
            if self.t(i).data is not None:
                self.need("const" not in qattrs, o, "both operands are constants")
                self.need(self.t(i).dtype == "int8", o, "a constant operand that is not int8")
                qattrs["const"] = self.t(i).data.astype(np.int8)
                attrs["const_index"] = 0 if i == ia else 1
            else:
                ins.append(self.int8_input(i, o))
        dims, strides = _broadcast(a.shape, b.shape, y.shape)
        self.need(dims is not None, o, "operand shapes do not broadcast to the output's within 4 dimensions")
        attrs.update(dims=dims, strides=strides)
        lo, hi = self.act(o)
        qattrs.update(a_zp=a.zero_point, b_zp=b.zero_point, y_zp=y.zero_point, lo=lo, hi=hi)
        if kind == "mul":
            qattrs["m"], qattrs["shift"] = tflmath.mul_params(a.scale, b.scale, y.scale)
        elif kind == "squared_difference":
            qattrs["params"] = tflmath.add_params(a.scale, b.scale, y.scale, tflmath.SQDIFF_LEFT_SHIFT, squared=True)
        else:
            qattrs["params"] = tflmath.add_params(a.scale, b.scale, y.scale)
        const = qattrs.get("const")
        if const is not None and (const == const.reshape(-1)[0]).all() and self.t(ins_index(o, attrs)).shape == y.shape:
            # an element-wise function of the other tensor (a scale, an epsilon): the op itself, run on
            # each of the 256 values once, is its table
            probe = Node("tfl_binary", "probe", ["x"], ["y"], {**attrs, **dict(zip(("dims", "strides"),
                         _broadcast((256,), (1,), (256,))))}, {**qattrs, "const": const.reshape(-1)[:1]})
            lut = BINARY.run_int8(probe, [np.arange(-128, 128, dtype=np.int8)]).reshape(-1).astype(np.int8)
            self.node("tfl_table", o, ins, {"function": f"{kind} by a constant"}, {"lut": lut})
            return
        self.node("tfl_binary", o, ins, attrs, qattrs)

    def op_add(self, o):
        self.binary(o, "add")

    def op_sub(self, o):
        self.binary(o, "sub")

    def op_mul(self, o):
        self.binary(o, "mul")

    def op_squared_difference(self, o):
        self.binary(o, "squared_difference")

    def op_mean(self, o):
        x, y = self.t(o.inputs[0]), self.t(o.outputs[0])
        axes = sorted({int(a) % len(x.shape) for a in np.atleast_1d(self.const(o.inputs[1], o, "the axes"))})
        self.need(axes == list(range(axes[0], axes[-1] + 1)), o, "MEAN over axes that are not adjacent")
        outer = int(np.prod(x.shape[:axes[0]]))
        red = int(np.prod([x.shape[a] for a in axes]))
        inner = int(np.prod(x.shape[axes[-1] + 1:]))
        m, shift = tflmath.mean_params(x.scale, y.scale, red)
        self.node("tfl_mean", o, [self.int8_input(o.inputs[0], o)], {"split": (outer, red, inner)},
                  {"x_zp": x.zero_point, "y_zp": y.zero_point, "m": m, "shift": shift})

    # data movement: strided pieces (ops/tfl_copy.py)
    def copy(self, o, inputs: list[int], pieces: list[dict], consts: dict | None = None):
        y = self.t(o.outputs[0])
        for i in inputs:
            t = self.t(i)
            self.need(t.scale == y.scale and t.zero_point == y.zero_point, o,
                      "inputs and output are quantised differently; edgeviz copies bytes here")
        self.node("tfl_copy", o, [self.int8_input(i, o) for i in inputs], {"out_shape": y.shape, "pieces": pieces},
                  dict(consts or {}))

    def op_transpose(self, o):
        x = self.t(o.inputs[0])
        perm = [int(p) for p in self.const(o.inputs[1], o, "the permutation")]
        self.need(len(perm) <= 6, o, "more than 6 dimensions")
        st = _strides(x.shape)
        dims = [x.shape[p] for p in perm]
        self.copy(o, [o.inputs[0]], [{"input": 0, "dims": dims, "in_offset": 0, "in_strides": [st[p] for p in perm],
                                      "out_offset": 0, "out_strides": _strides(dims)}])

    def op_strided_slice(self, o):
        x, y = self.t(o.inputs[0]), self.t(o.outputs[0])
        begin, end, step = (self.const(i, o, w) for i, w in zip(o.inputs[1:4], ("begin", "end", "strides")))
        opt = o.options
        self.need(not opt.get("ellipsis_mask") and not opt.get("new_axis_mask") and not opt.get("offset"), o,
                  "ellipsis, new-axis or offset masks")
        starts, dims, steps = [], [], []
        for d, n in enumerate(x.shape):
            s, e, k = (int(v[d]) if d < len(v) else None for v in (begin, end, step))
            if s is None:
                s, e, k = 0, n, 1
            if opt.get("begin_mask", 0) >> d & 1:
                s = 0 if k > 0 else n - 1
            if opt.get("end_mask", 0) >> d & 1:
                e = n if k > 0 else -n - 1
            if opt.get("shrink_axis_mask", 0) >> d & 1:
                e, k = (s % n) + 1 if s >= 0 else s + n + 1, 1
            r = range(n)[slice(s, e, k)]
            starts.append(r.start if len(r) else 0)
            dims.append(len(r))
            steps.append(r.step)
        self.slice_piece(o, x, y, starts, dims, steps)

    def op_slice(self, o):
        x, y = self.t(o.inputs[0]), self.t(o.outputs[0])
        begin, size = (self.const(i, o, w) for i, w in zip(o.inputs[1:3], ("begin", "size")))
        dims = [int(n - b) if s == -1 else int(s) for b, s, n in zip(begin, size, x.shape)]
        self.slice_piece(o, x, y, [int(b) for b in begin], dims, [1] * len(dims))

    def slice_piece(self, o, x, y, starts, dims, steps):
        self.need(int(np.prod(dims)) == int(np.prod(y.shape or (1,))), o, "the slice does not match the output shape")
        st = _strides(x.shape)
        self.copy(o, [o.inputs[0]], [{"input": 0, "dims": dims, "in_offset": int(sum(s * t for s, t in zip(starts, st))),
                                      "in_strides": [k * t for k, t in zip(steps, st)], "out_offset": 0,
                                      "out_strides": _strides(dims)}])

    def op_gather(self, o):
        x = self.t(o.inputs[0])
        idx = np.atleast_1d(self.const(o.inputs[1], o, "the indices")).astype(np.int64).reshape(-1)
        self.need(o.options.get("batch_dims", 0) == 0, o, "batch_dims")
        axis = o.options.get("axis", 0) % len(x.shape)
        st = _strides(x.shape)
        outer, inner = list(x.shape[:axis]), list(x.shape[axis + 1:])
        dims = outer + [len(idx)] + inner
        ost = _strides(dims)
        pieces = [{"input": 0, "dims": outer + [1] + inner, "in_offset": int((j % x.shape[axis]) * st[axis]),
                   "in_strides": st[:axis] + [0] + st[axis + 1:], "out_offset": k * ost[axis],
                   "out_strides": ost[:axis] + [0] + ost[axis + 1:]} for k, j in enumerate(idx)]
        self.copy(o, [o.inputs[0]], pieces)

    def op_concatenation(self, o):
        y = self.t(o.outputs[0])
        axis = o.options.get("axis", 0) % len(y.shape)
        self.need(o.options.get("activation", 0) == 0, o, "a fused activation")
        ost, pieces, at = _strides(y.shape), [], 0
        inputs, consts = [], {}
        for i in o.inputs:
            t = self.t(i)
            piece = {"dims": list(t.shape), "in_offset": 0, "in_strides": _strides(t.shape),
                     "out_offset": at * ost[axis], "out_strides": ost}
            if t.data is not None:          # a constant part (a class token): copied from flash
                self.need(t.dtype == "int8" and t.scale == y.scale and t.zero_point == y.zero_point, o,
                          "a constant part that is not int8 in the output's quantisation")
                piece["const"] = f"part{len(consts)}"
                consts[piece["const"]] = t.data.astype(np.int8)
            else:
                piece["input"] = len(inputs)
                inputs.append(i)
            pieces.append(piece)
            at += t.shape[axis]
        self.copy(o, inputs, pieces, consts)

    def op_pack(self, o):
        y = self.t(o.outputs[0])
        axis = o.options.get("axis", 0) % len(y.shape)
        ost = _strides(y.shape)
        pieces = [{"input": j, "dims": list(self.t(i).shape), "in_offset": 0, "in_strides": _strides(self.t(i).shape),
                   "out_offset": j * ost[axis], "out_strides": ost[:axis] + ost[axis + 1:]}
                  for j, i in enumerate(o.inputs)]
        self.copy(o, list(o.inputs), pieces)

    def op_unpack(self, o):
        self.split_outputs(o, o.inputs[0], o.options.get("axis", 0), squeeze=True)

    def op_split(self, o):
        self.split_outputs(o, o.inputs[1], int(self.const(o.inputs[0], o, "the axis").reshape(-1)[0]))

    def op_split_v(self, o):
        self.split_outputs(o, o.inputs[0], int(self.const(o.inputs[2], o, "the axis").reshape(-1)[0]))

    def split_outputs(self, o, src: int, axis: int, squeeze: bool = False):
        x = self.t(src)
        axis %= len(x.shape)
        st, at = _strides(x.shape), 0
        for out in o.outputs:
            y = self.t(out)
            n = 1 if squeeze else y.shape[axis]
            dims = list(x.shape[:axis]) + [n] + list(x.shape[axis + 1:])
            sub = TflOperator(o.index, o.builtin, [src], [out], o.options)
            self.copy(sub, [src], [{"input": 0, "dims": dims, "in_offset": at * st[axis], "in_strides": st,
                                    "out_offset": 0, "out_strides": _strides(dims)}])
            self.g.nodes[-1].name = f"{o.builtin.lower()}_{o.index}_{out}"
            at += n


def ins_index(o: TflOperator, attrs: dict) -> int:
    """The TFLite tensor of a binary op's non-constant operand."""
    return o.inputs[1 - attrs["const_index"]]


def _wrap32(v) -> np.ndarray:
    """int64 values as the kernels' int32 sums hold them (wrapping)."""
    return ((np.asarray(v, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for n in reversed(list(shape)):
        out.append(acc)
        acc *= int(n)
    return out[::-1]


def _broadcast(a, b, y):
    """(dims, [strides of a, strides of b]) walking output y in at most 4 dimensions, merging adjacent
    dimensions where both operands allow; None when it takes more."""
    rank = len(y)
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    sa, sb = _strides(a), _strides(b)
    dims, st_a, st_b = [], [], []
    for d in range(rank):
        ka = 0 if a[d] == 1 and y[d] != 1 else sa[d]
        kb = 0 if b[d] == 1 and y[d] != 1 else sb[d]
        if y[d] == 1:
            continue
        if dims and st_a[-1] == ka * y[d] and st_b[-1] == kb * y[d]:
            dims[-1] *= y[d]          # contiguous with the dimension before in both operands
            st_a[-1], st_b[-1] = ka, kb
            continue
        dims.append(int(y[d]))
        st_a.append(ka)
        st_b.append(kb)
    if len(dims) > 4:
        return None, None
    pad = 4 - len(dims)
    return [1] * pad + dims, [[0] * pad + st_a, [0] * pad + st_b]


def import_tflite(path: str | Path) -> Graph:
    """An edgeviz graph (prequantized, tfl_* ops) from an int8 .tflite file."""
    p = Path(path)
    data = p.read_bytes()
    g = _Importer(data, read_tflite(data, str(path)), str(path)).run()
    g.source = str(p)
    return g
