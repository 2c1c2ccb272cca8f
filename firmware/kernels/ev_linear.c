/* Linear kernel: ev_linear_s8, y = requant(bias + x w^T) per output channel, then an optional LUT.
 *
 * An int32 dot product of int8 vectors per output followed by ev_requant. Sums are kept in
 * uint32_t on the portable path so that overflow wraps (as numpy's int32 matmul and the M7's SMLAD
 * do) instead of being undefined; with realistic sizes they never overflow anyway.
 *
 * Its core, ev__gemm, also serves the single-row q.k kernel (ev_attention.c) for the sizes that
 * kernel's own DSP code does not take. The helpers both files use are in ev_dsp.h; this file's
 * assembly routines (and ev__t42, which the attention kernels call too) in ev_linear_m7.S.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

/* Requantise one output, then apply the optional LUT. */
static inline int8_t ev__finish(int32_t acc, int32_t m, int32_t s, const int8_t *lut)
{
    int8_t v = ev_requant(acc, m, s);
    return lut ? lut[v + 128] : v;
}

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* Whether path S's routines take `in` inputs: whole groups of 4, at least 2 (the
 * shared-bias routines run the first group before the chain). With a table, ev__rs4s_lut (4-row
 * blocks, one bias) and ev__rs5_lut enter their chains at any group; ev__rs4_lut (4 rows, per-row
 * biases) loops over 4 groups a pass and needs a multiple of 16, so a table with per-row biases
 * at other widths does not take path S. */
static inline int ev__streams(int in, int bias_row_stride, const int8_t *lut)
{
    if (in < 8 || (in & 3))
        return 0;
    return (in & 15) == 0 || !lut || bias_row_stride == 0;
}
static int ev__block45(const int8_t *x, int xs, int r, int in, int out, const int8_t *w,
                       const int32_t *bias, int bs, const int32_t *mult, const int8_t *shift,
                       const int8_t *lut, int8_t *y, int ys);
#endif

void ev_linear_s8(const int8_t *x, int x_stride, int rows, int in, int out,
                  const int8_t *w, const int32_t *bias, int bias_row_stride,
                  const int32_t *mult, const int8_t *shift, const int8_t *lut,
                  int8_t *y, int y_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    /* the fused chains' row blocks: one block of path S, without ev__gemm's general set-up */
    if ((rows == 4 || rows == 5) && out > 0 && bias && ev__streams(in, bias_row_stride, lut)
        && ev__block45(x, x_stride, rows, in, out, w, bias, bias_row_stride, mult, shift, lut, y,
                       y_stride)) {
        EV_PART_LEAVE(pp);
        return;
    }
#endif
    ev__gemm(x, x_stride, rows, in, out, w, in, bias, bias_row_stride, mult, shift, 1, lut,
             y, y_stride);
    EV_PART_LEAVE(pp);
}

/* ------------------------------------------------------------------------------------------ */
/* Portable path, and the DSP path's scalar fallback. */

