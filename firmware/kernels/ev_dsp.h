/* Private to firmware/kernels: what the matrix kernels of ev_linear.c (ev_linear_s8) and
 * ev_attention.c (q.k, p.v) share. Not part of the API (ev_kernels.h): every name starts with
 * ev__, and the functions are hidden from a shared library's exports (EV__PRIVATE).
 *
 *  - ev_linear.c's matrix core (ev__gemm, ev__gemm_scalar), which the single-row q.k kernel also
 *    runs, and the scalar dot product of both paths (ev__dot_tail).
 *  - DSP build (EV_KERNELS_DSP): the SMLAD/SXTB16 helpers both files use (widening, LDRD/STRD,
 *    requantisation, the 1 x 2 tile) as static inline functions, so that each file inlines them
 *    exactly as ev_linear.c did when it held both; and the prototypes of the assembly routines
 *    both call (ev__t42, ev__t42r in ev_linear_m7.S).
 *  - Assembly sources (ev_*_m7.S include this file with __ASSEMBLER__ defined): the macros that
 *    open and close a routine. EV__RK_MAXQ is read by both languages.
 */
#ifndef EV_DSP_H
#define EV_DSP_H

#include "ev_kernels.h"

/* ev__rk4's unrolled MAC chain (ev_attention_m7.S) covers 1..EV__RK_MAXQ groups of 4 inputs;
 * ev_attention.c sends it only reductions that fit (dh or keys <= 4 * EV__RK_MAXQ). */
#define EV__RK_MAXQ 128

#ifdef __ASSEMBLER__

#if EV_KERNELS_DSP || EV_KERNELS_V7M || EV_KERNELS_V6M
/* Every assembly routine: a hidden global Thumb function in a section of its own (so the
 * linker drops the unused ones), word aligned (ev__rk4 takes its chain's address with ADR). */
.macro EV__FN_BEGIN name
    .section .text.\name,"ax",%progbits
    .balign 4
    .global \name
    .hidden \name
    .thumb_func
    .type \name, %function
\name:
.endm
.macro EV__FN_END name
    .size \name, .-\name
.endm
#endif /* EV_KERNELS_DSP || EV_KERNELS_V7M || EV_KERNELS_V6M */

#if EV_KERNELS_DSP && !EV_KERNELS_MVE
/* The 4 rows x 2 channels MAC loop of ev__t42 (ev_linear_m7.S, which explains the tile) and of
 * ev_tfl__t42s (ev_tfl_m7.S): r0 xq, r1 wb, r2 = kq on entry, the wb end pointer at [sp, #4],
 * accumulators r4-r11; r2, r3, r12, lr are clobbered. */
.macro EV__T42_HALF
    ldrd r2, r3, [r0], #8
    ldrd r12, lr, [r1], #8
    smlad r4, r2, r12, r4
    smlad r5, r2, lr, r5
    smlad r6, r3, r12, r6
    smlad r7, r3, lr, r7
    ldrd r2, r3, [r0], #8
    smlad r8, r2, r12, r8
    smlad r9, r2, lr, r9
    smlad r10, r3, r12, r10
    smlad r11, r3, lr, r11
.endm
.macro EV__T42_GROUP
    EV__T42_HALF
    EV__T42_HALF
.endm

/* ev__t42's loop: kq (>= 1) groups, r2 = kq on entry, the wb end pointer at [sp, #4]. kq % 4
 * groups first (one, then two), then four groups per iteration: the end test (LDR + CMP + BNE,
 * no register is free to hold the end) costs 3 instructions per 128 MACs. */
.macro EV__T42_LOOP
    lsls r2, r2, #31            /* Z: kq even; C: bit 1 of kq */
    beq 1f
    EV__T42_GROUP
1:
    bcc 2f
    EV__T42_GROUP
    EV__T42_GROUP
