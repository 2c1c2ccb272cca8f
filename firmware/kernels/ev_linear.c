/* Matrix kernels: ev_linear_s8 and the attention row kernels (q.k scores, p.v).
 *
 * All of them are int32 dot products of int8 vectors followed by ev_requant. Sums are kept in
 * uint32_t on the portable path so that overflow wraps (as numpy's int32 matmul and the M7's SMLAD
 * do) instead of being undefined; with realistic sizes they never overflow anyway.
 */
#include <string.h>

#include "ev_kernels.h"

#if EV_KERNELS_DSP
#include <arm_acle.h>
#endif

/* Requantise one output, then apply the optional LUT. */
static inline int8_t ev__finish(int32_t acc, int32_t m, int32_t s, const int8_t *lut)
{
    int8_t v = ev_requant(acc, m, s);
    return lut ? lut[v + 128] : v;
}

/* Shared core: y[n][o] = finish(bias + sum_k x[n][k] * w[o][k]) with
 *   w row o at w + o * w_stride, bias NULL (0) or bias[n * bias_row_stride + o],
 *   m/s per channel when qstep == 1 or the same for all channels when qstep == 0.
 * ev_linear_s8 and ev_attn_scores_row (x = q, w = keys) are both this. */
static void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
                     const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
                     const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
                     int8_t *y, int y_stride);

void ev_linear_s8(const int8_t *x, int x_stride, int rows, int in, int out,
                  const int8_t *w, const int32_t *bias, int bias_row_stride,
                  const int32_t *mult, const int8_t *shift, const int8_t *lut,
                  int8_t *y, int y_stride)
{
    ev__gemm(x, x_stride, rows, in, out, w, in, bias, bias_row_stride, mult, shift, 1, lut,
             y, y_stride);
}

/* One query row against n_keys key rows: a 1 x dh by dh x n_keys product without bias. The DSP
 * build has its own version of the common sizes below. */
static void ev__scores_gemm(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                            int32_t m, int32_t s, int8_t *scores)
{
    int8_t s8 = (int8_t)s;   /* s <= 62 by contract */
    ev__gemm(q, dh, 1, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, n_keys);
}

/* ------------------------------------------------------------------------------------------ */
/* Portable path. Also the scalar tail code of the DSP path (dot products of the last k). */

static inline uint32_t ev__dot_tail(const int8_t *a, const int8_t *b, int n, uint32_t acc)
{
    int k;
    for (k = 0; k < n; k++)
        acc += (uint32_t)((int32_t)a[k] * b[k]);
    return acc;
}

/* ev__gemm one output at a time: the portable path, and the DSP path's choice for inputs
 * shorter than 8, where setting up SMLAD tiles costs more than it saves. */
static void ev__gemm_scalar(const int8_t *x, int x_stride, int rows, int in, int out,
                            const int8_t *w, int w_stride, const int32_t *bias,
                            int bias_row_stride, const int32_t *mult, const int8_t *shift,
                            int qstep, const int8_t *lut, int8_t *y, int y_stride)
{
    int n, o;
    for (n = 0; n < rows; n++) {
        const int8_t *xr = x + (long)n * x_stride;
        const int32_t *br = bias ? bias + (long)n * bias_row_stride : 0;
        int8_t *yr = y + (long)n * y_stride;
        for (o = 0; o < out; o++) {
            uint32_t acc = br ? (uint32_t)br[o] : 0u;
            acc = ev__dot_tail(xr, w + (long)o * w_stride, in, acc);
            yr[o] = ev__finish((int32_t)acc, mult[o * qstep], shift[o * qstep], lut);
        }
    }
}

#if !EV_KERNELS_DSP

static void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
                     const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
                     const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
                     int8_t *y, int y_stride)
{
    ev__gemm_scalar(x, x_stride, rows, in, out, w, w_stride, bias, bias_row_stride, mult, shift,
                    qstep, lut, y, y_stride);
}

void ev_attn_scores_row(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                        int32_t m, int32_t s, int8_t *scores)
{
    ev__scores_gemm(q, k, k_stride, n_keys, dh, m, s, scores);
}

void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out)
{
    int d, j;
    for (d = 0; d < dh; d++) {
        uint32_t acc = 0;
        const int8_t *vd = v + d;
        for (j = 0; j < n_keys; j++)
            acc += (uint32_t)((int32_t)p[j] * vd[(long)j * v_stride]);
        out[d] = ev_requant((int32_t)acc, m, s);
    }
}

void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride)
{
    int r;
    for (r = 0; r < rows; r++)
        ev_attn_scores_row(q + (long)r * q_stride, k, k_stride, n_keys, dh, m, s,
                           scores + (long)r * s_stride);
}

void ev_attn_av_rows(const int8_t *p, int p_stride, int rows, const int8_t *v, int v_stride,
                     int n_keys, int dh, int32_t m, int32_t s, int8_t *out, int out_stride)
{
    int r;
    for (r = 0; r < rows; r++)
        ev_attn_av_row(p + (long)r * p_stride, v, v_stride, n_keys, dh, m, s,
                       out + (long)r * out_stride);
}

#else /* EV_KERNELS_DSP */

/* ------------------------------------------------------------------------------------------ */
/* Cortex-M7 DSP path.
 *
 * SMLAD multiplies two pairs of signed 16-bit halves and adds both products: 2 MACs in one
 * instruction. An int8 word is widened with SXTB16 (bytes 0 and 2) and SXTB16 ROR 8 (bytes 1
 * and 3); pairing widened x and w words the same way,
 *   smlad(lo(x), lo(w)) + smlad(hi(x), hi(w)) = x0 w0 + x1 w1 + x2 w2 + x3 w3.
 * Widening costs one instruction per two values, as much as the SMLAD it feeds, so widened words
 * must be reused. Four ways, picked by size (all give the same sums, so the same bits):
 *  S. rows >= 4, in % 16 == 0, in <= 304 and a bias: blocks of 4 and 5 x rows widened once,
 *     each channel's weights widened in registers as they stream through an assembly routine
 *     that loops over all channels (ev__rs4 / ev__rs5, below). 1..3 rows it cannot place in
 *     blocks (6, 7 and 11 rows) continue with A/B.
 *  A. rows >= 4 and in <= 259 otherwise: a block of x rows is widened once into a stack buffer and
 *     reused by every output channel; each pair of weight rows is widened once per block into the
 *     same buffer and reused by every row of the block. Rows go four at a time through a 4 rows x
 *     2 channels tile in assembly (ev__t42: 3 LDRD + 8 SMLAD per 16 MACs, no widening left in
 *     it), the block's last 1..3 rows through the 2 x 2 and 1 x 2 tiles, whose first pass
 *     widens the weight pair as it goes.
 *  B. 1..3 rows, or rows too wide for A: x rows are widened once (reused by every channel), the
 *     weights on the fly (each widened weight word serves both rows of a pair).
 *  C. rows too wide for B: both widened on the fly, one output at a time.
 * A widened group of 4 inputs is a pair of words (bytes 0/2, bytes 1/3); two rows (or two
 * channels) are interleaved half by half, (a lo, b lo, a hi, b hi), so one LDRD fetches the same
 * half of both and one pointer walks both; a row quad is interleaved the same way, (x0 lo, x1 lo,
 * x2 lo, x3 lo, x0 hi, ..). An odd channel count pairs the last
 * channel with itself (the duplicate output is dropped); inputs whose length is not a multiple of
 * 4 finish with a scalar loop over the last 1..3 values; inputs shorter than 8 skip all this.
 *
 * Instruction counts under QEMU (bench/bench_kernels.py, GCC 12 -O2), whole calls: 1.008
 * (17x64->192, S), 1.002 (4x64->192, S), 1.122 (17x192->576, S), 1.119 (4x192->576, S) MACs
 * per instruction; 0.82 (17x768->192, B: no 4-row block fits the buffer) and 0.46 (1x128->64,
 * B), against 0.18-0.20 for the portable path. Path A alone (a row quad with its requantisation,
 * ev__t42r: 1.20 at in = 64, 1.33 at in = 192) reached 0.96 / 0.92 on the 17-row calls and
 * 0.64 / 0.83 on the 4-row ones, which widen each weight pair for four rows only. */

/* Stack buffer of ev_linear_s8's DSP path, in 8-byte units (default 3 KiB of the 6 KiB stack the
 * targets reserve). A widened row of `in` values takes in/4 units. Path A needs 2 units per group
 * for the weight pair plus 1 per x row and group, for at least 4 rows; path B 2 per group.
 * Override with -DEV_LINEAR_BUF=N. */
#ifndef EV_LINEAR_BUF
#define EV_LINEAR_BUF 384
#endif

static inline uint32_t ev__ld32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);   /* unaligned LDR: the M7 allows it for word loads */
    return v;
}

static inline uint32_t ev__sxtb16_ror8(uint32_t u)
{
    /* ACLE has no rotating form and GCC 12 does not fold a rotate into __sxtb16: inline asm
     * saves the separate ROR (one instruction per widened word). */
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(u));
    return r;
}

#define EV__LO(u) ((uint32_t)__sxtb16((int32_t)(u)))                  /* bytes 0, 2 as s16 */
#define EV__HI(u) ev__sxtb16_ror8(u)                                  /* bytes 1, 3 as s16 */
#define EV__MAC(a, b, acc) ((uint32_t)__smlad((int32_t)(a), (int32_t)(b), (int32_t)(acc)))


/* lo, hi = the widened pair at p; p += 8 bytes. GCC splits 64-bit loads into two LDRs and does
 * not pair word loads itself; one LDRD with post-increment replaces two loads and an add. The
 * "m" operand tells GCC which 8 bytes are read. */
#define EV__LDRD(lo, hi, p)                                                                    \
    __asm__("ldrd %0, %1, [%2], #8"                                                            \
            : "=r"(lo), "=r"(hi), "+r"(p)                                                      \
            : "m"(*(const uint32_t(*)[2])(p)))
/* *p = (lo, hi); p += 8 bytes */
#define EV__STRD(lo, hi, p)                                                                    \
    __asm__("strd %2, %3, [%0], #8"                                                            \
            : "+r"(p), "=m"(*(uint32_t(*)[2])(p))                                              \
            : "r"(lo), "r"(hi))

/* Widen one row: kq groups of 4 values -> kq pairs at dst. */
static inline void ev__widen1(const int8_t *x, int kq, uint32_t *dst)
{
    const uint32_t *end = dst + 2 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(x);
        x += 4;
        EV__STRD(EV__LO(u), EV__HI(u), dst);
    }
}

/* Widen two rows group by group as (a lo, b lo, a hi, b hi): one LDRD then fetches the same
 * half of both rows, so a 2 x 2 tile needs only 4 data registers (see ev__t22_ab). */
