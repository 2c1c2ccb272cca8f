/* Row normalisations: LayerNorm and softmax (intmath.layernorm / intmath.softmax).
 *
 * Both read a whole row to get its statistics before writing anything, and then read x[i] before
 * writing y[i], so y may be the same buffer as x.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

/* The MVE build has its own ev_layernorm_s8 and ev_softmax_s8 (ev_norm_mve.c); this LayerNorm
 * stays in it as ev__layernorm_s8_c, which the Helium one calls for rows past its range. */
#if EV_KERNELS_MVE
#define EV__LAYERNORM_C ev__layernorm_s8_c
#else
#define EV__LAYERNORM_C ev_layernorm_s8
#endif

/* floor(sqrt(v)), exact, digit by digit in base 4 (no floats, no libm). For v < 2^63 the root
 * is < 2^31.5, so it fits uint32_t. */
uint32_t ev__isqrt64(uint64_t v)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v)
        bit >>= 2;
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

void EV__LAYERNORM_C(const int8_t *x, int x_stride, int rows, int c,
                     const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    EV_PART_ENTER(pp, EV_PART_NORM);
    int n, i;
    if (c <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    for (n = 0; n < rows; n++) {
        const int8_t *xr = x + (long)n * x_stride;
        int8_t *yr = y + (long)n * y_stride;
        int32_t sum = 0;
        uint64_t ss = 0, var;
        uint32_t sigma, inv;

        for (i = 0; i < c; i++)
            sum += xr[i];
        /* d_i = C x_i - sum(x) fits int32 (|d| < 256 C); d_i^2 needs 64 bits once C > 181 */
        for (i = 0; i < c; i++) {
            int32_t d = c * xr[i] - sum;
            ss += (uint64_t)((int64_t)d * d);
        }
        var = ss / (uint32_t)c + (uint64_t)eps;   /* both terms >= 0: truncation == floor */
        sigma = ev__isqrt64(var);
        if (sigma == 0)
            sigma = 1;   /* constant row without eps: d == 0, any sigma gives 0 */
        /* 2^31 / sigma: both fit uint32_t, so one UDIV on the M7 instead of a 64-bit division */
        inv = 0x80000000u / sigma;

        for (i = 0; i < c; i++) {
            int32_t d = c * xr[i] - sum;
            int64_t q = ((int64_t)d * inv) >> 19;                 /* Q12, floor */
            int64_t t = (q * g[i] + b[i] + ((int64_t)1 << 27)) >> 28;
            yr[i] = (int8_t)(t < -128 ? -128 : t > 127 ? 127 : t);
        }
    }
    EV_PART_LEAVE(pp);
}

#if !EV_KERNELS_MVE   /* the MVE build's softmax: ev_norm_mve.c */
void ev_softmax_s8(const int8_t *x, int len, const uint16_t *lut, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_SOFTMAX);
    int i, mx;
    uint32_t total = 0, half;
    if (len <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    mx = x[0];
    for (i = 1; i < len; i++)
        if (x[i] > mx)
            mx = x[i];
    /* lut entries < 2^16 and len <= 32768 keep every sum and 127 e + total/2 below 2^32 */
    for (i = 0; i < len; i++)
        total += lut[x[i] - mx + 255];
    if (total == 0) {
        /* only with a degenerate table (zero at the row maximum); numpy's x // 0 gives 0 */
        for (i = 0; i < len; i++)
            y[i] = 0;
        EV_PART_LEAVE(pp);
        return;
    }
    half = total >> 1;
    for (i = 0; i < len; i++) {
        uint32_t e = lut[x[i] - mx + 255];
        y[i] = (int8_t)((127u * e + half) / total);   /* <= 127 since e <= total */
    }
    EV_PART_LEAVE(pp);
}
#endif /* !EV_KERNELS_MVE */
