"""The C kernels (firmware/kernels) against edgeviz.intmath, byte for byte, on the host.

The kernels are built once per session with host gcc into a shared library and called through
ctypes on random inputs of several shapes, odd sizes included. Host builds take the portable C
path; the Cortex-M7 DSP path is checked under QEMU by test_kernels_mcu.py. The last tests build the
kernels for the MCU (DSP and portable) and check that no double-precision code slipped in.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edgeviz import intmath as im  # noqa: E402
from edgeviz.ops.layernorm import prescaled  # noqa: E402

KDIR = ROOT / "firmware" / "kernels"
SOURCES = sorted(KDIR.glob("*.c"))          # the host build: C only (the portable path)
ASM_SOURCES = sorted(KDIR.glob("*.S"))      # the DSP path's assembly, MCU builds only
HOST_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c99", "-fPIC", "-shared"]
MCU_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard",
             "-O2", "-Wall", "-Werror", "-c"]

P, I, I32, I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int32, ctypes.c_int64
SIGNATURES = {
    "ev_linear_s8": [P, I, I, I, I, P, P, I, P, P, P, P, I],
    "ev_layernorm_s8": [P, I, I, I, P, P, I64, P, I],
    "ev_layernorm_pre_s8": [P, I, I, I, P, P, I64, P, I],
    "ev_softmax_s8": [P, I, P, P],
    "ev_add_s8": [P, P, I, I32, I32, I32, P],
    "ev_mul_s8": [P, P, I, I32, I32, P],
    "ev_lut_s8": [P, I, P, P],
    "ev_attn_scores_row": [P, P, I, I, I, I32, I32, P],
    "ev_attn_av_row": [P, P, I, I, I, I32, I32, P],
    "ev_attn_scores_rows": [P, I, I, P, I, I, I, I32, I32, P, I],
    "ev_attn_av_rows": [P, I, I, P, I, I, I, I32, I32, P, I],
    "ev_mean_tokens_s8": [P, I, I, I32, I32, P],
    "ev_patch_gather": [P, I, I, I, I, I, P],
    "ev_patch_embed_s8": [P, I, I, I, I, I, P, P, P, P, P, P],
}


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc is not installed")
    out = tmp_path_factory.mktemp("kernels") / "libevkernels.so"
    res = subprocess.run([gcc, *HOST_FLAGS, "-I", str(KDIR), *map(str, SOURCES), "-o", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    so = ctypes.CDLL(str(out))
    for name, args in SIGNATURES.items():
        fn = getattr(so, name)
        fn.argtypes = args
        fn.restype = None
    return so


def ptr(a: np.ndarray, offset: int = 0) -> int:
    """Address of element `offset` (flat, in elements) of a C-contiguous array."""
    assert a.flags.c_contiguous
    return a.ctypes.data + offset * a.itemsize


def rng_for(*key) -> np.random.Generator:
    return np.random.default_rng([20261121, *[int(k) for k in key]])


def i8(rng, *shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def channel_quant(rng, acc_std: float, n: int, target: float = 40.0):
    """Per-channel (m, s) that map an accumulator of std acc_std to about +-target."""
    ms = [im.quantize_multiplier(target / acc_std * rng.uniform(0.3, 3.0)) for _ in range(n)]
    return (np.array([m for m, _ in ms], dtype=np.int32), np.array([s for _, s in ms], dtype=np.int8))


def gelu_lut(rng) -> np.ndarray:
    return im.make_lut(lambda v: 0.5 * v * (1 + np.tanh(0.79788456 * (v + 0.044715 * v ** 3))),
                       0.05, 0.04)


# ------------------------------------------------------------------------------------ linear

LINEAR_SHAPES = [(1, 7, 5), (3, 7, 5), (2, 1, 3), (4, 3, 2), (5, 13, 9), (17, 64, 24),
                 (17, 96, 64), (6, 24, 7), (1, 128, 64), (3, 64, 33), (17, 216, 30), (9, 600, 6),
                 (8, 2000, 3), (1, 4, 1)]


def run_linear(lib, x, w, bias, m, s, lut=None, x_pad=0, y_pad=0, out=None):
    rows, k = x.shape
    out = w.shape[0] if out is None else out
    xs = np.zeros((rows, k + x_pad), np.int8)
    xs[:, :k] = x
    y = np.full((rows, out + y_pad), 99, np.int8)
    per_row = bias is not None and bias.ndim == 2
    lib.ev_linear_s8(ptr(xs), k + x_pad, rows, k, out, ptr(w),
                     None if bias is None else ptr(bias), out if per_row else 0,
                     ptr(m), ptr(s), None if lut is None else ptr(lut), ptr(y), out + y_pad)
    assert (y[:, out:] == 99).all(), "wrote past the row"
    return y[:, :out]


@pytest.mark.parametrize("rows,k,out", LINEAR_SHAPES)
@pytest.mark.parametrize("variant", ["plain", "lut", "row_bias", "nobias"])
def test_linear(lib, rows, k, out, variant):
    rng = rng_for(rows, k, out, len(variant))
    x, w = i8(rng, rows, k), i8(rng, out, k)
    bshape = (rows, out) if variant == "row_bias" else (out,)
    bias = rng.integers(-20000, 20000, size=bshape, dtype=np.int32)
    m, s = channel_quant(rng, 74 * 74 * np.sqrt(k), out)
    lut = gelu_lut(rng) if variant == "lut" else None
    if variant == "nobias":
        bias[...] = 0
    want = im.linear(x, w, bias, m, s, lut)
    got = run_linear(lib, x, w, None if variant == "nobias" else bias, m, s, lut,
                     x_pad=3 if rows > 1 else 0, y_pad=2, out=out)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) >= min(3, want.size)   # the test data is not all saturated


def test_requant_full_range(lib):
    """requant(bias + 1) through a 1-input linear: every shift 1..62, m = 0, extreme accumulators."""
    rng = rng_for(7)
    out = 62 * 8 + 4
    s = np.concatenate([np.repeat(np.arange(1, 63), 8), [1, 1, 62, 33]]).astype(np.int8)
    m = rng.integers(1 << 30, 1 << 31, size=out, dtype=np.int64).astype(np.int32)
    m[-4] = 0
    bias = rng.integers(-(1 << 31), (1 << 31) - 1, size=out, dtype=np.int64).astype(np.int32)
    # small accumulators too, where the rounding decides the result
    small = rng.integers(-(1 << 20), 1 << 20, size=out // 2).astype(np.int32)
    bias[::2] = small
    bias[-2], bias[-1] = -(1 << 31), (1 << 31) - 2      # acc = bias + 1 spans the int32 range
    x = np.ones((1, 1), np.int8)
    w = np.ones((out, 1), np.int8)
    acc = bias.astype(np.int64) + 1
    want = im.requantize(acc, m.astype(np.int64), s.astype(np.int64))[None, :]
    np.testing.assert_array_equal(run_linear(lib, x, w, bias, m, s), want)


def requant_ties():
    """(acc, m, s) with acc m an odd multiple of 2^(s-1) and results inside int8, so that only
    round-half-up (for negative accumulators too) decides them. m = 2^30 needs s >= 31;
    m = 3 2^29 also reaches s = 30 (the 64-bit branch covers s <= 32)."""
    acc, m, s = [], [], []
    for mult, s0 in ((1 << 30, 31), (3 << 29, 30)):
        for sh in range(s0, 47):
            for j in range(-20, 20):
                acc.append((2 * j + 1) << (sh - s0))
                m.append(mult)
                s.append(sh)
    return np.array(acc, np.int64), np.array(m, np.int64), np.array(s, np.int64)


def test_requant_ties(lib):
    acc, m, s = requant_ties()
    assert (((acc * m) >> (s - 1)) % 2 == 1).all() and ((acc * m) % (1 << (s - 1)) == 0).all()
    want = im.requantize(acc, m, s)[None, :]
    assert np.abs(want.astype(int)).max() < 127          # none saturated
    x = np.ones((1, 1), np.int8)
    w = np.ones((len(s), 1), np.int8)
    got = run_linear(lib, x, w, (acc - 1).astype(np.int32), m.astype(np.int32),
                     s.astype(np.int8))
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------ layernorm

@pytest.mark.parametrize("rows,c", [(1, 24), (3, 64), (17, 96), (2, 7), (5, 1), (4, 192)])
@pytest.mark.parametrize("inplace", [False, True])
def test_layernorm(lib, rows, c, inplace):
    rng = rng_for(rows, c, inplace)
    x = i8(rng, rows, c)
    x[0] = rng.integers(-128, 128)           # constant row: d == 0
    if rows > 2:
        x[1] = 0                              # all zero
        x[2, :] = 5
        x[2, 0] = 6                           # almost constant: tiny sigma
    s_in, s_out = 0.05, 0.03
    g, b = im.layernorm_params(rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c), s_out)
    eps = im.layernorm_eps(1e-5, s_in, c) if rows % 2 else 0   # eps == 0: sigma may be 0
    want = im.layernorm(x, g, b, eps)
    stride = c + 3
    xs = np.zeros((rows, stride), np.int8)
    xs[:, :c] = x
    if inplace:
        lib.ev_layernorm_s8(ptr(xs), stride, rows, c, ptr(g), ptr(b), eps, ptr(xs), stride)
        got = xs[:, :c]
    else:
        y = np.full((rows, c + 1), 99, np.int8)
        lib.ev_layernorm_s8(ptr(xs), stride, rows, c, ptr(g), ptr(b), eps, ptr(y), c + 1)
        assert (y[:, c] == 99).all()
        got = y[:, :c]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("c", [1, 3, 4, 5, 7, 32, 48, 64, 65, 96, 192])
def test_layernorm_pre(lib, c):
    """ev_layernorm_pre_s8 with ops/layernorm.prescaled's constants: intmath.layernorm's integers,
    also with gamma and beta at the edges of the prescaled range (|g| < 2^27, |b| < 2^58)."""
    rng = rng_for(c, 7)
    rows = 4
    x = i8(rng, rows, c)
    x[1] = rng.integers(-128, 128)                                # constant row
    for kind in ("plain", "edges"):
        if kind == "plain":
            g, b = im.layernorm_params(rng.uniform(-2.0, 2.0, c), rng.uniform(-1, 1, c), 0.03)
        else:
            g = rng.integers(-(1 << 27) + 1, 1 << 27, c, dtype=np.int64).astype(np.int32)
            g[::3] = rng.choice([-(1 << 27) + 1, (1 << 27) - 1], len(g[::3]))
            b = rng.integers(-(1 << 40), 1 << 40, c, dtype=np.int64)
            b[::4] = rng.choice([-(1 << 58) + 1, (1 << 58) - 1], len(b[::4]))
        pre = prescaled({"g": g, "b": b})
        assert pre is not None
        for eps in (0, im.layernorm_eps(1e-5, 0.05, c)):
            y = np.full((rows, c + 1), 99, np.int8)
            lib.ev_layernorm_pre_s8(ptr(x), c, rows, c, ptr(pre["g"]), ptr(pre["b"]), eps, ptr(y), c + 1)
            assert (y[:, c] == 99).all()
            np.testing.assert_array_equal(y[:, :c], im.layernorm(x, g, b, eps), err_msg=f"{kind} eps={eps}")
    assert prescaled({"g": np.array([1 << 27], np.int32), "b": np.zeros(1, np.int64)}) is None
    assert prescaled({"g": np.ones(1, np.int32), "b": np.array([-(1 << 58)], np.int64)}) is None


def test_layernorm_large_eps(lib):
    """Huge eps (variance term near 2^62): exercises the 64-bit integer square root."""
    rng = rng_for(99)
    c = 64
    x = i8(rng, 6, c)
    g, b = im.layernorm_params(rng.uniform(0.5, 2.0, c), rng.uniform(-1, 1, c), 0.001)
    for eps in [(1 << 62) - 1, (1 << 40) + 12345, 3, 1 << 31]:
        y = np.zeros_like(x)
        lib.ev_layernorm_s8(ptr(x), c, 6, c, ptr(g), ptr(b), eps, ptr(y), c)
        np.testing.assert_array_equal(y, im.layernorm(x, g, b, eps), err_msg=f"eps={eps}")


# ------------------------------------------------------------------------------------ softmax

@pytest.mark.parametrize("length", [1, 2, 7, 17, 64, 197])
@pytest.mark.parametrize("s_in", [0.02, 0.1, 0.5])
def test_softmax_inplace(lib, length, s_in):
    rng = rng_for(length, s_in * 100)
    lut = im.softmax_lut(s_in)
    for _ in range(4):
        x = i8(rng, length)
        want = im.softmax(x, lut)
        y = np.zeros(length, np.int8)
        lib.ev_softmax_s8(ptr(x), length, ptr(lut), ptr(y))
        np.testing.assert_array_equal(y, want)
        lib.ev_softmax_s8(ptr(x), length, ptr(lut), ptr(x))   # in place
        np.testing.assert_array_equal(x, want)


# ------------------------------------------------------------------------------------ add, lut

@pytest.mark.parametrize("n", [1, 7, 64, 1000])
@pytest.mark.parametrize("scales", [(0.05, 0.04, 0.06), (0.1, 0.001, 0.02), (0.01, 0.01, 0.5)])
def test_add_aliasing(lib, n, scales):
    rng = rng_for(n, scales[1] * 1000)
    ma, mb, shift = im.add_params(*scales)
    a, b = i8(rng, n), i8(rng, n)
    a[:2] = -128
    b[:2] = -128
    want = im.add(a, b, ma, mb, shift)
    y = np.zeros(n, np.int8)
    lib.ev_add_s8(ptr(a), ptr(b), n, ma, mb, shift, ptr(y))
    np.testing.assert_array_equal(y, want)
    a2, b2 = a.copy(), b.copy()
    lib.ev_add_s8(ptr(a2), ptr(b), n, ma, mb, shift, ptr(a2))   # y == a
    np.testing.assert_array_equal(a2, want)
    lib.ev_add_s8(ptr(a), ptr(b2), n, ma, mb, shift, ptr(b2))   # y == b
    np.testing.assert_array_equal(b2, want)
    a3 = a.copy()
    lib.ev_add_s8(ptr(a3), ptr(a3), n, ma, mb, shift, ptr(a3))  # all three
    np.testing.assert_array_equal(a3, im.add(a, a, ma, mb, shift))


@pytest.mark.parametrize("n", [1, 7, 1000])
@pytest.mark.parametrize("real", [0.05 * 0.04 / 0.06, 0.1 * 0.3 / 0.002, 1e-4])
def test_mul_aliasing(lib, n, real):
    """The gate product: extremes (-128 * -128 saturates), and y written over a, b or both."""
    rng = rng_for(n, real * 1000)
    m, s = im.quantize_multiplier(real)
    a, b = i8(rng, n), i8(rng, n)
    a[:2], b[:2] = -128, np.array([-128, 127], np.int8)[:min(n, 2)]
    want = im.mul(a, b, m, s)
    y = np.zeros(n, np.int8)
    lib.ev_mul_s8(ptr(a), ptr(b), n, m, s, ptr(y))
    np.testing.assert_array_equal(y, want)
    a2, b2 = a.copy(), b.copy()
    lib.ev_mul_s8(ptr(a2), ptr(b), n, m, s, ptr(a2))
    np.testing.assert_array_equal(a2, want)
    lib.ev_mul_s8(ptr(a), ptr(b2), n, m, s, ptr(b2))
    np.testing.assert_array_equal(b2, want)
    a3 = a.copy()
    lib.ev_mul_s8(ptr(a3), ptr(a3), n, m, s, ptr(a3))
    np.testing.assert_array_equal(a3, im.mul(a, a, m, s))


@pytest.mark.parametrize("n", [1, 5, 256])
def test_lut(lib, n):
    rng = rng_for(n, 3)
    lut = gelu_lut(rng)
    x = np.arange(-128, 128, dtype=np.int8) if n == 256 else i8(rng, n)
    want = im.apply_lut(x, lut)
    y = np.zeros(n, np.int8)
    lib.ev_lut_s8(ptr(x), n, ptr(lut), ptr(y))
    np.testing.assert_array_equal(y, want)
    lib.ev_lut_s8(ptr(x), n, ptr(lut), ptr(x))
    np.testing.assert_array_equal(x, want)


# ------------------------------------------------------------------------------------ attention

def attention_from_rows(lib, qkv, heads, m_qk, s_qk, lut, m_av, s_av):
    """intmath.attention assembled from the row kernels, the way model.c calls them."""
    n, three_e = qkv.shape
    e = three_e // 3
    dh = e // heads
    out = np.full((n, e), 99, np.int8)
    row = np.zeros(n, np.int8)
    for h in range(heads):
        for i in range(n):
            q_off = i * three_e + h * dh
            k_off = e + h * dh
            v_off = 2 * e + h * dh
            lib.ev_attn_scores_row(ptr(qkv, q_off), ptr(qkv, k_off), three_e, n, dh, m_qk, s_qk,
                                   ptr(row))
            lib.ev_softmax_s8(ptr(row), n, ptr(lut), ptr(row))
            lib.ev_attn_av_row(ptr(row), ptr(qkv, v_off), three_e, n, dh, m_av, s_av,
                               ptr(out, i * e + h * dh))
    return out


def attention_case(rng, n, heads, dh):
    """A random qkv tensor, realistic requantisation parameters and intmath's attention of it."""
    qkv = i8(rng, n, 3 * heads * dh)
    m_qk, s_qk = im.quantize_multiplier(8.0 / (74 * 74 * np.sqrt(dh)))
    lut = im.softmax_lut(0.06)
    m_av, s_av = im.quantize_multiplier(40.0 / (74 * 127 * np.sqrt(n) / 4))
    params = (heads, m_qk, s_qk, lut, m_av, s_av)
    return qkv, params, im.attention(qkv, *params)


