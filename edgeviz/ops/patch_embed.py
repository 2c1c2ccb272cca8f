"""Patch embedding: conv with kernel = stride = patch, the prefix tokens and position embedding folded in.

The frontend folds `concat(prefix) + pos` into this op in float (exact), so its int8 output is the
token matrix [N, E]: the first k rows are constants (cls, distillation or register tokens, plus their
position embedding; `prefix` [k, E]), and every patch row carries its own bias (conv bias + position
embedding).
"""
from __future__ import annotations

import numpy as np

from .. import intmath
from ..ir import Node
from .base import Op, hls_mac_reuse, quantize_weights, requant_params


def im2col(img: np.ndarray, p: int) -> np.ndarray:
    """[..., C, H, W] -> [..., num_patches, C*p*p], row-major patches, (c, ky, kx) order in a row."""
    *lead, c, h, w = img.shape
    t = img.reshape(*lead, c, h // p, p, w // p, p)
    t = np.moveaxis(t, (-5, -4, -3, -2, -1), (-3, -5, -2, -4, -1))
    return t.reshape(*lead, (h // p) * (w // p), c * p * p)


# EV_LINEAR_BUF's default in firmware/kernels/ev_linear.c (tests/test_latency.py holds them equal)
LINEAR_BUF_UNITS = 384


class PatchEmbed(Op):
    name = "patch_embed"
    writes_prefix_scaled = True
    takes_prefix_tokens = True

    def materialise_input(self, node, g):
        """No patch-embedding decomposition: an im2col step first writes the [patches, C*p*p] matrix."""
        c, h, w = g.tensors[node.inputs[0]].shape
        p = node.attrs["patch"]
        cols = g.add_tensor("im2col", ((h // p) * (w // p), c * p * p))
        g.nodes.insert(g.nodes.index(node), Node("im2col", "im2col", [node.inputs[0]], [cols.name], {"patch": p}))
        node.attrs["decompose"] = False
        node.inputs = [node.inputs[0], cols.name]

    def prefix_rows(self, node):
        return 0 if node.attrs.get("prefix") is None else int(node.attrs["prefix"].shape[0])

    def fold_add(self, node, m):         # conv bias, position embedding: a bias per token
        a, k = node.attrs, self.prefix_rows(node)
        a["bias_tokens"] = a["bias_tokens"] + m[k:]
        if k:
            a["prefix"] = a["prefix"] + m[:k]
        return True

    def fold_mul(self, node, m):
        if not (m == m[:1]).all():
            return False
        a, k, s = node.attrs, self.prefix_rows(node), m[0]
        a["w"] = a["w"] * s[:, None, None, None]
        a["bias_tokens"] = a["bias_tokens"] * s
        if k:
            a["prefix"] = a["prefix"] * s
        return True

    def run_float(self, node, xs):
        a = node.attrs
        y = im2col(xs[0], a["patch"]) @ a["w"].reshape(a["w"].shape[0], -1).T + a["bias_tokens"]
        if a.get("prefix") is None:
            return y
        prefix = np.broadcast_to(a["prefix"], y.shape[:-2] + a["prefix"].shape)
        return np.concatenate([prefix, y], axis=-2)

    def quantize(self, node, g, stats):
        a = node.attrs
        s_x = g.tensors[node.inputs[0]].scale
        s_y = g.tensors[node.outputs[0]].scale
        wq, s_w = quantize_weights(a["w"], np.abs(a["bias_tokens"]).max(axis=0), s_x)
        node.qattrs = {
            "w": wq,
            "bias": np.round(a["bias_tokens"] / (s_x * s_w)[None, :]).astype(np.int32),
            **dict(zip(("mult", "shift"), requant_params(s_x * s_w / s_y))),
        }
        if a.get("prefix") is not None:
            s_pre = g.tensors[node.outputs[0]].row_scales()[0]      # the prefix rows' own scale
            node.qattrs["prefix"] = np.clip(np.round(a["prefix"] / s_pre), -128, 127).astype(np.int8)

    def run_int8(self, node, xs):
        q = node.qattrs
        y = intmath.linear(im2col(xs[0], node.attrs["patch"]), q["w"], q["bias"], q["mult"], q["shift"])
        return y if "prefix" not in q else np.concatenate([q["prefix"], y])

    def macs(self, node, g):
        return node.attrs["bias_tokens"].shape[0] * node.attrs["w"].size

    def work(self, node, g):
        """The outputs that ev_patch_embed_s8's DSP path computes one patch at a time (row_outputs: a
        gather and a single-row linear per patch, whose cost goes with the outputs more than the MACs): all
        of them unless the patches stream 4-5 at a time from the image (patch a multiple of 4, C p^2 a
        multiple of 16 and within EV_LINEAR_BUF's 384 8-byte units, at least 4 patches)."""
        out, k = node.attrs["w"].shape[0], int(np.prod(node.attrs["w"].shape[1:]))
        npatch = node.attrs["bias_tokens"].shape[0]
        streams = npatch >= 4 and node.attrs["patch"] % 4 == 0 and k % 16 == 0 and 5 * (k // 4) <= LINEAR_BUF_UNITS
        decomposed = node.attrs.get("decompose", True) and len(node.inputs) == 1
        return dict(super().work(node, g), row_outputs=0 if streams or not decomposed else npatch * out)

    def scratch_bytes(self, node, g):
        # decomposed: one patch row at a time; otherwise the whole im2col matrix is a tensor of its own
        w = node.attrs["w"]
        return int(np.prod(w.shape[1:])) if node.attrs.get("decompose", True) else 0

    hls_template = True

    def hls_ops(self, node, g, chained):
        return int(node.qattrs["w"].size)

    def hls_spec(self, node, g, chained):
        o, k = node.qattrs["w"].shape
        if len(node.inputs) > 1:
            # no patch-embedding decomposition: one linear over the im2col buffer, a bias row per patch
            return "linear", {"rows": g.tensors[node.inputs[1]].rows, "in": k, "out": o, "row_bias": True}
        c, h, w = g.tensors[node.inputs[0]].shape
        return "patch_embed", dict(c=c, h=h, w=w, p=node.attrs["patch"], out=o, row_bias=True)

    def hls_reuse(self, node, g, chained, r):
        return hls_mac_reuse(node, r)

    def emit_hls(self, node, e, ins, out, rows, chained):
        q, c, r = node.qattrs, e.c, e.reuse[node.name]
        ch, hh, ww = e.g.tensors[node.inputs[0]].shape
        emb = q["w"].shape[0]
        lines, row0 = [], 0
        if "prefix" in q:         # cls / distillation / register tokens: constant rows
            prefix = c.add(node, "prefix", q["prefix"], np.int8)
            row0 = q["prefix"].shape[0]
            lines += [f"ev_set_row<{emb}>({out}, {i}, {prefix} + {i * emb});" for i in range(row0)]
        roms = (f"{c.add(node, 'w', q['w'], np.int8)}, {c.add(node, 'bias', q['bias'], np.int32)}, "
                f"{c.add(node, 'mult', q['mult'], np.int32)}, {c.add(node, 'shift', q['shift'], np.int8)}")
        if len(node.inputs) > 1:
            # undecomposed: the im2col buffer [patches, C*p*p] is materialised; one linear embeds it
            patches, k = e.g.tensors[node.inputs[1]].shape
            return lines + [f"ev_linear<{patches}, {k}, {emb}, {r}, false, true>({ins[1]}, {out} + {row0 * emb}, "
                            f"{roms}, ev_no_lut);"]
        return lines + [f"ev_patch_embed<{ch}, {hh}, {ww}, {node.attrs['patch']}, {emb}, {r}, true, {row0}>("
                        f"{ins[0]}, {out}, {roms});"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        a, q = node.attrs, node.qattrs
        ch, h, w = g.tensors[node.inputs[0]].shape
        p = a["patch"]
        e, k = q["w"].shape
        npatch = q["bias"].shape[0]
        lines = []
        first = 0
        if "prefix" in q:
            lines.append(f"memcpy({out}, {c.const(node.name + '.prefix', q['prefix'])}, {q['prefix'].size});")
            first = q["prefix"].size
        wv, bv = c.const(node.name + ".w", q["w"]), c.const(node.name + ".bias", q["bias"])
        mv, sv = c.const(node.name + ".mult", q["mult"]), c.const(node.name + ".shift", q["shift"])
        if a.get("decompose", True):
            # patch-embedding decomposition: gather one patch, embed it, next; no patch matrix
            # (ev_patch_embed_s8: one patch at a time through the scratch row, or on the DSP path
            # 4-5 patches per pass over the weights, widened straight from the image)
            assert npatch == (h // p) * (w // p)
            lines.append(f"ev_patch_embed_s8({ins[0]}, {ch}, {h}, {w}, {p}, {e}, {wv}, {bv}, {mv}, {sv}, "
                         f"{scratch}, {out} + {first});")
        else:
            cols = ins[1]   # the im2col matrix, materialised by the im2col step
            lines.append(f"ev_linear_s8({cols}, {k}, {npatch}, {k}, {e}, {wv}, {bv}, {e}, {mv}, {sv}, NULL, "
                         f"{out} + {first}, {e});")
        return lines


class Im2col(Op):
    """Only in schedules without patch-embedding decomposition: materialises all patches."""
    name = "im2col"

    def run_float(self, node, xs):
        return im2col(xs[0], node.attrs["patch"])

    run_int8 = run_float
    hls_template = True

    def hls_spec(self, node, g, chained):
        # the gather is a one-element-per-cycle copy of the whole patch matrix
        return "copy", {"c": g.tensors[node.outputs[0]].nbytes}

    def emit_hls(self, node, e, ins, out, rows, chained):
        ch, hh, ww = e.g.tensors[node.inputs[0]].shape
        p = node.attrs["patch"]
        k, gw = ch * p * p, ww // p
        # cols[pt][(ci*p + ky)*p + kx] = img[ci][py*p + ky][px*p + kx], one image row segment at a time
        return [f"for (int pt = 0; pt < {(hh // p) * gw}; pt++) {{",
                f"    const int py = pt / {gw}, px = pt % {gw};",
                f"    for (int ci = 0; ci < {ch}; ci++) for (int ky = 0; ky < {p}; ky++)",
                f"        ev_copy_row<{p}>({ins[0]} + (ci * {hh} + py * {p} + ky) * {ww} + px * {p}, "
                f"{out} + pt * {k} + (ci * {p} + ky) * {p});",
                "}"]

    def emit_c(self, node, g, c, ins, out, rows, row0, scratch):
        ch, h, w = g.tensors[node.inputs[0]].shape
        p = node.attrs["patch"]
        k = ch * p * p
        return [f"for (int p = 0; p < {(h // p) * (w // p)}; p++) "
                f"ev_patch_gather({ins[0]}, {ch}, {h}, {w}, {p}, p, {out} + p * {k});"]


OP = PatchEmbed()
IM2COL = Im2col()
