/* Helium (MVE) path of ev_linear.c's matrix core ev__gemm, which serves ev_linear_s8 and the
 * attention products (ev_attention_mve.c). Built when the compiler targets MVE (EV_KERNELS_MVE:
 * __ARM_FEATURE_MVE and not EV_PORTABLE, e.g. -mcpu=cortex-m55); elsewhere this file is empty and
 * ev__gemm is ev_linear.c's DSP or portable one.
 *
 * VMLADAVA.S8 Rda, Qn, Qm adds the 16 products of two int8 vectors to a 32-bit register: 16 MACs
 * per instruction with no widening (the DSP path's SMLAD does 2, on words SXTB16 has widened).
 * So the rows and weights are read straight from memory, 16 bytes per VLDRB, and the int32 sums
 * are intmath's in another order (they wrap the same way).
 *
 * Blocks and tiles. The call is cut into blocks of up to EV__MVE_RB rows x EV__MVE_CB channels
 * whose int32 sums fit a stack buffer (EV_MVE_SUMS words). Per block:
 *  1. Sums (ev_gemm_mve.S, one call per routine and block): rows 3 at a time through ev__mv32,
 *     tiles of 3 rows x 2 channels, one pass per 16 inputs = 5 VLDRB + 6 VMLADAVA + LETP (8 MACs
 *     per instruction), tail-predicated so that any `in` works; the 1-2 rows left over through
 *     ev__mv14, 1 row x 4 channels (5 VLDRB + 4 VMLADAVA + LETP per 64 MACs). The channels come
 *     as a table of row pointers, rounded up to a multiple of 4 with the last channel repeated
 *     (its extra sums are computed and dropped), so the routines never test the count. Both
 *     store the sums pair-major: channel pair p, row r at word p * 2 rb + 2 r.
 *  2. Requantisation, 4 channels of a row at a time in vector registers: the 4 sums (one gather
 *     with offsets 0, 4, 8 rb, 8 rb + 4 bytes), + bias, then exactly ev_requant: for shifts > 32,
 *     VMULH.S32 (hi = floor(acc m / 2^32)) and VRSHL.S32 by -(s - 32) (= (hi + 2^(s-33)) >>
 *     (s - 32)); at shift 32 (attention), VRMULH.S32 (= (acc m + 2^31) >> 32); then clamped to
 *     [-128, 127] and stored as bytes with VSTRB.32 (predicated for a last quad of 1-3 channels):
 *     8-10 instructions per 4 outputs. A block whose shifts are neither all > 32 nor all 32 takes
 *     ev_requant per output; a LUT is applied afterwards, row by row (ev_lut_s8's gathers).
 * Attention's calls (one multiplier and shift >= 32 for every output, no bias or LUT, 4 query
 * rows at a time as the fused chains pass them) skip all this: ev__mq4 takes 4 rows x 1 channel
 * per tile (5 VLDRB + 4 VMLADAVA + LETP per 64 MACs) and requantises the 4 sums in a vector
 * register (VRMULH.S32 at shift 32, what quantize.py gives attention, or VMULH + VRSHL; two
 * VQMOVNB, one scattering VSTRB.32): 19 instructions per channel
 * around the MAC loop, no sums buffer, no pointer table; a reduction of 16 k + 1 (tokens with a
 * class token) adds its last input with one VMLA.S32 instead of a pass. The 1-3 rows left (and
 * single query rows) go through ev__mq1, 1 row x 4 channels, requantised the same way.
 * Per output that is 2.0-2.5 instructions of requantisation and ~0.5 of tile set-up next to
 * about in / 16 of MACs, so the rate grows with `in`; a single row, and the 4th of 4 rows, take
 * the slower ev__mv14. Instruction counts under QEMU: bench/bench_kernels.py --core cortex-m55.
 */
#include "ev_dsp.h"

#if EV_KERNELS_MVE
#include <arm_mve.h>

/* int32 sums per block: 1.5 KiB of stack; ev__gemm takes 2.3 KiB with its frames (GCC 12 -O2),
 * 4.0 KiB under ev_attention_mve.c's p.v with its transposition buffer, of the 6 KiB the targets
 * reserve. Override with -DEV_MVE_SUMS=N (at least 4 words per row of a block). */
#ifndef EV_MVE_SUMS
#define EV_MVE_SUMS 384
#endif
#define EV__MVE_RB 24    /* rows per block at most */
#define EV__MVE_CB 96    /* channels per block at most (multiple of 4) */

