/* Row normalisations: LayerNorm and softmax (intmath.layernorm / intmath.softmax).
 *
 * Both read a whole row to get its statistics before writing anything, and then read x[i] before
 * writing y[i], so y may be the same buffer as x.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

/* The MVE build has its own ev_layernorm_s8, ev_layernorm_pre_s8 and ev_softmax_s8
 * (ev_norm_mve.c); the other DSP builds (M7, M4, M33) have theirs below (EV__NORM_DSP). In both
 * this file's C LayerNorms stay as ev__layernorm_s8_c and ev__layernorm_pre_s8_c, which the faster
 * ones call for rows past their range. */
#if EV_KERNELS_DSP && !EV_KERNELS_MVE
#define EV__NORM_DSP 1
#else
#define EV__NORM_DSP 0
#endif
#if EV_KERNELS_DSP
#define EV__LAYERNORM_C ev__layernorm_s8_c
#define EV__LAYERNORM_PRE_C ev__layernorm_pre_s8_c
#else
#define EV__LAYERNORM_C ev_layernorm_s8
#define EV__LAYERNORM_PRE_C ev_layernorm_pre_s8
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

/* pre: g and b are the prescaled constants of ev_layernorm_pre_s8 (ev_kernels.h), 16 g and
 * 16 b + 2^31, so that t is the high word of q g + b: floor((16 P + 2^31) / 2^32) =
 * floor((P + 2^27) / 2^28) for P = q g_Q16 + b_Q28, the same integer. */
static inline void ev__layernorm_c(const int8_t *x, int x_stride, int rows, int c, const int32_t *g,
                                   const int64_t *b, int64_t eps, int8_t *y, int y_stride, int pre)
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

        if (pre) {
            for (i = 0; i < c; i++) {
                int32_t d = c * xr[i] - sum;
                int64_t q = ((int64_t)d * inv) >> 19;             /* Q12, floor */
                int64_t t = (q * g[i] + b[i]) >> 32;
                yr[i] = (int8_t)(t < -128 ? -128 : t > 127 ? 127 : t);
            }
        } else {
            for (i = 0; i < c; i++) {
                int32_t d = c * xr[i] - sum;
                int64_t q = ((int64_t)d * inv) >> 19;             /* Q12, floor */
                int64_t t = (q * g[i] + b[i] + ((int64_t)1 << 27)) >> 28;
                yr[i] = (int8_t)(t < -128 ? -128 : t > 127 ? 127 : t);
            }
        }
    }
    EV_PART_LEAVE(pp);
}

void EV__LAYERNORM_C(const int8_t *x, int x_stride, int rows, int c,
                     const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_c(x, x_stride, rows, c, g, b, eps, y, y_stride, 0);
}

void EV__LAYERNORM_PRE_C(const int8_t *x, int x_stride, int rows, int c,
                         const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_c(x, x_stride, rows, c, g, b, eps, y, y_stride, 1);
}


