"""Model import: PyTorch (torch.export) or ONNX -> TVM Relax -> edgeviz IR, by what the graph computes.

TVM parses the model and runs its graph passes (constant folding, binding canonicalisation, dead
code elimination). The Relax dataflow block is then interpreted over symbolic values instead of
being matched against one exporter's arrangement:

- A tensor the model computes is a `View`: for every element of the Relax tensor, which row and
  which channel of an edgeviz tensor (2-D [rows, channels]) it is. Layout ops (reshape, permute,
  transpose, split, unbind, take, slices, squeeze, broadcast; batch- or sequence-first) only move
  these index grids, so any arrangement of heads, tokens and channels is read the same way.
- Constants folded into their producer where that is exact: biases, LayerScale, the position
  embedding, prefix tokens (cls, distillation, register tokens), scales on the logits.
- Element-wise math on one tensor is kept as an expression (`View.fn`) and becomes one lookup
  table: GELU in erf or tanh form whatever the operand order, ReLU, SiLU, x * sigmoid(1.702 x).
- q k^T becomes `Scores`; softmax(Scores) v becomes one attention op. q, k and v may come packed
  from one Linear or from three, in any channel order: their Linear layers are merged into the qkv
  Linear the attention op reads, rows reordered to its layout. The scale may sit on q, on k or on
  the scores, as a multiply or a divide.

Anything else is an error that names the op, where it sits and what is supported.

Also here, as every way into the IR belongs to the frontend: `graph_from_vit` (an edgeviz ViT read
straight from its modules, the search's fast path) and `load_graph` (a model file or search folder,
whatever its format).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .atomic import SEARCH_LOCK, lock_is_held
from .errors import EdgevizError
from .ir import Graph
from .model import LowRankLinear, ViT, load_model
from .ops import OPS
from .ops.activation import FUNCTIONS, GELU, X, evaluate, kind_of, scale_of
from .tflite.importer import import_tflite

SUPPORTED = ("edgeviz reads ViTs made of a conv patch embedding (kernel = stride), prefix tokens, LayerNorm, "
             "Linear, softmax attention, residual adds, element-wise activations and cls / token / mean pooling")


# ------------------------------------------------------------------ symbolic values
@dataclass
class Const:
    value: np.ndarray


@dataclass
class Image:                  # the model input [1, C, H, W]
    name: str


@dataclass
class View:
    """A Relax tensor seen through an edgeviz tensor: element i is base[rows[i], chs[i]], then fn."""
    base: str
    rows: np.ndarray          # int grids with the Relax tensor's shape (batch included)
    chs: np.ndarray
    fn: tuple | None = None   # pending element-wise function (ops.activation expression), None = identity
    owner: bool = False       # the only handle on its base, fresh from the producer: constants may fold in

    @property
    def shape(self) -> tuple:
        return self.rows.shape

    def moved(self, f) -> View:
        """The same elements rearranged by a numpy layout function."""
        return replace(self, rows=np.asarray(f(self.rows)), chs=np.asarray(f(self.chs)))


@dataclass
class Scores:                 # q k^T (times scale), heads flattened: grids [B, M, K] for q, [B, N, K] for k
    q: View
    k: View
    scale: float
    softmaxed: bool = False


@dataclass
class RowStat:
    """A LayerNorm written out op by op (ONNX below opset 17, converters): statistics over each token's
    channels of `x`, at `stage` mean -> centered (x - mean) -> squared -> var -> var+eps -> std or rstd."""
    x: View
    stage: str
    eps: float = 0.0


@dataclass
class Joined:
    """Tensors concatenated along their channels (DINOv2's [cls, mean of patches] feature): a Linear
    over it is the sum of one Linear per part."""
    parts: list


@dataclass
class Guard:                  # a mask computed from the scores (exporters guard fully masked rows); never true here
    pass


def _shape(expr) -> tuple:
    return tuple(int(s) for s in expr.ty.shape)


def _ints(v) -> list[int]:
    if isinstance(v, list):
        return [int(np.asarray(x.value).reshape(())) for x in v]
    return [int(i) for i in np.asarray(v.value).reshape(-1)]


def _is_zero(c: Const) -> bool:
    return bool(np.all(np.asarray(c.value) == 0))


def _scalar(c: Const) -> float | None:
    v = np.asarray(c.value, dtype=np.float64).reshape(-1)
    return float(v[0]) if v.size and np.all(v == v[0]) else None


# element-wise ops: Relax name -> expression name
_BINARY = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "power": "pow",
           "maximum": "max", "minimum": "min"}
_UNARY = {"erf": "erf", "tanh": "tanh", "sigmoid": "sigmoid", "exp": "exp", "sqrt": "sqrt", "rsqrt": "rsqrt",
          "negative": "neg", "abs": "abs", "nn.relu": "relu", "nn.gelu": "gelu", "nn.gelu_tanh": "gelu_tanh",
          "nn.silu": "silu"}
_COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal,
            "less": np.less, "less_equal": np.less_equal, "logical_and": np.logical_and, "logical_or": np.logical_or}


def _subst(e: tuple, inner: tuple) -> tuple:
    if e == X:
        return inner
    if e[0] == "c":
        return e
    return (e[0],) + tuple(_subst(a, inner) for a in e[1:])


class _Walker:
    def __init__(self, func, source: str, locate=None):
        self.g = Graph()
        self.locate = locate          # (relax op, output shape) -> where the model's source says it, or None
        self.current: tuple | None = None
        self.env: dict = {}
        self.uses: dict = {}
        self.source = source
        self.func = func
        self.where = "the model input"
        self.selected: dict[tuple[str, int], str] = {}

    # ---- helpers
    def fail(self, why: str):
        where = self.where
        if self.locate is not None and self.current is not None:
            found = self.locate(*self.current)
            where += f"', {found}, '" if found else ""
        raise EdgevizError(f"unsupported model ({self.source}): {why} at '{where}'; {SUPPORTED}".replace(", ''", ""))

    def node(self, op: str, inputs: list[str], shape, at: int | None = None, **attrs) -> str:
        name = self.g.add_node(op, op, inputs, shape, attrs).name
        if at is not None:
            self.g.nodes.insert(at, self.g.nodes.pop())
        return name

    def _count_uses(self, expr) -> None:
        from tvm import relax
        if isinstance(expr, relax.Var):
            self.uses[expr] = self.uses.get(expr, 0) + 1
        elif isinstance(expr, relax.Tuple):
            for f in expr.fields:
                self._count_uses(f)
        elif isinstance(expr, relax.Call):
            for a in expr.args:
                self._count_uses(a)
        elif isinstance(expr, relax.TupleGetItem):
            self._count_uses(expr.tuple_value)

    def val(self, expr):
        from tvm import relax
        kind = type(expr).__name__
        if kind in ("GenericConst", "Constant"):
            return Const(expr.value.numpy())
        if kind in ("IntImm", "FloatImm", "PrimValue"):          # prim values: axes, bounds, arange's ends
            v = expr.value
            return Const(np.asarray(getattr(v, "value", v)))
        if isinstance(expr, relax.ShapeExpr):
            return Const(np.asarray([int(v) for v in expr.values], dtype=np.int64))
        if kind in ("StringImm", "String", "DataTypeImm"):
            return None
        if isinstance(expr, relax.Tuple):
            return [self.val(f) for f in expr.fields]
        v = self.env[expr]
        if isinstance(v, View) and v.owner and self.uses.get(expr, 0) > 1:
            v = replace(v, owner=False)          # shared from here on: nothing may fold into its producer
        return v

    # ---- the walk
    def run(self) -> Graph:
        from tvm import relax
        params = list(self.func.params)
        full = _shape(params[0]) if len(params) == 1 else ()
        if len(full) != 4 or full[0] != 1:
            raise EdgevizError(f"unsupported model ({self.source}): the model must take one image [1, C, H, W], "
                               f"got inputs {[list(_shape(p)) for p in params]}")
        x = self.g.add_tensor("input", full[1:])
        self.g.inputs = [x.name]
        self.env[params[0]] = Image(x.name)
        body = self.func.body
        for block in body.blocks:
            for b in block.bindings:
                self._count_uses(b.value)
        self._count_uses(body.body)
        for block in body.blocks:
            for b in block.bindings:
                v = b.value
                op = v.op.name if isinstance(v, relax.Call) else type(v).__name__
                self.where = f"{b.var.name} = {op}(...)"
                shape = getattr(b.var.ty, "shape", None)
                self.current = (op.removeprefix("relax."), tuple(int(d) for d in shape) if shape is not None else None)
                if isinstance(v, relax.Call):
                    self.env[b.var] = self.visit(b)
                elif isinstance(v, relax.TupleGetItem):
                    part = self.val(v.tuple_value)[int(v.index)]
                    self.env[b.var] = replace(part, owner=False) if isinstance(part, View) else part
                elif isinstance(v, (relax.Tuple, relax.Var)) or type(v).__name__ in ("GenericConst", "Constant"):
                    self.env[b.var] = self.val(v)
                else:
                    self.fail(f"a binding of kind {type(v).__name__}")
        self.where, self.current = "the model output", None
        self._output(self.val(body.body))
        return self.g

    def visit(self, b):
        call = b.value
        op = call.op.name.removeprefix("relax.")
        args = [self.val(a) for a in call.args]
        out_shape = _shape(b.var) if hasattr(b.var.ty, "shape") and b.var.ty.shape is not None else None
        if op in _BINARY:
            return self._binary(_BINARY[op], args[0], args[1])
        if op in _UNARY:
            return self._unary(_UNARY[op], args[0])
        if op in _COMPARE:
            a, c = args
            if isinstance(a, Const) and isinstance(c, Const):
                return Const(_COMPARE[op](a.value, c.value))
            return Guard() if any(isinstance(v, (Scores, Guard)) for v in args) else self.fail(
                f"op '{op}' on computed values")
        handler = getattr(self, "op_" + op.replace(".", "_"), None)
        if handler is None:
            self.fail(f"op '{op}' has no edgeviz kernel")
        res = handler(call, args, out_shape)
        if res is None:
            kinds = ", ".join(type(a).__name__ if not isinstance(a, list) else "tuple" for a in args)
            self.fail(f"op '{op}' on ({kinds}) is not something edgeviz can map onto its ops")
        return res

    # ---- layout: move index grids (and constants) alike
    def _layout(self, x, f):
        if isinstance(x, Const):
            return Const(np.asarray(f(np.asarray(x.value))))
        if isinstance(x, View):
            return x.moved(f)
        if isinstance(x, Guard):
            return x
        return None

    def op_reshape(self, call, args, out_shape):
        x = args[0]
        if isinstance(x, Scores):     # folding heads and query rows together and back: keys stay last
            b, m, _ = x.q.rows.shape
            n = x.k.rows.shape[1]
            return x if out_shape[-1] == n and int(np.prod(out_shape)) == b * m * n else None
        return self._layout(x, lambda a: a.reshape(out_shape))

    op_expand_dims = op_squeeze = op_flatten = op_reshape

    def op_permute_dims(self, call, args, out_shape):
        axes = [int(a) for a in call.attrs.axes] if call.attrs.axes is not None else None
        return self._layout(args[0], lambda a: np.transpose(a, axes))

    def op_broadcast_to(self, call, args, out_shape):
        if isinstance(args[0], Scores):
            return args[0]
        return self._layout(args[0], lambda a: np.broadcast_to(a, out_shape))

    def op_astype(self, call, args, out_shape):
        x = args[0]
        if isinstance(x, Const):
            return Const(np.asarray(x.value).astype(str(call.attrs.dtype)))
        return x if isinstance(x, (View, Guard, Scores)) else None

    def op_take(self, call, args, out_shape):
        x, idx = args
        if not isinstance(idx, Const):
            return None
        axis = int(call.attrs.axis) if call.attrs.axis is not None else None
        i = np.asarray(idx.value).astype(np.int64)
        return self._layout(x, lambda a: np.take(a, i, axis=axis))

    def op_strided_slice(self, call, args, out_shape):
        x, axes, begin, end = args[:4]
        strides = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(_ints(axes))

        def f(a):
            sl = [slice(None)] * a.ndim
            for ax, b0, e0, s0 in zip(_ints(axes), _ints(begin), _ints(end), strides):
                sl[ax] = slice(b0, e0, s0)
            return a[tuple(sl)]
        return self._layout(x, f)

    def op_split(self, call, args, out_shape):
        x = args[0]
        ind = call.attrs.indices_or_sections
        ind = int(ind) if isinstance(ind, int) or not hasattr(ind, "__len__") else [int(i) for i in ind]
        axis = int(call.attrs.axis)
        if isinstance(x, Const):
            return [Const(p) for p in np.split(np.asarray(x.value), ind, axis=axis)]
        if isinstance(x, View):
            rows, chs = np.split(x.rows, ind, axis=axis), np.split(x.chs, ind, axis=axis)
            return [replace(x, rows=r, chs=c, owner=False) for r, c in zip(rows, chs)]
        return None

    def op_concat(self, call, args, out_shape):
        (parts,) = args
        axis = int(call.attrs.axis) % len(out_shape)
        if all(isinstance(p, Const) for p in parts):
            return Const(np.concatenate([np.asarray(p.value) for p in parts], axis=axis))
        views = [p for p in parts if isinstance(p, View)]
        if len(views) == len(parts) and len({(v.base, v.fn) for v in views}) == 1:
            return replace(views[0], rows=np.concatenate([v.rows for v in views], axis),
                           chs=np.concatenate([v.chs for v in views], axis), owner=False)
        if len(views) == 1 and parts[-1] is views[0] and all(isinstance(p, Const) for p in parts[:-1]):
            return self._prefix_tokens(views[0], [p.value for p in parts[:-1]], axis)
        if len(views) == len(parts) and axis == len(out_shape) - 1:
            return Joined(views)
        return None

    def _prefix_tokens(self, v: View, consts: list, axis: int) -> View | None:
        """concat(constant rows, patch tokens): cls / distillation / register tokens become the patch
        embedding's constant first rows."""
        node = self.g.producer(v.base)
        if node is None or not OPS[node.op].takes_prefix_tokens or not v.owner or v.fn is not None:
            self.fail("tokens are put in front of a tensor that is not the fresh patch embedding")
        line = np.take(v.chs, [0], axis=axis)
        if not (v.chs == line).all():
            self.fail("constant rows are concatenated along a channel axis")
        k = sum(np.asarray(c).shape[axis] for c in consts)
        cshape = list(v.shape)
        cshape[axis] = k
        values = np.concatenate([np.broadcast_to(np.asarray(c, dtype=np.float64),
                                                 cshape[:axis] + [np.asarray(c).shape[axis]] + cshape[axis + 1:])
                                 for c in consts], axis=axis)
        c_rows = np.broadcast_to(np.arange(k).reshape([-1 if i == axis else 1 for i in range(len(cshape))]), cshape)
        c_chs = np.broadcast_to(line, cshape)
        t = self.g.tensors[v.base]
        rows = np.full((k, t.channels), np.nan)
        rows[c_rows, c_chs] = values
        if np.isnan(rows).any():
            self.fail("prefix tokens that do not cover every channel")
        a = node.attrs
        a["prefix"] = rows if a.get("prefix") is None else np.concatenate([rows, a["prefix"]])
        t.shape = (t.shape[0] + k, t.shape[1])
        return replace(v, rows=np.concatenate([c_rows, v.rows + k], axis), chs=np.concatenate([c_chs, v.chs], axis))

    # ---- constants only
    def op_arange(self, call, args, out_shape):
        start, end, step = (float(np.asarray(a.value)) for a in args)
        return Const(np.arange(start, end, step).astype(str(call.attrs.dtype)))

    def op_full(self, call, args, out_shape):
        return Const(np.full(out_shape, np.asarray(args[1].value)))

    def op_zeros(self, call, args, out_shape):
        return Const(np.zeros(out_shape))

    def op_ones(self, call, args, out_shape):
        return Const(np.ones(out_shape))

    def op_logical_not(self, call, args, out_shape):
        x = args[0]
        return Const(np.logical_not(x.value)) if isinstance(x, Const) else x if isinstance(x, Guard) else None

    def op_isnan(self, call, args, out_shape):
        x = args[0]
        if isinstance(x, Const):
            return Const(np.isnan(np.asarray(x.value, dtype=np.float64)))
        return Guard() if isinstance(x, (Scores, Guard)) else None      # exporters' NaN guard on softmax

    op_isinf = op_isnan

    def op_where(self, call, args, out_shape):
        cond, a, b = args
        if all(isinstance(v, Const) for v in args):
            return Const(np.where(cond.value, a.value, b.value))
        if isinstance(cond, Guard) and isinstance(b, Scores):
            return b            # the guard for rows with every key masked: there are no masks here
        if isinstance(cond, Const) and isinstance(a, (View, Scores)) and np.all(cond.value):
            return a
        return None

    def op_max(self, call, args, out_shape):
        x = args[0]
        if isinstance(x, Guard):
            return x
        if isinstance(x, Const):
            axis = None if call.attrs.axis is None else tuple(int(a) for a in call.attrs.axis)
            return Const(np.max(x.value, axis=axis, keepdims=bool(call.attrs.keepdims)))
        return None

    # ---- element-wise math
    def _unary(self, name: str, x):
        if isinstance(x, RowStat):
            if x.stage == "var+eps" and name in ("sqrt", "rsqrt"):
                return replace(x, stage="std" if name == "sqrt" else "rstd")
            self.fail(f"'{name}' inside a written-out LayerNorm")
        if isinstance(x, Const):
            return Const(evaluate((name, X), np.asarray(x.value, dtype=np.float64)))
        if isinstance(x, View):
            return replace(x, fn=_subst((name, X), x.fn or X), owner=False)
        self.fail(f"'{name}' on {type(x).__name__}")

    def op_clip(self, call, args, out_shape):
        x, lo, hi = args
        fn = ("min", ("max", X, ("c", float(np.asarray(lo.value)))), ("c", float(np.asarray(hi.value))))
        if isinstance(x, View):
            return replace(x, fn=_subst(fn, x.fn or X), owner=False)
        return Const(evaluate(fn, np.asarray(x.value, dtype=np.float64))) if isinstance(x, Const) else None

    def _binary(self, name: str, a, b):
        if isinstance(a, Const) and isinstance(b, Const):
            with np.errstate(all="ignore"):
                return Const(FUNCTIONS[name](np.asarray(a.value, dtype=np.float64), np.asarray(b.value, dtype=np.float64)))
        if isinstance(a, Scores) or isinstance(b, Scores):
            return self._scores_math(name, a, b)
        if isinstance(a, RowStat) or isinstance(b, RowStat):
            return self._layernorm_math(name, a, b)
        if isinstance(a, View) and isinstance(b, View):
            return self._views_math(name, a, b)
        view, c, const_first = (a, b, False) if isinstance(a, View) else (b, a, True)
        if not isinstance(view, View) or not isinstance(c, Const):
            return None
        if not const_first and name in ("add", "sub", "mul", "div") or const_first and name in ("add", "mul"):
            value = np.asarray(c.value, dtype=np.float64)
            value = -value if name == "sub" else 1.0 / value if name == "div" else value
            folded = self._fold_const(view, value, "add" if name in ("add", "sub") else "mul")
            if folded is not None:
                return folded
        s = _scalar(c)
        if s is None:
            self.fail(f"'{name}' with a constant that is not one number, on a tensor that is not a fresh "
                      f"Linear or patch embedding output")
        outer = (name, ("c", s), X) if const_first else (name, X, ("c", s))
        return replace(view, fn=_subst(outer, view.fn or X), owner=False)

    def _scores_math(self, name: str, a, b):
        s, c = (a, b) if isinstance(a, Scores) else (b, a)
        if not isinstance(c, Const) or s.softmaxed:
            return None
        if name in ("add", "sub") and _is_zero(c):
            return s                                     # an all-zero attention mask
        k = _scalar(c)
        if k is None or name not in ("mul", "div") or (name == "div" and c is a):
            self.fail("attention with a mask or a bias on the scores (edgeviz takes plain softmax attention)")
        return replace(s, scale=s.scale * (k if name == "mul" else 1.0 / k))

    def _layernorm_math(self, name: str, a, b):
        same = lambda v, st: isinstance(v, View) and v.fn is None and v.base == st.x.base and \
            np.array_equal(v.rows, st.x.rows) and np.array_equal(v.chs, st.x.chs)   # noqa: E731
        if name == "sub" and isinstance(b, RowStat) and b.stage == "mean" and same(a, b):
            return replace(b, stage="centered")
        if isinstance(a, RowStat) and a.stage == "centered":
            if (name == "pow" and isinstance(b, Const) and _scalar(b) == 2.0) or (name == "mul" and b == a):
                return replace(a, stage="squared")
            if (name == "div" and isinstance(b, RowStat) and b.stage == "std") or \
                    (name == "mul" and isinstance(b, RowStat) and b.stage == "rstd"):
                return self._layernorm(a.x, b.eps, np.ones(a.x.shape[-1]), np.zeros(a.x.shape[-1]))
        if name == "mul" and isinstance(a, RowStat) and a.stage == "rstd" and isinstance(b, RowStat):
            return self._layernorm_math(name, b, a)
        if name == "add" and isinstance(a, RowStat) and a.stage == "var" and isinstance(b, Const) \
                and _scalar(b) is not None:
            return replace(a, stage="var+eps", eps=_scalar(b))
        self.fail(f"'{name}' inside a written-out LayerNorm in an order edgeviz does not read")

    def _views_math(self, name: str, a: View, b: View) -> View:
        shape = np.broadcast_shapes(a.shape, b.shape)
        ar, ac = np.broadcast_to(a.rows, shape), np.broadcast_to(a.chs, shape)
        br, bc = np.broadcast_to(b.rows, shape), np.broadcast_to(b.chs, shape)
        same = np.array_equal(ar, br) and np.array_equal(ac, bc)
        if a.base == b.base and same:                     # f(x) op g(x): one element-wise function of x
            return View(a.base, ar.copy(), ac.copy(), (name, a.fn or X, b.fn or X))
        # an element-wise function of two tensors is the edgeviz op of that name (add, mul)
        pairwise = sorted(k for k, op in OPS.items() if len(op.rowwise_inputs) == 2)
        if name not in pairwise:
            self.fail(f"'{name}' of two different tensors (edgeviz reads {' and '.join(pairwise)} of two tensors)")
        a, b = self._materialize(a), self._materialize(b)
        if not same or self.g.tensors[a.base].shape != self.g.tensors[b.base].shape:
            self.fail(f"'{name}' of two tensors laid out differently")
        out = self.node(name, [a.base, b.base], self.g.tensors[a.base].shape)
        return View(out, ar.copy(), ac.copy(), owner=True)

    def _scatter(self, v: View, value: np.ndarray) -> np.ndarray | None:
        """The constant laid over v's base tensor [rows, channels], or None if it does not cover it
        exactly once."""
        t = self.g.tensors[v.base]
        try:
            vals = np.broadcast_to(value, v.shape)
        except ValueError:
            return None
        m = np.full((t.rows, t.channels), np.nan)
        m[v.rows, v.chs] = vals
        if np.isnan(m).any() or not np.array_equal(m[v.rows, v.chs], vals):
            return None
        return m

    def _fold_const(self, v: View, value: np.ndarray, how: str) -> View | None:
        """Fold `v + value` or `v * value` into v's producer where the op can take it exactly (bias,
        LayerScale, position embedding: Op.fold_add / Op.fold_mul)."""
        node = self.g.producer(v.base)
        if not v.owner or v.fn is not None or node is None:
            return None
        m = self._scatter(v, value)
        if m is None:
            return None
        op = OPS[node.op]
        return v if (op.fold_add(node, m) if how == "add" else op.fold_mul(node, m)) else None

    def _materialize(self, v: View) -> View:
        """A pending element-wise function becomes one lookup-table op over the whole base tensor."""
        if v.fn is None:
            return v
        t = self.g.tensors[v.base]
        out = self.node("activation", [v.base], t.shape, fn=v.fn, kind=kind_of(v.fn))
        return replace(v, base=out, fn=None, owner=True)

    # ---- row-wise ops
    def _select(self, base: str, row: int) -> str:
        key = (base, row)
        if key not in self.selected:
            self.selected[key] = self.node("select_token", [base], (1, self.g.tensors[base].channels), index=row)
        return self.selected[key]

    def _rows_of(self, v: View) -> tuple[str, np.ndarray, np.ndarray]:
        """For an op that maps each token row on its own: (input tensor, row grid of the leading dims,
        base channel of each position along the last axis). One token taken alone is selected first."""
        rows, chs = v.rows, v.chs
        r = rows[..., 0]
        cidx = chs.reshape(-1, chs.shape[-1])[0]
        if not (rows == r[..., None]).all() or not (chs.reshape(-1, chs.shape[-1]) == cidx).all():
            self.fail("an op over the last axis whose elements are not the channels of one token")
        if len(np.unique(cidx)) != len(cidx):
            self.fail("a channel read twice along one axis")
        t = self.g.tensors[v.base]
        flat = r.reshape(-1)
        if t.rows > 1 and flat.size and (flat == flat[0]).all():
            return self._select(v.base, int(flat[0])), np.zeros_like(r), cidx
        return v.base, r, cidx

    def op_matmul(self, call, args, out_shape):
        a, b = args
        if isinstance(a, View) and isinstance(b, Const):
            return self._linear(a, np.asarray(b.value, dtype=np.float64))
        if isinstance(a, Joined) and isinstance(b, Const):
            return self._joined_linear(a, np.asarray(b.value, dtype=np.float64))
        if isinstance(a, View) and isinstance(b, View):
            return self._scores(a, b)
        if isinstance(a, Scores) and a.softmaxed and isinstance(b, View):
            return self._attention(a, b, out_shape)
        if isinstance(a, Const) and isinstance(b, View):
            self.fail("a constant times a computed tensor (attention pooling with a learned query, such as "
                      "timm's global_pool='map', is not supported; use 'token' or 'avg' pooling)")
        return None

    def _linear(self, v: View, w: np.ndarray) -> View:
        s = scale_of(v.fn)
        if s is None:
            v, s = self._materialize(v), 1.0
        if w.ndim > 2 and all(d == 1 for d in w.shape[:-2]):
            w = w.reshape(w.shape[-2:])
        if w.ndim != 2:
            self.fail(f"a matmul with a {w.ndim}-D constant")
        src, r, cidx = self._rows_of(v)
        t = self.g.tensors[src]
        full = np.zeros((w.shape[1], t.channels))
        full[:, cidx] = w.T * s                       # channels the model does not read get zero weights
        out = self.node("linear", [src], (t.rows, w.shape[1]), w=full, b=None)
        shape = r.shape + (w.shape[1],)
        return View(out, np.broadcast_to(r[..., None], shape).copy(),
                    np.broadcast_to(np.arange(w.shape[1]), shape).copy(), owner=True)

    def _joined_linear(self, a: Joined, w: np.ndarray) -> View:
        """[x1 | x2 | ...] W = x1 W1 + x2 W2 + ...: one Linear per part, summed by residual adds."""
        w = w.reshape(w.shape[-2:])
        out, first = None, 0
        for part in a.parts:
            k = part.shape[-1]
            y = self._linear(part, w[first:first + k])
            first += k
            out = y if out is None else self._views_math("add", out, y)
        if first != w.shape[0]:
            self.fail(f"a Linear of {w.shape[0]} inputs over {first} concatenated channels")
        return out

    def op_nn_linear(self, call, args, out_shape):
        x, w = args[:2]
        if not isinstance(x, View) or not isinstance(w, Const):
            return None
        y = self._linear(x, np.asarray(w.value, dtype=np.float64).T)
        return self._binary("add", y, args[2]) if len(args) > 2 and isinstance(args[2], Const) else y

    def op_nn_layer_norm(self, call, args, out_shape):
        x, gamma, beta = args
        axes = [int(a) % len(out_shape) for a in call.attrs.axes]
        if not isinstance(x, View) or axes != [len(out_shape) - 1]:
            return None
        return self._layernorm(x, float(call.attrs.epsilon), np.asarray(gamma.value, dtype=np.float64),
                               np.asarray(beta.value, dtype=np.float64))

    def _layernorm(self, x: View, eps: float, gamma: np.ndarray, beta: np.ndarray) -> View:
        x = self._materialize(x)
        src, r, cidx = self._rows_of(x)
        t = self.g.tensors[src]
        if sorted(cidx) != list(range(t.channels)):
            self.fail("a LayerNorm over part of a token's channels")
        g_full, b_full = np.zeros(t.channels), np.zeros(t.channels)
        g_full[cidx] = np.broadcast_to(gamma, cidx.shape)
        b_full[cidx] = np.broadcast_to(beta, cidx.shape)
        out = self.node("layernorm", [src], t.shape, gamma=g_full, beta=b_full, eps=eps)
        return View(out, np.broadcast_to(r[..., None], x.shape).copy(), x.chs.copy(), owner=True)

    def op_mean(self, call, args, out_shape):
        x = args[0]
        if call.attrs.axis is None or len(call.attrs.axis) != 1:
            return None
        nd = len(x.x.shape) if isinstance(x, RowStat) else len(getattr(x, "shape", ()))
        last = nd > 0 and int(call.attrs.axis[0]) % nd == nd - 1
        if isinstance(x, RowStat) and x.stage == "squared" and last:
            return replace(x, stage="var")
        if isinstance(x, View) and last and x.fn is None and (x.rows == x.rows[..., :1]).all():
            return RowStat(x, "mean")            # over each token's channels: a LayerNorm written out
        if not isinstance(x, View):
            return None
        x = self._materialize(x)
        ax = int(call.attrs.axis[0]) % len(x.shape)
        rows, chs = np.moveaxis(x.rows, ax, -1), np.moveaxis(x.chs, ax, -1)
        t = self.g.tensors[x.base]
        lines = rows.reshape(-1, rows.shape[-1])
        first = t.rows - lines.shape[1]           # all tokens, or all but the prefix tokens (timm's avg pool)
        if not (chs == chs[..., :1]).all() or first < 0 or not all(
                np.array_equal(np.sort(line), np.arange(first, t.rows)) for line in lines):
            self.fail("a mean over an axis that is not all tokens, or all tokens after the first few")
        out = self.node("mean_tokens", [x.base], (1, t.channels), **({"first": first} if first else {}))
        keep = chs[..., 0]
        keep = np.expand_dims(keep, ax) if call.attrs.keepdims else keep
        return View(out, np.zeros(keep.shape, dtype=np.int64), keep.copy(), owner=True)

    def op_nn_conv2d(self, call, args, out_shape):
        x, w = args
        a = call.attrs
        if not isinstance(x, Image) or not isinstance(w, Const):
            self.fail("a convolution after the patch embedding (edgeviz takes ViTs, not conv stems)")
        e, c, kh, kw = w.value.shape
        strides, pad = [int(s) for s in a.strides], [int(p) for p in a.padding]
        _, h, wd = self.g.tensors[x.name].shape
        if (kh != kw or strides != [kh, kw] or any(pad) or int(a.groups) != 1 or str(a.data_layout) != "NCHW"
                or any(int(d) != 1 for d in a.dilation) or h % kh or wd % kw):
            self.fail(f"a {kh}x{kw} convolution with stride {strides}, padding {pad}, groups {int(a.groups)} on a "
                      f"{h}x{wd} image; the patch embedding must have kernel = stride, no padding, and divide the image")
        gh, gw = h // kh, wd // kw
        out = self.node("patch_embed", [x.name], (gh * gw, e), w=np.asarray(w.value, dtype=np.float64), patch=kh,
                        bias_tokens=np.zeros((gh * gw, e)), prefix=None)
        rows = np.broadcast_to(np.arange(gh * gw).reshape(1, 1, gh, gw), (1, e, gh, gw)).copy()
        chs = np.broadcast_to(np.arange(e).reshape(1, e, 1, 1), (1, e, gh, gw)).copy()
        return View(out, rows, chs, owner=True)

    # ---- attention
    def _scores(self, a: View, b: View) -> Scores:
        sa, sb = scale_of(a.fn), scale_of(b.fn)
        if sa is None or sb is None:
            self.fail("a matmul of two computed tensors that is not q k^T (element-wise math on q or k)")
        lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])

        def flat(v, tail):
            shape = lead + tail
            return replace(v, rows=np.broadcast_to(v.rows, shape).reshape((-1,) + tail),
                           chs=np.broadcast_to(v.chs, shape).reshape((-1,) + tail), fn=None, owner=False)
        q = flat(a, a.shape[-2:])
        k = flat(b, b.shape[-2:]).moved(lambda t: np.swapaxes(t, -1, -2))
        return Scores(q, k, sa * sb)

    def op_nn_softmax(self, call, args, out_shape):
        x = args[0]
        if isinstance(x, Scores) and not x.softmaxed and int(call.attrs.axis) % len(out_shape) == len(out_shape) - 1:
            return replace(x, softmaxed=True)
        if isinstance(x, Scores):
            return None
        self.fail("a softmax that is not over attention scores")

    def _heads(self, v: View, what: str) -> tuple[str, np.ndarray]:
        """(base tensor, base channel [head, dim]) of q, k or v laid out as [heads, tokens, dim]."""
        t = self.g.tensors[v.base]
        tokens = np.arange(t.rows)
        if v.rows.shape[1] != t.rows or not (v.rows == tokens[None, :, None]).all():
            self.fail(f"attention whose {what} rows are not every token in order")
        c = v.chs[:, 0, :]
        if not (v.chs == c[:, None, :]).all():
            self.fail(f"attention whose {what} channels differ between tokens")
        return v.base, c

    def _attention(self, p: Scores, v: View, out_shape) -> View:
        if scale_of(v.fn) != 1.0:
            self.fail("element-wise math on the attention's values")
        heads, m, dh = p.q.rows.shape
        lead = tuple(out_shape[:-2])
        vv = replace(v, rows=np.broadcast_to(v.rows, lead + v.shape[-2:]).reshape((heads,) + v.shape[-2:]),
                     chs=np.broadcast_to(v.chs, lead + v.shape[-2:]).reshape((heads,) + v.shape[-2:]))
        if vv.shape[-1] != dh:
            self.fail(f"attention with a value width {vv.shape[-1]} other than the key width {dh}")
        parts = [self._heads(p.q, "query"), self._heads(p.k, "key"), self._heads(vv, "value")]
        prods = [self.g.producer(base) for base, _ in parts]
        if any(n is None or not OPS[n.op].rows_per_channel for n in prods) or len({n.inputs[0] for n in prods}) != 1:
            self.fail("attention whose q, k and v are not Linear layers of one input")
        idx = [c.reshape(-1) for _, c in parts]
        e = heads * dh
        if prods[0] is prods[1] is prods[2] and np.array_equal(np.concatenate(idx), np.arange(3 * e)) \
                and prods[0].attrs["w"].shape[0] == 3 * e:
            qkv = prods[0].outputs[0]                    # already the packed layout the attention op reads
        else:
            w = np.concatenate([n.attrs["w"][i] for n, i in zip(prods, idx)])
            b = None
            if any(n.attrs.get("b") is not None for n in prods):
                b = np.concatenate([(n.attrs["b"] if n.attrs.get("b") is not None else np.zeros(n.attrs["w"].shape[0]))[i]
                                    for n, i in zip(prods, idx)])
            at = max(self.g.nodes.index(n) for n in prods) + 1
            qkv = self.node("linear", [prods[0].inputs[0]], (m, 3 * e), at=at, w=w, b=b)
        out = self.node("attention", [qkv], (m, e), heads=heads, scale=float(p.scale))
        rows = np.broadcast_to(np.arange(m)[None, :, None], (heads, m, dh))
        chs = np.arange(heads)[:, None, None] * dh + np.arange(dh)[None, None, :] + np.zeros((1, m, 1), dtype=np.int64)
        return View(out, rows.reshape(out_shape).copy(), chs.reshape(out_shape).copy(), owner=True)

    # ---- the end
    def _output(self, out) -> None:
        if isinstance(out, list):
            if len(out) != 1:
                self.fail(f"{len(out)} outputs (edgeviz takes models with one output, the logits)")
            out = out[0]
        if not isinstance(out, View):
            self.fail("an output that is not computed from the image")
        out = self._materialize(out)
        src, _, cidx = self._rows_of(out)
        t = self.g.tensors[src]
        if t.rows != 1 or not np.array_equal(cidx, np.arange(t.channels)):
            self.fail(f"an output of shape {list(out.shape)} that is not one row of logits")
        self.g.outputs = [src]


