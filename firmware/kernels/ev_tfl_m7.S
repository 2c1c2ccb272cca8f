/* Hand-written Cortex-M7 routines of the .tflite kernels (ev_tfl.c), ARMv7E-M DSP instructions:
 *   ev_tfl__t42s   a 4 rows x 2 columns tile (BATCH_MATMUL: operands widened with their zero points
 *                  subtracted, sums from 0; CONV_2D: four patches, sums from the biases), then
 *                  TFLite's requantisation per column as one SMMLAR each (ev_tfl__sm, the output
 *                  zero point in its addend), SSAT and the stores.
 *   ev_tfl__ln_row the fused LayerNorm's last pass over one row (ev_tfl__ln_fast says what each
 *                  step is): per channel rg, t and t2 in two loops, then per element u and y;
 *                  each loop two channels an iteration (an odd c enters at the second), which
 *                  halves the end tests.
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

/* ev_tfl__ln_row(a r0): struct ev_tfl__lnr (ev_tfl.c) gives the offsets. Records of 3 words per
 * channel at rec: {ru, beta then w2, C}. Each requantisation is ev_tfl__sm's SMMLAR with the
 * zero point in the addend: a = h + (v < 0 ? -1 : 0), SMMLAR(v', m, a) >> e, SSAT 8, where v' is
 * the doubled product (one factor doubled beforehand) or v << 1. */
    EV__FN_BEGIN ev_tfl__ln_row
    push {r4-r11, lr}
    /* per channel: ru = 2 (rg - u_rzp), rg = sat(SM(rv gamma)); C = -u_xzp ru; beta copied */
    ldr r1, [r0, #0]            /* gb: {gamma, beta} per channel */
    ldr r2, [r0, #4]            /* rec */
    ldr r3, [r0, #8]            /* c */
    lsls r12, r3, #31           /* Z: c even */
    add r3, r1, r3, lsl #3      /* gb end */
    ldr r4, [r0, #12]           /* rv2 */
    ldr r5, [r0, #16]           /* mg */
    ldr r6, [r0, #20]           /* hg */
    ldr r7, [r0, #24]           /* eg */
    ldr r8, [r0, #28]           /* 2 u_rzp */
    ldr r9, [r0, #32]           /* -u_xzp */
    bne 11f                     /* c odd: the second copy first */
1:
    ldrd r10, r11, [r1], #8     /* gamma, beta */
    smulbb r10, r10, r4         /* 2 rv gamma */
    add lr, r6, r10, asr #31
    smmlar r10, r10, r5, lr
    asr r10, r10, r7
    ssat r10, #8, r10           /* rg */
    rsb r10, r8, r10, lsl #1    /* ru */
    mul r12, r10, r9            /* C */
    stmia r2!, {r10, r11, r12}
11:
    ldrd r10, r11, [r1], #8     /* gamma, beta */
    smulbb r10, r10, r4         /* 2 rv gamma */
    add lr, r6, r10, asr #31
    smmlar r10, r10, r5, lr
    asr r10, r10, r7
    ssat r10, #8, r10           /* rg */
    rsb r10, r8, r10, lsl #1    /* ru */
    mul r12, r10, r9            /* C */
    stmia r2!, {r10, r11, r12}
    cmp r1, r3
    bne 1b
    /* per channel: t = sat(SM(nv ru + K)) (= 2 nv (rg - t_rzp)), t2 = sat(SM(t_t[t] + beta)),
     * w2 = t_t2[t2] (t_t2 = t_t + 512 words) */
    push {r0}
    ldr r1, [r0, #4]            /* rec */
    ldr r3, [r0, #8]
    add r2, r3, r3, lsl #1
    lsls r3, r3, #31            /* Z: c even (the loads below keep the flags) */
    add r2, r1, r2, lsl #2      /* rec end */
    ldr r3, [r0, #36]           /* nv */
    ldr r4, [r0, #40]           /* K */
    ldr r5, [r0, #44]           /* mt */
    ldr r6, [r0, #48]           /* ht */
    ldr r7, [r0, #52]           /* et */
    ldr r8, [r0, #56]           /* mb */
    ldr r9, [r0, #60]           /* hb */
    ldr r10, [r0, #64]          /* eb */
    ldr r11, [r0, #68]          /* t_t (entry 0) */
    bne 22f
2:
    ldrd r12, lr, [r1], #12     /* ru, beta */
    mla r12, r12, r3, r4
    add r0, r6, r12, asr #31
    smmlar r12, r12, r5, r0
    asr r12, r12, r7
    ssat r12, #8, r12           /* t */
    ldr r12, [r11, r12, lsl #2]
    add r12, r12, lr
    add r0, r9, r12, asr #31
    lsl r12, r12, #1
    smmlar r12, r12, r8, r0
    asr r12, r12, r10
    ssat r12, #8, r12           /* t2 */
    add r12, r11, r12, lsl #2
    ldr r12, [r12, #2048]
    str r12, [r1, #-8]          /* w2 */
22:
    ldrd r12, lr, [r1], #12     /* ru, beta */
    mla r12, r12, r3, r4
    add r0, r6, r12, asr #31
    smmlar r12, r12, r5, r0
    asr r12, r12, r7
    ssat r12, #8, r12           /* t */
    ldr r12, [r11, r12, lsl #2]
    add r12, r12, lr
    add r0, r9, r12, asr #31
    lsl r12, r12, #1
    smmlar r12, r12, r8, r0
    asr r12, r12, r10
    ssat r12, #8, r12           /* t2 */
    add r12, r11, r12, lsl #2
    ldr r12, [r12, #2048]
    str r12, [r1, #-8]          /* w2 */
    cmp r1, r2
    bne 2b
    pop {r0}
    /* per element: u = sat(SM(x ru + C)) (= 2 (x - u_xzp)(rg - u_rzp)), y = sat(SM(t_u[u] + w2)) */
    ldr r1, [r0, #72]           /* x */
    ldr r2, [r0, #76]           /* y */
    ldr r3, [r0, #4]            /* rec */
    ldr r4, [r0, #80]           /* mu */
    ldr r5, [r0, #84]           /* hu */
    ldr r6, [r0, #88]           /* eu */
    ldr r7, [r0, #92]           /* my */
    ldr r8, [r0, #96]           /* hy */
    ldr r9, [r0, #100]          /* ey */
    ldr r10, [r0, #104]         /* t_u (entry 0) */
    ldr r11, [r0, #8]
    lsls r12, r11, #31          /* Z: c even */
    add r11, r2, r11            /* y end */
    push {r11}
    bne 33f
3:
    ldrsb r0, [r1], #1          /* x */
    ldm r3!, {r11, r12, lr}     /* ru, w2, C */
    smlabb r0, r0, r11, lr
    add lr, r5, r0, asr #31
    smmlar r0, r0, r4, lr
    asr r0, r0, r6
    ssat r0, #8, r0             /* u */
    ldr r0, [r10, r0, lsl #2]
    add r0, r0, r12
    add lr, r8, r0, asr #31
    lsl r0, r0, #1
    smmlar r0, r0, r7, lr
    asr r0, r0, r9
    ssat r0, #8, r0
    strb r0, [r2], #1
33:
    ldrsb r0, [r1], #1          /* x */
    ldm r3!, {r11, r12, lr}     /* ru, w2, C */
    smlabb r0, r0, r11, lr
    add lr, r5, r0, asr #31
    smmlar r0, r0, r4, lr
    asr r0, r0, r6
    ssat r0, #8, r0             /* u */
    ldr r0, [r10, r0, lsl #2]
    add r0, r0, r12
    add lr, r8, r0, asr #31
    lsl r0, r0, #1
    smmlar r0, r0, r7, lr
    asr r0, r0, r9
    ssat r0, #8, r0
    strb r0, [r2], #1
    ldr lr, [sp]
    cmp r2, lr
    bne 3b
    add sp, sp, #4
    pop {r4-r11, pc}
    EV__FN_END ev_tfl__ln_row

/* ev_tfl__run42f(a r0) / ev_tfl__run42s(a r0): every 4 x 2 tile of a block, one call, struct
 * ev_tfl__run_a (ev_tfl.c) for the offsets: for each channel pair (outer), each row quad of xq
 * (inner), the MAC loop and the requantisation from registers. ev_tfl__t42s and ev__t42r are one
 * call per tile, and the C around them (start values, the pair's multipliers, the output address,
 * the call) cost some 100 instructions per tile, more than half of the tile's MACs at k = 32; here
 * the loop state lives in the frame.
 *   f: FULLY_CONNECTED's fixed point (ev__t42r's SMMLA with r in the addend, then >> t, SSAT)
 *   s: ev_tfl__sm's SMMLAR (ev_tfl__t42s' EV_TFL__RQ, x doubled, the zero point in the addend)
 * The MAC loop is one chain of 16 EV__T42_GROUPs entered part way (kq % 16 groups the first
 * time, a jump to an address made once per call) and, where kq > 16, repeated from its top while
 * wb is short of the pair's end (3 instructions a pass): no per-group loop tests.
 * The right shift (t or e, 1..22) is SSAT's own immediate shift: each column's requantisation and
 * stores are one block per shift value, the pair's two blocks picked once per pair (the address
 * from the shift), so an output costs SMMLA + SSAT (f) and no ASR. The chain ends in a jump to
 * column 0's block (or the end test), which ends in a jump to column 1's, which ends with the
 * quad loop's test.
 * Frame: 0 the 8 start values (a pair's biases, ev__t42's order, LDM'd per tile), 32 the pair's
 * two (m, r/h, t/e), 56 y of the tile, 60 ys, 68 the pair's wb, 72 its end, 76 the
 * chain entry (Thumb bit set), 84 pairs left, 88 y of the pair, 92 16 kq, 96 xq, 100 xq end,
 * 104 where the chain goes (column 0's block, or the end test), 108 column 0's block, 112 column
 * 1's, 116 / 120 the blocks of shift 0 (one block before the first), 124 where a pair writes its
 * column 0 block besides 108 (104, or 128, a slot nothing reads, where kq > 16), 144 bias, 148 q,
 * 152 / 156 their steps (one LDM per pair). */
.macro EV_TFL__RQ3 form, reg, sh
    .ifc \form, f
    smmla \reg, \reg, r1, r2
    ssat \reg, #8, \reg, asr #\sh
    .else
    add.w lr, r2, \reg, asr #31
    lsl.w \reg, \reg, #1
    smmlar \reg, \reg, r1, lr
    ssat \reg, #8, \reg, asr #\sh
    .endif
.endm

/* (.w: 32-bit encodings throughout, so that every block of a column has the same size) */
/* column 0's block for shift sh: r0 = the next quad's xq (kept), accumulators r4, r6, r8, r10;
 * r3 (no shift register any more) holds y */
.macro EV_TFL__COL0 name, form, sh
    ldrd r3, r12, [sp, #56]     /* y, ys */
    ldrd r1, r2, [sp, #32]      /* m, r / h */
    EV_TFL__RQ3 \form, r4, \sh
    EV_TFL__RQ3 \form, r6, \sh
    EV_TFL__RQ3 \form, r8, \sh
    EV_TFL__RQ3 \form, r10, \sh
    add.w r2, r3, r12
    strb.w r4, [r3]
    strb.w r6, [r2]
    strb.w r8, [r3, r12, lsl #1]
    strb.w r10, [r2, r12, lsl #1]
    add.w r2, r3, r12, lsl #2
    str.w r2, [sp, #56]           /* the next quad's y */
    add.w r3, r3, #1
    ldr.w pc, [sp, #112]
.endm

/* column 1's block: r3 = y + 1, r12 = ys, accumulators r5, r7, r9, r11; then the quad loop */
.macro EV_TFL__COL1 name, form, sh
    ldrd r1, r2, [sp, #44]
    EV_TFL__RQ3 \form, r5, \sh
    EV_TFL__RQ3 \form, r7, \sh
    EV_TFL__RQ3 \form, r9, \sh
    EV_TFL__RQ3 \form, r11, \sh
    add.w r2, r3, r12
    strb.w r5, [r3]
    strb.w r7, [r2]
    strb.w r9, [r3, r12, lsl #1]
    strb.w r11, [r2, r12, lsl #1]
    ldr.w r1, [sp, #100]
    cmp.w r0, r1
    bne.w .Ltile_\name
    b.w .Lpairend_\name
.endm

.macro EV_TFL__RUN42 name, form
    EV__FN_BEGIN \name
    push {r4-r11, lr}
    sub sp, sp, #164
    ldr r2, [r0, #36]           /* kq >= 1 */
    sub r3, r2, #1
    and r3, r3, #15
    rsb r3, r3, #15             /* groups to skip: 16 - ((kq - 1) % 16 + 1) */
    adr r12, .Lchain_\name
    mov r1, #((.Lend_\name - .Lchain_\name) / 16)
    mla r12, r3, r1, r12
    orr r12, r12, #1
    str r12, [sp, #76]
    add r12, sp, #104           /* kq <= 16: the chain goes straight to column 0's block */
    cmp r2, #16
    ble 1f
    adr r12, .Ltest_\name
    orr r12, r12, #1
    str r12, [sp, #104]
    add r12, sp, #128
1:
    str r12, [sp, #124]
    ldr r12, =.Lc0a_\name      /* out of ADR's reach in the s form */
    sub r12, r12, #(.Lc0b_\name - .Lc0a_\name)
    orr r12, r12, #1
    str r12, [sp, #116]
    ldr r12, =.Lc1a_\name
    sub r12, r12, #(.Lc1b_\name - .Lc1a_\name)
    orr r12, r12, #1
    str r12, [sp, #120]
    lsl r1, r2, #4
    str r1, [sp, #92]           /* 16 kq: a pair's wb bytes */
    ldr r1, [r0, #32]
    str r1, [sp, #60]           /* ys */
    ldr r1, [r0, #28]
    str r1, [sp, #88]           /* y */
    ldr r1, [r0, #16]
    str r1, [sp, #144]          /* bias */
    ldr r1, [r0, #20]
    str r1, [sp, #148]          /* q */
    ldr r1, [r0, #40]
    str r1, [sp, #152]          /* bias step */
    ldr r1, [r0, #24]
    str r1, [sp, #156]          /* q step */
    ldr r1, [r0, #12]
    str r1, [sp, #84]           /* pairs */
    ldr r1, [r0, #8]
    str r1, [sp, #68]           /* wb of pair 0 */
    ldr r1, [r0, #4]
    str r1, [sp, #100]          /* xq end */
    ldr r1, [r0]
    str r1, [sp, #96]           /* xq */
.Lpair_\name:
    add r12, sp, #144
    ldm r12, {r0-r3}            /* bias, q, their steps */
    ldrd r4, r5, [r0]
    add r0, r0, r2
    ldm r1, {r6-r11}            /* m, r / h, t / e of both columns */
    add r1, r1, r3
    stm r12, {r0, r1}
    add r12, sp, #32
    stm r12, {r6-r11}
    ldrd r2, r3, [sp, #116]     /* the pair's blocks from its two shifts */
    mov r0, #(.Lc0b_\name - .Lc0a_\name)
    mla r2, r8, r0, r2
    str r2, [sp, #108]
    ldr r0, [sp, #124]
    str r2, [r0]
    mov r0, #(.Lc1b_\name - .Lc1a_\name)
    mla r3, r11, r0, r3
    str r3, [sp, #112]
    mov r6, r4
    mov r7, r5
    mov r8, r4
    mov r9, r5
    mov r10, r4
    mov r11, r5
    stm sp, {r4-r11}
    ldrd r1, r2, [sp, #88]      /* y of the pair, 16 kq */
    str r1, [sp, #56]
    add r1, r1, #2
    str r1, [sp, #88]
    ldr r1, [sp, #68]
    add r2, r1, r2
    str r2, [sp, #72]           /* the pair's wb end */
    ldr r0, [sp, #96]           /* xq */
.Ltile_\name:
    ldm sp, {r4-r11}
    ldr r1, [sp, #68]
    ldr pc, [sp, #76]
.Lchain_\name:
    .rept 16
    EV__T42_GROUP
    .endr
.Lend_\name:
    ldr pc, [sp, #104]
.Ltest_\name:
    ldr r2, [sp, #72]
    cmp r1, r2
    bne .Lchain_\name
    ldr pc, [sp, #108]
.Lpairend_\name:
    ldr r1, [sp, #72]           /* the next pair's wb follows this one's */
    str r1, [sp, #68]
    ldr r1, [sp, #84]
    subs r1, r1, #1
    str r1, [sp, #84]
    bne .Lpair_\name
    add sp, sp, #164
    pop {r4-r11, pc}
    .ltorg
.Lc0a_\name:
    EV_TFL__COL0 \name, \form, 1
.Lc0b_\name:
    .irp sh, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22
    EV_TFL__COL0 \name, \form, \sh
    .endr
.Lc0z_\name:
.Lc1a_\name:
    EV_TFL__COL1 \name, \form, 1
.Lc1b_\name:
    .irp sh, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22
    EV_TFL__COL1 \name, \form, \sh
    .endr
.Lc1z_\name:
    /* every block the same size, or the addresses made from the shifts would miss */
    .if (.Lc0z_\name - .Lc0a_\name) != 22 * (.Lc0b_\name - .Lc0a_\name)
    .error "ev_tfl__run42: column 0's blocks differ in size"
    .endif
    .if (.Lc1z_\name - .Lc1a_\name) != 22 * (.Lc1b_\name - .Lc1a_\name)
    .error "ev_tfl__run42: column 1's blocks differ in size"
    .endif
    EV__FN_END \name
.endm

    EV_TFL__RUN42 ev_tfl__run42f, f
    EV_TFL__RUN42 ev_tfl__run42s, s

/* ev_tfl__add_run(a r0): ev_tfl__binary_run's contiguous ADD, four elements a word of each input,
 * struct ev_tfl__add_a (ev_tfl.c) for the offsets. Per element both table entries (indexed by the
 * signed byte: SXTB with ROR picks it from the word), their sum d, then EV_TFL__SMR with the
 * output zero point in h: SMMLAR(d << 1, m, h + (d < 0 ? -1 : 0)), the right shift (1..22) as
 * SSAT's immediate: one copy of the loop per shift, entered at the copy's address. 10
 * instructions an element, 5 a word of four. */
.macro EV_TFL__ADD1 k, sh
    .if \k == 3
    asr.w r10, r8, #24
    asr.w r11, r9, #24
    .elseif \k == 0
    sxtb.w r10, r8
    sxtb.w r11, r9
    .else
    sxtb.w r10, r8, ror #(8 * \k)
    sxtb.w r11, r9, ror #(8 * \k)
    .endif
    ldr.w r10, [r4, r10, lsl #2]
    ldr.w r11, [r5, r11, lsl #2]
    add.w r10, r10, r11
    add.w lr, r7, r10, asr #31
    lsl.w r10, r10, #1
    smmlar r10, r10, r6, lr
    ssat r10, #8, r10, asr #\sh
    strb.w r10, [r2, #\k]
.endm
.macro EV_TFL__ADDLOOP sh
1:
    ldr.w r8, [r0], #4
    ldr.w r9, [r1], #4
    EV_TFL__ADD1 0, \sh
    EV_TFL__ADD1 1, \sh
    EV_TFL__ADD1 2, \sh
    EV_TFL__ADD1 3, \sh
    add.w r2, r2, #4
    cmp.w r2, r3
    bne.w 1b
    b.w .Ladd_done
.endm
    EV__FN_BEGIN ev_tfl__add_run
    push {r4-r11, lr}
    ldr r12, [r0, #32]          /* shift, 1..22 */
    ldr r3, =.Ladd_1
    sub r3, r3, #(.Ladd_2 - .Ladd_1)
    mov r4, #(.Ladd_2 - .Ladd_1)
    mla r12, r12, r4, r3
    orr r12, r12, #1
    ldm r0, {r0-r7}             /* a, b, y, y end, ta, tb, m, h */
    bx r12
.Ladd_done:
    pop {r4-r11, pc}
    .ltorg
.Ladd_1:
    EV_TFL__ADDLOOP 1
.Ladd_2:
    .irp sh, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22
    EV_TFL__ADDLOOP \sh
    .endr
    EV__FN_END ev_tfl__add_run

#endif /* EV_KERNELS_DSP && !EV_KERNELS_MVE */
