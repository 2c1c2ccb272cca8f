/* Kernels for imported .tflite models, in TFLite's integer semantics.
 *
 * edgeviz/tflmath.py is the specification (what LiteRT's builtin reference kernels compute); these
 * reproduce it bit for bit. Differences from edgeviz's own kernels (intmath.py): activations carry
 * zero points, multipliers are TFLite's (m, shift) with two roundings, and FULLY_CONNECTED
 * requantises as the reference kernel does, round((double)acc * scale), which here runs in integers
 * (ev_tfl_round_scaled) so that no core needs a double-precision FPU or soft-float code. */
#include "ev_dsp.h"
#include "ev_parts.h"

/* gemmlowp's SaturatingRoundingDoublingHighMul, (ab + nudge) / 2^31 truncated toward zero with the
 * nudge +2^30 or 1 - 2^30 by the sign of ab. For every int64 ab that equals floor((ab + 2^30) / 2^31):
 * a positive half rounds up, a negative one toward zero, i.e. up too. So: one multiply, one add,
 * one shift (tflmath.srdhm keeps gemmlowp's own form; the tests hold the two equal). */
static inline int32_t ev_tfl_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^e rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT; 32-bit only). */
static inline int32_t ev_tfl_rdbpot(int32_t x, int e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1);
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> e) + ((x & mask) > threshold);
}

/* TFLite's MultiplyByQuantizedMultiplier, x * m * 2^(shift - 31) (shift > 0 a left shift), with one
 * rounding instead of two. With x' = x << left, p = x' m and e = -shift > 0 (a right shift), the
 * reference computes v = floor((p + 2^30) / 2^31), then v / 2^e to nearest, ties away from zero:
 * floor((v + 2^(e-1)) / 2^e) for v >= 0, floor((v + 2^(e-1) - 1) / 2^e) for v < 0. Nested floor
 * divisions by powers of two merge (floor((floor(n / A) + h) / B) = floor((n + hA) / AB) for integers),
 * so the result is floor((p + k) / 2^(31 + e)) with k = 2^30 + 2^(30+e), less 2^31 where v < 0. v < 0
 * only where p < 0, and where p < 0 but v == 0 both constants give 0; so the sign of p (of x' and m)
 * picks k: one 64-bit multiply-add and one shift (e == 0: v itself). The saturating case of the
 * doubling multiply (x' == m == INT32_MIN) cannot occur: |m| < 2^31 for every multiplier
 * QuantizeMultiplier makes. tests/test_tflite.py holds this equal to tflmath's two roundings. The
 * constants of one multiplier are worked out once (ev_tfl__mq_init) for a kernel's loop. */
struct ev_tfl__mq {
    int64_t kp, kn;
    int32_t m;
    int left, right;
};

static inline void ev_tfl__mq_init(struct ev_tfl__mq *q, int32_t m, int32_t shift)
{
    q->m = m;
    q->left = shift > 0 ? shift : 0;
    q->right = shift > 0 ? 0 : -shift;
    q->kp = ((int64_t)1 << 30) + (q->right ? (int64_t)1 << (30 + q->right) : 0);
    q->kn = q->kp - (q->right ? (int64_t)1 << 31 : 0);
}

static inline int32_t ev_tfl__mq(int32_t x, const struct ev_tfl__mq *q)
{
    const int32_t xs = (int32_t)((uint32_t)x << q->left);
    const int64_t p = (int64_t)xs * q->m + ((xs ^ q->m) < 0 ? q->kn : q->kp);
    const int32_t hi = (int32_t)(p >> 32);
    if (q->right)
        return hi >> (q->right - 1);
    return (int32_t)(((uint32_t)hi << 1) | ((uint32_t)p >> 31));
}

/* The same for a multiplier used once. */
static inline int32_t ev_tfl_mbqm(int32_t x, int32_t m, int32_t shift)
{
    struct ev_tfl__mq q;
    ev_tfl__mq_init(&q, m, shift);
    return ev_tfl__mq(x, &q);
}

