"""Model import: PyTorch (torch.export) or ONNX -> TVM Relax -> edgeviz IR.

TVM parses the model and runs its graph passes (constant folding, binding canonicalisation, dead
code elimination). The Relax dataflow block is then walked binding by binding. Layout-only ops
(reshape, permute, take over the qkv axis, broadcast) are tracked as views, so the ViT structure
is recovered as edgeviz ops: patch_embed, layernorm, linear, gelu, attention, add, pooling.
Anything else is an error that names the op and where it sits.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EdgevizError
from .ir import Graph


# ------------------------------------------------------------------ symbolic values
@dataclass
class Act:                    # an IR tensor; `shape` is the Relax shape without the batch dim
    name: str
    shape: tuple


@dataclass
class Const:
    value: np.ndarray


@dataclass
class ConvOut:                # conv2d output, not yet flattened into tokens
    x: str
    w: np.ndarray
    b: np.ndarray | None
    patch: int
    stage: str                # "nchw" -> "flat" -> tokens


@dataclass
class QKV:                    # qkv tensor seen as [3, H, N, dh]; slot picks q, k or v
    name: str
    heads: int
    slot: int | None = None
    transposed: bool = False
    scale: float = 1.0


@dataclass
class Scores:                 # q k^T * scale, then optionally softmax-ed
    name: str
    heads: int
    scale: float
    softmaxed: bool = False


@dataclass
class HeadsOut:               # softmax(...) v as [H, N, dh], waiting to be put back to [N, E]
    name: str
    heads: int
    scale: float
    merged: bool = False


@dataclass
class GeluPart:              # ONNX spells GELU as x * 0.5 * (1 + erf(x / sqrt 2)); stage says how far we are
    x: str
    stage: str


def _shape(expr) -> tuple:
    return tuple(int(s) for s in expr.ty.shape)


def _drop_batch(shape: tuple) -> tuple:
    return shape[1:] if len(shape) > 1 and shape[0] == 1 else shape


def _is_scalar(c: Const, value: float) -> bool:
    return c.value.size == 1 and abs(float(c.value.reshape(())) - value) < 1e-6 * max(1.0, abs(value))


class _Walker:
    def __init__(self, func, source: str):
        self.g = Graph()
        self.env: dict = {}
        self.source = source
        self.func = func
        self.counter: dict[str, int] = {}

    # ---- helpers
    def fail(self, binding, why: str):
        raise EdgevizError(f"unsupported model ({self.source}): {why} at '{binding.var.name} = "
                           f"{binding.value.op.name}(...)'; edgeviz supports ViTs built from conv patch "
                           f"embedding, LayerNorm, Linear, GELU, softmax attention, residual add and cls/mean pooling")

    def fresh(self, kind: str) -> str:
        i = self.counter.get(kind, 0)
        self.counter[kind] = i + 1
        return f"{kind}{i}"

    def val(self, expr):
        from tvm import relax
        if type(expr).__name__ in ("GenericConst", "Constant"):
            return Const(expr.value.numpy())
        if isinstance(expr, relax.Tuple):
            return [self.val(f) for f in expr.fields]
        return self.env[expr]

    def node(self, op, kind, inputs, out_shape, **attrs) -> Act:
        name = self.fresh(kind)
        t = self.g.add_node(op, name, inputs, out_shape, attrs)
        return Act(t.name, tuple(out_shape))

    # ---- the walk
    def run(self) -> Graph:
        from tvm import relax
        (param,) = self.func.params
        in_shape = _drop_batch(_shape(param))
        if len(in_shape) != 3:
            raise EdgevizError(f"unsupported model ({self.source}): input must be one image [1, C, H, W], "
                               f"got {list(_shape(param))}")
        x = self.g.add_tensor("input", in_shape)
        self.g.inputs = [x.name]
        self.env[param] = Act(x.name, in_shape)
        body = self.func.body
        for block in body.blocks:
            for b in block.bindings:
                if isinstance(b.value, relax.Tuple):
                    self.env[b.var] = [self.val(f) for f in b.value.fields]
                    continue
                if not isinstance(b.value, relax.Call):
                    self.fail(b, f"binding of kind {type(b.value).__name__}")
                self.env[b.var] = self.visit(b)
        out = self.val(body.body)
        if isinstance(out, list):
            if len(out) != 1:
                raise EdgevizError(f"unsupported model ({self.source}): {len(out)} outputs, edgeviz takes one")
            out = out[0]
        if not isinstance(out, Act):
            raise EdgevizError(f"unsupported model ({self.source}): the output is not a tensor of logits")
        self.g.outputs = [out.name]
        self.g.tensors[out.name].shape = (1, int(np.prod(out.shape)))
        return self.g

    def visit(self, b):
        call = b.value
        op = call.op.name.removeprefix("relax.")
        args = [self.val(a) if type(a).__name__ != "ShapeExpr" else None for a in call.args]
        out_shape = _drop_batch(_shape(b.var))
        handler = getattr(self, "op_" + op.replace(".", "_"), None)
        if handler is None:
            self.fail(b, f"op '{op}' has no edgeviz kernel")
        res = handler(b, call, args, out_shape)
        if res is None:
            self.fail(b, f"op '{op}' in an arrangement edgeviz does not recognise")
        return res

    # ---- ops
    def op_nn_conv2d(self, b, call, args, out_shape):
        x, w = args
        a = call.attrs
        k = w.value.shape[-1]
        strides, pad = [int(s) for s in a.strides], [int(p) for p in a.padding]
        if (not isinstance(x, Act) or x.name != self.g.inputs[0] or w.value.shape[-2] != k
                or strides != [k, k] or any(pad) or int(a.groups) != 1 or str(a.data_layout) != "NCHW"):
            self.fail(b, "only a patch-embedding conv (kernel = stride, no padding, NCHW, on the input) is supported")
        return ConvOut(x.name, w.value.astype(np.float64), None, k, "nchw")

    def op_add(self, b, call, args, out_shape):
        lhs, rhs = args
        if isinstance(lhs, Const):
            lhs, rhs = rhs, lhs
        if isinstance(lhs, GeluPart) and lhs.stage == "erf" and isinstance(rhs, Const) and _is_scalar(rhs, 1.0):
            return GeluPart(lhs.x, "erf+1")
        if isinstance(lhs, ConvOut) and isinstance(rhs, Const) and lhs.b is None:
            e = lhs.w.shape[0]
            return ConvOut(lhs.x, lhs.w, rhs.value.reshape(e).astype(np.float64), lhs.patch, lhs.stage)
        if isinstance(lhs, Act) and isinstance(rhs, Const):
            prod = self.g.producer(lhs.name)
            c = rhs.value.astype(np.float64)
            ch = lhs.shape[-1]
            if prod is not None and prod.op == "linear" and prod.attrs.get("b") is None and c.size == ch:
                prod.attrs["b"] = c.reshape(ch)
                return lhs
            if prod is not None and prod.op == "patch_embed" and not prod.attrs.get("pos_added") \
                    and c.size == int(np.prod(lhs.shape)):
                c = c.reshape(-1, ch)          # position embedding: fold into the per-token bias
                a = prod.attrs
                if a.get("cls_row") is not None:
                    a["cls_row"] = a["cls_row"] + c[0]
                    c = c[1:]
                a["bias_tokens"] = a["bias_tokens"] + c
                a["pos_added"] = True
                return lhs
            return None
        if isinstance(lhs, Act) and isinstance(rhs, Act) and lhs.shape == rhs.shape:
            return self.node("add", "add", [lhs.name, rhs.name], self.g.tensors[lhs.name].shape)
        return None

    def op_reshape(self, b, call, args, out_shape):
        x = args[0]
        if isinstance(x, ConvOut) and x.stage == "nchw" and len(out_shape) == 2:
            return ConvOut(x.x, x.w, x.b, x.patch, "flat")
        if isinstance(x, Act):
            if len(out_shape) == 4 and out_shape[-3] == 3 and out_shape[-1] * out_shape[-2] * 3 == x.shape[-1]:
                return QKV(x.name, heads=out_shape[-2])      # [N, 3, H, dh] view of the qkv tensor
            if int(np.prod(out_shape)) == int(np.prod(x.shape)) and out_shape[-1:] == x.shape[-1:]:
                return Act(x.name, out_shape)
            if len(out_shape) == 2 and out_shape[-1] == x.shape[-1] * (x.shape[-2] if len(x.shape) > 1 else 1):
                return Act(x.name, out_shape)                # merge [N, H, dh] -> [N, E] after attention
            if int(np.prod(out_shape)) == int(np.prod(x.shape)) and len(out_shape) == 2 and out_shape[0] == 1:
                return Act(x.name, out_shape)                # pooled [1, E]
            return None
        if isinstance(x, (QKV, Scores)):
            return x                                         # batch folding of views
        if isinstance(x, HeadsOut):
            if x.merged and len(out_shape) <= 2:
                return Act(x.name, (out_shape[-2] if len(out_shape) > 1 else 1, out_shape[-1]))
            return x
        return None

    def op_permute_dims(self, b, call, args, out_shape):
        x = args[0]
        axes = [int(a) for a in call.attrs.axes] if call.attrs.axes is not None else None
        if isinstance(x, ConvOut) and x.stage == "flat" and axes == [0, 2, 1]:
            return self._patch_embed(x)
        if isinstance(x, QKV) and x.slot is None and axes == [2, 0, 3, 1, 4]:
            return x
        if isinstance(x, QKV) and x.slot is not None and axes is not None and axes[-2:] == [len(axes) - 1, len(axes) - 2]:
            return QKV(x.name, x.heads, x.slot, not x.transposed, x.scale)
        if isinstance(x, HeadsOut) and axes == [0, 2, 1, 3]:
            return self._attention(x)
        return None

    def op_concat(self, b, call, args, out_shape):
        (parts,) = args
        if len(parts) == 2 and isinstance(parts[0], Const) and isinstance(parts[1], Act):
            prod = self.g.producer(parts[1].name)
            if prod is not None and prod.op == "patch_embed" and prod.attrs.get("cls_row") is None:
                prod.attrs["cls_row"] = parts[0].value.reshape(-1).astype(np.float64)
                t = self.g.tensors[parts[1].name]
                t.shape = (t.shape[0] + 1, t.shape[1])
                return Act(t.name, out_shape)
        return None

    def _patch_embed(self, x: ConvOut) -> Act:
        e = x.w.shape[0]
        c, h, w = self.g.tensors[x.x].shape
        npatch = (h // x.patch) * (w // x.patch)
        bias = np.zeros(e) if x.b is None else x.b
        return self.node("patch_embed", "patch_embed", [x.x], (npatch, e), w=x.w, patch=x.patch,
                         bias_tokens=np.tile(bias, (npatch, 1)), cls_row=None)

    def op_nn_layer_norm(self, b, call, args, out_shape):
        x, gamma, beta = args
        axes = [int(a) for a in call.attrs.axes]
        if not isinstance(x, Act) or axes not in ([-1], [len(_shape(b.var)) - 1]):    # over channels only
            return None
        return self.node("layernorm", "layernorm", [x.name], self.g.tensors[x.name].shape,
                         gamma=gamma.value.astype(np.float64), beta=beta.value.astype(np.float64),
                         eps=float(call.attrs.epsilon))

    def op_matmul(self, b, call, args, out_shape):
        x, w = args
        if isinstance(x, Act) and isinstance(w, Const) and w.value.ndim == 2:
            rows = self.g.tensors[x.name].rows
            return self.node("linear", "linear", [x.name], (rows, w.value.shape[1]),
                             w=np.ascontiguousarray(w.value.T.astype(np.float64)), b=None)
        if isinstance(x, QKV) and isinstance(w, QKV) and x.name == w.name and x.slot == 0 and w.slot == 1 \
                and w.transposed and not x.transposed:
            return Scores(x.name, x.heads, x.scale * w.scale)
        if isinstance(x, Scores) and x.softmaxed and isinstance(w, QKV) and w.slot == 2 and w.name == x.name:
            return HeadsOut(x.name, x.heads, x.scale * w.scale)
        return None

    def op_take(self, b, call, args, out_shape):
        x, idx = args
        axis = int(call.attrs.axis)
        if not isinstance(idx, Const) or idx.value.size != 1:
            return None
        i = int(idx.value.reshape(()))
        if isinstance(x, QKV) and x.slot is None and axis == 0:
            return QKV(x.name, x.heads, i)
        if isinstance(x, Act) and axis == len(x.shape) - 1:     # token axis of [1, N, E]
            return self.node("select_token", "select_token", [x.name], (1, x.shape[-1]), index=i)
        return None

    def op_broadcast_to(self, b, call, args, out_shape):
        x = args[0]
        return x if isinstance(x, (QKV, Scores, HeadsOut)) else None

    def op_multiply(self, b, call, args, out_shape):
        x, c = args
        if isinstance(x, Const) or isinstance(c, GeluPart):
            x, c = c, x
        if isinstance(x, GeluPart) and x.stage == "erf+1" and isinstance(c, Act) and c.name == x.x:
            return GeluPart(x.x, "x*(erf+1)")
        if isinstance(x, GeluPart) and x.stage == "x*(erf+1)" and isinstance(c, Const) and _is_scalar(c, 0.5):
            return self.op_nn_gelu(b, call, [Act(x.x, self.g.tensors[x.x].shape)], out_shape)
        return self._scale(x, c, lambda v: v)

    def op_divide(self, b, call, args, out_shape):
        x, c = args
        if isinstance(x, Act) and isinstance(c, Const) and _is_scalar(c, 2 ** 0.5):
            return GeluPart(x.name, "x/sqrt2")
        return self._scale(x, c, lambda v: 1.0 / v)

    def op_erf(self, b, call, args, out_shape):
        x = args[0]
        return GeluPart(x.x, "erf") if isinstance(x, GeluPart) and x.stage == "x/sqrt2" else None

    def _scale(self, x, c, f):
        if not isinstance(c, Const) or c.value.size != 1:
            return None
        s = f(float(c.value.reshape(())))
        if isinstance(x, Scores) and not x.softmaxed:
            return Scores(x.name, x.heads, x.scale * s)
        if isinstance(x, QKV) and x.slot in (0, 1):
            return QKV(x.name, x.heads, x.slot, x.transposed, x.scale * s)
        return None

    def op_nn_softmax(self, b, call, args, out_shape):
        x = args[0]
        if isinstance(x, Scores) and int(call.attrs.axis) in (-1, len(_shape(b.var)) - 1):
            return Scores(x.name, x.heads, x.scale, softmaxed=True)
        return None

    def _attention(self, x: HeadsOut) -> HeadsOut:
        n, three_e = self.g.tensors[x.name].shape
        out = self.node("attention", "attention", [x.name], (n, three_e // 3), heads=x.heads, scale=x.scale)
        return HeadsOut(out.name, x.heads, 1.0, merged=True)

    def op_nn_gelu(self, b, call, args, out_shape):
        x = args[0]
        if not isinstance(x, Act):
            return None
        return self.node("gelu", "gelu", [x.name], self.g.tensors[x.name].shape)

    def op_mean(self, b, call, args, out_shape):
        x = args[0]
        axes = [int(a) for a in call.attrs.axis]
        if isinstance(x, Act) and len(x.shape) == 2 and axes in ([1], [-2]):
            return self.node("mean_tokens", "mean_tokens", [x.name], (1, x.shape[-1]))
        return None


# ------------------------------------------------------------------ clean-up
def _sink_select(g: Graph) -> None:
    """select_token(layernorm(x)) == layernorm(select_token(x)) row for row: normalise one token only."""
    for sel in [n for n in g.nodes if n.op == "select_token"]:
        ln = g.producer(sel.inputs[0])
        if ln is None or ln.op != "layernorm" or len(g.consumers(ln.outputs[0])) != 1:
            continue
        x, ln_out, sel_out = ln.inputs[0], ln.outputs[0], sel.outputs[0]
        for c in g.consumers(sel_out):
            c.inputs = [ln_out if i == sel_out else i for i in c.inputs]
        if sel_out in g.outputs:
            g.outputs = [ln_out if o == sel_out else o for o in g.outputs]
        sel.inputs, ln.inputs = [x], [sel_out]
        g.tensors[ln_out].shape = g.tensors[sel_out].shape
        i, j = g.nodes.index(ln), g.nodes.index(sel)
        g.nodes[i], g.nodes[j] = g.nodes[j], g.nodes[i]


def _relax_to_graph(mod, source: str) -> Graph:
    from tvm import relax
    seq = [relax.transform.FoldConstant(), relax.transform.CanonicalizeBindings(),
           relax.transform.DeadCodeElimination(["main"])]
    for p in seq:
        mod = p(mod)
    g = _Walker(mod["main"], source).run()
    _sink_select(g)
    if g.outputs[0] in g.inputs:
        raise EdgevizError(f"unsupported model ({source}): the output is the input")
    return g


@contextlib.contextmanager
def quiet_native():
    """TVM's C++ logs and torch.export's deprecation warnings say nothing a user can act on;
    keep them off the terminal (fd 2 is redirected, so C++ output is caught too)."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def relax_from_torch(module, example):
    import torch
    from tvm.relax.frontend.torch import from_exported_program
    ep = torch.export.export(module.eval(), (example,))
    return from_exported_program(ep, keep_params_as_input=False)


def import_torch(module, example=None) -> Graph:
    """torch.nn.Module (batch 1 image in, logits out) -> IR, through torch.export and Relax."""
    import torch
    if example is None:
        example = module.example_input() if hasattr(module, "example_input") else None
    if example is None:
        raise EdgevizError("give an example input to import a PyTorch module")
    with torch.no_grad(), quiet_native():
        mod = relax_from_torch(module, example)
        return _relax_to_graph(mod, type(module).__name__)


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
        return _relax_to_graph(mod, Path(path).name)
