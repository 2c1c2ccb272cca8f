/* Helium (MVE) MAC loops of ev__gemm's MVE path (ev_linear_mve.c explains the tiles and what C
 * does around them). Two general routines, each one call over a whole block so that C pays its
 * call and set-up once per block, not per tile; both take a struct ev__mva (r0; offsets below,
 * checked in ev_linear_mve.c). Attention's calls at shift 32 take ev__mq4 / ev__mq1 instead
 * (struct ev__mqa, at the end of the file), which also requantise.
 *
 * Both store the sums pair-major: channel pair p's sums of row r at s + p * ps + 8 r bytes
 * (ps = the pair stride, 8 x the block's rows), as (channel 2p, channel 2p + 1).
 *  ev__mv32: 3 rows x 2 channels per tile. For each of nt row tiles (rows 3t..3t+2 of x, stride
 *            xs) and each of ng channel pairs (pointers wp[2p], wp[2p + 1]): the 6 sums over n
 *            inputs, stored with one STM (rows 3t..3t+2 of pair p are 24 consecutive bytes); s
 *            is the block's sums.
 *  ev__mv14: 1 row x 4 channels per tile. For each of ng channel quads (wp[4q..4q+3]) the 4 sums
 *            of row x; s points at row x's sums of pair 0.
 *
 * The MAC loop is tail-predicated (DLSTP.8 / LETP): ceil(n / 16) passes, the last one loads only
 * the n % 16 bytes left (the other lanes are inactive: nothing is read and VMLADAVA adds nothing
 * for them), so any n >= 1 and any stride work and no byte past a row is read. ev__mv32's pass:
 * 5 VLDRB + 6 VMLADAVA.S8 (16 MACs each) + LETP = 12 instructions per 96 MACs; ev__mv14's: 5 + 4
 * + 1 = 10 per 64. VMLADAVA needs an even destination: the sums live in r0, r2, .., r10, the
 * pointers in the odd registers. Only q0-q3 are used (q4-q7 are callee-saved).
 *
 * GNU as, unified syntax, Thumb-2 with MVE; preprocessed (capital .S) for the #if below.
 */
#include "ev_dsp.h"

#if EV_KERNELS_MVE

    .syntax unified
    .thumb

/* struct ev__mva */
#define A_X   0     /* first row */
#define A_XS  4     /* row stride */
#define A_WP  8     /* channel pointers */
#define A_S   12    /* sums */
#define A_N   16    /* inputs, >= 1 */
#define A_NT  20    /* ev__mv32: row tiles (3 rows each), >= 1 */
#define A_NG  24    /* channel pairs (ev__mv32) or quads (ev__mv14), >= 1 */
#define A_PS  28    /* pair stride of the sums, bytes */

/* ev__mv32's frame */
#define F_X   0     /* this tile's first row */
#define F_Z   8     /* two zero words: 3 LDRD clear the 6 sums */
#define F_N   16
#define F_WP  20    /* the next pair's pointers */
#define F_WP0 24    /* the first pair's */
#define F_G   28    /* pairs left in this tile */
#define F_NG  32
#define F_T   36    /* tiles left */
#define F_S   40    /* sums of this tile, pair 0 */
#define F_XS  44
#define F_SIZE 48

