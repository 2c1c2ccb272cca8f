/* Hand-written per-element loop of the residual add's DSP path (ev_eltwise.c), ARMv7E-M /
 * ARMv8-M Mainline with DSP: the M7, M4 and M33 builds. GCC 12's C for the same loop spends 16
 * instructions per value (byte loads, a compare-and-branch clamp, the loop); this one takes 8.
 * Only the DSP build without MVE assembles anything here (EV_KERNELS_DSP, ev_kernels.h). */
#include "ev_dsp.h"

#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* the MVE build has its own (ev_eltwise_mve.c) */

    .syntax unified
    .thumb

/* ev__add4(a r0, b r1, y r2, n r3 = a multiple of 4, >= 4; [sp]: struct ev__add_k, ev_dsp.h):
 * per value y = ssat8((a ma + 2^(shift - 1) + b mb) >> shift), intmath.add: MLA wraps modulo
 * 2^32 as intmath's int32 does, ASR by register is its arithmetic >>. Per 4 values: one word of a
 * and one of b (LDR), then per value SXTB (ROR 0, 8, 16, 24) of each, MLA, MLA, ASR, SSAT,
 * STRB; the loop's CMP + BNE: 32 instructions. Both words are read before any of their 4 outputs
 * is written, so y may be a or b. Registers: ma r4, mb r5, round r6, shift r7, a word r8, b word
 * r9, value r10, r11, end r3. */
.macro EV__ADD1 rot
    sxtb r10, r8, ror #\rot
    sxtb r11, r9, ror #\rot
    mla r10, r10, r4, r6
    mla r10, r11, r5, r10
    asr r10, r10, r7
    ssat r10, #8, r10
    strb r10, [r2], #1
.endm

    EV__FN_BEGIN ev__add4
    push {r4-r11, lr}
    ldr r12, [sp, #36]               /* the fifth argument: the constants */
    ldm r12, {r4-r7}                 /* ma, mb, round, shift */
    add r3, r0, r3
1:
    ldr r8, [r0], #4
    ldr r9, [r1], #4
    EV__ADD1 0
    EV__ADD1 8
    EV__ADD1 16
    EV__ADD1 24
    cmp r0, r3
    bne 1b
    pop {r4-r11, pc}
    EV__FN_END ev__add4

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