2:
    ldr r2, [sp, #4]
    cmp r1, r2
    beq 4f
3:
    EV__T42_GROUP
    EV__T42_GROUP
    EV__T42_GROUP
    EV__T42_GROUP
    ldr r2, [sp, #4]
    cmp r1, r2
    bne 3b
4:
.endm
#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */

#else /* C */

#include <stddef.h>
#include <string.h>

#if EV_KERNELS_DSP
#include <arm_acle.h>
#endif

#if defined(__GNUC__) && defined(__ELF__)
#define EV__PRIVATE __attribute__((visibility("hidden")))
#else
#define EV__PRIVATE
#endif

/* Portable path. Also the scalar tail code of the DSP path (dot products of the last k). */
static inline uint32_t ev__dot_tail(const int8_t *a, const int8_t *b, int n, uint32_t acc)
{
    int k;
    for (k = 0; k < n; k++)
        acc += (uint32_t)((int32_t)a[k] * b[k]);
    return acc;
}

/* ev__gemm one output at a time (ev_linear.c): the portable path, and the DSP path's choice for
 * inputs shorter than 8, where setting up SMLAD tiles costs more than it saves. */
EV__PRIVATE void ev__gemm_scalar(const int8_t *x, int x_stride, int rows, int in, int out,
                                 const int8_t *w, int w_stride, const int32_t *bias,
                                 int bias_row_stride, const int32_t *mult, const int8_t *shift,
                                 int qstep, const int8_t *lut, int8_t *y, int y_stride);

/* Shared core: y[n][o] = finish(bias + sum_k x[n][k] * w[o][k]) with
 *   w row o at w + o * w_stride, bias NULL (0) or bias[n * bias_row_stride + o],
 *   m/s per channel when qstep == 1 or the same for all channels when qstep == 0.
 * ev_linear_s8 and ev_attn_scores_row (x = q, w = keys) are both this. The DSP build's is in
 * ev_linear.c, the Cortex-M3 / M0+ builds' in ev_gemm_nodsp.c; the portable one is ev__gemm_scalar. */
#if EV_KERNELS_DSP || EV_KERNELS_V7M || EV_KERNELS_V6M   /* the latter two: ev_gemm_nodsp.c */
EV__PRIVATE void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
                          const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
                          const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
                          int8_t *y, int y_stride);
#else
static inline void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
                            const int8_t *w, int w_stride, const int32_t *bias,
                            int bias_row_stride, const int32_t *mult, const int8_t *shift,
                            int qstep, const int8_t *lut, int8_t *y, int y_stride)
{
    ev__gemm_scalar(x, x_stride, rows, in, out, w, w_stride, bias, bias_row_stride, mult, shift,
                    qstep, lut, y, y_stride);
}
#endif

/* Row normalisations (ev_norm.c; the MVE build's ev_norm_mve.c): floor(sqrt(v)); in the DSP and
 * MVE builds ev_norm.c's C LayerNorm under another name, for rows wider than their faster paths
 * take; in the MVE build ev_eltwise.c's transposition, for strides longer than Helium's. */
EV__PRIVATE uint32_t ev__isqrt64(uint64_t v);
#if EV_KERNELS_DSP
/* floor(sqrt(v)) for the DSP and Helium LayerNorms: below 2^32 Newton's integer iteration with
 * UDIV (about 30 instructions where ev__isqrt64's digit loop takes ~150) from 2^ceil(bits / 2) >
 * sqrt(v), which decreases strictly until it reaches the floor and then stops decreasing; larger v
 * go to ev__isqrt64. Inline: one call per row, and each row kernel keeps its registers. */
static inline uint32_t ev__isqrt_udiv(uint64_t v)
{
    uint32_t v32 = (uint32_t)v, root, next;
    if (v >> 32)
        return ev__isqrt64(v);
    if (v32 < 2)
        return v32;
    root = (uint32_t)1 << ((33 - __builtin_clz(v32)) >> 1);   /* <= 2^16: root + v / root fits */
    for (;;) {
        next = (root + v32 / root) >> 1;
        if (next >= root)
            return root;
        root = next;
    }
}
EV__PRIVATE void ev__layernorm_s8_c(const int8_t *x, int x_stride, int rows, int c, const int32_t *g,
                                    const int64_t *b, int64_t eps, int8_t *y, int y_stride);
EV__PRIVATE void ev__layernorm_pre_s8_c(const int8_t *x, int x_stride, int rows, int c, const int32_t *g,
                                        const int64_t *b, int64_t eps, int8_t *y, int y_stride);