static inline int8_t ev_tfl_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* MultiplyByQuantizedMultiplier for a small x (|x| < 2^(30 - left), m >= 0; the caller's domain
 * guarantees it), in one SMMLAR: with x2 = x << (left + 1), SMMLAR(x2, m, a) = floor((a 2^32 + x2 m
 * + 2^31) / 2^32) = floor((x' m + 2^30 + a 2^31) / 2^31), so a = 2^(e-1) (less one where x < 0) makes
 * it ev_tfl__mq's floor((p + k) / 2^(31 + e)) before the shift by e (e == 0: a = 0, no shift).
 * ev_tfl__sm holds m, left + 1, 2^(e-1), the negative-x mask and e. */
struct ev_tfl__sm {
    int32_t m, half, neg;
    int l1, right;
};

static inline void ev_tfl__sm_init(struct ev_tfl__sm *q, int32_t m, int32_t shift)
{
    q->m = m;
    q->l1 = (shift > 0 ? shift : 0) + 1;
    q->right = shift > 0 ? 0 : -shift;
    q->half = q->right ? (int32_t)1 << (q->right - 1) : 0;
    q->neg = q->right ? -1 : 0;
}

static inline int32_t ev_tfl__smmlar(int32_t a, int32_t b, int32_t acc)
{
#if EV_KERNELS_DSP
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)(((int64_t)a * b + (int64_t)acc * 4294967296LL + 2147483648LL) >> 32);
#endif
}

#define EV_TFL__SM(x, q) \
    (ev_tfl__smmlar((int32_t)((uint32_t)(x) << (q).l1), (q).m, (q).half + ((int32_t)(x) >> 31 & (q).neg)) >> (q).right)

/* EV_TFL__SM for a right shift >= 1: the multiplier's shift is then negative, so no left shift
 * (l1 == 1) and the negative-x mask is -1 (x >> 31 itself); the output zero point already in
 * q.half (a zero point z added after the shift by e is z 2^e added before it, exactly). */
#define EV_TFL__SMR(x, q) \
    (ev_tfl__smmlar((int32_t)((uint32_t)(x) << 1), (q).m, (q).half + ((int32_t)(x) >> 31)) >> (q).right)

static inline int32_t ev_tfl__sat8(int32_t v)
{
#if EV_KERNELS_DSP
    return __ssat(v, 8);
#else
    return v < -128 ? -128 : v > 127 ? 127 : v;
#endif
}

static inline uint32_t ev_tfl__ld32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* round((double)acc * s), C's round() of an IEEE double product, in integers. s = m * 2^-sh with m
 * the double's 53-bit significand (0 for s == 0). The exact product P = |acc| m (< 2^85) is held in
 * two words; the double multiply keeps its top 53 bits, rounding to nearest even (q * 2^d); round()
 * then rounds q * 2^(d - sh) half away from zero. The result is clamped to +-2^30: the caller adds a
 * zero point and clamps to int8, which any larger value would reach the same way. */
static __attribute__((noinline)) int32_t ev_tfl__round_exact(int32_t acc, int64_t m, int32_t sh)
{
    const uint32_t a = acc < 0 ? (uint32_t)0 - (uint32_t)acc : (uint32_t)acc;
    uint64_t t1, mid, q, r;
    uint32_t lo;
    int bits, d, e;
    t1 = (uint64_t)a * (uint32_t)m;
    mid = (t1 >> 32) + (uint64_t)a * (uint32_t)((uint64_t)m >> 32);   /* P = mid 2^32 + lo */
    lo = (uint32_t)t1;
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

static inline int32_t ev_tfl_round_scaled(int32_t acc, int64_t m, int32_t sh)
{
    const uint32_t a = acc < 0 ? (uint32_t)0 - (uint32_t)acc : (uint32_t)acc;
    const int t = sh - 21;
    if (a == 0 || m == 0)
        return 0;
    /* Fast path, one UMULL: with the top 32 bits of m, x = a (m >> 21) is the result times 2^t within
     * 2^31 (the dropped bits) plus 2^11 (the double's rounding). Unless x + 2^(t-1) lies within 2^32
     * of a multiple of 2^t (a rounding boundary: about 2 in 2^(t-32) products), its top bits are the
     * answer; otherwise ev_tfl__round_exact decides. */
    if (t >= 34 && t <= 62) {
        /* the top word of x + 2^(t-1): t - 1 >= 33, so the half only adds to the top word */
        const uint64_t x = (uint64_t)a * (uint32_t)((uint64_t)m >> 21);
        const uint32_t hi = (uint32_t)(x >> 32) + ((uint32_t)1 << (t - 33));
        const uint32_t fmask = ((uint32_t)1 << (t - 32)) - 1, f = hi & fmask;
        if (f != 0 && f != fmask) {
            uint32_t v = hi >> (t - 32);
            if (v > ((uint32_t)1 << 30))
                v = (uint32_t)1 << 30;
            return acc < 0 ? -(int32_t)v : (int32_t)v;
        }
    }
    return ev_tfl__round_exact(acc, m, sh);
}

/* Dot products of one input row with two weight rows. The DSP path widens the row once (ev_dsp.h)
 * into a stack buffer of EV_TFL_BUF words (rows up to 2 * EV_TFL_BUF inputs) and runs SMLAD over both
 * channels; the MVE path (the M55) reads the int8 rows as they are, 16 values per VLDRB and two
 * VMLADAVA.S8 per 16 inputs (tail-predicated: any k, nothing read past a row); the sums are the same
 * int32 values in another order, wrapping alike. */
#ifndef EV_TFL_BUF
#define EV_TFL_BUF 256
#endif

static inline int ev_tfl__widen(const int8_t *x, int k, uint32_t *xb)
{
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    if (2 * (k / 4) <= EV_TFL_BUF) {
        ev__widen1(x, k / 4, xb);
        return 1;
    }
#endif
    (void)x;
    (void)k;
    (void)xb;
    return 0;
}

static inline void ev_tfl__dot2(int widened, const uint32_t *xb, const int8_t *x, int k, const int8_t *w0,
                                const int8_t *w1, uint32_t acc[2])
{
#if EV_KERNELS_MVE
    int32_t a0 = (int32_t)acc[0], a1 = (int32_t)acc[1];
    (void)widened;
    (void)xb;
    if (k <= 0)
        return;
    __asm__ volatile(
        "dlstp.8     lr, %[k]\n"
        "1:\n\t"
        "vldrb.8     q0, [%[x]], #16\n\t"
        "vldrb.8     q1, [%[w0]], #16\n\t"
        "vldrb.8     q2, [%[w1]], #16\n\t"
        "vmladava.s8 %[a0], q0, q1\n\t"
        "vmladava.s8 %[a1], q0, q2\n\t"
        "letp        lr, 1b"
        : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [a0] "+Te"(a0), [a1] "+Te"(a1)
        : [k] "r"(k)
        : "q0", "q1", "q2", "lr", "memory");
    acc[0] = (uint32_t)a0;
    acc[1] = (uint32_t)a1;
    return;
#elif EV_KERNELS_DSP
    if (widened) {
        const int kq = k / 4;
        ev__t12_a(xb, kq, w0, w1, acc);
        acc[0] = ev__dot_tail(x + 4 * kq, w0 + 4 * kq, k - 4 * kq, acc[0]);
        acc[1] = ev__dot_tail(x + 4 * kq, w1 + 4 * kq, k - 4 * kq, acc[1]);
        return;
    }
#endif
#if !EV_KERNELS_MVE
    (void)widened;
    (void)xb;
    acc[0] = ev__dot_tail(x, w0, k, acc[0]);
    acc[1] = ev__dot_tail(x, w1, k, acc[1]);
#endif
}

/* Channels go in pairs (j0, j0 + 1); an odd last channel redoes the pair before it, one channel alone
 * pairs with itself. */
static inline int ev_tfl__pair(int j, int o)
{
    return j + 1 < o ? j : (o > 1 ? o - 2 : 0);
}

/* How a block of int32 sums becomes int8: FULLY_CONNECTED's scaled rounding per channel, or
 * TFLite's multiplier (per channel, or one for BATCH_MATMUL with its zero-point terms per row and
 * column added first). */
struct ev_tfl__out {
    const int64_t *scale_m;             /* FULLY_CONNECTED: round_scaled with scale_m/sh[ch] */
    const int32_t *scale_sh;
    struct ev_tfl__mq q;                /* BATCH_MATMUL: one multiplier ... */
    const int32_t *row_add, *col_add;   /* ... after adding row_add[row] + col_add[ch] */
    int32_t y_zp, lo, hi;
};

static inline int8_t ev_tfl__out(const struct ev_tfl__out *f, uint32_t acc, int row, int ch)
{
    int32_t v;
    if (f->scale_m)
        v = ev_tfl_round_scaled((int32_t)acc, f->scale_m[ch], f->scale_sh[ch]);
    else
        v = ev_tfl__mq((int32_t)(acc + (uint32_t)f->row_add[row] + (uint32_t)f->col_add[ch]), &f->q);
    return ev_tfl_clamp(v + f->y_zp, f->lo, f->hi);
}

/* y[r][c] = out(init[c] + x_r . w_c) for rows x rows (stride xs) and o weight rows (stride ws), k
 * values each. The DSP path widens up to EV_TFL_BLOCK rows at a time (ev__widen4, quads) and each
 * channel pair once per block (ev__widen2), then runs ev__t42 (4 rows x 2 channels, 16 MACs per
 * 3 LDRD + 8 SMLAD) over the block's quads: each widened weight word serves the block's rows. Rows
 * left over (rows % 4), inputs too long to widen, the portable build and an MVE build (the M55, whose
 * 1 x 2 tile is ev_tfl__dot2's VMLADAVA loop) take the 1 x 2 tile. */
#ifndef EV_TFL_BLOCK
#define EV_TFL_BLOCK 16
#endif

static void ev_tfl__gemm(const int8_t *x, int xs, int rows, int k, const int8_t *w, int ws, int o,
                         const int32_t *init, const struct ev_tfl__out *f, int8_t *y)
{
    uint32_t xb[EV_TFL_BUF];
    int n = 0, j;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* ev__t42 is the M7 path's assembly; an MVE build has none */
    uint32_t xq[EV_TFL_BLOCK * EV_TFL_BUF / 8], wb[EV_TFL_BUF / 2], acc8[8], start[8];
    const int kq = k / 4, tail = k - 4 * kq;
    int block = kq ? (int)(sizeof(xq) / sizeof(xq[0])) / (2 * kq) / 4 * 4 : 0;
    if (block > EV_TFL_BLOCK)
        block = EV_TFL_BLOCK;
    if (kq && 4 * kq <= EV_TFL_BUF / 2 && block >= 4) {
        for (; n + 4 <= rows; ) {
            const int nb = rows - n < block ? (rows - n) / 4 * 4 : block;
            int qd, r;
            for (qd = 0; qd < nb; qd += 4)
                ev__widen4(x + (n + qd) * xs, xs, kq, xq + qd * 2 * kq);
            for (j = 0; j < o; j += 2) {
                const int j0 = ev_tfl__pair(j, o), j1 = o > 1 ? j0 + 1 : j0;
                const int8_t *w0 = w + j0 * ws, *w1 = w + j1 * ws;
                ev__widen2(w0, w1, kq, wb);
                for (r = 0; r < 4; r++) {
                    start[2 * r] = init ? (uint32_t)init[j0] : 0u;
                    start[2 * r + 1] = init ? (uint32_t)init[j1] : 0u;
                }
                for (qd = 0; qd < nb; qd += 4) {
                    ev__t42(xq + qd * 2 * kq, wb, kq, start, acc8);
                    for (r = 0; r < 4; r++) {
                        const int row = n + qd + r;
                        const int8_t *xr = x + row * xs + 4 * kq;
                        if (tail) {
                            acc8[2 * r] = ev__dot_tail(xr, w0 + 4 * kq, tail, acc8[2 * r]);
                            acc8[2 * r + 1] = ev__dot_tail(xr, w1 + 4 * kq, tail, acc8[2 * r + 1]);
                        }
                        y[row * o + j0] = ev_tfl__out(f, acc8[2 * r], row, j0);
                        y[row * o + j1] = ev_tfl__out(f, acc8[2 * r + 1], row, j1);
                    }
                }
            }
            n += nb;
        }
    }
#endif
    for (; n < rows; n++) {
        const int8_t *xr = x + n * xs;
        const int widened = ev_tfl__widen(xr, k, xb);
        for (j = 0; j < o; j += 2) {
            const int j0 = ev_tfl__pair(j, o), j1 = o > 1 ? j0 + 1 : j0;
            uint32_t acc[2];
            acc[0] = init ? (uint32_t)init[j0] : 0u;
            acc[1] = init ? (uint32_t)init[j1] : 0u;
            ev_tfl__dot2(widened, xb, xr, k, w + j0 * ws, w + j1 * ws, acc);
            y[n * o + j0] = ev_tfl__out(f, acc[0], n, j0);
            y[n * o + j1] = ev_tfl__out(f, acc[1], n, j1);
        }
    }
}

void ev_tfl_fc_s8(const int8_t *x, int rows, int k, int o, const int8_t *w, const int32_t *bias,
                  const int64_t *scale_m, const int32_t *scale_sh, int32_t y_zp, int32_t lo, int32_t hi, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    struct ev_tfl__out f = {0};
    f.scale_m = scale_m;
    f.scale_sh = scale_sh;
    f.y_zp = y_zp;
    f.lo = lo;
    f.hi = hi;
    ev_tfl__gemm(x, k, rows, k, w, k, o, bias, &f, y);
    EV_PART_LEAVE(pp);
}

/* FULLY_CONNECTED with the requantisation in fixed point (tflmath.fc_fixed_point, which proves it
 * equal to ev_tfl_fc_s8's round((double)acc * scale) over every accumulator a channel can reach):
 * q holds per channel (m, r, t), y = clamp(floor((acc m + r 2^32) / 2^(32 + t)), lo, hi), r with the
 * rounding half and the zero point folded in. On the M7 path that is ev__t42r's requantisation
 * (SMMLA + ASR + SSAT, the table for a narrower clamp), so row quads go through ev__t42r
 * (ev_linear_m7.S): each widened weight pair serves a block of as many rows as xq holds, and the
 * sums go from registers to the outputs without touching memory. Other rows, inputs whose length
 * is not a multiple of 4, and the other builds: the 1 x 2 tile and the same formula in C. */
static inline int8_t ev_tfl__fcq(uint32_t acc, const int32_t *q, int32_t lo, int32_t hi)
{
    const int32_t v = (int32_t)(((int64_t)(int32_t)acc * q[0] + (int64_t)((uint64_t)(int64_t)q[1] << 32)) >> (32 + q[2]));
    return ev_tfl_clamp(v, lo, hi);
}

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* Every 4 x 2 tile of a block in one call (ev_tfl_m7.S): channel pairs outer, xq's row quads
 * inner. Pair p's widened columns at wp + 4 kq p words, its start values at bias + bstep p bytes
 * (two words), its two requantisations (three words each) at q + qstep p bytes; the tile of quad i
 * and pair p writes y + 4 i ys + 2 p. run42f requantises as ev__t42r (FULLY_CONNECTED's fixed
 * point, q = tflmath's (m, r, t) per channel), run42s as ev_tfl__t42s (ev_tfl__sm's (m, half,
 * right)). Every shift t / right must lie in 1..22, since the routine holds one requantisation block
 * per value: tflmath.fc_fixed_point gives t <= FC_FIXED_MAX_T = 22, BATCH_MATMUL's sm_ok and the
 * fused test give 1 <= right <= 22, CONV_2D's multiplier check 1..21. */
struct ev_tfl__run_a {
    const uint32_t *xq;         /* 0: the block's widened quads, 8 kq words each */
    const uint32_t *xq_end;     /* 4 */
    const uint32_t *wp;         /* 8 */
    int32_t np;                 /* 12: pairs >= 1 */
    const int32_t *bias;        /* 16 */
    const int32_t *q;           /* 20 */
    int32_t qstep;              /* 24 */
    int8_t *y;                  /* 28 */
    int32_t ys;                 /* 32 */
    int32_t kq;                 /* 36: >= 1 */
    int32_t bstep;              /* 40 */
};
EV__ASM_OFFSET(ev_tfl__run_a, ys, 32);
EV__ASM_OFFSET(ev_tfl__run_a, bstep, 40);
void ev_tfl__run42f(const struct ev_tfl__run_a *a);
void ev_tfl__run42s(const struct ev_tfl__run_a *a);

/* One widened row (ev__widen1's (lo, hi) per group of 4) against a pre-widened channel pair
 * (widened_pairs' (a lo, b lo, a hi, b hi) per group): 3 LDRD + 4 SMLAD per 8 MACs. */
static inline void ev_tfl__t12w(const uint32_t *xb, const uint32_t *wp, int kq, uint32_t acc[2])
{
    uint32_t a0 = acc[0], a1 = acc[1];
    const uint32_t *end = xb + 2 * kq;
    while (xb != end) {
        uint32_t xl, xh, al, bl, ah, bh;
        EV__LDRD(xl, xh, xb);
        EV__LDRD(al, bl, wp);
        EV__LDRD(ah, bh, wp);
        a0 = EV__MAC(xl, al, a0);
        a1 = EV__MAC(xl, bl, a1);
        a0 = EV__MAC(xh, ah, a0);
        a1 = EV__MAC(xh, bh, a1);
    }
    acc[0] = a0;
    acc[1] = a1;
}
#endif

void ev_tfl_fcq_s8(const int8_t *x, int rows, int k, int o, const int8_t *w, const int32_t *bias, const int32_t *q,
                   const int32_t *fw, int32_t lo, int32_t hi, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    uint32_t xb[EV_TFL_BUF];
    int n = 0, j;
    (void)fw;                           /* the M7 path's pre-widened weight pairs (NULL: widened here) */
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    uint32_t xq[EV_TFL_BLOCK * EV_TFL_BUF / 8], wb[EV_TFL_BUF / 2], init[8];
    const int kq = k / 4;
    const int block = kq ? (int)(sizeof(xq) / sizeof(xq[0])) / (2 * kq) / 4 * 4 : 0;   /* as many rows as fit */
    if (kq && 4 * kq == k && 4 * kq <= EV_TFL_BUF / 2 && block >= 4 && rows >= 4 && o >= 2) {
        int8_t lut[256];
        const int narrow = lo > -128 || hi < 127;
        struct ev__t42q a;
        int v;
        if (narrow)
            for (v = -128; v < 128; v++)
                lut[v + 128] = ev_tfl_clamp(v, lo, hi);
        a.init = init;
        a.ys = o;
        a.lut = lut;
        for (; n + 4 <= rows; ) {
            const int nb = rows - n < block ? (rows - n) / 4 * 4 : block;
            int qd, r;
            for (qd = 0; qd < nb; qd += 4)
                ev__widen4(x + (n + qd) * k, k, kq, xq + qd * 2 * kq);
            if (fw && !narrow && !(o & 1)) {    /* the compile-time pairs, in order: one call */
                struct ev_tfl__run_a ra;
                ra.xq = xq;
                ra.xq_end = xq + nb * 2 * kq;
                ra.wp = (const uint32_t *)fw;
                ra.np = o / 2;
                ra.bias = bias;
                ra.bstep = 8;
                ra.q = q;
                ra.qstep = 24;
                ra.y = y + n * o;
                ra.ys = o;
                ra.kq = kq;
                ev_tfl__run42f(&ra);
                n += nb;
                continue;
            }
            for (j = 0; j < o; j += 2) {
                const int j0 = ev_tfl__pair(j, o), j1 = o > 1 ? j0 + 1 : j0;
                const uint32_t *wp = wb;
                if (fw)              /* widened at compile time: pair j / 2's 4 kq words */
                    wp = (const uint32_t *)fw + (j / 2) * 4 * kq;
                else
                    ev__widen2(w + j0 * k, w + j1 * k, kq, wb);
                for (r = 0; r < 4; r++) {
                    init[2 * r] = (uint32_t)bias[j0];
                    init[2 * r + 1] = (uint32_t)bias[j1];
                }
                a.m0 = q[3 * j0];
                a.r0 = q[3 * j0 + 1];
                a.t0 = q[3 * j0 + 2];
                a.m1 = q[3 * j1];
                a.r1 = q[3 * j1 + 1];
                a.t1 = q[3 * j1 + 2];
                for (qd = 0; qd < nb; qd += 4) {
                    a.y = y + (n + qd) * o + j0;
                    if (narrow)
                        ev__t42r_lut(xq + qd * 2 * kq, wp, kq, &a);
                    else
                        ev__t42r(xq + qd * 2 * kq, wp, kq, &a);
                }
            }
            n += nb;
        }
    }
#endif
    for (; n < rows; n++) {
        const int8_t *xr = x + n * k;
        const int widened = ev_tfl__widen(xr, k, xb);
        for (j = 0; j < o; j += 2) {
            const int j0 = ev_tfl__pair(j, o), j1 = o > 1 ? j0 + 1 : j0;
            uint32_t acc[2];
            acc[0] = (uint32_t)bias[j0];
            acc[1] = (uint32_t)bias[j1];
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
            if (fw && widened && !(k & 3))      /* the pre-widened pair j / 2 (k words) */
                ev_tfl__t12w(xb, (const uint32_t *)fw + (j / 2) * k, k / 4, acc);
            else
#endif
                ev_tfl__dot2(widened, xb, xr, k, w + j0 * k, w + j1 * k, acc);
            y[n * o + j0] = ev_tfl__fcq(acc[0], q + 3 * j0, lo, hi);
            y[n * o + j1] = ev_tfl__fcq(acc[1], q + 3 * j1, lo, hi);
        }
    }
    EV_PART_LEAVE(pp);
}

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* BATCH_MATMUL's row quads on the M7 path. The operands are widened with their zero points
 * subtracted (SXTB16, then SSUB16 of the packed zero point: a - za and b - zb lie in -255..255, so
 * they fit the 16-bit halves SMLAD multiplies), so each sum is the reference's sum (a - za)(b - zb)
 * itself, from 0, with no row or column terms: a block of a's rows widened once, each pair of b's
 * rows (output columns) once per block, 4 rows x 2 columns per tile. Where the requantisation
 * allows (shift <= -1, ev_tfl__sm's SMMLAR with x << 1) the tile is ev_tfl__t42s (ev_tfl_m7.S),
 * which requantises and stores from registers; otherwise ev__t42 (ev_linear_m7.S) and the same
 * SMMLAR in C; depth % 4 values at the end are added in C. Returns the rows done (a multiple of
 * 4; 0 where depth is too long for the buffers). */
struct ev_tfl__t42s_a {
    int8_t *y;              /* 0: row 0, column 0; rows at y + r * ys, column 1 at + 1 */
    int32_t ys;             /* 4 */
    int32_t m0, hz0, e0;    /* 8: column 0's ev_tfl__sm m, half (the zero point folded in), right shift */
    int32_t m1, hz1, e1;    /* 20: column 1's */
    const uint32_t *init;   /* 32: the 8 start values */
};
void ev_tfl__t42s(const uint32_t *xq, const uint32_t *wb, int kq, const struct ev_tfl__t42s_a *a);

static inline uint32_t ev_tfl__lo_z(uint32_t u, uint32_t zz)
{
    return (uint32_t)__ssub16((int32_t)EV__LO(u), (int32_t)zz);
}

static inline uint32_t ev_tfl__hi_z(uint32_t u, uint32_t zz)
{
    return (uint32_t)__ssub16((int32_t)EV__HI(u), (int32_t)zz);
}

/* ev__widen4 / ev__widen2 (ev_dsp.h) with the packed zero point zz subtracted from every value */
static inline void ev_tfl__widen4z(const int8_t *a, int xs, int kq, uint32_t zz, uint32_t *dst)
{
    const int8_t *b = a + xs, *c = b + xs, *d = c + xs;
    const uint32_t *end = dst + 8 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(a), v = ev__ld32(b), t = ev__ld32(c), z = ev__ld32(d);
        a += 4;
        b += 4;
        c += 4;
        d += 4;
        EV__STRD(ev_tfl__lo_z(u, zz), ev_tfl__lo_z(v, zz), dst);
        EV__STRD(ev_tfl__lo_z(t, zz), ev_tfl__lo_z(z, zz), dst);
        EV__STRD(ev_tfl__hi_z(u, zz), ev_tfl__hi_z(v, zz), dst);
        EV__STRD(ev_tfl__hi_z(t, zz), ev_tfl__hi_z(z, zz), dst);
    }
}

static inline void ev_tfl__widen2z(const int8_t *a, const int8_t *b, int kq, uint32_t zz, uint32_t *dst)
{
    const uint32_t *end = dst + 4 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(a), v = ev__ld32(b);
        a += 4;
        b += 4;
        EV__STRD(ev_tfl__lo_z(u, zz), ev_tfl__lo_z(v, zz), dst);
        EV__STRD(ev_tfl__hi_z(u, zz), ev_tfl__hi_z(v, zz), dst);
    }
}

/* ev_tfl__widen2z's layout for four columns c..c+3 of a b stored depth-major (depth row i at b + i
 * ds, the columns contiguous, as p.v's v): pair (c, c + 1) at dst, pair (c + 2, c + 3) at dst + 4
 * kq. Per group of 4 depths one word of each row: SXTB16 gives columns (c, c + 2) of a row, with
 * ROR 8 (c + 1, c + 3), and PKHBT / PKHTB put rows 4g and 4g + 2 (the lo word) or 4g + 1 and 4g + 3
 * (hi) of one column side by side; this replaces the byte transpose into bt and the widening of
 * its rows. */
static inline void ev_tfl__widen_cols4z(const int8_t *b, int ds, int kq, uint32_t zz, uint32_t *dst)
{
    uint32_t *d1 = dst + 4 * kq;
    const uint32_t *end = d1;
    while (dst != end) {
        const uint32_t r0 = ev_tfl__ld32(b), r1 = ev_tfl__ld32(b + ds);
        const uint32_t r2 = ev_tfl__ld32(b + 2 * ds), r3 = ev_tfl__ld32(b + 3 * ds);
        const uint32_t e0 = ev_tfl__lo_z(r0, zz), o0 = ev_tfl__hi_z(r0, zz);
        const uint32_t e1 = ev_tfl__lo_z(r1, zz), o1 = ev_tfl__hi_z(r1, zz);
        const uint32_t e2 = ev_tfl__lo_z(r2, zz), o2 = ev_tfl__hi_z(r2, zz);
        const uint32_t e3 = ev_tfl__lo_z(r3, zz), o3 = ev_tfl__hi_z(r3, zz);
        b += 4 * ds;
        EV__STRD((e0 & 0xFFFFu) | (e2 << 16), (o0 & 0xFFFFu) | (o2 << 16), dst);
        EV__STRD((e1 & 0xFFFFu) | (e3 << 16), (o1 & 0xFFFFu) | (o3 << 16), dst);
        EV__STRD((e0 >> 16) | (e2 & 0xFFFF0000u), (o0 >> 16) | (o2 & 0xFFFF0000u), d1);
        EV__STRD((e1 >> 16) | (e3 & 0xFFFF0000u), (o1 >> 16) | (o3 & 0xFFFF0000u), d1);
    }
}

/* The depth's products from d4 on (its last 1-3) of four rows (x, stride xs) with columns w0, w1:
 * ev_tfl__t42s' start values, in its order (row r: init[2r] column 0, init[2r + 1] column 1). */
static inline __attribute__((always_inline)) void ev_tfl__tail_init(const int8_t *x, int xs, const int8_t *w0, const int8_t *w1,
                                                        int d4, int depth, int32_t a_zp, int32_t b_zp, uint32_t *init)
{
    int r, i;
    for (r = 0; r < 4; r++, x += xs) {
        int32_t v0 = 0, v1 = 0;
        for (i = d4; i < depth; i++) {
            v0 += ((int32_t)x[i] - a_zp) * ((int32_t)w0[i] - b_zp);
            v1 += ((int32_t)x[i] - a_zp) * ((int32_t)w1[i] - b_zp);
        }
        init[2 * r] = (uint32_t)v0;
        init[2 * r + 1] = (uint32_t)v1;
    }
}

/* ev_tfl__bmm_quads' path for a depth that is not a multiple of 4 or rows that are not, where the
 * requantisation is ev_tfl__t42s' (a right shift >= 1): every row. The depth's last 1-3 products
 * of each row and column go into the tile's start values (init), so the tile's 4-deep groups do
 * the rest; the 1-3 rows after the last quad are widened once and run 1 x 2 against each widened
 * column pair (ev_tfl__t12w) with the same requantisation in C (EV_TFL__SMR, the zero point in
 * the addend as in the tile). */
static __attribute__((noinline)) int ev_tfl__bmm_all(const int8_t *a, int as, int rows, int depth, const int8_t *b, int bs, int cols,
                                                      int32_t a_zp, int32_t b_zp, const struct ev_tfl__sm *q, int8_t *y)
{
    uint32_t xq[EV_TFL_BLOCK * EV_TFL_BUF / 8], wb[EV_TFL_BUF / 2], init[8], xl[3][EV_TFL_BUF / 4];
    static const uint32_t zero8[8];
    const uint32_t za = ((uint32_t)a_zp & 0xFFFFu) * 0x10001u, zb = ((uint32_t)b_zp & 0xFFFFu) * 0x10001u;
    const int kq = depth / 4, d4 = 4 * kq, full = rows / 4 * 4, left = rows - full;
    const int block = kq ? (int)(sizeof(xq) / sizeof(xq[0])) / (2 * kq) / 4 * 4 : 0;
    const struct ev_tfl__sm qq = *q;
    struct ev_tfl__t42s_a t;
    int n = 0, r, g;
    if (!kq || 4 * kq > EV_TFL_BUF / 2 || block < 4)
        return 0;
    t.m0 = t.m1 = qq.m;
    t.hz0 = t.hz1 = qq.half;
    t.e0 = t.e1 = qq.right;
    t.init = d4 == depth ? zero8 : init;
    t.ys = cols;
    for (r = 0; r < left; r++) {            /* the rows after the last quad, widened once */
        const int8_t *xr = a + (full + r) * as;
        for (g = 0; g < kq; g++) {
            const uint32_t u = ev_tfl__ld32(xr + 4 * g);
            xl[r][2 * g] = ev_tfl__lo_z(u, za);
            xl[r][2 * g + 1] = ev_tfl__hi_z(u, za);
        }
    }
    for (;;) {
        const int nb = full - n < block ? full - n : block, last = n + nb >= full;
        int qd, j, i;
        for (qd = 0; qd < nb; qd += 4)
            ev_tfl__widen4z(a + (n + qd) * as, as, kq, za, xq + qd * 2 * kq);
        for (j = 0; j < cols; j += 2) {
            const int j0 = ev_tfl__pair(j, cols), j1 = j0 + 1;
            const int8_t *w0 = b + j0 * bs, *w1 = b + j1 * bs;
            ev_tfl__widen2z(w0, w1, kq, zb, wb);
            for (qd = 0; qd < nb; qd += 4) {
                if (d4 < depth)
                    ev_tfl__tail_init(a + (n + qd) * as, as, w0, w1, d4, depth, a_zp, b_zp, init);
                t.y = y + (n + qd) * cols + j0;
                ev_tfl__t42s(xq + qd * 2 * kq, wb, kq, &t);
            }
            for (r = 0; last && r < left; r++) {       /* 1 x 2: the row against the widened pair */
                const int8_t *xr = a + (full + r) * as;
                uint32_t acc[2];
                int32_t v0 = 0, v1 = 0;
                for (i = d4; i < depth; i++) {
                    v0 += ((int32_t)xr[i] - a_zp) * ((int32_t)w0[i] - b_zp);
                    v1 += ((int32_t)xr[i] - a_zp) * ((int32_t)w1[i] - b_zp);
                }
                acc[0] = (uint32_t)v0;
                acc[1] = (uint32_t)v1;
                ev_tfl__t12w(xl[r], wb, kq, acc);
                y[(full + r) * cols + j0] = (int8_t)ev_tfl__sat8(EV_TFL__SMR((int32_t)acc[0], qq));
                y[(full + r) * cols + j1] = (int8_t)ev_tfl__sat8(EV_TFL__SMR((int32_t)acc[1], qq));
            }
        }
        n += nb;
        if (last)
            break;
    }
    return rows;
}

static int ev_tfl__bmm_quads(const int8_t *a, int as, int rows, int depth, const int8_t *b, int bs, int cols,
                             int32_t a_zp, int32_t b_zp, const struct ev_tfl__sm *sq, int8_t *y, int bds)
{
    uint32_t xq[EV_TFL_BLOCK * EV_TFL_BUF / 8], wb[EV_TFL_BUF / 2], acc8[8];
    static const uint32_t zero8[8];
    const uint32_t za = ((uint32_t)a_zp & 0xFFFFu) * 0x10001u, zb = ((uint32_t)b_zp & 0xFFFFu) * 0x10001u;
    const int kq = depth / 4, tail = depth - 4 * kq;
    const int block = kq ? (int)(sizeof(xq) / sizeof(xq[0])) / (2 * kq) / 4 * 4 : 0;
    const struct ev_tfl__sm q = *sq;
    const int fused = q.l1 == 1 && q.right >= 1 && !tail && cols >= 2;
    struct ev_tfl__t42s_a t;
    int n = 0, j;
    /* bds: b depth-major (ev_tfl__widen_cols4z), only where the fused path below takes every row;
     * otherwise 0 rows, and the caller transposes b */
    if (bds && (tail || rows % 4 || !fused || cols % 4 || 8 * kq > EV_TFL_BUF / 2 || block < 4))
        return 0;
    if ((tail || rows % 4) && q.l1 == 1 && q.right >= 1 && cols >= 2) {   /* the loop below leaves them to C */
        const int all = ev_tfl__bmm_all(a, as, rows, depth, b, bs, cols, a_zp, b_zp, &q, y);
        if (all)
            return all;
    }
    if (!kq || 4 * kq > EV_TFL_BUF / 2 || block < 4)
        return 0;
    t.ys = cols;
    t.m0 = t.m1 = q.m;
    t.hz0 = t.hz1 = q.half;
    t.e0 = t.e1 = q.right;
    t.init = zero8;
    while (n + 4 <= rows) {
        const int nb = rows - n < block ? (rows - n) / 4 * 4 : block;
        int qd, r, i;
        for (qd = 0; qd < nb; qd += 4)
            ev_tfl__widen4z(a + (n + qd) * as, as, kq, za, xq + qd * 2 * kq);
        if (fused && !(cols & 1) && 4 * kq <= EV_TFL_BUF / 2) {
            /* as many column pairs as wb holds widened at a time, then all their tiles in one call */
            const int per = (EV_TFL_BUF / 2) / (4 * kq) & (bds ? ~1 : ~0);      /* bds: pairs of pairs */
            const int32_t qv[6] = {q.m, q.half, q.right, q.m, q.half, q.right};
            struct ev_tfl__run_a ra;
            ra.xq = xq;
            ra.xq_end = xq + nb * 2 * kq;
            ra.wp = wb;
            ra.bias = (const int32_t *)zero8;
            ra.bstep = 0;
            ra.q = qv;
            ra.qstep = 0;
            ra.ys = cols;
            ra.kq = kq;
            for (j = 0; j < cols; j += 2 * ra.np) {
                int p;
                ra.np = (cols - j) / 2 < per ? (cols - j) / 2 : per;
                if (bds)
                    for (p = 0; p < ra.np; p += 2)
                        ev_tfl__widen_cols4z(b + j + 2 * p, bds, kq, zb, wb + p * 4 * kq);
                else
                    for (p = 0; p < ra.np; p++)
                        ev_tfl__widen2z(b + (j + 2 * p) * bs, b + (j + 2 * p + 1) * bs, kq, zb, wb + p * 4 * kq);
                ra.y = y + n * cols + j;
                ev_tfl__run42s(&ra);
            }
            n += nb;
            continue;
        }
        for (j = 0; j < cols; j += 2) {
            const int j0 = ev_tfl__pair(j, cols), j1 = cols > 1 ? j0 + 1 : j0;
            const int8_t *w0 = b + j0 * bs, *w1 = b + j1 * bs;
            ev_tfl__widen2z(w0, w1, kq, zb, wb);
            if (fused) {
                for (qd = 0; qd < nb; qd += 4) {
                    t.y = y + (n + qd) * cols + j0;
                    ev_tfl__t42s(xq + qd * 2 * kq, wb, kq, &t);
                }
                continue;
            }
            for (qd = 0; qd < nb; qd += 4) {
                const int row0 = n + qd;
                int8_t *yr = y + row0 * cols;
                ev__t42(xq + qd * 2 * kq, wb, kq, zero8, acc8);
                for (r = 0; r < 4; r++, yr += cols) {
                    int32_t v0 = (int32_t)acc8[2 * r], v1 = (int32_t)acc8[2 * r + 1];
                    const int8_t *xr = a + (row0 + r) * as;
                    for (i = 4 * kq; i < depth; i++) {
                        v0 += ((int32_t)xr[i] - a_zp) * ((int32_t)w0[i] - b_zp);
                        v1 += ((int32_t)xr[i] - a_zp) * ((int32_t)w1[i] - b_zp);
                    }
                    yr[j0] = (int8_t)ev_tfl__sat8(EV_TFL__SM(v0, q));
                    yr[j1] = (int8_t)ev_tfl__sat8(EV_TFL__SM(v1, q));
                }
            }
        }
        n += nb;
    }
    return n;
}
#endif

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* CONV_2D's quads of output pixels on the M7 path: four pixels of one output row whose patches lie
 * wholly inside the image are widened straight from it, one run of kw * c contiguous bytes per
 * filter row (ev__widen4 with the pixels' stride sw * c: no gather), up to as many quads as xq holds;
 * each filter pair is widened once per block of quads and ev_tfl__t42s (ev_tfl_m7.S) runs each
 * quad from the biases, requantising per channel with one SMMLAR (ev_tfl__sm) and SSAT. done[]
 * marks the pixels it wrote; returns how many (0 where the shapes or a channel's multiplier do
 * not allow it: then the caller's per-pixel path does them all). */
#ifndef EV_TFL_CONV_QO         /* output channels whose requantisations ev_tfl__conv_quads tabulates */
#define EV_TFL_CONV_QO 64
#endif
#ifndef EV_TFL_CONV_XQ
#define EV_TFL_CONV_XQ 384
#endif

static int ev_tfl__conv_quads(const int8_t *x, int h, int w, int c, const int8_t *f, int o, int kh, int kw, int sh,
                              int sw, int pad_t, int pad_l, int oh, int ow, const int32_t *bias, const int32_t *m,
                              const int32_t *shift, int32_t y_zp, const int32_t *fw, uint32_t *wb, int wb_words,
                              uint8_t *done, int8_t *y)
{
    uint32_t xq[EV_TFL_CONV_XQ], init[8];
    int16_t quad[EV_TFL_CONV_XQ / 32][2];       /* (oy, ox) of each quad in the block */
    const int taps = kh * kw * c, run = kw * c, kqr = run / 4, kq = taps / 4;
    const int fit = (int)(sizeof(xq) / sizeof(xq[0])) / (8 * (kq ? kq : 1));   /* 8 kq words a quad */
    const int per_block = fit < (int)(sizeof(quad) / sizeof(quad[0])) ? fit : (int)(sizeof(quad) / sizeof(quad[0]));
    struct ev_tfl__t42s_a t;
    int oy, ox, j, nq = 0, total = 0;
    if (run % 4 || !kq || per_block < 1 || taps > wb_words || o < 2)
        return 0;
    for (j = 0; j < o; j++) {
        const int64_t big = (int64_t)(bias[j] < 0 ? -(int64_t)bias[j] : bias[j]) + (int64_t)taps * 16384;
        if (m[j] < 0 || shift[j] > -1 || shift[j] < -21 || big >= ((int64_t)1 << 30))
            return 0;
    }
    t.ys = o;
    t.init = init;
    if (fw && !(o & 1) && o <= EV_TFL_CONV_QO) {
        /* each quad's tiles in one call (ev_tfl__run42s), the requantisations made once: the
         * per-pair C below costs as much per tile as the call where a quad of a large patch
         * fills xq alone */
        int32_t qt[3 * EV_TFL_CONV_QO];
        struct ev_tfl__run_a ra;
        for (j = 0; j < o; j++) {
            struct ev_tfl__sm qj;
            ev_tfl__sm_init(&qj, m[j], shift[j]);
            qt[3 * j] = qj.m;
            qt[3 * j + 1] = qj.half + y_zp * ((int32_t)1 << qj.right);
            qt[3 * j + 2] = qj.right;
        }
        ra.xq = xq;
        ra.xq_end = xq + 8 * kq;
        ra.wp = (const uint32_t *)fw;
        ra.np = o / 2;
        ra.bias = bias;
        ra.bstep = 8;
        ra.q = qt;
        ra.qstep = 24;
        ra.ys = o;
        ra.kq = kq;
        for (oy = 0; oy < oh; oy++) {
            const int iy = oy * sh - pad_t;
            int dy, r;
            for (ox = 0; ox + 4 <= ow; ox += 4) {
                const int ix = ox * sw - pad_l, ix_last = (ox + 3) * sw - pad_l;
                if (iy >= 0 && iy + kh <= h && ix >= 0 && ix_last + kw <= w) {
                    for (dy = 0; dy < kh; dy++)
                        ev__widen4(x + ((iy + dy) * w + ix) * c, sw * c, kqr, xq + dy * 8 * kqr);
                    ra.y = y + (oy * ow + ox) * o;
                    ev_tfl__run42s(&ra);
                    for (r = 0; r < 4; r++)
                        done[oy * ow + ox + r] = 1;
                    total += 4;
                }
            }
        }
        return total;
    }
    for (oy = 0; oy < oh; oy++) {
        const int iy = oy * sh - pad_t;
        for (ox = 0; ox + 4 <= ow; ox += 4) {
            const int ix = ox * sw - pad_l, ix_last = (ox + 3) * sw - pad_l;
            int last = oy == oh - 1 && ox + 8 > ow, q, dy, r;
            if (iy >= 0 && iy + kh <= h && ix >= 0 && ix_last + kw <= w) {
                uint32_t *dst = xq + nq * 8 * kq;
                for (dy = 0; dy < kh; dy++)
                    ev__widen4(x + ((iy + dy) * w + ix) * c, sw * c, kqr, dst + dy * 8 * kqr);
                quad[nq][0] = (int16_t)oy;
                quad[nq][1] = (int16_t)ox;
                nq++;
                for (r = 0; r < 4; r++)
                    done[oy * ow + ox + r] = 1;
            }
            if (!nq || (nq < per_block && !last))
                continue;
            for (j = 0; j < o; j += 2) {
                const int j0 = ev_tfl__pair(j, o), j1 = j0 + 1;
                struct ev_tfl__sm q0, q1;
                const uint32_t *wp = wb;
                if (fw)              /* widened at compile time: pair j / 2's 4 kq words */
                    wp = (const uint32_t *)fw + (j / 2) * 4 * kq;
                else
                    ev__widen2(f + j0 * taps, f + j1 * taps, kq, wb);
                ev_tfl__sm_init(&q0, m[j0], shift[j0]);
                ev_tfl__sm_init(&q1, m[j1], shift[j1]);
                t.m0 = q0.m;
                t.hz0 = q0.half + y_zp * ((int32_t)1 << q0.right);
                t.e0 = q0.right;
                t.m1 = q1.m;
                t.hz1 = q1.half + y_zp * ((int32_t)1 << q1.right);
                t.e1 = q1.right;
                for (r = 0; r < 4; r++) {
                    init[2 * r] = (uint32_t)bias[j0];
                    init[2 * r + 1] = (uint32_t)bias[j1];
                }
                for (q = 0; q < nq; q++) {
                    t.y = y + (quad[q][0] * ow + quad[q][1]) * o + j0;
                    ev_tfl__t42s(xq + q * 8 * kq, wp, kq, &t);
                }
            }
            total += 4 * nq;
            nq = 0;
        }
    }
    return total;
}
#endif

/* The patch of each output pixel is gathered into `patch` (taps outside the image take the input's
 * zero point) and dotted with the filters; bias holds bias - x_zp sum(filter) (the importer folds
 * it), so a tap at the zero point adds nothing, as in the reference. On the M7 path
 * ev_tfl__conv_quads does the pixels it can first (without lo / hi clamps narrower than int8). */
void ev_tfl_conv_s8(const int8_t *x, int h, int w, int c, const int8_t *f, int o, int kh, int kw, int sh, int sw,
                    int pad_t, int pad_l, int oh, int ow, const int32_t *bias, const int32_t *m, const int32_t *shift,
                    int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, const int32_t *fw, int8_t *patch, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    uint32_t xb[EV_TFL_BUF];
    const int taps = kh * kw * c;
    int oy, ox, dy, dx, ch, j, quads = 0;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    uint8_t done[256];
    if (lo == -128 && hi == 127 && oh * ow <= (int)sizeof(done)) {
        memset(done, 0, (size_t)(oh * ow));
        quads = ev_tfl__conv_quads(x, h, w, c, f, o, kh, kw, sh, sw, pad_t, pad_l, oh, ow, bias, m, shift, y_zp, fw,
                                   xb, EV_TFL_BUF, done, y);
    }
#endif
    for (oy = 0; oy < oh; oy++) {
        for (ox = 0; ox < ow; ox++) {
            int8_t *p = patch, *yr = y + (oy * ow + ox) * o;
            int widened;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
            if (quads && done[oy * ow + ox])
                continue;
#endif
            EV_PART_ENTER(pg, EV_PART_MOVE);       /* the im2col gather */
            for (dy = 0; dy < kh; dy++) {
                const int iy = oy * sh - pad_t + dy;
                for (dx = 0; dx < kw; dx++) {
                    const int ix = ox * sw - pad_l + dx;
                    const int inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                    for (ch = 0; ch < c; ch++)
                        *p++ = inside ? x[(iy * w + ix) * c + ch] : (int8_t)x_zp;
                }
            }
            EV_PART_LEAVE(pg);
            widened = ev_tfl__widen(patch, taps, xb);
            for (j = 0; j < o; j += 2) {
                const int j0 = ev_tfl__pair(j, o), j1 = o > 1 ? j0 + 1 : j0;
                uint32_t acc[2];
                acc[0] = (uint32_t)bias[j0];
                acc[1] = (uint32_t)bias[j1];
                ev_tfl__dot2(widened, xb, patch, taps, f + j0 * taps, f + j1 * taps, acc);
                yr[j0] = ev_tfl_clamp(ev_tfl_mbqm((int32_t)acc[0], m[j0], shift[j0]) + y_zp, lo, hi);
                yr[j1] = ev_tfl_clamp(ev_tfl_mbqm((int32_t)acc[1], m[j1], shift[j1]) + y_zp, lo, hi);
            }
        }
    }
    (void)quads;
    (void)fw;
    EV_PART_LEAVE(pp);
}

/* sa, sb: four batch strides (0 where broadcast), then the stride of a row (a: output row,
 * b: output column) and of the depth; y is [batch..., rows, cols], contiguous.
 * sum (a - za)(b - zb) = sum ab - za sum b - zb sum a + depth za zb, all in wrapping int32 as the
 * reference's accumulator: the products run on raw int8 (SMLAD on the DSP path) and the zero points
 * come in once per row and column. A b whose depth is not contiguous (p.v with V as stored) is
 * copied transposed into bt (cols x depth bytes of scratch) per batch first. */
#ifndef EV_TFL_BMM_COLS
#define EV_TFL_BMM_COLS 256
#endif

void ev_tfl_bmm_s8(const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa, const int32_t *sb,
                   int rows, int cols, int depth, int32_t a_zp, int32_t b_zp, int32_t m, int32_t shift,
                   int32_t y_zp, int8_t *bt, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    int32_t colsum[EV_TFL_BMM_COLS], rowsum[EV_TFL_BMM_COLS];
    const int32_t zz = (int32_t)((uint32_t)depth * (uint32_t)(a_zp * b_zp));
    struct ev_tfl__out f = {0};
    int b0, b1, b2, b3, r, q, i, n;
    struct ev_tfl__sm sq;
    int sm_ok;
    ev_tfl__mq_init(&f.q, m, shift);
    f.y_zp = y_zp;
    f.lo = -128;
    f.hi = 127;
    /* the one-SMMLAR requantisation (ev_tfl__sm) where every sum fits it: |acc| <= depth 255 255 */
    ev_tfl__sm_init(&sq, m, shift);
    sm_ok = m >= 0 && sq.l1 <= 16 && (int64_t)depth * 65025 < ((int64_t)1 << (31 - sq.l1)) &&
            sq.right <= 22;
    if (sm_ok)
        sq.half += y_zp * ((int32_t)1 << sq.right);     /* the zero point rides in SMMLAR's addend */
    (void)sm_ok;
    for (b0 = 0; b0 < dims[0]; b0++)
    for (b1 = 0; b1 < dims[1]; b1++)
    for (b2 = 0; b2 < dims[2]; b2++)
    for (b3 = 0; b3 < dims[3]; b3++) {
        const int8_t *ab = a + b0 * sa[0] + b1 * sa[1] + b2 * sa[2] + b3 * sa[3];
        const int8_t *bb = b + b0 * sb[0] + b1 * sb[1] + b2 * sb[2] + b3 * sb[3];
        int brow = sb[4];
        if (sa[5] != 1 || cols > EV_TFL_BMM_COLS || rows > EV_TFL_BMM_COLS || (sb[5] != 1 && !bt)) {
            for (r = 0; r < rows; r++) {                 /* any strides: one product at a time */
                for (q = 0; q < cols; q++) {
                    const int8_t *ar = ab + r * sa[4], *bc = bb + q * sb[4];
                    int32_t acc = 0;
                    for (i = 0; i < depth; i++)
                        acc += ((int32_t)ar[i * sa[5]] - a_zp) * ((int32_t)bc[i * sb[5]] - b_zp);
                    *y++ = ev_tfl_clamp(ev_tfl_mbqm(acc, m, shift) + y_zp, -128, 127);
                }
            }
            continue;
        }
        if (sb[5] != 1) {
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
            /* columns contiguous: widened straight from b where the quads take every row */
            if (sm_ok && sb[4] == 1 &&
                ev_tfl__bmm_quads(ab, sa[4], rows, depth, bb, 0, cols, a_zp, b_zp, &sq, y, sb[5]) == rows) {
                y += rows * cols;
                continue;
            }
#endif
            EV_PART_ENTER(pt, EV_PART_MOVE);       /* b transposed into bt */
#if EV_KERNELS_DSP
            if (sb[4] == 1 && cols % 4 == 0) {     /* columns contiguous: four a word */
                for (i = 0; i < depth; i++) {
                    const int8_t *src = bb + i * sb[5];
                    int8_t *dst = bt + i;
                    for (q = 0; q < cols; q += 4, dst += 4 * depth) {
                        const uint32_t u = ev_tfl__ld32(src + q);
                        dst[0] = (int8_t)u;
                        dst[depth] = (int8_t)(u >> 8);
                        dst[2 * depth] = (int8_t)(u >> 16);
                        dst[3 * depth] = (int8_t)(u >> 24);
                    }
                }
            } else
#endif
            for (q = 0; q < cols; q++)
                for (i = 0; i < depth; i++)
                    bt[q * depth + i] = bb[q * sb[4] + i * sb[5]];
            EV_PART_LEAVE(pt);
            bb = bt;
            brow = depth;
        }
        n = 0;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
        if (sm_ok)
            n = ev_tfl__bmm_quads(ab, sa[4], rows, depth, bb, brow, cols, a_zp, b_zp, &sq, y, 0);
#endif
        if (n < rows) {                              /* the rows left: raw sums + zero-point terms */
            for (q = 0; q < cols; q++) {
                int32_t t = 0;
                for (i = 0; i < depth; i++)
                    t += bb[q * brow + i];
                colsum[q] = -a_zp * t;               /* - za sum b */
            }
            for (r = n; r < rows; r++) {
                int32_t t = 0;
                for (i = 0; i < depth; i++)
                    t += ab[r * sa[4] + i];
                rowsum[r] = zz - b_zp * t;          /* depth za zb - zb sum a */
            }
            f.row_add = rowsum + n;
            f.col_add = colsum;
            ev_tfl__gemm(ab + n * sa[4], sa[4], rows - n, depth, bb, brow, cols, 0, &f, y + n * cols);
        }
        y += rows * cols;
    }
    EV_PART_LEAVE(pp);
}

/* kind 0 ADD, 1 SUB: p = {ma, sa, mb, sb, my, sy}, inputs scaled by 2^20 first;
 * kind 2 MUL: p = {m, shift}; kind 3 SQUARED_DIFFERENCE: as ADD with 2^7 and the difference squared.
 * An input's scaled value depends on its int8 value alone: for kinds 0, 1 and 3 both are tabulated
 * at compile time (tabs: a's 256 entries, b's 256, then max |a's| + max |b's|; the op's
 * input_tables, edgeviz/ops/tfl_eltwise.py), in flash; MUL passes none. */

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* ev_tfl__add_run's operands (ev_tfl_m7.S): the contiguous ADD's word loop over y .. y_end (a
 * multiple of 4 bytes), the shift 1..22 */
struct ev_tfl__add_a {
    const int8_t *a, *b;        /* 0, 4 */
    int8_t *y, *y_end;          /* 8, 12 */
    const int32_t *ta, *tb;     /* 16, 20: indexed by the signed value */
    int32_t m, h, sh;           /* 24, 28, 32 */
};
EV__ASM_OFFSET(ev_tfl__add_a, h, 28);
EV__ASM_OFFSET(ev_tfl__add_a, sh, 32);
void ev_tfl__add_run(const struct ev_tfl__add_a *a);
#endif

/* ev_tfl_binary_s8's one-SMMLAR loops over a run of n elements (kind 0 ADD, 1 SUB over the
 * tables, 2 MUL), in a function of their own so that the loop's constants stay in registers. */
static __attribute__((noinline)) void ev_tfl__binary_run(int kind, const int8_t *a, const int8_t *b, int n, int sa,
                                                         int sb, const int32_t *ta, const int32_t *tb, int32_t a_zp,
                                                         int32_t b_zp, const struct ev_tfl__sm *sq, int32_t y_zp,
                                                         int32_t lo, int32_t hi, int8_t *y)
{
    const struct ev_tfl__sm q = *sq;
    const int8_t *end = y + n;
    const int narrow = lo > -128 || hi < 127;
    if (kind == 2) {
#if EV_KERNELS_DSP
        if (!narrow && q.l1 == 1 && q.right >= 1 && q.right <= 22 && sa == 1 && sb == 1) {
            /* contiguous MUL, four elements a word: both operands widened to 16-bit halves with their
             * zero points subtracted (|v - zp| <= 255), four SMULxy products (|.| <= 255 * 255), then
             * EV_TFL__SMR with the output zero point in the addend, as the ADD loop */
            struct ev_tfl__sm qz = q;
            const uint32_t za = (uint32_t)(uint16_t)a_zp * 0x10001u, zb = (uint32_t)(uint16_t)b_zp * 0x10001u;
            qz.half += y_zp * ((int32_t)1 << q.right);
            for (; end - y >= 4; y += 4, a += 4, b += 4) {
                const uint32_t wa = ev_tfl__ld32(a), wb = ev_tfl__ld32(b);
                const int32_t a02 = __ssub16((int32_t)EV__LO(wa), (int32_t)za);
                const int32_t a13 = __ssub16((int32_t)EV__HI(wa), (int32_t)za);
                const int32_t b02 = __ssub16((int32_t)EV__LO(wb), (int32_t)zb);
                const int32_t b13 = __ssub16((int32_t)EV__HI(wb), (int32_t)zb);
                const int32_t d0 = (int16_t)a02 * (int16_t)b02, d1 = (int16_t)a13 * (int16_t)b13;     /* SMULBB */
                const int32_t d2 = (a02 >> 16) * (b02 >> 16), d3 = (a13 >> 16) * (b13 >> 16);        /* SMULTT */
                y[0] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d0, qz));
                y[1] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d1, qz));
                y[2] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d2, qz));
                y[3] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d3, qz));
            }
            for (; y != end; y++, a++, b++)
                *y = (int8_t)ev_tfl__sat8(EV_TFL__SMR((*a - a_zp) * (*b - b_zp), qz));
            return;
        }
