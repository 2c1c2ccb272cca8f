/* Attention kernels: q.k scores and p.v, one query row (ev_attn_scores_row, ev_attn_av_row) or
 * several per pass over K / V (ev_attn_scores_rows, ev_attn_av_rows), as the fused attention
 * chains call them. Softmax between the two is a row normalisation (ev_norm.c); V^T for p.v is
 * written by ev_transpose_s8 (ev_eltwise.c).
 *
 * Like ev_linear_s8 they are int32 dot products of int8 vectors followed by ev_requant, kept in
 * uint32_t on the portable path so that overflow wraps; with one (m, s) for every output and no
 * bias. The single-row q.k kernel is ev_linear.c's core (ev__gemm, ev_dsp.h) where its own DSP
 * code does not apply; the DSP helpers are shared with ev_linear.c through ev_dsp.h; ev__rk4 is in
 * ev_attention_m7.S, ev__t42 / ev__t42r in ev_linear_m7.S.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

#if !EV_KERNELS_MVE   /* the MVE build's attention kernels: ev_attention_mve.c */

/* One query row against n_keys key rows: a 1 x dh by dh x n_keys product without bias. The DSP
 * build has its own version of the common sizes below. */
static void ev__scores_gemm(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                            int32_t m, int32_t s, int8_t *scores)
{
    int8_t s8 = (int8_t)s;   /* s <= 62 by contract */
    ev__gemm(q, dh, 1, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, n_keys);
}

#if !EV_KERNELS_DSP

void ev_attn_scores_row(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                        int32_t m, int32_t s, int8_t *scores)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    ev__scores_gemm(q, k, k_stride, n_keys, dh, m, s, scores);
    EV_PART_LEAVE(pp);
}

void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    int d, j;
    for (d = 0; d < dh; d++) {
        uint32_t acc = 0;
        const int8_t *vd = v + d;
        for (j = 0; j < n_keys; j++)
            acc += (uint32_t)((int32_t)p[j] * vd[(long)j * v_stride]);
        out[d] = ev_requant((int32_t)acc, m, s);
    }
    EV_PART_LEAVE(pp);
}

void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
#if EV_KERNELS_V7M || EV_KERNELS_V6M
    /* all the rows in one product: ev_gemm_nodsp.c's tiles load each key byte once for 2 rows */
    int8_t s8 = (int8_t)s;   /* s <= 62 by contract */
    ev__gemm(q, q_stride, rows, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, s_stride);
#else
    int r;
    for (r = 0; r < rows; r++)
        ev_attn_scores_row(q + (long)r * q_stride, k, k_stride, n_keys, dh, m, s,
                           scores + (long)r * s_stride);
#endif
    EV_PART_LEAVE(pp);
}

void ev_attn_av_rows(const int8_t *p, int p_stride, int rows, const int8_t *v, int v_stride,
                     int n_keys, int dh, int32_t m, int32_t s, int8_t *out, int out_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    int r;
    for (r = 0; r < rows; r++)
        ev_attn_av_row(p + (long)r * p_stride, v, v_stride, n_keys, dh, m, s,
                       out + (long)r * out_stride);
    EV_PART_LEAVE(pp);
}

#else /* EV_KERNELS_DSP */


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
    EV_PART_ENTER(pp, EV_PART_MAC);
    int8_t s8 = (int8_t)s;
    if (dh < 8)
        ev__gemm_scalar(q, dh, 1, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, n_keys);
    else if (dh > 256)
        ev__scores_gemm(q, k, k_stride, n_keys, dh, m, s, scores);
    else
        ev__scores_dsp(q, k, k_stride, n_keys, dh, m, s, scores);
    EV_PART_LEAVE(pp);
}

/* p.v for one query row: the reduction runs over keys j while v_j[d], v_j[d+1].. sit side by side
 * in memory, so SMLAD's pairing (two adjacent k of one output) would need the v words transposed.
 * Instead one v word gives 4 outputs: SXTB16 / SXTB16 ROR 8 widen it to (d, d+2) and (d+1, d+3),
 * and SMLABB / SMLATB multiply each half by p_j. 8 outputs per pass keep 8 accumulators in
 * registers; per key: 1 LDRSB (p_j), 2 LDR, 4 SXTB16, 8 MACs. */
void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
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
    EV_PART_LEAVE(pp);
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

/* ev__rk4 (ev_attention_m7.S, which explains the routine): 4 rows x n channels with one
 * multiplier at shift 32 for every output (SMMULR + SSAT: quantize.py gives attention s = 32 for
 * this); the 4 rows widened once in ev__widen4 order (per group the 4 low halves, then the 4 high
 * halves), channel c's kq weight words at w + c * (4 kq + w_adv), widened as they stream. The
 * offsets are the assembly's. */
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
EV__ASM_OFFSET(ev__rka, w, 24);
EV__ASM_OFFSET(ev__rka, kq, 36);
EV__PRIVATE void ev__rk4(const struct ev__rka *a);

