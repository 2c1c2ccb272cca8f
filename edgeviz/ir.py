"""edgeviz's graph IR: a list of nodes over named tensors, batch dimension dropped.

The frontend builds it in float (weights as float arrays in `attrs`); quantize.py then fills
`Tensor.scale` and each node's integer parameters (`qattrs`). Token matrices are 2-D [rows, channels];
the model input is the image [C, H, W].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    scale: float | None = None          # int8 symmetric scale, set by quantization
    # int8 zero point: 0 in edgeviz's own (symmetric) models; an imported .tflite keeps its file's
    zero_point: int = 0
    # The first prefix_rows rows (cls / distillation / register tokens on the residual stream) at a
    # scale of their own: libraries start those tokens near zero, and in the patch rows' scale they
    # would hold a few int8 levels that every LayerNorm of them amplifies. None: one scale.
    prefix_rows: int = 0
    prefix_scale: float | None = None

    def row_scales(self) -> tuple[float, float]:
        """(scale of the prefix rows, scale of the other rows)."""
        return (self.prefix_scale if self.prefix_scale is not None else self.scale), self.scale

    @property
    def nbytes(self) -> int:            # int8 everywhere
        return int(np.prod(self.shape))

    @property
    def rows(self) -> int:
        return int(np.prod(self.shape[:-1])) if len(self.shape) > 1 else 1

    @property
    def channels(self) -> int:
        return self.shape[-1]


@dataclass
class Node:
    op: str                              # key into edgeviz.ops.OPS
    name: str                            # readable location, e.g. "blocks.0.fc1"
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)    # float parameters and shape attributes
    qattrs: dict = field(default_factory=dict)   # integer parameters after quantization


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # how image files become the input (edgeviz.inputs.preprocessing); set by the build
    preprocess: dict | None = None
    # an imported int8 file (.tflite) arrives with its integer parameters: nothing to calibrate, and
    # its numbers follow that format's semantics (edgeviz.tflmath), not edgeviz's
    prequantized: bool = False
    # the file the graph came from, for an oracle that runs it (the LiteRT interpreter for .tflite)
    source: str | None = None
    # how the input tensor lays out an image: "chw" (edgeviz, PyTorch, ONNX) or "nhwc" (TFLite)
    input_layout: str = "chw"

    def input_chw(self) -> tuple[int, int, int]:
        """The input image as (channels, height, width), whatever the tensor's layout."""
        shape = self.tensors[self.inputs[0]].shape
        if self.input_layout == "nhwc":
            h, w, c = shape[-3:]
            return int(c), int(h), int(w)
        return tuple(int(s) for s in shape[-3:])

    def add_tensor(self, name: str, shape) -> Tensor:
        base, i = name, 1
        while name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        t = Tensor(name, tuple(int(s) for s in shape))
        self.tensors[name] = t
        return t

    def add_node(self, op: str, name: str, inputs: list[str], out_shape, attrs=None) -> Tensor:
        out = self.add_tensor(name.replace(".", "_"), out_shape)
        self.nodes.append(Node(op, name, list(inputs), [out.name], dict(attrs or {})))
        return out

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def summary(self) -> str:
        lines = []
        for n in self.nodes:
            ins = ", ".join(f"{i}{list(self.tensors[i].shape)}" for i in n.inputs)
            outs = ", ".join(f"{o}{list(self.tensors[o].shape)}" for o in n.outputs)
            lines.append(f"{n.name:28s} {n.op:14s} {ins} -> {outs}")
        return "\n".join(lines)
