/* Hand-written per-element loop of LayerNorm's DSP path (ev_norm.c, which explains the
 * arithmetic), ARMv7E-M / ARMv8-M Mainline with DSP: the M7, M4 and M33 builds. In assembly
 * because it keeps 12 values in registers, more than GCC finds for an asm statement at -O0 with a
 * frame pointer, and GCC 12's C for it widens SMMUL and SMLAL to 64 x 64-bit products. */
#include "ev_dsp.h"

#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* the MVE build has its own (ev_norm_mve.c) */

    .syntax unified
    .thumb

/* ev__ln_row(x r0, y r1, c r2 >= 1, k r3: struct ev__ln_row_k, ev_dsp.h): for each of c values
 *   da = x (C 2^a) - S 2^a            MLA (modulo 2^32; the value fits int32)
 *   n  = floor(da mult / 2^32)         SMMUL: floor(d inv / 2^19), Q12
 *   P  = n g + b                       SMLAL into b's two words (LDRD)
 *   y  = clamp(floor((P + 2^27) / 2^28)) = ssat8(floor((32 ssat16(hi) + (lo >> 27) + 1) / 2))
 * 12 instructions per value; the loop's 2 per pair of values (the first value of an odd c goes
 * alone). Registers: x r0, y r1, x end r2, g r3, b r12, scale r4, offset r5, mult r6, n r7, g
 * value r8, P r9 (low), r10 (high). y may be x: each value is read before its output is written. */
.macro EV__LN1
    ldrsb r7, [r0], #1
    mla r7, r7, r4, r5
    smmul r7, r7, r6
    ldr r8, [r3], #4
    ldrd r9, r10, [r12], #8
    smlal r9, r10, r7, r8
    lsr r9, r9, #27
    ssat r10, #16, r10
    add r9, r9, r10, lsl #5
    add r9, r9, #1
    ssat r9, #8, r9, asr #1
    strb r9, [r1], #1
.endm

    EV__FN_BEGIN ev__ln_row
    push {r4-r10, lr}
    ldm r3, {r3, r4, r5, r6, r12}    /* g, scale, offset, mult, b */
    tst r2, #1
    add r2, r0, r2                   /* (no flags: beq tests c's low bit) */
    beq 1f
    EV__LN1                          /* odd c: one value alone */
    cmp r0, r2
    beq 2f
1:
    EV__LN1
    EV__LN1
    cmp r0, r2
    bne 1b
2:
    pop {r4-r10, pc}
    EV__FN_END ev__ln_row

/* ev__ln_row_pre(x r0, y r1, c r2 >= 1, k r3): as ev__ln_row with ev_layernorm_pre_s8's
 * constants, g' = 16 g and b' = 16 b + 2^31 (ev_kernels.h): the SMLAL's high word is
 *   floor((n g' + b') / 2^32) = floor((n g + b + 2^27) / 2^28)
 * (|n g'| < 2^59 and |b'| < 2^62 keep the 64-bit sum exact), so y = SSAT #8 of it: 8
 * instructions per value where ev__ln_row spends 12 (its LSR, SSAT #16, 2 ADDs and the halving
 * SSAT become one SSAT). 4 values per pass (the loop's 2 instructions per 4 values) after
 * c mod 4 values alone. Registers as ev__ln_row. */
.macro EV__LNP1
    ldrsb r7, [r0], #1
    mla r7, r7, r4, r5
    smmul r7, r7, r6
    ldr r8, [r3], #4
    ldrd r9, r10, [r12], #8
    smlal r9, r10, r7, r8
    ssat r10, #8, r10
    strb r10, [r1], #1
.endm

    EV__FN_BEGIN ev__ln_row_pre
    push {r4-r10, lr}
    ldm r3, {r3, r4, r5, r6, r12}    /* g', scale, offset, mult, b' */
    add r2, r0, r2                   /* x end */
1:
    sub r7, r2, r0
    tst r7, #3
    beq 2f
    EV__LNP1                         /* c mod 4 values alone, before the passes */
    b 1b
2:
    cmp r0, r2
    beq 4f
3:
    EV__LNP1
    EV__LNP1
    EV__LNP1
    EV__LNP1
    cmp r0, r2
    bne 3b
4:
    pop {r4-r10, pc}
    EV__FN_END ev__ln_row_pre

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
