"""Integer arithmetic that defines edgeviz's int8 semantics.

Every function here is the specification that the C kernels (firmware/kernels) and the HLS
templates (hls/) reproduce bit for bit. Only integers flow at run time; floats appear only when
constants (multipliers, lookup tables) are derived at compile time.

Conventions
- Activations are int8, symmetric (zero point 0), one scale per tensor.
- Weights are int8, symmetric, one scale per output channel; biases int32 at scale s_in * s_w.
- Shifts are arithmetic (floor) on signed integers; divisions of signed values truncate toward 0
  (C semantics); all divisions below have non-negative operands unless stated.
"""
from __future__ import annotations

import math

import numpy as np

I8_MIN, I8_MAX = -128, 127
LN_FRAC = 12          # LayerNorm normalised values are Q12
LN_INV_BITS = 31      # reciprocal of the row's deviation is floor(2^31 / sigma)
LN_GAMMA_FRAC = 16    # gamma / s_out is Q16, so gamma * normalised is Q28
SOFTMAX_EXP_ONE = 1 << 15   # exp LUT entry for the row maximum
SOFTMAX_OUT_MAX = 127       # probabilities come out at scale 1/127
ADD_FRAC = 22               # residual-add multipliers lie in [2^21, 2^22)


# ---------------------------------------------------------------- requantisation

def quantize_multiplier(real: float) -> tuple[int, int]:
    """real ~= m * 2^-s with m in [2^30, 2^31) and 1 <= s <= 62; (0, 1) for real == 0.

    real >= 2^30 (an output range far below its inputs': a degenerate calibration) saturates every
    nonzero accumulator, as (2^31 - 1) * 2^-1 does: the same bytes, so that is what it becomes."""
    if real <= 0.0:
        if real == 0.0:
            return 0, 1
        raise ValueError(f"requantisation multiplier must be >= 0, got {real}")
    mant, exp = math.frexp(real)          # real = mant * 2^exp, mant in [0.5, 1)
    m = int(round(mant * (1 << 31)))
    s = 31 - exp
    if m == 1 << 31:                      # rounding overflowed the mantissa
        m //= 2
        s -= 1
    if s > 62:                            # too small to represent: flushes to zero
        return 0, 1
    if s < 1:
        return (1 << 31) - 1, 1
    return m, s


def quantize_multiplier_s32(real: float) -> tuple[int, int]:
    """real ~= m * 2^-32 with 2^16 <= m < 2^31, else quantize_multiplier(real).

    Shift 32 makes the requantisation (acc m + 2^31) >> 32, one SMMULR on a Cortex-M, which the
    attention kernels use (ev__rk4); requantize() is the same formula with other numbers. 16 bits
    of multiplier are far more than an int8 output needs."""
    m = int(round(real * 2.0 ** 32))
    return (m, 32) if (1 << 16) <= m < (1 << 31) else quantize_multiplier(real)


def requantize(acc, m, s):
    """clamp(round_half_up(acc * m / 2^s)) to int8. acc int32, m/s scalars or per-channel arrays."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    v = (acc * m + (np.int64(1) << (s - 1))) >> s
    return np.clip(v, I8_MIN, I8_MAX).astype(np.int8)


# ---------------------------------------------------------------- linear

def linear(x, w, bias, m, s, lut=None):
    """y[n, o] = requant(bias[o] + sum_k x[n, k] w[o, k]) and, if given, lut[y + 128].

    x [N, K] int8, w [M, K] int8, bias [M] or [N, M] int32, m/s [M] per output channel.
    """
    acc = x.astype(np.int32) @ w.astype(np.int32).T + np.asarray(bias, dtype=np.int32)
    y = requantize(acc, m[None, :], s[None, :])
    return y if lut is None else apply_lut(y, lut)


def apply_lut(x, lut):
    """Element-wise table lookup: lut has 256 int8 entries indexed by x + 128."""
    return np.asarray(lut, dtype=np.int8)[x.astype(np.int16) + 128]


def make_lut(fn, s_in: float, s_out: float) -> np.ndarray:
    """Table of an element-wise function for int8 input at s_in and int8 output at s_out."""
    q = np.arange(-128, 128, dtype=np.float64)
    return np.clip(np.round(fn(q * s_in) / s_out), I8_MIN, I8_MAX).astype(np.int8)


# ---------------------------------------------------------------- layer norm

def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) for non-negative int64, exactly."""
    v = np.asarray(v, dtype=np.int64)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    # float sqrt can be off by one for large v: correct both ways
    r = np.where(r * r > v, r - 1, r)
    r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


def layernorm_params(gamma, beta, s_out: float):
    """Per-channel integer gamma (Q16) and beta (Q28), both in units of the output scale."""
    g = np.round(np.asarray(gamma, np.float64) / s_out * (1 << LN_GAMMA_FRAC)).astype(np.int64)
    b = np.round(np.asarray(beta, np.float64) / s_out * (1 << (LN_FRAC + LN_GAMMA_FRAC))).astype(np.int64)
    if np.abs(g).max(initial=0) >= 1 << 31 or np.abs(b).max(initial=0) >= 1 << 62:
        raise ValueError("LayerNorm gamma/beta too large for the output scale")
    return g.astype(np.int32), b


