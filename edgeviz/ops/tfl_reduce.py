"""An imported .tflite file's row reductions, in TFLite's integer semantics (edgeviz/tflmath.py):
SOFTMAX over the last axis (fixed point; the exponential of each of the 256 possible differences to
the row maximum is a table made at import, so the kernel has no exp and no division) and MEAN over
a run of adjacent axes (the input seen as [outer, reduced, inner])."""
from __future__ import annotations

import numpy as np

from .. import tflmath
from .tfl_base import TflOp


class TflSoftmax(TflOp):
    name = "tfl_softmax"
    kernel = "softmax"
    hls_kind = "softmax"
    inplace = True

    def run_int8(self, node, xs):
        q = node.qattrs
        return tflmath.softmax(xs[0], q["exp"], q["diff_min"])

    def call(self, node, g, a, ins, out):
        t = g.tensors[node.inputs[0]]
        return [ins[0], str(t.rows), str(t.channels), a.rom("exp", node.qattrs["exp"], np.int32),
                str(node.qattrs["diff_min"]), out]

    @staticmethod
    def exp_q12(node, c) -> str:
        """The C kernel's sums add each exp in Q12.19, rounding_divide_by_pot(exp, 12): that table too
        (C only), made once into flash instead of per call."""
        return c.const(node.name + ".e12", tflmath.rounding_divide_by_pot(node.qattrs["exp"], 12).astype(np.int32))

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        lines = super().emit_c(node, g, c, ins, out, rows, row0, scratch)
        return [lines[0].replace(f", {out});", f", {self.exp_q12(node, c)}, {out});")]

    def flash_bytes(self, node):
        return super().flash_bytes(node) + node.qattrs["exp"].size * 4

    def hls_dims(self, node, g):
        t = g.tensors[node.inputs[0]]
        return {"rows": t.rows, "len": t.channels}


class TflMean(TflOp):
    name = "tfl_mean"
    kernel = "mean"
    hls_kind = "mean"

    def run_int8(self, node, xs):
        a, q = node.attrs, node.qattrs
        outer, red, inner = a["split"]
        x = np.swapaxes(xs[0].reshape(outer, red, inner), 1, 2)
        return tflmath.mean(x, red, q["x_zp"], q["y_zp"], q["m"], q["shift"])

    def macs(self, node, g):
        return g.tensors[node.inputs[0]].nbytes

    def fits(self, node, in_sizes, out_size):
        outer, red, inner = node.attrs["split"]
        return in_sizes[0] == outer * red * inner and out_size == outer * inner

    def call(self, node, g, a, ins, out):
        q = node.qattrs
        return [ins[0], *map(str, (*node.attrs["split"], q["x_zp"], q["y_zp"], q["m"], q["shift"])), out]

    def hls_dims(self, node, g):
        outer, red, inner = node.attrs["split"]
        return {"tokens": red, "c": outer * inner}


SOFTMAX, MEAN = TflSoftmax(), TflMean()
