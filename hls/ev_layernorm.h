// edgeviz HLS template: integer LayerNorm over the channels of each token row (intmath.layernorm).
//
//   d_i = C x_i - sum(x); var = sum(d^2) / C + eps (int64, truncating); sigma = max(isqrt(var), 1)
//   inv = 2^31 / sigma; n_i = (d_i inv) >> 19; y_i = clamp((n_i g_i + b_i + 2^27) >> 28)
// REUSE: the C squared deviations of a row are formed LANES = ceil(C / REUSE) per cycle.
#ifndef EV_LAYERNORM_H
#define EV_LAYERNORM_H

#include "ev_types.h"

template <int ROWS, int C, int REUSE, int XS = C, int YS = C>
void ev_layernorm(const ev_i8 x[ROWS * XS], ev_i8 y[ROWS * YS], const ev_i32 g[C], const ev_i64 b[C],
                  ev_i64 eps) {
    static const int LANES = ev_ceil_div<C, REUSE>::value;
    static const int STEPS = ev_ceil_div<C, LANES>::value;
    ev_i8 xr[C];
#pragma HLS ARRAY_PARTITION variable=xr cyclic factor=LANES
ln_rows:
    for (int n = 0; n < ROWS; n++) {
        ev_i32 sum = 0;
    ln_load:
        for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
            xr[c] = x[n * XS + c];
            sum = ev_i32(sum + ev_i32(xr[c]));
        }
        ev_i64 sq = 0;
    ln_var:
        for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
            ev_i64 part = 0;
            for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
                const int c = r * LANES + l;
                if (c < C) {
                    const ev_i64 d = ev_i64(C) * ev_i64(xr[c]) - ev_i64(sum);
                    part += d * d;
                }
            }
            sq += part;
        }
        const ev_i64 var = sq / ev_i64(C) + eps;
        ev_i64 sigma = ev_isqrt(var);
        if (sigma < 1) sigma = 1;
        const ev_i64 inv = (ev_i64(1) << EV_LN_INV_BITS) / sigma;
    ln_norm:
        for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
            const ev_i64 d = ev_i64(C) * ev_i64(xr[c]) - ev_i64(sum);
            const ev_i64 nq = (d * inv) >> (EV_LN_INV_BITS - EV_LN_FRAC);
            const int shift = EV_LN_FRAC + EV_LN_GAMMA_FRAC;
            const ev_i64 v = (nq * ev_i64(g[c]) + b[c] + (ev_i64(1) << (shift - 1))) >> shift;
            y[n * YS + c] = ev_clamp8(v);
        }
    }
}

#endif  // EV_LAYERNORM_H
