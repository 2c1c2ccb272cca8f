/* Helium (MVE) MAC loops of ev__gemm's MVE path (ev_linear_mve.c explains the tiles and what C
 * does around them). Two routines, each one call over a whole block so that C pays its call and
 * set-up once per block, not per tile; both take a struct ev__mva (r0; offsets below, checked in
 * ev_linear_mve.c):
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

#endif /* EV_KERNELS_MVE */
