/* ARMv6-M (Cortex-M0+) matrix tile of ev__gemm (ev_gemm_nodsp.c): 1 x row against 4 channels.
 *
 * Thumb-1 has 8 low registers for nearly everything (MULS and LDRSB take only those), no MLA and
 * LDRSB only with a register offset. So the 5 operand pointers are set to their ends and indexed
 * by one negative counter k that runs up to 0 (ADDS sets Z: the loop ends without a compare),
 * and the 4 accumulators live in the high registers r8-r11, which ADD (high) reaches:
 *   LDRSB x[k]; 4 x (LDRSB w_c[k], MULS, ADD) ; ADDS k ; BNE   = 15 instructions per 4 MACs,
 * against 6-7 per MAC for the portable loop (2 LDRSB + MULS + ADDS + index and loop). Each x byte
 * is loaded once for the 4 channels. A 2 x 2 tile needs a MOV to keep one operand of MULS (which
 * overwrites it) and comes to the same 15; 2 x 3 would need 6 accumulators and 3 temporaries,
 * more than r0-r7 and r8-r12 hold with the 5 pointers.
 *
 * Sums wrap modulo 2^32 like the portable path's uint32_t and the DSP path's SMLAD.
 */
#include "ev_dsp.h"

#if EV_KERNELS_V6M

    .syntax unified
    .thumb

/* ev__t14_v6m(r0: struct ev__t14 *a), see ev_gemm_nodsp.c:
 *   0: x, 4..16: w[0..3], 20: n >= 1, 24..36: acc[0..3] (in: start values, out: the sums)
 * acc[c] += sum_{k < n} x[k] w[c][k]. AAPCS: r4-r11 are preserved. */
EV__FN_BEGIN ev__t14_v6m
    push    {r4-r7, lr}
    mov     r1, r8
    mov     r2, r9
    mov     r3, r10
    mov     r4, r11
    push    {r0-r4}             @ the struct pointer (for the stores) and the caller's r8-r11
    ldr     r1, [r0, #24]
    mov     r8, r1
    ldr     r1, [r0, #28]
    mov     r9, r1
    ldr     r1, [r0, #32]
    mov     r10, r1
    ldr     r1, [r0, #36]
    mov     r11, r1
    ldr     r6, [r0, #20]       @ n
    ldr     r1, [r0, #0]
    ldr     r2, [r0, #4]
    ldr     r3, [r0, #8]
    ldr     r4, [r0, #12]
    ldr     r5, [r0, #16]
    adds    r1, r1, r6          @ every pointer at its end ...
    adds    r2, r2, r6
    adds    r3, r3, r6
    adds    r4, r4, r6
    adds    r5, r5, r6
    rsbs    r6, r6, #0          @ ... and k = -n .. -1
1:
    ldrsb   r0, [r1, r6]        @ x[k], shared by the 4 channels
    ldrsb   r7, [r2, r6]
    muls    r7, r0, r7
    add     r8, r7
    ldrsb   r7, [r3, r6]
    muls    r7, r0, r7
    add     r9, r7
    ldrsb   r7, [r4, r6]
    muls    r7, r0, r7
    add     r10, r7
    ldrsb   r7, [r5, r6]
    muls    r7, r0, r7
    add     r11, r7
    adds    r6, r6, #1
    bne     1b
    pop     {r0-r4}
    mov     r5, r8
    str     r5, [r0, #24]
    mov     r5, r9
    str     r5, [r0, #28]
    mov     r5, r10
    str     r5, [r0, #32]
    mov     r5, r11
    str     r5, [r0, #36]
    mov     r8, r1
    mov     r9, r2
    mov     r10, r3
    mov     r11, r4
    pop     {r4-r7, pc}
EV__FN_END ev__t14_v6m

#endif /* EV_KERNELS_V6M */
