/* Hand-written Cortex-M7 routines of ev_linear_s8's DSP path (ev_linear.c), ARMv7E-M DSP
 * instructions (SMLAD, SXTB16, SMMLA, SSAT):
 *   ev__t42, ev__t42r, ev__t42r_lut   4 widened rows x 2 widened channels (path A; the attention
 *                                     quads of ev_attention.c use them too), ev_dsp.h
 *   ev__rs4, ev__rs5 (and _lut)       path S: 4 / 5 widened rows x every channel, weights
 *                                     widened as they stream, requantised and stored
 *   ev__rs4p, ev__rs5p                the same MAC loops over one chunk of the inputs, partial
 *                                     sums stored back (path S over input chunks)
 *   ev__r1c4                          one widened row x 4 channels at a time (a lone row)
 *   ev__widen4a                       ev__widen4 (4 rows widened) for path S's blocks
 *   ev__rs2 (and _lut)                two widened rows x 2 channels at a time (a row pair)
 *
 * Why assembly: these loops need every one of the 14 allocatable registers (8 or 5 accumulators,
 * the data words, 2-3 pointers), which C with inline asm cannot get from GCC (at -O0 with a frame
 * pointer it has 13). Each routine is called through the AAPCS from C: arguments in r0-r3 (and
 * [sp]), r4-r11 and lr saved on entry and restored on return; the operand structs (ev__t42q in
 * ev_dsp.h, ev__rsa in ev_linear.c) give the offsets the loads below use.
 *
 * GNU as, unified syntax, Thumb-2; preprocessed (capital .S) so that the #if below works. Only the
 * DSP build (EV_KERNELS_DSP, ev_kernels.h: __ARM_FEATURE_DSP without EV_PORTABLE) assembles
 * anything here; otherwise this file is empty. The host build does not read it (edgeviz/build.py).
 */
#include "ev_dsp.h"

#if EV_KERNELS_DSP && !EV_KERNELS_MVE   /* the MVE build has its own (ev_*_mve.c) */

    .syntax unified
    .thumb

