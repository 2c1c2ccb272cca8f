"""Any element-wise function of one tensor (GELU in erf or tanh form, ReLU, SiLU, x*sigmoid(1.702x),
a leftover scale...) as a 256-entry int8 lookup table: the input has 256 possible values, so the
table is exact and no float runs on the device.

The frontend reads the function from the graph as an expression (`fn`, nested tuples over "x", see
`evaluate`), so a model's own spelling of its activation is kept whatever it is; `kind` only names it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from .. import intmath
from .base import OPS, Elementwise


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))          # no overflow warning for large |x|


def _gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


# Expression leaves: ("x",) is the input, ("c", value) a constant; every other node is (name, *operands).
FUNCTIONS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "max": np.maximum, "min": np.minimum, "erf": erf, "tanh": np.tanh, "sigmoid": _sigmoid, "exp": np.exp,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "neg": np.negative, "abs": np.abs,
    "relu": lambda x: np.maximum(x, 0.0), "gelu": _gelu, "gelu_tanh": _gelu_tanh, "silu": lambda x: x * _sigmoid(x),
}
X = ("x",)
GELU = ("gelu", X)


def evaluate(fn: tuple, x):
    """The expression `fn` at x (float64); NaN and infinities become the nearest finite values."""
    def ev(e):
        if e[0] == "x":
            return x
        if e[0] == "c":
            return np.float64(e[1])
        return FUNCTIONS[e[0]](*(ev(a) for a in e[1:]))
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.asarray(ev(fn), dtype=np.float64))


def scale_of(fn: tuple | None) -> float | None:
    """c if fn is x times (or over) constants only, else None; None for no function means 1."""
    if fn is None or fn == X:
        return 1.0
    if fn[0] in ("mul", "div") and len(fn) == 3:
        a, b = fn[1], fn[2]
        if fn[0] == "mul" and a[0] == "c":
            a, b = b, a
        inner = scale_of(a)
        if inner is not None and b[0] == "c":
            return inner * (b[1] if fn[0] == "mul" else 1.0 / b[1])
    return None


_KNOWN = {"gelu": _gelu, "gelu_tanh": _gelu_tanh, "relu": FUNCTIONS["relu"], "silu": FUNCTIONS["silu"],
          "quick_gelu": lambda x: x * _sigmoid(1.702 * x), "sigmoid": _sigmoid, "tanh": np.tanh}


def kind_of(fn: tuple) -> str:
    """A readable name for the function, found by its values (any spelling of GELU is 'gelu')."""
    t = np.linspace(-8, 8, 641)
    y = evaluate(fn, t)
    for name, f in _KNOWN.items():
        if np.allclose(y, f(t), atol=1e-5, rtol=1e-5):
            return name
    return "elementwise"


class Activation(Elementwise):
    name = "activation"
    rowwise_inputs = (0,)
    inplace = True

    def run_float(self, node, xs):
        return evaluate(node.attrs.get("fn", GELU), xs[0])

    def quantize(self, node, g, stats):
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        fn = node.attrs.get("fn", GELU)
        node.qattrs = {"lut": intmath.make_lut(lambda v: evaluate(fn, v), s_x, s_y)}

    def run_int8(self, node, xs):
        return intmath.apply_lut(xs[0], node.qattrs["lut"])

    def fold_epilogue(self, node, g):
        """The table runs in the producer's requantisation epilogue (the linear before GELU)."""
        src = g.producer(node.inputs[0])
        if (src is None or not OPS[src.op].takes_table_epilogue or len(g.consumers(src.outputs[0])) != 1
                or "lut" in src.qattrs):
            return
        src.qattrs["lut"] = node.qattrs["lut"]
        dead = src.outputs[0]
        src.outputs = list(node.outputs)
        g.nodes.remove(node)
        del g.tensors[dead]

    hls_kind = "lut"

    def emit_hls(self, node, e, ins, out, rows, chained):
        n = rows * e.g.tensors[node.outputs[0]].channels
        return [f"ev_lut<{n}, {e.reuse[node.name]}>({ins[0]}, {out}, {e.c.add(node, 'lut', node.qattrs['lut'], np.int8)});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n = g.tensors[node.inputs[0]].channels
        return [f"ev_lut_s8({ins[0]}, {n} * {rows}, {c.const(node.name + '.lut', node.qattrs['lut'])}, {out});"]


OP = Activation()