# ------------------------------------------------------------------ clean-up
def _dead_code(g: Graph) -> None:
    while True:
        used = set(g.outputs) | {i for n in g.nodes for i in n.inputs}
        dead = [n for n in g.nodes if n.outputs[0] not in used]
        if not dead:
            return
        for n in dead:
            g.nodes.remove(n)
            del g.tensors[n.outputs[0]]


def _renumber(g: Graph) -> None:
    """Names in execution order, op by op (linear0, linear1, ...), as graph_from_vit gives them."""
    counters: dict[str, int] = {}
    rename = {name: name for name in g.inputs}
    for n in g.nodes:
        i = counters.get(n.op, 0)
        counters[n.op] = i + 1
        n.name = f"{n.op}{i}"
        rename[n.outputs[0]] = n.name
    tensors = {}
    for old in list(g.inputs) + [n.outputs[0] for n in g.nodes]:
        t = g.tensors[old]
        t.name = rename[old]
        tensors[t.name] = t
    for n in g.nodes:
        n.inputs = [rename[i] for i in n.inputs]
        n.outputs = [rename[o] for o in n.outputs]
    g.outputs = [rename[o] for o in g.outputs]
    g.tensors = tensors

def _simplify(g: Graph) -> None:
    """The ops' exact rewrites of an imported graph (Op.simplify), e.g. a row selection moved in front
    of the LayerNorm it follows."""
    for n in list(g.nodes):
        OPS[n.op].simplify(n, g)