/* ------------------------------------------------------------------------------------------ */
/* ev__t42(xq r0, wb r1, kq r2, init r3, acc [sp]): acc[2r + c] = init[2r + c] + row r . channel c
 * over kq >= 1 groups; the layouts of xq (4 rows) and wb (2 channels) are in ev_dsp.h.
 *
 * Per half group: LDRD x0,x1 + LDRD w0,w1 + 4 SMLAD + LDRD x2,x3 + 4 SMLAD, i.e. 3 loads and
 * 8 SMLAD per 16 MACs (1.45 MACs/instruction) against 4 + 8 for the 2 x 2 tile (1.33): each
 * widened weight pair feeds four rows. That needs 8 accumulators, 4 data registers and 2
 * pointers, all 14 allocatable registers, which C with inline asm cannot get from GCC (and at
 * -O0 with a frame pointer has 13): hence a whole assembly routine. The end pointer lives on
 * the stack and is reloaded into a free data register once per two groups (3 instructions per
 * 64 MACs).
 *
 * Registers in the MAC loop: r0 xq, r1 wb, r2/r3 a pair of x words (rows 0/1, then 2/3),
 * r12/lr the weight pair (channel 0 / 1), r4-r11 the accumulators acc[0..7]. The loop is the
 * macro EV__T42_LOOP in ev_dsp.h (ev_tfl_m7.S runs it too). */

    EV__FN_BEGIN ev__t42
    push {r4-r11, lr}
    ldm r3, {r4-r11}
    add r12, r1, r2, lsl #4     /* wb end: 16 bytes per group */
    push {r3, r12}              /* wb end at [sp, #4]; acc now at [sp, #44] */
    EV__T42_LOOP
    ldr r3, [sp, #44]
    stm r3, {r4-r11}
    add sp, sp, #8
    pop {r4-r11, pc}
    EV__FN_END ev__t42

/* ev__t42r(xq r0, wb r1, kq r2, a r3) / ev__t42r_lut: ev__t42's loop with a->init as the start
 * values, then the 8 sums requantised and stored without going through memory (struct ev__t42q,
 * ev_dsp.h: init 0, y 4, ys 8, lut 12, m0 r0 t0 16, m1 r1 t1 28).
 *
 * After the loop the accumulators stay in r4-r11 (acc[2r + c]: channel 0 in r4, r6, r8, r10,
 * channel 1 in r5, r7, r9, r11); r0 = y, r12 = ys, lr = lut + 128 (index by the signed value),
 * r1-r3 = one channel's m, round 2^(t-1), t. Per output SMMLA + ASR + SSAT (+ LDRSB from the
 * table) + STRB; a channel's four rows go to r0, r0 + ys, r0 + 2 ys, r0 + 3 ys (r2 = r0 + ys once
 * the round is no longer needed). */
.macro EV__T42R_RQ reg          /* acc register requantised with r1 = m, r2 = round, r3 = shift */
    smmla \reg, \reg, r1, r2
    asr \reg, \reg, r3
    ssat \reg, #8, \reg
.endm
.macro EV__T42R_BODY name, lut
    EV__FN_BEGIN \name
    push {r4-r11, lr}
    ldr r12, [r3]
    ldm r12, {r4-r11}
    add r12, r1, r2, lsl #4
    push {r3, r12}              /* [sp] a, [sp, #4] wb end */
    EV__T42_LOOP
    pop {r3, r12}
    ldrd r0, r12, [r3, #4]      /* y, ys */
    ldr lr, [r3, #12]
    add lr, lr, #128            /* lut + 128: index by the signed value */
    push {r3}
    add r3, r3, #16
    ldm r3, {r1, r2, r3}
    EV__T42R_RQ r4
    EV__T42R_RQ r6
    EV__T42R_RQ r8
    EV__T42R_RQ r10
    .if \lut
    ldrsb r4, [lr, r4]
    ldrsb r6, [lr, r6]
    ldrsb r8, [lr, r8]
    ldrsb r10, [lr, r10]
    .endif
    add r2, r0, r12
    strb r4, [r0]
    strb r6, [r2]
    strb r8, [r0, r12, lsl #1]
    strb r10, [r2, r12, lsl #1]
    pop {r3}
    add r0, r0, #1
    add r3, r3, #28
    ldm r3, {r1, r2, r3}
    EV__T42R_RQ r5
    EV__T42R_RQ r7
    EV__T42R_RQ r9
    EV__T42R_RQ r11
    .if \lut
    ldrsb r5, [lr, r5]
    ldrsb r7, [lr, r7]
    ldrsb r9, [lr, r9]
    ldrsb r11, [lr, r11]
    .endif
    add r2, r0, r12
    strb r5, [r0]
    strb r7, [r2]
    strb r9, [r0, r12, lsl #1]
    strb r11, [r2, r12, lsl #1]
    pop {r4-r11, pc}
    EV__FN_END \name
.endm

    EV__T42R_BODY ev__t42r, 0
    EV__T42R_BODY ev__t42r_lut, 1

/* ------------------------------------------------------------------------------------------ */
/* Path S (ev_linear.c says when and how ev__stream calls these): int ev__rs4(const struct ev__rsa
 * *a), int ev__rs5(a), void ev__rs4p(a), void ev__rs5p(a), a in r0.
 *
 * Every per-channel pointer of struct ev__rsa (ev_linear.c) is end-relative (base + out) and
 * indexed by a negative channel index in lr, so that the channel loop ends on ADDS + BNE. The
 * struct (72 bytes) is copied into the routine's 76-byte stack frame, because sp-relative loads
 * need no register: [sp] b[0..4], [sp, #20] y[0..4], [sp, #40] m, [sp, #44] s, [sp, #48] lut + 128
 * (or 0), [sp, #52] xq, [sp, #56] xq end, [sp, #60] w, [sp, #64] n, [sp, #68] w_adv; [sp, #72]
 * holds the entry into the MAC chain (ev__rs4 / ev__rs5, below).
 *
 * The head leaves r1 = w (the weights stream on from channel to channel: a channel's `in`
 * weights follow the previous one's), r2 = xq end, lr = -n. ev__rs4 / ev__rs5 return 0, or
 * -(channels left) when they stop at a channel with shift <= 32 (C finishes that one). */
.macro EV__RS_HEAD name
    EV__FN_BEGIN \name
    push {r4-r11, lr}
    sub sp, sp, #76
    ldm r0!, {r1-r12}
    stm sp, {r1-r12}
    ldm r0, {r1-r6}
    add r7, sp, #48
    stm r7, {r1-r6}
    ldr r1, [sp, #60]           /* w */
    ldr r2, [sp, #56]           /* xq end */
    rsb lr, r5, #0              /* channel index -n .. -1 */
.endm
.macro EV__RS_TAIL name
    mov r0, lr                  /* 0, or -(channels left) at a shift <= 32 */
    add sp, sp, #76
    pop {r4-r11, pc}
    EV__FN_END \name
.endm
/* R = 4: xq r0, w r1, xq end r2, wl r3, wh r12, acc r4-r7, x r8-r11, channel index lr.
 * Per group LDR + 2 SXTB16 + 2 LDM + 8 SMLAD = 13 instructions per 16 MACs: the weight word is
 * widened once in registers for the 4 rows, the block comes in four words per LDM. */
.macro EV__RS4_GROUP
    ldr r12, [r1], #4
    sxtb16 r3, r12
    sxtb16 r12, r12, ror #8
    ldm r0!, {r8-r11}
    smlad r4, r8, r3, r4
    smlad r5, r9, r3, r5
    smlad r6, r10, r3, r6
    smlad r7, r11, r3, r7
    ldm r0!, {r8-r11}
    smlad r4, r8, r12, r4
    smlad r5, r9, r12, r5
    smlad r6, r10, r12, r6
    smlad r7, r11, r12, r7
.endm
/* One channel's accumulators from b[r], then all its groups, 16 inputs an iteration. */
.macro EV__RS4_MACS
1:
    ldr r0, [sp, #52]
    ldm sp, {r3, r9-r11}
    ldr r4, [r3, lr, lsl #2]
    ldr r5, [r9, lr, lsl #2]
    ldr r6, [r10, lr, lsl #2]
    ldr r7, [r11, lr, lsl #2]
2:
    EV__RS4_GROUP
    EV__RS4_GROUP
    EV__RS4_GROUP
    EV__RS4_GROUP
    cmp r0, r2
    bne 2b
.endm

/* After the MACs: the channel's m (r8) and s (r9); s <= 32 leaves (label 8); else t - 1 = s - 33
 * (r10), round 2^(t-1) (r3), per row SMMLA + ASR by t - 1 + SSAT of that ASR 1 (floor(floor(v /
 * 2^(t-1)) / 2) = floor(v / 2^t): one instruction less per channel than shifting by t, which needs
 * 2^(t-1) from 2^31 >> (32 - t)), the table (r3 = lut + 128) in the _lut variant, and the 4 stores
 * through y[0..3] (r8-r11). The two variants (ev_linear.c picks one per call) leave the table test
 * out of the channel loop. */
.macro EV__RSQ1 reg, m, t1
    smmla \reg, \reg, \m, r3
    asr \reg, \reg, \t1
    ssat \reg, #8, \reg, asr #1
.endm
/* ev__rs4 / ev__rs5 (and _lut) run each channel's groups as one unrolled chain of 16 (64 inputs)
 * instead of a loop of 4: a channel jumps into the chain (LDR PC from the frame, [sp, #72]) where
 * the groups left, kq mod 16 (16 when 0), end at the chain's end, and the loop test follows every
 * 16 groups only: per channel 1 + 2 instructions at up to 64 inputs (3 with ev__rs5's reload of
 * the end) where the loop of 4 took 2 (3) per 16 inputs: at 48 inputs 3 instructions less per
 * channel, at 64 5, at 256 23. EV__RS_ENTRY computes the entry once per call: the chain's start
 * (label 2 below it) + (-kq mod 16) groups of GB bytes (every instruction of a group is a 32-bit
 * one; the chain checks its own length), bit 0 set for the Thumb state. kq = block bytes / (8 R).
 * Uses r3-r5 (free in the head). */
.macro EV__RS_ENTRY r, gb, head=0
    ldr r3, [sp, #52]           /* xq */
    sub r3, r2, r3              /* the block's bytes: 8 R per group */
    mov r4, #(8 * \r)
    udiv r3, r3, r4             /* kq */
    rsb r3, r3, #\head          /* head: groups run before the chain (kq > head) */
    and r3, r3, #15             /* groups to skip: -kq mod 16 */
    adr r4, 2f
    mov r5, #\gb
    mla r3, r3, r5, r4
    orr r3, r3, #1
    str r3, [sp, #72]
.endm
/* ev__rs4's chain: x pointer r12 and weight scratch r0 (EV__RS4_GROUP's roles swapped), so
 * that the x block's start comes in with the biases' pointers in one LDM (see EV__RS4_BODY). */
.macro EV__RS4_GROUPX
    ldr r0, [r1], #4
    sxtb16 r3, r0
    sxtb16 r0, r0, ror #8
    ldm r12!, {r8-r11}
    smlad r4, r8, r3, r4
    smlad r5, r9, r3, r5
    smlad r6, r10, r3, r6
    smlad r7, r11, r3, r7
    ldm r12!, {r8-r11}
    smlad r4, r8, r0, r4
    smlad r5, r9, r0, r5
    smlad r6, r10, r0, r6
    smlad r7, r11, r0, r7
.endm
/* shared = 1 (one bias for the 4 rows, b[3] == b[0]: ev__rs4s): the channel's first group runs
 * before the chain, each row's accumulator starting at the one bias (SMLAD's addend r4, the row 0
 * product last), so the bias is one load where each row took its own (3 instructions less a
 * channel); the chain is then entered for the kq - 1 groups left (EV__RS_ENTRY's head). */
.macro EV__RS4_CHAIN shared, loop4=0, single=0
1:
    .if \shared
    ldrd r3, r12, [sp, #56]     /* b[3] (== b[0]), xq (moved there by EV__RS4_BODY) */
    ldr r4, [r3, lr, lsl #2]
    ldr r0, [r1], #4
    sxtb16 r3, r0
    sxtb16 r0, r0, ror #8
    ldm r12!, {r8-r11}
    smlad r5, r9, r3, r4
    smlad r6, r10, r3, r4
    smlad r7, r11, r3, r4
    smlad r4, r8, r3, r4
    ldm r12!, {r8-r11}
    smlad r4, r8, r0, r4
    smlad r5, r9, r0, r5
    smlad r6, r10, r0, r6
    smlad r7, r11, r0, r7
    .else
    ldm sp, {r3, r9-r12}        /* b[0..3], xq (the frame's b[4] slot, EV__RS4_BODY) */
    ldr r4, [r3, lr, lsl #2]
    ldr r5, [r9, lr, lsl #2]
    ldr r6, [r10, lr, lsl #2]
    ldr r7, [r11, lr, lsl #2]
    .endif
    .if \loop4                  /* a loop of 4 groups instead of the chain: 620 bytes less code */
2:
    .rept 4
    EV__RS4_GROUPX
    .endr
    .else
    ldr pc, [sp, #72]
2:
    .rept 16
    EV__RS4_GROUPX
    .endr
    .if (. - 2b) - 16 * 52
    .error "ev__rs4's chain: a group is not 52 bytes"
    .endif
    .endif
    .if !\single                /* single: the block is one pass of the chain (at most 64 inputs) */
    cmp r12, r2
    bne 2b
    .endif
.endm
.macro EV__RS5_CHAIN
1:
    ldr r0, [sp, #52]
    ldm sp, {r3, r9-r12}
    ldr r4, [r3, lr, lsl #2]
    ldr r5, [r9, lr, lsl #2]
    ldr r6, [r10, lr, lsl #2]
    ldr r7, [r11, lr, lsl #2]
    ldr r8, [r12, lr, lsl #2]
    ldr pc, [sp, #72]
2:
    .rept 16
    EV__RS5_GROUP
    .endr
    .if (. - 2b) - 16 * 64
    .error "ev__rs5's chain: a group is not 64 bytes"
    .endif
    ldr r2, [sp, #56]
    cmp r0, r2
    bne 2b
.endm
/* 4 rows: round r10, m r11, t - 1 r12 */
.macro EV__RSQ4 reg
    smmla \reg, \reg, r11, r10
    asr \reg, \reg, r12
    ssat \reg, #8, \reg, asr #1
.endm
/* The frame's b[4] and y[4] slots (ev__rsa's fifth row, unused with 4 rows) hold xq and 1 for
 * this routine, written once per call: a channel then starts with one LDM of b[0..3] and xq, and
 * ends with one LDM of y[0..3], 1, m and s (2^(t-1) is one LSL of that 1), 33 instructions per
 * channel besides its MACs where the separate loads took 36. */
.macro EV__RS4_BODY name, lut, shared=0, loop4=0, single=0
    EV__RS_HEAD \name
    .if !\loop4
    EV__RS_ENTRY 4, 52, \shared
    .endif
    .if \shared
    /* one bias: b[0..4]'s slots are free, and xq end and w are in r2 / r1 already, so the frame
     * starts with y[0..3], 1, m, s (one LDM from sp at each channel's end) and b[3], xq go to
     * xq end's and w's slots (one LDRD at each channel's start) */
    ldr r10, [sp, #12]          /* b[3] */
    ldr r11, [sp, #52]          /* xq */
    strd r10, r11, [sp, #56]
    add r3, sp, #20
    ldm r3, {r3-r9}             /* y[0..4], m, s */
    mov r7, #1
    stm sp, {r3-r9}             /* y[0..3], 1, m, s */
    .else
    ldr r3, [sp, #52]
    mov r4, #1
    str r3, [sp, #16]           /* xq */
    str r4, [sp, #36]           /* 1 */
    .endif
    EV__RS4_CHAIN \shared, \loop4, \single
    .if \shared
    ldm sp, {r0, r3, r8-r12}    /* y[0..3] r0 r3 r8 r9, 1 r10, m r11, s r12 */
    .else
    add r0, sp, #20
    ldm r0, {r0, r3, r8-r12}    /* y[0..3] r0 r3 r8 r9, 1 r10, m r11, s r12 */
    .endif
    ldr r11, [r11, lr, lsl #2]  /* m */
    ldrsb r12, [r12, lr]        /* s */
    subs r12, r12, #33          /* t - 1 = s - 33; negative: s <= 32 */
    bmi 8f
    lsl r10, r10, r12           /* 2^(t-1) */
    EV__RSQ4 r4
    EV__RSQ4 r5
    EV__RSQ4 r6
    EV__RSQ4 r7
    .if \lut
    ldr r10, [sp, #48]
    ldrsb r4, [r10, r4]
    ldrsb r5, [r10, r5]
    ldrsb r6, [r10, r6]
    ldrsb r7, [r10, r7]
    .endif
    strb r4, [r0, lr]
    strb r5, [r3, lr]
    strb r6, [r8, lr]
    strb r7, [r9, lr]
    adds lr, lr, #1
    bne 1b
8:
    EV__RS_TAIL \name
.endm
/* ev__rs4 / ev__rs4_lut: a bias per row (the patch embedding's position rows); a table with such
 * biases occurs in no model here, so ev__rs4_lut keeps the loop of 4 (less code). ev__rs4s /
 * ev__rs4s_lut: one bias for the 4 rows, every linear of the fused chains. */
    EV__RS4_BODY ev__rs4, 0
    EV__RS4_BODY ev__rs4_lut, 1, 0, 1
    EV__RS4_BODY ev__rs4s, 0, 1
    EV__RS4_BODY ev__rs4s_lut, 1, 1
/* ev__rs4s1: ev__rs4s for blocks of at most 64 inputs (the head group and at most 15 of the
 * chain's 16: one pass), without the chain's end test: 2 instructions less a channel, for 900
 * bytes of code (every linear of up to 64 inputs in the fused chains; the table variant keeps
 * the test, less code) */
    EV__RS4_BODY ev__rs4s1, 0, 1, 0, 1

/* R = 5: xq r0, w r1, wl r2, wh r3, acc r4-r8, x r9-r12, channel index lr; the xq end is
 * reloaded from the frame once per four groups (no register is left for it). Group layout
 * x0l..x4l, x0h..x4h; per group LDR + 2 SXTB16 + 2 LDM + LDRD + 10 SMLAD = 16 per 20 MACs. */
.macro EV__RS5_GROUP
    ldr r3, [r1], #4
    sxtb16 r2, r3
    sxtb16 r3, r3, ror #8
    ldm r0!, {r9-r12}
    smlad r4, r9, r2, r4
    smlad r5, r10, r2, r5
    smlad r6, r11, r2, r6
    smlad r7, r12, r2, r7
    ldm r0!, {r9-r12}
    smlad r8, r9, r2, r8
    smlad r4, r10, r3, r4
    smlad r5, r11, r3, r5
    smlad r6, r12, r3, r6
    ldrd r9, r10, [r0], #8
    smlad r7, r9, r3, r7
    smlad r8, r10, r3, r8
.endm
.macro EV__RS5_MACS
1:
    ldr r0, [sp, #52]
    ldm sp, {r3, r9-r12}
    ldr r4, [r3, lr, lsl #2]
    ldr r5, [r9, lr, lsl #2]
    ldr r6, [r10, lr, lsl #2]
    ldr r7, [r11, lr, lsl #2]
    ldr r8, [r12, lr, lsl #2]
2:
    EV__RS5_GROUP
    EV__RS5_GROUP
    EV__RS5_GROUP
    EV__RS5_GROUP
    ldr r2, [sp, #56]
    cmp r0, r2
    bne 2b
.endm

/* As ev__rs4 with 5 rows: m r9, s r10, t - 1 r11, round r3, y[0..4] in r0, r9-r12. */
.macro EV__RS5_BODY name, lut
    EV__RS_HEAD \name
    EV__RS_ENTRY 5, 64          /* the chain with a table too: a merged tail's 5-row block of an MLP */
    EV__RS5_CHAIN               /* whose inputs are not a multiple of 16 (odd-1head's 24) */
    ldrd r9, r10, [sp, #40]
    ldr r9, [r9, lr, lsl #2]    /* m */
    ldrsb r10, [r10, lr]        /* s */
    subs r11, r10, #33          /* t - 1 */
    bmi 8f
    mov r3, #1
    lsl r3, r3, r11             /* 2^(t-1) */
    EV__RSQ1 r4, r9, r11
    EV__RSQ1 r5, r9, r11
    EV__RSQ1 r6, r9, r11
    EV__RSQ1 r7, r9, r11
    EV__RSQ1 r8, r9, r11
    .if \lut
    ldr r3, [sp, #48]
    ldrsb r4, [r3, r4]
    ldrsb r5, [r3, r5]
    ldrsb r6, [r3, r6]
    ldrsb r7, [r3, r7]
    ldrsb r8, [r3, r8]
    .endif
    add r3, sp, #20
    ldm r3, {r0, r9-r12}
    strb r4, [r0, lr]
    strb r5, [r9, lr]
    strb r6, [r10, lr]
    strb r7, [r11, lr]
    strb r8, [r12, lr]
    adds lr, lr, #1
    bne 1b
8:
    EV__RS_TAIL \name
.endm
    EV__RS5_BODY ev__rs5, 0
    EV__RS5_BODY ev__rs5_lut, 1

/* The partial-sum variants: store the accumulators back into b[r], on to the next chunk (a
 * channel's chunk is followed by w_adv bytes of inputs other chunks cover). */
.macro EV__RSP_TAIL name
    ldr r3, [sp, #68]
    add r1, r1, r3              /* the next channel's chunk */
    adds lr, lr, #1
    bne 1b
    add sp, sp, #76
    pop {r4-r11, pc}
    EV__FN_END \name
.endm

    EV__RS_HEAD ev__rs4p
    EV__RS4_MACS
    ldm sp, {r8-r11}
    str r4, [r8, lr, lsl #2]
    str r5, [r9, lr, lsl #2]
    str r6, [r10, lr, lsl #2]
    str r7, [r11, lr, lsl #2]
    EV__RSP_TAIL ev__rs4p

    EV__RS_HEAD ev__rs5p
    EV__RS5_MACS
    ldm sp, {r3, r9-r12}
    str r4, [r3, lr, lsl #2]
    str r5, [r9, lr, lsl #2]
    str r6, [r10, lr, lsl #2]
    str r7, [r11, lr, lsl #2]
    str r8, [r12, lr, lsl #2]
    EV__RSP_TAIL ev__rs5p

/* ------------------------------------------------------------------------------------------ */
/* ev__widen4a(x r0, xs r1, kq r2, dst r3): ev__widen4 (ev_dsp.h) for kq a positive multiple of 2:
 * per group the low halves of rows x, x + xs, x + 2 xs, x + 3 xs, then their high halves. The
 * raw words land in the registers of the high halves, SXTB16 gives the low halves into the four
 * below and the high halves in place, and one STM stores the 8 words in order: 15 instructions
 * per group with two groups a pass (GCC's loop: 18). x rows may be unaligned (LDR). */
.macro EV__W4_GROUP
    ldr r10, [r0], #4
    ldr r11, [r4], #4
    ldr r12, [r5], #4
    ldr lr, [r6], #4
    sxtb16 r1, r10
    sxtb16 r7, r11
    sxtb16 r8, r12
    sxtb16 r9, lr
    sxtb16 r10, r10, ror #8
    sxtb16 r11, r11, ror #8
    sxtb16 r12, r12, ror #8
    sxtb16 lr, lr, ror #8
    stmia r3!, {r1, r7-r12, lr}
.endm
    EV__FN_BEGIN ev__widen4a
    push {r4-r11, lr}
    add r4, r0, r1              /* row 1 */
    add r5, r4, r1              /* row 2 */
    add r6, r5, r1              /* row 3 */
    add r2, r3, r2, lsl #5      /* dst end: 32 bytes per group */
1:
    EV__W4_GROUP
    EV__W4_GROUP
    cmp r3, r2
    bne 1b
    pop {r4-r11, pc}
    EV__FN_END ev__widen4a

/* ------------------------------------------------------------------------------------------ */
/* int ev__r1c4(const struct ev__r1a *a), a in r0 (ev_linear.c): one widened row (ev__widen1:
 * per group x lo, x hi) x n channels (n a multiple of 4), four channels per pass over the row,
 * in % 16 == 0, requantised (s > 32) and stored. A lone row has no other row to share a widened
 * weight word with, so per group of 4 inputs: LDRD of the row's pair (shared by the 4 channels)
 * and per channel LDR + 2 SXTB16 + 2 SMLAD: 21 instructions per 16 MACs, where path B's 1 x 2
 * tile (GCC) takes 26 and spills around each channel pair. Channel c of a quad reads its weights
 * at w + c in (register offsets in, 2 in, 3 in); channel 0's post-increment walks them.
 *
 * struct ev__r1a: xq 0, xq end 4, w 8, in 12, b + out 16, y + out 20, m + out 24, s + out 28,
 * lut + 128 (or 0) 32, n 36; copied into a 40-byte frame. The channel index in lr runs from -n
 * in steps of 4. Returns 0, or -(channels left) from the quad that has a channel with s <= 32
 * (some of its outputs may be stored; C redoes the quad).
 * MAC loop registers: x r0, w r1, in r2, 3 in r3, acc r4-r7, x lo / hi r8 / r9, weight word
 * r10 / r11, x end r12, channel index lr. */
.macro EV__R1_CH acc, addr:vararg
    ldr r10, \addr
    sxtb16 r11, r10
    sxtb16 r10, r10, ror #8
    smlad \acc, r8, r11, \acc
    smlad \acc, r9, r10, \acc
.endm
.macro EV__R1_GROUP
    ldrd r8, r9, [r0], #8
    EV__R1_CH r5, [r1, r2]
    EV__R1_CH r6, [r1, r2, lsl #1]
    EV__R1_CH r7, [r1, r3]
    EV__R1_CH r4, [r1], #4
.endm
/* requantise and store accumulator ACC: s at [r9], m at [r8] (both advanced), y at r12, lut r11
 * (lut = 1: the table; the quad branches once on whether there is one) */
.macro EV__R1_RQ acc, lut
    ldrsb r10, [r9], #1
    subs r10, r10, #33          /* t - 1 = s - 33; negative: s <= 32 */
    bmi 8f
    ldr r0, [r8], #4            /* m */
    mov r3, #1
    lsl r3, r3, r10             /* 2^(t-1) */
    smmla \acc, \acc, r0, r3
    asr \acc, \acc, r10       /* by t - 1, then 1 more in SSAT (as EV__RSQ1) */
    ssat \acc, #8, \acc, asr #1
    .if \lut
    ldrsb \acc, [r11, \acc]
    .endif
    strb \acc, [r12], #1
.endm

    EV__FN_BEGIN ev__r1c4
    push {r4-r11, lr}
    sub sp, sp, #40
    ldm r0, {r1-r10}
    stm sp, {r1-r10}
    ldr r1, [sp, #8]            /* w */
    rsb lr, r10, #0             /* channel index -n, -n + 4, .. */
1:
    ldr r2, [sp, #12]           /* in */
    add r3, r2, r2, lsl #1      /* 3 in */
    ldrd r0, r12, [sp]          /* x, x end */
    ldr r8, [sp, #16]
    add r8, r8, lr, lsl #2
    ldm r8, {r4-r7}             /* the quad's biases */
2:
    EV__R1_GROUP
    EV__R1_GROUP
    EV__R1_GROUP
    EV__R1_GROUP
    cmp r0, r12
    bne 2b
    add r1, r1, r3              /* channel 0 ended at channel 1's start: the next quad is 3 in on */
    ldrd r8, r9, [sp, #24]
    add r8, r8, lr, lsl #2      /* &m[q] */
    add r9, r9, lr              /* &s[q] */
    ldr r12, [sp, #20]          /* y + out */
    add r12, r12, lr            /* &y[q] */
    ldr r11, [sp, #32]          /* lut + 128, or 0 */
    cmp r11, #0
    bne 5f
    EV__R1_RQ r4, 0
    EV__R1_RQ r5, 0
    EV__R1_RQ r6, 0
    EV__R1_RQ r7, 0
    b 6f
5:
    EV__R1_RQ r4, 1
    EV__R1_RQ r5, 1
    EV__R1_RQ r6, 1
    EV__R1_RQ r7, 1
6:
    adds lr, lr, #4
    bne 1b
8:
    mov r0, lr                  /* 0, or -(channels left) from the quad with s <= 32 */
    add sp, sp, #40
    pop {r4-r11, pc}
    EV__FN_END ev__r1c4

/* ------------------------------------------------------------------------------------------ */
/* int ev__rs2(const struct ev__r2a *a), a in r0 (ev_linear.c): two widened rows (ev__widen2: per
 * group x0 lo, x1 lo, x0 hi, x1 hi) x n channels (n even), two channels per pass, in % 4 == 0
 * (ev__rs2_lut, a loop of 4 groups: in % 16 == 0),
 * requantised (s > 32) and stored: the row pairs path B left to GCC's 2 x 2 tile and C
 * requantisation (0.48-0.53 MACs per instruction at 48-64 inputs; a block of 4k + 2 tokens ends on
 * such a pair). Per group of 4 inputs: LDR of each channel's weight word (channel 1 at w + in),
 * 2 LDRD of the widened pair, 4 SXTB16 (each shared by the 2 rows) and 8 SMLAD: 16 instructions
 * per 16 MACs; per channel pair about 45 instructions of bias loads, requantisation (SMMLA + ASR +
 * SSAT, as ev__rs4) and stores.
 *
 * struct ev__r2a: xq 0, xq end 4, w 8, in 12, b0 + out 16, b1 + out 20, y0 + out 24,
 * y1 + out 28, m + out 32, s + out 36, lut + 128 (or 0) 40, n 44; copied into a 56-byte frame
 * whose word at 48 holds the entry into the channel pair's chain of 16 groups (as ev__rs4's).
 * The channel index in lr runs from -n in steps of 2. Returns 0, or -(channels left) at the pair
 * that has a channel with s <= 32 (nothing of that pair is stored; C finishes it).
 * MAC loop registers: xq r0, w r1 (channel 0, post-incremented; channel 1 at [r1, r2]), in r2,
 * channel 1's word r3, channel 0's word r12, x words r8 / r9, widened weights r10, acc r4 (row 0
 * channel 0), r5 (row 0 channel 1), r6 (row 1 channel 0), r7 (row 1 channel 1), xq end r11. */
.macro EV__RS2_GROUP
    ldr.w r3, [r1, r2]          /* .w: every instruction of a group 32-bit (the chain's entry) */
    ldr r12, [r1], #4
    ldrd r8, r9, [r0], #8
    sxtb16 r10, r12
    smlad r4, r8, r10, r4
    smlad r6, r9, r10, r6
    sxtb16 r10, r3
    smlad r5, r8, r10, r5
    smlad r7, r9, r10, r7
    ldrd r8, r9, [r0], #8
    sxtb16 r10, r12, ror #8
    smlad r4, r8, r10, r4
    smlad r6, r9, r10, r6
    sxtb16 r10, r3, ror #8
    smlad r5, r8, r10, r5
    smlad r7, r9, r10, r7
.endm

.macro EV__RS2_BODY name, lut
    EV__FN_BEGIN \name
    push {r4-r11, lr}
    sub sp, sp, #56
    ldm r0, {r1-r12}
    stm sp, {r1-r12}
    rsb lr, r12, #0             /* channel index -n, -n + 2, .. */
    .if !\lut                   /* with a table (a 2-row block's MLP): the loop of 4, less code */
    sub r3, r2, r1              /* the block's bytes, 16 per group */
    lsr r3, r3, #4              /* kq */
    rsb r3, r3, #0
    and r3, r3, #15             /* groups to skip in the chain of 16: -kq mod 16 (as ev__rs4) */
    adr r4, 2f
    add r3, r4, r3, lsl #6      /* 64 bytes per group */
    orr r3, r3, #1
    str r3, [sp, #48]           /* the chain's entry */
    .endif
    ldr r1, [sp, #8]            /* w */
1:
    ldrd r0, r11, [sp]          /* xq, xq end */
    ldr r2, [sp, #12]           /* in */
    ldrd r8, r9, [sp, #16]      /* b0, b1 (+ out) */
    add r8, r8, lr, lsl #2
    ldrd r4, r5, [r8]           /* row 0's biases of the pair */
    add r9, r9, lr, lsl #2
    ldrd r6, r7, [r9]           /* row 1's */
    .if \lut
2:
    .rept 4
    EV__RS2_GROUP
    .endr
    .else
    ldr pc, [sp, #48]
2:
    .rept 16
    EV__RS2_GROUP
    .endr
    .if (. - 2b) - 16 * 64
    .error "ev__rs2's chain: a group is not 64 bytes"
    .endif
    .endif
    cmp r0, r11
    bne 2b
    add r1, r1, r2              /* channel 0 ended at channel 1's start: the next pair is in on */
    ldrd r8, r9, [sp, #32]      /* m, s (+ out) */
    add r8, r8, lr, lsl #2
    ldrd r2, r3, [r8]           /* m0, m1 */
    add r9, r9, lr
    ldrsb r10, [r9]             /* s0 */
    ldrsb r11, [r9, #1]         /* s1 */
    subs r10, r10, #33          /* t0 - 1 = s0 - 33; negative: s0 <= 32 */
    bmi 8f
    subs r11, r11, #33          /* t1 - 1 */
    bmi 8f
    mov r12, #1
    lsl r12, r12, r10           /* 2^(t0-1) */
    smmla r4, r4, r2, r12
    asr r4, r4, r10
    ssat r4, #8, r4, asr #1
    smmla r6, r6, r2, r12
    asr r6, r6, r10
    ssat r6, #8, r6, asr #1
    mov r12, #1
    lsl r12, r12, r11           /* 2^(t1-1) */
    smmla r5, r5, r3, r12
    asr r5, r5, r11
    ssat r5, #8, r5, asr #1
    smmla r7, r7, r3, r12
    asr r7, r7, r11
    ssat r7, #8, r7, asr #1
    .if \lut
    ldr r3, [sp, #40]           /* lut + 128 */
    ldrsb r4, [r3, r4]
    ldrsb r5, [r3, r5]
    ldrsb r6, [r3, r6]
    ldrsb r7, [r3, r7]
    .endif
    ldrd r8, r9, [sp, #24]      /* y0, y1 (+ out) */
    add r8, r8, lr
    add r9, r9, lr
    strb r4, [r8]
    strb r5, [r8, #1]
    strb r6, [r9]
    strb r7, [r9, #1]
    adds lr, lr, #2
    bne 1b
8:
    mov r0, lr                  /* 0, or -(channels left) from the pair with s <= 32 */
    add sp, sp, #56
    pop {r4-r11, pc}
    EV__FN_END \name
.endm
    EV__RS2_BODY ev__rs2, 0
    EV__RS2_BODY ev__rs2_lut, 1

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
