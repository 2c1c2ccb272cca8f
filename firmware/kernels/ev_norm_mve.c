/* Helium (MVE) path of the row normalisations, LayerNorm and softmax (ev_norm.c; the residual add,
 * table lookup and transposition: ev_eltwise_mve.c). Built when the compiler targets MVE
 * (EV_KERNELS_MVE, e.g. -mcpu=cortex-m55; elsewhere this file is empty and ev_norm.c has them).
 * The same integer results as intmath.layernorm / softmax, with the arithmetic rearranged into
 * exact 32-bit lane operations:
 *
 * LayerNorm, per row:
 *  - Statistics, 16 values per pass (VLDRB, VADDVA.S8, VMLADAVA.S8): S = sum x, Q = sum x^2.
 *    intmath's sum (C x_i - S)^2 equals C (C Q - S^2), so its division by C is exact and
 *    var = C Q - S^2 + eps needs no division and no 64-bit sum of squares.
 *  - sigma = isqrt(var) (Newton with UDIV below 2^32, else ev_norm.c's digit loop), inv = 2^31 /
 *    sigma: once per row, scalar.
 *  - Per 4 values (16 instructions): n = (d inv) >> 19 with d = C x - S is VQDMULH.S32(d 2^12,
 *    inv) = floor(2 d 2^12 inv / 2^32); d 2^12 comes from one VMLAS (x C 2^12 - S 2^12) and
 *    |d| <= 255 (C - 1) keeps it in int32 up to C = 2048 (wider rows take ev_norm.c's loop).
 *    inv = 2^31 (sigma 1) does not fit the signed operand: then (d 2^13, 2^30), the same value
 *    (sigma 1 means sum d^2 <= 3 C, so d is tiny). The 64-bit n g + b + 2^27 is kept as two
 *    words: n g = hi 2^32 + lo (VMULH.S32, VMUL.I32), b's low and high words gathered from the
 *    int64 array (VLDRW with a vector of addresses stepping 32 bytes), then
 *    y = floor((n g + b + 2^27) / 2^28) = 16 (hi + b_hi) + ((lo + b_lo) / 2 + 2^26) / 2^27, the
 *    low words' sum halved without overflow (VHADD.U32) and rounded down by VRSHR.U32 #27, so no
 *    carry is needed. 16 H saturates (VQSHL, VQADD) only where |H| >= 2^27, far past the int8
 *    clamp, which then gives intmath's -128 or 127 as well; the clamp is two saturating narrows
 *    (VQMOVNB.S32, .S16) before the byte store.
 * Softmax, per row: the maximum 16 values per VMAXV; the exp table read with gathers (VLDRH.U16,
 *    8 entries per instruction, base lut + 127 - max, offsets x + 128) and summed (VADDVA.U16);
 *    then per 4 values (10 instructions, the entries gathered again) (127 e + total/2) / total
 *    without a divide: q0 = VMULH.U32(num, floor((2^32 - 1) / total)) is q or q - 1 (the
 *    reciprocal is short of 2^32 / total by less than 1, so the quotient by less than num / 2^32
 *    < 1), and one compare of the remainder num - q0 total (< 2 total < 2^32) against total (VPT)
 *    adds the missing 1.
 *
 * The loops are tail-predicated (DLSTP / LETP, inline assembly: GCC 12 does not make them from
 * intrinsics), so any length works and the last pass reads and writes nothing past the row; each
 * pass reads its values before it writes their outputs, so y may be x as ev_norm.c allows.
 * Instruction counts under QEMU: bench/bench_kernels.py --core cortex-m55.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

#if EV_KERNELS_MVE

/* widest LayerNorm row the vector path takes: (C x - S) 2^12 must fit int32 (see above) */
#define EV__LN_MVE_MAX_C 2048

/* Both entry points; pre: ev_layernorm_pre_s8's constants g' = 16 g, b' = 16 b + 2^31
 * (ev_kernels.h), whose y before the clamp is the high word of n g' + b' (see its loop below). */
