"""Post-training int8 quantization and the two reference interpreters (float and int8).

`run_int8` is the specification the firmware and the HLS C simulation must equal byte for byte.
"""
from __future__ import annotations

import numpy as np

from .ir import Graph
from .ops import OPS
from .ops.base import quantize_input


def prefix_rows(g: Graph) -> int:
    """The constant token rows the patch embedding puts first (cls, distillation, register tokens)."""
    return max((OPS[n.op].prefix_rows(n) for n in g.nodes), default=0)


def prefix_scaled(g: Graph) -> list[str]:
    """The residual-stream tensors whose prefix rows get a scale of their own: written by an op that
    may (patch embedding, residual add, a pre-norm LayerNorm), read only by ops that take the two row
    groups apart (add, LayerNorm, token selection, a mean that leaves the prefix out)."""
    k = prefix_rows(g)
    if not k:
        return []
    out = []
    for n in g.nodes:
        t = n.outputs[0]
        if not OPS[n.op].writes_prefix_scaled or g.tensors[t].rows <= k or t in g.outputs:
            continue
        readers = g.consumers(t)
        if readers and all(OPS[r.op].reads_prefix_scaled(r, k) for r in readers):
            out.append(t)
    return out


def run_float(g: Graph, x: np.ndarray, stats: dict | None = None) -> dict[str, np.ndarray]:
    """Float64 execution of the IR for one input [C, H, W] or a batch [B, C, H, W]; records |max| per
    tensor into stats (and per row group: name#prefix, name#rest)."""
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
        k = prefix_rows(g)
        for name, v in env.items():
            stats[name] = max(stats.get(name, 0.0), float(np.abs(v).max()))
            if k and name != g.inputs[0] and v.shape[-2] > k:
                for key, part in ((name + "#prefix", v[..., :k, :]), (name + "#rest", v[..., k:, :])):
                    stats[key] = max(stats.get(key, 0.0), float(np.abs(part).max()))
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


def quantize(g: Graph, calib: np.ndarray | None, prefix_scales: bool = True) -> Graph:
    """Assign per-tensor scales from calibration data and integer parameters to every node.

    prefix_scales: the residual stream's prefix-token rows get a scale of their own (prefix_scaled).

    calib=None gives unit ranges: the integer parameters then have the right sizes but no meaning,
    which is all the memory planner needs. A prequantized graph (an imported int8 file) keeps the
    file's own parameters: nothing is calibrated.
    """
    if g.prequantized:
        return g
    stats = calibrate(g, calib) if calib is not None else _UnitRanges()
    for name, t in g.tensors.items():
        t.scale = max(stats.get(name, 0.0) if calib is not None else 1.0, 1e-6) / 127.0
        t.prefix_rows, t.prefix_scale = 0, None
    k = prefix_rows(g)
    for name in prefix_scaled(g) if prefix_scales else []:
        t = g.tensors[name]
        t.prefix_rows = k
        if calib is not None:
            t.prefix_scale = max(stats[name + "#prefix"], 1e-6) / 127.0
            t.scale = max(stats[name + "#rest"], 1e-6) / 127.0
        else:
            t.prefix_scale = t.scale
    for n in g.nodes:                       # what the op's integer parameters can express
        floor = OPS[n.op].min_output_scale(n, g)
        if floor:
            t = g.tensors[n.outputs[0]]
            t.scale = max(t.scale, floor)
            t.prefix_scale = None if t.prefix_scale is None else max(t.prefix_scale, floor)
    for n in g.nodes:                       # selection does not requantise: the selected row's scale
        if OPS[n.op].keeps_scale:
            x = g.tensors[n.inputs[0]]
            g.tensors[n.outputs[0]].scale = x.row_scales()[0 if n.attrs.get("index", 0) < x.prefix_rows else 1]
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
    """A float image [C, H, W] as the model's int8 input, in the input tensor's layout."""
    t = g.tensors[g.inputs[0]]
    x = np.asarray(x, dtype=np.float64)
    if g.input_layout == "nhwc":
        x = x.transpose(1, 2, 0)
    return quantize_input(x, t.scale, t.zero_point).reshape(t.shape)


def dequantize_output(g: Graph, y: np.ndarray) -> np.ndarray:
    t = g.tensors[g.outputs[0]]
    return (y.astype(np.float64) - t.zero_point) * t.scale


def float_logits(g: Graph, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Float outputs [B, classes] of the IR for float images [B, C, H, W]."""
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([run_float(g, x[i:i + batch])[g.outputs[0]].reshape(len(x[i:i + batch]), -1)
                           for i in range(0, len(x), batch)])


def reference_outputs(g: Graph, x: np.ndarray):
    """For float images [B, C, H, W]: (int8 inputs, int8 reference outputs, float outputs). A
    prequantized graph (an imported .tflite) has no float graph: its dequantized reference stands in
    (validate puts its oracle's outputs there)."""
    xq = np.stack([quantize_image(g, xi) for xi in x])
    want = np.stack([run_int8(g, q).reshape(-1) for q in xq])
    return xq, want, (dequantize_output(g, want) if g.prequantized else float_logits(g, x))