#endif
        for (; y != end; y++, a += sa, b += sb) {
            const int32_t d = (*a - a_zp) * (*b - b_zp);
            const int32_t v = ev_tfl__sat8(EV_TFL__SM(d, q) + y_zp);
            *y = (int8_t)(narrow ? (v < lo ? lo : v > hi ? hi : v) : v);
        }
        return;
    }
    if (!narrow && kind == 0 && q.l1 == 1 && q.right >= 1 && q.right <= 22) {
        /* EV_TFL__SMR's form (ev_tfl_layernorm_s8 says why it is the same), the zero point in the addend;
         * contiguous operands four bytes a word */
        struct ev_tfl__sm qz = q;
        qz.half += y_zp * ((int32_t)1 << q.right);
        if (sa == 1 && sb == 1) {
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
            if (end - y >= 4) {         /* the same, in assembly (ev_tfl_m7.S) */
                struct ev_tfl__add_a r;
                const int n4 = (int)(end - y) / 4 * 4;
                r.a = a;
                r.b = b;
                r.y = y;
                r.y_end = y + n4;
                r.ta = ta;
                r.tb = tb;
                r.m = qz.m;
                r.h = qz.half;
                r.sh = qz.right;
                ev_tfl__add_run(&r);
                y += n4;
                a += n4;
                b += n4;
            }
#endif
            for (; end - y >= 4; y += 4, a += 4, b += 4) {
                const uint32_t wa = ev_tfl__ld32(a), wb = ev_tfl__ld32(b);
                const int32_t d0 = ta[(int8_t)wa] + tb[(int8_t)wb];
                const int32_t d1 = ta[(int8_t)(wa >> 8)] + tb[(int8_t)(wb >> 8)];
                const int32_t d2 = ta[(int8_t)(wa >> 16)] + tb[(int8_t)(wb >> 16)];
                const int32_t d3 = ta[(int32_t)wa >> 24] + tb[(int32_t)wb >> 24];
                y[0] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d0, qz));
                y[1] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d1, qz));
                y[2] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d2, qz));
                y[3] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d3, qz));
            }
        }
        for (; y != end; y++, a += sa, b += sb) {
            const int32_t d = ta[*a] + tb[*b];
            *y = (int8_t)ev_tfl__sat8(EV_TFL__SMR(d, qz));
        }
        return;
    }
    if (!narrow && kind == 0) {
        for (; y != end; y++, a += sa, b += sb) {
            const int32_t d = ta[*a] + tb[*b];
            *y = (int8_t)ev_tfl__sat8(EV_TFL__SM(d, q) + y_zp);
        }
        return;
    }
    for (; y != end; y++, a += sa, b += sb) {
        const int32_t d = kind == 0 ? ta[*a] + tb[*b] : ta[*a] - tb[*b];
        *y = ev_tfl_clamp(EV_TFL__SM(d, q) + y_zp, lo, hi);
    }
}