@pytest.mark.parametrize("n,heads,dh", [(17, 2, 32), (5, 3, 7), (1, 1, 8), (17, 3, 12),
                                        (10, 2, 13), (65, 4, 16)])
def test_attention(lib, n, heads, dh):
    qkv, params, want = attention_case(rng_for(n, heads, dh), n, heads, dh)
    np.testing.assert_array_equal(attention_from_rows(lib, qkv, *params), want)


def attention_from_blocks(lib, qkv, heads, m_qk, s_qk, lut, m_av, s_av, block=4):
    """intmath.attention from the multi-row kernels, `block` query rows per pass (model.c)."""
    n, three_e = qkv.shape
    e = three_e // 3
    dh = e // heads
    out = np.full((n, e), 99, np.int8)
    sc = np.zeros((block, n), np.int8)
    for r in range(0, n, block):
        nr = min(block, n - r)
        for h in range(heads):
            lib.ev_attn_scores_rows(ptr(qkv, r * three_e + h * dh), three_e, nr,
                                    ptr(qkv, e + h * dh), three_e, n, dh, m_qk, s_qk, ptr(sc), n)
            for i in range(nr):
                lib.ev_softmax_s8(ptr(sc, i * n), n, ptr(lut), ptr(sc, i * n))
            lib.ev_attn_av_rows(ptr(sc), n, nr, ptr(qkv, 2 * e + h * dh), three_e, n, dh,
                                m_av, s_av, ptr(out, r * e + h * dh), e)
    return out


