"""The kernels as built for the Cortex-M7, run under QEMU (mps2-an500), for the Cortex-M55 with
Helium, run under QEMU (mps3-an547), and for the Cortex-M3 and M0+ (their register-blocked tiles,
ev_gemm_nodsp.c), run under QEMU (mps2-an385), against edgeviz.intmath.

One generated bare-metal program per build holds every case with its random data baked in; it
prints each output over semihosting. It is built with the SMLAD/SXTB16 path (at -O2 and at -O0)
and with -DEV_PORTABLE for the M7, with the MVE path (-O2 and -O0) for the M55, and for the M3
(ARMv7-M tiles) and the M0+ (ARMv6-M tiles, -O2 and -O0), and every build must equal intmath byte
for byte. The M55 builds run the same cases, which also cover the
MVE path's block and tile splits (3-row tiles and 1-2 rows left, channel counts not a multiple
of 4, inputs not a multiple of 16, shifts 32 / > 32 / mixed, per-row biases, LUTs). The linear shapes reach
every code path of the DSP ev_linear_s8 (x blocks with streamed weights, x block + weight pair
buffered, x pairs only, nothing buffered, scalar for in < 8; odd rows, odd channels, in % 4
tails, several row blocks, a block of one row, no bias, shifts <= 32, exact rounding ties,
accumulators at the int32 ends).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests", ROOT / "tests" / "fixtures" / "kernel_qemu"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import kernel_qemu as harness  # noqa: E402
from edgeviz import intmath as im  # noqa: E402
from edgeviz.ops.layernorm import prescaled  # noqa: E402
from test_kernels import requant_ties  # noqa: E402

pytestmark = pytest.mark.skipif(harness.missing_tools() is not None,
                                reason=str(harness.missing_tools()))

# (rows, in, out, variant); paths with the default EV_LINEAR_BUF (384):
#   S: rows >= 4, in % 4 == 0, 8 <= in <= 304, with a bias (not a multiple of 16 with a LUT: only
#      one bias), then the 0..3 rows it leaves: A/B,
#   A: otherwise rows >= 4 and in <= 259 (row blocks of at most 22 rows at in = 64, 6 at in = 192;
#      13 rows at in = 192 give blocks 6, 6, 1), B: otherwise in <= 771, C: wider
LINEAR_CASES = [
    (17, 64, 192, "plain"), (17, 64, 128, "lut"), (17, 7, 5, "row_bias"), (5, 13, 9, "plain"),
    (4, 300, 3, "lut"), (40, 64, 10, "row_bias"), (23, 17, 3, "plain"), (6, 2, 5, "plain"),
    (3, 7, 5, "plain"), (1, 128, 64, "plain"), (2, 1, 3, "row_bias"), (1, 7, 5, "lut"),
    (2, 29, 7, "plain"), (9, 400, 6, "plain"), (8, 900, 3, "lut"), (1, 801, 2, "plain"),
    (45, 64, 5, "lut"), (23, 64, 6, "plain"), (17, 64, 24, "mixshift"), (6, 32, 4, "nobias"),
    (3, 12, 3, "nobias"), (18, 192, 10, "plain"), (13, 192, 5, "row_bias"),
    # path S (rows >= 4, in % 16 == 0, a bias: blocks of 5 and 4 rows, weights streamed): every
    # row count 1..9 and 11 (6, 7, 11 leave 2..3 rows to A/B), odd and single channels,
    # per-row biases, LUT, shifts <= 32 on the first and last channel (the routine stops there
    # and C finishes the channel), extreme values, the largest in the buffer allows (5 kq <= 384)
    (1, 64, 3, "min"), (2, 64, 5, "plain"), (3, 64, 3, "lut"), (4, 64, 7, "max"),
    (5, 32, 3, "lut"), (6, 16, 5, "row_bias"), (7, 48, 9, "mixshift"), (8, 64, 1, "min"),
    (9, 32, 11, "row_bias"), (11, 16, 4, "lut"), (17, 64, 7, "mixshift"), (5, 64, 6, "max"),
    (4, 304, 5, "plain"), (9, 320, 3, "plain"), (4, 20, 3, "plain"),
    # path S at in % 16 != 0 (in % 4 == 0, in >= 8: the chain is entered at any group): the
    # fewest inputs, an odd number of groups (4-row blocks widened in C), more than one pass of
    # the chain (17 groups), shared and per-row biases, LUT, shifts <= 32, extremes
    (4, 8, 5, "plain"), (4, 12, 9, "lut"), (5, 28, 6, "row_bias"), (13, 40, 11, "mixshift"),
    (10, 24, 7, "max"), (6, 12, 4, "min"), (4, 68, 3, "lut"), (9, 36, 5, "plain"), (4, 44, 3, "row_bias"),
    # ... with a table (one bias): 4- and 5-row blocks stream (ev__rs5_lut enters its chain at any
    # group: a merged tail's 5-row block of an MLP 24 wide), more than one pass of the chain
    (8, 28, 4, "lut"), (5, 28, 6, "lut"), (9, 24, 5, "lut"), (17, 44, 3, "lut"), (5, 24, 96, "lut"),
    (5, 72, 9, "lut"),
    # row pairs through ev__rs2 at in % 16 != 0 (its chain; with a table path B's tiles): a pair
    # alone, the pair path S leaves (7 rows), a pair before a lone row
    (2, 28, 7, "plain"), (2, 12, 4, "mixshift"), (3, 40, 6, "row_bias"), (2, 36, 5, "lut"), (7, 24, 5, "max"),
    # path S over input chunks (5 kq > 384: int32 partial sums, 208-input chunks, 48-channel
    # blocks): a last chunk shorter than the others, one channel block and several with a short
    # last one, 4-5-row blocks plus rows left to A/B, per-row biases, LUT, shifts <= 32, extremes
    (17, 768, 50, "plain"), (4, 416, 97, "lut"), (5, 320, 49, "row_bias"), (7, 1024, 3, "mixshift"),
    (9, 784, 48, "max"), (4, 640, 5, "min"),
    # the M3 / M0+ tiles (ev_gemm_nodsp.c: 2 rows x 2 channels and 1 row x 4): row pairs with an odd
    # last row, channel counts 1..3 past a multiple of 4 (the last channel repeated), inputs 1..3
    # past the M3 loops' groups of 4 / 2, single inputs, a long single row, many channels
    (1, 769, 37, "plain"), (17, 33, 577, "lut"), (2, 3, 9, "row_bias"), (15, 1, 6, "plain"),
    (3, 129, 13, "nobias"), (16, 5, 3, "mixshift"), (13, 302, 7, "min"), (1, 2, 2, "max"),
    # a lone row through ev__r1c4 (in % 16 == 0, a bias: 4 channels per pass, then 1..3 left to
    # the 1 x 2 tile): LUT, shifts <= 32 in some quads, per-row biases with 3 rows (the last row
    # alone), the int32 ends, channel counts 4k, 4k + 1..3
    (1, 64, 9, "lut"), (1, 32, 8, "mixshift"), (3, 48, 13, "row_bias"), (1, 16, 4, "max"),
    (1, 96, 96, "min"), (1, 320, 6, "plain"), (3, 16, 11, "mixshift"), (1, 32, 7, "lut"),
    # row pairs through ev__rs2 (in % 16 == 0, a bias: 2 channels per pass, an odd last channel
    # to the 1 x 2 tile): LUT, shifts <= 32 (every pair stops the routine and C finishes it),
    # per-row biases, the int32 ends, the pair path S leaves (6 rows) and a pair before a lone row
    (2, 48, 10, "lut"), (2, 32, 6, "mixshift"), (6, 64, 7, "max"), (2, 16, 2, "min"),
    (2, 256, 9, "row_bias"), (3, 32, 5, "plain"), (7, 16, 33, "lut"), (2, 304, 4, "plain"),
]
# ev_patch_embed_s8: (c, h, w, p, out, variant)
PATCH_CASES = [(1, 16, 16, 4, 32, "plain"), (3, 16, 16, 8, 7, "mixshift"), (3, 12, 8, 4, 5, "plain"),
               (1, 8, 12, 4, 3, "mixshift"), (1, 28, 4, 4, 9, "plain"), (2, 8, 8, 2, 6, "plain"),
               (1, 12, 12, 6, 4, "plain"), (4, 8, 8, 8, 3, "plain"), (1, 4, 4, 4, 5, "plain")]
ATTN_CASES = [(17, 2, 32), (5, 3, 7), (10, 2, 13), (1, 1, 8), (17, 3, 16), (4, 1, 260)]
# multi-row attention (ev_attn_scores_rows / ev_attn_av_rows), (tokens, heads, dh, rows per call):
# quads with odd key counts and keys % 4 = 1..3 (p.v padding), remainder rows, dh % 4 != 0 and
# dh > 128 (single-row fallbacks), more than 4 rows per call
ATTN_BLOCK_CASES = [(17, 2, 32, 4), (65, 1, 32, 4), (5, 3, 7, 4), (10, 2, 12, 3), (9, 1, 8, 8),
                    (6, 2, 16, 4), (4, 1, 260, 4), (66, 1, 64, 4), (7, 1, 24, 7)]
# direct multi-row calls: (rows, keys, dh, fill, s_qk); strided rows, outputs with a pad column
# (the last two: p.v with more keys than the M55 path's transposition buffer takes, and with a V
# row stride too wide for its 16-bit gather offsets: both take its scalar loop)
ATTN_ROWS_EDGE = [(4, 17, 32, "min", 45), (4, 18, 32, "max", 40), (8, 65, 32, "rand", 30),
                  (5, 7, 16, "rand", 20), (4, 4, 8, "min", 33), (4, 129, 8, "rand", 40),
                  (4, 1600, 8, "rand", 40), (3, 9, 4700, "rand", 40)]

# shift 32 (ev__rk4: SMMULR + SSAT; quantize.py's choice for attention): (rows, keys, dh, fill, m).
# q.k and, with keys and dims swapped, p.v over V^T: reduction lengths % 4 = 0..3, one group (dh 4:
# no chain), the whole chain (512 = 128 groups), 401-long reductions (p.v of a 401-token ViT over V^T),
# remainder rows, extreme multipliers.
ATTN_RK4_CASES = [(4, 17, 32, "min", (1 << 31) - 1), (4, 18, 32, "max", 1 << 30), (8, 65, 32, "rand", 0),
                  (5, 7, 16, "rand", 0), (4, 4, 4, "rand", 0), (4, 9, 256, "rand", 0), (4, 5, 512, "max", 1 << 22),
                  (5, 6, 401, "rand", 0), (5, 401, 16, "rand", 0), (7, 66, 5, "rand", 0), (4, 129, 13, "max", 3 << 16),
                  # 2-3 rows left after the quads: 3 through one ev__rk4 pass with the last row repeated,
                  # 2 through the pair tile (odd key counts, reductions % 4 = 1..3, up to 256 and past it)
                  (6, 17, 16, "rand", 0), (2, 26, 32, "min", (1 << 31) - 1), (3, 10, 16, "max", 1 << 30),
                  (2, 9, 7, "rand", 0), (3, 5, 64, "rand", 0), (2, 401, 16, "rand", 0),
                  (6, 27, 22, "max", 0), (2, 1, 256, "rand", 0), (10, 50, 24, "min", 3 << 16)]


def _attn_head_case(rng, ntok, e, dh):
    """A random qkv [ntok][3e] and the requantisation of a typical layer: (m, s) for q.k, the exp
    LUT, (m, s) for p.v."""
    qkv = rng.integers(-128, 128, (ntok, 3 * e), dtype=np.int8)
    return (qkv, im.quantize_multiplier(8.0 / (74 * 74 * np.sqrt(dh))), im.softmax_lut(0.06),
            im.quantize_multiplier(40.0 / (74 * 127 * np.sqrt(ntok) / 4)))


def _attn_operands(rng, rows, n, dh, fill):
    """q rows [rows][dh + 5], kv [n][2 dh + 3] (keys at +3, values at dh + 3), probabilities
    [rows][n + 1]: random, or every value at an int8 end ("min" / "max")."""
    val = {"min": -128, "max": 127}.get(fill)

    def arr(shape, lo=-128):
        return np.full(shape, val if lo < 0 else 127, np.int8) if val is not None else \
            rng.integers(lo, 128, shape, dtype=np.int8)
    return arr((rows, dh + 5)), arr((n, 2 * dh + 3)), arr((rows, n + 1), lo=0)


def _quant(rng, acc_std, n, target=40.0):
    ms = [im.quantize_multiplier(target / acc_std * rng.uniform(0.3, 3.0)) for _ in range(n)]
    return np.array([m for m, _ in ms], np.int32), np.array([s for _, s in ms], np.int8)


def _cases():
    """(program, [(label, expected int8 output)])."""
    rng = np.random.default_rng(20261121)
    prog = harness.CProgram()
    checks = []
    gelu = im.make_lut(lambda v: v / (1 + np.exp(-1.702 * v)), 0.05, 0.04)

    for idx, (rows, k, out, variant) in enumerate(LINEAR_CASES):
        x = rng.integers(-128, 128, (rows, k), dtype=np.int8)
        w = rng.integers(-128, 128, (out, k), dtype=np.int8)
        per_row = variant == "row_bias"
        bias = rng.integers(-30000, 30000, (rows, out) if per_row else (out,), dtype=np.int32)
        m, s = _quant(rng, 74 * 74 * np.sqrt(k), out)
        if variant in ("min", "max"):   # accumulators reach INT32_MAX ("min": all products
            x[...] = -128                 # +2^14) or -2^31 + 128 k + 1 ("max": -16256 each)
            w[...] = -128 if variant == "min" else 127
            big = (1 << 31) - k * (1 << 14) - 1
            bias[...] = big if variant == "min" else -big
        if variant == "mixshift":   # every other channel with s <= 32: the 64-bit requant branch
            s[::2] = rng.integers(1, 33, len(s[::2]))
        lut = gelu if variant == "lut" else None
        xs_, ys_ = k + (idx % 3), out + (idx % 2)     # row strides wider than the rows
        xp = np.zeros((rows, xs_), np.int8)
        xp[:, :k] = x
        y = prog.buffer("int8_t", rows * ys_)
        lut_c = prog.const(lut) if lut is not None else "0"
        if variant == "nobias":     # bias == NULL: accumulators start at 0
            bias[...] = 0
        bias_c = "0" if variant == "nobias" else prog.const(bias)
        prog(f"    ev_linear_s8({prog.const(xp)}, {xs_}, {rows}, {k}, {out}, {prog.const(w)}, "
             f"{bias_c}, {out if per_row else 0}, {prog.const(m)}, {prog.const(s)}, "
             f"{lut_c}, {y}, {ys_});")
        prog(f'    emit_hex("lin{idx}", {y}, {rows * ys_});')
        want = np.zeros((rows, ys_), np.int8)
        want[:, :out] = im.linear(x, w, bias, m, s, lut)   # padding must stay 0 (.bss)
        checks.append((f"lin{idx}", want))

    # the patch embedding (ev_patch_embed_s8): the DSP path's 4-5-patch blocks widened straight
    # from the image (p % 4 == 0, c p p % 16 == 0), patches left over by the blocks (6, 7, 11),
    # shifts <= 32 (the channel finished patch by patch), and the one-patch loop (p = 2, 6)
    for idx, (c, h, w, p, out, variant) in enumerate(PATCH_CASES):
        img = rng.integers(-128, 128, (c, h, w), dtype=np.int8)
        k = c * p * p
        npatch = (h // p) * (w // p)
        wt = rng.integers(-128, 128, (out, k), dtype=np.int8)
        bias = rng.integers(-30000, 30000, (npatch, out), dtype=np.int32)
        m, s = _quant(rng, 74 * 74 * np.sqrt(k), out)
        if variant == "mixshift":
            s[::3] = rng.integers(1, 33, len(s[::3]))
        y = prog.buffer("int8_t", npatch * out)
        row = prog.buffer("int8_t", k)
        prog(f"    ev_patch_embed_s8({prog.const(img)}, {c}, {h}, {w}, {p}, {out}, {prog.const(wt)}, "
             f"{prog.const(bias)}, {prog.const(m)}, {prog.const(s)}, {row}, {y});")
        prog(f'    emit_hex("patch{idx}", {y}, {npatch * out});')
        cols = img.reshape(c, h // p, p, w // p, p).transpose(1, 3, 0, 2, 4).reshape(npatch, k)
        checks.append((f"patch{idx}", im.linear(cols, wt, bias, m, s)))

    # requant over every shift through a 1-input linear: y = requant(bias + 1)
    n = 62 * 4 + 2
    s = np.concatenate([np.repeat(np.arange(1, 63), 4), [1, 40]]).astype(np.int8)
    m = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64).astype(np.int32)
    m[-2] = 0
    bias = rng.integers(-(1 << 31), (1 << 31) - 1, n, dtype=np.int64).astype(np.int32)
    bias[::2] = rng.integers(-(1 << 18), 1 << 18, (n + 1) // 2)
    y = prog.buffer("int8_t", n)
    prog(f"    ev_linear_s8({prog.const(np.ones(1, np.int8))}, 1, 1, 1, {n}, "
         f"{prog.const(np.ones(n, np.int8))}, {prog.const(bias)}, 0, {prog.const(m)}, "
         f"{prog.const(s)}, 0, {y}, {n});")
    prog(f'    emit_hex("requant", {y}, {n});')
    checks.append(("requant", im.requantize(bias.astype(np.int64) + 1, m, s)))

    # exact rounding ties (acc m = odd multiple of 2^(s-1)), negative ones included, through
    # path A's requantisation: x rows = w rows = e0, so acc = bias + 1 in every row
    acc, m, ties_s = requant_ties()
    n = len(ties_s)
    e0 = np.zeros((4, 8), np.int8)
    e0[:, 0] = 1
    w = np.zeros((n, 8), np.int8)
    w[:, 0] = 1
    y = prog.buffer("int8_t", 4 * n)
    prog(f"    ev_linear_s8({prog.const(e0)}, 8, 4, 8, {n}, {prog.const(w)}, "
         f"{prog.const((acc - 1).astype(np.int32))}, 0, {prog.const(m.astype(np.int32))}, "
         f"{prog.const(ties_s.astype(np.int8))}, 0, {y}, {n});")
    prog(f'    emit_hex("ties", {y}, {4 * n});')
    checks.append(("ties", np.tile(im.requantize(acc, m, ties_s), (4, 1))))

    # path A's row-quad tile requantises with SMMLA (r + hi(acc m) in one instruction) in
    # assembly: every shift 33..62 with the extreme multipliers and accumulators near both
    # int32 ends (the bias takes them there; the 8-input products stay far from wrapping)
    s = np.repeat(np.arange(33, 63), 4).astype(np.int8)
    n = len(s)                                          # even: channel pairs only
    m = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64)
    m[0::4], m[1::4] = 1 << 30, (1 << 31) - 1
    big = (1 << 31) - 8 * 128 * 128 - 1
    bias = rng.integers(-big, big + 1, n, dtype=np.int64)
    bias[0::3], bias[1::3] = -big, big
    x = rng.integers(-128, 128, (8, 8), dtype=np.int8)
    x[0], x[1] = -128, 127
    w = rng.integers(-128, 128, (n, 8), dtype=np.int8)
    y = prog.buffer("int8_t", 8 * n)
    prog(f"    ev_linear_s8({prog.const(x)}, 8, 8, 8, {n}, {prog.const(w)}, "
         f"{prog.const(bias.astype(np.int32))}, 0, {prog.const(m.astype(np.int32))}, "
         f"{prog.const(s)}, 0, {y}, {n});")
    prog(f'    emit_hex("quad_requant", {y}, {8 * n});')
    checks.append(("quad_requant", im.linear(x, w, bias.astype(np.int32), m.astype(np.int32), s)))

    for idx, (ntok, heads, dh) in enumerate(ATTN_CASES):
        e = heads * dh
        qkv, (m_qk, s_qk), elut, (m_av, s_av) = _attn_head_case(rng, ntok, e, dh)
        q, lt = prog.const(qkv), prog.const(elut)
        row, o = prog.buffer("int8_t", ntok), prog.buffer("int8_t", ntok * e)
        prog(f"    for (int h = 0; h < {heads}; h++) for (int i = 0; i < {ntok}; i++) {{\n"
             f"        ev_attn_scores_row({q} + i * {3 * e} + h * {dh}, {q} + {e} + h * {dh}, "
             f"{3 * e}, {ntok}, {dh}, {m_qk}, {s_qk}, {row});\n"
             f"        ev_softmax_s8({row}, {ntok}, {lt}, {row});\n"
             f"        ev_attn_av_row({row}, {q} + {2 * e} + h * {dh}, {3 * e}, {ntok}, {dh}, "
             f"{m_av}, {s_av}, {o} + i * {e} + h * {dh});\n    }}")
        prog(f'    emit_hex("attn{idx}", {o}, {ntok * e});')
        checks.append((f"attn{idx}", im.attention(qkv, heads, m_qk, s_qk, elut, m_av, s_av)))

    for idx, (ntok, heads, dh, blk) in enumerate(ATTN_BLOCK_CASES):
        e = heads * dh
        qkv, (m_qk, s_qk), elut, (m_av, s_av) = _attn_head_case(rng, ntok, e, dh)
        q, lt = prog.const(qkv), prog.const(elut)
        sc, o = prog.buffer("int8_t", blk * ntok), prog.buffer("int8_t", ntok * e)
        prog(f"    for (int i = 0; i < {ntok}; i += {blk}) for (int h = 0; h < {heads}; h++) {{\n"
             f"        const int nr = {ntok} - i < {blk} ? {ntok} - i : {blk};\n"
             f"        ev_attn_scores_rows({q} + i * {3 * e} + h * {dh}, {3 * e}, nr, "
             f"{q} + {e} + h * {dh}, {3 * e}, {ntok}, {dh}, {m_qk}, {s_qk}, {sc}, {ntok});\n"
             f"        for (int r = 0; r < nr; r++) ev_softmax_s8({sc} + r * {ntok}, {ntok}, {lt}, "
             f"{sc} + r * {ntok});\n"
             f"        ev_attn_av_rows({sc}, {ntok}, nr, {q} + {2 * e} + h * {dh}, {3 * e}, "
             f"{ntok}, {dh}, {m_av}, {s_av}, {o} + i * {e} + h * {dh}, {e});\n    }}")
        prog(f'    emit_hex("attnb{idx}", {o}, {ntok * e});')
        checks.append((f"attnb{idx}", im.attention(qkv, heads, m_qk, s_qk, elut, m_av, s_av)))

    for idx, (rows, n, dh, fill, s_qk) in enumerate(ATTN_ROWS_EDGE):
        q, kv, p = _attn_operands(rng, rows, n, dh, fill)
        m_qk = int(rng.integers(1 << 30, 1 << 31))
        sc, o = prog.buffer("int8_t", rows * (n + 2)), prog.buffer("int8_t", rows * (dh + 1))
        prog(f"    ev_attn_scores_rows({prog.const(q)}, {dh + 5}, {rows}, {prog.const(kv)} + 3, "
             f"{2 * dh + 3}, {n}, {dh}, {m_qk}, {s_qk}, {sc}, {n + 2});")
        prog(f"    ev_attn_av_rows({prog.const(p)}, {n + 1}, {rows}, {prog.const(kv)} + {dh + 3}, "
             f"{2 * dh + 3}, {n}, {dh}, {m_qk}, {s_qk + 8}, {o}, {dh + 1});")
        prog(f'    emit_hex("attnr{idx}s", {sc}, {rows * (n + 2)});')
        prog(f'    emit_hex("attnr{idx}v", {o}, {rows * (dh + 1)});')
        want = np.zeros((rows, n + 2), np.int8)   # pad columns must stay 0 (.bss)
        want[:, :n] = im.requantize(q[:, :dh].astype(np.int32)
                                    @ kv[:, 3:dh + 3].astype(np.int32).T, m_qk, s_qk)
        checks.append((f"attnr{idx}s", want))
        want = np.zeros((rows, dh + 1), np.int8)
        want[:, :dh] = im.requantize(p[:, :n].astype(np.int32)
                                     @ kv[:, dh + 3:].astype(np.int32), m_qk, s_qk + 8)
        checks.append((f"attnr{idx}v", want))

    for idx, (rows, n, dh, fill, m) in enumerate(ATTN_RK4_CASES):
        q, kv, p = _attn_operands(rng, rows, n, dh, fill)
        vt = np.ascontiguousarray(kv[:, dh + 3:].T)          # [dh][n]: the split's V^T for one head
        m = m or int(rng.integers(1 << 16, 1 << 31))
        sc, o = prog.buffer("int8_t", rows * (n + 2)), prog.buffer("int8_t", rows * (dh + 1))
        prog(f"    ev_attn_scores_rows({prog.const(q)}, {dh + 5}, {rows}, {prog.const(kv)} + 3, "
             f"{2 * dh + 3}, {n}, {dh}, {m}, 32, {sc}, {n + 2});")
        prog(f"    ev_attn_scores_rows({prog.const(p)}, {n + 1}, {rows}, {prog.const(vt)}, {n}, {dh}, {n}, "
             f"{m}, 32, {o}, {dh + 1});")
        prog(f'    emit_hex("rk4_{idx}s", {sc}, {rows * (n + 2)});')
        prog(f'    emit_hex("rk4_{idx}v", {o}, {rows * (dh + 1)});')
        want = np.zeros((rows, n + 2), np.int8)
        want[:, :n] = im.requantize(q[:, :dh].astype(np.int32) @ kv[:, 3:dh + 3].astype(np.int32).T, m, 32)
        checks.append((f"rk4_{idx}s", want))
        want = np.zeros((rows, dh + 1), np.int8)
        want[:, :dh] = im.requantize(p[:, :n].astype(np.int32) @ vt.astype(np.int32).T, m, 32)
        checks.append((f"rk4_{idx}v", want))

    # exact rounding ties with one (m, s) for all outputs, as attention calls the kernels (the M55's
    # ev__mq4 / ev__mq1 requantise in vector registers): q rows of ones, so each key's sum is its
    # row sum; m = 2^30 at shift 40 gives hi = floor(acc / 4) and a tie at every hi = 128 mod 256
    acc = np.array([512, 513, 511, -512, -509, -513, 1536, -1536, 1535, 1537, 0, -1, 2032], np.int64)
    keys = np.zeros((len(acc), 16), np.int8)
    for j, a in enumerate(acc):                     # 16 values in [-128, 127] summing to a
        q_, r_ = divmod(int(a), 16)
        keys[j] = q_
        keys[j, :r_] += 1
    assert (keys.astype(np.int64).sum(1) == acc).all()
    for rows in (5, 1):
        sc = prog.buffer("int8_t", rows * len(acc))
        prog(f"    ev_attn_scores_rows({prog.const(np.ones((rows, 16), np.int8))}, 16, {rows}, "
             f"{prog.const(keys)}, 16, {len(acc)}, 16, {1 << 30}, 40, {sc}, {len(acc)});")
        prog(f'    emit_hex("attn_ties{rows}", {sc}, {rows * len(acc)});')
        checks.append((f"attn_ties{rows}", np.tile(im.requantize(acc, 1 << 30, 40), (rows, 1))))

    # LayerNorm on the M7 too: 64-bit division and shifts go through libgcc there
    for idx, (rows, c, eps) in enumerate([(5, 64, None), (3, 96, 0), (2, 24, (1 << 62) - 1)]):
        x = rng.integers(-128, 128, (rows, c), dtype=np.int8)
        x[0] = 7
        g, b = im.layernorm_params(rng.uniform(0.5, 2, c), rng.uniform(-1, 1, c), 0.03)
        eps = im.layernorm_eps(1e-5, 0.05, c) if eps is None else eps
        buf = prog.buffer("int8_t", rows * c)
        prog(f"    for (int i = 0; i < {rows * c}; i++) {buf}[i] = {prog.const(x)}[i];")
        prog(f"    ev_layernorm_s8({buf}, {c}, {rows}, {c}, {prog.const(g)}, {prog.const(b)}, "
             f"{eps}LL, {buf}, {c});")
        prog(f'    emit_hex("ln{idx}", {buf}, {rows * c});')
        checks.append((f"ln{idx}", im.layernorm(x, g, b, eps)))
    _row_kernel_cases(rng, prog, checks, gelu)
    return prog, checks


# Row lengths for the per-element kernels that have a Helium version (ev_norm_mve.c,
# ev_eltwise_mve.c): below, at and
# past one vector of 4 / 8 / 16 lanes, so every predicated last pass occurs.
ROW_LENGTHS = [1, 3, 4, 5, 8, 15, 16, 17, 33, 64, 65, 192]


def _ln_rows(rng, c, kind):
    """3 LayerNorm rows of c int8 values: random; constant (zero variance); the int8 ends """
    x = rng.integers(-128, 128, (3, c), dtype=np.int8)
    x[1] = rng.integers(-128, 128)
    if kind == "ends":
        x[2] = np.where(rng.random(c) < 0.5, -128, 127)
    return x


def _ln_strided_case(prog, checks, tag, fn, x, consts, want_rows, eps, stride):
    """One LayerNorm call `fn` over the rows x [3, c] stored `stride` apart, with constants (g, b) as
    the kernel takes them: written in place (y == x) for odd c, to another buffer for even c."""
    c = x.shape[1]
    xp = np.zeros((3, stride), np.int8)
    xp[:, :c] = x
    buf = prog.buffer("int8_t", 3 * stride)
    if c % 2:   # in place: y == x, same stride
        prog(f"    for (int i = 0; i < {3 * stride}; i++) {buf}[i] = {prog.const(xp)}[i];")
        src = buf
    else:
        src = prog.const(xp)
    prog(f"    {fn}({src}, {stride}, 3, {c}, {prog.const(consts[0])}, {prog.const(consts[1])}, "
         f"{eps}LL, {buf}, {stride});")
    prog(f'    emit_hex("{tag}", {buf}, {3 * stride});')
    want = xp.copy() if c % 2 else np.zeros((3, stride), np.int8)
    want[:, :c] = want_rows
    checks.append((tag, want))


def _row_kernel_cases(rng, prog, checks, gelu):
    """LayerNorm, softmax, residual add, LUT, transposition and token mean over awkward lengths, zero-variance
    rows, equal scores, saturating values, strided and in-place rows (the M55 builds run them on
    Helium: ev_norm_mve.c, ev_eltwise_mve.c)."""
    # LayerNorm: (c, eps, gamma / beta kind); strided input, output written in place for odd c
    ln = [(c, None, "plain") for c in ROW_LENGTHS] + [
        (64, 0, "ends"), (192, 0, "big"), (17, None, "big"), (65, (1 << 62) - 1, "plain"),
        (3, 0, "plain"), (1024, None, "ends"), (1100, None, "plain"), (768, 0, "big")]
    for idx, (c, eps, kind) in enumerate(ln):
        x = _ln_rows(rng, c, "ends" if kind == "ends" else "rand")
        if kind == "big":   # gamma and beta near their limits: |g| < 2^31, b up to 2^40: clamps
            g = rng.integers(-(1 << 31) + 1, 1 << 31, c, dtype=np.int64).astype(np.int32)
            b = rng.integers(-(1 << 40), 1 << 40, c, dtype=np.int64)
            b[::5] = rng.choice([-(1 << 62) + 1, (1 << 62) - 1], len(b[::5]))
        else:
            g, b = im.layernorm_params(rng.uniform(-2, 2, c), rng.uniform(-1, 1, c), 0.03)
        eps = im.layernorm_eps(1e-5, 0.05, c) if eps is None else eps
        _ln_strided_case(prog, checks, f"lnr{idx}", "ev_layernorm_s8", x, (g, b), im.layernorm(x, g, b, eps), eps,
                         c + 3)

    # ev_layernorm_pre_s8 (constants prescaled at build time, ops/layernorm.prescaled): every
    # length (the DSP loop's c mod 4 values alone, the Helium path's predicated last pass), gamma
    # and beta at the edges of that range (|g| < 2^27, |b| < 2^58: clamps), in place for odd c
    for idx, c in enumerate(ROW_LENGTHS + [1024, 1100, 2]):
        x = _ln_rows(rng, c, "ends" if idx % 2 else "rand")
        if idx % 3 == 2:
            g = rng.integers(-(1 << 27) + 1, 1 << 27, c, dtype=np.int64).astype(np.int32)
            g[::3] = rng.choice([-(1 << 27) + 1, (1 << 27) - 1], len(g[::3]))
            b = rng.integers(-(1 << 40), 1 << 40, c, dtype=np.int64)
            b[::4] = rng.choice([-(1 << 58) + 1, (1 << 58) - 1], len(b[::4]))
        else:
            g, b = im.layernorm_params(rng.uniform(-2, 2, c), rng.uniform(-1, 1, c), 0.03)
        pre = prescaled({"g": g, "b": b})
        eps = im.layernorm_eps(1e-5, 0.05, c) if idx % 4 else 0
        _ln_strided_case(prog, checks, f"lnp{idx}", "ev_layernorm_pre_s8", x, (pre["g"], pre["b"]),
                         im.layernorm(x, g, b, eps), eps, c + 1)
    # ... and its sigma-1 rows (inv = 2^31) with the largest prescaled gamma
    for idx, row in enumerate(([5, 5, 6], [127, -128], [-3, -3, -3, -2, -3])):
        x = np.array([row], np.int8)
        c = x.shape[1]
        g = np.full(c, (1 << 27) - 1, np.int32)
        b = np.arange(c, dtype=np.int64) << 26
        pre = prescaled({"g": g, "b": b})
        y = prog.buffer("int8_t", c)
        prog(f"    ev_layernorm_pre_s8({prog.const(x)}, {c}, 1, {c}, {prog.const(pre['g'])}, "
             f"{prog.const(pre['b'])}, 0LL, {y}, {c});")
        prog(f'    emit_hex("lnps{idx}", {y}, {c});')
        checks.append((f"lnps{idx}", im.layernorm(x, g, b, 0)))

    # sigma 1 with d != 0 (C Q - S^2 in 1..3, eps 0): inv = 2^31, the Helium path's other scaling
    for idx, row in enumerate(([5, 5, 6], [-3, -3, -3, -2], [0, 1], [127, -128])):
        x = np.array([row], np.int8)
        c = x.shape[1]
        g = np.full(c, (1 << 31) - 1, np.int32)
        b = np.arange(c, dtype=np.int64) << 26
        y = prog.buffer("int8_t", c)
        prog(f"    ev_layernorm_s8({prog.const(x)}, {c}, 1, {c}, {prog.const(g)}, {prog.const(b)}, "
             f"0LL, {y}, {c});")
        prog(f'    emit_hex("lns{idx}", {y}, {c});')
        checks.append((f"lns{idx}", im.layernorm(x, g, b, 0)))

    # the DSP path's integer square root (Newton below 2^32): eps makes C Q - S^2 + eps exactly
    # k^2 - 1, k^2 and k^2 + 1 around roots of every size, across 2^32 (Newton's range)
    x = rng.integers(-128, 128, (1, 64), dtype=np.int8)
    xs = x.astype(np.int64)
    base_var = 64 * int((xs * xs).sum()) - int(xs.sum()) ** 2
    g, b = im.layernorm_params(rng.uniform(0.5, 2, 64), rng.uniform(-1, 1, 64), 0.03)
    roots = [r for r in (2, 3, 1000, 46341, 65535, 65536, 65537, 1 << 20) if r * r - 1 >= base_var]
    for idx, (r, dv) in enumerate((r, dv) for r in roots for dv in (-1, 0, 1)):
        eps = r * r + dv - base_var
        y = prog.buffer("int8_t", 64)
        prog(f"    ev_layernorm_s8({prog.const(x)}, 64, 1, 64, {prog.const(g)}, {prog.const(b)}, "
             f"{eps}LL, {y}, 64);")
        prog(f'    emit_hex("lnq{idx}", {y}, 64);')
        checks.append((f"lnq{idx}", im.layernorm(x, g, b, eps)))

    # softmax: random scores, all equal, the int8 ends, one large score among very small ones, and a
    # table with zeros (sum 0: all outputs 0); odd lengths in place. Equal scores over 2 and 254
    # keys divide exactly ((127 e + total/2) / total = 64 and 1): a quotient one short shows there
    elut = im.softmax_lut(0.06)
    holey = elut.copy()
    holey[200:] = 0
    flat = np.full(256, 65535, np.uint16)   # every entry the largest: the biggest sums
    sm = [(n, "rand", elut) for n in ROW_LENGTHS] + [
        (17, "equal", elut), (65, "equal", flat), (192, "ends", elut), (33, "spike", elut),
        (16, "rand", holey), (64, "ends", flat), (1, "ends", holey), (300, "rand", elut),
        (2, "equal", elut), (254, "equal", flat), (254, "equal", elut)]
    for idx, (n, kind, lut) in enumerate(sm):
        x = rng.integers(-128, 128, n, dtype=np.int8)
        if kind == "equal":
            x[:] = rng.integers(-128, 128)
        elif kind == "ends":
            x = np.where(rng.random(n) < 0.5, -128, 127).astype(np.int8)
        elif kind == "spike":
            x[:] = -128
            x[n // 2] = 127
        if kind == "rand" and lut is holey:
            x[:] = rng.integers(-100, -50, n)   # every x - max + 255 >= 205: all entries 0
        y = prog.buffer("int8_t", n + 1)
        src = y if n % 2 else prog.const(x)
        if n % 2:
            prog(f"    for (int i = 0; i < {n}; i++) {y}[i] = {prog.const(x)}[i];")
        prog(f"    ev_softmax_s8({src}, {n}, {prog.const(lut)}, {y});")
        prog(f'    emit_hex("smx{idx}", {y}, {n + 1});')
        want = np.zeros(n + 1, np.int8)   # the byte past the row stays 0
        with np.errstate(divide="ignore"):   # the zero-sum rows: numpy's x // 0 is 0, as the kernel's
            want[:n] = im.softmax(x[None], lut)[0]
        checks.append((f"smx{idx}", want))

    # the DSP path's softmax divides by a reciprocal R = ceil(2^(32+p) / total) for totals in
    # [2, 2^24): flat tables make the total exact, n v. Powers of two (R = 2^31), total 1 and
    # totals from 2^24 (per-element division), and random tables with totals just under 2^24, where
    # the reciprocal's margin is smallest (p = 23), and small ones with every quotient 0..127
    def table(v):
        t = np.zeros(256, np.uint16)
        t[:] = v
        return t
    recip_cases = [(16, "equal", table(2048)), (2, "equal", table(1)), (1, "equal", table(1)),
                   (512, "equal", table(32768)), (256, "equal", table(65535)),
                   (300, "equal", table(55924)), (257, "equal", table(65279))]
    wide = rng.integers(40000, 65536, 256).astype(np.uint16)
    recip_cases += [(300, "rand", wide), (256, "rand", wide), (17, "rand", wide),
                    (5, "rand", rng.integers(0, 300, 256).astype(np.uint16)),
                    (64, "rand", np.arange(256, dtype=np.uint16) * 257)]
    for idx, (n, kind, lut) in enumerate(recip_cases):
        x = np.full(n, rng.integers(-128, 128), np.int8) if kind == "equal" else \
            rng.integers(-128, 128, n, dtype=np.int8)
        y = prog.buffer("int8_t", n)
        prog(f"    ev_softmax_s8({prog.const(x)}, {n}, {prog.const(lut)}, {y});")
        prog(f'    emit_hex("smr{idx}", {y}, {n});')
        checks.append((f"smr{idx}", im.softmax(x[None], lut)[0]))

    # residual add: both int8 ends, the widest multipliers (|a ma| + |b mb| near 2^31: the sums
    # wrap in int32 as intmath's do), shift 1 and 30, in place on a and on b
    adds = [(n, *im.add_params(0.05, 0.03, 0.04)) for n in ROW_LENGTHS] + [
        (33, (1 << 23) - 1, (1 << 23) - 1, 30), (17, (1 << 23) - 1, -(1 << 23) + 1, 30),
        (64, 3, 5, 1), (65, 1 << 22, 7, 20)]
    for idx, (n, ma, mb, shift) in enumerate(adds):
        a = rng.integers(-128, 128, n, dtype=np.int8)
        b = rng.integers(-128, 128, n, dtype=np.int8)
        if idx % 3 == 0:
            a[::2], b[::2] = -128, -128
            a[1::2], b[1::2] = 127, 127
        y = prog.buffer("int8_t", n + 1)
        if idx % 2:   # y == a
            prog(f"    for (int i = 0; i < {n}; i++) {y}[i] = {prog.const(a)}[i];")
            prog(f"    ev_add_s8({y}, {prog.const(b)}, {n}, {ma}, {mb}, {shift}, {y});")
        else:
            prog(f"    ev_add_s8({prog.const(a)}, {prog.const(b)}, {n}, {ma}, {mb}, {shift}, {y});")
        prog(f'    emit_hex("addr{idx}", {y}, {n + 1});')
        want = np.zeros(n + 1, np.int8)
        want[:n] = im.add(a, b, ma, mb, shift)
        checks.append((f"addr{idx}", want))

    # table lookup: every int8 value, and the awkward lengths; in place for odd lengths
    for idx, n in enumerate([256, *ROW_LENGTHS]):
        x = np.arange(-128, 128, dtype=np.int8) if n == 256 else rng.integers(-128, 128, n, dtype=np.int8)
        y = prog.buffer("int8_t", n + 1)
        src = y if n % 2 else prog.const(x)
        if n % 2:
            prog(f"    for (int i = 0; i < {n}; i++) {y}[i] = {prog.const(x)}[i];")
        prog(f"    ev_lut_s8({src}, {n}, {prog.const(gelu)}, {y});")
        prog(f'    emit_hex("lutr{idx}", {y}, {n + 1});')
        want = np.zeros(n + 1, np.int8)
        want[:n] = gelu[x.astype(np.int32) + 128]
        checks.append((f"lutr{idx}", want))

    # transposition into V^T (rows written as columns of a wider tensor): column counts around the
    # 8-lane passes, one row, strides up to and past the M55 scatter's 16-bit offsets (7 ys > 65535)
    # (the DSP path's 4 x 4 register blocks: several row blocks with rows and columns left over,
    # unaligned rows and columns: the last two start one byte into y)
    for idx, (rows, cols, ys) in enumerate([(4, 48, 36), (1, 1, 1), (3, 17, 5), (4, 8, 4), (2, 65, 70),
                                            (5, 3, 9362), (2, 3, 9363), (9, 13, 11), (8, 64, 65),
                                            (4, 96, 67), (7, 21, 9)]):
        x = rng.integers(-128, 128, (rows, cols), dtype=np.int8)
        off = 1 if idx >= 9 else 0
        y = prog.buffer("int8_t", cols * ys + off)
        prog(f"    ev_transpose_s8({prog.const(x)}, {rows}, {cols}, {y} + {off}, {ys});")
        prog(f'    emit_hex("tr{idx}", {y}, {cols * ys + off});')
        want = np.zeros(cols * ys + off, np.int8)
        want[off:].reshape(cols, ys)[:, :rows] = x.T
        checks.append((f"tr{idx}", want))

    # token mean: column counts around the 4-lane passes, one row, many rows at the int8 ends,
    # shifts above and at or below 32
    for idx, (rows, c, fill, s) in enumerate([(36, 48, "rand", 40), (1, 3, "rand", 36), (17, 7, "min", 44),
                                              (5, 4, "max", 20), (300, 9, "min", 45), (65, 33, "rand", 32),
                                              # the DSP path's 16-bit column sums at their ends
                                              (256, 8, "min", 44), (256, 6, "max", 44), (257, 4, "min", 44),
                                              (64, 64, "rand", 40)]):
        x = rng.integers(-128, 128, (rows, c), dtype=np.int8)
        if fill != "rand":
            x[...] = -128 if fill == "min" else 127
        m = int(rng.integers(1 << 30, 1 << 31))
        y = prog.buffer("int8_t", c + 1)
        prog(f"    ev_mean_tokens_s8({prog.const(x)}, {rows}, {c}, {m}, {s}, {y});")
        prog(f'    emit_hex("mt{idx}", {y}, {c + 1});')
        want = np.zeros(c + 1, np.int8)
        want[:c] = im.mean_tokens(x, m, s)[0]
        checks.append((f"mt{idx}", want))


@pytest.fixture(scope="module")
def cases():
    return _cases()


# build variants: (portable, extra flags, core). -O0 with a frame pointer is the tightest register
# budget for the DSP path's inline asm (and the firmware Makefile lets users pick OPT).
O0 = ("-O0", "-fno-omit-frame-pointer", "-std=c11")
VARIANTS = {"dsp": (False, (), "cortex-m7"), "portable": (True, (), "cortex-m7"),
            "dsp-O0": (False, O0, "cortex-m7"),
            "m55-mve": (False, (), "cortex-m55"), "m55-mve-O0": (False, O0, "cortex-m55"),
            # the other cores' machines with their targets' flags: the M4 and M33 build the DSP
            # path, the M3 and M0+ their own tiles (ev_gemm_v7m.S, ev_gemm_v6m.S)
            "m4": (False, (), "cortex-m4"), "m33": (False, (), "cortex-m33"),
            "m3": (False, (), "cortex-m3"), "m0plus": (False, (), "cortex-m0plus"),
            "m0plus-O0": (False, O0, "cortex-m0plus")}


@pytest.fixture(scope="module")
def firmware(cases, tmp_path_factory):
    """ELF per build variant, built on first use."""
    prog, _ = cases
    built = {}

    def get(variant: str):
        if variant not in built:
            portable, extra, core = VARIANTS[variant]
            built[variant] = harness.build(prog.source(), tmp_path_factory.mktemp(variant),
                                           portable=portable, extra=extra, core=core)
        return built[variant]
    return get


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernels_on_each_core(cases, firmware, variant):
    _, checks = cases
    got = harness.run(firmware(variant), core=VARIANTS[variant][2])
    bad = []
    for label, want in checks:
        assert label in got, f"{label} missing from the firmware output"
        have = harness.hex_bytes(got[label])
        if not np.array_equal(have, want.ravel()):
            bad.append(f"{label}: {int((have != want.ravel()).sum())} of {want.size} bytes differ")
    assert not bad, "; ".join(bad)


def test_dsp_path_is_compiled_in(firmware):
    """Guard against the DSP build silently taking the portable path (and vice versa)."""
    def disasm(elf):
        return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                              text=True, check=True).stdout
    assert "smlad" in disasm(firmware("dsp")) and "sxtb16" in disasm(firmware("dsp"))
    assert "smlad" not in disasm(firmware("portable"))
    # the M4 and M33 run the M7's SMLAD code (their MACs per instruction match the M7's only then)
    for variant in ("m4", "m33"):
        assert "smlad" in disasm(firmware(variant)), variant
    assert "smlad" not in disasm(firmware("m0plus"))


def test_nodsp_paths_are_compiled_in(firmware):
    """The M3 and M0+ builds take their own tiles (ev_gemm_v7m.S, ev_gemm_v6m.S), not the portable
    loop alone nor any DSP instruction, and the M0+'s MAC loop calls nothing (no libgcc divide)."""
    def disasm(elf):   # the ELF's attributes give objdump the architecture
        return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True,
                              text=True, check=True).stdout
    m3, m0 = disasm(firmware("m3")), disasm(firmware("m0plus"))
    assert "<ev__t22_v7m>:" in m3 and "<ev__t14_v7m>:" in m3 and "<ev__t14_v6m>:" not in m3
    assert "<ev__t14_v6m>:" in m0 and "<ev__t22_v7m>:" not in m0
    for dis in (m3, m0):
        assert "smlad" not in dis and "sxtb16" not in dis
    t14 = m0.split("<ev__t14_v6m>:", 1)[1].split("\n\n", 1)[0]
    assert "muls" in t14 and "ldrsb" in t14 and "\tbl\t" not in t14


def test_mve_path_is_compiled_in(firmware):
    """The M55 build's matrix and row kernels are the Helium ones (VMLADAVA, gathers, tail-predicated
    loops), not the M7's SMLAD code or the C loops, which stay out of it."""
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-m", "armv8.1-m.main", str(firmware("m55-mve"))],
                         capture_output=True, text=True, check=True).stdout
    assert "vmlava.s8" in dis and "dlstp.8" in dis and "letp" in dis   # objdump's name for VMLADAVA
    assert "<ev__mv32>:" in dis and "<ev__t42>:" not in dis and "<ev__rk4>:" not in dis
    # the row kernels' Helium loops (ev_norm_mve.c, ev_eltwise_mve.c): LayerNorm's statistics,
    # softmax's table gathers, the LUT's byte gathers
    def body(fn):
        return dis.split(f"<{fn}>:", 1)[1].split("\n\n", 1)[0]
    assert "vmlava.s8" in body("ev_layernorm_s8") and "vqdmulh.s32" in body("ev_layernorm_s8")
    assert "vldrh.u16" in body("ev_softmax_s8") and "dlstp.32" in body("ev_softmax_s8")
    assert "vldrb.u8" in body("ev_lut_s8") and "vqmovnb.s32" in body("ev_add_s8")