void ev_tfl_binary_s8(int kind, const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa,
                      const int32_t *sb, int32_t a_zp, int32_t b_zp, int32_t y_zp, const int32_t *p,
                      const int32_t *tabs, int32_t lo, int32_t hi, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    const int n3 = dims[3], s3a = sa[3], s3b = sb[3];
    const int32_t *ta = kind == 2 ? 0 : tabs + 128, *tb = kind == 2 ? 0 : tabs + 384;
    const int32_t bound = kind == 2 ? 0 : tabs[512];          /* |xa +- xb| */
    struct ev_tfl__mq qy;
    struct ev_tfl__sm sy;
    int i0, i1, i2, i3, fast;
    ev_tfl__mq_init(&qy, kind == 2 ? p[0] : p[4], kind == 2 ? p[1] : p[5]);
    ev_tfl__sm_init(&sy, qy.m, kind == 2 ? p[1] : p[5]);
    /* the one-SMMLAR requantisation where the input provably fits it (ev_tfl__sm): ADD / SUB over
     * tables, MUL of two int8 differences (|.| <= 255 * 255) */
    fast = qy.m >= 0 && qy.left < 16 && ((kind == 2 && 255 * 255 < (1 << (30 - qy.left))) ||
                         ((kind == 0 || kind == 1) && bound < (1 << (30 - qy.left))));
    for (i0 = 0; i0 < dims[0]; i0++)
    for (i1 = 0; i1 < dims[1]; i1++)
    for (i2 = 0; i2 < dims[2]; i2++) {
        const int8_t *ar = a + i0 * sa[0] + i1 * sa[1] + i2 * sa[2];
        const int8_t *br = b + i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
        if (fast) {
            ev_tfl__binary_run(kind, ar, br, n3, s3a, s3b, ta, tb, a_zp, b_zp, &sy, y_zp, lo, hi, y);
            y += n3;
        } else if (kind == 2) {
            for (i3 = 0; i3 < n3; i3++, y++)
                *y = ev_tfl_clamp(ev_tfl__mq((ar[i3 * s3a] - a_zp) * (br[i3 * s3b] - b_zp), &qy) + y_zp, lo, hi);
        } else {
            for (i3 = 0; i3 < n3; i3++, y++) {
                const int32_t xa = ta[ar[i3 * s3a]], xb = tb[br[i3 * s3b]];
                const int32_t d = kind == 0 ? xa + xb : xa - xb;
                *y = ev_tfl_clamp(ev_tfl__mq(kind == 3 ? d * d : d, &qy) + y_zp, lo, hi);
            }
        }
    }
    EV_PART_LEAVE(pp);
}

