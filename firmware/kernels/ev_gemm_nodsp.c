/* ev__gemm (ev_dsp.h: the core of ev_linear_s8 and of the q.k products, p.v over V^T included) for
 * the Cortex-M cores without the DSP extension: ARMv7-M (Cortex-M3) and ARMv6-M (Cortex-M0+; also
 * ARMv8-M Baseline, the M23). ev_kernels.h picks them (EV_KERNELS_V7M, EV_KERNELS_V6M).
 *
 * Without SMLAD there is no 2-MACs-per-instruction trick, so what is left to win is the loop
 * around the multiply: the portable path (ev__gemm_scalar) takes one output at a time, 2 loads, a
 * multiply, an add and the loop's index / compare / branch per MAC (5-7 instructions). Register
 * blocking loads each byte once for several outputs and shares the loop overhead:
 *  - ARMv7-M: a tile of 2 rows x 2 channels, 4 LDRSB (post-indexed: no pointer updates) + 4 MLA
 *    per 4 MACs, four inputs per iteration: 34 instructions per 16 MACs (ev_gemm_v7m.S). A single
 *    row (rows == 1: the q.k single-row kernel, class heads; the odd last row) goes 1 x 4
 *    channels: 5 LDRSB + 4 MLA per 4 MACs. Loading words and extracting bytes with SBFX costs the
 *    same one instruction per byte as LDRSB, and a packed multiply (x * (w0 + (w1 << 16)): two
 *    products per MUL) keeps only 16 bits of each sum, too few for an exact int32 sum of more
 *    than one int8 product.
 *  - ARMv6-M: 1 row x 4 channels in Thumb-1 assembly, 15 instructions per 4 MACs (ev_gemm_v6m.S
 *    says why that shape), and the requantisation's 32 x 32 -> 64-bit product from four 32-bit
 *    MULS instead of a libgcc call (ev__requant_v6m). No divides anywhere in these loops (ARMv6-M has
 *    no UDIV: libgcc's would be a call).
 * 1-2 channels past a multiple of 4 go one at a time; 3 repeat the last channel in the tile (its
 * duplicate outputs are dropped), as does an odd channel count in the 2 x 2 tile. Every path
 * computes the same int32 sums as ev__gemm_scalar, wrapping modulo 2^32 the same way (uint32_t),
 * and requantises as ev_requant does: the same bits.
 */
#include "ev_dsp.h"

#if EV_KERNELS_V7M || EV_KERNELS_V6M

#if EV_KERNELS_V6M
/* ARMv6-M has no SMULL: ev_requant's (int64_t)acc * m is a libgcc __aeabi_lmul call plus 64-bit
 * adds and shifts, 60-100 instructions per output on the M0+, as much as a 16-input output's MACs.
 * At s >= 32 (every linear in practice, and attention's s == 32) it needs only the top word of
 * acc m and, at s == 32, the rounding bit below it, which four 16 x 16 -> 32-bit MULS give exactly:
 * with acc = ah 2^16 + al (ah = acc >> 16 signed, al unsigned < 2^16) and m = mh 2^16 + ml
 * (0 <= m < 2^31: mh < 2^15),
 *   acc m = p3 2^32 + (p1 + p2 + p0h) 2^16 + p0l,  p3 = ah mh, p1 = ah ml, p2 = al mh,
 *   p0 = al ml = p0h 2^16 + p0l,
 * each product fits 32 bits (|p1| < 2^31, p2 < 2^31, p0 < 2^32 unsigned). S = p1 + p2 + p0h can
 * pass 2^31, so it is split as p1 = (p1 >> 16) 2^16 + (p1 & 0xFFFF) and X = (p1 & 0xFFFF) + p2 + p0h
 * (< 2^32 unsigned): acc m = (p3 + (p1 >> 16) + (X >> 16)) 2^32 + (X & 0xFFFF) 2^16 + p0l, so
 *   hi = floor(acc m / 2^32) = p3 + (p1 >> 16) + (X >> 16)
 * (0 <= p0l < 2^16 cannot carry) and bit 31 of the low word is bit 15 of X. Then, as ev_requant:
 *   s > 32: (hi + 2^(s-33)) >> (s-32);  s == 32: (acc m + 2^31) >> 32 = hi + bit 31 of the low word. */
