"""GELU (exact erf form) as a 256-entry int8 lookup table: no float at run time."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from .. import intmath
from .base import Op

def gelu(x):
    return 0.5 * x * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


class Gelu(Op):
    name = "gelu"
    rowwise_inputs = (0,)

    def run_float(self, node, xs):
        return gelu(xs[0])

    def quantize(self, node, g, stats):
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        node.qattrs = {"lut": intmath.make_lut(gelu, s_x, s_y)}

    def run_int8(self, node, xs):
        return intmath.apply_lut(xs[0], node.qattrs["lut"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        n = g.tensors[node.inputs[0]].channels
        return [f"ev_lut_s8({ins[0]}, {n} * {rows}, {c.const(node.name + '.lut', node.qattrs['lut'])}, {out});"]


OP = Gelu()
