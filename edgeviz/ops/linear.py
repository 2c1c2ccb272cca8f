"""Linear layer y = x W^T + b, int8 with per-channel weights and an optional GELU table epilogue."""
from __future__ import annotations

import numpy as np

from .. import intmath
from .base import Op, quantize_weights, requant_params


class Linear(Op):
    name = "linear"
    rowwise_inputs = (0,)

    def run_float(self, node, xs):
        y = xs[0] @ node.attrs["w"].T
        return y + node.attrs["b"] if node.attrs.get("b") is not None else y

    def quantize(self, node, g, stats):
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        wq, s_w = quantize_weights(node.attrs["w"])
        b = node.attrs.get("b")
        b = np.zeros(wq.shape[0]) if b is None else b
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

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        o, k = q["w"].shape
        lut = c.const(f"{node.name}.lut", q["lut"]) if "lut" in q else "NULL"
        return [f"ev_linear_s8({ins[0]}, {k}, {rows}, {k}, {o}, {c.const(node.name + '.w', q['w'])}, "
                f"{c.const(node.name + '.bias', q['bias'])}, 0, {c.const(node.name + '.mult', q['mult'])}, "
                f"{c.const(node.name + '.shift', q['shift'])}, {lut}, {out}, {o});"]


OP = Linear()