/* ev__gemm one output at a time (declared in ev_dsp.h: the attention kernels call it too). */
void ev__gemm_scalar(const int8_t *x, int x_stride, int rows, int in, int out,
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

#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* the MVE build's ev__gemm: ev_linear_mve.c */

/* ------------------------------------------------------------------------------------------ */
/* Cortex-M7 DSP path (SMLAD/SXTB16, see ev_dsp.h).
 *
 * Widened words must be reused. Four ways, picked by size (all give the same sums, so the same
 * bits):
 *  S. rows >= 4, in % 4 == 0, 8 <= in <= 304 and a bias (ev__streams): blocks of 4 and 5 x rows
 *     widened once, each channel's weights widened in registers as they stream through an
 *     assembly routine that loops over all channels (ev__rs4 / ev__rs5, ev_linear_m7.S). 1..3
 *     rows it cannot place in blocks (6, 7 and 11 rows) continue with A/B.
 *  A. rows >= 4 and in <= 259 otherwise: a block of x rows is widened once into a stack buffer and
 *     reused by every output channel; each pair of weight rows is widened once per block into the
 *     same buffer and reused by every row of the block. Rows go four at a time through a 4 rows x
 *     2 channels tile in assembly (ev__t42: 3 LDRD + 8 SMLAD per 16 MACs, no widening left in
 *     it), the block's last 1..3 rows through the 2 x 2 and 1 x 2 tiles, whose first pass
 *     widens the weight pair as it goes.
 *  B. 1..3 rows, or rows too wide for A: x rows are widened once (reused by every channel), the
 *     weights on the fly (each widened weight word serves both rows of a pair). A lone row (1
 *     row, or the last of 3) with in % 16 == 0 and a bias goes 4 channels per pass through
 *     ev__r1c4 (ev__row1 below) first, and with in % 16 == 0 and a bias the row pairs 2 channels
 *     per pass through ev__rs2 (ev__rows2 below: 2 x 48 -> 192 0.48 -> 0.79 MACs/instruction,
 *     2 x 256 -> 48 0.75 -> 0.92), e.g. the last 2 rows of a chain of 4k + 2 tokens.
 *  C. rows too wide for B: both widened on the fly, one output at a time.
 * Rows and channels are widened and interleaved as ev_dsp.h describes. An odd channel count pairs
 * the last channel with itself (the duplicate output is dropped); inputs whose length is not a
 * multiple of 4 finish with a scalar loop over the last 1..3 values; inputs shorter than 8 skip
 * all this.
 *
 * Instruction counts under QEMU (bench/bench_kernels.py, GCC 12 -O2), whole calls: 1.045
 * (17x64->192, S), 1.041 (4x64->192, S), 1.159 (17x192->576, S), 1.154 (4x192->576, S), 0.864
 * (4x32->32, S) MACs per instruction; 1.078 (17x768->192, S over input chunks), 0.664
 * (1x128->64, B: ev__r1c4), 0.794 (2x48->192, B: ev__rs2), against 0.13-0.20 for the portable
 * path. Path A alone (a row quad with its requantisation,
 * ev__t42r: 1.20 at in = 64, 1.33 at in = 192) reached 0.96 / 0.92 on the 17-row calls and
 * 0.64 / 0.83 on the 4-row ones, which widen each weight pair for four rows only. */

/* Stack buffer of ev_linear_s8's DSP path, in 8-byte units (default 3 KiB of the 6 KiB stack the
 * targets reserve). A widened row of `in` values takes in/4 units. Path A needs 2 units per group
 * for the weight pair plus 1 per x row and group, for at least 4 rows; path B 2 per group.
 * Override with -DEV_LINEAR_BUF=N. */
#ifndef EV_LINEAR_BUF
#define EV_LINEAR_BUF 384
#endif

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
/* Path S (streamed weights): rows >= 4, in % 4 == 0, with a bias. A block of R = 4 or 5 rows is
 * widened once (ev__widen_r: per group the low halves of the R rows, then the high halves) and
 * every output channel then runs through one assembly routine, ev__rs4 / ev__rs5, which loops
 * over the channels itself: per channel R accumulators start at the bias, the channel's weights
 * are widened in registers as they stream past (LDR + 2 SXTB16 per group, shared by the R rows)
 * and the x block is fetched with LDM, four words per instruction:
 *   R = 4: LDR + 2 SXTB16 + 2 LDM + 8 SMLAD = 13 instructions per 16 MACs,
 *   R = 5: LDR + 2 SXTB16 + 2 LDM + LDRD + 10 SMLAD = 16 per 20,
 * then requantisation (SMMLA + ASR + SSAT, as ev__t42r) and the stores, about 33 instructions
 * per channel (the table lookup in variants of their own, ev__rs4_lut / ev__rs5_lut); each
 * channel's groups run as an unrolled chain of 16 (ev_linear_m7.S). Nothing is written back to
 * the stack buffer, so no weight widening pass, no remainder tiles and no per-pair C. Rows are split into blocks of 4 and 5 (17 = 4 + 4 + 4 + 5);
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
EV__ASM_OFFSET(ev__rsa, m, 40);
EV__ASM_OFFSET(ev__rsa, w_adv, 68);
EV__PRIVATE int ev__rs4(const struct ev__rsa *a);
EV__PRIVATE int ev__rs5(const struct ev__rsa *a);
/* the same with a table (a->lut != NULL): the table test stays out of the channel loop */
EV__PRIVATE int ev__rs4_lut(const struct ev__rsa *a);
EV__PRIVATE int ev__rs5_lut(const struct ev__rsa *a);
/* ev__rs4 where the 4 rows share one bias (b[0] == b[3], the fused chains' blocks): the bias is
 * loaded once per channel, into the first group's SMLADs (3 instructions less a channel) */
EV__PRIVATE int ev__rs4s(const struct ev__rsa *a);
EV__PRIVATE int ev__rs4s_lut(const struct ev__rsa *a);
/* ev__rs4s for at most 64 inputs (16 groups: 8 words each), one pass of its chain, no end test */
EV__PRIVATE int ev__rs4s1(const struct ev__rsa *a);
/* the routine for r rows (4 or 5), with or without a table */
static inline int ev__rs(const struct ev__rsa *a, int r)
{
    if (a->lut)
        return r == 5 ? ev__rs5_lut(a) : a->b[3] == a->b[0] ? ev__rs4s_lut(a) : ev__rs4_lut(a);
    if (r == 5)
        return ev__rs5(a);
    if (a->b[3] != a->b[0])
        return ev__rs4(a);
    return a->xe - a->xq <= 8 * 16 ? ev__rs4s1(a) : ev__rs4s(a);
}
/* Partial sums (inputs too wide for one widened block, see ev__stream_chunked): the same MAC loop
 * on one chunk of the inputs, the accumulators start at b[r][c] and are stored back there instead
 * of being requantised; channel c's chunk starts at w + c * (chunk + w_adv). */
EV__PRIVATE void ev__rs4p(const struct ev__rsa *a);
EV__PRIVATE void ev__rs5p(const struct ev__rsa *a);

/* ev__widen4 in assembly (ev_linear_m7.S) for kq a positive multiple of 2 */
EV__PRIVATE void ev__widen4a(const int8_t *x, int xs, int kq, uint32_t *dst);

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

/* Path S's block of r rows widened into dst: the assembly for 4 rows and an even kq */
static inline void ev__widen_block(const int8_t *x, int xs, int r, int kq, uint32_t *dst)
{
    if (r == 4 && !(kq & 1))
        ev__widen4a(x, xs, kq, dst);
    else
        ev__widen_r(x, xs, r, kq, dst);
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
 * take; returns how many rows it did (the caller does the other 0..3). Needs a bias, ev__streams(in),
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
        ev__widen_block(x, xs, r, kq, xb);
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
            left = ev__rs(&a, r);
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

/* ev_linear_s8 on one block of 4 or 5 rows (what the fused chains pass it: passes.CHAIN_BLOCK)
 * with ev__streams(in) and a bias (the caller checks those): ev__stream's work for that block, set up
 * directly (ev__gemm's general prologue, its operand struct and the row-block loops cost about 200
 * instructions a call, as much as a channel's MACs at 64 inputs). Same routines, same sums.
 * Returns 0 (nothing done) when the widened block does not fit the buffer (5 kq > EV_LINEAR_BUF). */
static __attribute__((noinline)) int
ev__block45(const int8_t *x, int xs, int r, int in, int out, const int8_t *w, const int32_t *bias,
            int bs, const int32_t *mult, const int8_t *shift, const int8_t *lut, int8_t *y, int ys)
{
    uint32_t xb[2 * EV_LINEAR_BUF] __attribute__((aligned(8)));
    const int kq = in >> 2;
    struct ev__rsa a;
    int o = 0;
    if (5 * kq > EV_LINEAR_BUF)
        return 0;
    ev__widen_block(x, xs, r, kq, xb);
    a.b[0] = bias + out;
    a.b[1] = a.b[0] + bs;
    a.b[2] = a.b[1] + bs;
    a.b[3] = a.b[2] + bs;
    a.b[4] = r == 5 ? a.b[3] + bs : a.b[3];
    a.y[0] = y + out;
    a.y[1] = a.y[0] + ys;
    a.y[2] = a.y[1] + ys;
    a.y[3] = a.y[2] + ys;
    a.y[4] = r == 5 ? a.y[3] + ys : a.y[3];
    a.m = mult + out;
    a.s = shift + out;
    a.lut = lut ? lut + 128 : 0;
    a.xq = xb;
    a.xe = xb + 2L * r * kq;
    a.w_adv = 0;
    for (;;) {
        int left;
        a.w = w + (long)o * in;
        a.n = out - o;
        left = ev__rs(&a, r);
        if (!left)
            break;
        o = out + left;   /* channel o has shift <= 32: in C, then on after it */
        ev__gemm_scalar(x, xs, r, in, 1, w + (long)o * in, in, bias + o, bs, mult + o, shift + o, 1,
                        lut, y + o, ys);
        if (++o == out)
            break;
    }
    return 1;
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
                memcpy(acc + i * EV__CH_BLOCK, p->bias + (long)(n + i) * bs + o0, 4u * (unsigned)ob);
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
            {
                /* the one requantisation pass that is separate from the MAC loop */
                /* per channel: ev__rq's SMMLA + ASR + SSAT for s > 32, set up once for the r rows */
                EV_PART_ENTER(pq, EV_PART_REQUANT);
                for (j = 0; j < ob; j++) {
                    struct ev__q q;
                    int8_t *yj = p->y + (long)n * ys + o0 + j;
                    ev__qinit(&q, p->mult[o0 + j], p->shift[o0 + j]);
                    for (i = 0; i < r; i++, yj += ys)
                        *yj = ev__rq(&q, (uint32_t)acc[i * EV__CH_BLOCK + j], p->lut);
                }
                EV_PART_LEAVE(pq);
            }
        }
        n += r;
    }
    return n;
}

