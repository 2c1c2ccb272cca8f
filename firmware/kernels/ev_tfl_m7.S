/* Hand-written Cortex-M7 routine of the .tflite kernels (ev_tfl.c), ARMv7E-M DSP instructions:
 *   ev_tfl__t42s   a 4 rows x 2 columns tile (BATCH_MATMUL: operands widened with their zero points
 *                  subtracted, sums from 0; CONV_2D: four patches, sums from the biases), then
 *                  TFLite's requantisation per column as one SMMLAR each (ev_tfl__sm, the output
 *                  zero point in its addend), SSAT and the stores.
 * The MAC loop is ev__t42's (ev_linear_m7.S: 3 LDRD + 8 SMLAD per 16 MACs, the same layouts of the
 * widened rows and columns, ev_dsp.h), repeated here so that file stays as it is. Called through the
 * AAPCS like the routines there; the operand struct (struct ev_tfl__t42s_a, ev_tfl.c) gives the
 * offsets. Only the DSP build without MVE assembles anything here. */
#include "ev_dsp.h"

#if EV_KERNELS_DSP && !EV_KERNELS_MVE

    .syntax unified
    .thumb


/* x = reg, r1 = m, r2 = hz (2^(e-1) + y_zp 2^e), r3 = e >= 1 (the multiplier's shift is <= -1, so
 * x is shifted left by 1): SMMLAR(x << 1, m, hz + (x < 0 ? -1 : 0)) >> e, then SSAT 8 */
.macro EV_TFL__RQ reg
    add lr, r2, \reg, asr #31
    lsl \reg, \reg, #1
    smmlar \reg, \reg, r1, lr
    asr \reg, \reg, r3
    ssat \reg, #8, \reg
.endm

/* ev_tfl__t42s(xq r0, wb r1, kq r2, a r3); a: y 0, ys 4, column 0's m 8, hz 12, e 16, column 1's
 * m 20, hz 24, e 28, init 32 (8 start values, ev__t42's order) */
    EV__FN_BEGIN ev_tfl__t42s
    push {r4-r11, lr}
    ldr r12, [r3, #32]          /* init: 8 start values */
    ldm r12, {r4-r11}
    add r12, r1, r2, lsl #4     /* wb end: 16 bytes per group */
    push {r3, r12}              /* [sp] a, [sp, #4] wb end */
    EV__T42_LOOP                /* ev_dsp.h: ev__t42's MAC loop */
    pop {r3, r12}
    ldrd r0, r12, [r3]          /* y, ys */
    push {r3}
    add r3, r3, #8
    ldm r3, {r1, r2, r3}        /* column 0's m, hz, e */
    EV_TFL__RQ r4
    EV_TFL__RQ r6
    EV_TFL__RQ r8
    EV_TFL__RQ r10
    add lr, r0, r12
    strb r4, [r0]
    strb r6, [lr]
    strb r8, [r0, r12, lsl #1]
    strb r10, [lr, r12, lsl #1]
    add r0, r0, #1
    pop {r3}
    add r3, r3, #20
    ldm r3, {r1, r2, r3}        /* column 1's */
    EV_TFL__RQ r5
    EV_TFL__RQ r7
    EV_TFL__RQ r9
    EV_TFL__RQ r11
    add lr, r0, r12
    strb r5, [r0]
    strb r7, [lr]
    strb r9, [r0, r12, lsl #1]
    strb r11, [lr, r12, lsl #1]
    pop {r4-r11, pc}
    EV__FN_END ev_tfl__t42s

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