static inline void ev__widen2(const int8_t *a, const int8_t *b, int kq, uint32_t *dst)
{
    const uint32_t *end = dst + 4 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(a), v = ev__ld32(b);
        a += 4;
        b += 4;
        EV__STRD(EV__LO(u), EV__LO(v), dst);
        EV__STRD(EV__HI(u), EV__HI(v), dst);
    }
}

/* Requantisation for s > 32 (r = 2^(t-1), t = s - 32 >= 1). SMMLA gives the top word of
 * (r << 32) + acc * m, which is r + floor(acc * m / 2^32) exactly (|acc * m| < 2^62 and
 * r <= 2^29, so the 64-bit sum cannot overflow and the top word is hi + r with |hi| <= 2^30):
 * ev_requant's hi + 2^(t-1) in one instruction instead of SMULL + ADD. Then ASR t and SSAT 8:
 * 3 instructions per output before the store. tests/test_kernels_mcu.py
 * checks it against intmath over every shift 33..62, extreme multipliers and accumulators, and
 * exact rounding ties. */
static inline __attribute__((always_inline)) int32_t ev__smmla(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* Requantisation with the per-channel work done once per channel: for s > 32 (the usual case)
 * ev_requant's fast form is SMMLA + ASR + SSAT (above); smaller shifts take ev_requant itself. */
struct ev__q {
    int32_t m, s, r, t;
};

static inline void ev__qinit(struct ev__q *q, int32_t m, int32_t s)
{
    q->m = m;
    q->s = s;
    q->t = s > 32 ? s - 32 : 0;
    q->r = s > 32 ? (int32_t)1 << (s - 33) : 0;
}

static inline int8_t ev__rq(const struct ev__q *q, uint32_t acc, const int8_t *lut)
{
    int32_t v;
    if (q->t) {
        v = __ssat(ev__smmla((int32_t)acc, q->m, q->r) >> q->t, 8);
    } else if (q->s == 32) {   /* attention's shift: (acc m + 2^31) >> 32 is SMMULR */
        __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"((int32_t)acc), "r"(q->m));
        v = __ssat(v, 8);
    } else {
        v = ev_requant((int32_t)acc, q->m, q->s);
    }
    return lut ? lut[v + 128] : (int8_t)v;
}

/* 2 rows x 2 channels, both widened: per group xb = (x0 lo, x1 lo, x0 hi, x1 hi) and wb =
 * (w0 lo, w1 lo, w0 hi, w1 hi). 4 LDRD + 8 SMLAD per 16 MACs; with each LDRD fetching one half
 * of both rows (or both channels) only 4 data registers are live, which leaves GCC enough
 * registers for 4 accumulators, 3 pointers and two groups per iteration without spills. */
static inline void ev__t22_ab(const uint32_t *xb, const uint32_t *wb, int kq, uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const uint32_t *end = wb + 4 * (kq & ~1);
    /* One half group (2 LDRD + 4 SMLAD) per asm statement. Written with __smlad and separate
     * loads, GCC 12 hoists the loads of an unrolled iteration ahead of the SMLADs, runs out of
     * registers and spills, or rotates the accumulators through spare registers and moves them
     * back each iteration: 4-6 extra instructions per 32 MACs. The asm keeps the 6 instructions
     * in this order, each accumulator in one register. It reads memory ("memory" clobber rather
     * than "m" operands, which at -O0 would need address registers that 10 operands leave no
     * room for). */
#define EV__HALF22()                                                                           \
    do {                                                                                       \
        uint32_t x0, x1, w0, w1;                                                               \
        __asm__("ldrd %[x0], %[x1], [%[xb]], #8\n\t"                                          \
                "ldrd %[w0], %[w1], [%[wb]], #8\n\t"                                          \
                "smlad %[a00], %[x0], %[w0], %[a00]\n\t"                                      \
                "smlad %[a01], %[x0], %[w1], %[a01]\n\t"                                      \
                "smlad %[a10], %[x1], %[w0], %[a10]\n\t"                                      \
                "smlad %[a11], %[x1], %[w1], %[a11]"                                          \
                : [x0] "=&r"(x0), [x1] "=&r"(x1), [w0] "=&r"(w0), [w1] "=&r"(w1),             \
                  [xb] "+r"(xb), [wb] "+r"(wb), [a00] "+r"(a00), [a01] "+r"(a01),             \
                  [a10] "+r"(a10), [a11] "+r"(a11)                                            \
                :                                                                              \
                : "memory");                                                                   \
    } while (0)
    while (wb != end) {
        EV__HALF22();
        EV__HALF22();
        EV__HALF22();
        EV__HALF22();
    }
    if (kq & 1) {
        EV__HALF22();
        EV__HALF22();
    }
#undef EV__HALF22
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* ev__t22_ab for the first row pair of a block: the weight pair is widened on the fly and
 * stored into wb for the other row pairs, which saves the separate widening pass's loads and
 * loop (20 instead of 10 + 13 instructions per group). */
static inline void ev__t22_w(const uint32_t *xb, const int8_t *w0, const int8_t *w1, int kq,
                             uint32_t *wb, uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const uint32_t *end = xb + 4 * kq;
    while (xb != end) {
        uint32_t u0 = ev__ld32(w0), u1 = ev__ld32(w1), l0, l1, x0, x1;
        w0 += 4;
        w1 += 4;
        l0 = EV__LO(u0);
        l1 = EV__LO(u1);
        EV__STRD(l0, l1, wb);
        EV__LDRD(x0, x1, xb);
        a00 = EV__MAC(x0, l0, a00);
        a01 = EV__MAC(x0, l1, a01);
        a10 = EV__MAC(x1, l0, a10);
        a11 = EV__MAC(x1, l1, a11);
        l0 = EV__HI(u0);
        l1 = EV__HI(u1);
        EV__STRD(l0, l1, wb);
        EV__LDRD(x0, x1, xb);
        a00 = EV__MAC(x0, l0, a00);
        a01 = EV__MAC(x0, l1, a01);
        a10 = EV__MAC(x1, l0, a10);
        a11 = EV__MAC(x1, l1, a11);
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* 1 widened row (xl, xh per group) x 2 widened channels (w0 lo, w1 lo, w0 hi, w1 hi):
 * 3 LDRD + 4 SMLAD per 8 MACs, two groups per iteration. */
static inline void ev__t12_ab(const uint32_t *xb, const uint32_t *wb, int kq, uint32_t acc[2])
{
    uint32_t a0 = acc[0], a1 = acc[1];
    uint32_t xl, xh, w0, w1;
    const uint32_t *end = xb + 2 * (kq & ~1);
#define EV__GROUP12()                                                                          \
    do {                                                                                       \
        EV__LDRD(xl, xh, xb);                                                                  \
        EV__LDRD(w0, w1, wb);                                                                  \
        a0 = EV__MAC(xl, w0, a0);                                                              \
        a1 = EV__MAC(xl, w1, a1);                                                              \
        EV__LDRD(w0, w1, wb);                                                                  \
        a0 = EV__MAC(xh, w0, a0);                                                              \
        a1 = EV__MAC(xh, w1, a1);                                                              \
    } while (0)
    while (xb != end) {
        EV__GROUP12();
        EV__GROUP12();
    }
    if (kq & 1)
        EV__GROUP12();
#undef EV__GROUP12
    acc[0] = a0; acc[1] = a1;
}

/* 2 widened rows (x0 lo, x1 lo, x0 hi, x1 hi per group) x 2 channels widened on the fly:
 * 2 LDRD + 2 LDR + 4 SXTB16 + 8 SMLAD per 16 MACs. */
static inline void ev__t22_a(const uint32_t *xb, int kq, const int8_t *w0, const int8_t *w1,
                             uint32_t acc[4])
{
    uint32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const uint32_t *end = xb + 4 * kq;
    while (xb != end) {
        uint32_t x0l, x0h, x1l, x1h, u, wl, wh;
        EV__LDRD(x0l, x1l, xb);
        EV__LDRD(x0h, x1h, xb);
        u = ev__ld32(w0);
        wl = EV__LO(u);
        wh = EV__HI(u);
        a00 = EV__MAC(x0l, wl, a00);
        a00 = EV__MAC(x0h, wh, a00);
        a10 = EV__MAC(x1l, wl, a10);
        a10 = EV__MAC(x1h, wh, a10);
        u = ev__ld32(w1);
        wl = EV__LO(u);
        wh = EV__HI(u);
        a01 = EV__MAC(x0l, wl, a01);
        a01 = EV__MAC(x0h, wh, a01);
        a11 = EV__MAC(x1l, wl, a11);
        a11 = EV__MAC(x1h, wh, a11);
        w0 += 4;
        w1 += 4;
    }
    acc[0] = a00; acc[1] = a01; acc[2] = a10; acc[3] = a11;
}

/* 1 widened row x 2 channels widened on the fly. */
static inline void ev__t12_a(const uint32_t *xb, int kq, const int8_t *w0, const int8_t *w1,
                             uint32_t acc[2])
{
    uint32_t a0 = acc[0], a1 = acc[1];
    const uint32_t *end = xb + 2 * kq;
    while (xb != end) {
        uint32_t xl, xh, u0 = ev__ld32(w0), u1 = ev__ld32(w1);
        EV__LDRD(xl, xh, xb);
        a0 = EV__MAC(xl, EV__LO(u0), a0);
        a0 = EV__MAC(xh, EV__HI(u0), a0);
        a1 = EV__MAC(xl, EV__LO(u1), a1);
        a1 = EV__MAC(xh, EV__HI(u1), a1);
        w0 += 4;
        w1 += 4;
    }
    acc[0] = a0; acc[1] = a1;
}

/* 1 row x 1 channel, both widened on the fly (path C). */
static inline uint32_t ev__dot_fly(const int8_t *x, const int8_t *w, int kq, uint32_t a)
{
    int g;
    for (g = 0; g < kq; g++) {
        uint32_t ux = ev__ld32(x + 4 * g), uw = ev__ld32(w + 4 * g);
        a = EV__MAC(EV__LO(ux), EV__LO(uw), a);
        a = EV__MAC(EV__HI(ux), EV__HI(uw), a);
    }
    return a;
}

/* The call's operands, shared by the paths. */
struct ev__mm {
    const int8_t *x, *w, *lut;
    const int32_t *bias, *mult;
    const int8_t *shift;
    int8_t *y;
    int x_stride, w_stride, bs, ys, qstep, k4, kt, kq;
};

/* y[0], y[1] = requantised a0, a1; y[1] is skipped for the last channel of an odd count. */
static inline __attribute__((always_inline)) void
ev__put(int8_t *y, uint32_t a0, uint32_t a1, const struct ev__q *q0, const struct ev__q *q1,
        int last, const int8_t *lut)
{
    y[0] = ev__rq(q0, a0, lut);
    if (!last)
        y[1] = ev__rq(q1, a1, lut);
}

/* The last in % 4 products of rows x0 (and x1 when two) with channels w0, w1. */
static inline __attribute__((always_inline)) void
ev__tails(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1, int kt,
          int two, uint32_t acc[4])
{
    acc[0] = ev__dot_tail(x0, w0, kt, acc[0]);
    acc[1] = ev__dot_tail(x0, w1, kt, acc[1]);
    if (two) {
        acc[2] = ev__dot_tail(x1, w0, kt, acc[2]);
        acc[3] = ev__dot_tail(x1, w1, kt, acc[3]);
    }
}

/* Accumulators of rows b (and b + bs when two; bs == 0: one bias per channel) for channels
 * o, o2. The second row is not read for a lone last row: with per-row biases it does not exist. */
static inline __attribute__((always_inline)) void
ev__acc_init(const int32_t *b, int bs, int o, int o2, int two, uint32_t acc[4])
{
    acc[0] = acc[1] = acc[2] = acc[3] = 0;
    if (b) {
        acc[0] = (uint32_t)b[o];
        acc[1] = (uint32_t)b[o2];
        if (two) {
            acc[2] = (uint32_t)b[bs + o];
            acc[3] = (uint32_t)b[bs + o2];
        }
    }
}

/* The operands are copied into locals first: y is int8_t, which may alias anything, so fields
 * read through a pointer would be reloaded after every store. An odd channel count pairs the last
 * channel with itself (o2 == o) and drops the duplicate outputs. */
#define EV__LOCALS(p)                                                                          \
    const int kq = (p)->kq, kt = (p)->kt, k4 = (p)->k4, xs = (p)->x_stride, ys = (p)->ys;      \
    const int bs = (p)->bs, ws = (p)->w_stride, qs = (p)->qstep;                              \
    const int8_t *const w = (p)->w, *const lut = (p)->lut, *const shift = (p)->shift;         \
    const int32_t *const mult = (p)->mult

#define EV__CHANNELS(o, out)                                                                   \
    const int last = (o) + 1 == (out), o2 = last ? (o) : (o) + 1;                              \
    const int8_t *const w0 = w + (long)(o) * ws, *const w1 = w + (long)o2 * ws;               \
    struct ev__q q0, q1;                                                                       \
    ev__qinit(&q0, mult[(o) * qs], shift[(o) * qs]);                                           \
    ev__qinit(&q1, mult[o2 * qs], shift[o2 * qs])

/* ev__rq for s > 32 with the channel's values in registers. */
static inline __attribute__((always_inline)) int8_t
ev__rqf(uint32_t acc, int32_t m, int32_t r, int32_t t, const int8_t *lut)
{
    int32_t v = __ssat(ev__smmla((int32_t)acc, m, r) >> t, 8);
    return lut ? lut[v + 128] : (int8_t)v;
}

/* 4 widened rows x 2 widened channels, in assembly. xq per group: (x0 lo, x1 lo, x2 lo, x3 lo,
 * x0 hi, x1 hi, x2 hi, x3 hi); wb per group: (w0 lo, w1 lo, w0 hi, w1 hi). acc[2r + c] =
 * init[2r + c] + row r . channel c over kq >= 1 groups.
 *
 * Per half group: LDRD x0,x1 + LDRD w0,w1 + 4 SMLAD + LDRD x2,x3 + 4 SMLAD, i.e. 3 loads and
 * 8 SMLAD per 16 MACs (1.45 MACs/instruction) against 4 + 8 for the 2 x 2 tile (1.33): each
 * widened weight pair feeds four rows. That needs 8 accumulators, 4 data registers and 2
 * pointers, all 14 allocatable registers, which C with inline asm cannot get from GCC (and at
 * -O0 with a frame pointer has 13): hence a whole assembly routine. The end pointer lives on
 * the stack and is reloaded into a free data register once per two groups (3 instructions per
 * 64 MACs). Called through the AAPCS: r0 xq, r1 wb, r2 kq, r3 init, [sp] acc. */
void ev__t42(const uint32_t *xq, const uint32_t *wb, int kq, const uint32_t *init,
             uint32_t *acc);
#define EV__T42_HALF                                                                           \
    "ldrd r2, r3, [r0], #8\n\t"                                                                \
    "ldrd r12, lr, [r1], #8\n\t"                                                               \
    "smlad r4, r2, r12, r4\n\t"                                                                \
    "smlad r5, r2, lr, r5\n\t"                                                                 \
    "smlad r6, r3, r12, r6\n\t"                                                                \
    "smlad r7, r3, lr, r7\n\t"                                                                 \
    "ldrd r2, r3, [r0], #8\n\t"                                                                \
    "smlad r8, r2, r12, r8\n\t"                                                                \
    "smlad r9, r2, lr, r9\n\t"                                                                 \
    "smlad r10, r3, r12, r10\n\t"                                                              \
    "smlad r11, r3, lr, r11\n\t"
/* Every assembly routine here: a hidden global Thumb function in a section of its own (so the
 * linker drops the unused ones). */
#define EV__FN_BEGIN(NAME)                                                                     \
    ".pushsection .text." NAME ",\"ax\",%progbits\n\t"                                         \
    ".balign 4\n\t"                                                                            \
    ".global " NAME "\n\t"                                                                     \
    ".hidden " NAME "\n\t"                                                                     \
    ".thumb\n\t"                                                                               \
    ".thumb_func\n\t"                                                                          \
    ".type " NAME ", %function\n"                                                              \
    NAME ":\n\t"
#define EV__FN_END(NAME)                                                                       \
    ".size " NAME ", .-" NAME "\n\t"                                                           \
    ".popsection"

/* ev__t42's loop: kq (>= 1) groups, r2 = kq on entry, the wb end pointer at [sp, #4]. kq % 4
 * groups first (one, then two), then four groups per iteration: the end test (LDR + CMP + BNE,
 * no register is free to hold the end) costs 3 instructions per 128 MACs. */
#define EV__T42_GROUP EV__T42_HALF EV__T42_HALF
#define EV__T42_LOOP                                                                           \
    "lsls r2, r2, #31\n\t"            /* Z: kq even; C: bit 1 of kq */                         \
    "beq 1f\n\t"                                                                               \
    EV__T42_GROUP                                                                              \
    "1:\n\t"                                                                                   \
    "bcc 2f\n\t"                                                                               \
    EV__T42_GROUP EV__T42_GROUP                                                                \
    "2:\n\t"                                                                                   \
    "ldr r2, [sp, #4]\n\t"                                                                     \
    "cmp r1, r2\n\t"                                                                           \
    "beq 4f\n"                                                                                 \
    "3:\n\t"                                                                                   \
    EV__T42_GROUP EV__T42_GROUP EV__T42_GROUP EV__T42_GROUP                                    \
    "ldr r2, [sp, #4]\n\t"                                                                     \
    "cmp r1, r2\n\t"                                                                           \
    "bne 3b\n"                                                                                 \
    "4:\n\t"
__asm__(EV__FN_BEGIN("ev__t42")
        "push {r4-r11, lr}\n\t"
        "ldm r3, {r4-r11}\n\t"
        "add r12, r1, r2, lsl #4\n\t"    /* wb end: 16 bytes per group */
        "push {r3, r12}\n\t"             /* wb end at [sp, #4]; acc now at [sp, #44] */
        EV__T42_LOOP
        "ldr r3, [sp, #44]\n\t"
        "stm r3, {r4-r11}\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4-r11, pc}\n\t"
        EV__FN_END("ev__t42"));
/* ev__t42 followed by the requantisation of its 8 sums and their stores, for path A's common
 * case (two real channels, shifts > 32, no in % 4 tail). ev__t42's loop, then per output SMMLA +
 * ASR + SSAT (+ LDRSB from lut + 128 when there is a table) + STRB, so the sums never go
 * through memory and the caller's loop stays small enough for GCC to keep in registers.
 * r3 points at a struct ev__t42q: */
struct ev__t42q {
    const uint32_t *init;   /* 0: 8 start values, ev__t42's order */
    int8_t *y;              /* 4: row 0, channel 0; rows at y + r * ys, channel 1 at + 1 */
    int32_t ys;             /* 8 */
    const int8_t *lut;      /* 12: NULL or the table */
    int32_t m0, r0, t0;     /* 16: channel 0's requantisation (ev__q m, r, t) */
    int32_t m1, r1, t1;     /* 28: channel 1's */
};
void ev__t42r(const uint32_t *xq, const uint32_t *wb, int kq, const struct ev__t42q *a);
void ev__t42r_lut(const uint32_t *xq, const uint32_t *wb, int kq, const struct ev__t42q *a);
/* one output: acc register R requantised with r1 = m, r2 = round, r3 = shift */
#define EV__RQ(R) "smmla " R ", " R ", r1, r2\n\t" "asr " R ", " R ", r3\n\t" "ssat " R ", #8, " R "\n\t"
#define EV__LUT(R) "ldrsb " R ", [lr, " R "]\n\t"
/* channel c's four sums a, b, c, d (rows 0..3) to r0, r0 + ys, r0 + 2 ys, r0 + 3 ys (ys in r12) */
#define EV__T42R_BODY(NAME, LUT)                                                               \
    EV__FN_BEGIN(NAME)                                                                         \
    "push {r4-r11, lr}\n\t"                                                                    \
    "ldr r12, [r3]\n\t"                                                                        \
    "ldm r12, {r4-r11}\n\t"                                                                    \
    "add r12, r1, r2, lsl #4\n\t"                                                              \
    "push {r3, r12}\n\t"              /* [sp] a, [sp, #4] wb end */                            \
    EV__T42_LOOP                                                                               \
    "pop {r3, r12}\n\t"                                                                        \
    "ldrd r0, r12, [r3, #4]\n\t"      /* y, ys */                                              \
    "ldr lr, [r3, #12]\n\t"                                                                    \
    "add lr, lr, #128\n\t"            /* lut + 128: index by the signed value */               \
    "push {r3}\n\t"                                                                            \
    "add r3, r3, #16\n\t"                                                                      \
    "ldm r3, {r1, r2, r3}\n\t"                                                                 \
    EV__RQ("r4") EV__RQ("r6") EV__RQ("r8") EV__RQ("r10")                                       \
    LUT("r4") LUT("r6") LUT("r8") LUT("r10")                                                   \
    "add r2, r0, r12\n\t"                                                                      \
    "strb r4, [r0]\n\t"                                                                        \
    "strb r6, [r2]\n\t"                                                                        \
    "strb r8, [r0, r12, lsl #1]\n\t"                                                           \
    "strb r10, [r2, r12, lsl #1]\n\t"                                                          \
    "pop {r3}\n\t"                                                                             \
    "add r0, r0, #1\n\t"                                                                       \
    "add r3, r3, #28\n\t"                                                                      \
    "ldm r3, {r1, r2, r3}\n\t"                                                                 \
    EV__RQ("r5") EV__RQ("r7") EV__RQ("r9") EV__RQ("r11")                                       \
    LUT("r5") LUT("r7") LUT("r9") LUT("r11")                                                   \
    "add r2, r0, r12\n\t"                                                                      \
    "strb r5, [r0]\n\t"                                                                        \
    "strb r7, [r2]\n\t"                                                                        \
    "strb r9, [r0, r12, lsl #1]\n\t"                                                           \
    "strb r11, [r2, r12, lsl #1]\n\t"                                                          \
    "pop {r4-r11, pc}\n\t"                                                                     \
    EV__FN_END(NAME)
#define EV__NOLUT(R)
__asm__(EV__T42R_BODY("ev__t42r", EV__NOLUT));
__asm__(EV__T42R_BODY("ev__t42r_lut", EV__LUT));
#undef EV__T42R_BODY
#undef EV__RQ
#undef EV__LUT
#undef EV__NOLUT
#undef EV__T42_LOOP
#undef EV__T42_GROUP
#undef EV__T42_HALF

/* Widen four rows group by group in ev__t42's order. */
static inline void ev__widen4(const int8_t *a, int xs, int kq, uint32_t *dst)
{
    const int8_t *b = a + xs, *c = b + xs, *d = c + xs;
    const uint32_t *end = dst + 8 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(a), v = ev__ld32(b), t = ev__ld32(c), z = ev__ld32(d);
        a += 4;
        b += 4;
        c += 4;
        d += 4;
        EV__STRD(EV__LO(u), EV__LO(v), dst);
        EV__STRD(EV__LO(t), EV__LO(z), dst);
        EV__STRD(EV__HI(u), EV__HI(v), dst);
        EV__STRD(EV__HI(t), EV__HI(z), dst);
    }
}

/* Accumulator start values of a row quad (rows b, b + bs, ..) for channels o, o2. */
static inline void ev__init4(const int32_t *b, int bs, int o, int o2, uint32_t init[8])
{
    int r;
    for (r = 0; r < 4; r++) {
        init[2 * r] = b ? (uint32_t)b[r * bs + o] : 0u;
        init[2 * r + 1] = b ? (uint32_t)b[r * bs + o2] : 0u;
    }
}

/* ev__t12_ab for a block without a remainder pair: the weight pair is widened on the fly and
 * stored into wb for the row quads (13 instructions per group instead of 12 for a separate
 * widening pass plus 7 for ev__t12_ab). */
static inline void ev__t12_w(const uint32_t *xb, const int8_t *w0, const int8_t *w1, int kq,
                             uint32_t *wb, uint32_t acc[2])
{
    uint32_t a0 = acc[0], a1 = acc[1];
    const uint32_t *end = xb + 2 * kq;
    while (xb != end) {
        uint32_t u0 = ev__ld32(w0), u1 = ev__ld32(w1), l0, l1, xl, xh;
        w0 += 4;
        w1 += 4;
        l0 = EV__LO(u0);
        l1 = EV__LO(u1);
        EV__STRD(l0, l1, wb);
        EV__LDRD(xl, xh, xb);
        a0 = EV__MAC(xl, l0, a0);
        a1 = EV__MAC(xl, l1, a1);
        l0 = EV__HI(u0);
        l1 = EV__HI(u1);
        EV__STRD(l0, l1, wb);
        a0 = EV__MAC(xh, l0, a0);
        a1 = EV__MAC(xh, l1, a1);
    }
    acc[0] = a0; acc[1] = a1;
}

/* Path A on rows [n0, n0 + nb). xb holds the block's x rows, widened once: nb / 4 quads (8 kq
 * words each, ev__t42's order), then a pair if nb % 4 >= 2 (4 kq words, ev__t22_ab's order),
 * then a single row if nb is odd (2 kq words). wb holds the current weight pair (4 kq words),
 * widened once per block and channel pair: by the remainder pair's tile as it goes (ev__t22_w)
 * when there is one, else by a separate pass. Row quads run ev__t42, the pair ev__t22_*, the
 * single row ev__t12_ab. */
static void ev__block_ab(const struct ev__mm *p, int n0, int nb, int out, uint32_t *xb,
                         uint32_t *wb)
{
    EV__LOCALS(p);
    const int nq = nb >> 2, pair = nb & 2, odd = nb & 1;
    const int8_t *const x = p->x + (long)n0 * xs;
    const int32_t *const bias = p->bias ? p->bias + (long)n0 * bs : 0;
    int8_t *const y = p->y + (long)n0 * ys;
    uint32_t *const xpair = xb + (long)nq * 8 * kq;
    uint32_t *const xodd = xpair + (pair ? 4L * kq : 0L);
    const int8_t *const xr_pair = x + (long)nq * 4 * xs;            /* the pair's int8 rows */
    const int8_t *const xr_odd = xr_pair + (pair ? 2L * xs : 0L);   /* the single row's */
    int i, o;

    for (i = 0; i < nq; i++)
        ev__widen4(x + (long)4 * i * xs, xs, kq, xb + (long)i * 8 * kq);
    if (pair)
        ev__widen2(xr_pair, xr_pair + xs, kq, xpair);
    if (odd)
        ev__widen1(xr_odd, kq, xodd);

    for (o = 0; o < out; o += 2) {
        EV__CHANNELS(o, out);
        uint32_t init[8], acc[8];
        struct ev__t42q a;

        /* The weight pair is widened into wb by the first remainder tile as it goes (the pair's
         * when there is one, else the single row's), or by a separate pass. */
        if (pair) {
            const int32_t *bp = bias ? bias + (long)nq * 4 * bs : 0;
            ev__acc_init(bp, bs, o, o2, 1, acc);
            ev__t22_w(xpair, w0, w1, kq, wb, acc);
            if (kt)
                ev__tails(xr_pair + k4, xr_pair + xs + k4, w0 + k4, w1 + k4, kt, 1, acc);
            ev__put(y + (long)nq * 4 * ys + o, acc[0], acc[1], &q0, &q1, last, lut);
            ev__put(y + ((long)nq * 4 + 1) * ys + o, acc[2], acc[3], &q0, &q1, last, lut);
        }
        if (odd) {
            const int32_t *bp = bias ? bias + (long)(nb - 1) * bs : 0;
            ev__acc_init(bp, bs, o, o2, 0, acc);
            if (pair)
                ev__t12_ab(xodd, wb, kq, acc);
            else
                ev__t12_w(xodd, w0, w1, kq, wb, acc);
            if (kt)
                ev__tails(xr_odd + k4, xr_odd, w0 + k4, w1 + k4, kt, 0, acc);
            ev__put(y + (long)(nb - 1) * ys + o, acc[0], acc[1], &q0, &q1, last, lut);
        }
        if (!nq)
            continue;
        if (!pair && !odd)
            ev__widen2(w0, w1, kq, wb);

        /* one bias per channel: the quads share their start values */
        if (!bs)
            ev__init4(bias, 0, o, o2, init);
        if (!kt && !last && q0.t && q1.t) {
            /* the common case: sums, requantisation and stores in ev__t42r */
            a.init = init; a.ys = ys; a.lut = lut;
            a.m0 = q0.m; a.r0 = q0.r; a.t0 = q0.t;
            a.m1 = q1.m; a.r1 = q1.r; a.t1 = q1.t;
            for (i = 0; i < nq; i++) {
                if (bs)
                    ev__init4(bias + (long)4 * i * bs, bs, o, o2, init);
                a.y = y + (long)4 * i * ys + o;
                if (lut)
                    ev__t42r_lut(xb + (long)i * 8 * kq, wb, kq, &a);
                else
                    ev__t42r(xb + (long)i * 8 * kq, wb, kq, &a);
            }
        } else {
            for (i = 0; i < nq; i++) {
                const int8_t *xr = x + (long)4 * i * xs;
                int8_t *yp = y + (long)4 * i * ys + o;
                int r;
                if (bs)
                    ev__init4(bias + (long)4 * i * bs, bs, o, o2, init);
                ev__t42(xb + (long)i * 8 * kq, wb, kq, init, acc);
                for (r = 0; r < 4; r++) {
                    if (kt) {
                        acc[2 * r] = ev__dot_tail(xr + k4, w0 + k4, kt, acc[2 * r]);
                        acc[2 * r + 1] = ev__dot_tail(xr + k4, w1 + k4, kt, acc[2 * r + 1]);
                    }
                    ev__put(yp, acc[2 * r], acc[2 * r + 1], &q0, &q1, last, lut);
                    xr += xs;
                    yp += ys;
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Path S (streamed weights): rows >= 4, in % 16 == 0, with a bias. A block of R = 4 or 5 rows is
 * widened once (ev__widen_r: per group the low halves of the R rows, then the high halves) and
 * every output channel then runs through one assembly routine, ev__rs4 / ev__rs5, which loops
 * over the channels itself: per channel R accumulators start at the bias, the channel's weights
 * are widened in registers as they stream past (LDR + 2 SXTB16 per group, shared by the R rows)
 * and the x block is fetched with LDM, four words per instruction:
 *   R = 4: LDR + 2 SXTB16 + 2 LDM + 8 SMLAD = 13 instructions per 16 MACs,
 *   R = 5: LDR + 2 SXTB16 + 2 LDM + LDRD + 10 SMLAD = 16 per 20,
 * then requantisation (SMMLA + ASR + SSAT, as ev__t42r) and the stores, about 36 instructions
 * per channel. Nothing is written back to the stack buffer, so no weight widening pass, no
 * remainder tiles and no per-pair C. Rows are split into blocks of 4 and 5 (17 = 4 + 4 + 4 + 5);
 * the 1..3 rows that cannot be (6, 7, 11 rows) go through paths A/B. A channel with shift <= 32
 * stops the routine, which returns -(channels left); C finishes that channel with
 * ev__gemm_scalar and restarts the routine after it.
 *
 * The routine gets a struct ev__rsa; every per-channel pointer is end-relative (base + out) and
 * indexed by a negative channel index in lr, so that the channel loop ends on ADDS + BNE. The
 * struct is copied into the routine's stack frame (sp-relative loads need no register). */
struct ev__rsa {
    const int32_t *b[5];   /*  0: bias of row r, + out */
    int8_t *y[5];          /* 20: output row r, + out */
    const int32_t *m;      /* 40: mult + out */
    const int8_t *s;       /* 44: shift + out */
    const int8_t *lut;     /* 48: lut + 128, or NULL */
    const uint32_t *xq;    /* 52: the widened block */
    const uint32_t *xe;    /* 56: its end */
    const int8_t *w;       /* 60: the first channel's weights; the others follow (stride = in) */
    int32_t n;             /* 64: channels, >= 1; the first is out - n */
    int32_t w_adv;         /* 68: ev__rs4p / ev__rs5p only: weight stride - the block's inputs */
};
int ev__rs4(const struct ev__rsa *a);
int ev__rs5(const struct ev__rsa *a);
/* Partial sums (inputs too wide for one widened block, see ev__stream_chunked): the same MAC loop
 * on one chunk of the inputs, the accumulators start at b[r][c] and are stored back there instead
 * of being requantised; channel c's chunk starts at w + c * (chunk + w_adv). */
void ev__rs4p(const struct ev__rsa *a);
void ev__rs5p(const struct ev__rsa *a);

#define EV__RS_HEAD(NAME)                                                                      \
    EV__FN_BEGIN(NAME)                                                                         \
    "push {r4-r11, lr}\n\t"                                                                    \
    "sub sp, sp, #76\n\t"                                                                      \
    "ldm r0!, {r1-r12}\n\t"                                                                    \
    "stm sp, {r1-r12}\n\t"                                                                     \
    "ldm r0, {r1-r6}\n\t"                                                                      \
    "add r7, sp, #48\n\t"                                                                      \
    "stm r7, {r1-r6}\n\t"                                                                      \
    "ldr r1, [sp, #60]\n\t"           /* w */                                                  \
    "ldr r2, [sp, #56]\n\t"           /* xq end */                                             \
    "rsb lr, r5, #0\n"                 /* channel index -n .. -1 */
#define EV__RS_TAIL(NAME)                                                                      \
    "mov r0, lr\n\t"                  /* 0, or -(channels left) at a shift <= 32 */            \
    "add sp, sp, #76\n\t"                                                                      \
    "pop {r4-r11, pc}\n\t"                                                                     \
    EV__FN_END(NAME)
/* requantise accumulator R: m in M, round in r3, shift in T */
#define EV__RSQ(R, M, T) "smmla " R ", " R ", " M ", r3\n\t" "asr " R ", " R ", " T "\n\t"     \
                         "ssat " R ", #8, " R "\n\t"
#define EV__RSL(R) "ldrsb " R ", [r3, " R "]\n\t"

/* R = 4: xq r0, w r1, xq end r2, wl r3, wh r12, acc r4-r7, x r8-r11, channel index lr */
#define EV__RS4_GROUP                                                                          \
    "ldr r12, [r1], #4\n\t"                                                                    \
    "sxtb16 r3, r12\n\t"                                                                       \
    "sxtb16 r12, r12, ror #8\n\t"                                                              \
    "ldm r0!, {r8-r11}\n\t"                                                                    \
    "smlad r4, r8, r3, r4\n\t"                                                                 \
    "smlad r5, r9, r3, r5\n\t"                                                                 \
    "smlad r6, r10, r3, r6\n\t"                                                                \
    "smlad r7, r11, r3, r7\n\t"                                                                \
    "ldm r0!, {r8-r11}\n\t"                                                                    \
    "smlad r4, r8, r12, r4\n\t"                                                                \
    "smlad r5, r9, r12, r5\n\t"                                                                \
    "smlad r6, r10, r12, r6\n\t"                                                               \
    "smlad r7, r11, r12, r7\n\t"
/* One channel's accumulators from b[r], then all its groups, 16 inputs an iteration. */
#define EV__RS4_MACS                                                                           \
    "1:\n\t"                                                                                   \
    "ldr r0, [sp, #52]\n\t"                                                                    \
    "ldm sp, {r3, r9-r11}\n\t"                                                                 \
    "ldr r4, [r3, lr, lsl #2]\n\t"                                                             \
    "ldr r5, [r9, lr, lsl #2]\n\t"                                                             \
    "ldr r6, [r10, lr, lsl #2]\n\t"                                                            \
    "ldr r7, [r11, lr, lsl #2]\n"                                                               \
    "2:\n\t"                                                                                   \
    EV__RS4_GROUP EV__RS4_GROUP EV__RS4_GROUP EV__RS4_GROUP                                    \
    "cmp r0, r2\n\t"                                                                           \
    "bne 2b\n\t"
__asm__(EV__RS_HEAD("ev__rs4")
        EV__RS4_MACS
        "ldrd r8, r9, [sp, #40]\n\t"
        "ldr r8, [r8, lr, lsl #2]\n\t"    /* m */
        "ldrsb r9, [r9, lr]\n\t"          /* s */
        "subs r10, r9, #32\n\t"           /* t = s - 32 */
        "ble 8f\n\t"
        "rsb r9, r9, #64\n\t"
        "mov r3, #0x80000000\n\t"
        "lsr r3, r3, r9\n\t"              /* 2^(t-1) */
        EV__RSQ("r4", "r8", "r10") EV__RSQ("r5", "r8", "r10")
        EV__RSQ("r6", "r8", "r10") EV__RSQ("r7", "r8", "r10")
        "ldr r3, [sp, #48]\n\t"
        "cbz r3, 3f\n\t"
        EV__RSL("r4") EV__RSL("r5") EV__RSL("r6") EV__RSL("r7")
        "3:\n\t"
        "add r3, sp, #20\n\t"
        "ldm r3, {r8-r11}\n\t"
        "strb r4, [r8, lr]\n\t"
        "strb r5, [r9, lr]\n\t"
        "strb r6, [r10, lr]\n\t"
        "strb r7, [r11, lr]\n\t"
        "adds lr, lr, #1\n\t"
        "bne 1b\n"
        "8:\n\t"
        EV__RS_TAIL("ev__rs4"));

/* R = 5: xq r0, w r1, wl r2, wh r3, acc r4-r8, x r9-r12, channel index lr; the xq end is
 * reloaded from the frame once per four groups. Group layout x0l..x4l, x0h..x4h. */
#define EV__RS5_GROUP                                                                          \
    "ldr r3, [r1], #4\n\t"                                                                     \
    "sxtb16 r2, r3\n\t"                                                                        \
    "sxtb16 r3, r3, ror #8\n\t"                                                                \
    "ldm r0!, {r9-r12}\n\t"                                                                    \
    "smlad r4, r9, r2, r4\n\t"                                                                 \
    "smlad r5, r10, r2, r5\n\t"                                                                \
    "smlad r6, r11, r2, r6\n\t"                                                                \
    "smlad r7, r12, r2, r7\n\t"                                                                \
    "ldm r0!, {r9-r12}\n\t"                                                                    \
    "smlad r8, r9, r2, r8\n\t"                                                                 \
    "smlad r4, r10, r3, r4\n\t"                                                                \
    "smlad r5, r11, r3, r5\n\t"                                                                \
    "smlad r6, r12, r3, r6\n\t"                                                                \
    "ldrd r9, r10, [r0], #8\n\t"                                                               \
    "smlad r7, r9, r3, r7\n\t"                                                                 \
    "smlad r8, r10, r3, r8\n\t"
#define EV__RS5_MACS                                                                           \
    "1:\n\t"                                                                                   \
    "ldr r0, [sp, #52]\n\t"                                                                    \
    "ldm sp, {r3, r9-r12}\n\t"                                                                 \
    "ldr r4, [r3, lr, lsl #2]\n\t"                                                             \
    "ldr r5, [r9, lr, lsl #2]\n\t"                                                             \
    "ldr r6, [r10, lr, lsl #2]\n\t"                                                            \
    "ldr r7, [r11, lr, lsl #2]\n\t"                                                            \
    "ldr r8, [r12, lr, lsl #2]\n"                                                               \
    "2:\n\t"                                                                                   \
    EV__RS5_GROUP EV__RS5_GROUP EV__RS5_GROUP EV__RS5_GROUP                                    \
    "ldr r2, [sp, #56]\n\t"                                                                    \
    "cmp r0, r2\n\t"                                                                           \
    "bne 2b\n\t"
__asm__(EV__RS_HEAD("ev__rs5")
        EV__RS5_MACS
        "ldrd r9, r10, [sp, #40]\n\t"
        "ldr r9, [r9, lr, lsl #2]\n\t"    /* m */
        "ldrsb r10, [r10, lr]\n\t"        /* s */
        "subs r11, r10, #32\n\t"          /* t = s - 32 */
        "ble 8f\n\t"
        "rsb r10, r10, #64\n\t"
        "mov r3, #0x80000000\n\t"
        "lsr r3, r3, r10\n\t"             /* 2^(t-1) */
        EV__RSQ("r4", "r9", "r11") EV__RSQ("r5", "r9", "r11") EV__RSQ("r6", "r9", "r11")
        EV__RSQ("r7", "r9", "r11") EV__RSQ("r8", "r9", "r11")
        "ldr r3, [sp, #48]\n\t"
        "cbz r3, 3f\n\t"
        EV__RSL("r4") EV__RSL("r5") EV__RSL("r6") EV__RSL("r7") EV__RSL("r8")
        "3:\n\t"
        "add r3, sp, #20\n\t"
        "ldm r3, {r0, r9-r12}\n\t"
        "strb r4, [r0, lr]\n\t"
        "strb r5, [r9, lr]\n\t"
        "strb r6, [r10, lr]\n\t"
        "strb r7, [r11, lr]\n\t"
        "strb r8, [r12, lr]\n\t"
        "adds lr, lr, #1\n\t"
        "bne 1b\n"
        "8:\n\t"
        EV__RS_TAIL("ev__rs5"));
/* ev__rk4: the attention products (q.k, and p.v over the qkv split's V^T) as 4 rows x n channels
 * with one multiplier at shift 32 for every output, which is SMMULR ((acc m + 2^31) >> 32, the
 * same formula as ev_requant) + SSAT: quantize.py gives attention s = 32 for this. The 4 rows are
 * widened once (ev__widen_r order: per group the 4 low halves, then the 4 high halves, LDM four
 * words at a time); channel c's kq weight words start at w + c * (4 kq + w_adv) and are widened
 * in registers as they stream (LDR + 2 SXTB16, shared by the 4 rows): 13 instructions per 16
 * MACs. The first group of a channel uses SMUAD (no accumulator reset); the other kq - 1 groups
 * are the last kq - 1 of an unrolled chain of EV__RK_MAXQ - 1, entered by a jump computed once
 * per call, so there is no loop counter in the MAC loop. Per channel after the MACs: SMMULR +
 * SSAT + STRB per row, one add for the next channel's weights, one for y: 18 instructions. */
#define EV__RK_MAXQ 64
struct ev__rka {
    const uint32_t *xq;       /*  0: the widened rows */
    int32_t m;                /*  4: multiplier, shift 32 */
    int32_t w_adv;            /*  8: weight stride - 4 kq */
    int32_t ys, ys2, ys3;     /* 12..20: output row stride x 1, 2, 3 */
    const int8_t *w;          /* 24: channel 0's weights */
    int8_t *y;                /* 28: row 0, channel 0 */
    int32_t n;                /* 32: channels >= 1 */
    int32_t kq;               /* 36: groups of 4 inputs, 1..EV__RK_MAXQ */
};
void ev__rk4(const struct ev__rka *a);

/* xq r0, w r1, y r2, wl r3, wh r12, acc r4-r7, x r8-r11, y end lr. 13 32-bit instructions, 52
 * bytes (the entry computation below counts on it). */
#define EV__RK4_GROUP(OP, A4, A5, A6, A7)                                                      \
    "ldr.w r12, [r1], #4\n\t"                                                                  \
    "sxtb16 r3, r12\n\t"                                                                       \
    "sxtb16 r12, r12, ror #8\n\t"                                                              \
    "ldm.w r0!, {r8-r11}\n\t"                                                                  \
    OP " r4, r8, r3" A4 "\n\t"                                                                 \
    OP " r5, r9, r3" A5 "\n\t"                                                                 \
    OP " r6, r10, r3" A6 "\n\t"                                                                \
    OP " r7, r11, r3" A7 "\n\t"                                                                \
    "ldm.w r0!, {r8-r11}\n\t"                                                                  \
    "smlad r4, r8, r12, r4\n\t"                                                                \
    "smlad r5, r9, r12, r5\n\t"                                                                \
    "smlad r6, r10, r12, r6\n\t"                                                               \
    "smlad r7, r11, r12, r7\n\t"
__asm__(EV__FN_BEGIN("ev__rk4")
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #32\n\t"
        "ldm r0!, {r1-r6}\n\t"
        "stm sp, {r1-r6}\n\t"             /* xq, m, w_adv, ys, ys2, ys3; [sp, #24]: the entry */
        "ldm r0, {r1, r2, r4, r5}\n\t"    /* w, y, n, kq */
        "add lr, r2, r4\n\t"
        "adr.w r3, 9f\n\t"
        "sub r5, r5, #1\n\t"
        "mov r12, #52\n\t"
        "mls r3, r12, r5, r3\n\t"         /* skip the chain's first EV__RK_MAXQ - kq groups */
        "orr r3, r3, #1\n\t"
        "str r3, [sp, #24]\n\t"
        "ldr r0, [sp]\n"
        "1:\n\t"
        EV__RK4_GROUP("smuad", "", "", "", "")
        "ldr pc, [sp, #24]\n\t"
        ".rept 63\n\t"                    /* EV__RK_MAXQ - 1 */
        EV__RK4_GROUP("smlad", ", r4", ", r5", ", r6", ", r7")
        ".endr\n"
        "9:\n\t"
        "ldm sp, {r0, r3, r8-r11}\n\t"    /* xq, m, w_adv, ys, ys2, ys3 */
        "add r1, r1, r8\n\t"
        "smmulr r4, r4, r3\n\t"
        "ssat r4, #8, r4\n\t"
        "smmulr r5, r5, r3\n\t"
        "ssat r5, #8, r5\n\t"
        "smmulr r6, r6, r3\n\t"
        "ssat r6, #8, r6\n\t"
        "smmulr r7, r7, r3\n\t"
        "ssat r7, #8, r7\n\t"
        "strb r4, [r2]\n\t"
        "strb r5, [r2, r9]\n\t"
        "strb r6, [r2, r10]\n\t"
        "strb r7, [r2, r11]\n\t"
        "add r2, r2, #1\n\t"
        "cmp r2, lr\n\t"
        "bne 1b\n\t"
        "add sp, sp, #32\n\t"
        "pop {r4-r11, pc}\n\t"
        EV__FN_END("ev__rk4"));
#undef EV__RK4_GROUP

/* The partial-sum variants: store the accumulators back into b[r], on to the next chunk. */
#define EV__RSP_TAIL(NAME)                                                                     \
    "ldr r3, [sp, #68]\n\t"                                                                    \
    "add r1, r1, r3\n\t"              /* the next channel's chunk */                           \
    "adds lr, lr, #1\n\t"                                                                      \
    "bne 1b\n\t"                                                                               \
    "add sp, sp, #76\n\t"                                                                      \
    "pop {r4-r11, pc}\n\t"                                                                     \
    EV__FN_END(NAME)
__asm__(EV__RS_HEAD("ev__rs4p")
        EV__RS4_MACS
        "ldm sp, {r8-r11}\n\t"
        "str r4, [r8, lr, lsl #2]\n\t"
        "str r5, [r9, lr, lsl #2]\n\t"
        "str r6, [r10, lr, lsl #2]\n\t"
        "str r7, [r11, lr, lsl #2]\n\t"
        EV__RSP_TAIL("ev__rs4p"));
__asm__(EV__RS_HEAD("ev__rs5p")
        EV__RS5_MACS
        "ldm sp, {r3, r9-r12}\n\t"
        "str r4, [r3, lr, lsl #2]\n\t"
        "str r5, [r9, lr, lsl #2]\n\t"
        "str r6, [r10, lr, lsl #2]\n\t"
        "str r7, [r11, lr, lsl #2]\n\t"
        "str r8, [r12, lr, lsl #2]\n\t"
        EV__RSP_TAIL("ev__rs5p"));
#undef EV__RSP_TAIL
#undef EV__FN_BEGIN
#undef EV__FN_END

#undef EV__RS_HEAD
#undef EV__RS_TAIL
#undef EV__RSQ
#undef EV__RSL
#undef EV__RS4_GROUP
#undef EV__RS4_MACS
#undef EV__RS5_MACS
#undef EV__RS5_GROUP

/* Widen r rows group by group in ev__rs<r>'s order: per group the low halves of rows 0..r-1,
 * then their high halves. */
static void ev__widen_r(const int8_t *x, int xs, int r, int kq, uint32_t *dst)
{
    int g, i;
    for (g = 0; g < kq; g++, dst += 2 * r) {
        for (i = 0; i < r; i++) {
            uint32_t u = ev__ld32(x + (long)i * xs + 4 * g);
            dst[i] = EV__LO(u);
            dst[r + i] = EV__HI(u);
        }
    }
}

/* How many blocks of 4 and 5 rows path S splits rows into (as many rows as they can take:
 * 17 = 5 + 4 + 4 + 4), *n5 of them of 5 rows, which go first. */
static int ev__row_blocks(int rows, int *n5)
{
    int f = rows & 3;
    while (5 * f > rows)
        f--;
    *n5 = f;
    return f + (rows - 5 * f) / 4;
}

/* Path S on the first rows of the call: blocks of 5 rows, then of 4, as many rows as they can
 * take; returns how many rows it did (the caller does the other 0..3). Needs a bias, in % 16 == 0,
 * w_stride == in, per-channel mult/shift and 10 kq words of buf. */
static int ev__stream(const struct ev__mm *p, int rows, int out, uint32_t *xb)
{
    const int kq = p->kq, xs = p->x_stride, bs = p->bs, ys = p->ys;
    int n5, nb = ev__row_blocks(rows, &n5), n = 0;
    while (nb--) {
        const int r = n5-- > 0 ? 5 : 4;
        const int8_t *const x = p->x + (long)n * xs;
        struct ev__rsa a;
        int i, o = 0;
        if (r == 4)
            ev__widen4(x, xs, kq, xb);
        else
            ev__widen_r(x, xs, 5, kq, xb);
        for (i = 0; i < 5; i++) {
            const int ri = i < r ? i : r - 1;
            a.b[i] = p->bias + (long)(n + ri) * bs + out;
            a.y[i] = p->y + (long)(n + ri) * ys + out;
        }
        a.m = p->mult + out;
        a.s = p->shift + out;
        a.lut = p->lut ? p->lut + 128 : 0;
        a.xq = xb;
        a.xe = xb + 2L * r * kq;
        a.w_adv = 0;   /* unused here; the routines' frame copies it */
        for (;;) {
            int left;
            a.w = p->w + (long)o * p->w_stride;
            a.n = out - o;
            left = r == 4 ? ev__rs4(&a) : ev__rs5(&a);
            if (!left)
                break;
            o = out + left;   /* channel o has shift <= 32: in C, then on after it */
            ev__gemm_scalar(x, xs, r, p->k4, 1, p->w + (long)o * p->w_stride, p->w_stride,
                            p->bias + (long)n * bs + o, bs, p->mult + o, p->shift + o, 1,
                            p->lut, p->y + (long)n * ys + o, ys);
            if (++o == out)
                break;
        }
        n += r;
    }
    return n;
}

/* Path S for inputs too wide for a widened 5-row block in buf (in > 304 at the default
 * EV_LINEAR_BUF): per block of 4-5 rows and per EV__CH_BLOCK channels, int32 partial sums in the
 * first part of buf start at the bias, each chunk of the inputs is widened into the rest and
 * added in by ev__rs4p / ev__rs5p (the same MAC loop as path S), then every sum is requantised
 * once in C, which is negligible next to its `in` MACs. The rows are widened once per channel
 * block (about 2% more instructions at 768 inputs and 192 channels). Returns the rows it did. */
#define EV__CH_BLOCK 48
/* groups of 4 inputs per chunk: what is left of buf after the sums, for 5 rows, a multiple of 4
 * (chunks stay multiples of 16 inputs, as the MAC loop takes 16 per iteration) */
#define EV__CHUNK_Q (((2 * EV_LINEAR_BUF - 5 * EV__CH_BLOCK) / 10) & ~3)
static int ev__stream_chunked(const struct ev__mm *p, int rows, int out, uint32_t *buf, int kqc)
{
    const int kq = p->kq, xs = p->x_stride, bs = p->bs, ys = p->ys, in = 4 * kq;
    int32_t *const acc = (int32_t *)buf;
    uint32_t *const xb = buf + 5 * EV__CH_BLOCK;
    int n5, nb = ev__row_blocks(rows, &n5), n = 0;
    while (nb--) {
        const int r = n5-- > 0 ? 5 : 4;
        const int8_t *const x = p->x + (long)n * xs;
        int o0, c0, i, j;
        for (o0 = 0; o0 < out; o0 += EV__CH_BLOCK) {
            const int ob = out - o0 < EV__CH_BLOCK ? out - o0 : EV__CH_BLOCK;
            struct ev__rsa a;
            memset(&a, 0, sizeof a);   /* y, m, s, lut: unused by the partial-sum routines */
            for (i = 0; i < 5; i++) {
                const int ri = i < r ? i : r - 1;   /* rs4p never touches row 4 */
                a.b[i] = acc + ri * EV__CH_BLOCK + ob;
            }
            for (i = 0; i < r; i++)
                for (j = 0; j < ob; j++)
                    acc[i * EV__CH_BLOCK + j] = p->bias[(long)(n + i) * bs + o0 + j];
            a.xq = xb;
            a.n = ob;
            for (c0 = 0; c0 < kq; c0 += kqc) {
                const int cq = kq - c0 < kqc ? kq - c0 : kqc;
                if (r == 4)
                    ev__widen4(x + 4 * c0, xs, cq, xb);
                else
                    ev__widen_r(x + 4 * c0, xs, 5, cq, xb);
                a.xe = xb + 2L * r * cq;
                a.w = p->w + (long)o0 * in + 4 * c0;
                a.w_adv = in - 4 * cq;
                if (r == 4)
                    ev__rs4p(&a);
                else
                    ev__rs5p(&a);
            }
            for (i = 0; i < r; i++)
                for (j = 0; j < ob; j++)
                    p->y[(long)(n + i) * ys + o0 + j] = ev__finish(acc[i * EV__CH_BLOCK + j], p->mult[o0 + j],
                                                                   p->shift[o0 + j], p->lut);
        }
        n += r;
    }
    return n;
}

/* Path B: rows in pairs, each pair widened once into xb (4 kq words), weights on the fly. */
static void ev__rows_a(const struct ev__mm *p, int rows, int out, uint32_t *xb)
{
    EV__LOCALS(p);
    int n, o;
    for (n = 0; n < rows; n += 2) {
        const int two = n + 1 < rows;   /* odd row count (rows == 1 too): the last row alone */
        const int8_t *const xr = p->x + (long)n * xs;
        const int32_t *const bp = p->bias ? p->bias + (long)n * bs : 0;
        int8_t *const yr = p->y + (long)n * ys;
        if (two)
            ev__widen2(xr, xr + xs, kq, xb);
        else
            ev__widen1(xr, kq, xb);
        for (o = 0; o < out; o += 2) {
            EV__CHANNELS(o, out);
            uint32_t acc[4];
            ev__acc_init(bp, bs, o, o2, two, acc);
            if (two)
                ev__t22_a(xb, kq, w0, w1, acc);
            else
                ev__t12_a(xb, kq, w0, w1, acc);
            if (kt)
                ev__tails(xr + k4, two ? xr + xs + k4 : xr, w0 + k4, w1 + k4, kt, two, acc);
            ev__put(yr + o, acc[0], acc[1], &q0, &q1, last, lut);
            if (two)
                ev__put(yr + ys + o, acc[2], acc[3], &q0, &q1, last, lut);
        }
    }
}

static void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
                     const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
                     const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
                     int8_t *y, int y_stride)
{
    /* 8-byte aligned for LDRD/STRD: EV_LINEAR_BUF units of 2 words */
    uint32_t buf[2 * EV_LINEAR_BUF] __attribute__((aligned(8)));
    struct ev__mm p;
    int kq = in >> 2;   /* whole groups of 4 inputs */
    int n, o;

    if (rows <= 0 || out <= 0)
        return;
    if (kq < 2) {
        ev__gemm_scalar(x, x_stride, rows, in, out, w, w_stride, bias, bias_row_stride, mult,
                        shift, qstep, lut, y, y_stride);
        return;
    }
    p.x = x; p.w = w; p.lut = lut; p.bias = bias; p.mult = mult; p.shift = shift; p.y = y;
    p.x_stride = x_stride; p.w_stride = w_stride; p.bs = bias_row_stride; p.ys = y_stride;
    p.qstep = qstep; p.k4 = in & ~3; p.kt = in & 3; p.kq = kq;

    if (rows >= 4 && bias && qstep == 1 && w_stride == in && (in & 15) == 0
        && (5 * kq <= EV_LINEAR_BUF || EV__CHUNK_Q >= 4)) {
        /* path S (over input chunks when the rows are too wide), then the 0..3 rows it leaves
         * through A/B */
        n = 5 * kq <= EV_LINEAR_BUF ? ev__stream(&p, rows, out, buf)
                                    : ev__stream_chunked(&p, rows, out, buf, EV__CHUNK_Q);
        if (n == rows)
            return;
        rows -= n;
        p.x = x += (long)n * x_stride;
        p.bias = bias += (long)n * bias_row_stride;
        p.y = y += (long)n * y_stride;
    }
    if (rows >= 4 && kq > 0 && EV_LINEAR_BUF / kq >= 6) {
        /* path A: in 8-byte units the weight pair takes 2 kq, each x row kq */
        int rb = (int)((EV_LINEAR_BUF - 2L * kq) / kq);
        if (rb >= rows) {
            rb = rows;   /* one block; an odd last row is handled inside it */
        } else {
            /* even blocks of about equal size: each block widens every weight pair once more,
             * so a short last block would pay that for few rows */
            int nblk, cap = rb & ~1;
            nblk = (rows + cap - 1) / cap;
            rb = (rows + nblk - 1) / nblk;
            rb = (rb + 1) & ~1;
            if (rb > cap)
                rb = cap;
        }
        for (n = 0; n < rows; n += rb)
            ev__block_ab(&p, n, rows - n < rb ? rows - n : rb, out, buf, buf + 2L * rb * kq);
        return;
    }
    if (2L * kq <= EV_LINEAR_BUF) {
        ev__rows_a(&p, rows, out, buf);   /* path B: 4 kq words */
        return;
    }
    for (n = 0; n < rows; n++) {          /* path C */
        const int8_t *xr = x + (long)n * x_stride;
        for (o = 0; o < out; o++) {
            const int8_t *wr = w + (long)o * w_stride;
            uint32_t a = bias ? (uint32_t)bias[(long)n * bias_row_stride + o] : 0u;
            a = ev__dot_fly(xr, wr, kq, a);
            a = ev__dot_tail(xr + p.k4, wr + p.k4, p.kt, a);
            y[(long)n * y_stride + o] = ev__finish((int32_t)a, mult[o * qstep],
                                                   shift[o * qstep], lut);
        }
    }
}

/* q.k for one query row: q is widened once and reused for every key, keys are widened on the fly
 * two at a time (ev__gemm's path B for one row, with the per-call work hoisted: one requant for
 * all keys, no bias, no LUT). 8 <= dh <= 256; kept out of line so that its buffer and
 * ev__gemm's are never on the stack together. */
static __attribute__((noinline)) void
ev__scores_dsp(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh, int32_t m,
               int32_t s, int8_t *scores)
{
    uint32_t qb[2 * 64] __attribute__((aligned(8)));
    const int kq = dh >> 2, k4 = dh & ~3, kt = dh & 3;
    struct ev__q rq;
    int j;
    ev__qinit(&rq, m, s);
    ev__widen1(q, kq, qb);
    for (j = 0; j < n_keys; j += 2) {
        /* an odd last key is paired with itself and its duplicate dropped */
        const int8_t *k0 = k + (long)j * k_stride, *k1 = j + 1 < n_keys ? k0 + k_stride : k0;
        uint32_t acc[2] = {0, 0};
        ev__t12_a(qb, kq, k0, k1, acc);
        if (kt) {
            acc[0] = ev__dot_tail(q + k4, k0 + k4, kt, acc[0]);
            acc[1] = ev__dot_tail(q + k4, k1 + k4, kt, acc[1]);
        }
        scores[j] = ev__rq(&rq, acc[0], 0);
        if (j + 1 < n_keys)
            scores[j + 1] = ev__rq(&rq, acc[1], 0);
    }
}

void ev_attn_scores_row(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                        int32_t m, int32_t s, int8_t *scores)
{
    int8_t s8 = (int8_t)s;
    if (dh < 8)
        ev__gemm_scalar(q, dh, 1, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, n_keys);
    else if (dh > 256)
        ev__scores_gemm(q, k, k_stride, n_keys, dh, m, s, scores);
    else
        ev__scores_dsp(q, k, k_stride, n_keys, dh, m, s, scores);
}

/* p.v for one query row: the reduction runs over keys j while v_j[d], v_j[d+1].. sit side by side
 * in memory, so SMLAD's pairing (two adjacent k of one output) would need the v words transposed.
 * Instead one v word gives 4 outputs: SXTB16 / SXTB16 ROR 8 widen it to (d, d+2) and (d+1, d+3),
 * and SMLABB / SMLATB multiply each half by p_j. 8 outputs per pass keep 8 accumulators in
 * registers; per key: 1 LDRSB (p_j), 2 LDR, 4 SXTB16, 8 MACs. */
void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out)
{
    struct ev__q rq;
    int d = 0, j;
    ev__qinit(&rq, m, s);
    for (; d + 8 <= dh; d += 8) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        const int8_t *vj = v + d;
        for (j = 0; j < n_keys; j++, vj += v_stride) {
            int32_t pj = p[j];
            uint32_t u = ev__ld32(vj), t = ev__ld32(vj + 4);
            int32_t ul = (int32_t)EV__LO(u), uh = (int32_t)EV__HI(u);
            int32_t tl = (int32_t)EV__LO(t), th = (int32_t)EV__HI(t);
            a0 = __smlabb(ul, pj, a0);
            a2 = __smlatb(ul, pj, a2);
            a1 = __smlabb(uh, pj, a1);
            a3 = __smlatb(uh, pj, a3);
            a4 = __smlabb(tl, pj, a4);
            a6 = __smlatb(tl, pj, a6);
            a5 = __smlabb(th, pj, a5);
            a7 = __smlatb(th, pj, a7);
        }
        out[d + 0] = ev__rq(&rq, (uint32_t)a0, 0);
        out[d + 1] = ev__rq(&rq, (uint32_t)a1, 0);
        out[d + 2] = ev__rq(&rq, (uint32_t)a2, 0);
        out[d + 3] = ev__rq(&rq, (uint32_t)a3, 0);
        out[d + 4] = ev__rq(&rq, (uint32_t)a4, 0);
        out[d + 5] = ev__rq(&rq, (uint32_t)a5, 0);
        out[d + 6] = ev__rq(&rq, (uint32_t)a6, 0);
        out[d + 7] = ev__rq(&rq, (uint32_t)a7, 0);
    }
    for (; d + 4 <= dh; d += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *vj = v + d;
        for (j = 0; j < n_keys; j++, vj += v_stride) {
            int32_t pj = p[j];
            uint32_t u = ev__ld32(vj);
            int32_t ul = (int32_t)EV__LO(u), uh = (int32_t)EV__HI(u);
            a0 = __smlabb(ul, pj, a0);
            a2 = __smlatb(ul, pj, a2);
            a1 = __smlabb(uh, pj, a1);
            a3 = __smlatb(uh, pj, a3);
        }
        out[d + 0] = ev__rq(&rq, (uint32_t)a0, 0);
        out[d + 1] = ev__rq(&rq, (uint32_t)a1, 0);
        out[d + 2] = ev__rq(&rq, (uint32_t)a2, 0);
        out[d + 3] = ev__rq(&rq, (uint32_t)a3, 0);
    }
    for (; d < dh; d++) {
        int32_t a = 0;
        const int8_t *vj = v + d;
        for (j = 0; j < n_keys; j++, vj += v_stride)
            a = __smlabb(*vj, p[j], a);
        out[d] = ev__rq(&rq, (uint32_t)a, 0);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Several query rows per pass over K or V (the fused attention runs a chain's row block, up to 4
 * rows, at a time). Both products become ev__t42's 4 rows x 2 channels tile, so each widened K/V
 * word is reused by the four query rows instead of one:
 *  q.k: x = the 4 query rows, widened once per call (ev__widen4); channels = keys, two at a time,
 *       each pair widened into wb once (ev__widen2) and used by all four rows.
 *  p.v: x = the 4 probability rows, widened once per call with keys as the inputs (zero-padded to
 *       a multiple of 4 keys); channels = head dims. The reduction runs over keys while v_j[d]..
 *       sit side by side, so 4 key rows x 4 dims are transposed with PKHBT/PKHTB + SXTB16 into
 *       two channel pairs (dims d, d+1 and d+2, d+3) in ev__t42's weight order, zero rows for the
 *       padding keys. Padding adds 0 * 0 products: the sums, hence the bits, are unchanged.
 * Rows beyond the last quad, odd last keys, dh not a multiple of 4 and sizes beyond the stack
 * buffers go through the single-row kernels (same sums). */
#define EV__ATT_KQ 32   /* at most 128 dims (q.k) or 128 keys (p.v) per quad: 1 KiB + 0.5/1 KiB */

/* 4 rows x 2 channels through ev__t42, requantised with one (m, s) in C (shifts <= 32, or only
 * one real channel), stored at y + r * ys and, when two, y + r * ys + 1. */
static void ev__quad_out(const uint32_t *xq, const uint32_t *wb, int kq, const struct ev__q *q,
                         int8_t *y, int ys, int two)
{
    static const uint32_t zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t acc[8];
    int r;
    ev__t42(xq, wb, kq, zero, acc);
    for (r = 0; r < 4; r++) {
        y[(long)r * ys] = ev__rq(q, acc[2 * r], 0);
        if (two)
            y[(long)r * ys + 1] = ev__rq(q, acc[2 * r + 1], 0);
    }
}

/* ev__t42r's operands for two channels that share (m, s); a->y is set per call. */
static inline void ev__quad_args(struct ev__t42q *a, const struct ev__q *q, int ys)
{
    static const uint32_t zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    a->init = zero; a->y = 0; a->ys = ys; a->lut = 0;
    a->m0 = a->m1 = q->m; a->r0 = a->r1 = q->r; a->t0 = a->t1 = q->t;
}

static __attribute__((noinline)) void
ev__scores_quad(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys, int dh,
                const struct ev__q *rq, int8_t *scores, int s_stride)
{
    uint32_t xq[8 * EV__ATT_KQ] __attribute__((aligned(8)));
    uint32_t wb[4 * EV__ATT_KQ] __attribute__((aligned(8)));
    const int kq = dh >> 2, pairs = n_keys >> 1;
    struct ev__t42q a;
    int j;
    ev__quad_args(&a, rq, s_stride);
    ev__widen4(q, q_stride, kq, xq);
    for (j = 0; j < 2 * pairs; j += 2) {
        const int8_t *k0 = k + (long)j * k_stride;
        ev__widen2(k0, k0 + k_stride, kq, wb);
        if (rq->t) {
            a.y = scores + j;
            ev__t42r(xq, wb, kq, &a);
        } else {
            ev__quad_out(xq, wb, kq, rq, scores + j, s_stride, 1);
        }
    }
    if (n_keys & 1) {   /* the odd last key, paired with itself; the duplicate is dropped */
        const int8_t *k0 = k + (long)j * k_stride;
        ev__widen2(k0, k0, kq, wb);
        ev__quad_out(xq, wb, kq, rq, scores + j, s_stride, 0);
    }
}

static void ev__scores_rk4(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys,
                           int dh, int32_t m, int8_t *scores, int s_stride);

void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride)
{
    int r = 0;
    if (s == 32 && dh >= 4 && dh <= 4 * EV__RK_MAXQ && n_keys > 0) {
        for (; r + 4 <= rows; r += 4)
            ev__scores_rk4(q + (long)r * q_stride, q_stride, k, k_stride, n_keys, dh, m,
                           scores + (long)r * s_stride, s_stride);
    } else if (dh >= 8 && (dh & 3) == 0 && dh <= 4 * EV__ATT_KQ && n_keys > 0) {
        struct ev__q rq;
        ev__qinit(&rq, m, s);
        for (; r + 4 <= rows; r += 4)
            ev__scores_quad(q + (long)r * q_stride, q_stride, k, k_stride, n_keys, dh, &rq,
                            scores + (long)r * s_stride, s_stride);
    }
    for (; r < rows; r++)
        ev_attn_scores_row(q + (long)r * q_stride, k, k_stride, n_keys, dh, m, s,
                           scores + (long)r * s_stride);
}

/* PKHBT / PKHTB: GCC 12 does not form them from the C expressions (5-6 instructions instead). */
static inline uint32_t ev__pkhbt16(uint32_t a, uint32_t b)   /* low half of a, low half of b */
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t ev__pkhtb16(uint32_t a, uint32_t b)   /* high half of a, high half of b */
{
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Widen 4 rows of n values (n <= 4 kq) in ev__t42's x order, zero past n. */
static inline void ev__widen4_pad(const int8_t *a, int xs, int n, uint32_t *dst)
{
    const int full = n >> 2, rest = n & 3;
    ev__widen4(a, xs, full, dst);
    if (rest) {
        uint32_t u[4] = {0, 0, 0, 0};
        int r;
        dst += 8 * full;
        for (r = 0; r < 4; r++)
            memcpy(&u[r], a + (long)r * xs + 4 * full, (size_t)rest);
        dst[0] = EV__LO(u[0]); dst[1] = EV__LO(u[1]); dst[2] = EV__LO(u[2]); dst[3] = EV__LO(u[3]);
        dst[4] = EV__HI(u[0]); dst[5] = EV__HI(u[1]); dst[6] = EV__HI(u[2]); dst[7] = EV__HI(u[3]);
    }
}

/* 4 query rows through ev__rk4 (s == 32): the rows widened once, zero past dh; each key is read
 * as ceil(dh / 4) words, so up to 3 bytes past a key's dh are read and multiplied by those
 * zeros (the next key's or head's bytes: the sums, hence the bits, do not change). Also p.v over
 * the qkv split's V^T, with keys and dims swapped. Out of line: its 2 KiB buffer is never on the
 * stack together with ev_linear_s8's. */
static __attribute__((noinline)) void
ev__scores_rk4(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys, int dh,
               int32_t m, int8_t *scores, int s_stride)
{
    uint32_t xq[8 * EV__RK_MAXQ] __attribute__((aligned(8)));
    struct ev__rka a;
    a.kq = (dh + 3) >> 2;
    ev__widen4_pad(q, q_stride, dh, xq);
    a.xq = xq;
    a.m = m;
    a.w_adv = k_stride - 4 * a.kq;
    a.ys = s_stride;
    a.ys2 = 2 * s_stride;
    a.ys3 = 3 * s_stride;
    a.w = k;
    a.y = scores;
    a.n = n_keys;
    ev__rk4(&a);
}

/* One group of 4 key rows (words ua, ub, uc, ue: dims d..d+3 of keys 4g..4g+3) into wa, wb. */
#define EV__VT_GROUP(ua, ub, uc, ue, wa, wb)                                                   \
    do {                                                                                       \
        uint32_t t_ = ev__pkhbt16(ua, uc), t2_ = ev__pkhbt16(ub, ue);   /* a0 a1 c0 c1 .. */   \
        EV__STRD(EV__LO(t_), EV__HI(t_), wa);                                                  \
        EV__STRD(EV__LO(t2_), EV__HI(t2_), wa);                                                \
        t_ = ev__pkhtb16(ua, uc);                                       /* a2 a3 c2 c3 */      \
        t2_ = ev__pkhtb16(ub, ue);                                                             \
        EV__STRD(EV__LO(t_), EV__HI(t_), wb);                                                  \
        EV__STRD(EV__LO(t2_), EV__HI(t2_), wb);                                                \
    } while (0)

/* Dims d..d+3 of the n key rows at v (stride vs), transposed into two channel pairs in ev__t42's
 * weight order: wa (dims d, d+1), wb (dims d+2, d+3); groups of 4 keys, keys >= n zero. Per
 * group 4 LDR + 4 PKH + 8 SXTB16 + 4 STRD. */
static inline void ev__vt4(const int8_t *v, int vs, int n, uint32_t *wa, uint32_t *wb)
{
    const uint32_t *const end = wa + 4 * (n >> 2);
    const int rest = n & 3;
    while (wa != end) {
        uint32_t ua = ev__ld32(v), ub = ev__ld32(v + vs), uc = ev__ld32(v + 2L * vs);
        uint32_t ue = ev__ld32(v + 3L * vs);
        v += 4L * vs;
        EV__VT_GROUP(ua, ub, uc, ue, wa, wb);
    }
    if (rest) {   /* the last, partial group */
        uint32_t ua = ev__ld32(v), ub = rest > 1 ? ev__ld32(v + vs) : 0u;
        uint32_t uc = rest > 2 ? ev__ld32(v + 2L * vs) : 0u, ue = 0u;
        EV__VT_GROUP(ua, ub, uc, ue, wa, wb);
    }
}

static __attribute__((noinline)) void
ev__av_quad(const int8_t *p, int p_stride, const int8_t *v, int v_stride, int n_keys, int dh,
            const struct ev__q *rq, int8_t *out, int out_stride)
{
    uint32_t xq[8 * EV__ATT_KQ] __attribute__((aligned(8)));
    uint32_t wa[4 * EV__ATT_KQ] __attribute__((aligned(8)));
    uint32_t wb[4 * EV__ATT_KQ] __attribute__((aligned(8)));
    const int kq = (n_keys + 3) >> 2;
    int d;
    ev__widen4_pad(p, p_stride, n_keys, xq);
    struct ev__t42q a;
    ev__quad_args(&a, rq, out_stride);
    for (d = 0; d < dh; d += 4) {
        ev__vt4(v + d, v_stride, n_keys, wa, wb);
        if (rq->t) {
            a.y = out + d;
            ev__t42r(xq, wa, kq, &a);
            a.y = out + d + 2;
            ev__t42r(xq, wb, kq, &a);
        } else {
            ev__quad_out(xq, wa, kq, rq, out + d, out_stride, 1);
            ev__quad_out(xq, wb, kq, rq, out + d + 2, out_stride, 1);
        }
    }
}

void ev_attn_av_rows(const int8_t *p, int p_stride, int rows, const int8_t *v, int v_stride,
                     int n_keys, int dh, int32_t m, int32_t s, int8_t *out, int out_stride)
{
    int r = 0;
    if (dh >= 4 && (dh & 3) == 0 && n_keys >= 4 && n_keys <= 4 * EV__ATT_KQ) {
        struct ev__q rq;
        ev__qinit(&rq, m, s);
        for (; r + 4 <= rows; r += 4)
            ev__av_quad(p + (long)r * p_stride, p_stride, v, v_stride, n_keys, dh, &rq,
                        out + (long)r * out_stride, out_stride);
    }
    for (; r < rows; r++)
        ev_attn_av_row(p + (long)r * p_stride, v, v_stride, n_keys, dh, m, s,
                       out + (long)r * out_stride);
}

#endif /* EV_KERNELS_DSP */
