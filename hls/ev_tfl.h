// edgeviz HLS templates for imported .tflite models: TFLite's integer semantics (edgeviz/tflmath.py,
// what LiteRT's builtin reference kernels compute), bit for bit. One datapath per op, serial: one
// MAC or element a cycle (the loops are pipelined; REUSE does not apply yet), so the estimate counts
// these steps at one lane. Sizes come as arguments, because an imported graph's shapes are
// arbitrary (broadcasts, strided views), and the loops stay within them.
#ifndef EV_TFL_H
#define EV_TFL_H

#include "ev_types.h"

// gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2ab, rounded half away from 0.
static inline ev_i32 ev_tfl_srdhm(ev_i32 a, ev_i32 b) {
    if (a == ev_i32(INT32_MIN) && b == ev_i32(INT32_MIN)) return ev_i32(INT32_MAX);
    ev_i64 t = ev_i64(a) * ev_i64(b);
    t += t >= 0 ? (ev_i64(1) << 30) : (ev_i64(1) - (ev_i64(1) << 30));
    return ev_i32(t >= 0 ? (t >> 31) : -((-t) >> 31));
}

// x / 2^e, to nearest, ties away from zero.
static inline ev_i32 ev_tfl_rdbpot(ev_i32 x, int e) {
    const ev_i32 mask = ev_i32((ev_i64(1) << e) - 1);
    const ev_i32 threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + ((x & mask) > threshold ? 1 : 0);
}

// MultiplyByQuantizedMultiplier: x m 2^(shift - 31), shift > 0 a left shift.
static inline ev_i32 ev_tfl_mbqm(ev_i32 x, ev_i32 m, ev_i32 shift) {
    const int left = shift > 0 ? int(shift) : 0, right = shift > 0 ? 0 : -int(shift);
    return ev_tfl_rdbpot(ev_tfl_srdhm(ev_i32(uint32_t(int32_t(x)) << left), m), right);
}

static inline ev_i8 ev_tfl_clamp(ev_i32 v, ev_i32 lo, ev_i32 hi) {
    return ev_i8(v < lo ? lo : v > hi ? hi : v);
}

// round((double)acc * m 2^-sh) in integers: the 85-bit product, rounded to the 53 bits a double
// keeps (nearest, ties to even), then half away from zero; clamped to +-2^30 (see ev_tfl.c, whose
// fast path gives the same values).
static inline ev_i32 ev_tfl_round_scaled(ev_i32 acc, ev_i64 m, ev_i32 sh) {
    const uint32_t a = acc < 0 ? uint32_t(0) - uint32_t(int32_t(acc)) : uint32_t(int32_t(acc));
    if (a == 0 || m == 0) return 0;
    const uint64_t mm = uint64_t(int64_t(m));
    const uint64_t t1 = uint64_t(a) * uint32_t(mm);
    const uint64_t mid = (t1 >> 32) + uint64_t(a) * uint32_t(mm >> 32);
    const uint32_t lo = uint32_t(t1);
    int bits = 0;
    for (int b = 0; b < 64; b++) if ((mid >> b) & 1) bits = 33 + b;
    if (!mid) for (int b = 0; b < 32; b++) if ((lo >> b) & 1) bits = 1 + b;
    const int d = bits > 53 ? bits - 53 : 0;
    uint64_t q;
    if (d == 0) {
        q = (mid << 32) | lo;
    } else {
        const uint32_t rem = d == 32 ? lo : lo & ((uint32_t(1) << d) - 1);
        const uint32_t half = uint32_t(1) << (d - 1);
        q = d == 32 ? mid : (mid << (32 - d)) | (lo >> d);
        if (rem > half || (rem == half && (q & 1))) q++;
    }
    const int e = int(sh) - d;
    uint64_t r;
    if (e <= 0) r = (-e >= 31 || q > (uint64_t(1) << 30) >> -e) ? (uint64_t(1) << 30) : q << -e;
    else if (e >= 55) r = 0;
    else r = (q + (uint64_t(1) << (e - 1))) >> e;
    if (r > (uint64_t(1) << 30)) r = uint64_t(1) << 30;
    return acc < 0 ? -ev_i32(int32_t(r)) : ev_i32(int32_t(r));
}