/* Path S for the patch embedding (ev_patch_embed_s8), p % 4 == 0: the rows of a block are image
 * patches, widened straight from the image in ev__rs<r>'s order (each group of 4 inputs is 4
 * adjacent pixels of one patch row), so no patch matrix is gathered and the block's weights are
 * streamed once per 4-5 patches instead of once per patch. Returns the patches it did (the
 * caller does the 0..3 that do not fit in blocks); a channel with shift <= 32 is finished patch
 * by patch through `row` (c p p bytes), as ev__stream does it with contiguous rows. */
static void ev__widen_patches(const int8_t *img, int c, int h, int w, int p, int first, int r,
                              uint32_t *dst)
{
    const int8_t *base[5];
    const int per_row = w / p;
    int i, ci, ky, kx;
    for (i = 0; i < r; i++) {
        const int n = first + i;
        base[i] = img + (long)(n / per_row) * p * w + (long)(n % per_row) * p;
    }
    for (ci = 0; ci < c; ci++) {
        for (ky = 0; ky < p; ky++) {
            const long off = (long)ci * h * w + (long)ky * w;
            for (kx = 0; kx < p; kx += 4, dst += 2 * r) {
                for (i = 0; i < r; i++) {
                    uint32_t u = ev__ld32(base[i] + off + kx);
                    dst[i] = EV__LO(u);
                    dst[r + i] = EV__HI(u);
                }
            }
        }
    }
}