@pytest.mark.parametrize("n,heads,dh,block", [(17, 2, 32, 4), (5, 3, 7, 4), (65, 1, 32, 4),
                                              (10, 2, 12, 3), (9, 1, 8, 8), (1, 1, 8, 4)])
def test_attention_blocks(lib, n, heads, dh, block):
    qkv, params, want = attention_case(rng_for(n, heads, dh, block), n, heads, dh)
    np.testing.assert_array_equal(attention_from_blocks(lib, qkv, *params, block), want)


@pytest.mark.parametrize("rows,n,dh", [(4, 17, 32), (7, 65, 32), (4, 5, 12), (5, 9, 8), (3, 6, 16)])
def test_attn_rows_edges(lib, rows, n, dh):
    """Multi-row q.k and p.v on extreme values (-128 everywhere, p = 127), strided rows, and
    that nothing outside the rows' outputs is written."""
    rng = rng_for(rows, n, dh, 11)
    m, s = im.quantize_multiplier(1.0 / (128 * 128 * dh) * 100)
    for fill in ("min", "rand"):
        q = np.full((rows, dh + 3), -128, np.int8) if fill == "min" else i8(rng, rows, dh + 3)
        kv = np.full((n, 2 * dh + 1), -128, np.int8) if fill == "min" else i8(rng, n, 2 * dh + 1)
        p = (np.full((rows, n + 2), 127, np.int8) if fill == "min"
             else rng.integers(0, 128, (rows, n + 2), dtype=np.int8))
        sc = np.full((rows, n + 1), 77, np.int8)
        lib.ev_attn_scores_rows(ptr(q), dh + 3, rows, ptr(kv, 1), 2 * dh + 1, n, dh, m, s, ptr(sc),
                                n + 1)
        want = im.requantize(q[:, :dh].astype(np.int32) @ kv[:, 1:dh + 1].astype(np.int32).T, m, s)
        np.testing.assert_array_equal(sc[:, :n], want)
        assert (sc[:, n] == 77).all()
        m2, s2 = im.quantize_multiplier(1.0 / (127 * 128 * n) * 100)
        out = np.full((rows, dh + 2), 77, np.int8)
        lib.ev_attn_av_rows(ptr(p), n + 2, rows, ptr(kv, dh + 1), 2 * dh + 1, n, dh, m2, s2,
                            ptr(out), dh + 2)
        want = im.requantize(p[:, :n].astype(np.int32) @ kv[:, dh + 1:].astype(np.int32), m2, s2)
        np.testing.assert_array_equal(out[:, :dh], want)
        assert (out[:, dh:] == 77).all()


