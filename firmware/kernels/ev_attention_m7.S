/* Hand-written Cortex-M7 routine of the attention kernels' DSP path (ev_attention.c), ARMv7E-M
 * DSP instructions (SMLAD, SMUAD, SXTB16, SMMULR, SSAT):
 *   ev__rk4    4 widened query rows x n keys (q.k), or 4 probability rows x n head dims over the
 *              qkv split's V^T (p.v), requantised at shift 32
 *
 * Why assembly: 4 accumulators, 4 data words, the widened weight pair, 3 pointers and an end
 * pointer take every allocatable register, and the MAC chain is entered by a computed jump, which
 * C cannot express. Called through the AAPCS from C (ev__scores_rk4): r0 = the operand struct
 * (struct ev__rka, ev_attention.c), r4-r11 and lr saved on entry and restored on return.
 *
 * GNU as, unified syntax, Thumb-2; preprocessed (capital .S) so that the #if below works. Only the
 * DSP build (EV_KERNELS_DSP, ev_kernels.h: __ARM_FEATURE_DSP without EV_PORTABLE) assembles
 * anything here; otherwise this file is empty. The host build does not read it (edgeviz/build.py).
 */
#include "ev_dsp.h"

#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* the MVE build has its own (ev_*_mve.c) */

    .syntax unified
    .thumb

/* ev__rk4: the attention products (q.k, and p.v over the qkv split's V^T) as 4 rows x n channels
 * with one multiplier at shift 32 for every output, which is SMMULR ((acc m + 2^31) >> 32, the
 * same formula as ev_requant) + SSAT: quantize.py gives attention s = 32 for this. The 4 rows are
 * widened once (ev__widen4 order: per group the 4 low halves, then the 4 high halves, LDM four
 * words at a time); channel c's kq weight words start at w + c * (4 kq + w_adv) and are widened
 * in registers as they stream (LDR + 2 SXTB16, shared by the 4 rows): 13 instructions per 16
 * MACs. The first group of a channel uses SMUAD (no accumulator reset); the other kq - 1 groups
 * are the last kq - 1 of an unrolled chain of EV__RK_MAXQ - 1, entered by a jump computed once
 * per call, so there is no loop counter in the MAC loop. Per channel after the MACs: SMMULR +
 * SSAT + STRB per row, one add for the next channel's weights, one for y: 18 instructions.
 *
 * struct ev__rka (ev_attention.c): xq 0, m 4, w_adv 8, ys ys2 ys3 12..20, w 24, y 28, n 32, kq 36.
 * Its first six words are copied into a 32-byte frame, [sp, #24] holds the chain's entry (the
 * address with the Thumb bit, loaded into pc once per channel). */

/* One group of 4 inputs: xq r0, w r1, y r2, wl r3, wh r12, acc r4-r7, x r8-r11, y end lr.
 * first = 1: SMUAD starts the accumulators (a channel's first group), else SMLAD adds. 13 32-bit
 * instructions, 52 bytes (the entry computation below counts on it: hence the .w forms). */
.macro EV__RK4_GROUP first
    ldr.w r12, [r1], #4
    sxtb16 r3, r12
    sxtb16 r12, r12, ror #8
    ldm.w r0!, {r8-r11}
    .if \first
    smuad r4, r8, r3
    smuad r5, r9, r3
    smuad r6, r10, r3
    smuad r7, r11, r3
    .else
    smlad r4, r8, r3, r4
    smlad r5, r9, r3, r5
    smlad r6, r10, r3, r6
    smlad r7, r11, r3, r7
    .endif
    ldm.w r0!, {r8-r11}
    smlad r4, r8, r12, r4
    smlad r5, r9, r12, r5
    smlad r6, r10, r12, r6
    smlad r7, r11, r12, r7
.endm

    EV__FN_BEGIN ev__rk4
    push {r4-r11, lr}
    sub sp, sp, #32
    ldm r0!, {r1-r6}
    stm sp, {r1-r6}             /* xq, m, w_adv, ys, ys2, ys3; [sp, #24]: the entry */
    ldm r0, {r1, r2, r4, r5}    /* w, y, n, kq */
    add lr, r2, r4
    /* the entry: past the first group and the jump, the chain's first EV__RK_MAXQ - kq groups
     * skipped (from 1f, not back from 9f: the chain is longer than ADR's 4 KiB reach) */
    adr.w r3, 1f
    rsb r5, r5, #EV__RK_MAXQ
    mov r12, #52
    mla r3, r12, r5, r3
    add r3, r3, #(52 + 4 + 1)   /* + 1: the Thumb bit */
    str r3, [sp, #24]
    ldr r0, [sp]
1:
    EV__RK4_GROUP 1
    ldr.w pc, [sp, #24]
    .rept EV__RK_MAXQ - 1
    EV__RK4_GROUP 0
    .endr
9:
    .if (9b - 1b) != 52 + 4 + 52 * (EV__RK_MAXQ - 1)
    .error "ev__rk4: the entry computation counts 52-byte groups and a 4-byte jump"
    .endif
    ldm sp, {r0, r3, r8-r11}    /* xq, m, w_adv, ys, ys2, ys3 */
    add r1, r1, r8
    smmulr r4, r4, r3
    ssat r4, #8, r4
    smmulr r5, r5, r3
    ssat r5, #8, r5
    smmulr r6, r6, r3
    ssat r6, #8, r6
    smmulr r7, r7, r3
    ssat r7, #8, r7
    strb r4, [r2]
    strb r5, [r2, r9]
    strb r6, [r2, r10]
    strb r7, [r2, r11]
    add r2, r2, #1
    cmp r2, lr
    bne 1b
    add sp, sp, #32
    pop {r4-r11, pc}
    EV__FN_END ev__rk4

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
