"""What the ops of an imported .tflite file share (edgeviz/ops/tfl_*.py): TFLite's integer semantics
(edgeviz/tflmath.py), parameters read from the file (nothing to quantize), and one call per node
with the same arguments in C (firmware/kernels/ev_tfl.c, ev_tfl_<kernel>_s8) and in HLS
(hls/ev_tfl.h, ev_tfl_<kernel>): an op lists its arguments once, in `call`."""
from __future__ import annotations

import numpy as np

from .base import Op


class Args:
    """Turns constants into the backend's arrays: C flash arrays (CWriter) or HLS ROMs (Consts)."""

    def __init__(self, node, consts, int_type: str):
        self.node, self.consts, self.int_type = node, consts, int_type
        self.decls: list[str] = []

    def rom(self, key: str, value, dtype) -> str:
        if hasattr(self.consts, "const"):                       # backends/c_codegen.CWriter
            return self.consts.const(f"{self.node.name}.{key}", np.asarray(value, dtype=dtype))
        return self.consts.add(self.node, key, value, dtype)    # hls/generate.Consts

    def ints(self, key: str, values) -> str:
        """A small constant int array (shapes, strides) declared just before the call."""
        self.decls.append(f"static const {self.int_type} {key}[{len(values)}] = {{{', '.join(str(int(v)) for v in values)}}};")
        return key


def within(size: int, offset: int, dims, strides) -> bool:
    """Whether a strided box (element offset, dims, element strides) lies inside `size` elements."""
    if any(int(d) <= 0 for d in dims):
        return True
    lo = offset + sum((int(d) - 1) * min(int(s), 0) for d, s in zip(dims, strides))
    hi = offset + sum((int(d) - 1) * max(int(s), 0) for d, s in zip(dims, strides))
    return 0 <= lo and hi < size


class TflOp(Op):
    """An op of an imported int8 file: no float graph behind it, parameters already integer.
    Subclasses name their kernel and list its arguments in `call`; the serial HLS datapath runs one
    operation a cycle (hls_reuse keeps one lane)."""
    kernel = ""
    hls_kind = ""

    def run_float(self, node, xs):
        raise NotImplementedError("an imported int8 model has no float graph")

    def fits(self, node, in_sizes: list[int], out_size: int) -> bool:
        """Whether what the kernel reads and writes lies inside its tensors (in elements): a damaged
        file's shapes must not make the reference or the C read or write past a buffer."""
        return all(s == out_size for s in in_sizes)

    def call(self, node, g, a: Args, ins: list[str], out: str) -> list[str]:
        raise NotImplementedError

    def _statement(self, fn: str, node, g, a: Args, ins, out) -> list[str]:
        args = self.call(node, g, a, ins, out)
        body = f"{fn}({', '.join(args)});"
        return ["{ " + " ".join(a.decls) + " " + body + " }"] if a.decls else [body]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        return self._statement(f"ev_tfl_{self.kernel}_s8", node, g, Args(node, c, "int32_t"), ins, out)

    hls_template = True

    def emit_hls(self, node, e, ins, out, rows, chained):
        return self._statement(f"ev_tfl_{self.kernel}", node, e.g, Args(node, e.c, "int"), ins, out)

    def hls_ops(self, node, g, chained):
        return max(1, self.macs(node, g) or g.tensors[node.outputs[0]].nbytes)

    def hls_reuse(self, node, g, chained, r):
        return self.hls_ops(node, g, chained)

    def hls_spec(self, node, g, chained):
        return self.hls_kind, self.hls_dims(node, g)

    def hls_dims(self, node, g) -> dict:
        return {"n": g.tensors[node.outputs[0]].nbytes}