# ------------------------------------------------------------------------------------ pooling, patches

@pytest.mark.parametrize("rows,c", [(1, 5), (17, 64), (65, 96), (3, 24)])
def test_mean_tokens(lib, rows, c):
    rng = rng_for(rows, c, 5)
    x = i8(rng, rows, c)
    m, s = im.quantize_multiplier(1.0 / rows * 1.3)
    want = im.mean_tokens(x, m, s)
    y = np.zeros((1, c), np.int8)
    lib.ev_mean_tokens_s8(ptr(x), rows, c, m, s, ptr(y))
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("c,h,w,p", [(3, 32, 32, 4), (1, 8, 8, 8), (3, 12, 20, 4), (2, 15, 10, 5)])
def test_patch_gather(lib, c, h, w, p):
    rng = rng_for(c, h, w, p)
    img = i8(rng, c, h, w)
    # reference: [c, h/p, p, w/p, p] -> [h/p, w/p, c, p, p]
    patches = img.reshape(c, h // p, p, w // p, p).transpose(1, 3, 0, 2, 4).reshape(-1, c * p * p)
    row = np.full(c * p * p + 1, 99, np.int8)
    for idx in range(patches.shape[0]):
        lib.ev_patch_gather(ptr(img), c, h, w, p, idx, ptr(row))
        np.testing.assert_array_equal(row[:-1], patches[idx])
    assert row[-1] == 99


@pytest.mark.parametrize("c,h,w,p,out", [(1, 16, 16, 4, 32), (3, 12, 20, 4, 5), (2, 15, 10, 5, 3)])
def test_patch_embed(lib, c, h, w, p, out):
    rng = rng_for(c, h, w, p, out)
    img = i8(rng, c, h, w)
    k, npatch = c * p * p, (h // p) * (w // p)
    cols = img.reshape(c, h // p, p, w // p, p).transpose(1, 3, 0, 2, 4).reshape(npatch, k)
    wt = i8(rng, out, k)
    bias = rng.integers(-30000, 30000, (npatch, out), dtype=np.int32)
    m = rng.integers(1 << 30, 1 << 31, out, dtype=np.int64).astype(np.int32)
    s = rng.integers(36, 42, out).astype(np.int8)
    row = np.zeros(k, np.int8)
    y = np.zeros((npatch, out), np.int8)
    lib.ev_patch_embed_s8(ptr(img), c, h, w, p, out, ptr(wt), ptr(bias), ptr(m), ptr(s), ptr(row), ptr(y))
    np.testing.assert_array_equal(y, im.linear(cols, wt, bias, m, s))


# ------------------------------------------------------------------------------------ MCU build

MCU_FLAGS_M55 = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", *MCU_FLAGS[4:]]


@pytest.mark.parametrize("portable,m55", [(False, False), (True, False), (False, True)],
                         ids=["dsp", "portable", "m55-mve"])
def test_mcu_build_has_no_double(tmp_path, portable, m55):
    gcc = shutil.which("arm-none-eabi-gcc")
    objdump = shutil.which("arm-none-eabi-objdump")
    nm = shutil.which("arm-none-eabi-nm")
    if not (gcc and objdump and nm):
        pytest.skip("arm-none-eabi toolchain is not installed")
    defs = ["-DEV_PORTABLE"] if portable else []
    objs = []
    for src in [*SOURCES, *ASM_SOURCES]:
        obj = tmp_path / (src.stem + ".o")
        res = subprocess.run([gcc, *(MCU_FLAGS_M55 if m55 else MCU_FLAGS), *defs, "-std=c99", "-Wextra",
                              "-I", str(KDIR), str(src), "-o", str(obj)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        objs.append(str(obj))
    dis = subprocess.run([objdump, "-d", *(["-m", "armv8.1-m.main"] if m55 else []), *objs],
                         capture_output=True, text=True, check=True).stdout
    assert ".f64" not in dis
    # no floating point at all: neither FPU instructions (scalar or MVE vector) nor soft-float helpers
    assert not re.search(r"\bv\w+\.f(16|32)\b", dis)
    syms = subprocess.run([nm, "-u", *objs], capture_output=True, text=True, check=True).stdout
    # soft-float helpers: __aeabi_dadd, __aeabi_fmul, __aeabi_d2iz, __aeabi_i2d, __aeabi_l2f ...
    assert not re.search(r"__aeabi_[df]\w+|__aeabi_u?[il]2[df]", syms), syms
    if m55:   # the matrix kernels are Helium code; the M7's SMLAD routines stay out
        assert "vmlava.s8" in dis and "ev__t42" not in dis
    else:
        assert ("smlad" in dis) != portable, "DSP path compiled in only without EV_PORTABLE"