/* SOFTMAX tabulates its exps once per call from this many elements on */
#ifndef EV_TFL_TABLE_MIN
#define EV_TFL_TABLE_MIN 512
#endif

/* SOFTMAX's outputs of one row where inv >= 0 and 1 <= exponent <= 31 (ev_tfl_softmax_s8): e is
 * exp_table + 255 - max. exp_table is 0 below diff_min (tflmath.softmax_exp_table), and a 0 gives
 * (k >> 32) >> (exponent - 1) = 0, i.e. -128: the reference's skipped element, with no test. */
static __attribute__((noinline)) void ev_tfl__softmax_out(const int8_t *x, int len, const uint32_t *e, uint32_t inv,
                                                          int exponent, int8_t *y)
{
    const uint64_t k = ((uint64_t)1 << 30) + ((uint64_t)1 << (30 + exponent));
    const int sh = exponent - 1;
    int i;
    for (i = 0; i < len; i++) {
        const uint32_t hi = (uint32_t)(((uint64_t)inv * e[x[i]] + k) >> 32);
        y[i] = (int8_t)ev_tfl__sat8((int32_t)(hi >> sh) - 128);
    }
}

/* exp_table[255 + d]: exp(d * input scale) in Q0.31 for d = x - max(row), 0 below diff_min. */
void ev_tfl_softmax_s8(const int8_t *x, int rows, int len, const int32_t *exp_table, int32_t diff_min,
                       const int32_t *exp12, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_SOFTMAX);
    int32_t e12[256];                 /* each exp already in Q12.19: exp12 (made at compile time), or here */
    const int tabled = exp12 || rows * len >= EV_TFL_TABLE_MIN;
    const int32_t *e12t = exp12 ? exp12 : e12;
    int r, i;
    if (tabled && !exp12)
        for (i = 0; i < 256; i++)
            e12[i] = ev_tfl_rdbpot(exp_table[i], 12);
    for (r = 0; r < rows; r++, x += len, y += len) {
        int32_t mx = -128, sum = 0, inv, one_minus, hd, xr;
        int headroom, exponent, it;
        uint32_t u;
        i = 0;
#if EV_KERNELS_DSP
        if (len >= 8) {                 /* four lanes at a time: SSUB8 sets GE where x >= max, SEL */
            uint32_t m4 = ev_tfl__ld32(x), u, t;
            for (i = 4; i + 4 <= len; i += 4) {
                u = ev_tfl__ld32(x + i);
                __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(t) : "r"(u), "r"(m4) : "cc");
                m4 = t;
            }
            mx = (int8_t)m4;
            mx = (int8_t)(m4 >> 8) > mx ? (int8_t)(m4 >> 8) : mx;
            mx = (int8_t)(m4 >> 16) > mx ? (int8_t)(m4 >> 16) : mx;
            mx = (int8_t)(m4 >> 24) > mx ? (int8_t)(m4 >> 24) : mx;
        }
