/* Helium (MVE) path of the element-wise kernels ev_eltwise.c has for other cores: the residual
 * add, the table lookup (GELU and other activations; ev_linear_mve.c's LUT epilogue calls it too),
 * the transposition into V^T and the token mean. Built when the compiler targets MVE (EV_KERNELS_MVE; elsewhere
 * this file is empty). The same results as intmath.add and ev_eltwise.c:
 *  - add: a ma + round + b mb in wrapping 32-bit lanes (VMLAS, VMLA: intmath's int32 wraps too),
 *    VSHL by -shift (arithmetic, as intmath's >>), clamp by two saturating narrows, 4 values per
 *    pass (9 instructions).
 *  - table lookup: 16 values per pass, one VLDRB gather at offsets x + 128 (5 instructions).
 *  - transposition: per source row, 8 values per pass widened (VLDRB.U16) and scattered to 8
 *    destination rows (VSTRB.16 at offsets 0, ys, .., 7 ys; 4 instructions); strides past the
 *    16-bit offsets (7 ys > 65535) take ev_eltwise.c's loop.
 *  - token mean: 4 column sums per vector, one VLDRB.S32 + VADD per row (a low-overhead DLS / LE
 *    loop), then ev_requant per column; the last c % 4 columns one at a time.
 * Tail-predicated loops (DLSTP / LETP) in inline assembly, as ev_norm_mve.c; each pass reads its
 * values before it writes, so y may alias a, b or x where ev_kernels.h allows it.
 */
#include "ev_dsp.h"
#include "ev_parts.h"

#if EV_KERNELS_MVE

void ev_add_s8(const int8_t *a, const int8_t *b, int n, int32_t ma, int32_t mb, int32_t shift,
               int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    if (n <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    /* the multiply-adds wrap like intmath's int32 (and ev_eltwise.c's uint32); VSHL by a negative
     * register shifts right arithmetically (intmath's >>) */
    __asm__ volatile(
        "vdup.32     q2, %[ma]\n\t"
        "dlstp.32    lr, %[n]\n"
        "1:\n\t"
        "vldrb.s32   q0, [%[a]], #4\n\t"
        "vldrb.s32   q1, [%[b]], #4\n\t"
        "vmlas.s32   q0, q2, %[rnd]\n\t"        /* a ma + 2^(shift - 1) */
        "vmla.s32    q0, q1, %[mb]\n\t"         /* + b mb */
        "vshl.s32    q0, %[nsh]\n\t"
        "vqmovnb.s32 q1, q0\n\t"
        "vqmovnb.s16 q0, q1\n\t"
        "vstrb.32    q0, [%[y]], #4\n\t"
        "letp        lr, 1b"
        : [a] "+l"(a), [b] "+l"(b), [y] "+l"(y)
        : [n] "r"(n), [ma] "r"(ma), [mb] "r"(mb), [rnd] "r"((uint32_t)1 << (shift - 1)), [nsh] "r"(-shift)
        : "q0", "q1", "q2", "lr", "memory");
    EV_PART_LEAVE(pp);
}

void ev_lut_s8(const int8_t *x, int n, const int8_t *lut, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    if (n <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    __asm__ volatile(
        "dlstp.8     lr, %[n]\n"
        "1:\n\t"
        "vldrb.u8    q0, [%[x]], #16\n\t"
        "vadd.i8     q0, q0, %[k]\n\t"          /* x + 128 as an unsigned offset */
        "vldrb.u8    q1, [%[lut], q0]\n\t"
        "vstrb.8     q1, [%[y]], #16\n\t"
        "letp        lr, 1b"
        : [x] "+r"(x), [y] "+r"(y) : [n] "r"(n), [lut] "r"(lut), [k] "r"(128)
        : "q0", "q1", "lr", "memory");
    EV_PART_LEAVE(pp);
}

void ev_transpose_s8(const int8_t *x, int rows, int cols, int8_t *y, int y_stride)
{
    EV_PART_ENTER(pp, EV_PART_MOVE);
    int r;
    if (rows <= 0 || cols <= 0) {
        EV_PART_LEAVE(pp);
        return;
    }
    if (y_stride < 0 || 7L * y_stride > 65535) {
        ev__transpose_s8_c(x, rows, cols, y, y_stride);
        EV_PART_LEAVE(pp);
        return;
    }
    for (r = 0; r < rows; r++) {
        const int8_t *xr = x + (long)r * cols;
        int8_t *yr = y + r;
        /* q1 = 0, ys, .., 7 ys: VIDUP counts 0..7 and VMUL scales them */
        __asm__ volatile(
            "movs        r12, #0\n\t"
            "vidup.u16   q1, r12, #1\n\t"
            "vmul.i16    q1, q1, %[ys]\n\t"
            "dlstp.16    lr, %[n]\n"
            "1:\n\t"
            "vldrb.u16   q0, [%[x]], #8\n\t"
            "vstrb.16    q0, [%[y], q1]\n\t"
            "add         %[y], %[y], %[ys8]\n\t"
            "letp        lr, 1b"
            : [x] "+l"(xr), [y] "+r"(yr)
            : [n] "r"(cols), [ys] "r"(y_stride), [ys8] "r"(8 * y_stride)
            : "q0", "q1", "r12", "lr", "memory");
    }
    EV_PART_LEAVE(pp);
}

void ev_mean_tokens_s8(const int8_t *x, int rows, int c, int32_t m, int32_t s, int8_t *y)
{
    EV_PART_ENTER(pp, EV_PART_REQUANT);
    int i, n;
    for (i = 0; i + 4 <= c; i += 4) {
        /* 4 column sums in one vector: a row's 4 values per VLDRB.S32 (|sum| <= 128 rows) */
        int32_t sum[4] __attribute__((aligned(8)));
        const int8_t *p = x + i;
        if (rows > 0) {
            __asm__ volatile(
                "vmov.i32    q1, #0\n\t"
                "dls         lr, %[r]\n"
                "1:\n\t"
                "vldrb.s32   q0, [%[p]]\n\t"
                "add         %[p], %[p], %[c]\n\t"
                "vadd.i32    q1, q1, q0\n\t"
                "le          lr, 1b\n\t"
                "vstrw.32    q1, [%[s]]"
                : [p] "+l"(p)
                : [r] "r"(rows), [c] "r"(c), [s] "r"(sum)
                : "q0", "q1", "lr", "memory");
        } else {
            sum[0] = sum[1] = sum[2] = sum[3] = 0;
        }
        for (n = 0; n < 4; n++)
            y[i + n] = ev_requant(sum[n], m, s);
    }
    for (; i < c; i++) {   /* the last c % 4 columns */
        int32_t acc = 0;
        for (n = 0; n < rows; n++)
            acc += x[(long)n * c + i];
        y[i] = ev_requant(acc, m, s);
    }
    EV_PART_LEAVE(pp);
}

#endif /* EV_KERNELS_MVE */