# Relax op -> the names the same op has in torch's ATen and in ONNX, for pointing at the model's source
_ALIASES = {"multiply": ("mul", "Mul"), "subtract": ("sub", "rsub", "Sub"), "divide": ("div", "Div"),
            "add": ("add", "Add"), "concat": ("cat", "concat", "Concat"), "nn.conv2d": ("convolution", "conv2d", "Conv"),
            "permute_dims": ("permute", "transpose", "t", "Transpose"), "matmul": ("matmul", "mm", "bmm", "linear",
                                                                                   "addmm", "MatMul", "Gemm"),
            "strided_slice": ("slice", "narrow", "split", "chunk", "unbind", "Slice", "Split"),
            "take": ("select", "index", "Gather"), "nn.softmax": ("softmax", "_softmax", "Softmax"),
            "nn.layer_norm": ("layer_norm", "LayerNormalization"), "mean": ("mean", "ReduceMean"),
            "nn.pad": ("pad", "constant_pad_nd", "Pad"), "reshape": ("view", "reshape", "flatten", "Reshape"),
            "cumsum": ("cumsum", "CumSum")}


def _names(op: str) -> set[str]:
    return {n.lower() for n in _ALIASES.get(op, ())} | {op.split(".")[-1].lower()}


def _user_frame(stack: str | None) -> str | None:
    """'dir/file.py:line `code`' of the innermost frame outside torch itself."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', stack or "")
    frames = [f for f in frames if "/torch/" not in f[0].replace("\\", "/")]
    if not frames:
        return None
    path, line, code = frames[-1]
    return f"{'/'.join(Path(path).parts[-2:])}:{line} `{code.strip()}`"


def _torch_locator(ep):
    nodes = [(str(getattr(n.target, "__name__", n.target)).split(".")[0].lower(), tuple(n.meta["val"].shape),
              n.meta.get("stack_trace")) for n in ep.graph.nodes
             if n.op == "call_function" and hasattr(n.meta.get("val"), "shape")]

    def locate(op, shape):
        hits = {_user_frame(st) for name, shp, st in nodes if name in _names(op) and (shape is None or shp == shape)}
        hits.discard(None)
        return f"from {hits.pop()}" if len(hits) == 1 else None
    return locate


def _onnx_locator(model):
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - no shapes: match on the op type alone
        inferred = model
    shapes = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)

    def locate(op, shape):
        hits = [n for n in model.graph.node if n.op_type.lower() in _names(op)
                and (shape is None or n.output[0] not in shapes or shapes[n.output[0]] == shape)]
        return f"ONNX node '{hits[0].name}' ({hits[0].op_type})" if len(hits) == 1 and hits[0].name else None
    return locate


def _relax_to_graph(mod, source: str, locate=None) -> Graph:
    from tvm import relax
    seq = [relax.transform.FoldConstant(), relax.transform.CanonicalizeBindings(),
           relax.transform.DeadCodeElimination(["main"])]
    for p in seq:
        mod = p(mod)
    g = _Walker(mod["main"], source, locate).run()
    _dead_code(g)
    _simplify(g)
    _renumber(g)
    if g.outputs[0] in g.inputs:
        raise EdgevizError(f"unsupported model ({source}): the output is the input")
    return g


@contextlib.contextmanager
def quiet_native():
    """TVM's C++ logs, its frontends' prints ("Error converting operator ...", before the exception
    edgeviz turns into one line) and torch.export's deprecation warnings say nothing a user can act
    on; keep them off the terminal (fd 2 is redirected, so C++ output is caught too)."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _first(e: Exception) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return lines[0][:300] if lines else type(e).__name__