/* ev__mv32 / ev__mv14's operands (ev_gemm_mve.S, whose offsets these are). */
struct ev__mva {
    const int8_t *x;              /*  0: first row */
    int32_t xs;                   /*  4: row stride */
    const int8_t *const *wp;      /*  8: channel pointers */
    int32_t *s;                   /* 12: sums */
    int32_t n;                    /* 16: inputs, >= 1 */
    int32_t nt;                   /* 20: ev__mv32: tiles of 3 rows, >= 1 */
    int32_t ng;                   /* 24: channel pairs (ev__mv32), quads (ev__mv14), >= 1 */
    int32_t ps;                   /* 28: pair stride of the sums, bytes */
};
EV__ASM_OFFSET(ev__mva, wp, 8);
EV__ASM_OFFSET(ev__mva, ng, 24);
EV__ASM_OFFSET(ev__mva, ps, 28);
EV__PRIVATE void ev__mv32(const struct ev__mva *a);
EV__PRIVATE void ev__mv14(const struct ev__mva *a);

/* ev__mq4's operands (ev_gemm_mve.S): 4 rows x nc channels at shift 32, no bias, no LUT. */
struct ev__mqa {
    const int8_t *x;              /*  0: row 0; rows at + xs */
    int32_t xs;                   /*  4 */
    const int8_t *w;              /*  8: channel 0; channels at + ws */
    int32_t ws;                   /* 12 */
    int8_t *y;                    /* 16: row 0, channel 0; rows at + ys */
    int32_t ys;                   /* 20 */
    int32_t n;                    /* 24: inputs in the MAC loop, >= 1 */
    int32_t nc;                   /* 28: channels, >= 1 */
    int32_t m;                    /* 32: multiplier at shift 32 */
    int32_t tl;                   /* 36: 1: one more input (index n), added after the loop */
    int32_t tn;                   /* 40: 0 (shift 32) or 32 - shift (shift > 32) */
};
EV__ASM_OFFSET(ev__mqa, y, 16);
EV__ASM_OFFSET(ev__mqa, tl, 36);
EV__ASM_OFFSET(ev__mqa, tn, 40);
EV__PRIVATE void ev__mq4(const struct ev__mqa *a);
EV__PRIVATE void ev__mq1(const struct ev__mqa *a);   /* one row, 4 channels per tile */

/* Requantise and store the n rows of one quad of channels. Row r's 4 sums: a gather at s + 2 r
 * words with byte offsets `off` (0, 4, 8 n, 8 n + 4: the quad's two channel pairs); bias kind bk:
 * 0 none, 1 b (one per channel), 2 the predicated load at bias + r * bs; mode 1: shifts > 32
 * (m, tneg = -(s - 32) per lane), mode 2: shift 32; stores predicated by p unless `full`. */
static inline __attribute__((always_inline)) void
ev__rq_rows(const int mode, const int bk, const int full, const int32_t *s, uint32x4_t off, int n,
            int32x4_t m, int32x4_t tneg, int32x4_t b, const int32_t *bias, int bs, int8_t *y,
            int ys, mve_pred16_t p, int32x4_t lo, int32x4_t hi)
{
    int r;
    for (r = n; r > 0; r--) {
        int32x4_t v = vldrwq_gather_offset_s32(s, off);
        s += 2;
        if (bk == 2) {
            v = vaddq_s32(v, vldrwq_z_s32(bias, p));
            bias += bs;
        } else if (bk == 1) {
            v = vaddq_s32(v, b);
        }
        v = mode == 1 ? vrshlq_s32(vmulhq_s32(v, m), tneg) : vrmulhq_s32(v, m);
        v = vminq_s32(vmaxq_s32(v, lo), hi);
        if (full)
            vstrbq_s32(y, v);
        else
            vstrbq_p_s32(y, v, p);
        y += ys;
    }
}

/* Every quad of a block with one mode (1: shifts > 32, 2: shift 32), bias kind bk and qstep:
 * constants at each call, so the quad loop and the row loops in it are branch-free. */
