"""Residual add of two int8 tensors at different scales, integer multipliers only.

On the residual stream the prefix-token rows have scales of their own (quantize.prefix_scaled):
those rows take a second set of multipliers."""
from __future__ import annotations

from .. import intmath
from .base import Elementwise, hls_prefix_split, hls_rows_at, prefix_split_c, row_offset


class Add(Elementwise):
    name = "add"
    rowwise_inputs = (0, 1)
    inplace = True
    writes_prefix_scaled = True

    def reads_prefix_scaled(self, node, prefix_rows):
        return True

    def min_output_scale(self, node, g):
        # the multipliers s_in / s_out (times 2^shift) must stay below 2^23 (intmath.add_params): an
        # output whose calibrated range is 2^22 below its inputs' (x + -x) gets that much range
        return max(g.tensors[t].scale for t in node.inputs) * 2.0 ** -(intmath.ADD_FRAC - 2)

    def run_float(self, node, xs):
        return xs[0] + xs[1]

    def quantize(self, node, g, stats):
        ta, tb, ty = (g.tensors[t] for t in (*node.inputs, node.outputs[0]))
        ma, mb, sh = intmath.add_params(ta.scale, tb.scale, ty.scale)
        node.qattrs = {"ma": ma, "mb": mb, "shift": sh}
        k = max(ta.prefix_rows, tb.prefix_rows, ty.prefix_rows)
        if k:
            node.qattrs["prefix"] = (k, *intmath.add_params(ta.row_scales()[0], tb.row_scales()[0],
                                                            ty.row_scales()[0]))

    def run_int8(self, node, xs):
        q = node.qattrs
        y = intmath.add(xs[0], xs[1], q["ma"], q["mb"], q["shift"])
        if "prefix" in q:
            k, ma, mb, sh = q["prefix"]
            y[..., :k, :] = intmath.add(xs[0][..., :k, :], xs[1][..., :k, :], ma, mb, sh)
        return y

    hls_kind = "add"

    def emit_hls(self, node, e, ins, out, rows, chained):
        q, r = node.qattrs, e.reuse[node.name]
        ch = e.g.tensors[node.outputs[0]].channels

        def call(prefix, nrows, skip):
            ma, mb, sh = q["prefix"][1:] if prefix else (q["ma"], q["mb"], q["shift"])
            a, b, y = (hls_rows_at(p, skip, ch) for p in (ins[0], ins[1], out))
            return f"ev_add<{nrows * ch}, {r}>({a}, {b}, {y}, {ma}, {mb}, {sh});"
        return hls_prefix_split(q["prefix"][0] if "prefix" in q else 0, rows, chained, call)

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        q = node.qattrs
        n = g.tensors[node.outputs[0]].channels

        def call(prefix, r, skip):
            ma, mb, sh = q["prefix"][1:] if prefix else (q["ma"], q["mb"], q["shift"])
            a, b, y = (row_offset(p, skip, n) for p in (ins[0], ins[1], out))
            return f"ev_add_s8({a}, {b}, {n} * ({r}), {ma}, {mb}, {sh}, {y});"
        return prefix_split_c(q["prefix"][0], rows, row0, call) if "prefix" in q else [call(False, rows, "0")]


OP = Add()