#endif
        for (; i < len; i++)
            mx = x[i] > mx ? x[i] : mx;
        if (tabled) {
            const int32_t *e = e12t + 255 - mx;
            int32_t s1 = 0, s2 = 0, s3 = 0;
            for (i = 0; i + 4 <= len; i += 4) {
                sum += e[x[i]];
                s1 += e[x[i + 1]];
                s2 += e[x[i + 2]];
                s3 += e[x[i + 3]];
            }
            for (; i < len; i++)
                sum += e[x[i]];
            sum += s1 + s2 + s3;
        } else {
            for (i = 0; i < len; i++)
                sum += ev_tfl_rdbpot(exp_table[255 + x[i] - mx], 12);      /* Q0.31 -> Q12.19 */
        }
        /* 1 / sum: normalise into [1, 2) and run gemmlowp's one_over_one_plus_x_for_x_in_0_1 */
        u = (uint32_t)sum;
#if EV_KERNELS_DSP
        headroom = u ? __builtin_clz(u) : 32;       /* CLZ */
        u = headroom < 32 ? u << headroom : 0;
#else
        headroom = 0;
        while (headroom < 32 && !(u & 0x80000000u)) {
            u <<= 1;
            headroom++;
        }
#endif
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
        if (inv >= 0 && exponent >= 1 && exponent <= 31) {
            /* inv >= 0 and every exp >= 0: the doubling high multiply and the rounding shift by
             * `exponent` merge into floor((inv e + 2^30 + 2^(30 + exponent)) / 2^(31 + exponent))
             * (nested floor divisions; ev_tfl__mq), and an exp of 0 (below diff_min) gives 0 - 128 */
            ev_tfl__softmax_out(x, len, (const uint32_t *)exp_table + 255 - mx, (uint32_t)inv, exponent, y);
        } else {
            for (i = 0; i < len; i++) {
                const int32_t d = x[i] - mx;
                if (d >= diff_min)
                    y[i] = ev_tfl_clamp(ev_tfl_rdbpot(ev_tfl_srdhm(inv, exp_table[255 + d]), exponent) - 128, -128, 127);
                else
                    y[i] = -128;
            }
        }
    }
    EV_PART_LEAVE(pp);
}

