/* Element-wise and data-movement kernels: residual add, product, LUT, token mean, patch gather, transpose. */
#include "ev_dsp.h"
#include "ev_parts.h"

#if !EV_KERNELS_MVE   /* the MVE build's residual add, table lookup, transposition: ev_eltwise_mve.c */
void ev_add_s8(const int8_t *a, const int8_t *b, int n, int32_t ma, int32_t mb, int32_t shift,
               int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    /* intmath.add works in int32 and wraps; uint32_t arithmetic wraps the same way without
     * signed-overflow UB (|a ma| + |b mb| can reach 2^31 at the extremes of the contract). Each
     * element is read before it is written, so y may alias a or b. */
    uint32_t round = (uint32_t)1 << (shift - 1);
    int i;
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(a[i] * ma) + (uint32_t)(b[i] * mb) + round;
        int32_t v = (int32_t)u >> shift;
        y[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    EV_PART_LEAVE(pp);
}

#endif /* !EV_KERNELS_MVE */

void ev_mul_s8(const int8_t *a, const int8_t *b, int n, int32_t m, int32_t s, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    /* |a b| <= 2^14: the product and its requantisation fit ev_requant's int32 accumulator. Each
     * element is read before it is written, so y may alias a or b. */
    int i;
    for (i = 0; i < n; i++)
        y[i] = ev_requant((int32_t)a[i] * b[i], m, s);
    EV_PART_LEAVE(pp);
}

#if !EV_KERNELS_MVE
void ev_lut_s8(const int8_t *x, int n, const int8_t *lut, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    int i;
    for (i = 0; i < n; i++)
        y[i] = lut[x[i] + 128];
    EV_PART_LEAVE(pp);
}
#endif /* !EV_KERNELS_MVE */

#if !EV_KERNELS_MVE
void ev_mean_tokens_s8(const int8_t *x, int rows, int c, int32_t m, int32_t s, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    /* column sums, one column at a time: no accumulator array needed (no malloc, bounded stack) */
    int n, i;
    for (i = 0; i < c; i++) {
        int32_t acc = 0;
        const int8_t *xc = x + i;
        for (n = 0; n < rows; n++)
            acc += xc[(long)n * c];
        y[i] = ev_requant(acc, m, s);
    }
    EV_PART_LEAVE(pp);
}
#endif /* !EV_KERNELS_MVE */

void ev_patch_gather(const int8_t *img, int c, int h, int w, int p, int patch, int8_t *row)
{
    EV_PART_ENTER(pp, EV_PART_MOVE);
    int per_row = w / p;
    int py = patch / per_row, px = patch % per_row;
    int ci, ky, kx;
    for (ci = 0; ci < c; ci++) {
        const int8_t *plane = img + (long)ci * h * w;
        for (ky = 0; ky < p; ky++) {
            const int8_t *src = plane + (long)(py * p + ky) * w + px * p;
            for (kx = 0; kx < p; kx++)
                *row++ = src[kx];
        }
    }
    EV_PART_LEAVE(pp);
}

/* The MVE build's ev_transpose_s8 (ev_eltwise_mve.c) keeps this one for strides its scatter
 * offsets do not reach. */
#if EV_KERNELS_MVE
#define EV__TRANSPOSE_C ev__transpose_s8_c
#else
#define EV__TRANSPOSE_C ev_transpose_s8
#endif
void EV__TRANSPOSE_C(const int8_t *x, int rows, int cols, int8_t *y, int y_stride)
{
    EV_PART_ENTER(pp, EV_PART_MOVE);
    int r, c;
    for (c = 0; c < cols; c++, y += y_stride)
        for (r = 0; r < rows; r++)
            y[r] = x[(long)r * cols + c];
    EV_PART_LEAVE(pp);
}
