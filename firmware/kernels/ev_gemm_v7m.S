/* ARMv7-M (Cortex-M3) matrix tiles of ev__gemm (ev_gemm_nodsp.c).
 *
 * No SIMD, but Thumb-2 has MLA (multiply-accumulate in one instruction), post-indexed LDRSB (a
 * sign-extending byte load that also advances its pointer) and 13 usable registers. Written in C,
 * GCC 12 -O2 unrolls the 2 x 2 tile into a loop that spills an accumulator and updates every
 * pointer with a separate ADD (about 3.4 instructions per MAC); here each loaded byte serves two
 * MLAs and nothing else is in the loop but its compare and branch:
 *   ev__t22_v7m, 2 rows x 2 channels: 4 LDRSB + 4 MLA per 4 MACs, 4 inputs per iteration:
 *     34 instructions per 16 MACs;
 *   ev__t14_v7m, 1 row x 4 channels: 5 LDRSB + 4 MLA per 4 MACs, 2 inputs per iteration.
 * Loading words and extracting the bytes (SXTB, SBFX, ASR) costs the same one instruction per byte.
 * Sums wrap modulo 2^32 like the portable path's uint32_t.
 */
#include "ev_dsp.h"

#if EV_KERNELS_V7M

    .syntax unified
    .thumb

/* ev__t22_v7m(r0: struct ev__t22 *a), see ev_gemm_nodsp.c:
 *   0: x0, 4: x1, 8: w0, 12: w1, 16: n >= 1, 20..32: acc (x0.w0, x0.w1, x1.w0, x1.w1), in and out */
.macro EV__T22_STEP
    ldrsb   r0, [r1], #1        @ x0[k]
    ldrsb   r6, [r3], #1        @ w0[k]
    ldrsb   r11, [r4], #1       @ w1[k]
    mla     r7, r0, r6, r7
    mla     r8, r0, r11, r8
    ldrsb   r0, [r2], #1        @ x1[k]
    mla     r9, r0, r6, r9
    mla     r10, r0, r11, r10
.endm

EV__FN_BEGIN ev__t22_v7m
    push    {r4-r11, lr}
    push    {r0}                @ for the stores
    ldm     r0, {r1-r5}         @ x0, x1, w0, w1, n
    add     r6, r0, #20
    ldm     r6, {r7-r10}
    bic     lr, r5, #3
    add     lr, r1, lr          @ x0's end of whole groups of 4
    and     r5, r5, #3          @ the 0..3 inputs after them
    cmp     r1, lr
    beq     2f
1:
    EV__T22_STEP
    EV__T22_STEP
    EV__T22_STEP
    EV__T22_STEP
    cmp     r1, lr
    bne     1b
2:
    cbz     r5, 4f
3:
    EV__T22_STEP
    subs    r5, r5, #1
    bne     3b
4:
    pop     {r0}
    add     r6, r0, #20
    stm     r6, {r7-r10}
    pop     {r4-r11, pc}
EV__FN_END ev__t22_v7m

/* ev__t14_v7m(r0: struct ev__t14 *a): 0: x, 4..16: w[0..3], 20: n >= 1, 24..36: acc[c] += x.w[c] */
.macro EV__T14_STEP
    ldrsb   r0, [r1], #1        @ x[k], shared by the 4 channels
    ldrsb   r11, [r2], #1
    mla     r7, r0, r11, r7
    ldrsb   r11, [r3], #1
    mla     r8, r0, r11, r8
    ldrsb   r11, [r4], #1
    mla     r9, r0, r11, r9
    ldrsb   r11, [r5], #1
    mla     r10, r0, r11, r10
.endm

EV__FN_BEGIN ev__t14_v7m
    push    {r4-r11, lr}
    push    {r0}
    ldr     r6, [r0, #20]       @ n
    ldm     r0!, {r1-r5}        @ x, w0..w3; r0 -> n
    adds    r0, r0, #4          @ -> acc
    ldm     r0, {r7-r10}
    bic     lr, r6, #1
    add     lr, r1, lr          @ x's end of whole pairs
    cmp     r1, lr
    beq     2f
1:
    EV__T14_STEP
    EV__T14_STEP
    cmp     r1, lr
    bne     1b
2:
    tst     r6, #1
    beq     3f
    EV__T14_STEP
3:
    pop     {r0}
    add     r6, r0, #24
    stm     r6, {r7-r10}
    pop     {r4-r11, pc}
EV__FN_END ev__t14_v7m

#endif /* EV_KERNELS_V7M */
