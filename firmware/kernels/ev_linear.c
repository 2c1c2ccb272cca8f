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

#else /* EV_KERNELS_DSP */

/* ------------------------------------------------------------------------------------------ */
/* Cortex-M7 DSP path.
 *
 * SMLAD multiplies two pairs of signed 16-bit halves and adds both products: 2 MACs in one
 * instruction. An int8 word is widened with SXTB16 (bytes 0 and 2) and SXTB16 ROR 8 (bytes 1
 * and 3); pairing widened x and w words the same way,
 *   smlad(lo(x), lo(w)) + smlad(hi(x), hi(w)) = x0 w0 + x1 w1 + x2 w2 + x3 w3.
 * Widening costs one instruction per two values, as much as the SMLAD it feeds, so widened words
 * must be reused. Three ways, picked by size (all give the same sums, so the same bits):
 *  A. rows >= 4 and in <= 259: a block of x rows is widened once into a stack buffer and
 *     reused by every output channel; each pair of weight rows is widened once per block into the
 *     same buffer and reused by every pair of x rows. The 2 rows x 2 channels inner loop is then
 *     4 LDRD + 8 SMLAD per 16 MACs, with no widening left in it.
 *  B. 1..3 rows, or rows too wide for A: x rows are widened once (reused by every channel), the
 *     weights on the fly (each widened weight word serves both rows of a pair).
 *  C. rows too wide for B: both widened on the fly, one output at a time.
 * A widened group of 4 inputs is a pair of words (bytes 0/2, bytes 1/3); two rows (or two
 * channels) are interleaved half by half, (a lo, b lo, a hi, b hi), so one LDRD fetches the same
 * half of both and one pointer walks both. In path A the first row pair of a block widens the
 * weight pair as it goes and stores it for the others. An odd channel count pairs the last
 * channel with itself (the duplicate output is dropped); inputs whose length is not a multiple of
 * 4 finish with a scalar loop over the last 1..3 values; inputs shorter than 8 skip all this.
 *
 * Instruction counts under QEMU (bench/bench_kernels.py, GCC 12 -O2): the path A inner loop runs
 * at 1.23 MACs per instruction; with widening, requantisation and loop overheads whole calls run
 * at 0.83 (17x64->192, A), 0.87 (17x192->576, A), 0.82 (17x768->192, B) and 0.46 (1x128->64, B)
 * MACs per instruction, against 0.18-0.20 for the portable path. */

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

/* Requantisation with the per-channel work done once per channel: for s > 32 (the usual case)
 * ev_requant's fast form is SMULL + ADD + ASR + SSAT; smaller shifts take ev_requant itself. */
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
        v = (int32_t)(((int64_t)(int32_t)acc * q->m) >> 32);
        v = __ssat((v + q->r) >> q->t, 8);
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
    int32_t v = (int32_t)(((int64_t)(int32_t)acc * m) >> 32);
    v = __ssat((v + r) >> t, 8);
    return lut ? lut[v + 128] : (int8_t)v;
}

/* Path A's common case, kept apart so that GCC has registers to spare: all row pairs of a block
 * against one pair of real channels (o, o + 1) with a bias, no in % 4 tail and shifts > 32. */
static inline __attribute__((always_inline)) void
ev__pairs_fast(const uint32_t *xp, uint32_t *wb, const int8_t *w0, const int8_t *w1, int kq,
               int np, const int32_t *bp, int bs, int8_t *yp, int ys, const struct ev__q *q0,
               const struct ev__q *q1, const int8_t *lut)
{
    const int32_t m0 = q0->m, r0 = q0->r, t0 = q0->t, m1 = q1->m, r1 = q1->r, t1 = q1->t;
    int i;
    for (i = 0; i < np; i++) {
        uint32_t acc[4];
        acc[0] = (uint32_t)bp[0];
        acc[1] = (uint32_t)bp[1];
        acc[2] = (uint32_t)bp[bs];
        acc[3] = (uint32_t)bp[bs + 1];
        if (i == 0)
            ev__t22_w(xp, w0, w1, kq, wb, acc);   /* also fills wb */
        else
            ev__t22_ab(xp, wb, kq, acc);
        yp[0] = ev__rqf(acc[0], m0, r0, t0, lut);
        yp[1] = ev__rqf(acc[1], m1, r1, t1, lut);
        yp[ys] = ev__rqf(acc[2], m0, r0, t0, lut);
        yp[ys + 1] = ev__rqf(acc[3], m1, r1, t1, lut);
        xp += 4 * kq;
        yp += 2 * ys;
        bp += 2 * bs;
    }
}