/* Mean over the middle axis of x seen as [outer, red, inner]. */
void ev_tfl_mean_s8(const int8_t *x, int outer, int red, int inner, int32_t x_zp, int32_t y_zp, int32_t m,
                    int32_t shift, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    int a, r, b;
    for (a = 0; a < outer; a++) {
        for (b = 0; b < inner; b++) {
            int32_t s = 0;
            for (r = 0; r < red; r++)
                s += x[(a * red + r) * inner + b];
            *y++ = ev_tfl_clamp(ev_tfl_mbqm(s - x_zp * red, m, shift) + y_zp, -128, 127);
        }
    }
    EV_PART_LEAVE(pp);
}

/* A table, or one per channel when ch > 1: luts[c * 256 + x + 128] for the n elements of x. */
void ev_tfl_lut_s8(const int8_t *x, int n, int ch, const int8_t *luts, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    int r, c;
    if (ch == 1) {                        /* one table: four elements a turn */
        const int8_t *t = luts + 128;
        for (r = 0; r + 4 <= n; r += 4) {
            const int8_t v0 = t[x[r]], v1 = t[x[r + 1]], v2 = t[x[r + 2]], v3 = t[x[r + 3]];
            y[r] = v0;
            y[r + 1] = v1;
            y[r + 2] = v2;
            y[r + 3] = v3;
        }
        for (; r < n; r++)
            y[r] = t[x[r]];
        EV_PART_LEAVE(pp);
        return;
    }
    for (r = 0; r < n / ch; r++)
        for (c = 0; c < ch; c++, x++, y++)
            *y = luts[c * 256 + *x + 128];
    EV_PART_LEAVE(pp);
}

/* A box of six dimensions, element strides on both sides. */
void ev_tfl_copy_s8(const int8_t *x, const int32_t *d, const int32_t *si, int8_t *y, const int32_t *so)
{
    EV_PART_ENTER(pp, EV_PART_MOVE);
    /* the shape and strides in locals: the int8 stores may alias them as far as the compiler knows,
     * so read through the pointers they were reloaded and the five-term addresses remade per run */
    const int d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], n = d[5];
    const int a0 = si[0], a1 = si[1], a2 = si[2], a3 = si[3], a4 = si[4], a5 = si[5];
    const int b0 = so[0], b1 = so[1], b2 = so[2], b3 = so[3], b4 = so[4], b5 = so[5];
    int i0, i1, i2, i3, i4, i5;
    for (i0 = 0; i0 < d0; i0++)
    for (i1 = 0; i1 < d1; i1++)
    for (i2 = 0; i2 < d2; i2++)
    for (i3 = 0; i3 < d3; i3++) {
        const int8_t *s = x + i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3;
        int8_t *t = y + i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3;
        for (i4 = 0; i4 < d4; i4++, s += a4, t += b4) {
            if (a5 == 1 && b5 == 1) {
                for (i5 = 0; i5 + 4 <= n; i5 += 4) {        /* a word at a time (unaligned LDR / STR) */
                    const uint32_t v = ev_tfl__ld32(s + i5);
                    memcpy(t + i5, &v, 4);
                }
                for (; i5 < n; i5++)
                    t[i5] = s[i5];
            } else {
                for (i5 = 0; i5 < n; i5++)
                    t[i5 * b5] = s[i5 * a5];
            }
        }
    }
    EV_PART_LEAVE(pp);
}

/* A converter LayerNorm in one pass per row (edgeviz/ops/tfl_norm.py): the MEAN, SQUARED_DIFFERENCE,
 * MEAN, table, MUL, MUL, ADD, MUL, ADD it replaces, each element through the same integer steps with
 * the same roundings and clamps (all -128..127: the matcher fuses no fused activation). p: the
 * parameters in tfl_norm.PARAMS order; tab: four 256-entry int32 tables (x's side of
 * SQUARED_DIFFERENCE, t's side of ADD beta, u's and t2's sides of the last ADD), beta's side per
 * channel, gamma - its zero point per channel; luts: the mean's table (DEQUANTIZE -> NEG -> QUANTIZE)
 * and the variance's (ADD eps -> RSQRT). Every multiplier's input stays small (tfl_norm checks the
 * bounds at import), so each requantisation is one SMMLAR (ev_tfl__sm). Each row is read three times
 * and written once after its last read (so y may be x). */
enum { LN_M1_XZP, LN_M1_M, LN_M1_SH, LN_M1_YZP, LN_SQ_BZP, LN_SQ_BM, LN_SQ_BSH, LN_SQ_M, LN_SQ_SH, LN_SQ_YZP,
       LN_SQ_LO, LN_SQ_HI, LN_M2_XZP, LN_M2_M, LN_M2_SH, LN_M2_YZP, LN_G_RZP, LN_G_M, LN_G_SH, LN_G_YZP, LN_G_LO,
       LN_G_HI, LN_T_NZP, LN_T_RZP, LN_T_M, LN_T_SH, LN_T_YZP, LN_T_LO, LN_T_HI, LN_B_M, LN_B_SH, LN_B_YZP,
       LN_B_LO, LN_B_HI, LN_U_XZP, LN_U_RZP, LN_U_M, LN_U_SH, LN_U_YZP, LN_U_LO, LN_U_HI, LN_Y_M, LN_Y_SH,
       LN_Y_YZP, LN_Y_LO, LN_Y_HI };

static inline int ev_tfl__fold_zp(struct ev_tfl__sm *q, const struct ev_tfl__sm *from, int32_t zp)
{
    *q = *from;
    if (q->right < 1 || q->right > 22 || q->l1 != 1)
        return 0;
    q->half += zp * ((int32_t)1 << q->right);
    return 1;
}

/* ev_tfl_layernorm_s8's rows where every requantisation but x's side of SQUARED_DIFFERENCE shifts
 * right by 1..22 (the usual case): the zero points folded into the SMMLAR addends, and the last
 * pass split in two so that each loop's constants fit the registers: per channel rg, t and t2 (the
 * row's gamma and beta terms, u's second factor and t2's table entry kept in ru / w2), then per
 * element u and y. The same integer steps and clamps as the general loop. Returns 0 (nothing
 * done) where a shift is out of that range. */
#ifndef EV_TFL_LN_MAX
#define EV_TFL_LN_MAX 256
#endif

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* ev_tfl__ln_row's operands (ev_tfl_m7.S reads them by these offsets) */
struct ev_tfl__lnr {
    const int32_t *gb;          /* 0: {gamma, beta's table entry} per channel */
    int32_t *rec;               /* 4: 3 c words of scratch */
    int32_t c;                  /* 8 */
    int32_t rv2, mg, hg, eg;    /* 12 */
    int32_t u2, nux;            /* 28: 2 u_rzp, -u_xzp */
    int32_t nv, k;              /* 36 */
    int32_t mt, ht, et;         /* 44 */
    int32_t mb, hb, eb;         /* 56 */
    const int32_t *t_t;         /* 68 */
    const int8_t *x;            /* 72 */
    int8_t *y;                  /* 76 */
    int32_t mu, hu, eu;         /* 80 */
    int32_t my, hy, ey;         /* 92 */
    const int32_t *t_u;         /* 104 */
};
void ev_tfl__ln_row(const struct ev_tfl__lnr *a);
#endif