#if EV__NORM_DSP
/* DSP path (M7, M4, M33): intmath.layernorm / softmax's integers, rearranged so that the
 * per-element work is a few single-cycle 32-bit instructions (bench/bench_kernels.py measures it):
 *
 * LayerNorm, per row:
 *  - S = sum x and Q = sum x^2 four values per word: SXTB16 widens bytes 0/2 and 1/3 into 16-bit
 *    pairs, SMLAD(pair, pair) adds two squares, SMLAD(pair, 0x00010001) two values. intmath's
 *    sum (C x_i - S)^2 equals C (C Q - S^2), so its division by C is exact: var = C Q - S^2 + eps,
 *    no second pass and no 64-bit sum of squares. Q <= 2^14 C and |S| <= 2^7 C fit 32 bits.
 *  - sigma = isqrt(var) by Newton with UDIV below 2^32 (ev__isqrt64's digit loop above), and
 *    inv = 2^31 / sigma: once per row.
 *  - n = floor(d inv / 2^19), d = C x - S, as SMMUL(d 2^a, inv 2^b) = floor(d inv 2^(a+b) / 2^32)
 *    with a + b = 13: b puts inv's top bit at bit 30 (at most 13), so d 2^a stays below
 *    2^15 sqrt(C) in magnitude (|d| < 2 sqrt(C) sigma); d 2^a is one MLA, x (C 2^a) - S 2^a.
 *  - y = clamp(floor((n g + b + 2^27) / 2^28)): SMLAL n g into b's two words (one LDRD), then
 *    floor(P / 2^27) = 32 hi + (lo >> 27) and y = floor((that + 1) / 2) (a floor of a floor).
 *    hi is clamped to 16 bits first: past that y is beyond the int8 clamp on the same side.
 *    This loop is ev__ln_row (ev_norm_m7.S): 12 instructions per value. With ev_layernorm_pre_s8's
 *    constants (16 g, 16 b + 2^31, made at build time) the SMLAL's high word is already y before
 *    the clamp: ev__ln_row_pre, SSAT #8 of it, 8 instructions per value.
 * Softmax, per row:
 *  - the maximum four bytes per SSUB8 + SEL (a per-byte signed max); e = lut[x - max + 255] is one
 *    LDRH indexed by the signed x itself (base lut + 255 - max).
 *  - (127 e + total/2) / total as hi(num R) >> p, no divide: with p = floor(log2 total) and
 *    R = ceil(2^(32+p) / total) < 2^32, num R / 2^(32+p) exceeds num / total by num e' / (total
 *    2^(32+p)) where e' = R total - 2^(32+p) < total; num < 128 total makes that below 1 / total
 *    while total < 2^24 (p <= 23), too little to reach the next integer. R is a long division of
 *    2^(32+p) - 1 in four 32-bit UDIV steps. A power-of-two total takes R = 2^31 and shift p - 1;
 *    total 1 or >= 2^24 (only past 511 keys when the table peaks at 2^15) divide per element, and
 *    so do rows under 8 keys, where the reciprocal's four UDIVs would cost more than it saves. */

/* widest LayerNorm row this path takes: Q <= 2^14 C in 32 bits, C 2^a in 32 bits */
#define EV__LN_DSP_MAX_C 65536
/* softmax totals below this take the reciprocal (see above), in rows of at least this many keys */
#define EV__SM_RECIP_LIMIT (1u << 24)
#define EV__SM_RECIP_MIN_LEN 8

/* The rows of both entry points; pre picks the per-value loop: ev__ln_row (g, b as intmath has
 * them) or ev__ln_row_pre (ev_layernorm_pre_s8's prescaled g, b: the rounded value is the SMLAL's
 * high word, 8 instructions a value instead of 12). Inline, so each entry keeps one call. */