/* Path A on rows [n0, n0 + nb): the block's x rows in xb (4 kq words per row pair, then 2 kq for
 * an odd last row), the current weight pair in wb (4 kq words). */
static void ev__block_ab(const struct ev__mm *p, int n0, int nb, int out, uint32_t *xb,
                         uint32_t *wb)
{
    EV__LOCALS(p);
    const int np = nb >> 1;
    const int8_t *const x = p->x + (long)n0 * xs;
    const int32_t *const bias = p->bias ? p->bias + (long)n0 * bs : 0;
    int8_t *const y = p->y + (long)n0 * ys;
    uint32_t *const xodd = xb + (long)np * 4 * kq;
    int i, o;

    for (i = 0; i < np; i++)
        ev__widen2(x + (long)2 * i * xs, x + (long)(2 * i + 1) * xs, kq, xb + (long)i * 4 * kq);
    if (nb & 1)
        ev__widen1(x + (long)(nb - 1) * xs, kq, xodd);

    for (o = 0; o < out; o += 2) {
        EV__CHANNELS(o, out);
        const uint32_t *xp = xb;
        const int8_t *xr = x;
        const int32_t *bp = bias;
        int8_t *yp = y + o;
        if (np == 0)
            ev__widen2(w0, w1, kq, wb);   /* otherwise the first row pair widens them */
        if (bp && !kt && !last && q0.t && q1.t) {
            /* the common case; lut == 0 compiles to its own copy without the table lookup */
            if (lut)
                ev__pairs_fast(xb, wb, w0, w1, kq, np, bp + o, bs, yp, ys, &q0, &q1, lut);
            else
                ev__pairs_fast(xb, wb, w0, w1, kq, np, bp + o, bs, yp, ys, &q0, &q1, 0);
            i = np;
            xp += (long)np * 4 * kq;
            xr += (long)np * 2 * xs;
            yp += (long)np * 2 * ys;
            bp += (long)np * 2 * bs;
        } else {
            i = 0;
        }
        for (; i < np; i++) {
            uint32_t acc[4];
            ev__acc_init(bp, bs, o, o2, 1, acc);
            if (i == 0)
                ev__t22_w(xp, w0, w1, kq, wb, acc);   /* also fills wb */
            else
                ev__t22_ab(xp, wb, kq, acc);
            if (kt)
                ev__tails(xr + k4, xr + xs + k4, w0 + k4, w1 + k4, kt, 1, acc);
            ev__put(yp, acc[0], acc[1], &q0, &q1, last, lut);
            ev__put(yp + ys, acc[2], acc[3], &q0, &q1, last, lut);
            xp += 4 * kq;
            xr += 2 * xs;
            yp += 2 * ys;
            if (bp)
                bp += 2 * bs;
        }
        if (nb & 1) {
            uint32_t acc[4];
            ev__acc_init(bp, bs, o, o2, 0, acc);
            ev__t12_ab(xodd, wb, kq, acc);
            if (kt)
                ev__tails(xr + k4, xr, w0 + k4, w1 + k4, kt, 0, acc);
            ev__put(yp, acc[0], acc[1], &q0, &q1, last, lut);
        }
    }
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

#endif /* EV_KERNELS_DSP */