// FULLY_CONNECTED: y[n][j] = clamp(round((bias[j] + sum x w) * scale[j]) + y_zp)
static inline void ev_tfl_fc(const ev_i8 *x, int rows, int k, int o, const ev_i8 *w, const ev_i32 *bias,
                      const ev_i64 *scale_m, const ev_i32 *scale_sh, ev_i32 y_zp, ev_i32 lo, ev_i32 hi, ev_i8 *y) {
    for (int n = 0; n < rows; n++)
        for (int j = 0; j < o; j++) {
            ev_i32 acc = bias[j];
        fc_dot:
            for (int i = 0; i < k; i++) {
#pragma HLS PIPELINE II=1
                acc += ev_i32(x[n * k + i]) * ev_i32(w[j * k + i]);
            }
            y[n * o + j] = ev_tfl_clamp(ev_tfl_round_scaled(acc, scale_m[j], scale_sh[j]) + y_zp, lo, hi);
        }
}

// CONV_2D over an NHWC image; bias holds bias - x_zp sum(filter), taps outside the image read x_zp.
static inline void ev_tfl_conv(const ev_i8 *x, int h, int w, int c, const ev_i8 *f, int o, int kh, int kw, int sh, int sw,
                        int pad_t, int pad_l, int oh, int ow, const ev_i32 *bias, const ev_i32 *m, const ev_i32 *shift,
                        ev_i32 x_zp, ev_i32 y_zp, ev_i32 lo, ev_i32 hi, ev_i8 *y) {
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int j = 0; j < o; j++) {
                ev_i32 acc = bias[j];
                int tap = 0;
                for (int dy = 0; dy < kh; dy++)
                    for (int dx = 0; dx < kw; dx++) {
                        const int iy = oy * sh - pad_t + dy, ix = ox * sw - pad_l + dx;
                        const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    conv_dot:
                        for (int ch = 0; ch < c; ch++, tap++) {
#pragma HLS PIPELINE II=1
                            acc += (inside ? ev_i32(x[(iy * w + ix) * c + ch]) : x_zp) * ev_i32(f[j * kh * kw * c + tap]);
                        }
                    }
                y[(oy * ow + ox) * o + j] = ev_tfl_clamp(ev_tfl_mbqm(acc, m[j], shift[j]) + y_zp, lo, hi);
            }
}

// BATCH_MATMUL by strides: sa, sb = four batch strides, row stride, depth stride.
static inline void ev_tfl_bmm(const ev_i8 *a, const ev_i8 *b, const int *dims, const int *sa, const int *sb, int rows,
                       int cols, int depth, ev_i32 a_zp, ev_i32 b_zp, ev_i32 m, ev_i32 shift, ev_i32 y_zp, ev_i8 *y) {
    int out = 0;
    for (int b0 = 0; b0 < dims[0]; b0++)
    for (int b1 = 0; b1 < dims[1]; b1++)
    for (int b2 = 0; b2 < dims[2]; b2++)
    for (int b3 = 0; b3 < dims[3]; b3++) {
        const int ao = b0 * sa[0] + b1 * sa[1] + b2 * sa[2] + b3 * sa[3];
        const int bo = b0 * sb[0] + b1 * sb[1] + b2 * sb[2] + b3 * sb[3];
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++) {
                ev_i32 acc = 0;
            bmm_dot:
                for (int i = 0; i < depth; i++) {
#pragma HLS PIPELINE II=1
                    acc += (ev_i32(a[ao + r * sa[4] + i * sa[5]]) - a_zp) * (ev_i32(b[bo + q * sb[4] + i * sb[5]]) - b_zp);
                }
                y[out++] = ev_tfl_clamp(ev_tfl_mbqm(acc, m, shift) + y_zp, -128, 127);
            }
    }
}

