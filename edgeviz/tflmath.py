"""TFLite's integer semantics, as LiteRT's builtin reference kernels compute them: the specification
that an imported .tflite model's C kernels (firmware/kernels/ev_tfl.c) reproduce bit for bit.

edgeviz's own models follow intmath.py (symmetric int8, one rounding). A .tflite file keeps what its
converter chose: asymmetric activations with zero points, per-channel weights, and the runtime's
rounding, which differs from op to op:
- multipliers are TFLite's (m, shift) pairs: m in [2^30, 2^31), shift > 0 a left shift, and
  MultiplyByQuantizedMultiplier rounds twice (a doubling high multiply, then a rounding shift);
- the reference FULLY_CONNECTED requantises in double precision: round(acc * s_in s_w / s_out), C
  round() (half away from zero);
- SOFTMAX runs in Q5.26 / Q12.19 fixed point with a Newton-Raphson reciprocal;
- element-wise functions of one int8 tensor (LOGISTIC, GELU, RSQRT, QUANTIZE, a float island
  DEQUANTIZE -> ... -> QUANTIZE) are tables: edgeviz.tflite.importer reads them off LiteRT itself.
Every function takes and returns numpy integer arrays; scales arrive as the file's float32 values.
"""
from __future__ import annotations

import math

import numpy as np

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def _i64(x):
    return np.asarray(x, dtype=np.int64)


# ---------------------------------------------------------------- fixed-point primitives

def srdhm(a, b):
    """Saturating rounding doubling high multiply of int32 values (ARM's VQRDMULH): the high 32 bits of
    2ab, rounded half away from zero."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    t = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))          # C division: truncates toward zero
    return np.where((a == I32_MIN) & (b == I32_MIN), I32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded to nearest, ties away from zero (an arithmetic rounding shift)."""
    x, e = _i64(x), _i64(exponent)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def saturating_shift_left(x, e: int):
    """x * 2^e for int32 x, saturating (gemmlowp's SaturatingRoundingMultiplyByPOT with e > 0)."""
    x = _i64(x)
    limit = (1 << (31 - e)) - 1
    return np.where(x > limit, I32_MAX, np.where(x < -limit, I32_MIN, x << e))