def layernorm_eps(eps: float, s_in: float, channels: int) -> int:
    """eps in the units of the integer variance term (C^2 * var / s_in^2)."""
    return int(min(round(eps * channels * channels / (s_in * s_in)), (1 << 62)))


def layernorm(x, g, b, eps_int: int):
    """Integer LayerNorm over the last axis of int8 x [N, C].

    d_i   = C*x_i - sum(x)                      (int32)
    sigma = isqrt(sum(d^2) / C + eps_int)        (int64 sum, truncating division), at least 1
    inv   = floor(2^31 / sigma)
    n_i   = (d_i * inv) >> 19                    (Q12, int64 product, floor)
    y_i   = clamp((n_i * g_i + b_i + 2^27) >> 28)
    """
    x = x.astype(np.int64)
    c = x.shape[-1]
    d = c * x - x.sum(axis=-1, keepdims=True)
    var = (d * d).sum(axis=-1, keepdims=True) // c + eps_int
    sigma = np.maximum(isqrt(var), 1)
    inv = (np.int64(1) << LN_INV_BITS) // sigma
    n = (d * inv) >> (LN_INV_BITS - LN_FRAC)
    shift = LN_FRAC + LN_GAMMA_FRAC
    y = (n * g.astype(np.int64) + b + (np.int64(1) << (shift - 1))) >> shift
    return np.clip(y, I8_MIN, I8_MAX).astype(np.int8)


# ---------------------------------------------------------------- softmax

def softmax_lut(s_in: float) -> np.ndarray:
    """exp LUT for softmax: entry j holds round(2^15 exp(s_in (j - 255))), j = x - max + 255."""
    d = np.arange(256, dtype=np.float64) - 255
    return np.round(SOFTMAX_EXP_ONE * np.exp(s_in * d)).astype(np.uint16)


def softmax(x, lut):
    """Row softmax of int8 x [..., L]; output int8 probabilities at scale 1/127.

    e_i = lut[x_i - max + 255]; p_i = (127 e_i + sum/2) / sum  (unsigned, truncating)
    """
    x = x.astype(np.int32)
    e = np.asarray(lut, dtype=np.int64)[x - x.max(axis=-1, keepdims=True) + 255]
    total = e.sum(axis=-1, keepdims=True)
    return ((SOFTMAX_OUT_MAX * e + total // 2) // total).astype(np.int8)


# ---------------------------------------------------------------- residual add

def add_params(s_a: float, s_b: float, s_out: float) -> tuple[int, int, int]:
    """Multipliers (ma, mb) and shift so that y = (a ma + b mb + round) >> shift."""
    big = max(s_a, s_b) / s_out
    shift = ADD_FRAC - 1 - math.floor(math.log2(big)) if big > 0 else ADD_FRAC
    shift = max(1, min(shift, 30))
    ma = int(round(s_a / s_out * (1 << shift)))
    mb = int(round(s_b / s_out * (1 << shift)))
    if max(ma, mb) >= 1 << 23:
        raise ValueError("residual add scales too far apart")
    return ma, mb, shift


def add(a, b, ma: int, mb: int, shift: int):
    """y = clamp((a*ma + b*mb + 2^(shift-1)) >> shift): int32 arithmetic suffices (|a*ma| < 2^30)."""
    v = a.astype(np.int32) * np.int32(ma) + b.astype(np.int32) * np.int32(mb) + np.int32(1 << (shift - 1))
    return np.clip(v >> shift, I8_MIN, I8_MAX).astype(np.int8)


def mul(a, b, m: int, s: int):
    """y = requant(a * b, m, s): the int32 product of two int8 tensors, one multiplier for the whole
    tensor (s_a s_b / s_y), round half up, clamp."""
    return requantize(a.astype(np.int32) * b.astype(np.int32), m, s)


# ---------------------------------------------------------------- attention core

def attention(qkv, heads: int, m_qk: int, s_qk: int, exp_lut, m_av: int, s_av: int):
    """Multi-head attention core on int8 qkv [N, 3E] laid out per token as [3, H, dh].

    scores = requant(q k^T)  (the 1/sqrt(dh) is folded into m_qk)
    probs  = softmax(scores) at scale 1/127
    out    = requant(probs v) -> [N, E], laid out per token as [H, dh]
    """
    n, three_e = qkv.shape
    e = three_e // 3
    dh = e // heads
    t = qkv.reshape(n, 3, heads, dh).astype(np.int32)
    q, k, v = t[:, 0].transpose(1, 0, 2), t[:, 1].transpose(1, 0, 2), t[:, 2].transpose(1, 0, 2)
    scores = requantize(q @ k.transpose(0, 2, 1), m_qk, s_qk)          # [H, N, N]
    probs = softmax(scores, exp_lut)                                   # [H, N, N]
    out = requantize(probs.astype(np.int32) @ v, m_av, s_av)           # [H, N, dh]
    return out.transpose(1, 0, 2).reshape(n, e)


# ---------------------------------------------------------------- pooling

def mean_tokens(x, m: int, s: int):
    """Mean over tokens of int8 x [N, E]: requant(sum over N) with 1/N folded into m."""
    return requantize(x.astype(np.int32).sum(axis=0, keepdims=True), m, s)