def relax_from_torch(module, example):
    """torch.export, then TVM's PyTorch frontend; either one's refusal becomes one user-error line."""
    return relax_from_exported(export_module(module, example), type(module).__name__)


def export_module(module, example):
    try:
        return torch.export.export(module.eval(), (example,))
    except Exception as e:  # noqa: BLE001 - torch's tracer raises many types
        raise EdgevizError(f"torch.export could not trace {type(module).__name__} on an input of shape "
                           f"{list(example.shape)}: {_first(e)}") from None


def relax_from_exported(ep, name: str):
    from tvm.relax.frontend.torch import from_exported_program
    try:
        return from_exported_program(ep, keep_params_as_input=False)
    except Exception as e:  # noqa: BLE001 - TVM's frontend asserts on ops it lacks
        raise EdgevizError(f"TVM's PyTorch frontend could not import {name}: {_first(e)}") from None


def import_torch(module, example=None) -> Graph:
    """torch.nn.Module (batch 1 image in, logits out) -> IR, through torch.export and Relax."""
    if example is None:
        example = module.example_input() if hasattr(module, "example_input") else None
    if example is None:
        raise EdgevizError("give an example input to import a PyTorch module")
    with torch.no_grad(), quiet_native():
        ep = export_module(module, example)
        mod = relax_from_exported(ep, type(module).__name__)
        return _relax_to_graph(mod, type(module).__name__, _torch_locator(ep))