def multiply_by_quantized_multiplier(x, m, shift):
    """TFLite's MultiplyByQuantizedMultiplier (the double-rounding build): x * m * 2^(shift - 31)."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    x = _i64(x) * (np.int64(1) << left)
    return rounding_divide_by_pot(srdhm(x, m), np.maximum(-shift, 0))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = m * 2^(shift - 31), m rounded half away from zero."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q > 0 else -1)
    if m == 1 << 31:
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m, shift


def round_half_away(v):
    """C's round() of float64 values, exactly (v - trunc(v) is exact in binary floating point)."""
    v = np.asarray(v, dtype=np.float64)
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0.0)


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 clamp a fused activation (0 none, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6) leaves, computed
    in float32 as TFLite does."""
    def q(f):
        return zero_point + int(round_half_away(np.float32(f) / np.float32(scale)))
    lo, hi = {1: (q(0.0), 127), 2: (q(-1.0), q(1.0)), 3: (q(0.0), q(6.0))}.get(activation, (-128, 127))
    return max(-128, lo), min(127, hi)


def clamp8(v, lo: int = -128, hi: int = 127):
    return np.clip(v, lo, hi).astype(np.int8)


# ---------------------------------------------------------------- matrix products

def fully_connected(x, w, bias, x_zp: int, y_zp: int, scales, lo: int, hi: int):
    """LiteRT's reference FULLY_CONNECTED: x [N, K] int8, w [O, K] int8 (symmetric), bias [O] int32;
    scales [O] float64 s_in s_w / s_out; y = clamp(round(acc * scale) + y_zp)."""
    acc = (_i64(x) - x_zp) @ _i64(w).T + _i64(bias)
    acc = acc.astype(np.int32).astype(np.float64)          # the kernel's int32 accumulator
    v = round_half_away(acc * np.asarray(scales, dtype=np.float64))
    v = np.clip(v, I32_MIN, I32_MAX).astype(np.int64) + y_zp
    return clamp8(v, lo, hi)


def double_parts(scales) -> tuple[np.ndarray, np.ndarray]:
    """Each float64 scale as (53-bit significand m, shift sh) with scale = m 2^-sh exactly: what the C
    kernel multiplies by in integers to get round((double)acc * scale) without a double."""
    ms, shs = [], []
    for s in np.asarray(scales, dtype=np.float64).reshape(-1):
        if s == 0:
            ms.append(0)
            shs.append(0)
            continue
        frac, e = math.frexp(float(s))
        ms.append(int(frac * (1 << 53)))
        shs.append(53 - e)
    return np.array(ms, dtype=np.int64), np.array(shs, dtype=np.int32)


def _first_at_least(f, lo, hi, levels):
    """Per row of the [C, V] problem: the least a in [lo, hi] (hi: none) with f(a) >= levels, f
    nondecreasing in a; lo, hi [C, 1] int64, f(a [C, V]) -> [C, V]."""
    lo = np.broadcast_to(lo, levels.shape).copy()
    hi = np.broadcast_to(hi, levels.shape).copy()
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = f(mid) >= levels
        hi = np.where(ok & (lo < hi), mid, hi)
        lo = np.where(~ok & (lo < hi), mid + 1, lo)
    return lo


FC_FIXED_MAX_T = 22


def fc_fixed_point(scales, bias, k: int, y_zp: int, lo: int, hi: int):
    """FULLY_CONNECTED's requantisation, round((double)acc * scale) + y_zp clamped to [lo, hi], as one
    32-bit fixed-point multiply per output where that is provably the same function: per channel
    (m, r, t) with clamp(floor((acc m + r 2^32) / 2^(32 + t)), lo, hi) (SMMLA, ASR, SSAT; r folds the
    rounding half 2^(t-1) and y_zp 2^t in) equal to the reference for every accumulator the channel
    can reach (bias +- k 128 128). Both sides are nondecreasing step functions of acc (a double
    product by a positive scale and round() are monotonic), so they are equal iff every step, the
    least acc reaching each output level lo+1..hi, is at the same place: found by bisection on both
    sides. m is the scale's 31-bit significand, then its neighbours where a step moved. None where
    a scale is not in (0, 1/4), a range is too wide, or no candidate matches (the caller keeps the
    exact path)."""
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    span = int(k) * 128 * 128
    amin, amax = (b - span)[:, None], (b + span)[:, None]
    if lo >= hi or np.any(~(s > 0)) or np.any(s >= 0.25) or np.any(np.abs(amin) >= 1 << 24) or np.any(np.abs(amax) >= 1 << 24):
        return None
    e = np.frexp(s)[1].astype(np.int64)
    t = -e - 1                                        # s = f 2^e, f in [1/2, 1): m = f 2^31
    if np.any(t < 1) or np.any(t > FC_FIXED_MAX_T):
        return None
    m0 = np.floor(np.ldexp(s, (32 + t).astype(np.int32)) + 0.5).astype(np.int64)
    levels = np.arange(lo + 1, hi + 1, dtype=np.int64)[None, :].repeat(len(s), 0)

    def ref(a):
        v = round_half_away(a.astype(np.float64) * s[:, None])
        return np.clip(v, -(1 << 40), 1 << 40).astype(np.int64) + y_zp

    want = _first_at_least(ref, amin, amax + 1, levels)
    r = (np.int64(1) << (t - 1)) + np.int64(y_zp) * (np.int64(1) << t)
    m = np.zeros_like(m0)
    todo = np.ones(len(s), dtype=bool)
    for d in (0, 1, -1, 2, -2, 3, -3):
        md = m0 + d
        if not np.any(todo) or np.any(md[todo] >= 1 << 31):
            break

        def fast(a, md=md):
            return (a * md[:, None] + (r[:, None] << 32)) >> (32 + t)[:, None]

        got = _first_at_least(fast, amin, amax + 1, levels)
        ok = todo & np.all(got == want, axis=1)
        m[ok] = md[ok]
        todo &= ~ok
    if np.any(todo):
        return None
    return np.stack([m, r, t], axis=1).astype(np.int32)


def requantize_acc(acc, m, shift, y_zp: int, lo: int = -128, hi: int = 127):
    """int32 accumulators to int8 with TFLite's multipliers (per channel along the last axis)."""
    return clamp8(multiply_by_quantized_multiplier(acc, m, shift) + y_zp, lo, hi)