// ADD (0), SUB (1), MUL (2), SQUARED_DIFFERENCE (3) over a 4-D walk with broadcast strides. ADD, SUB
// and SQUARED_DIFFERENCE read each input's scaled value from its ROM (tabs: a's 256, b's 256, made at
// compile time by tflmath's multiply_by_quantized_multiplier((v - zp) << left)); MUL has none (0).
static inline void ev_tfl_binary(int kind, const ev_i8 *a, const ev_i8 *b, const int *dims, const int *sa, const int *sb,
                          ev_i32 a_zp, ev_i32 b_zp, ev_i32 y_zp, const ev_i32 *p, const ev_i32 *tabs, ev_i32 lo,
                          ev_i32 hi, ev_i8 *y) {
    int out = 0;
    for (int i0 = 0; i0 < dims[0]; i0++)
    for (int i1 = 0; i1 < dims[1]; i1++)
    for (int i2 = 0; i2 < dims[2]; i2++)
    binary_row:
    for (int i3 = 0; i3 < dims[3]; i3++) {
#pragma HLS PIPELINE II=1
        const ev_i32 ra = ev_i32(a[i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]]);
        const ev_i32 rb = ev_i32(b[i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]]);
        ev_i32 v;
        if (kind == 2) {
            v = ev_tfl_mbqm((ra - a_zp) * (rb - b_zp), p[0], p[1]);
        } else {
            const ev_i32 xa = tabs[ra + 128];
            const ev_i32 xb = tabs[256 + rb + 128];
            const ev_i32 d = kind == 0 ? xa + xb : xa - xb;
            v = ev_tfl_mbqm(kind == 3 ? d * d : d, p[4], p[5]);
        }
        y[out++] = ev_tfl_clamp(v + y_zp, lo, hi);
    }
}

// SOFTMAX: exp of every difference to the row maximum from a table (Q0.31), gemmlowp's reciprocal.
static inline void ev_tfl_softmax(const ev_i8 *x, int rows, int len, const ev_i32 *exp_table, ev_i32 diff_min, ev_i8 *y) {
    for (int r = 0; r < rows; r++) {
        const ev_i8 *xr = x + r * len;
        ev_i8 *yr = y + r * len;
        ev_i32 mx = -128, sum = 0;
        for (int i = 0; i < len; i++) mx = xr[i] > mx ? ev_i32(xr[i]) : mx;
        for (int i = 0; i < len; i++) sum += ev_tfl_rdbpot(exp_table[255 + xr[i] - mx], 12);
        uint32_t u = uint32_t(int32_t(sum));
        int headroom = 0;
        for (int b = 31; b >= 0 && !((u >> b) & 1); b--) headroom++;
        u <<= headroom;
        const ev_i32 xs = ev_i32(int32_t(u - 0x80000000u));
        const ev_i32 hd = ev_i32((ev_i64(xs) + INT32_MAX + 1) / 2);
        ev_i32 inv = 1515870810 + ev_tfl_srdhm(hd, -1010580540);
        for (int it = 0; it < 3; it++) {
            ev_i32 t = ev_tfl_srdhm(inv, (1 << 29) - ev_tfl_srdhm(hd, inv));
            t = t > (1 << 29) - 1 ? ev_i32(INT32_MAX) : t < -((1 << 29) - 1) ? ev_i32(INT32_MIN) : ev_i32(t * 4);
            inv += t;
        }
        inv = inv > (1 << 30) - 1 ? ev_i32(INT32_MAX) : inv < -((1 << 30) - 1) ? ev_i32(INT32_MIN) : ev_i32(inv * 2);
        const int exponent = (12 - headroom) + 31 - 8;
        for (int i = 0; i < len; i++) {
            const ev_i32 d = ev_i32(xr[i]) - mx;
            yr[i] = d >= diff_min ? ev_tfl_clamp(ev_tfl_rdbpot(ev_tfl_srdhm(inv, exp_table[255 + d]), exponent) - 128, -128, 127)
                                  : ev_i8(-128);
        }
    }
}

// MEAN over the middle axis of [outer, red, inner].
static inline void ev_tfl_mean(const ev_i8 *x, int outer, int red, int inner, ev_i32 x_zp, ev_i32 y_zp, ev_i32 m, ev_i32 shift,
                        ev_i8 *y) {
    int out = 0;
    for (int a = 0; a < outer; a++)
        for (int b = 0; b < inner; b++) {
            ev_i32 s = 0;
            for (int r = 0; r < red; r++) s += x[(a * red + r) * inner + b];
            y[out++] = ev_tfl_clamp(ev_tfl_mbqm(s - x_zp * red, m, shift) + y_zp, -128, 127);
        }
}