static inline int32_t ev__requant_v6m(int32_t acc, int32_t m, int32_t s)
{
    const int32_t ah = acc >> 16, mh = m >> 16;
    const uint32_t al = (uint32_t)acc & 0xFFFFu, ml = (uint32_t)m & 0xFFFFu;
    const uint32_t p0 = al * ml, p2 = al * (uint32_t)mh;
    const int32_t p1 = ah * (int32_t)ml, p3 = ah * mh;
    const uint32_t xs = ((uint32_t)p1 & 0xFFFFu) + p2 + (p0 >> 16);
    const int32_t hi = p3 + (p1 >> 16) + (int32_t)(xs >> 16);
    const int32_t v = s > 32 ? (hi + ((int32_t)1 << (s - 33))) >> (s - 32) : hi + (int32_t)((xs >> 15) & 1u);
    return v < -128 ? -128 : v > 127 ? 127 : v;
}
#endif

/* Requantise one output, then apply the optional LUT. */
static inline int8_t ev__nd_finish(uint32_t acc, int32_t m, int32_t s, const int8_t *lut)
{
    int32_t v;
#if EV_KERNELS_V6M
    if (s >= 32)
        v = ev__requant_v6m((int32_t)acc, m, s);
    else
#endif
        v = ev_requant((int32_t)acc, m, s);
    return lut ? lut[v + 128] : (int8_t)v;
}

/* acc[c] = bias of channel o + c (0 without a bias), channels past the last repeat it. */
static inline void ev__nd_init(const int32_t *b, const int oc[], int nc, uint32_t acc[])
{
    int c;
    for (c = 0; c < nc; c++)
        acc[c] = b ? (uint32_t)b[oc[c]] : 0u;
}

/* The tiles, in assembly: 1 row x 4 channels (ev__t14_v7m in ev_gemm_v7m.S, ev__t14_v6m in
 * ev_gemm_v6m.S) and on ARMv7-M 2 rows x 2 channels (ev__t22_v7m). acc starts at the caller's
 * values and gets the sums over n >= 1 inputs added in; the offsets are the assembly's. */
struct ev__t14 {
    const int8_t *x;      /*  0 */
    const int8_t *w[4];   /*  4 */
    int32_t n;            /* 20 */
    uint32_t acc[4];      /* 24: acc[c] += x.w[c] */
};
typedef char ev__t14_offsets[offsetof(struct ev__t14, n) == 20 && offsetof(struct ev__t14, acc) == 24
                             ? 1 : -1];
#if EV_KERNELS_V7M
struct ev__t22 {
    const int8_t *x0, *x1, *w0, *w1;   /*  0 */
    int32_t n;                         /* 16 */
    uint32_t acc[4];                   /* 20: x0.w0, x0.w1, x1.w0, x1.w1 */
};
typedef char ev__t22_offsets[offsetof(struct ev__t22, n) == 16 && offsetof(struct ev__t22, acc) == 20
                             ? 1 : -1];
EV__PRIVATE void ev__t22_v7m(struct ev__t22 *a);
EV__PRIVATE void ev__t14_v7m(struct ev__t14 *a);
#define ev__t14_tile ev__t14_v7m
#else
EV__PRIVATE void ev__t14_v6m(struct ev__t14 *a);
#define ev__t14_tile ev__t14_v6m
#endif

/* Rows against every channel, 4 channels at a time (ARMv7-M: the odd last row; ARMv6-M: every
 * row). Channels outermost: a group's weight pointers and requantisation operands are set up once
 * for all rows, which matters at the short reductions of attention and low-rank layers (16-32
 * inputs), where that work is as long as the MACs. */