/* Row tiles outer, channel pairs inner: per (tile, pair) 18 instructions around the MAC loop. */
EV__FN_BEGIN ev__mv32
    push    {r4-r11, lr}
    sub     sp, sp, #F_SIZE
    ldr     r1, [r0, #A_X]
    str     r1, [sp, #F_X]
    ldr     r1, [r0, #A_XS]
    str     r1, [sp, #F_XS]
    ldr     r1, [r0, #A_WP]
    str     r1, [sp, #F_WP0]
    ldr     r1, [r0, #A_S]
    str     r1, [sp, #F_S]
    ldr     r1, [r0, #A_N]
    str     r1, [sp, #F_N]
    ldr     r1, [r0, #A_NT]
    str     r1, [sp, #F_T]
    ldr     r1, [r0, #A_NG]
    str     r1, [sp, #F_NG]
    ldr     r11, [r0, #A_PS]            @ r11: pair stride of the sums
    movs    r1, #0
    str     r1, [sp, #F_Z]
    str     r1, [sp, #F_Z + 4]
.Lmv32_tile:
    ldr     r1, [sp, #F_WP0]
    str     r1, [sp, #F_WP]
    ldr     r1, [sp, #F_NG]
    str     r1, [sp, #F_G]
    ldr     r12, [sp, #F_S]             @ r12: this (tile, pair)'s sums
.Lmv32_pair:
    ldr     r1, [sp, #F_X]
    ldr     r5, [sp, #F_XS]
    add     r3, r1, r5
    add     r5, r3, r5
    ldr     lr, [sp, #F_WP]
    ldrd    r7, r9, [lr], #8
    str     lr, [sp, #F_WP]
    ldrd    r0, r2, [sp, #F_Z]
    ldrd    r4, r6, [sp, #F_Z]
    ldrd    r8, r10, [sp, #F_Z]
    ldr     lr, [sp, #F_N]
    dlstp.8 lr, lr
1:
    vldrb.8 q0, [r7], #16
    vldrb.8 q1, [r9], #16
    vldrb.8 q2, [r1], #16
    vmladava.s8 r0, q2, q0
    vmladava.s8 r2, q2, q1
    vldrb.8 q3, [r3], #16
    vmladava.s8 r4, q3, q0
    vmladava.s8 r6, q3, q1
    vldrb.8 q2, [r5], #16
    vmladava.s8 r8, q2, q0
    vmladava.s8 r10, q2, q1
    letp    lr, 1b
    stm     r12, {r0, r2, r4, r6, r8, r10}
    add     r12, r12, r11
    ldr     r1, [sp, #F_G]
    subs    r1, r1, #1
    str     r1, [sp, #F_G]
    bne     .Lmv32_pair
    ldr     r1, [sp, #F_S]              @ the next tile: its sums 24 bytes on, its rows 3 xs
    add     r1, r1, #24
    str     r1, [sp, #F_S]
    ldr     r1, [sp, #F_X]
    ldr     r2, [sp, #F_XS]
    add     r1, r1, r2
    add     r1, r1, r2, lsl #1
    str     r1, [sp, #F_X]
    ldr     r1, [sp, #F_T]
    subs    r1, r1, #1
    str     r1, [sp, #F_T]
    bne     .Lmv32_tile
    add     sp, sp, #F_SIZE
    pop     {r4-r11, pc}
EV__FN_END ev__mv32

/* ev__mv14's frame */
#define G_Z   0     /* two zero words */
#define G_N   8
#define G_PS  12
#define G_SIZE 16

EV__FN_BEGIN ev__mv14
    push    {r4-r11, lr}
    sub     sp, sp, #G_SIZE
    ldr     r11, [r0, #A_X]             @ r11: the row
    ldr     r12, [r0, #A_WP]            @ r12: next quad's pointers
    ldr     r8, [r0, #A_S]              @ r8: where the next sums go
    ldr     r1, [r0, #A_N]
    str     r1, [sp, #G_N]
    ldr     r1, [r0, #A_PS]
    str     r1, [sp, #G_PS]
    ldr     r10, [r0, #A_NG]            @ r10: quads left
    movs    r1, #0
    str     r1, [sp, #G_Z]
    str     r1, [sp, #G_Z + 4]
.Lmv14_quad:
    ldm     r12!, {r3, r5, r7, r9}
    mov     r1, r11
    ldrd    r0, r2, [sp, #G_Z]
    ldrd    r4, r6, [sp, #G_Z]
    ldr     lr, [sp, #G_N]
    dlstp.8 lr, lr
1:
    vldrb.8 q0, [r1], #16
    vldrb.8 q1, [r3], #16
    vmladava.s8 r0, q0, q1
    vldrb.8 q2, [r5], #16
    vmladava.s8 r2, q0, q2
    vldrb.8 q1, [r7], #16
    vmladava.s8 r4, q0, q1
    vldrb.8 q2, [r9], #16
    vmladava.s8 r6, q0, q2
    letp    lr, 1b
    ldr     lr, [sp, #G_PS]
    strd    r0, r2, [r8]                @ pair 2q
    add     r8, r8, lr
    strd    r4, r6, [r8]                @ pair 2q + 1
    add     r8, r8, lr
    subs    r10, r10, #1
    bne     .Lmv14_quad
    add     sp, sp, #G_SIZE
    pop     {r4-r11, pc}
EV__FN_END ev__mv14

/* ev__mq4: 4 rows x 1 channel per tile, requantised in the routine, for attention's calls (one
 * multiplier m at shift 32 for every output, no bias, no LUT, 4 query rows as the fused chains
 * pass them). For each of nc channels (w, w + ws, ..): the 4 sums (5 VLDRB + 4 VMLADAVA + LETP per
 * 64 MACs), moved into one vector (2 VMOV), VRMULH.S32 by m (= (acc m + 2^31) >> 32, ev_requant at
 * shift 32), saturated to int8 by two VQMOVNB (int32 -> int16 -> int8 in each lane's low byte) and
 * scattered to the 4 rows' outputs with one VSTRB.32 (offsets 0, ys, 2 ys, 3 ys): 19 instructions
 * per channel around the MAC loop, nothing through memory.
 * With tl set, the reduction is n + 1 long and the loop covers only the first n inputs: the last
 * input of the 4 rows is kept in q4 and the channel's last weight added in with one VMLA.S32
 * (3 instructions instead of a whole pass for one lane: attention's reductions over tokens are
 * often 16 k + 1 long, the patches and a class token). struct ev__mqa: */
#define Q_X   0     /* row 0; rows at + xs */
#define Q_XS  4
#define Q_W   8     /* channel 0; channels at + ws */
#define Q_WS  12
#define Q_Y   16    /* row 0, channel 0; rows at + ys, channels at + 1 */
#define Q_YS  20
#define Q_N   24    /* inputs in the loop, >= 1 */
#define Q_NC  28    /* channels, >= 1 */
#define Q_M   32    /* multiplier at shift 32 */
#define Q_TL  36    /* 1: one more input, at index n */
#define Q_TN  40    /* 0: shift 32 (VRMULH); else 32 - shift < 0 (VMULH, then VRSHL by it) */
/* frame */
#define H_Z   0     /* two zero words */
#define H_N   8
#define H_YE  12    /* y + nc: where the channels end */
#define H_TO  16    /* n - 16 x passes: the last weight from the loop's end pointer */
#define H_SIZE 24

/* One channel: the sums, (tl) the last input's products, requantisation (sh: shift > 32, by
 * VMULH + VRSHL with q5 = 32 - shift; else shift 32, VRMULH), stores. */
.macro EV__MQ4_CHANNEL tl, sh
    mov     r1, r8
    add     r3, r1, r11
    add     r5, r3, r11
    add     r7, r5, r11
    ldrd    r0, r2, [sp, #H_Z]
    ldrd    r4, r6, [sp, #H_Z]
    ldr     lr, [sp, #H_N]
    dlstp.8 lr, lr
1:
    vldrb.8 q0, [r9], #16
    vldrb.8 q1, [r1], #16
    vmladava.s8 r0, q1, q0
    vldrb.8 q1, [r3], #16
    vmladava.s8 r2, q1, q0
    vldrb.8 q1, [r5], #16
    vmladava.s8 r4, q1, q0
    vldrb.8 q1, [r7], #16
    vmladava.s8 r6, q1, q0
    letp    lr, 1b
    vmov    q1[2], q1[0], r0, r4        @ lanes 0..3 = rows 0..3: Rt goes to the lower lane
    vmov    q1[3], q1[1], r2, r6        @ ([idx2]), Rt2 to [idx] (GCC's vcreateq: same order)
.if \tl
    ldr     lr, [sp, #H_TO]
    ldrsb   lr, [r9, lr]                @ the channel's last weight
    vmla.s32 q1, q4, lr
.endif
    add     r9, r9, r10
.if \sh
    vmulh.s32 q1, q1, q2
    vrshl.s32 q1, q1, q5
.else
    vrmulh.s32 q1, q1, q2
.endif
    vqmovnb.s32 q1, q1
    vqmovnb.s16 q1, q1
    vstrb.32 q1, [r12, q3]
    adds    r12, r12, #1
    ldr     lr, [sp, #H_YE]
    cmp     r12, lr
.endm

EV__FN_BEGIN ev__mq4
    push    {r4-r11, lr}
    vpush   {d8-d11}                    @ q4: the rows' last inputs (tl), q5: 32 - shift
    sub     sp, sp, #H_SIZE
    ldr     r8, [r0, #Q_X]              @ r8: row 0
    ldr     r11, [r0, #Q_XS]            @ r11: xs
    ldr     r9, [r0, #Q_W]              @ r9: this channel's weights
    ldr     r2, [r0, #Q_N]
    str     r2, [sp, #H_N]
    adds    r1, r2, #15
    bic     r1, r1, #15                 @ 16 x passes: what the loop adds to r9
    sub     r3, r2, r1
    str     r3, [sp, #H_TO]
    ldr     r10, [r0, #Q_WS]
    sub     r10, r10, r1                @ r10: from the end of a channel's loop to the next channel
    ldr     r12, [r0, #Q_Y]             @ r12: this channel's outputs
    ldr     r1, [r0, #Q_NC]
    add     r1, r12, r1
    str     r1, [sp, #H_YE]
    ldr     r1, [r0, #Q_M]
    vdup.32 q2, r1                      @ q2: m
    ldr     r1, [r0, #Q_YS]
    movs    r4, #0
    vidup.u32 q3, r4, #1
    vmul.i32 q3, q3, r1                 @ q3: 0, ys, 2 ys, 3 ys
    movs    r1, #0
    str     r1, [sp, #H_Z]
    str     r1, [sp, #H_Z + 4]
    ldr     r3, [r0, #Q_TN]
    vdup.32 q5, r3                      @ q5: 32 - shift (shift > 32 only)
    ldr     r1, [r0, #Q_TL]
    cmp     r1, #0
    beq     .Lmq4_notl
    add     r1, r8, r2                  @ q4: input n of rows 0..3
    ldrsb   r0, [r1]
    ldrsb   r2, [r1, r11]
    add     r1, r1, r11, lsl #1
    ldrsb   r4, [r1]
    ldrsb   r6, [r1, r11]
    vmov    q4[2], q4[0], r0, r4
    vmov    q4[3], q4[1], r2, r6
    cmp     r3, #0
    bne     .Lmq4_ch_tl_sh
.Lmq4_ch_tl:
    EV__MQ4_CHANNEL 1, 0
    bne     .Lmq4_ch_tl
    b       .Lmq4_done
.Lmq4_ch_tl_sh:
    EV__MQ4_CHANNEL 1, 1
    bne     .Lmq4_ch_tl_sh
    b       .Lmq4_done
.Lmq4_notl:
    cmp     r3, #0
    bne     .Lmq4_ch_sh
.Lmq4_ch:
    EV__MQ4_CHANNEL 0, 0
    bne     .Lmq4_ch
    b       .Lmq4_done
.Lmq4_ch_sh:
    EV__MQ4_CHANNEL 0, 1
    bne     .Lmq4_ch_sh
.Lmq4_done:
    add     sp, sp, #H_SIZE
    vpop    {d8-d11}
    pop     {r4-r11, pc}
EV__FN_END ev__mq4

/* ev__mq1: ev__mq4's job for one row (a single query row, or the 1-3 rows a chain's last block
 * has): 1 row x 4 channels per tile (5 VLDRB + 4 VMLADAVA + LETP per 64 MACs), the 4 sums
 * requantised in a vector register as in ev__mq4 and stored with one VSTRB.32 (the 4 channels'
 * outputs are adjacent). A last quad of 1-3 channels points its missing channels at the last real
 * one and stores under a VCTP.32 predicate. Same struct (ev__mqa; xs and tl unused). Both
 * routines also take one shift > 32 (tn = 32 - shift): VMULH.S32 then VRSHL.S32 by tn, which is
 * ev_requant's floor(acc m / 2^32) then (hi + 2^(s-33)) >> (s - 32). */
#define K_Z   0     /* two zero words */
#define K_N   8
#define K_YE  12    /* y + nc */
#define K_SIZE 16

/* One quad of channels (sh: shift > 32, see EV__MQ4_CHANNEL); ends with Z set after the last. */
.macro EV__MQ1_QUAD sh
    add     r3, r9, r10                 @ channels 0..3 of the quad
    add     r5, r3, r11
    add     r7, r5, r11
    add     r9, r7, r11
    ldr     lr, [sp, #K_YE]
    sub     lr, lr, r12                 @ channels left
    cmp     lr, #4
    bge     1f
    cmp     lr, #2                      @ 1-3 left: the missing ones read the last real channel
    it      lt
    movlt   r5, r3
    cmp     lr, #3
    it      lt
    movlt   r7, r5
    mov     r9, r7
1:
    mov     r1, r8
    ldrd    r0, r2, [sp, #K_Z]
    ldrd    r4, r6, [sp, #K_Z]
    ldr     lr, [sp, #K_N]
    dlstp.8 lr, lr
2:
    vldrb.8 q0, [r1], #16
    vldrb.8 q1, [r3], #16
    vmladava.s8 r0, q0, q1
    vldrb.8 q1, [r5], #16
    vmladava.s8 r2, q0, q1
    vldrb.8 q1, [r7], #16
    vmladava.s8 r4, q0, q1
    vldrb.8 q1, [r9], #16
    vmladava.s8 r6, q0, q1
    letp    lr, 2b
    vmov    q1[2], q1[0], r0, r4        @ lanes 0..3 = channels 0..3 (see ev__mq4)
    vmov    q1[3], q1[1], r2, r6
.if \sh
    vmulh.s32 q1, q1, q2
    vrshl.s32 q1, q1, q3
.else
    vrmulh.s32 q1, q1, q2
.endif
    vqmovnb.s32 q1, q1
    vqmovnb.s16 q1, q1
    mov     r1, r12                     @ (the narrowing VSTRB takes a low base register)
    ldr     lr, [sp, #K_YE]
    sub     lr, lr, r12
    cmp     lr, #4
    blt     3f
    vstrb.32 q1, [r1]
    add     r12, r12, #4
    b       5f
3:
    vctp.32 lr
    vpst
    vstrbt.32 q1, [r1]
    cmp     lr, lr                      @ Z set: this was the last quad
5:                                      @ Z clear: more than 4 were left (the CMP #4)
.endm

EV__FN_BEGIN ev__mq1
    push    {r4-r11, lr}
    sub     sp, sp, #K_SIZE
    ldr     r8, [r0, #Q_X]              @ r8: the row
    ldr     r11, [r0, #Q_WS]            @ r11: ws
    ldr     r2, [r0, #Q_N]
    str     r2, [sp, #K_N]
    adds    r1, r2, #15
    bic     r1, r1, #15                 @ 16 x passes: what the loop adds to each pointer
    sub     r10, r11, r1                @ r10: from channel 3's loop end to the next quad's channel 0
    ldr     r9, [r0, #Q_W]
    sub     r9, r9, r10                 @ so that the first quad's channel 0 is r9 + r10
    ldr     r12, [r0, #Q_Y]             @ r12: the quad's outputs
    ldr     r1, [r0, #Q_NC]
    add     r1, r12, r1
    str     r1, [sp, #K_YE]
    ldr     r1, [r0, #Q_M]
    vdup.32 q2, r1                      @ q2: m
    movs    r1, #0
    str     r1, [sp, #K_Z]
    str     r1, [sp, #K_Z + 4]
    ldr     r1, [r0, #Q_TN]
    vdup.32 q3, r1                      @ q3: 32 - shift (shift > 32 only)
    cmp     r1, #0
    bne     .Lmq1_quad_sh
.Lmq1_quad:
    EV__MQ1_QUAD 0
    bne     .Lmq1_quad
    b       4f
.Lmq1_quad_sh:
    EV__MQ1_QUAD 1
    bne     .Lmq1_quad_sh
4:
    add     sp, sp, #K_SIZE
    pop     {r4-r11, pc}
EV__FN_END ev__mq1

#endif /* EV_KERNELS_MVE */