static inline __attribute__((always_inline)) void
ev__rq_quads(const int mode, const int bk, const int qstep, const int32_t *s, int rb, int cb,
             const int32_t *bias, int bs, const int32_t *mult, const int8_t *shift, int8_t *y,
             int ys)
{
    const uint32_t o32[4] = {0, 4, 8u * (uint32_t)rb, 8u * (uint32_t)rb + 4};
    const uint32x4_t off = vldrwq_u32(o32);
    const int32x4_t lo = vdupq_n_s32(-128), hi = vdupq_n_s32(127), k32 = vdupq_n_s32(32);
    const int32x4_t m0 = vdupq_n_s32(mult[0]), t0 = vsubq_s32(k32, vdupq_n_s32(shift[0]));
    const mve_pred16_t all = vctp32q(4);
    int g;
    for (g = 0; g + 4 <= cb; g += 4, s += 4 * rb) {
        const int32x4_t m = qstep ? vldrwq_s32(mult + g) : m0;
        const int32x4_t tneg = mode == 2 ? t0 : qstep ? vsubq_s32(k32, vldrbq_s32(shift + g)) : t0;
        const int32x4_t b = bk == 1 ? vldrwq_s32(bias + g) : m0;
        ev__rq_rows(mode, bk, 1, s, off, rb, m, tneg, b, bk == 2 ? bias + g : 0, bs, y + g, ys,
                    all, lo, hi);
    }
    if (g < cb) {   /* the last 1-3 channels */
        const mve_pred16_t p = vctp32q((uint32_t)(cb - g));
        const int32x4_t m = qstep ? vldrwq_z_s32(mult + g, p) : m0;
        const int32x4_t tneg = mode == 2 ? t0 : qstep ? vsubq_s32(k32, vldrbq_z_s32(shift + g, p)) : t0;
        const int32x4_t b = bk == 1 ? vldrwq_z_s32(bias + g, p) : m0;
        ev__rq_rows(mode, bk, 0, s, off, rb, m, tneg, b, bk == 2 ? bias + g : 0, bs, y + g, ys,
                    p, lo, hi);
    }
}

/* Requantisation of a block (see the top of the file). mode: 1 if every shift is > 32, 2 if
 * every one is 32, else 0 (ev_requant per output). bs: 0 with no bias or one per channel. */
static __attribute__((noinline)) void
ev__rq_block(const int32_t *s, int rb, int cb, int mode, const int32_t *bias, int bs,
             const int32_t *mult, const int8_t *shift, int qstep, int8_t *y, int ys)
{
    const int bk = !bias ? 0 : bs ? 2 : 1;
    int r, c;
#define EV__RQ(mode, bk, qstep) ev__rq_quads(mode, bk, qstep, s, rb, cb, bias, bs, mult, shift, y, ys)
    if (mode && qstep) {
        if (mode == 1)
            switch (bk) {
            case 0: EV__RQ(1, 0, 1); return;
            case 1: EV__RQ(1, 1, 1); return;
            default: EV__RQ(1, 2, 1); return;
            }
        switch (bk) {
        case 0: EV__RQ(2, 0, 1); return;
        case 1: EV__RQ(2, 1, 1); return;
        default: EV__RQ(2, 2, 1); return;
        }
    }
    if (mode && !bias) {   /* one (m, s) for all: attention */
        if (mode == 1)
            EV__RQ(1, 0, 0);
        else
            EV__RQ(2, 0, 0);
        return;
    }
#undef EV__RQ
    /* mixed shifts, or shifts < 32 (or one (m, s) with a bias): ev_requant per output */
    for (r = 0; r < rb; r++) {
        for (c = 0; c < cb; c++) {
            int32_t acc = s[(long)(c >> 1) * 2 * rb + 2 * r + (c & 1)];
            if (bias)
                acc = (int32_t)((uint32_t)acc + (uint32_t)bias[(long)r * bs + c]);
            y[(long)r * ys + c] = ev_requant(acc, mult[qstep ? c : 0], shift[qstep ? c : 0]);
        }
    }
}

/* The call's operands (ev__gemm's), the sums buffer and the channel pointer table. */
struct ev__mvc {
    const int8_t *x, *w, *lut, *shift;
    const int32_t *bias, *mult;
    int8_t *y;
    int xs, in, ws, bs, qstep, ys;
    int32_t *s;
    const int8_t **wp;
};

/* One block: rows n0..n0+rb-1, channels o0..o0+cb-1 (their pointers in c->wp, rounded up to a
 * quad), shift mode `mode` (ev__rq_mode). Out of line, so that ev__gemm's loops over blocks keep
 * few values and this function's pointers are computed once per block. */
static __attribute__((noinline)) void
ev__mve_block(const struct ev__mvc *c, int n0, int rb, int o0, int cb, int mode)
{
    const int nt = rb / 3, r3 = 3 * nt, cb4 = (cb + 3) & ~3, xs = c->xs, ys = c->ys, bs = c->bs;
    const int8_t *const x = c->x + (long)n0 * xs;
    int8_t *const y = c->y + (long)n0 * ys + o0;
    int32_t *const s = c->s;
    struct ev__mva a;
    int r;
    a.x = x; a.xs = xs; a.wp = c->wp; a.s = s; a.n = c->in; a.ps = 8 * rb;
    if (nt) {
        a.nt = nt;
        a.ng = (cb + 1) >> 1;   /* pairs: the last quad of 1-2 channels skips its second pair */
        ev__mv32(&a);
    }
    a.ng = cb4 >> 2;
    for (r = r3; r < rb; r++) {
        a.x = x + (long)r * xs;
        a.s = s + 2 * r;
        ev__mv14(&a);
    }
    ev__rq_block(s, rb, cb, mode, c->bias ? c->bias + (long)n0 * bs + o0 : 0, bs,
                 c->mult + o0 * c->qstep, c->shift + o0 * c->qstep, c->qstep, y, ys);
    if (c->lut) {   /* ev_norm_mve.c's gather lookup: 16 outputs per VLDRB */
        for (r = 0; r < rb; r++)
            ev_lut_s8(y + (long)r * ys, cb, c->lut, y + (long)r * ys);
    }
}

