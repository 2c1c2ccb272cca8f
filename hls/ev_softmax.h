// edgeviz HLS template: row softmax with an exp LUT (intmath.softmax).
//
//   e_i = lut[x_i - max + 255] (uint16, 2^15 at the maximum); p_i = (127 e_i + sum/2) / sum, truncating.
// Output: int8 probabilities at scale 1/127. REUSE: LANES = ceil(L / REUSE) exponentials per cycle.
#ifndef EV_SOFTMAX_H
#define EV_SOFTMAX_H

#include "ev_types.h"

// One row, in place: row[L] -> probabilities. Used by ev_softmax and by the attention template.
template <int L, int REUSE>
void ev_softmax_row(ev_i8 row[L], const ev_u16 lut[256]) {
#pragma HLS INLINE
    static const int LANES = ev_ceil_div<L, REUSE>::value;
    static const int STEPS = ev_ceil_div<L, LANES>::value;
    ev_i32 mx = -128;
sm_max:
    for (int j = 0; j < L; j++) {
#pragma HLS PIPELINE II=1
        if (ev_i32(row[j]) > mx) mx = ev_i32(row[j]);
    }
    ev_i64 total = 0;
sm_sum:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        ev_i64 part = 0;
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int j = r * LANES + l;
            if (j < L) part += ev_i64(lut[int(ev_i32(row[j]) - mx + 255)]);
        }
        total += part;
    }
    const ev_i64 half = total / 2;
sm_div:
    for (int j = 0; j < L; j++) {
#pragma HLS PIPELINE II=1
        const ev_i64 e = ev_i64(lut[int(ev_i32(row[j]) - mx + 255)]);
        row[j] = ev_i8((ev_i64(EV_SOFTMAX_OUT_MAX) * e + half) / total);
    }
}

// ROWS independent rows of length L with strides XS / YS; y may be x.
template <int ROWS, int L, int REUSE, int XS = L, int YS = L>
void ev_softmax(const ev_i8 x[ROWS * XS], ev_i8 y[ROWS * YS], const ev_u16 lut[256]) {
    static const int LANES = ev_ceil_div<L, REUSE>::value;
    ev_i8 row[L];
#pragma HLS ARRAY_PARTITION variable=row cyclic factor=LANES
sm_rows:
    for (int n = 0; n < ROWS; n++) {
        ev_copy_row<L>(x + n * XS, row);
        ev_softmax_row<L, REUSE>(row, lut);
        ev_copy_row<L>(row, y + n * YS);
    }
}

#endif  // EV_SOFTMAX_H