static __attribute__((noinline)) int ev_tfl__ln_fast(const int8_t *x, int rows, int c, const int32_t *p,
                                                     const int32_t *tab, const int8_t *luts, const int32_t *gb,
                                                     int8_t *y,
                                                     const struct ev_tfl__sm *pm1, const struct ev_tfl__sm *psqb,
                                                     const struct ev_tfl__sm *psq, const struct ev_tfl__sm *pm2,
                                                     const struct ev_tfl__sm *pg, const struct ev_tfl__sm *pt,
                                                     const struct ev_tfl__sm *pb, const struct ev_tfl__sm *pu,
                                                     const struct ev_tfl__sm *py)
{
    const int32_t *t_sq = tab + 128, *t_t = tab + 384, *t_u = tab + 640, *t_t2 = tab + 896;
    const int32_t *t_beta = tab + 1024, *gam = tab + 1024 + c;
    const int8_t *lut_neg = luts + 128, *lut_r = luts + 384;
    const int32_t m1_off = p[LN_M1_XZP] * c, sq_bzp = p[LN_SQ_BZP], m2_off = p[LN_M2_XZP] * c;
    const int32_t g_rzp = p[LN_G_RZP], t_nzp = p[LN_T_NZP], t_rzp = p[LN_T_RZP], u_xzp = p[LN_U_XZP];
    const int32_t u_rzp = p[LN_U_RZP];
    struct ev_tfl__sm q_m1, q_sq, q_m2, q_g, q_t, q_b, q_u, q_y;
    const struct ev_tfl__sm q_sqb = *psqb;
    int32_t wr[2 * EV_TFL_LN_MAX];
    int32_t *const w2 = wr, *const ru = wr + EV_TFL_LN_MAX;
    int r, i;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    struct ev_tfl__lnr a;
    const int row_asm = gb && 3 * c <= 2 * EV_TFL_LN_MAX;      /* its records fit wr */
#endif
    if (!(ev_tfl__fold_zp(&q_m1, pm1, p[LN_M1_YZP]) & ev_tfl__fold_zp(&q_sq, psq, p[LN_SQ_YZP]) &
          ev_tfl__fold_zp(&q_m2, pm2, p[LN_M2_YZP]) & ev_tfl__fold_zp(&q_g, pg, p[LN_G_YZP]) &
          ev_tfl__fold_zp(&q_t, pt, p[LN_T_YZP]) & ev_tfl__fold_zp(&q_b, pb, p[LN_B_YZP]) &
          ev_tfl__fold_zp(&q_u, pu, p[LN_U_YZP]) & ev_tfl__fold_zp(&q_y, py, p[LN_Y_YZP])))
        return 0;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    a.gb = gb;
    a.rec = wr;
    a.c = c;
    a.mg = q_g.m;
    a.hg = q_g.half;
    a.eg = q_g.right;
    a.u2 = 2 * u_rzp;
    a.nux = -u_xzp;
    a.mt = q_t.m;
    a.ht = q_t.half;
    a.et = q_t.right;
    a.mb = q_b.m;
    a.hb = q_b.half;
    a.eb = q_b.right;
    a.t_t = t_t;
    a.mu = q_u.m;
    a.hu = q_u.half;
    a.eu = q_u.right;
    a.my = q_y.m;
    a.hy = q_y.half;
    a.ey = q_y.right;
    a.t_u = t_u;
#else
    (void)gb;
#endif
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + r * c;
        int8_t *yr = y + r * c;
        int32_t s = 0, s2 = 0, mu, xb, var, rv2, nv2;
#if EV_KERNELS_DSP
        /* four bytes a word: USADA8 sums them as unsigned (x + 128, the sign bit flipped) */
        {
            uint32_t su = 0;
            for (i = 0; i + 4 <= c; i += 4)
                su = __usada8(ev_tfl__ld32(xr + i) ^ 0x80808080u, 0, su);
            s = (int32_t)su - 128 * i;
            for (; i < c; i++)
                s += xr[i];
        }
#else
        for (i = 0; i < c; i++)
            s += xr[i];
#endif
        mu = ev_tfl__sat8(EV_TFL__SMR(s - m1_off, q_m1));
        xb = EV_TFL__SM((mu - sq_bzp) * (1 << 7), q_sqb);
        {
            /* EV_TFL__SMR(d d, q) without its sign term: d d >= 0 (the product fits an int32, as
             * EV_TFL__SMR's x << 1 needs), so that term is 0; two elements an iteration */
            const struct ev_tfl__sm q = q_sq;
            for (i = 0; i + 2 <= c; i += 2) {
                const int32_t d0 = t_sq[xr[i]] - xb, d1 = t_sq[xr[i + 1]] - xb;
                s2 += ev_tfl__sat8(ev_tfl__smmlar((int32_t)((uint32_t)(d0 * d0) << 1), q.m, q.half) >> q.right);
                s2 += ev_tfl__sat8(ev_tfl__smmlar((int32_t)((uint32_t)(d1 * d1) << 1), q.m, q.half) >> q.right);
            }
            for (; i < c; i++) {
                const int32_t d = t_sq[xr[i]] - xb;
                s2 += ev_tfl__sat8(EV_TFL__SMR(d * d, q));
            }
        }
        var = ev_tfl__sat8(EV_TFL__SMR(s2 - m2_off, q_m2));
        /* EV_TFL__SMR(v, q) doubles v for its SMMLAR: here one factor of each product is doubled
         * instead (|rv gamma|, |nv (rg - t_rzp)|, |(x - u_xzp)(rg - u_rzp)| < 2^30 by the import's
         * bounds, so the doubled product is exact and has the product's sign). The last pass runs as
         * five loops of few constants each, so that each keeps its constants in registers. */
        rv2 = 2 * (lut_r[var] - g_rzp);
        nv2 = 2 * (lut_neg[mu] - t_nzp);
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
        if (row_asm) {              /* the same steps in ev_tfl__ln_row (ev_tfl_m7.S) */
            a.rv2 = rv2;
            a.nv = nv2 / 2;
            a.k = nv2 * (u_rzp - t_rzp);
            a.x = xr;
            a.y = yr;
            ev_tfl__ln_row(&a);
            continue;
        }
#endif
        {
            const struct ev_tfl__sm qg = q_g;
            for (i = 0; i < c; i++) {           /* ru = 2 (rg - u_rzp) */
                const int32_t vg = rv2 * gam[i];
                ru[i] = 2 * (ev_tfl__sat8(ev_tfl__smmlar(vg, qg.m, qg.half + (vg >> 31)) >> qg.right) - u_rzp);
            }
        }
        {
            const struct ev_tfl__sm qt = q_t;
            const int32_t nv = nv2 / 2, k = nv2 * (u_rzp - t_rzp);   /* nv2 (rg - t_rzp) = nv ru + k */
            for (i = 0; i < c; i++) {           /* w2 = t_t[t] + t_beta */
                const int32_t vt = nv * ru[i] + k;
                w2[i] = t_t[ev_tfl__sat8(ev_tfl__smmlar(vt, qt.m, qt.half + (vt >> 31)) >> qt.right)] + t_beta[i];
            }
        }
        {
            const struct ev_tfl__sm qb = q_b;
            for (i = 0; i < c; i++)             /* w2 = t_t2[t2] */
                w2[i] = t_t2[ev_tfl__sat8(EV_TFL__SMR(w2[i], qb))];
        }
        {
            const struct ev_tfl__sm qu = q_u;
            for (i = 0; i < c; i++) {           /* w2 = t_u[u] + t_t2[t2] */
                const int32_t vu = (xr[i] - u_xzp) * ru[i];
                w2[i] += t_u[ev_tfl__sat8(ev_tfl__smmlar(vu, qu.m, qu.half + (vu >> 31)) >> qu.right)];
            }
        }
        {
            const struct ev_tfl__sm qy = q_y;
            for (i = 0; i < c; i++)
                yr[i] = (int8_t)ev_tfl__sat8(EV_TFL__SMR(w2[i], qy));
        }
    }
    return 1;
}

void ev_tfl_layernorm_s8(const int8_t *x, int rows, int c, const int32_t *p, const int32_t *tab, const int8_t *luts,
                         const int32_t *gb, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_NORM);
    const int32_t *t_sq = tab + 128, *t_t = tab + 384, *t_u = tab + 640, *t_t2 = tab + 896;
    const int32_t *t_beta = tab + 1024, *gam = tab + 1024 + c;
    const int8_t *lut_neg = luts + 128, *lut_r = luts + 384;
    const int32_t m1_off = p[LN_M1_XZP] * c, m1_zp = p[LN_M1_YZP], sq_bzp = p[LN_SQ_BZP], sq_zp = p[LN_SQ_YZP];
    const int32_t m2_off = p[LN_M2_XZP] * c, m2_zp = p[LN_M2_YZP], g_rzp = p[LN_G_RZP], g_zp = p[LN_G_YZP];
    const int32_t t_nzp = p[LN_T_NZP], t_rzp = p[LN_T_RZP], t_zp = p[LN_T_YZP], b_zp = p[LN_B_YZP];
    const int32_t u_xzp = p[LN_U_XZP], u_rzp = p[LN_U_RZP], u_zp = p[LN_U_YZP], y_zp = p[LN_Y_YZP];
    struct ev_tfl__sm q_m1, q_sqb, q_sq, q_m2, q_g, q_t, q_b, q_u, q_y;
    int r, i;
    ev_tfl__sm_init(&q_m1, p[LN_M1_M], p[LN_M1_SH]);
    ev_tfl__sm_init(&q_sqb, p[LN_SQ_BM], p[LN_SQ_BSH]);
    ev_tfl__sm_init(&q_sq, p[LN_SQ_M], p[LN_SQ_SH]);
    ev_tfl__sm_init(&q_m2, p[LN_M2_M], p[LN_M2_SH]);
    ev_tfl__sm_init(&q_g, p[LN_G_M], p[LN_G_SH]);
    ev_tfl__sm_init(&q_t, p[LN_T_M], p[LN_T_SH]);
    ev_tfl__sm_init(&q_b, p[LN_B_M], p[LN_B_SH]);
    ev_tfl__sm_init(&q_u, p[LN_U_M], p[LN_U_SH]);
    ev_tfl__sm_init(&q_y, p[LN_Y_M], p[LN_Y_SH]);
    if (c <= EV_TFL_LN_MAX && ev_tfl__ln_fast(x, rows, c, p, tab, luts, gb, y, &q_m1, &q_sqb, &q_sq, &q_m2, &q_g, &q_t,
                                              &q_b, &q_u, &q_y)) {
        EV_PART_LEAVE(pp);
        return;
    }
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + r * c;
        int8_t *yr = y + r * c;
        int32_t s = 0, s2 = 0, mu, xb, var, rv, nv;
        for (i = 0; i < c; i++)
            s += xr[i];
        mu = ev_tfl__sat8(EV_TFL__SM(s - m1_off, q_m1) + m1_zp);
        xb = EV_TFL__SM((mu - sq_bzp) * (1 << 7), q_sqb);
        for (i = 0; i < c; i++) {
            const int32_t d = t_sq[xr[i]] - xb;
            s2 += ev_tfl__sat8(EV_TFL__SM(d * d, q_sq) + sq_zp);
        }
        var = ev_tfl__sat8(EV_TFL__SM(s2 - m2_off, q_m2) + m2_zp);
        rv = lut_r[var] - g_rzp;
        nv = lut_neg[mu] - t_nzp;
        for (i = 0; i < c; i++) {
            const int32_t rg = ev_tfl__sat8(EV_TFL__SM(rv * gam[i], q_g) + g_zp);
            const int32_t t = ev_tfl__sat8(EV_TFL__SM(nv * (rg - t_rzp), q_t) + t_zp);
            const int32_t t2 = ev_tfl__sat8(EV_TFL__SM(t_t[t] + t_beta[i], q_b) + b_zp);
            const int32_t u = ev_tfl__sat8(EV_TFL__SM((xr[i] - u_xzp) * (rg - u_rzp), q_u) + u_zp);
            yr[i] = (int8_t)ev_tfl__sat8(EV_TFL__SM(t_u[u] + t_t2[t2], q_y) + y_zp);
        }
    }
    EV_PART_LEAVE(pp);
}
