/* edgeviz int8 kernel library.
 *
 * Every kernel reproduces edgeviz/intmath.py bit for bit; that file is the specification and the
 * comments here only say how the C gets there (imported .tflite models: edgeviz/tflmath.py). Plain C99: no
 * floats, no libm, no malloc, no globals, so the same sources build for the host (tests, ctypes) and for the Cortex-M7.
 *
 * Each kernel has a portable C path. When the compiler targets a core with the DSP extension
 * (__ARM_FEATURE_DSP, e.g. -mcpu=cortex-m7) and EV_PORTABLE is not defined, ev_linear_s8 and the
 * attention row kernels use SMLAD/SXTB16 instead. Both paths give identical bits: they compute
 * the same integer sums, only in a different order, and int32 sums wrap the same way in both.
 * When it targets Helium (__ARM_FEATURE_MVE, e.g. -mcpu=cortex-m55), ev_linear_s8 and the
 * attention products take an MVE path instead (ev_linear_mve.c, ev_attention_mve.c: VMLADAVA.S8,
 * 16 MACs per instruction), again with the same sums, and so do LayerNorm and softmax
 * (ev_norm_mve.c) and the residual add, table lookup, transposition and token mean
 * (ev_eltwise_mve.c), with intmath's integer results from exact 32-bit lane arithmetic; of the
 * imported-.tflite kernels (ev_tfl.c) only the dot products take VMLADAVA, the rest keep their DSP
 * code.
 *
 * Assumption shared by all kernels: `>>` on a negative signed integer is an arithmetic (floor)
 * shift. C99 leaves it implementation-defined; GCC and Clang on every target we build for define
 * it that way, and intmath.py (numpy) floors too.
 */
#ifndef EV_KERNELS_H
#define EV_KERNELS_H

/* Which path the kernels were compiled with (1: Cortex-M DSP, 0: portable C). The assembly
 * sources (ev_*_m7.S) read this too; everything below it is C only. */
#if defined(__ARM_FEATURE_DSP) && !defined(EV_PORTABLE)
#define EV_KERNELS_DSP 1
#else
#define EV_KERNELS_DSP 0
#endif
/* 1: the matrix kernels (ev_linear_s8, q.k, p.v) and the row / element-wise ones (LayerNorm,
 * softmax, add, LUT, transposition, token mean) take the Helium path (Cortex-M55 and other v8.1-M
 * cores with MVE), which replaces their DSP or C path; the .tflite kernels keep EV_KERNELS_DSP's but
 * for their dot products. */
#if defined(__ARM_FEATURE_MVE) && !defined(EV_PORTABLE)
#define EV_KERNELS_MVE 1
#else
#define EV_KERNELS_MVE 0
#endif

/* 1: the cores without the DSP extension take register-blocked matrix kernels for their
 * instruction set instead of the portable one-output-at-a-time loop (ev_gemm_nodsp.c): ARMv7-M
 * (Cortex-M3: 2 rows x 2 channels of LDRSB + MLA, ev_gemm_v7m.S) and ARMv6-M / ARMv8-M Baseline
 * (Cortex-M0+, M23: 1 row x 4 channels in Thumb-1 assembly, ev_gemm_v6m.S). Same sums, so the
 * same bits. */
#if defined(__ARM_ARCH_7M__) && !EV_KERNELS_DSP && !EV_KERNELS_MVE && !defined(EV_PORTABLE)
#define EV_KERNELS_V7M 1
#else
#define EV_KERNELS_V7M 0
#endif
#if (defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)) && !defined(EV_PORTABLE)
#define EV_KERNELS_V6M 1
#else
#define EV_KERNELS_V6M 0
#endif

#ifndef __ASSEMBLER__

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stack: ev_linear_s8's DSP path widens int8 rows once into a stack buffer of EV_LINEAR_BUF
 * 8-byte units (default 384: 3 KiB of the 6 KiB stack the targets reserve; 3.6 KiB with its
 * frames, GCC 12 -O2) and falls back to slower code when rows do not fit; ev_attn_scores_row's
 * DSP path takes 0.7 KiB, ev_attn_scores_rows' 2.2 KiB at s == 32 (4.3 KiB over 257-512 keys) and
 * ev_attn_av_rows' 2.4 KiB with frames (up to 128 dims / 128 keys per pass, 512 at s == 32; larger
 * sizes take the single-row kernels); they are
 * never on the stack together with ev_linear_s8's buffer. Override with -DEV_LINEAR_BUF=N (see
 * ev_linear.c). Portable kernels take under 150 bytes. The MVE path (EV_KERNELS_MVE) instead: ev_linear_s8
 * and q.k 2.3 KiB with frames (1.5 KiB of int32 sums, -DEV_MVE_SUMS=N words), p.v over V's rows 4.0 KiB
 * (a 1.5 KiB transposition buffer on top, see ev_linear_mve.c, ev_attention_mve.c; GCC 12 -O2). */