#endif
#if EV_KERNELS_MVE
EV__PRIVATE void ev__transpose_s8_c(const int8_t *x, int rows, int cols, int8_t *y, int y_stride);
#endif

#if EV_KERNELS_DSP

/* ------------------------------------------------------------------------------------------ */
/* Cortex-M7 DSP helpers.
 *
 * SMLAD multiplies two pairs of signed 16-bit halves and adds both products: 2 MACs in one
 * instruction. An int8 word is widened with SXTB16 (bytes 0 and 2) and SXTB16 ROR 8 (bytes 1
 * and 3); pairing widened x and w words the same way,
 *   smlad(lo(x), lo(w)) + smlad(hi(x), hi(w)) = x0 w0 + x1 w1 + x2 w2 + x3 w3.
 * Widening costs one instruction per two values, as much as the SMLAD it feeds, so widened words
 * must be reused (ev_linear.c says how ev_linear_s8 does it, ev_attention.c how the attention
 * kernels do). A widened group of 4 inputs is a pair of words (bytes 0/2, bytes 1/3); two rows
 * (or two channels) are interleaved half by half, (a lo, b lo, a hi, b hi), so one LDRD fetches
 * the same half of both and one pointer walks both; a row quad is interleaved the same way,
 * (x0 lo, x1 lo, x2 lo, x3 lo, x0 hi, ..). */

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

/* Widen four rows group by group in ev__t42's order. */
static inline void ev__widen4(const int8_t *a, int xs, int kq, uint32_t *dst)
{
    const int8_t *b = a + xs, *c = b + xs, *d = c + xs;
    const uint32_t *end = dst + 8 * kq;
    while (dst != end) {
        uint32_t u = ev__ld32(a), v = ev__ld32(b), t = ev__ld32(c), z = ev__ld32(d);
        a += 4;
        b += 4;
        c += 4;
        d += 4;
        EV__STRD(EV__LO(u), EV__LO(v), dst);
        EV__STRD(EV__LO(t), EV__LO(z), dst);
        EV__STRD(EV__HI(u), EV__HI(v), dst);
        EV__STRD(EV__HI(t), EV__HI(z), dst);
    }
}

/* Requantisation for s > 32 (r = 2^(t-1), t = s - 32 >= 1). SMMLA gives the top word of
 * (r << 32) + acc * m, which is r + floor(acc * m / 2^32) exactly (|acc * m| < 2^62 and
 * r <= 2^29, so the 64-bit sum cannot overflow and the top word is hi + r with |hi| <= 2^30):
 * ev_requant's hi + 2^(t-1) in one instruction instead of SMULL + ADD. Then ASR t and SSAT 8:
 * 3 instructions per output before the store. tests/test_kernels_mcu.py
 * checks it against intmath over every shift 33..62, extreme multipliers and accumulators, and
 * exact rounding ties. */
static inline __attribute__((always_inline)) int32_t ev__smmla(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmla %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* Requantisation with the per-channel work done once per channel: for s > 32 (the usual case)
 * ev_requant's fast form is SMMLA + ASR + SSAT (above); smaller shifts take ev_requant itself. */
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
        v = __ssat(ev__smmla((int32_t)acc, q->m, q->r) >> q->t, 8);
    } else if (q->s == 32) {   /* attention's shift: (acc m + 2^31) >> 32 is SMMULR */
        __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"((int32_t)acc), "r"(q->m));
        v = __ssat(v, 8);
    } else {
        v = ev_requant((int32_t)acc, q->m, q->s);
    }
    return lut ? lut[v + 128] : (int8_t)v;
}

/* 2 widened rows (x0 lo, x1 lo, x0 hi, x1 hi per group: ev__widen2) x 2 channels widened on the fly:
 * 2 LDRD + 2 LDR + 4 SXTB16 + 8 SMLAD per 16 MACs (path B's row pairs; attention's last 2 rows). */
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

/* The assembly routines read their operand structs at fixed offsets: a build whose layout differs
 * fails here (an array of size -1) instead of in the routine. C99 has no _Static_assert. */
#define EV__ASM_OFFSET(type, field, off)                                                       \
    typedef char ev__asm_offset_##type##_##field[offsetof(struct type, field) == (off) ? 1 : -1]

