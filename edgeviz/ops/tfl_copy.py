"""Data movement of an imported .tflite file: TRANSPOSE, STRIDED_SLICE / SLICE, GATHER with constant
indices, CONCATENATION, PACK, UNPACK and SPLIT are all strided copies. A node holds one or more
pieces; each copies a box of up to 6 dimensions from one input, or from a constant (a class token
concatenated in front), at a start offset with element strides, to the output (start offset and
strides). RESHAPE, SQUEEZE and EXPAND_DIMS move no byte: the importer lets the output name the same
tensor."""
from __future__ import annotations

import numpy as np

from .tfl_base import Args, TflOp, within

MAX_DIMS = 6


class TflCopy(TflOp):
    name = "tfl_copy"
    kernel = "copy"
    hls_kind = "copy"

    def run_int8(self, node, xs):
        out = np.zeros(int(np.prod(node.attrs["out_shape"])), dtype=np.int8)
        for p in node.attrs["pieces"]:
            src = np.ascontiguousarray(node.qattrs[p["const"]] if "const" in p else xs[p["input"]]).reshape(-1)
            box = np.lib.stride_tricks.as_strided(src[p["in_offset"]:], shape=tuple(p["dims"]),
                                                  strides=tuple(p["in_strides"]), writeable=False)
            target = np.lib.stride_tricks.as_strided(out[p["out_offset"]:], shape=tuple(p["dims"]),
                                                     strides=tuple(p["out_strides"]))
            target[...] = box
        return out

    def fits(self, node, in_sizes, out_size):
        for p in node.attrs["pieces"]:
            size = node.qattrs[p["const"]].size if "const" in p else in_sizes[p["input"]]
            if not (within(size, p["in_offset"], p["dims"], p["in_strides"])
                    and within(out_size, p["out_offset"], p["dims"], p["out_strides"])):
                return False
        return out_size == int(np.prod(node.attrs["out_shape"]))

    def scatters_rows(self, node):
        return True

    def _statement(self, fn, node, g, a, ins, out):
        lines = []
        for i, p in enumerate(node.attrs["pieces"]):
            pad = MAX_DIMS - len(p["dims"])
            pa = Args(node, a.consts, a.int_type)
            src = pa.rom(p["const"], node.qattrs[p["const"]], np.int8) if "const" in p else ins[p["input"]]
            args = [f"{src} + {p['in_offset']}", pa.ints("d", [1] * pad + list(p["dims"])),
                    pa.ints("si", [0] * pad + list(p["in_strides"])), f"{out} + {p['out_offset']}",
                    pa.ints("so", [0] * pad + list(p["out_strides"]))]
            lines.append("{ " + " ".join(pa.decls) + f" {fn}({', '.join(args)}); }}")
        return lines

    def hls_dims(self, node, g):
        return {"c": g.tensors[node.outputs[0]].nbytes}


COPY = TflCopy()