def import_exported(path: Path) -> Graph:
    """A torch.export.save file (.pt2) -> IR."""
    try:
        with quiet_native():
            ep = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001 - any failure to read means the same to the user
        first = str(e).strip().splitlines()
        raise EdgevizError(f"cannot read torch.export file {path}: {first[0] if first else type(e).__name__}") from None
    with torch.no_grad(), quiet_native():
        mod = relax_from_exported(ep, Path(path).name)
        return _relax_to_graph(mod, Path(path).name, _torch_locator(ep))


def _static_shapes(model) -> dict:
    """Input shapes with every symbolic dimension (a dynamic batch, say) pinned to 1: the firmware
    runs one image at a time."""
    inits = {i.name for i in model.graph.initializer}
    return {i.name: [d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input if i.name not in inits}


def import_onnx(path: Path) -> Graph:
    import onnx
    from tvm.relax.frontend.onnx import from_onnx
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure means the same to the user
        raise EdgevizError(f"cannot read ONNX model {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    with quiet_native():
        try:
            mod = from_onnx(model, shape_dict=_static_shapes(model), keep_params_in_input=False)
        except Exception as e:  # noqa: BLE001
            msg = str(e).strip().splitlines()
            raise EdgevizError(f"TVM could not import ONNX model {path}: {msg[-1] if msg else type(e).__name__}") from None
        return _relax_to_graph(mod, Path(path).name, _onnx_locator(model))


# ------------------------------------------------------------------ an edgeviz ViT, read directly
def graph_from_vit(model: ViT) -> Graph:
    """The IR that the TVM frontend produces for an edgeviz ViT, built directly from its modules.

    The search judges thousands of candidates, and torch.export + Relax costs about a second each;
    tests/test_frontend.py checks that both paths give identical graphs (ops, shapes, weights).
    """
    cfg = model.cfg
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    g = Graph()
    counters: dict[str, int] = {}

    def node(op, inputs, shape, **attrs) -> str:
        i = counters.get(op, 0)
        counters[op] = i + 1
        return g.add_node(op, f"{op}{i}", inputs, shape, attrs).name

    def linear(x, mod, rows) -> str:
        if isinstance(mod, LowRankLinear):
            x = node("linear", [x], (rows, mod.v.out_features), w=mod.v.weight.detach().double().numpy(), b=None)
            mod = mod.u
        return node("linear", [x], (rows, mod.out_features), w=mod.weight.detach().double().numpy(),
                    b=mod.bias.detach().double().numpy())

    g.inputs = [g.add_tensor("input", (cfg.in_chans, cfg.img_size, cfg.img_size)).name]
    pos = sd["pos_embed"][0]
    bias = np.tile(sd["patch_embed.bias"], (cfg.num_patches, 1))
    prefix = None
    if cfg.pool == "cls":
        prefix = sd["cls_token"].reshape(1, -1) + pos[:1]
        pos = pos[1:]
    n, e = cfg.num_tokens, cfg.embed
    x = node("patch_embed", [g.inputs[0]], (n, e), w=sd["patch_embed.weight"], patch=cfg.patch,
             bias_tokens=bias + pos, prefix=prefix)
    for blk in model.blocks:
        h = node("layernorm", [x], (n, e), gamma=sd_get(blk.norm1.weight), beta=sd_get(blk.norm1.bias), eps=blk.norm1.eps)
        h = linear(h, blk.attn.qkv, n)
        h = node("attention", [h], (n, e), heads=blk.attn.heads, scale=float(np.float32(blk.attn.scale)))
        h = linear(h, blk.attn.proj, n)
        x = node("add", [x, h], (n, e))
        h = node("layernorm", [x], (n, e), gamma=sd_get(blk.norm2.weight), beta=sd_get(blk.norm2.bias), eps=blk.norm2.eps)
        h = linear(h, blk.fc1, n)
        h = node("activation", [h], (n, cfg.hidden), fn=GELU, kind="gelu")
        h = linear(h, blk.fc2, n)
        x = node("add", [x, h], (n, e))
    norm = dict(gamma=sd_get(model.norm.weight), beta=sd_get(model.norm.bias), eps=model.norm.eps)
    if cfg.pool == "cls":
        x = node("select_token", [x], (1, e), index=0)
        x = node("layernorm", [x], (1, e), **norm)
    else:
        x = node("layernorm", [x], (n, e), **norm)
        x = node("mean_tokens", [x], (1, e))
    g.outputs = [linear(x, model.head, 1)]
    return g


def sd_get(p) -> np.ndarray:
    return p.detach().double().numpy()


# ------------------------------------------------------------------ model files
@dataclass(frozen=True)
class ModelFile:
    """A model path and how far to trust it: a pickled module runs code from the file when loaded,
    so it is read only with trust_pickle (the CLI's --trust-pickle)."""
    path: str
    trust_pickle: bool = False

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def _first_line(e: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()      # torch puts terminal colours in its messages
    return text.splitlines()[0] if text else type(e).__name__


def example_input(module):
    """A [1, C, H, W] zero image for a module that does not say its input: channels from its first
    convolution, size from the attribute the library keeps it in (timm img_size, torchvision
    image_size, Hugging Face config.image_size)."""
    if hasattr(module, "example_input"):
        return module.example_input()
    conv = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)
    size = None
    for m in module.modules():
        for v in (getattr(m, "image_size", None), getattr(m, "img_size", None),
                  getattr(getattr(m, "config", None), "image_size", None)):
            if v is not None:
                size = v
                break
        if size is not None:
            break
    if conv is None or size is None:
        raise EdgevizError(f"cannot tell the input size of {type(module).__name__}; save it with torch.export.save "
                           f"as a .pt2 file (or export it to ONNX) so the file says its input")
    h, w = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    return torch.zeros(1, conv.in_channels, int(h), int(w))


def _load_torch_file(p: Path, shown, trust_pickle: bool):
    """(graph, module) from a .pt: edgeviz's own format, else a pickled nn.Module when trusted."""
    try:
        module = load_model(p)
    except ValueError:
        raise EdgevizError(f"{shown} is a PyTorch file but not a model edgeviz can read (a state dict holds no "
                           f"architecture); export the model with torch.export.save (.pt2) or to ONNX") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        if "unsupported global" not in str(e).lower():     # not a pickled object: a damaged or foreign file
            raise EdgevizError(f"cannot read model {shown}: {_first_line(e)}; give a .pt2 (torch.export.save), "
                               f".onnx, or an edgeviz model (.pt from edgeviz search)") from None
        if not trust_pickle:
            raise EdgevizError(f"{shown} is a pickled PyTorch module, and loading one runs code from the file; "
                               f"save it with torch.export.save (.pt2) or export it to ONNX, or pass --trust-pickle "
                               f"if you trust where it came from") from None
        try:
            module = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as e2:  # noqa: BLE001
            raise EdgevizError(f"cannot read model {shown}: {_first_line(e2)}") from None
        if not isinstance(module, torch.nn.Module):
            raise EdgevizError(f"{shown} holds a {type(module).__name__}, not a torch.nn.Module") from None
        module.eval()
        return import_torch(module, example_input(module)), None
    return import_torch(module), module


_IMPORT_LOCK = threading.Lock()


def load_graph(path: str | Path | ModelFile) -> tuple[Graph, object | None]:
    """IR (float) from a search output folder, an edgeviz model file (.pt), a torch.export file (.pt2),
    an ONNX file, or (with ModelFile(trust_pickle=True)) a pickled nn.Module.

    Returns the graph and the PyTorch module when there is one (for float accuracy).
    """
    # torch.export (dynamo) and TVM's importers keep process-wide state: two threads importing at once
    # (two builds from one Python process) failed with "torch.export could not trace". One import at a
    # time; the rest of a build (quantize, plan, compile, make) still runs in parallel.
    with _IMPORT_LOCK:
        return _load_graph(path)


def _load_graph(path) -> tuple[Graph, object | None]:
    trust = getattr(path, "trust_pickle", False)
    p = Path(path)
    if p.is_dir():
        if lock_is_held(p / SEARCH_LOCK):
            # its model.pt may be replaced any moment, and subnet.json would describe another model
            raise EdgevizError(f"a search is in progress in {path}; build it when the search has finished "
                               f"(or build a copy of its model.pt)")
        for name in ("model.pt", "subnet.pt"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            if (p / "model.onnx").is_file():
                p = p / "model.onnx"
            else:
                raise EdgevizError(f"{path} holds no model (expected model.pt or model.onnx from edgeviz search)")
    if not p.is_file():
        raise EdgevizError(f"model file {path} does not exist")
    if p.suffix.lower() == ".onnx":
        return import_onnx(p), None
    if p.suffix.lower() == ".pt2":
        return import_exported(p), None
    if p.suffix.lower() == ".tflite":
        return import_tflite(p), None
    return _load_torch_file(p, path, trust)