// Element-wise table, one per channel when ch > 1: luts[c * 256 + x + 128].
static inline void ev_tfl_lut(const ev_i8 *x, int n, int ch, const ev_i8 *luts, ev_i8 *y) {
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II=1
        y[i] = luts[(i % ch) * 256 + int(x[i]) + 128];
    }
}

// A box of six dimensions, element strides on both sides.
static inline void ev_tfl_copy(const ev_i8 *x, const int *d, const int *si, ev_i8 *y, const int *so) {
    for (int i0 = 0; i0 < d[0]; i0++)
    for (int i1 = 0; i1 < d[1]; i1++)
    for (int i2 = 0; i2 < d[2]; i2++)
    for (int i3 = 0; i3 < d[3]; i3++)
    for (int i4 = 0; i4 < d[4]; i4++)
    copy_row:
    for (int i5 = 0; i5 < d[5]; i5++) {
#pragma HLS PIPELINE II=1
        y[i0 * so[0] + i1 * so[1] + i2 * so[2] + i3 * so[3] + i4 * so[4] + i5 * so[5]] =
            x[i0 * si[0] + i1 * si[1] + i2 * si[2] + i3 * si[3] + i4 * si[4] + i5 * si[5]];
    }
}

// A converter LayerNorm, one row at a time (edgeviz/ops/tfl_norm.py, ev_tfl.c's ev_tfl_layernorm_s8):
// p in tfl_norm.PARAMS order; tab: four 256-entry int32 tables, beta's side and gamma per channel;
// luts: the mean's and the variance's tables. Each output element is written after its row's reads.
static inline void ev_tfl_layernorm(const ev_i8 *x, int rows, int c, const ev_i32 *p, const ev_i32 *tab,
                                    const ev_i8 *luts, ev_i8 *y) {
    for (int r = 0; r < rows; r++) {
        const ev_i8 *xr = x + r * c;
        ev_i8 *yr = y + r * c;
        ev_i32 s = 0, s2 = 0;
        for (int i = 0; i < c; i++) s += xr[i];
        const ev_i32 mu = ev_tfl_clamp(ev_tfl_mbqm(s - p[0] * c, p[1], p[2]) + p[3], -128, 127);
        const ev_i32 xb = ev_tfl_mbqm((mu - p[4]) * (1 << 7), p[5], p[6]);
        for (int i = 0; i < c; i++) {
#pragma HLS PIPELINE II=1
            const ev_i32 d = tab[int(xr[i]) + 128] - xb;
            s2 += ev_tfl_clamp(ev_tfl_mbqm(d * d, p[7], p[8]) + p[9], p[10], p[11]);
        }
        const ev_i32 var = ev_tfl_clamp(ev_tfl_mbqm(s2 - p[12] * c, p[13], p[14]) + p[15], -128, 127);
        const ev_i32 rv = ev_i32(luts[256 + int(var) + 128]) - p[16];
        const ev_i32 nv = ev_i32(luts[int(mu) + 128]) - p[22];
        ln_row:
        for (int i = 0; i < c; i++) {
#pragma HLS PIPELINE II=1
            const ev_i32 rg = ev_tfl_clamp(ev_tfl_mbqm(rv * tab[1024 + c + i], p[17], p[18]) + p[19], p[20], p[21]);
            const ev_i32 t = ev_tfl_clamp(ev_tfl_mbqm(nv * (rg - p[23]), p[24], p[25]) + p[26], p[27], p[28]);
            const ev_i32 t2 = ev_tfl_clamp(ev_tfl_mbqm(tab[256 + int(t) + 128] + tab[1024 + i], p[29], p[30]) + p[31],
                                           p[32], p[33]);
            const ev_i32 u = ev_tfl_clamp(ev_tfl_mbqm((ev_i32(xr[i]) - p[34]) * (rg - p[35]), p[36], p[37]) + p[38],
                                          p[39], p[40]);
            yr[i] = ev_tfl_clamp(ev_tfl_mbqm(tab[512 + int(u) + 128] + tab[768 + int(t2) + 128], p[41], p[42]) + p[43],
                                 p[44], p[45]);
        }
    }
}

#endif