/* 4 widened rows x 2 widened channels, in assembly (ev_linear_m7.S, which explains why and how).
 * xq per group: (x0 lo, x1 lo, x2 lo, x3 lo, x0 hi, x1 hi, x2 hi, x3 hi); wb per group: (w0 lo,
 * w1 lo, w0 hi, w1 hi). acc[2r + c] = init[2r + c] + row r . channel c over kq >= 1 groups.
 * Called through the AAPCS: r0 xq, r1 wb, r2 kq, r3 init, [sp] acc. */
EV__PRIVATE void ev__t42(const uint32_t *xq, const uint32_t *wb, int kq, const uint32_t *init,
                         uint32_t *acc);

/* ev__t42 followed by the requantisation of its 8 sums and their stores, for path A's common
 * case (two real channels, shifts > 32, no in % 4 tail). ev__t42's loop, then per output SMMLA +
 * ASR + SSAT (+ LDRSB from lut + 128 when there is a table) + STRB, so the sums never go
 * through memory and the caller's loop stays small enough for GCC to keep in registers.
 * r3 points at a struct ev__t42q (the offsets are the assembly's): */
struct ev__t42q {
    const uint32_t *init;   /* 0: 8 start values, ev__t42's order */
    int8_t *y;              /* 4: row 0, channel 0; rows at y + r * ys, channel 1 at + 1 */
    int32_t ys;             /* 8 */
    const int8_t *lut;      /* 12: NULL or the table */
    int32_t m0, r0, t0;     /* 16: channel 0's requantisation (ev__q m, r, t) */
    int32_t m1, r1, t1;     /* 28: channel 1's */
};
EV__ASM_OFFSET(ev__t42q, lut, 12);
EV__ASM_OFFSET(ev__t42q, m1, 28);
EV__PRIVATE void ev__t42r(const uint32_t *xq, const uint32_t *wb, int kq, const struct ev__t42q *a);
EV__PRIVATE void ev__t42r_lut(const uint32_t *xq, const uint32_t *wb, int kq,
                              const struct ev__t42q *a);

#if !EV_KERNELS_MVE
/* LayerNorm's per-element loop (ev_norm_m7.S; ev_norm.c says what the constants are), for the
 * DSP builds without MVE. Called through the AAPCS: r0 x, r1 y, r2 c >= 1, r3 k. */
struct ev__ln_row_k {
    const int32_t *g;     /* 0: gamma, Q16 */
    uint32_t scale;       /* 4: C 2^a */
    uint32_t offset;      /* 8: -S 2^a */
    uint32_t mult;        /* 12: inv 2^(13 - a), < 2^31 */
    const int64_t *b;     /* 16: beta, Q28 */
};
EV__ASM_OFFSET(ev__ln_row_k, mult, 12);
EV__ASM_OFFSET(ev__ln_row_k, b, 16);
EV__PRIVATE void ev__ln_row(const int8_t *x, int8_t *y, int c, const struct ev__ln_row_k *k);
/* The same with ev_layernorm_pre_s8's prescaled g and b (the struct's g and b point at those). */
EV__PRIVATE void ev__ln_row_pre(const int8_t *x, int8_t *y, int c, const struct ev__ln_row_k *k);

/* The residual add's per-value loop (ev_eltwise_m7.S), for n a multiple of 4 (>= 4) values;
 * ev_add_s8 does the last n % 4 in C. Called through the AAPCS: r0 a, r1 b, r2 y, r3 n, [sp] k. */
struct ev__add_k {
    int32_t ma, mb;       /* 0, 4 */
    uint32_t round;       /* 8: 2^(shift - 1) */
    int32_t shift;        /* 12 */
};
EV__ASM_OFFSET(ev__add_k, round, 8);
EV__ASM_OFFSET(ev__add_k, shift, 12);
EV__PRIVATE void ev__add4(const int8_t *a, const int8_t *b, int8_t *y, int n,
                          const struct ev__add_k *k);
#endif /* !EV_KERNELS_MVE */

#endif /* EV_KERNELS_DSP */

#endif /* __ASSEMBLER__ */

#endif /* EV_DSP_H */