def batch_matmul(a, b, a_zp: int, b_zp: int, m: int, shift: int, y_zp: int):
    """a [..., M, K] @ b [..., K, N] with zero points, TFLite's integer requantisation."""
    acc = np.matmul(_i64(a) - a_zp, _i64(b) - b_zp)
    return requantize_acc(acc, m, shift, y_zp)


# ---------------------------------------------------------------- element-wise of two tensors

ADD_LEFT_SHIFT = 20          # int8 ADD / SUB scale both inputs by 2^20 first
SQDIFF_LEFT_SHIFT = 7        # SQUARED_DIFFERENCE by 2^7


def add_params(s_a: float, s_b: float, s_y: float, left_shift: int = ADD_LEFT_SHIFT, squared: bool = False):
    """(ma, sa, mb, sb, my, sy) of TFLite's int8 ADD / SUB (or SQUARED_DIFFERENCE with squared)."""
    twice = 2.0 * float(max(np.float32(s_a), np.float32(s_b)))
    out = (twice * twice) if squared else twice
    denom = float(np.float32((1 << (2 * left_shift if squared else left_shift)) * np.float32(s_y)))
    ma, sa = quantize_multiplier(float(np.float32(s_a)) / twice)
    mb, sb = quantize_multiplier(float(np.float32(s_b)) / twice)
    my, sy = quantize_multiplier(out / denom)
    return ma, sa, mb, sb, my, sy


def add(a, b, a_zp, b_zp, y_zp, params, lo=-128, hi=127, subtract=False, left_shift=ADD_LEFT_SHIFT):
    ma, sa, mb, sb, my, sy = params
    xa = multiply_by_quantized_multiplier((_i64(a) - a_zp) << left_shift, ma, sa)
    xb = multiply_by_quantized_multiplier((_i64(b) - b_zp) << left_shift, mb, sb)
    return clamp8(multiply_by_quantized_multiplier(xa - xb if subtract else xa + xb, my, sy) + y_zp, lo, hi)


def squared_difference(a, b, a_zp, b_zp, y_zp, params, lo=-128, hi=127):
    ma, sa, mb, sb, my, sy = params
    xa = multiply_by_quantized_multiplier((_i64(a) - a_zp) << SQDIFF_LEFT_SHIFT, ma, sa)
    xb = multiply_by_quantized_multiplier((_i64(b) - b_zp) << SQDIFF_LEFT_SHIFT, mb, sb)
    d = xa - xb
    return clamp8(multiply_by_quantized_multiplier(d * d, my, sy) + y_zp, lo, hi)


def mul_params(s_a: float, s_b: float, s_y: float) -> tuple[int, int]:
    """MUL's multiplier: s_a s_b / s_y computed in float32, as the kernel's Prepare does."""
    return quantize_multiplier(float(np.float32(np.float32(s_a) * np.float32(s_b)) / np.float32(s_y)))


def mul(a, b, a_zp, b_zp, y_zp, m, shift, lo=-128, hi=127):
    return clamp8(multiply_by_quantized_multiplier((_i64(a) - a_zp) * (_i64(b) - b_zp), m, shift) + y_zp, lo, hi)


# ---------------------------------------------------------------- reductions