static void ev__rows_t14(const int8_t *x, int xs, int rows, int in, int out, const int8_t *w,
                         int ws, const int32_t *bias, int bs, const int32_t *mult,
                         const int8_t *shift, int qstep, const int8_t *lut, int8_t *y, int ys)
{
    int o, c, n;
    for (o = 0; o < out; o += 4) {
        int oc[4], nc = out - o < 4 ? out - o : 4;
        int32_t m[4], sh[4];
        struct ev__t14 a;
        if (nc <= 2) {
            /* 1 or 2 channels left: each costs about as much one at a time (the portable loop's
             * 5-7 instructions per MAC) as a 4-channel tile's pass (9 on ARMv7-M, 15 on ARMv6-M) */
            for (n = 0; n < rows; n++) {
                const int8_t *const xr = x + (long)n * xs;
                const int32_t *const br = bias ? bias + (long)n * bs : 0;
                for (c = o; c < out; c++) {
                    uint32_t acc = br ? (uint32_t)br[c] : 0u;
                    acc = ev__dot_tail(xr, w + (long)c * ws, in, acc);
                    y[(long)n * ys + c] = ev__nd_finish(acc, mult[c * qstep], shift[c * qstep], lut);
                }
            }
            break;
        }
        for (c = 0; c < 4; c++) {
            oc[c] = c < nc ? o + c : out - 1;   /* 3 channels: the last one twice */
            a.w[c] = w + (long)oc[c] * ws;
            m[c] = mult[oc[c] * qstep];
            sh[c] = shift[oc[c] * qstep];
        }
        for (n = 0; n < rows; n++) {
            int8_t *const yr = y + (long)n * ys + o;
            ev__nd_init(bias ? bias + (long)n * bs : 0, oc, 4, a.acc);
            a.x = x + (long)n * xs;
            a.n = in;
            ev__t14_tile(&a);
            for (c = 0; c < nc; c++)
                yr[c] = ev__nd_finish(a.acc[c], m[c], sh[c], lut);
        }
    }
}

void ev__gemm(const int8_t *x, int x_stride, int rows, int in, int out,
              const int8_t *w, int w_stride, const int32_t *bias, int bias_row_stride,
              const int32_t *mult, const int8_t *shift, int qstep, const int8_t *lut,
              int8_t *y, int y_stride)
{
    int n = 0;
    if (rows <= 0 || out <= 0)
        return;
    if (in <= 0) {   /* no products: the tiles need n >= 1 */
        ev__gemm_scalar(x, x_stride, rows, in, out, w, w_stride, bias, bias_row_stride, mult,
                        shift, qstep, lut, y, y_stride);
        return;
    }
#if EV_KERNELS_V7M
    for (; n + 2 <= rows; n += 2) {
        const int8_t *const x0 = x + (long)n * x_stride, *const x1 = x0 + x_stride;
        const int32_t *const b0 = bias ? bias + (long)n * bias_row_stride : 0;
        const int32_t *const b1 = bias ? b0 + bias_row_stride : 0;
        int8_t *const y0 = y + (long)n * y_stride, *const y1 = y0 + y_stride;
        int o;
        for (o = 0; o < out; o += 2) {
            const int o2 = o + 1 < out ? o + 1 : o;   /* odd count: the last channel twice */
            const int8_t *const w0 = w + (long)o * w_stride, *const w1 = w + (long)o2 * w_stride;
            struct ev__t22 a;
            a.x0 = x0; a.x1 = x1; a.w0 = w0; a.w1 = w1; a.n = in;
            a.acc[0] = b0 ? (uint32_t)b0[o] : 0u;
            a.acc[1] = b0 ? (uint32_t)b0[o2] : 0u;
            a.acc[2] = b1 ? (uint32_t)b1[o] : 0u;
            a.acc[3] = b1 ? (uint32_t)b1[o2] : 0u;
            ev__t22_v7m(&a);
            y0[o] = ev__nd_finish(a.acc[0], mult[o * qstep], shift[o * qstep], lut);
            y1[o] = ev__nd_finish(a.acc[2], mult[o * qstep], shift[o * qstep], lut);
            if (o2 != o) {
                y0[o2] = ev__nd_finish(a.acc[1], mult[o2 * qstep], shift[o2 * qstep], lut);
                y1[o2] = ev__nd_finish(a.acc[3], mult[o2 * qstep], shift[o2 * qstep], lut);
            }
        }
    }
#endif
    if (n < rows)
        ev__rows_t14(x + (long)n * x_stride, x_stride, rows - n, in, out, w, w_stride,
                     bias ? bias + (long)n * bias_row_stride : 0, bias_row_stride, mult, shift,
                     qstep, lut, y + (long)n * y_stride, y_stride);
}

#endif /* EV_KERNELS_V7M || EV_KERNELS_V6M */
