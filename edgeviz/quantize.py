"""Post-training int8 quantization and the two reference interpreters (float and int8).

`run_int8` is the specification the firmware and the HLS C simulation must equal byte for byte.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph
from .ops import OPS
from .ops.base import quantize_input


def run_float(g: Graph, x: np.ndarray, stats: dict | None = None) -> dict[str, np.ndarray]:
    """Float64 execution of the IR for one input [C, H, W] or a batch [B, C, H, W]; records |max| per
    tensor into stats."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:x.ndim - len(g.tensors[g.inputs[0]].shape)]
    env = {g.inputs[0]: x}
    for n in g.nodes:
        xs = [env[i] for i in n.inputs]
        op = OPS[n.op]
        env[n.outputs[0]] = op.run_float(n, xs).reshape(lead + g.tensors[n.outputs[0]].shape)
        if stats is not None:
            op.calibrate(n, xs, stats)
    if stats is not None:
        for k, v in env.items():
            stats[k] = max(stats.get(k, 0.0), float(np.abs(v).max()))
    return env


def calibrate(g: Graph, xs: np.ndarray, batch: int = 16) -> dict:
    stats: dict = {}
    xs = np.asarray(xs, dtype=np.float64)
    for i in range(0, len(xs), batch):
        run_float(g, xs[i:i + batch], stats)
    return stats


class _UnitRanges(dict):
    """Calibration stand-in when only sizes matter (memory planning): every range is 1.0."""

    def __missing__(self, key):
        return 1.0


def quantize(g: Graph, calib: np.ndarray | None) -> Graph:
    """Assign per-tensor scales from calibration data and integer parameters to every node.

    calib=None gives unit ranges: the integer parameters then have the right sizes but no meaning,
    which is all the memory planner needs.
    """
    stats = calibrate(g, calib) if calib is not None else _UnitRanges()
    for name, t in g.tensors.items():
        t.scale = max(stats.get(name, 0.0) if calib is not None else 1.0, 1e-6) / 127.0
    for n in g.nodes:                       # selection does not requantise
        if OPS[n.op].keeps_scale:
            g.tensors[n.outputs[0]].scale = g.tensors[n.inputs[0]].scale
    for n in g.nodes:
        OPS[n.op].quantize(n, g, stats)
    return g


def run_int8(g: Graph, xq: np.ndarray, keep: bool = False) -> dict[str, np.ndarray] | np.ndarray:
    """int8 execution; xq is the already-quantized input. Returns the output (or every tensor)."""
    env = {g.inputs[0]: np.asarray(xq, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape)}
    for n in g.nodes:
        y = OPS[n.op].run_int8(n, [env[i] for i in n.inputs])
        env[n.outputs[0]] = np.asarray(y, dtype=np.int8).reshape(g.tensors[n.outputs[0]].shape)
    return env if keep else env[g.outputs[0]]


def quantize_image(g: Graph, x: np.ndarray) -> np.ndarray:
    return quantize_input(np.asarray(x, dtype=np.float64), g.tensors[g.inputs[0]].scale)


def dequantize_output(g: Graph, y: np.ndarray) -> np.ndarray:
    return y.astype(np.float64) * g.tensors[g.outputs[0]].scale


def float_logits(g: Graph, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Float outputs [B, classes] of the IR for float images [B, C, H, W]."""
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([run_float(g, x[i:i + batch])[g.outputs[0]].reshape(len(x[i:i + batch]), -1)
                           for i in range(0, len(x), batch)])


def reference_outputs(g: Graph, x: np.ndarray):
    """For float images [B, C, H, W]: (int8 inputs, int8 reference outputs, float outputs)."""
    xq = np.stack([quantize_image(g, xi) for xi in x])
    want = np.stack([run_int8(g, q).reshape(-1) for q in xq])
    return xq, want, float_logits(g, x)
