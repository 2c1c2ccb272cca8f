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
    int i = 0;
#if EV_KERNELS_DSP
    if (n >= 4) {   /* 4 values per word in assembly (8 instructions a value), the rest below */
        struct ev__add_k k;
        k.ma = ma;
        k.mb = mb;
        k.round = round;
        k.shift = shift;
        i = n & ~3;
        ev__add4(a, b, y, i, &k);
    }
#endif
    for (; i < n; i++) {
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
    int n, i = 0;
#if EV_KERNELS_DSP
    /* 4 columns per pass: one word per row, SXTAB16 adds bytes 0 / 2 and (ROR 8) 1 / 3 into the
     * 16-bit halves of two sums (|sum| <= 128 rows <= 32768 fits a half for rows <= 256): 3
     * instructions per row and 4 columns besides the loop, where the loop below takes about 6 per
     * value. Columns past the last multiple of 4 go below. */
    if (rows <= 256) {
        for (; i + 4 <= c; i += 4) {
            const int8_t *xc = x + i, *end = x + (long)rows * c + i;
            uint32_t s02 = 0, s13 = 0;
            for (; xc != end; xc += c) {
                uint32_t u = ev__ld32(xc);
                __asm__("sxtab16 %0, %0, %2\n\tsxtab16 %1, %1, %2, ror #8"
                        : "+r"(s02), "+r"(s13) : "r"(u));
            }
            y[i] = ev_requant((int16_t)s02, m, s);
            y[i + 1] = ev_requant((int16_t)s13, m, s);
            y[i + 2] = ev_requant((int16_t)(s02 >> 16), m, s);
            y[i + 3] = ev_requant((int16_t)(s13 >> 16), m, s);
        }
    }
#endif
    for (; i < c; i++) {
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
    int r, c, r4 = 0, c4 = 0;
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
    /* 4 x 4 blocks in registers: four word loads (one per row), PKHBT / PKHTB pair the rows'
     * halves, UXTB16 / AND + ORR interleave the bytes, four word stores (one per column; the M7
     * allows unaligned LDR / STR): 27 instructions per 16 values, where the loop below takes
     * about 7 per value. The block's rows and columns left over go through that loop. */
    r4 = rows & ~3;
    c4 = cols & ~3;
    for (r = 0; r < r4; r += 4) {
        const int8_t *xr = x + (long)r * cols;
        int8_t *yc = y + r;
        for (c = 0; c < c4; c += 4, yc += 4L * y_stride) {
            uint32_t a = ev__ld32(xr + c), b = ev__ld32(xr + cols + c);
            uint32_t u = ev__ld32(xr + 2L * cols + c), v = ev__ld32(xr + 3L * cols + c);
            uint32_t k0, k1, k2, k3;
            /* 8 registers in all (the -O0 build's budget): a, b, u, v are overwritten */
            __asm__("pkhtb %[k2], %[u], %[a], asr #16\n\t"   /* a2 a3 u2 u3 */
                    "pkhtb %[k3], %[v], %[b], asr #16\n\t"   /* b2 b3 v2 v3 */
                    "pkhbt %[a], %[a], %[u], lsl #16\n\t"    /* a0 a1 u0 u1 */
                    "pkhbt %[b], %[b], %[v], lsl #16\n\t"    /* b0 b1 v0 v1 */
                    "uxtb16 %[k0], %[a]\n\t"                 /* a0 . u0 . */
                    "uxtb16 %[u], %[b]\n\t"                  /* b0 . v0 . */
                    "orr %[k0], %[k0], %[u], lsl #8\n\t"     /* column 0: a0 b0 u0 v0 */
                    "uxtb16 %[k1], %[a], ror #8\n\t"         /* a1 . u1 . */
                    "and %[b], %[b], #0xff00ff00\n\t"        /* . b1 . v1 */
                    "orr %[k1], %[k1], %[b]\n\t"             /* column 1 */
                    "uxtb16 %[a], %[k2]\n\t"
                    "uxtb16 %[u], %[k3]\n\t"
                    "orr %[a], %[a], %[u], lsl #8\n\t"       /* column 2 */
                    "uxtb16 %[v], %[k2], ror #8\n\t"
                    "and %[k3], %[k3], #0xff00ff00\n\t"
                    "orr %[k3], %[k3], %[v]"                   /* column 3 */
                    : [a] "+r"(a), [b] "+r"(b), [u] "+r"(u), [v] "+r"(v),
                      [k0] "=&r"(k0), [k1] "=&r"(k1), [k2] "=&r"(k2), [k3] "=&r"(k3));
            k2 = a;
            memcpy(yc, &k0, 4);
            memcpy(yc + y_stride, &k1, 4);
            memcpy(yc + 2L * y_stride, &k2, 4);
            memcpy(yc + 3L * y_stride, &k3, 4);
        }
    }
#endif
    if (r4 < rows)   /* the rows the blocks left, in the columns they did */
        for (c = 0; c < c4; c++)
            for (r = r4; r < rows; r++)
                y[(long)c * y_stride + r] = x[(long)r * cols + c];
    for (c = c4, y += (long)c4 * y_stride; c < cols; c++, y += y_stride)   /* the other columns */
        for (r = 0; r < rows; r++)
            y[r] = x[(long)r * cols + c];
    EV_PART_LEAVE(pp);
}