static inline void ev__layernorm_dsp(const int8_t *x, int x_stride, int rows, int c, const int32_t *g,
                                     const int64_t *b, int64_t eps, int8_t *y, int y_stride, int pre)
{
    EV_PART_ENTER(pp, EV_PART_NORM);
    int n;
    if (c <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    if (c > EV__LN_DSP_MAX_C) {
        if (pre)
            ev__layernorm_pre_s8_c(x, x_stride, rows, c, g, b, eps, y, y_stride);
        else
            ev__layernorm_s8_c(x, x_stride, rows, c, g, b, eps, y, y_stride);
        EV_PART_LEAVE(pp);
        return;
    }
    for (n = 0; n < rows; n++) {
        const int8_t *xr = x + (long)n * x_stride, *xp = xr, *end8 = xr + (c & ~7);
        int8_t *yr = y + (long)n * y_stride;
        uint32_t sum = 0, sumsq = 0, sigma, inv, mult;
        int32_t s;
        int a;

        while (xp != end8) {   /* 8 values per pass: two unaligned words */
            uint32_t u = ev__ld32(xp), v = ev__ld32(xp + 4);
            uint32_t ul = EV__LO(u), uh = EV__HI(u), vl = EV__LO(v), vh = EV__HI(v);
            xp += 8;
            sumsq = EV__MAC(ul, ul, sumsq);
            sumsq = EV__MAC(uh, uh, sumsq);
            sumsq = EV__MAC(vl, vl, sumsq);
            sumsq = EV__MAC(vh, vh, sumsq);
            sum = EV__MAC(ul, 0x00010001u, sum);
            sum = EV__MAC(uh, 0x00010001u, sum);
            sum = EV__MAC(vl, 0x00010001u, sum);
            sum = EV__MAC(vh, 0x00010001u, sum);
        }
        for (; xp != xr + c; xp++) {
            sum += (uint32_t)(int32_t)*xp;
            sumsq += (uint32_t)(*xp * *xp);
        }
        s = (int32_t)sum;
        sigma = ev__isqrt_udiv((uint64_t)((int64_t)c * sumsq - (int64_t)s * s) + (uint64_t)eps);
        if (sigma == 0)
            sigma = 1;   /* constant row without eps: d == 0, any sigma gives 0 */
        inv = 0x80000000u / sigma;
        if (inv == 0x80000000u) {   /* sigma 1: 2^31 is 2^30 2^1, and 2^30 fits SMMUL's operand */
            mult = 0x40000000u;
            a = 14;
        } else {
            int bshift = inv ? __builtin_clz(inv) - 1 : 13;
            if (bshift > 13)
                bshift = 13;
            mult = inv << bshift;
            a = 13 - bshift;
        }
        {
            struct ev__ln_row_k k;
            k.g = g;
            k.scale = (uint32_t)c << a;   /* d 2^a = x (C 2^a) - S 2^a, modulo 2^32: fits int32 */
            k.offset = 0u - ((uint32_t)s << a);
            k.mult = mult;
            k.b = b;
            if (pre)
                ev__ln_row_pre(xr, yr, c, &k);
            else
                ev__ln_row(xr, yr, c, &k);
        }
    }
    EV_PART_LEAVE(pp);
}

void ev_layernorm_s8(const int8_t *x, int x_stride, int rows, int c,
                     const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_dsp(x, x_stride, rows, c, g, b, eps, y, y_stride, 0);
}

void ev_layernorm_pre_s8(const int8_t *x, int x_stride, int rows, int c,
                         const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_dsp(x, x_stride, rows, c, g, b, eps, y, y_stride, 1);
}

/* ceil(2^(32+p) / d) for 2^p < d < 2^(p+1), p <= 23 (< 2^32). The same ratio as 2^55 / dn with
 * dn = d 2^(23-p) in (2^23, 2^24): floor((2^55 - 1) / dn) + 1, by long division of the 55 one
 * bits, the top 31 first and then 8 at a time (the remainder is below dn < 2^24, so it and 8 more
 * bits fit 32): four UDIVs, no loop. */
static uint32_t ev__recip_ceil(uint32_t d, int p)
{
    uint32_t dn = d << (23 - p), q = 0x7FFFFFFFu / dn, r = 0x7FFFFFFFu - q * dn, t, qd;
    int step;
    for (step = 0; step < 3; step++) {
        t = (r << 8) | 0xFFu;
        qd = t / dn;
        r = t - qd * dn;
        q = (q << 8) | qd;
    }
    return q + 1;
}

void ev_softmax_s8(const int8_t *x, int len, const uint16_t *lut, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_SOFTMAX);
    const int8_t *xp = x, *end8 = x + (len & ~7), *end4 = x + (len & ~3), *end = x + len;
    const uint16_t *base;
    uint32_t mx4 = 0x80808080u, total = 0, half, recip;
    int mx, shift;
    if (len <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    while (xp != end8) {   /* 8 bytes per pass: per-byte max of the words seen so far */
        uint32_t u = ev__ld32(xp), v = ev__ld32(xp + 4), diff;
        xp += 8;
        /* SSUB8 sets GE per byte where u >= max (its difference is not needed), SEL picks */
        __asm__("ssub8 %1, %2, %0\n\tsel %0, %2, %0\n\t"
                "ssub8 %1, %3, %0\n\tsel %0, %3, %0"
                : "+r"(mx4), "=&r"(diff) : "r"(u), "r"(v) : "cc");
    }
    if (xp != end4) {
        uint32_t u = ev__ld32(xp), diff;
        xp += 4;
        __asm__("ssub8 %1, %2, %0\n\tsel %0, %2, %0" : "+r"(mx4), "=&r"(diff) : "r"(u) : "cc");
    }
    if (xp != end && len >= 4) {   /* the last 1..3 values: the row's last word again (max is
                                    * idempotent, so the bytes seen twice change nothing) */
        uint32_t u = ev__ld32(end - 4), diff;
        xp = end;
        __asm__("ssub8 %1, %2, %0\n\tsel %0, %2, %0" : "+r"(mx4), "=&r"(diff) : "r"(u) : "cc");
    }
    {   /* the 4 bytes' maximum in byte 0: the word against itself rotated by 16, then by 8 */
        uint32_t t, diff;
        __asm__("ror %1, %0, #16\n\tssub8 %2, %1, %0\n\tsel %0, %1, %0\n\t"
                "ror %1, %0, #8\n\tssub8 %2, %1, %0\n\tsel %0, %1, %0"
                : "+r"(mx4), "=&r"(t), "=&r"(diff) : : "cc");
    }
    mx = (int8_t)mx4;
    for (; xp != end; xp++)
        if (*xp > mx)
            mx = *xp;

    base = lut + (255 - mx);   /* base[x] = lut[x - max + 255] */
    xp = x;
    if (xp != end4) {   /* 4 values per pass: 3.5 instructions each */
        uint32_t e0, e1, e2, e3;
        __asm__ volatile(
            "1:\n\t"
            "ldrsb   %[e0], [%[x]], #1\n\t"
            "ldrsb   %[e1], [%[x]], #1\n\t"
            "ldrsb   %[e2], [%[x]], #1\n\t"
            "ldrsb   %[e3], [%[x]], #1\n\t"
            "ldrh    %[e0], [%[b], %[e0], lsl #1]\n\t"
            "ldrh    %[e1], [%[b], %[e1], lsl #1]\n\t"
            "ldrh    %[e2], [%[b], %[e2], lsl #1]\n\t"
            "ldrh    %[e3], [%[b], %[e3], lsl #1]\n\t"
            "add     %[t], %[t], %[e0]\n\t"
            "add     %[t], %[t], %[e1]\n\t"
            "add     %[t], %[t], %[e2]\n\t"
            "add     %[t], %[t], %[e3]\n\t"
            "cmp     %[x], %[xe]\n\t"
            "bne     1b"
            : [x] "+r"(xp), [t] "+r"(total), [e0] "=&r"(e0), [e1] "=&r"(e1), [e2] "=&r"(e2),
              [e3] "=&r"(e3)
            : [b] "r"(base), [xe] "r"(end4)
            : "cc", "memory");
    }
    for (; xp != end; xp++)
        total += base[*xp];   /* entries < 2^16 and len <= 32768: below 2^31 */
    if (total == 0) {
        /* only with a degenerate table (zero at the row maximum); numpy's x // 0 gives 0 */
        for (xp = x; xp != end; xp++)
            y[xp - x] = 0;
        EV_PART_LEAVE(pp);
        return;
    }
    half = total >> 1;
    /* the reciprocal costs four UDIVs and ~25 instructions: rows under 8 keys divide instead */
    if (len < EV__SM_RECIP_MIN_LEN || total == 1 || total >= EV__SM_RECIP_LIMIT) {
        for (xp = x; xp != end; xp++, y++)
            *y = (int8_t)((127u * base[*xp] + half) / total);   /* <= 127 since e <= total */
        EV_PART_LEAVE(pp);
        return;
    }
    shift = 31 - __builtin_clz(total);
    if (total & (total - 1)) {
        recip = ev__recip_ceil(total, shift);
    } else {   /* 2^p, p >= 1: hi(num 2^31) >> (p - 1) = num >> p */
        recip = 0x80000000u;
        shift--;
    }
    xp = x;
    if (xp != end4) {   /* 4 values per pass: 6.5 instructions each; reads x[i] before writing y[i] */
        uint32_t e, hi;
        __asm__ volatile(
            "1:\n\t"
            ".rept 4\n\t"
            "ldrsb   %[e], [%[x]], #1\n\t"
            "ldrh    %[e], [%[b], %[e], lsl #1]\n\t"
            "mla     %[e], %[e], %[k], %[h]\n\t"   /* num = 127 e + total / 2 */
            "umull   %[e], %[hi], %[e], %[r]\n\t"
            "lsr     %[hi], %[hi], %[s]\n\t"       /* floor(num R / 2^(32+p)) */
            "strb    %[hi], [%[y]], #1\n\t"
            ".endr\n\t"
            "cmp     %[x], %[xe]\n\t"
            "bne     1b"
            : [x] "+r"(xp), [y] "+r"(y), [e] "=&r"(e), [hi] "=&r"(hi)
            : [b] "r"(base), [xe] "r"(end4), [k] "r"(127), [h] "r"(half), [r] "r"(recip),
              [s] "r"(shift)
            : "cc", "memory");
    }
    for (; xp != end; xp++, y++) {
        uint32_t num = 127u * base[*xp] + half;
        *y = (int8_t)((uint32_t)(((uint64_t)num * recip) >> 32) >> shift);
    }
    EV_PART_LEAVE(pp);
}

#elif !EV_KERNELS_MVE   /* portable C; the MVE build's softmax: ev_norm_mve.c */
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
#endif /* EV__NORM_DSP, !EV_KERNELS_MVE */