/* 1 if every shift of the cb channels is > 32, 2 if every one is 32, else 0; 16 at a time. */
static int ev__rq_mode(const int8_t *shift, int qstep, int cb)
{
    int8_t lo = 127, hi = -128;
    int c;
    if (!qstep)
        cb = 1;
    for (c = 0; c < cb; c += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(cb - c));
        const int8x16_t v = vldrbq_z_s8(shift + c, p);
        lo = vminvq_p_s8(lo, v, p);
        hi = vmaxvq_p_s8(hi, v, p);
    }
    return lo > 32 ? 1 : lo == 32 && hi == 32 ? 2 : 0;
}

/* The shared core (ev_dsp.h), MVE build. */
void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
              const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
              const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
              int8_t *y, int y_stride)
{
    int32_t sums[EV_MVE_SUMS] __attribute__((aligned(8)));
    const int8_t *wp[EV__MVE_CB] __attribute__((aligned(4)));
    struct ev__mvc c;
    int rb, cbmax, n0, o0, k;
    if (rows <= 0 || out <= 0)
        return;
    rb = rows < EV__MVE_RB ? rows : EV__MVE_RB;
    cbmax = (EV_MVE_SUMS / rb) & ~3;
    if (cbmax > EV__MVE_CB)
        cbmax = EV__MVE_CB;
    if (in <= 0 || cbmax < 4) {
        ev__gemm_scalar(x, x_stride, rows, in, out, w, w_stride, bias, bias_row_stride, mult,
                        shift, qstep, lut, y, y_stride);
        return;
    }
    if (qstep == 0 && shift[0] >= 32 && !bias && !lut && in > 0) {
        /* attention (one multiplier and shift >= 32 for all, no bias): 4 rows at a time through
         * ev__mq4, the 1-3 rows left one at a time through ev__mq1; both requantise in registers */
        struct ev__mqa q;
        q.xs = x_stride; q.w = w; q.ws = w_stride; q.ys = y_stride; q.nc = out; q.m = mult[0];
        q.tn = 32 - shift[0];
        q.tl = (in & 15) == 1 && in > 1;   /* 16 k + 1 inputs: the last one after the loop */
        q.n = in - q.tl;
        for (; rows >= 4; rows -= 4, x += 4L * x_stride, y += 4L * y_stride) {
            q.x = x;
            q.y = y;
            ev__mq4(&q);
        }
        q.n = in;
        for (; rows > 0; rows--, x += x_stride, y += y_stride) {
            q.x = x;
            q.y = y;
            ev__mq1(&q);
        }
        return;
    }
    c.x = x; c.w = w; c.lut = lut; c.shift = shift; c.bias = bias; c.mult = mult; c.y = y;
    c.xs = x_stride; c.in = in; c.ws = w_stride; c.qstep = qstep; c.ys = y_stride;
    c.bs = bias ? bias_row_stride : 0;   /* 0: no bias, or one per channel */
    c.s = sums; c.wp = wp;
    for (o0 = 0; o0 < out; o0 += cbmax) {
        const int cb = out - o0 < cbmax ? out - o0 : cbmax, cb4 = (cb + 3) & ~3;
        const int mode = ev__rq_mode(shift + o0 * qstep, qstep, cb);
        /* channel pointers 4 at a time (pointers are 32 bits here), then the last one again */
        uint32x4_t pv = vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)w_stride),
                                    (uint32_t)(w + (long)o0 * w_stride));
        for (k = 0; k < cb4; k += 4, pv = vaddq_n_u32(pv, 4u * (uint32_t)w_stride))
            vst1q_u32((uint32_t *)&wp[k], pv);
        for (k = cb; k < cb4; k++)
            wp[k] = wp[cb - 1];
        for (n0 = 0; n0 < rows; n0 += rb)
            ev__mve_block(&c, n0, rows - n0 < rb ? rows - n0 : rb, o0, cb, mode);
    }
}

#endif /* EV_KERNELS_MVE */
