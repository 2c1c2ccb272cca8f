// edgeviz HLS templates: token pooling before the classifier head.
//   ev_mean_tokens: y[c] = requant(sum_n x[n][c], m, s) with 1/N folded into m (intmath.mean_tokens)
#ifndef EV_POOL_H
#define EV_POOL_H

#include "ev_types.h"

// REUSE: LANES = ceil(C / REUSE) channel sums advance per cycle.
template <int N, int C, int REUSE, int XS = C>
void ev_mean_tokens(const ev_i8 x[N * XS], ev_i8 y[C], ev_i32 m, ev_i8 s) {
    static const int LANES = ev_ceil_div<C, REUSE>::value;
    static const int STEPS = ev_ceil_div<C, LANES>::value;
    ev_i32 acc[C];
#pragma HLS ARRAY_PARTITION variable=acc cyclic factor=LANES
    for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
        acc[c] = 0;
    }
mean_tokens:
    for (int n = 0; n < N; n++) {
    mean_steps:
        for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
            for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
                const int c = r * LANES + l;
                if (c < C) acc[c] = ev_i32(acc[c] + ev_i32(x[n * XS + c]));
            }
        }
    }
mean_requant:
    for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
        y[c] = ev_requant(acc[c], m, s);
    }
}

#endif  // EV_POOL_H