static __attribute__((noinline)) int
ev__stream_patches(const int8_t *img, int c, int h, int w, int p, int out, const int8_t *wt,
                   const int32_t *bias, const int32_t *mult, const int8_t *shift, int8_t *row,
                   int8_t *y)
{
    /* in a frame of its own: the one-patch loop after it calls ev__gemm, which has its own */
    uint32_t xb[2 * EV_LINEAR_BUF] __attribute__((aligned(8)));
    const int k = c * p * p, kq = k >> 2, npatch = (h / p) * (w / p);
    int n5, nb = ev__row_blocks(npatch, &n5), n = 0;
    while (nb--) {
        const int r = n5-- > 0 ? 5 : 4;
        struct ev__rsa a;
        int i, o = 0;
        ev__widen_patches(img, c, h, w, p, n, r, xb);
        for (i = 0; i < 5; i++) {
            const int ri = i < r ? i : r - 1;
            a.b[i] = bias + (long)(n + ri) * out + out;
            a.y[i] = y + (long)(n + ri) * out + out;
        }
        a.m = mult + out;
        a.s = shift + out;
        a.lut = 0;
        a.xq = xb;
        a.xe = xb + 2L * r * kq;
        a.w_adv = 0;
        for (;;) {
            int left;
            a.w = wt + (long)o * k;
            a.n = out - o;
            left = ev__rs(&a, r);
            if (!left)
                break;
            o = out + left;   /* channel o has shift <= 32: in C, patch by patch */
            for (i = 0; i < r; i++) {
                ev_patch_gather(img, c, h, w, p, n + i, row);
                ev__gemm_scalar(row, k, 1, k, 1, wt + (long)o * k, k, bias + (long)(n + i) * out + o,
                                0, mult + o, shift + o, 1, 0, y + (long)(n + i) * out + o, out);
            }
            if (++o == out)
                break;
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

/* A lone row (rows == 1, or the last of an odd count left to path B) with in % 16 == 0, a bias and
 * per-channel mult/shift: the row is widened once into xb (2 kq words) and ev__r1c4
 * (ev_linear_m7.S) runs it against 4 channels per pass, requantising in registers; channels with
 * shift <= 32 (their quad) and the last out % 4 channels go through path B's 1 x 2 tile. */
struct ev__r1a {
    const uint32_t *xq, *xe;   /*  0, 4 */
    const int8_t *w;           /*  8: channel 0's weights, stride in */
    int32_t in;                /* 12 */
    const int32_t *b;          /* 16: bias + out (end-relative, as the channel index) */
    int8_t *y;                 /* 20 */
    const int32_t *m;          /* 24 */
    const int8_t *s;           /* 28 */
    const int8_t *lut;         /* 32: lut + 128, or NULL */
    int32_t n;                 /* 36: channels, a multiple of 4 */
};
EV__ASM_OFFSET(ev__r1a, b, 16);
EV__ASM_OFFSET(ev__r1a, n, 36);
EV__PRIVATE int ev__r1c4(const struct ev__r1a *a);

static void ev__rows_a(const struct ev__mm *p, int rows, int out, uint32_t *xb);

static void ev__row1(const struct ev__mm *p, int n, int out, uint32_t *xb)
{
    const int in = 4 * p->kq;
    const int8_t *const x = p->x + (long)n * p->x_stride;
    const int32_t *const b = p->bias + (long)n * p->bs;
    int8_t *const y = p->y + (long)n * p->ys;
    struct ev__r1a a;
    struct ev__mm q;
    int o = 0;
    ev__widen1(x, p->kq, xb);
    a.xq = xb;
    a.xe = xb + 2L * p->kq;
    a.in = in;
    a.lut = p->lut ? p->lut + 128 : 0;
    while (out - o >= 4) {
        const int n4 = (out - o) & ~3;
        int left;
        a.w = p->w + (long)o * in;
        a.b = b + o + n4;
        a.y = y + o + n4;
        a.m = p->mult + o + n4;
        a.s = p->shift + o + n4;
        a.n = n4;
        left = ev__r1c4(&a);
        if (!left) {
            o += n4;
            break;
        }
        o += n4 + left;   /* the quad with a shift <= 32: in C, then on after it */
        ev__gemm_scalar(x, p->x_stride, 1, in, 4, p->w + (long)o * in, in, b + o, 0,
                        p->mult + o, p->shift + o, 1, p->lut, y + o, p->ys);
        o += 4;
    }
    if (o < out) {   /* the last 1..3 channels: path B's tile on this row */
        q = *p;
        q.x = x;
        q.w = p->w + (long)o * in;
        q.bias = b + o;
        q.mult = p->mult + o;
        q.shift = p->shift + o;
        q.y = y + o;
        ev__rows_a(&q, 1, out - o, xb);
    }
}

/* A row pair (rows 2k, 2k + 1 of path B's rows) with in % 4 == 0 (% 16 with a table), a bias and
 * per-channel mult/shift: the pair is widened once into xb (4 kq words) and ev__rs2 (ev_linear_m7.S) runs it
 * against 2 channels per pass, requantising in registers; a channel pair with a shift <= 32 and an
 * odd last channel go through ev__gemm_scalar / path B's tile. */
struct ev__r2a {
    const uint32_t *xq, *xe;   /*  0, 4 */
    const int8_t *w;           /*  8: channel 0's weights, stride in */
    int32_t in;                /* 12 */
    const int32_t *b0, *b1;    /* 16, 20: the rows' biases + out (end-relative) */
    int8_t *y0, *y1;           /* 24, 28: the rows' outputs + out */
    const int32_t *m;          /* 32: mult + out */
    const int8_t *s;           /* 36: shift + out */
    const int8_t *lut;         /* 40: lut + 128, or NULL */
    int32_t n;                 /* 44: channels, even */
};
EV__ASM_OFFSET(ev__r2a, b0, 16);
EV__ASM_OFFSET(ev__r2a, lut, 40);
EV__ASM_OFFSET(ev__r2a, n, 44);
EV__PRIVATE int ev__rs2(const struct ev__r2a *a);
EV__PRIVATE int ev__rs2_lut(const struct ev__r2a *a);   /* a->lut != NULL */

static void ev__rows2(const struct ev__mm *p, int n, int out, uint32_t *xb)
{
    const int in = 4 * p->kq, xs = p->x_stride, ys = p->ys, n2 = out & ~1;
    const int8_t *const x = p->x + (long)n * xs;
    const int32_t *const b = p->bias + (long)n * p->bs;
    int8_t *const y = p->y + (long)n * ys;
    struct ev__r2a a;
    struct ev__mm q;
    int o = 0;
    ev__widen2(x, x + xs, p->kq, xb);
    a.xq = xb;
    a.xe = xb + 4L * p->kq;
    a.in = in;
    a.b1 = b + p->bs + n2;
    a.y1 = y + ys + n2;
    a.b0 = b + n2;
    a.y0 = y + n2;
    a.m = p->mult + n2;
    a.s = p->shift + n2;
    a.lut = p->lut ? p->lut + 128 : 0;
    while (o < n2) {
        int left;
        a.w = p->w + (long)o * in;
        a.n = n2 - o;
        left = a.lut ? ev__rs2_lut(&a) : ev__rs2(&a);
        if (!left)
            break;
        o = n2 + left;   /* the pair with a shift <= 32: in C, then on after it */
        ev__gemm_scalar(x, xs, 2, in, 2, p->w + (long)o * in, in, b + o, p->bs, p->mult + o,
                        p->shift + o, 1, p->lut, y + o, ys);
        o += 2;
    }
    if (n2 < out) {   /* an odd last channel: path B's tile on this pair */
        q = *p;
        q.x = x;
        q.w = p->w + (long)n2 * in;
        q.bias = b + n2;
        q.mult = p->mult + n2;
        q.shift = p->shift + n2;
        q.y = y + n2;
        ev__rows_a(&q, 2, 1, xb);
    }
}

/* The shared core (ev_dsp.h), DSP build. */
void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
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

    if (rows >= 4 && bias && qstep == 1 && w_stride == in
        && ev__streams(in, bias_row_stride, lut)
        && (5 * kq <= EV_LINEAR_BUF || ((in & 15) == 0 && EV__CHUNK_Q >= 4))) {
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
        if ((rows & 1) && out >= 4 && bias && qstep == 1 && w_stride == in && (in & 15) == 0) {
            ev__row1(&p, rows - 1, out, buf);   /* a lone row: 4 channels per pass */
            if (--rows == 0)
                return;
        }
        /* ev__rs2 enters its chain at any group; ev__rs2_lut's loop takes 4 groups a pass */
        if (out >= 2 && bias && qstep == 1 && w_stride == in && (in & 3) == 0
            && ((in & 15) == 0 || !lut)) {
            for (n = 0; n + 1 < rows; n += 2)
                ev__rows2(&p, n, out, buf);   /* row pairs: 2 channels per pass */
            if (n == rows)
                return;
            p.x = x += (long)n * x_stride;
            p.bias = bias += (long)n * bias_row_stride;
            p.y = y += (long)n * y_stride;
            rows -= n;
        }
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

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */

void ev_patch_embed_s8(const int8_t *img, int c, int h, int w, int p, int out, const int8_t *wt,
                       const int32_t *bias, const int32_t *mult, const int8_t *shift, int8_t *row,
                       int8_t *y)
{
    const int k = c * p * p, npatch = (h / p) * (w / p);
    int n = 0;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    if (npatch >= 4 && (p & 3) == 0 && (k & 15) == 0 && 5 * (k >> 2) <= EV_LINEAR_BUF) {
        EV_PART_ENTER(pp, EV_PART_MAC);
        n = ev__stream_patches(img, c, h, w, p, out, wt, bias, mult, shift, row, y);
        EV_PART_LEAVE(pp);
    }
#endif
    /* one patch at a time: gather it into row, embed it */
    for (; n < npatch; n++) {
        ev_patch_gather(img, c, h, w, p, n, row);
        ev_linear_s8(row, k, 1, k, out, wt, bias + (long)n * out, 0, mult, shift, 0,
                     y + (long)n * out, out);
    }
}
