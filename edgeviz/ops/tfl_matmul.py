"""An imported .tflite file's matrix products, in TFLite's integer semantics (edgeviz/tflmath.py):
FULLY_CONNECTED, CONV_2D and BATCH_MATMUL. Their integer parameters come from the file
(edgeviz/tflite/importer.py), so quantize() has nothing to do."""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import tflmath
from .tfl_base import Args, TflOp, within
from .tfl_copy import affine, read_through


def widened_pairs(f: np.ndarray) -> np.ndarray | None:
    """Filters / weight rows f [o, k] as the M7 path's 4 x 2 tiles read them (ev__widen2's layout,
    ev_dsp.h), made once at compile time into flash instead of per call or per block: channel pairs
    (j0, j0 + 1) as ev_tfl__pair walks them, per group of 4 inputs t..t+3 the int16 values (a_t,
    a_t+2, b_t, b_t+2, a_t+1, a_t+3, b_t+1, b_t+3), a and b the pair's rows, two to a little-endian
    word (4 words a group). None where the kernels do not read them (k not a multiple of 4, or a
    single channel)."""
    o, k = f.shape
    if k % 4 or o < 2:
        return None
    f = f.astype(np.int16)
    pairs = []
    for j in range(0, o, 2):
        j0 = j if j + 1 < o else o - 2
        a, b = f[j0].reshape(-1, 4), f[j0 + 1].reshape(-1, 4)
        pairs.append(np.stack([a[:, 0], a[:, 2], b[:, 0], b[:, 2], a[:, 1], a[:, 3], b[:, 1], b[:, 3]], axis=1))
    return np.concatenate(pairs).reshape(-1).astype("<i2").view("<i4")


class _PreWidened:
    """An op whose DSP kernels read its weights pre-widened from a second copy in flash (widened_pairs),
    kept where Switches.widen_weights asks (the M4, M7 and M33). `pairs` says what that copy would be."""

    def pairs(self, node) -> np.ndarray | None:
        raise NotImplementedError

    def widened(self, node) -> np.ndarray | None:
        """The pre-widened weights the C holds: only where the target's kernels read them."""
        return self.pairs(node) if node.attrs.get("widened") else None

    def widen_weights(self, node, g):
        wide = self.pairs(node)
        node.attrs["widened"] = wide is not None
        return 0 if wide is None else wide.nbytes

    def flash_bytes(self, node):
        wide = self.widened(node)
        return super().flash_bytes(node) + (0 if wide is None else wide.nbytes)