/* clamp((acc * m + 2^(s-1)) >> s, -128, 127), 1 <= s <= 62, 0 <= m < 2^31 (normalised to
 * [2^30, 2^31) except at s == 32, see intmath.quantize_multiplier_s32).
 *
 * For s > 32 (the usual case: activation scales make s about 35..45) the 64-bit sum is not
 * needed: with acc*m = hi*2^32 + lo (0 <= lo < 2^32) and t = s - 32,
 *   floor((acc*m + 2^(s-1)) / 2^s) = floor((hi + 2^(t-1)) / 2^t)
 * because the rounding term is a multiple of 2^32 and flooring twice by powers of two equals
 * flooring once. |hi| <= 2^30 and 2^(t-1) <= 2^29, so the add cannot overflow. On the M7 this is
 * SMULL + ADD + ASR + SSAT instead of a 64-bit add and a variable 64-bit shift. */
static inline int8_t ev_requant(int32_t acc, int32_t m, int32_t s)
{
    int32_t v;
    if (s > 32) {
        int32_t hi = (int32_t)(((int64_t)acc * m) >> 32);
        v = (hi + ((int32_t)1 << (s - 33))) >> (s - 32);
    } else {
        int64_t p = ((int64_t)acc * m + ((int64_t)1 << (s - 1))) >> s;
        /* clamp in 64 bits first: p can exceed int32 when s is small */
        v = p < -128 ? -128 : p > 127 ? 127 : (int32_t)p;
    }
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

/* y[n][o] = requant(bias[o] + sum_k x[n][k] w[o][k], mult[o], shift[o]), then lut[y + 128] if lut.
 * bias is [out] when bias_row_stride == 0, else row n uses bias + n * bias_row_stride. */
void ev_linear_s8(const int8_t *x, int x_stride, int rows, int in, int out,
                  const int8_t *w,            /* [out][in], row-major */
                  const int32_t *bias,        /* [out], or [rows][out] if bias_row_stride == out */
                  int bias_row_stride,        /* 0: one bias per channel */
                  const int32_t *mult, const int8_t *shift,  /* per output channel */
                  const int8_t *lut,          /* NULL or 256 entries, index y + 128 */
                  int8_t *y, int y_stride);

/* Integer LayerNorm of each row (intmath.layernorm). y may == x (same stride). */
void ev_layernorm_s8(const int8_t *x, int x_stride, int rows, int c,
                     const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride);

/* The same integers as ev_layernorm_s8 with constants prepared at build time: g' = 16 g and
 * b' = 16 b + 2^31 (|g| < 2^27, |b| < 2^58: ops/layernorm.py checks, else it calls
 * ev_layernorm_s8), so that y = clamp(floor((n g' + b') / 2^32)), the high word of one 64-bit
 * multiply-accumulate: floor((16 P + 2^31) / 2^32) = floor((P + 2^27) / 2^28), P = n g + b. */
void ev_layernorm_pre_s8(const int8_t *x, int x_stride, int rows, int c,
                         const int32_t *g, const int64_t *b, int64_t eps, int8_t *y, int y_stride);

/* Softmax of one row of len int8 scores (intmath.softmax), probabilities at scale 1/127.
 * lut: 256 uint16 exp entries indexed by x - max + 255. y may == x. len <= 32768. */
void ev_softmax_s8(const int8_t *x, int len, const uint16_t *lut, int8_t *y);

/* y = clamp((a ma + b mb + 2^(shift-1)) >> shift) (intmath.add). y may alias a or b. */
void ev_add_s8(const int8_t *a, const int8_t *b, int n, int32_t ma, int32_t mb, int32_t shift,
               int8_t *y);

/* y[i] = lut[x[i] + 128]. y may == x. */
/* y[i] = requant(a[i] * b[i], m, s) (intmath.mul); y may be a or b. */
void ev_mul_s8(const int8_t *a, const int8_t *b, int n, int32_t m, int32_t s, int8_t *y);
void ev_lut_s8(const int8_t *x, int n, const int8_t *lut, int8_t *y);

/* Imported .tflite models (ev_tfl.c): TFLite's integer semantics, edgeviz/tflmath.py. */
void ev_tfl_fc_s8(const int8_t *x, int rows, int k, int o, const int8_t *w, const int32_t *bias,
                  const int64_t *scale_m, const int32_t *scale_sh, int32_t y_zp, int32_t lo, int32_t hi, int8_t *y);
/* The same with its requantisation in fixed point, per channel (m, r, t): tflmath.fc_fixed_point. */
void ev_tfl_fcq_s8(const int8_t *x, int rows, int k, int o, const int8_t *w, const int32_t *bias, const int32_t *q,
                   const int32_t *fw, int32_t lo, int32_t hi, int8_t *y);
void ev_tfl_conv_s8(const int8_t *x, int h, int w, int c, const int8_t *f, int o, int kh, int kw, int sh, int sw,
                    int pad_t, int pad_l, int oh, int ow, const int32_t *bias, const int32_t *m, const int32_t *shift,
                    int32_t x_zp, int32_t y_zp, int32_t lo, int32_t hi, const int32_t *fw, int8_t *patch,
                    int8_t *y);
void ev_tfl_bmm_s8(const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa, const int32_t *sb,
                   int rows, int cols, int depth, int32_t a_zp, int32_t b_zp, int32_t m, int32_t shift,
                   int32_t y_zp, int8_t *bt, int8_t *y);
void ev_tfl_binary_s8(int kind, const int8_t *a, const int8_t *b, const int32_t *dims, const int32_t *sa,
                      const int32_t *sb, int32_t a_zp, int32_t b_zp, int32_t y_zp, const int32_t *p,
                      const int32_t *tabs, int32_t lo, int32_t hi, int8_t *y);
void ev_tfl_softmax_s8(const int8_t *x, int rows, int len, const int32_t *exp_table, int32_t diff_min,
                       const int32_t *exp12, int8_t *y);
void ev_tfl_mean_s8(const int8_t *x, int outer, int red, int inner, int32_t x_zp, int32_t y_zp, int32_t m,
                    int32_t shift, int8_t *y);
void ev_tfl_lut_s8(const int8_t *x, int n, int ch, const int8_t *luts, int8_t *y);
void ev_tfl_copy_s8(const int8_t *x, const int32_t *d, const int32_t *si, int8_t *y, const int32_t *so);
void ev_tfl_layernorm_s8(const int8_t *x, int rows, int c, const int32_t *p, const int32_t *tab,
                         const int8_t *luts, const int32_t *gb, int8_t *y);

/* scores[j] = requant(sum_d q[d] k_j[d], m, s), k_j = k + j * k_stride. */
void ev_attn_scores_row(const int8_t *q, const int8_t *k, int k_stride, int n_keys, int dh,
                        int32_t m, int32_t s, int8_t *scores);

/* out[d] = requant(sum_j p[j] v_j[d], m, s), v_j = v + j * v_stride. */
void ev_attn_av_row(const int8_t *p, const int8_t *v, int v_stride, int n_keys, int dh,
                    int32_t m, int32_t s, int8_t *out);

/* Several query rows per pass over K (or V): row r of q at q + r * q_stride, its scores at
 * scores + r * s_stride (r < rows); the same sums as ev_attn_scores_row row by row. The DSP
 * path reuses each widened key word for four query rows; at s == 32 (what quantize.py gives
 * attention) it streams the keys through one assembly routine (up to 512 dims) and may read up
 * to 3 bytes past each key's dh (multiplied by zero). Over V^T ([dh][n_keys], passes._transpose_v)
 * it is p.v too: q = probability rows, k = V^T, k_stride = n_keys, n_keys = dh, dh = n_keys. */
void ev_attn_scores_rows(const int8_t *q, int q_stride, int rows, const int8_t *k, int k_stride,
                         int n_keys, int dh, int32_t m, int32_t s, int8_t *scores, int s_stride);

/* out[r][d] = requant(sum_j p[r][j] v_j[d], m, s) for rows r < rows: p row r at p + r * p_stride,
 * out row r at out + r * out_stride; the same sums as ev_attn_av_row row by row. */
void ev_attn_av_rows(const int8_t *p, int p_stride, int rows, const int8_t *v, int v_stride,
                     int n_keys, int dh, int32_t m, int32_t s, int8_t *out, int out_stride);

/* y[c] = requant(sum_n x[n][c], m, s) for contiguous x [rows][c] (intmath.mean_tokens). */
void ev_mean_tokens_s8(const int8_t *x, int rows, int c, int32_t m, int32_t s, int8_t *y);

/* One p x p patch of a CHW image as a row of c*p*p values:
 * row[(ci*p + ky)*p + kx] = img[ci][py*p + ky][px*p + kx], patch = py*(w/p) + px. */
void ev_patch_gather(const int8_t *img, int c, int h, int w, int p, int patch, int8_t *row);

/* The patch embedding without a patch matrix: for each of the (h / p) (w / p) patches n of a CHW
 * image, y[n][o] = requant(bias[n][o] + patch_n . wt[o], mult[o], shift[o]) (intmath.linear of
 * ev_patch_gather's row), y rows of `out`, one bias row per patch; row: scratch of c p p bytes.
 * The DSP path embeds 4-5 patches per pass over the weights, widened straight from the image. */
void ev_patch_embed_s8(const int8_t *img, int c, int h, int w, int p, int out, const int8_t *wt,
                       const int32_t *bias, const int32_t *mult, const int8_t *shift, int8_t *row,
                       int8_t *y);

/* y[c * y_stride + r] = x[r][c] for contiguous x [rows][cols]: a block of rows written as columns
 * (the V^T layout of passes._transpose_v, which p.v reads through ev_attn_scores_rows). */
void ev_transpose_s8(const int8_t *x, int rows, int cols, int8_t *y, int y_stride);

#ifdef __cplusplus
}
#endif

#endif /* !__ASSEMBLER__ */

#endif /* EV_KERNELS_H */