static inline void ev__layernorm_mve(const int8_t *x, int x_stride, int rows, int c, const int32_t *g,
                                     const int64_t *b, int64_t eps, int8_t *y, int y_stride, int pre)
{
    EV_PART_ENTER(pp, EV_PART_NORM);
    int n;
    if (c <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    if (c > EV__LN_MVE_MAX_C) {
        if (pre)
            ev__layernorm_pre_s8_c(x, x_stride, rows, c, g, b, eps, y, y_stride);
        else
            ev__layernorm_s8_c(x, x_stride, rows, c, g, b, eps, y, y_stride);
        EV_PART_LEAVE(pp);
        return;
    }
    for (n = 0; n < rows; n++) {
        const int8_t *xr = x + (long)n * x_stride;
        int8_t *yr = y + (long)n * y_stride;
        const int8_t *xs = xr;
        const int32_t *gp = g;
        int32_t sum = 0, sumsq = 0;   /* |sum| <= 128 C, sumsq <= 2^14 C */
        uint32_t sigma, inv, d_shift, mult, d_scale, d_offset, b_addr;

        /* 16 values per pass; the last pass's lanes past the row are inactive (add nothing) */
        __asm__ volatile(
            "dlstp.8     lr, %[c]\n"
            "1:\n\t"
            "vldrb.8     q0, [%[p]], #16\n\t"
            "vaddva.s8   %[s], q0\n\t"
            "vmladava.s8 %[q], q0, q0\n\t"
            "letp        lr, 1b"
            : [p] "+r"(xs), [s] "+Te"(sum), [q] "+Te"(sumsq)
            : [c] "r"(c)
            : "q0", "lr", "memory");
        /* sum_i (C x_i - S)^2 / C = C Q - S^2 exactly (>= 0, <= 2^36 at C = 2048) */
        sigma = ev__isqrt_udiv((uint64_t)((int64_t)c * sumsq - (int64_t)sum * sum) + (uint64_t)eps);
        if (sigma == 0)
            sigma = 1;   /* constant row without eps: d == 0, any sigma gives 0 */
        inv = 0x80000000u / sigma;
        /* n = floor(d inv / 2^19) = VQDMULH(d 2^d_shift, mult) = floor(d 2^d_shift mult / 2^31)
         * with mult = inv / 2^(d_shift - 12) < 2^31 */
        d_shift = inv == 0x80000000u ? 13 : 12;
        mult = inv == 0x80000000u ? 0x40000000u : inv;
        /* d 2^d_shift = x (C 2^d_shift) - S 2^d_shift, wrapping: the result fits int32 */
        d_scale = (uint32_t)c << d_shift;
        d_offset = 0u - ((uint32_t)sum << d_shift);
        /* q5 = the addresses of words 0, 2, 4, 6 of b[0..3], less the 32 bytes the first gather
         * adds: each pass loads the low words with writeback (+32: the next 4 int64) and the high
         * words at +4 */
        b_addr = (uint32_t)(uintptr_t)b - 32;
        if (pre) {
            /* y = hi(n g') + hi(b') + the carry out of lo(n g') + lo(b'), that carry being bit 31
             * of their halved sum (VHADD.U32); |hi(n g')| < 2^17 and |hi(b')| <= 2^30, so the
             * sum fits int32 and the narrows clamp it: 15 instructions per 4 values (16 below) */
            __asm__ volatile(
                "vdup.32     q4, %[ds]\n\t"
                "vidup.u32   q5, %[ba], #8\n\t"
                "dlstp.32    lr, %[c]\n"
                "1:\n\t"
                "vldrb.s32   q0, [%[x]], #4\n\t"
                "vmlas.s32   q0, q4, %[off]\n\t"      /* d 2^d_shift */
                "vqdmulh.s32 q0, q0, %[m]\n\t"        /* n */
                "vldrw.u32   q1, [%[g]], #16\n\t"
                "vmulh.s32   q2, q0, q1\n\t"          /* n g' = hi 2^32 + lo */
                "vmul.i32    q0, q0, q1\n\t"
                "vldrw.u32   q1, [q5, #32]!\n\t"      /* b''s low words */
                "vldrw.u32   q3, [q5, #4]\n\t"        /* b''s high words */
                "vhadd.u32   q0, q0, q1\n\t"          /* floor((lo + b'_lo) / 2) */
                "vadd.i32    q2, q2, q3\n\t"
                "vshr.u32    q0, q0, #31\n\t"         /* the carry of lo + b'_lo */
                "vadd.i32    q2, q2, q0\n\t"
                "vqmovnb.s32 q1, q2\n\t"              /* clamp: int32 -> int16 -> int8 */
                "vqmovnb.s16 q3, q1\n\t"
                "vstrb.32    q3, [%[y]], #4\n\t"
                "letp        lr, 1b"
                : [x] "+l"(xr), [g] "+r"(gp), [y] "+l"(yr), [ba] "+Te"(b_addr)
                : [ds] "r"(d_scale), [off] "r"(d_offset), [m] "r"(mult), [c] "r"(c)
                : "q0", "q1", "q2", "q3", "q4", "q5", "lr", "memory");
            continue;
        }
        __asm__ volatile(
            "vdup.32     q4, %[ds]\n\t"
            "vidup.u32   q5, %[ba], #8\n\t"
            "dlstp.32    lr, %[c]\n"
            "1:\n\t"
            "vldrb.s32   q0, [%[x]], #4\n\t"
            "vmlas.s32   q0, q4, %[off]\n\t"      /* d 2^d_shift */
            "vqdmulh.s32 q0, q0, %[m]\n\t"        /* n */
            "vldrw.u32   q1, [%[g]], #16\n\t"
            "vmulh.s32   q2, q0, q1\n\t"          /* n g = hi 2^32 + lo */
            "vmul.i32    q0, q0, q1\n\t"
            "vldrw.u32   q1, [q5, #32]!\n\t"      /* b's low words */
            "vldrw.u32   q3, [q5, #4]\n\t"        /* b's high words */
            "vhadd.u32   q0, q0, q1\n\t"          /* floor((lo + b_lo) / 2) */
            "vadd.i32    q2, q2, q3\n\t"          /* H = hi + b_hi: |H| < 2^30 + 2^19 */
            "vrshr.u32   q0, q0, #27\n\t"         /* floor((lo + b_lo + 2^27) / 2^28) */
            "vqshl.s32   q2, q2, #4\n\t"
            "vqadd.s32   q2, q2, q0\n\t"          /* 16 H + that, saturating */
            "vqmovnb.s32 q1, q2\n\t"              /* clamp: int32 -> int16 -> int8 */
            "vqmovnb.s16 q3, q1\n\t"
            "vstrb.32    q3, [%[y]], #4\n\t"
            "letp        lr, 1b"
            : [x] "+l"(xr), [g] "+r"(gp), [y] "+l"(yr), [ba] "+Te"(b_addr)
            : [ds] "r"(d_scale), [off] "r"(d_offset), [m] "r"(mult), [c] "r"(c)
            : "q0", "q1", "q2", "q3", "q4", "q5", "lr", "memory");
    }
    EV_PART_LEAVE(pp);
}

void ev_layernorm_s8(const int8_t *x, int x_stride, int rows, int c,
                     const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_mve(x, x_stride, rows, c, g, b, eps, y, y_stride, 0);
}

void ev_layernorm_pre_s8(const int8_t *x, int x_stride, int rows, int c,
                         const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride)
{
    ev__layernorm_mve(x, x_stride, rows, c, g, b, eps, y, y_stride, 1);
}

void ev_softmax_s8(const int8_t *x, int len, const uint16_t *lut, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_SOFTMAX);
    int i;
    int32_t mx = -128;
    uint32_t total = 0, half, recip;
    const int8_t *xp = x;
    const uint16_t *base;
    if (len <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    __asm__ volatile(
        "dlstp.8     lr, %[n]\n"
        "1:\n\t"
        "vldrb.8     q0, [%[p]], #16\n\t"
        "vmaxv.s8    %[m], q0\n\t"
        "letp        lr, 1b"
        : [p] "+r"(xp), [m] "+r"(mx) : [n] "r"(len) : "q0", "lr", "memory");
    mx = (int8_t)mx;   /* VMAXV.S8 defines the low byte */
    /* lut[x - max + 255] = base[x + 128], x + 128 in [0, 255] */
    base = lut + (127 - mx);
    xp = x;
    __asm__ volatile(
        "dlstp.16    lr, %[n]\n"
        "1:\n\t"
        "vldrb.s16   q0, [%[p]], #8\n\t"
        "vadd.i16    q0, q0, %[k]\n\t"
        "vldrh.u16   q1, [%[b], q0, uxtw #1]\n\t"
        "vaddva.u16  %[t], q1\n\t"
        "letp        lr, 1b"
        : [p] "+l"(xp), [t] "+Te"(total) : [n] "r"(len), [b] "r"(base), [k] "r"(128)
        : "q0", "q1", "lr", "memory");
    if (total == 0) {
        /* only with a degenerate table (zero at the row maximum); numpy's x // 0 gives 0 */
        for (i = 0; i < len; i++)
            y[i] = 0;
        EV_PART_LEAVE(pp);
        return;
    }
    half = total >> 1;
    recip = 0xFFFFFFFFu / total;   /* total < 2^31 (ev_kernels.h: len <= 32768) */
    __asm__ volatile(
        "vdup.32     q2, %[c127]\n\t"
        "vdup.32     q3, %[r]\n\t"
        "dlstp.32    lr, %[n]\n"
        "1:\n\t"
        "vldrb.s32   q0, [%[p]], #4\n\t"
        "vadd.i32    q0, q0, %[k]\n\t"
        "vldrh.u32   q1, [%[b], q0, uxtw #1]\n\t"  /* e */
        "vmlas.u32   q1, q2, %[h]\n\t"             /* num = 127 e + total/2 < 2^32 */
        "vmulh.u32   q0, q1, q3\n\t"               /* the quotient or 1 less */
        "vmla.u32    q1, q0, %[nt]\n\t"            /* num - q0 total < 2 total */
        "vpt.u32     cs, q1, %[t]\n\t"
        "vaddt.i32   q0, q0, %[one]\n\t"
        "vstrb.32    q0, [%[y]], #4\n\t"           /* <= 127 */
        "letp        lr, 1b"
        : [p] "+l"(x), [y] "+l"(y)
        : [n] "r"(len), [b] "r"(base), [k] "r"(128), [c127] "r"(127), [r] "r"(recip), [h] "r"(half),
          [nt] "r"(0u - total), [t] "r"(total), [one] "r"(1)
        : "q0", "q1", "q2", "q3", "lr", "memory");
    EV_PART_LEAVE(pp);
}

#endif /* EV_KERNELS_MVE */