class TflFullyConnected(_PreWidened, TflOp):
    """y[n, o] = clamp(round((bias'[o] + sum_k x[n, k] w[o, k]) * scale[o]) + y_zp), the reference
    kernel's double-precision requantisation (run in integers by the kernels: tflmath.double_parts);
    bias' = bias - x_zp sum_k w[o, k] (the input's zero point folded in once: the same int32 sum)."""
    name = "tfl_fully_connected"
    kernel = "fc"
    hls_kind = "linear"

    def run_int8(self, node, xs):
        q = node.qattrs
        k = q["w"].shape[1]
        x = xs[0].reshape(-1, k)
        return tflmath.fully_connected(x, q["w"], q["bias"], 0, q["y_zp"], q["scale"], q["lo"], q["hi"])

    def macs(self, node, g):
        return g.tensors[node.inputs[0]].nbytes // node.qattrs["w"].shape[1] * node.qattrs["w"].size

    def fits(self, node, in_sizes, out_size):
        o, k = node.qattrs["w"].shape
        return in_sizes[0] % k == 0 and out_size == in_sizes[0] // k * o

    def call(self, node, g, a, ins, out):
        q = node.qattrs
        o, k = q["w"].shape
        m, sh = tflmath.double_parts(q["scale"])
        return [ins[0], str(g.tensors[node.inputs[0]].nbytes // k), str(k), str(o), a.rom("w", q["w"], np.int8),
                a.rom("bias", q["bias"], np.int32), a.rom("scale_m", m, np.int64), a.rom("scale_sh", sh, np.int32),
                str(q["y_zp"]), str(q["lo"]), str(q["hi"]), out]

    def fixed_point(self, node):
        """Per channel (m, r, t) of tflmath.fc_fixed_point, or None: the C kernels' fixed-point
        requantisation, proven equal to the double product over every reachable accumulator."""
        q = node.qattrs
        return tflmath.fc_fixed_point(q["scale"], q["bias"], q["w"].shape[1], q["y_zp"], q["lo"], q["hi"])

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        fp = self.fixed_point(node)
        if fp is None:
            return super().emit_c(node, g, c, ins, out, rows, row0, scratch)
        q = node.qattrs
        o, k = q["w"].shape
        a = Args(node, c, "int32_t")
        wide = self.widened(node)
        fw = "NULL" if wide is None else c.const(f"{node.name}.wide", wide)     # the DSP path's weight pairs
        args = [ins[0], str(g.tensors[node.inputs[0]].nbytes // k), str(k), str(o), a.rom("w", q["w"], np.int8),
                a.rom("bias", q["bias"], np.int32), a.rom("q", fp.reshape(-1), np.int32), fw, str(q["lo"]), str(q["hi"]),
                out]
        return [f"ev_tfl_fcq_s8({', '.join(args)});"]

    def pairs(self, node):
        """The weight pairs pre-widened, where the fixed-point kernel (the one that reads them) runs."""
        return widened_pairs(node.qattrs["w"]) if self.fixed_point(node) is not None else None

    def hls_dims(self, node, g):
        o, k = node.qattrs["w"].shape
        return {"rows": g.tensors[node.inputs[0]].nbytes // k, "in": k, "out": o}


class TflConv(_PreWidened, TflOp):
    """2-D convolution over an NHWC image (the patch embedding a converter writes as CONV_2D): taps
    outside the image contribute 0; TFLite's integer requantisation per output channel. bias holds
    bias - x_zp sum(filter) (the importer folds the input's zero point in), so the patch of each
    output pixel, taps outside the image at the zero point, is dotted with the filters as is. The C
    kernel gathers each patch into scratch first."""
    name = "tfl_conv"
    kernel = "conv"
    hls_kind = "linear"

    def run_int8(self, node, xs):
        a, q = node.attrs, node.qattrs
        cols = _im2col(xs[0].reshape(a["in_hwc"]), a, q["x_zp"])
        o = q["w"].shape[0]
        acc = cols.astype(np.int64) @ q["w"].reshape(o, -1).astype(np.int64).T + q["bias"]
        return tflmath.requantize_acc(acc.astype(np.int32), q["m"], q["shift"], q["y_zp"], q["lo"], q["hi"])

    def macs(self, node, g):
        oh, ow = node.attrs["out_hw"]
        return oh * ow * node.qattrs["w"].size

    def scratch_bytes(self, node, g):
        return int(node.qattrs["w"][0].size)

    def fits(self, node, in_sizes, out_size):
        (oh, ow), o = node.attrs["out_hw"], node.qattrs["w"].shape[0]
        return in_sizes[0] == int(np.prod(node.attrs["in_hwc"])) and out_size == oh * ow * o

    def call(self, node, g, a, ins, out):
        at, q = node.attrs, node.qattrs
        h, w, ch = at["in_hwc"]
        o, kh, kw, _ = q["w"].shape
        (oh, ow), (sh, sw), (pt, pl) = at["out_hw"], at["stride"], at["pad"]
        return [ins[0], *map(str, (h, w, ch)), a.rom("w", q["w"], np.int8), *map(str, (o, kh, kw, sh, sw, pt, pl, oh, ow)),
                a.rom("bias", q["bias"], np.int32), a.rom("m", q["m"], np.int32), a.rom("shift", q["shift"], np.int32),
                *map(str, (q["x_zp"], q["y_zp"], q["lo"], q["hi"])), out]

    def pairs(self, node):
        """The filters pre-widened for the DSP path's quads of pixels (widened_pairs, [o, kh kw c]);
        None where that path does not run (a filter row kw * c not a multiple of 4 bytes)."""
        w = node.qattrs["w"]
        o, _, kw, c = w.shape
        return None if (kw * c) % 4 else widened_pairs(w.reshape(o, -1))

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        lines = super().emit_c(node, g, c, ins, out, rows, row0, scratch)
        wide = self.widened(node)
        fw = "NULL" if wide is None else c.const(f"{node.name}.wide", wide)
        # the pre-widened filters (C only: the HLS template reads w) and the C kernel's patch buffer
        return [lines[0].replace(f", {out});", f", {fw}, {scratch}, {out});")]

    def hls_dims(self, node, g):
        o = node.qattrs["w"].shape[0]
        oh, ow = node.attrs["out_hw"]
        return {"rows": oh * ow, "in": node.qattrs["w"][0].size, "out": o}


def _im2col(x: np.ndarray, a: dict, pad_value: int) -> np.ndarray:
    """[oh * ow, kh * kw * c] patches of an [h, w, c] image, out-of-image taps = pad_value."""
    kh, kw = a["kernel"]
    (oh, ow), (sh, sw), (pt, pl) = a["out_hw"], a["stride"], a["pad"]
    h, w, c = x.shape
    big = np.full((h + kh + sh * oh, w + kw + sw * ow, c), pad_value, dtype=np.int64)
    big[pt:pt + h, pl:pl + w] = x
    rows = [big[i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(-1) for i in range(oh) for j in range(ow)]
    return np.stack(rows)


class TflBatchMatmul(TflOp):
    """out[b] = a[b] @ b[b] with zero points on both, batch dimensions broadcast; adj_x / adj_y read an
    operand transposed. The kernels walk both operands by strides, so no operand is copied."""
    name = "tfl_batch_matmul"
    kernel = "bmm"
    hls_kind = "linear"

    def run_int8(self, node, xs):
        a, q = node.attrs, node.qattrs
        if "offsets" in a:
            # operands read in place through folded copies (fold_copies_into_bmm): each gathered as
            # the kernels walk it, every batch dimension expanded (a broadcast batch is the same
            # product either way), B as [batch, depth, cols]
            x, y = self.box(node, 0, xs[0]), np.swapaxes(self.box(node, 1, xs[1]), -1, -2)
            out = tflmath.batch_matmul(x, y, q["a_zp"], q["b_zp"], q["m"], q["shift"], q["y_zp"])
            return out.reshape(a["out_shape"])
        x, y = xs[0].reshape(a["a_shape"]), xs[1].reshape(a["b_shape"])
        if a["adj_x"]:
            x = np.swapaxes(x, -1, -2)
        if a["adj_y"]:
            y = np.swapaxes(y, -1, -2)
        return tflmath.batch_matmul(x, y, q["a_zp"], q["b_zp"], q["m"], q["shift"], q["y_zp"])

    def macs(self, node, g):
        a = node.attrs
        return int(np.prod(a["out_shape"])) * a["depth"]

    @staticmethod
    def box(node, i: int, x: np.ndarray) -> np.ndarray:
        """Operand i as the kernels walk it: [batch (all of batch_dims), rows (a) or cols (b), depth],
        read from x through the node's strides from its offset."""
        at = node.attrs
        dims = list(at["batch_dims"]) + [at["rows"] if i == 0 else at["cols"], at["depth"]]
        flat = np.ascontiguousarray(x).reshape(-1)
        off = at.get("offsets", (0, 0))[i]
        b = np.lib.stride_tricks.as_strided(flat[off:], shape=tuple(dims),
                                            strides=tuple(s * flat.itemsize for s in at["strides"][i]), writeable=False)
        return np.ascontiguousarray(b).reshape(-1, *dims[4:])

    def call(self, node, g, a, ins, out):
        at, q = node.attrs, node.qattrs
        sa, sb = at["strides"]          # per operand: 4 batch strides, row stride, depth stride
        oa, ob = at.get("offsets", (0, 0))      # where each operand's box starts (fold_copies_into_bmm)
        ptrs = [f"{p} + {o}" if o else p for p, o in zip(ins, (oa, ob))]
        return [ptrs[0], ptrs[1], a.ints("dims", at["batch_dims"]), a.ints("sa", sa), a.ints("sb", sb),
                *map(str, (at["rows"], at["cols"], at["depth"], q["a_zp"], q["b_zp"], q["m"], q["shift"], q["y_zp"])), out]

    def fits(self, node, in_sizes, out_size):
        at = node.attrs
        dims = list(at["batch_dims"])
        boxes = [(dims + [at["rows"], at["depth"]], at["strides"][0]), (dims + [at["cols"], at["depth"]], at["strides"][1])]
        offs = at.get("offsets", (0, 0))
        return (all(within(n, o, d, s) for n, o, (d, s) in zip(in_sizes, offs, boxes))
                and out_size == int(np.prod(dims)) * at["rows"] * at["cols"])

    def scratch_bytes(self, node, g):
        """b's columns copied out when its depth is not contiguous (the C kernel, ev_tfl_bmm_s8)."""
        at = node.attrs
        return at["cols"] * at["depth"] if at["strides"][1][5] != 1 else 0

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        lines = super().emit_c(node, g, c, ins, out, rows, row0, scratch)
        bt = scratch if self.scratch_bytes(node, g) else "NULL"
        return [lines[0].replace(f", {out}); }}", f", {bt}, {out}); }}")]

    def hls_dims(self, node, g):
        at = node.attrs
        return {"rows": int(np.prod(at["out_shape"])) // at["cols"], "in": at["depth"], "out": at["cols"]}


FULLY_CONNECTED, CONV, BATCH_MATMUL = TflFullyConnected(), TflConv(), TflBatchMatmul()


def fold_copies_into_bmm(g) -> int:
    """A copy (TRANSPOSE, a head's STRIDED_SLICE of the packed qkv) whose output only a
    BATCH_MATMUL reads, as one strided box of the copy's input (tfl_copy.read_through): the
    BATCH_MATMUL reads that box in place (its strides and an offset), the copy and its output go.
    A's depth must stay contiguous (the kernels' fast path; B's is copied to scratch when it is
    not). Returns how many copies were removed."""
    removed = 0
    for node in [k for k in g.nodes if k.op == "tfl_batch_matmul"]:
        at = node.attrs
        for i in (0, 1):
            dims = list(at["batch_dims"]) + [at["rows"] if i == 0 else at["cols"], at["depth"]]
            offs = list(at.get("offsets", (0, 0)))
            got = read_through(g, node, i, dims, at["strides"][i], offs[i])
            if got is None:
                continue
            copy, src, base, strides = got
            if (i == 0 and strides[5] != 1 and at["depth"] > 1) or not within(g.tensors[src].nbytes, base, dims, strides):
                continue
            g.tensors.pop(node.inputs[i], None)
            node.inputs = [src if j == i else t for j, t in enumerate(node.inputs)]
            offs[i] = base
            st = [list(v) for v in at["strides"]]
            st[i] = strides
            at = node.attrs = {**at, "strides": st, "offsets": offs}
            g.nodes[:] = [k for k in g.nodes if k is not copy]
            removed += 1
    return removed


def _box_index(dims, strides, offset: int) -> np.ndarray:
    """The flat element index of every element of a strided box, [dims]."""
    idx = np.indices(tuple(int(d) for d in dims), dtype=np.int64)
    return offset + sum(i * int(s) for i, s in zip(idx, strides))


def _reads(g, t: str):
    """Every strided read of tensor t: (node, where, dims, strides, offset), where = ("bmm", operand)
    or ("copy", piece index); None when some reader reads t another way (a kernel that walks it
    whole)."""
    reads = []
    for k in g.nodes:
        if t not in k.inputs:
            continue
        if k.op == "tfl_batch_matmul":
            at = k.attrs
            for i in (0, 1):
                if k.inputs[i] == t:
                    dims = list(at["batch_dims"]) + [at["rows"] if i == 0 else at["cols"], at["depth"]]
                    reads.append((k, ("bmm", i), dims, at["strides"][i], at.get("offsets", (0, 0))[i]))
        elif k.op == "tfl_copy":
            for j, p in enumerate(k.attrs["pieces"]):
                if "const" not in p and k.inputs[p["input"]] == t:
                    reads.append((k, ("copy", j), p["dims"], p["in_strides"], p["in_offset"]))
        else:
            return None
    return reads


def split_fc_by_readers(g) -> int:
    """A FULLY_CONNECTED whose output channels fall into blocks that different readers read (the
    packed qkv Dense, read as q, k and v by the attention's BATCH_MATMULs): one FULLY_CONNECTED per
    set of readers (q and k together, v), each channel computed exactly as before (per-channel
    weights, bias and scale), so each tensor dies with its own last reader instead of all of [N, 3E]
    living until p.v (vit_sigmoid_gelu's arena peak). Every read is re-expressed as one strided box
    of its group's tensor (checked by walking index arrays), else nothing changes. Returns how many
    FULLY_CONNECTED were split."""
    split = 0
    for fc in [k for k in g.nodes if k.op == "tfl_fully_connected"]:
        t = fc.outputs[0]
        reads = _reads(g, t) if t not in g.outputs else None
        if not reads:
            continue
        w = fc.qattrs["w"]
        o = w.shape[0]
        ranges = []
        for _, _, dims, strides, offset in reads:
            idx = _box_index(dims, strides, offset)
            ranges.append((int((idx % o).min()), int((idx % o).max()) + 1) if idx.size else (0, o))
        groups = sorted(set(ranges))
        # readers' channel ranges must partition [0, o): each group one contiguous block of channels
        if groups[0][0] != 0 or groups[-1][1] != o or any(a[1] != b[0] for a, b in zip(groups, groups[1:])):
            continue
        # neighbouring blocks read by the same nodes die together: one FULLY_CONNECTED for them (q and k,
        # both read by q.k), since each call widens the input rows again
        readers = [frozenset(id(k) for (k, *_), r in zip(reads, ranges) if r == grp) for grp in groups]
        merged = [list(groups[0])]
        for grp, who, before in zip(groups[1:], readers[1:], readers):
            if who == before:
                merged[-1][1] = grp[1]
            else:
                merged.append(list(grp))
        if len(merged) < 2:
            continue
        groups = [tuple(m) for m in merged]
        ranges = [next(grp for grp in groups if grp[0] <= r[0] and r[1] <= grp[1]) for r in ranges]
        rows = g.tensors[t].nbytes // o
        moved = []
        for (k, where, dims, strides, offset), (c0, c1) in zip(reads, ranges):
            idx = _box_index(dims, strides, offset)
            fit = affine((idx // o) * (c1 - c0) + idx % o - c0) if idx.size else (0, list(strides))
            if fit is None or not within(rows * (c1 - c0), fit[0], dims, fit[1]):
                break
            moved.append((k, where, (c0, c1), fit))
        else:
            names = {}
            src = g.tensors[t]
            new_nodes = []
            for c0, c1 in groups:
                nt = g.add_tensor(f"{t}.c{c0}", (rows, c1 - c0))
                nt.scale, nt.zero_point = src.scale, src.zero_point
                names[(c0, c1)] = nt.name
                q = {**fc.qattrs, **{key: fc.qattrs[key][c0:c1] for key in ("w", "bias", "scale")}}
                new_nodes.append(dataclasses.replace(fc, name=f"{fc.name}.c{c0}", inputs=list(fc.inputs),
                                                     outputs=[nt.name], attrs=dict(fc.attrs), qattrs=q))
            for k, (kind, i), grp, (base, strides) in moved:
                if kind == "bmm":
                    at = k.attrs
                    offs, st = list(at.get("offsets", (0, 0))), [list(v) for v in at["strides"]]
                    offs[i], st[i] = base, strides
                    k.inputs = [names[grp] if j == i else x for j, x in enumerate(k.inputs)]
                    k.attrs = {**at, "strides": st, "offsets": offs}
                else:
                    ps = [dict(p) for p in k.attrs["pieces"]]
                    if names[grp] not in k.inputs:
                        k.inputs = k.inputs + [names[grp]]
                    ps[i].update(input=k.inputs.index(names[grp]), in_offset=base, in_strides=strides)
                    k.attrs = {**k.attrs, "pieces": ps}
            for k in {id(m[0]): m[0] for m in moved}.values():
                if k.op == "tfl_copy":          # t no longer read by this copy: drop it from its inputs
                    keep = [x for x in k.inputs if x != t]
                    remap = {k.inputs.index(x): keep.index(x) for x in keep}
                    k.attrs = {**k.attrs, "pieces": [p if "const" in p else {**p, "input": remap[p["input"]]}
                                                     for p in k.attrs["pieces"]]}
                    k.inputs = keep
            at = next(i for i, k in enumerate(g.nodes) if k is fc)
            g.nodes[at:at + 1] = new_nodes
            g.tensors.pop(t, None)
            split += 1
    return split
