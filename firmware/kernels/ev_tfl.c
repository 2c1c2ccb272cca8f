/* Kernels for imported .tflite models, in TFLite's integer semantics.
 *
 * edgeviz/tflmath.py is the specification (what LiteRT's builtin reference kernels compute); these
 * reproduce it bit for bit. Differences from edgeviz's own kernels (intmath.py): activations carry
 * zero points, multipliers are TFLite's (m, shift) with two roundings, and FULLY_CONNECTED
 * requantises as the reference kernel does, round((double)acc * scale), which here runs in integers
 * (ev_tfl_round_scaled) so that no core needs a double-precision FPU or soft-float code. */
#include "ev_dsp.h"

/* gemmlowp's SaturatingRoundingDoublingHighMul: high 32 bits of 2ab, rounded half away from zero.
 * The division by 2^31 truncates toward zero; written as shifts so no 64-bit divide is called. */
static inline int32_t ev_tfl_srdhm(int32_t a, int32_t b)
{
    int64_t t;
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    t = (int64_t)a * b;
    t += t >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)(t >= 0 ? t >> 31 : -((-t) >> 31));
}

/* x / 2^e rounded to nearest, ties away from zero. */
static inline int32_t ev_tfl_rdbpot(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + ((x & mask) > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier: x * m * 2^(shift - 31), shift > 0 a left shift. */
static inline int32_t ev_tfl_mbqm(int32_t x, int32_t m, int32_t shift)
{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return ev_tfl_rdbpot(ev_tfl_srdhm((int32_t)((uint32_t)x << left), m), right);
}

static inline int8_t ev_tfl_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* round((double)acc * s), C's round() of an IEEE double product, in integers. s = m * 2^-sh with m
 * the double's 53-bit significand (0 for s == 0). The exact product P = |acc| m (< 2^85) is held in
 * two words; the double multiply keeps its top 53 bits, rounding to nearest even (q * 2^d); round()
 * then rounds q * 2^(d - sh) half away from zero. The result is clamped to +-2^30: the caller adds a
 * zero point and clamps to int8, which any larger value would reach the same way. */
static inline int32_t ev_tfl_round_scaled(int32_t acc, int64_t m, int32_t sh)
{
    const uint32_t a = acc < 0 ? (uint32_t)0 - (uint32_t)acc : (uint32_t)acc;
    const uint64_t t1 = (uint64_t)a * (uint32_t)m;
    const uint64_t mid = (t1 >> 32) + (uint64_t)a * (uint32_t)((uint64_t)m >> 32);   /* P = mid 2^32 + lo */
    const uint32_t lo = (uint32_t)t1;
    uint64_t q, r;
    int bits, d, e;
    if (a == 0 || m == 0)
        return 0;
    bits = mid ? 96 - __builtin_clzll(mid) : 32 - __builtin_clz(lo);
    d = bits > 53 ? bits - 53 : 0;
    if (d == 0) {
        q = (mid << 32) | lo;
    } else {
        const uint32_t rem = d == 32 ? lo : lo & (((uint32_t)1 << d) - 1);
        const uint32_t half = (uint32_t)1 << (d - 1);
        q = d == 32 ? mid : (mid << (32 - d)) | (lo >> d);
        if (rem > half || (rem == half && (q & 1)))
            q++;                                   /* the double's rounding: to nearest, ties to even */
    }
    e = sh - d;                                    /* the double is q * 2^-e */
    if (e <= 0)
        r = (-e >= 31 || q > ((uint64_t)1 << 30) >> -e) ? ((uint64_t)1 << 30) : q << -e;
    else if (e >= 55)
        r = 0;                                     /* q <= 2^53 < 2^(e-1): below one half */
    else
        r = (q + ((uint64_t)1 << (e - 1))) >> e;   /* half away from zero (on |v|) */
    if (r > ((uint64_t)1 << 30))
        r = (uint64_t)1 << 30;
    return acc < 0 ? -(int32_t)r : (int32_t)r;
}

/* The DSP path widens an input row once (ev_dsp.h) into a stack buffer of EV_TFL_FC_BUF words
 * (inputs up to 2 * EV_TFL_FC_BUF) and runs SMLAD over two channels at a time; the sums are the
 * same int32 values in another order. */
#ifndef EV_TFL_FC_BUF
#define EV_TFL_FC_BUF 256
#endif

void ev_tfl_fc_s8(const int8_t *x, int rows, int k, int o, const int8_t *w, const int32_t *bias,
                  const int64_t *scale_m, const int32_t *scale_sh, int32_t y_zp, int32_t lo, int32_t hi, int8_t *y)
{
    int n, j, i;
#if EV_KERNELS_DSP
    uint32_t xb[EV_TFL_FC_BUF];
    const int kq = k / 4, tail = k - 4 * (k / 4);
    if (2 * kq <= EV_TFL_FC_BUF && o >= 2) {
        for (n = 0; n < rows; n++) {
            const int8_t *xr = x + n * k;
            ev__widen1(xr, kq, xb);
            for (j = 0; j < o; j += 2) {
                const int j0 = j + 1 < o ? j : o - 2;        /* an odd last channel: redo the pair before */
                const int8_t *w0 = w + j0 * k, *w1 = w0 + k;
                uint32_t acc[2];
                acc[0] = (uint32_t)bias[j0];
                acc[1] = (uint32_t)bias[j0 + 1];
                ev__t12_a(xb, kq, w0, w1, acc);
                acc[0] = ev__dot_tail(xr + 4 * kq, w0 + 4 * kq, tail, acc[0]);
                acc[1] = ev__dot_tail(xr + 4 * kq, w1 + 4 * kq, tail, acc[1]);
                y[n * o + j0] = ev_tfl_clamp(ev_tfl_round_scaled((int32_t)acc[0], scale_m[j0], scale_sh[j0]) + y_zp,
                                             lo, hi);
                y[n * o + j0 + 1] = ev_tfl_clamp(
                    ev_tfl_round_scaled((int32_t)acc[1], scale_m[j0 + 1], scale_sh[j0 + 1]) + y_zp, lo, hi);
            }
        }
        return;
    }
#endif
    for (n = 0; n < rows; n++) {
        const int8_t *xr = x + n * k;
        for (j = 0; j < o; j++) {
            const int8_t *wr = w + j * k;
            int32_t acc = bias[j];
            for (i = 0; i < k; i++)
                acc += (int32_t)xr[i] * wr[i];
            y[n * o + j] = ev_tfl_clamp(ev_tfl_round_scaled(acc, scale_m[j], scale_sh[j]) + y_zp, lo, hi);
        }
    }
}

void ev_tfl_conv_s8(const int8_t *x, int h, int w, int c, const int8_t *f, int o, int kh, int kw, int sh, int sw,
                    int pad_t, int pad_l, int oh, int ow, const int32_t *bias, const int32_t *m, const int32_t *shift,
                    int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, int8_t *patch, int8_t *y)
{
    const int taps = kh * kw * c;
    int oy, ox, dy, dx, ch, j, i;
    for (oy = 0; oy < oh; oy++) {
        for (ox = 0; ox < ow; ox++) {
            int8_t *p = patch;
            for (dy = 0; dy < kh; dy++) {
                const int iy = oy * sh - pad_t + dy;
                for (dx = 0; dx < kw; dx++) {
                    const int ix = ox * sw - pad_l + dx;
                    const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    for (ch = 0; ch < c; ch++)
                        *p++ = inside ? x[(iy * w + ix) * c + ch] : (int8_t)x_zp;
                }
            }
            for (j = 0; j < o; j++) {
                const int8_t *fr = f + j * taps;
                int32_t acc = bias[j];
                for (i = 0; i < taps; i++)
                    acc += ((int32_t)patch[i] - x_zp) * fr[i];
                y[(oy * ow + ox) * o + j] = ev_tfl_clamp(ev_tfl_mbqm(acc, m[j], shift[j]) + y_zp, lo, hi);
            }
        }
    }
}

/* sa, sb: four batch strides (0 where broadcast), then the stride of a row (a: output row,
 * b: output column) and of the depth; y is [batch..., rows, cols], contiguous. */
void ev_tfl_bmm_s8(const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa, const int32_t *sb,
                   int rows, int cols, int depth, int32_t a_zp, int32_t b_zp, int32_t m, int32_t shift,
                   int32_t y_zp, int8_t *y)
{
    int b0, b1, b2, b3, r, q, i;
    for (b0 = 0; b0 < dims[0]; b0++)
    for (b1 = 0; b1 < dims[1]; b1++)
    for (b2 = 0; b2 < dims[2]; b2++)
    for (b3 = 0; b3 < dims[3]; b3++) {
        const int8_t *ab = a + b0 * sa[0] + b1 * sa[1] + b2 * sa[2] + b3 * sa[3];
        const int8_t *bb = b + b0 * sb[0] + b1 * sb[1] + b2 * sb[2] + b3 * sb[3];
        for (r = 0; r < rows; r++) {
            for (q = 0; q < cols; q++) {
                const int8_t *ar = ab + r * sa[4], *bc = bb + q * sb[4];
                int32_t acc = 0;
                for (i = 0; i < depth; i++)
                    acc += ((int32_t)ar[i * sa[5]] - a_zp) * ((int32_t)bc[i * sb[5]] - b_zp);
                *y++ = ev_tfl_clamp(ev_tfl_mbqm(acc, m, shift) + y_zp, -128, 127);
            }
        }
    }
}

/* kind 0 ADD, 1 SUB: p = {ma, sa, mb, sb, my, sy}, inputs scaled by 2^20 first;
 * kind 2 MUL: p = {m, shift}; kind 3 SQUARED_DIFFERENCE: as ADD with 2^7 and the difference squared. */
void ev_tfl_binary_s8(int kind, const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa,
                      const int32_t *sb, int32_t a_zp, int32_t b_zp, int32_t y_zp, const int32_t *p,
                      int32_t lo, int32_t hi, int8_t *y)
{
    const int left = kind == 3 ? 7 : 20;
    int i0, i1, i2, i3;
    for (i0 = 0; i0 < dims[0]; i0++)
    for (i1 = 0; i1 < dims[1]; i1++)
    for (i2 = 0; i2 < dims[2]; i2++) {
        const int8_t *ar = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
        const int8_t *br = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
        for (i3 = 0; i3 < dims[3]; i3++) {
            const int32_t va = (int32_t)ar[i3 * sa[3]] - a_zp, vb = (int32_t)br[i3 * sb[3]] - b_zp;
            int32_t v;
            if (kind == 2) {
                v = ev_tfl_mbqm(va * vb, p[0], p[1]);
            } else {
                const int32_t xa = ev_tfl_mbqm(va * (1 << left), p[0], p[1]);
                const int32_t xb = ev_tfl_mbqm(vb * (1 << left), p[2], p[3]);
                const int32_t d = kind == 1 || kind == 3 ? xa - xb : xa + xb;
                v = ev_tfl_mbqm(kind == 3 ? d * d : d, p[4], p[5]);
            }
            *y++ = ev_tfl_clamp(v + y_zp, lo, hi);
        }
    }
}

/* exp_table[255 + d]: exp(d * input scale) in Q0.31 for d = x - max(row), 0 below diff_min. */
void ev_tfl_softmax_s8(const int8_t *x, int rows, int len, const int32_t *exp_table, int32_t diff_min, int8_t *y)
{
    int r, i;
    for (r = 0; r < rows; r++, x += len, y += len) {
        int32_t mx = -128, sum = 0, inv, one_minus, hd, xr;
        int headroom, exponent, it;
        uint32_t u;
        for (i = 0; i < len; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (i = 0; i < len; i++)
            sum += ev_tfl_rdbpot(exp_table[255 + x[i] - mx], 12);      /* Q0.31 -> Q12.19 */
        /* 1 / sum: normalise into [1, 2) and run gemmlowp's one_over_one_plus_x_for_x_in_0_1 */
        u = (uint32_t)sum;
        headroom = 0;
        while (headroom < 32 && !(u & 0x80000000u)) {
            u <<= 1;
            headroom++;
        }
        xr = (int32_t)(u - 0x80000000u);
        hd = (int32_t)(((int64_t)xr + INT32_MAX + 1) / 2);             /* (xr + 1) / 2, rounded */
        inv = 1515870810 + ev_tfl_srdhm(hd, -1010580540);               /* Q2.29 */
        for (it = 0; it < 3; it++) {
            int32_t t;
            one_minus = (1 << 29) - ev_tfl_srdhm(hd, inv);
            t = ev_tfl_srdhm(inv, one_minus);
            t = t > (1 << 29) - 1 ? INT32_MAX : t < -((1 << 29) - 1) ? INT32_MIN : t * 4;
            inv += t;
        }
        inv = inv > (1 << 30) - 1 ? INT32_MAX : inv < -((1 << 30) - 1) ? INT32_MIN : inv * 2;
        exponent = (12 - headroom) + 31 - 8;
        for (i = 0; i < len; i++) {
            const int32_t d = x[i] - mx;
            if (d >= diff_min)
                y[i] = ev_tfl_clamp(ev_tfl_rdbpot(ev_tfl_srdhm(inv, exp_table[255 + d]), exponent) - 128, -128, 127);
            else
                y[i] = -128;
        }
    }
}

/* Mean over the middle axis of x seen as [outer, red, inner]. */
void ev_tfl_mean_s8(const int8_t *x, int outer, int red, int inner, int32_t x_zp, int32_t y_zp, int32_t m,
                    int32_t shift, int8_t *y)
{
    int a, r, b;
    for (a = 0; a < outer; a++) {
        for (b = 0; b < inner; b++) {
            int32_t s = 0;
            for (r = 0; r < red; r++)
                s += x[(a * red + r) * inner + b];
            *y++ = ev_tfl_clamp(ev_tfl_mbqm(s - x_zp * red, m, shift) + y_zp, -128, 127);
        }
    }
}

/* A table, or one per channel when ch > 1: luts[c * 256 + x + 128] for the n elements of x. */
void ev_tfl_lut_s8(const int8_t *x, int n, int ch, const int8_t *luts, int8_t *y)
{
    int r, c;
    for (r = 0; r < n / ch; r++)
        for (c = 0; c < ch; c++, x++, y++)
            *y = luts[c * 256 + *x + 128];
}

/* A box of six dimensions, element strides on both sides. */
void ev_tfl_copy_s8(const int8_t *x, const int32_t *d, const int32_t *si, int8_t *y, const int32_t *so)
{
    int i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < d[0]; i0++)
    for (i1 = 0; i1 < d[1]; i1++)
    for (i2 = 0; i2 < d[2]; i2++)
    for (i3 = 0; i3 < d[3]; i3++)
    for (i4 = 0; i4 < d[4]; i4++) {
        const int8_t *s = x + i0 * si[0] + i1 * si[1] + i2 * si[2] + i3 * si[3] + i4 * si[4];
        int8_t *t = y + i0 * so[0] + i1 * so[1] + i2 * so[2] + i3 * so[3] + i4 * so[4];
        if (si[5] == 1 && so[5] == 1) {
            for (i5 = 0; i5 < d[5]; i5++)
                t[i5] = s[i5];
        } else {
            for (i5 = 0; i5 < d[5]; i5++)
                t[i5 * so[5]] = s[i5 * si[5]];
        }
    }
}