/* ev__rk4's widened rows take 8 words a group of 4 inputs on the stack: 2 KiB up to EV__RK_SHORTQ
 * groups (every q.k, p.v over up to 256 keys), 4 KiB beyond (p.v over V^T of 257-512 keys). A frame
 * past 4 KiB reaches its stacked arguments through extra instructions, which the short calls should
 * not pay, hence two entries. */
#define EV__RK_SHORTQ 64
typedef void ev__rk4_rows_fn(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys,
                             int dh, int32_t m, int8_t *scores, int s_stride);
static ev__rk4_rows_fn ev__scores_rk4, ev__scores_rk4_long;
static void ev__scores_rk4_rem(const int8_t *q, int q_stride, int rem, const int8_t *k, int k_stride,
                               int n_keys, int dh, int32_t m, int8_t *scores, int s_stride);
static void ev__scores_pair(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys,
                            int dh, int32_t m, int8_t *scores, int s_stride);

void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    int r = 0;
    if (s == 32 && dh >= 4 && dh <= 4 * EV__RK_MAXQ && n_keys > 0) {
        ev__rk4_rows_fn *const rk4 = dh <= 4 * EV__RK_SHORTQ ? ev__scores_rk4 : ev__scores_rk4_long;
        for (; r + 4 <= rows; r += 4)
            rk4(q + (long)r * q_stride, q_stride, k, k_stride, n_keys, dh, m, scores + (long)r * s_stride,
                s_stride);
        /* 2-3 rows left (a chain's last block of 4k + 2 or 4k + 3 tokens): 3 rows through one
         * 4-row pass, which costs less than 3 single rows at 10-26 keys x 16-32 (bench_kernels.py's
         * harness, 2 rows of 26 keys x 32: q.k 4,180 -> 3,424 instructions, p.v over V^T 5,108 ->
         * 3,794; 10 x 16: 1,244 -> 880 and 1,828 -> 1,146); 2 rows through the pair tile, which
         * does no repeated row's work (2 rows of 26 keys x 32: q.k 3,430 -> 2,794, p.v over V^T
         * 3,800 -> 3,129; 10 x 16: 886 -> 730 and 1,152 -> 985) */
        if (rows - r == 2 && dh <= 4 * EV__RK_SHORTQ) {
            ev__scores_pair(q + (long)r * q_stride, q_stride, k, k_stride, n_keys, dh, m,
                            scores + (long)r * s_stride, s_stride);
            r = rows;
        } else if (rows - r == 3 && dh <= 4 * EV__RK_SHORTQ) {
            ev__scores_rk4_rem(q + (long)r * q_stride, q_stride, rows - r, k, k_stride, n_keys, dh,
                               m, scores + (long)r * s_stride, s_stride);
            r = rows;
        }
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
    EV_PART_LEAVE(pp);
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

/* ev__widen4_pad for 2-3 rows (rem): the last row repeated as rows rem..3 */
static void ev__widen4_pad_rem(const int8_t *a, int xs, int rem, int n, uint32_t *dst)
{
    const int8_t *const x0 = a, *const x1 = a + xs, *const x2 = rem > 2 ? x1 + xs : x1;
    const int full = n >> 2, rest = n & 3;
    int g;
    for (g = 0; g < full; g++, dst += 8) {
        uint32_t u0 = ev__ld32(x0 + 4 * g), u1 = ev__ld32(x1 + 4 * g), u2 = ev__ld32(x2 + 4 * g);
        dst[0] = EV__LO(u0); dst[1] = EV__LO(u1); dst[2] = EV__LO(u2); dst[3] = dst[2];
        dst[4] = EV__HI(u0); dst[5] = EV__HI(u1); dst[6] = EV__HI(u2); dst[7] = dst[6];
    }
    if (rest) {
        uint32_t u0 = 0, u1 = 0, u2 = 0;
        memcpy(&u0, x0 + 4 * full, (size_t)rest);
        memcpy(&u1, x1 + 4 * full, (size_t)rest);
        memcpy(&u2, x2 + 4 * full, (size_t)rest);
        dst[0] = EV__LO(u0); dst[1] = EV__LO(u1); dst[2] = EV__LO(u2); dst[3] = dst[2];
        dst[4] = EV__HI(u0); dst[5] = EV__HI(u1); dst[6] = EV__HI(u2); dst[7] = dst[6];
    }
}

/* 4 query rows through ev__rk4 (s == 32): the rows widened once into xq, zero past dh; each key
 * is read as ceil(dh / 4) words, so up to 3 bytes past a key's dh are read and multiplied by those
 * zeros (the next key's or head's bytes: the sums, hence the bits, do not change). Also p.v over
 * the qkv split's V^T, with keys and dims swapped. Its two entries below are out of line: their
 * buffers are never on the stack together with ev_linear_s8's. */
static inline void ev__scores_rk4_in(uint32_t *xq, const int8_t *q, int q_stride, const int8_t *k, int k_stride,
                                     int n_keys, int dh, int32_t m, int8_t *scores, int s_stride)
{
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

static __attribute__((noinline)) void
ev__scores_rk4(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys, int dh,
               int32_t m, int8_t *scores, int s_stride)
{
    uint32_t xq[8 * EV__RK_SHORTQ] __attribute__((aligned(8)));
    ev__scores_rk4_in(xq, q, q_stride, k, k_stride, n_keys, dh, m, scores, s_stride);
}

static __attribute__((noinline)) void
ev__scores_rk4_long(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys, int dh,
                    int32_t m, int8_t *scores, int s_stride)
{
    uint32_t xq[8 * EV__RK_MAXQ] __attribute__((aligned(8)));
    ev__scores_rk4_in(xq, q, q_stride, k, k_stride, n_keys, dh, m, scores, s_stride);
}

/* The last 2-3 rows (rem) of a call through ev__rk4 as 4 rows, the last one repeated: its outputs
 * are written 2-3 times with the same bytes (row offsets ys2, ys3 point at it). One pass over
 * K / V^T for the 2-3 rows instead of one per row through the single-row kernels (0.3-0.4 MACs
 * per instruction at 16-32 dims). */
static __attribute__((noinline)) void
ev__scores_rk4_rem(const int8_t *q, int q_stride, int rem, const int8_t *k, int k_stride,
                   int n_keys, int dh, int32_t m, int8_t *scores, int s_stride)
{
    uint32_t xq[8 * EV__RK_SHORTQ] __attribute__((aligned(8)));
    struct ev__rka a;
    a.kq = (dh + 3) >> 2;
    ev__widen4_pad_rem(q, q_stride, rem, dh, xq);
    a.xq = xq;
    a.m = m;
    a.w_adv = k_stride - 4 * a.kq;
    a.ys = s_stride;
    a.ys2 = (rem > 2 ? 2 : 1) * s_stride;
    a.ys3 = (rem - 1) * s_stride;
    a.w = k;
    a.y = scores;
    a.n = n_keys;
    ev__rk4(&a);
}

/* The last 2 rows of a call (s == 32): widened once as a pair (ev__widen2's order, zero past dh), the
 * keys 2 at a time through ev__t22_a (16 instructions per 16 MACs), each sum requantised as ev__rk4
 * does (SMMULR + SSAT). Keys are read as ceil(dh / 4) words, up to 3 bytes past dh, which the zeros
 * cancel (as in ev__rk4). An odd last key pairs with itself, its duplicate sums dropped. */
static __attribute__((noinline)) void
ev__scores_pair(const int8_t *q, int q_stride, const int8_t *k, int k_stride, int n_keys, int dh,
                int32_t m, int8_t *scores, int s_stride)
{
    uint32_t xb[4 * EV__RK_SHORTQ] __attribute__((aligned(8)));
    const int kq = (dh + 3) >> 2, rest = dh & 3;
    struct ev__q rq;
    int j;
    ev__qinit(&rq, m, 32);
    ev__widen2(q, q + q_stride, dh >> 2, xb);
    if (rest) {
        uint32_t u = 0, v = 0, *dst = xb + 4 * (dh >> 2);
        memcpy(&u, q + (dh & ~3), (size_t)rest);
        memcpy(&v, q + q_stride + (dh & ~3), (size_t)rest);
        dst[0] = EV__LO(u); dst[1] = EV__LO(v); dst[2] = EV__HI(u); dst[3] = EV__HI(v);
    }
    for (j = 0; j < n_keys; j += 2) {
        const int8_t *k0 = k + (long)j * k_stride, *k1 = j + 1 < n_keys ? k0 + k_stride : k0;
        uint32_t acc[4] = {0, 0, 0, 0};
        ev__t22_a(xb, kq, k0, k1, acc);
        scores[j] = ev__rq(&rq, acc[0], 0);
        scores[s_stride + j] = ev__rq(&rq, acc[2], 0);
        if (j + 1 < n_keys) {
            scores[j + 1] = ev__rq(&rq, acc[1], 0);
            scores[s_stride + j + 1] = ev__rq(&rq, acc[3], 0);
        }
    }
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
    EV_PART_ENTER(pp, EV_PART_MAC);
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
    EV_PART_LEAVE(pp);
}

#endif /* EV_KERNELS_DSP */

#endif /* !EV_KERNELS_MVE */
