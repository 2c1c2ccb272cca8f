/* Helium (MVE) path of the attention products (EV_KERNELS_MVE, see ev_linear_mve.c; elsewhere
 * this file is empty and ev_attention.c has them). Both become ev_linear_mve.c's ev__gemm, whose
 * VMLADAVA.S8 tiles read int8 rows straight from memory:
 *  q.k: x = the query rows, channels = the keys (w = K, stride k_stride), no bias, one (m, s) for
 *       every output (qstep 0). One query row is the R = 1 tile. p.v over the qkv split's V^T
 *       ([dh][n_keys]) is this too (ev_attn_scores_rows with keys and dims swapped).
 *  p.v over V's rows (ev_attn_av_row(s)): the reduction runs over keys while v_j[d], v_j[d+1]..
 *       sit side by side, so a block of dims is first transposed into a stack buffer (at most
 *       EV__AV_BUF bytes: [dims][n_keys]) with gather loads, VLDRB.S16 Q, [v + j0 vs + d, Q(0, vs,
 *       .., 7 vs)], 8 keys of one dim per instruction, stored with the narrowing VSTRB.16, then
 *       ev__gemm runs x = the probability rows against it. Strides too wide for 16-bit gather
 *       offsets (7 vs > 65535) or key counts past the buffer take the scalar loop.
 * Both take ev__gemm's ev__mq4 / ev__mq1 tiles at shifts >= 32 (quantize.py gives attention 32).
 * The sums are intmath's in another order, requantised as ev_requant does: the same bits.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

#if EV_KERNELS_MVE
#include <arm_mve.h>

/* bytes of transposed V per block: 1.5 KiB of stack, under ev__gemm's 2.3 KiB (4.0 KiB in all,
 * GCC 12 -O2, of the 6 KiB the targets reserve) */
#define EV__AV_BUF 1536

void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    const int8_t s8 = (int8_t)s;   /* s <= 62 by contract */
    ev__gemm(q, q_stride, rows, dh, n_keys, k, k_stride, 0, 0, &m, &s8, 0, 0, scores, s_stride);
    EV_PART_LEAVE(pp);
}

void ev_attn_scores_row(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                        int32_t m, int32_t s, int8_t *scores)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    ev_attn_scores_rows(q, dh, 1, k, k_stride, n_keys, dh, m, s, scores, n_keys);
    EV_PART_LEAVE(pp);
}

/* t[c * n + j] = v[j * vs + c] for c < nd, j < n: dims d..d+nd-1 of n key rows, transposed. */
static void ev__vt_block(const int8_t *v, int vs, int n, int nd, int8_t *t)
{
    const uint16x8_t off = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)vs);   /* 0, vs, .. 7 vs */
    int j0, c;
    for (j0 = 0; j0 < n; j0 += 8) {
        const int8_t *vj = v + (long)j0 * vs;
        int8_t *tj = t + j0;
        if (n - j0 >= 8) {
            for (c = 0; c < nd; c++, tj += n)
                vstrbq_s16(tj, vldrbq_gather_offset_s16(vj + c, off));
        } else {
            const mve_pred16_t p = vctp16q((uint32_t)(n - j0));
            for (c = 0; c < nd; c++, tj += n)
                vstrbq_p_s16(tj, vldrbq_gather_offset_z_s16(vj + c, off, p), p);
        }
    }
}

void ev_attn_av_rows(const int8_t *p, int p_stride, int rows, const int8_t *v, int v_stride,
                     int n_keys, int dh, int32_t m, int32_t s, int8_t *out, int out_stride)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    const int8_t s8 = (int8_t)s;
    int d, r, j;
    if (rows <= 0 || dh <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    if (n_keys > 0 && n_keys <= EV__AV_BUF && 7L * v_stride <= 65535 && v_stride >= 0) {
        int8_t t[EV__AV_BUF] __attribute__((aligned(16)));
        const int step = EV__AV_BUF / n_keys;
        for (d = 0; d < dh; d += step) {
            const int nd = dh - d < step ? dh - d : step;
            EV_PART_ENTER(pt, EV_PART_MOVE);       /* V's block transposed */
            ev__vt_block(v + d, v_stride, n_keys, nd, t);
            EV_PART_LEAVE(pt);
            ev__gemm(p, p_stride, rows, n_keys, nd, t, n_keys, 0, 0, &m, &s8, 0, 0, out + d,
                     out_stride);
        }
        EV_PART_LEAVE(pp);
        return;
    }
    for (r = 0; r < rows; r++) {
        const int8_t *pr = p + (long)r * p_stride;
        for (d = 0; d < dh; d++) {
            uint32_t acc = 0;
            for (j = 0; j < n_keys; j++)
                acc += (uint32_t)((int32_t)pr[j] * v[(long)j * v_stride + d]);
            out[(long)r * out_stride + d] = ev_requant((int32_t)acc, m, s);
        }
    }
    EV_PART_LEAVE(pp);
}

void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out)
{
    EV_PART_ENTER(pp, EV_PART_MAC);
    ev_attn_av_rows(p, n_keys, 1, v, v_stride, n_keys, dh, m, s, out, dh);
    EV_PART_LEAVE(pp);
}

#endif /* EV_KERNELS_MVE */
