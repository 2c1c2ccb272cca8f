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


# ---------------------------------------------------------------- copies of copies, read in place

def source_index(node, n_in: int) -> np.ndarray | None:
    """For a copy of one piece from its one input that writes every output byte: the input element
    each output element comes from (int64, flat), by walking an index array through the piece; else
    None."""
    ps = node.attrs["pieces"]
    if len(ps) != 1 or "const" in ps[0] or len(node.inputs) != 1:
        return None
    p = ps[0]
    n_out = int(np.prod(node.attrs["out_shape"]))
    if int(np.prod(p["dims"])) != n_out:
        return None
    src = np.arange(n_in, dtype=np.int64)
    out = np.full(n_out, -1, dtype=np.int64)
    box = np.lib.stride_tricks.as_strided(src[p["in_offset"]:], shape=tuple(p["dims"]),
                                          strides=tuple(s * 8 for s in p["in_strides"]), writeable=False)
    target = np.lib.stride_tricks.as_strided(out[p["out_offset"]:], shape=tuple(p["dims"]),
                                             strides=tuple(s * 8 for s in p["out_strides"]))
    target[...] = box
    return None if (out < 0).any() else out


def affine(values: np.ndarray) -> tuple[int, list[int]] | None:
    """(base, strides) with values[idx] == base + sum(idx * strides) over the whole box, or None."""
    base = int(values.reshape(-1)[0])
    strides = []
    for k, d in enumerate(values.shape):
        unit = [0] * values.ndim
        if d > 1:
            unit[k] = 1
        strides.append(int(values[tuple(unit)]) - base if d > 1 else 0)
    idx = np.indices(values.shape, dtype=np.int64)
    want = base + sum(i * s for i, s in zip(idx, strides))
    return (base, strides) if np.array_equal(want, values) else None


def read_through(g, node, i: int, dims, strides, offset: int = 0):
    """Where operand i of `node`, read as a box (dims, element strides from offset), is a copy's
    output that nothing else reads: that copy and the same box read from its input instead, (copy,
    tensor, offset, strides), if that is one strided box too; else None."""
    t = node.inputs[i]
    prod = next((k for k in g.nodes if t in k.outputs), None)
    if prod is None or prod.op != "tfl_copy" or t in g.outputs:
        return None
    if sum(t in k.inputs for k in g.nodes) != 1 or node.inputs.count(t) != 1:
        return None
    src = prod.inputs[0] if len(prod.inputs) == 1 else None
    m = source_index(prod, g.tensors[src].nbytes) if src else None
    if m is None:
        return None
    box = np.lib.stride_tricks.as_strided(m[offset:], shape=tuple(dims), strides=tuple(s * 8 for s in strides),
                                          writeable=False)
    fit = affine(np.ascontiguousarray(box))
    if fit is None:
        return None
    return prod, src, fit[0], fit[1]


def fuse_copies(g) -> int:
    """A copy whose output only another copy reads (a STRIDED_SLICE then a TRANSPOSE) becomes one
    copy, where each piece of the second, read through the first, is one strided box of the
    first's input (checked by walking index arrays). Returns how many copies were removed."""
    removed = 0
    changed = True
    while changed:
        changed = False
        for node in g.nodes:
            if node.op != "tfl_copy" or len(node.inputs) != 1:
                continue
            ps = node.attrs["pieces"]
            if len(ps) != 1 or "const" in ps[0]:
                continue
            p = ps[0]
            got = read_through(g, node, 0, p["dims"], p["in_strides"], p["in_offset"])
            if got is None:
                continue
            first, src, base, strides = got
            if not within(g.tensors[src].nbytes, base, p["dims"], strides):
                continue
            g.tensors.pop(node.inputs[0], None)
            node.inputs = [src]
            node.attrs = {**node.attrs, "pieces": [{**p, "in_offset": base, "in_strides": strides}]}
            g.nodes[:] = [k for k in g.nodes if k is not first]
            removed += 1
            changed = True
            break
    return removed