def mean_params(s_in: float, s_out: float, count: int) -> tuple[int, int]:
    """MEAN's multiplier for `count` elements: QuantizeMultiplier(s_in / s_out), then 1/count folded
    in with as many bits as the count has (the kernel does it at run time; here once)."""
    m, shift = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((m << k) // count), shift - k


def mean(x, axis_len: int, x_zp: int, y_zp: int, m: int, shift: int):
    """Mean over the last axis of x [..., L] (the reduced axes moved last)."""
    s = _i64(x).sum(axis=-1) - x_zp * axis_len
    return clamp8(multiply_by_quantized_multiplier(s.astype(np.int32), m, shift) + y_zp)


# ---------------------------------------------------------------- softmax

SOFTMAX_DIFF_BITS = 5        # the scaled difference is Q5.26
SOFTMAX_ACC_BITS = 12        # the sum of exponentials is Q12.19


def _exp_on_interval(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out (a Taylor expansion around -1/8)."""
    def mul(p, q):
        return int(srdhm(p, q))
    x = a + (1 << 28)
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    t = int(rounding_divide_by_pot(mul(int(rounding_divide_by_pot(x4, 2)) + x3, 715827883) + x2, 1))
    c = 1895147668                                      # exp(-1/8)
    return c + mul(c, x + t)


# exp(-2^k) in Q0.31 for k = -2 .. 4: applied per set bit of the whole quarters
_EXP_POWERS = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int = SOFTMAX_DIFF_BITS) -> int:
    """exp(a) in Q0.31 for a <= 0 given in Q(integer_bits).(31 - integer_bits)."""
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval(int(saturating_shift_left(a_mod, integer_bits)))
    remainder = a_mod - a
    for k, mult in _EXP_POWERS:
        if integer_bits > k and remainder & (1 << (frac + k)):
            result = int(srdhm(result, mult))
    return I32_MAX if a == 0 else result


def softmax_params(s_in: float, beta: float) -> tuple[int, int, int]:
    """(multiplier, left shift, diff_min) of the reference int8 SOFTMAX."""
    real = min(float(np.float32(beta)) * float(np.float32(s_in)) * (1 << (31 - SOFTMAX_DIFF_BITS)),
               float((1 << 31) - 1))
    m, shift = quantize_multiplier(real)
    radius = math.floor(((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS)) / (1 << shift))
    return m, shift, -radius


def softmax_exp_table(m: int, shift: int, diff_min: int) -> np.ndarray:
    """exp of every difference d = x - max(row) in [-255, 0], Q0.31, entry 255 + d; 0 where the kernel
    skips the element (d < diff_min)."""
    table = np.zeros(256, dtype=np.int64)
    for d in range(-255, 1):
        if d >= diff_min:
            table[255 + d] = exp_on_negative_values(int(srdhm(d * (1 << shift), m)))
    return table.astype(np.int32)


def one_over_one_plus_x(a: int) -> int:
    """1 / (1 + a) for a in [0, 1), Q0.31 (Newton-Raphson, three steps)."""
    s = a + I32_MAX
    half = (s + (1 if s >= 0 else -1)) // 2 if s >= 0 else -((-s + 1) // 2)
    x = 1515870810 + int(srdhm(half, -1010580540))             # 48/17 - 32/17 d, Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - int(srdhm(half, x))
        x = x + int(saturating_shift_left(int(srdhm(x, one_minus)), 2))
    return int(saturating_shift_left(x, 1))


def reciprocal(total: int, integer_bits: int = SOFTMAX_ACC_BITS) -> tuple[int, int]:
    """(1 / total as Q0.31 of the total normalised into [1, 2), bits over one) of a positive Q12.19."""
    headroom = 32 - int(total).bit_length()
    shifted = ((total << headroom) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x(shifted), integer_bits - headroom


def softmax(x, table: np.ndarray, diff_min: int):
    """Row softmax of int8 x [..., L] to int8 at scale 1/256, zero point -128."""
    x = _i64(x)
    d = x - x.max(axis=-1, keepdims=True)
    e = _i64(table)[d + 255]
    keep = d >= diff_min
    sums = rounding_divide_by_pot(e, SOFTMAX_ACC_BITS).sum(axis=-1)
    out = np.empty(x.shape, dtype=np.int8)
    flat_e, flat_k, flat_o = e.reshape(-1, x.shape[-1]), keep.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])
    for r, total in enumerate(sums.reshape(-1)):
        inv, over = reciprocal(int(total))
        v = rounding_divide_by_pot(srdhm(inv, flat_e[r]), over + 31 - 8) - 128
        flat_o[r] = np.where(flat_k[r], np.clip(v, -128, 127), -128)
    return out
