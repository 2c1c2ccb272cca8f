// edgeviz HLS templates: element-wise int8 ops: residual add (intmath.add), product (intmath.mul) and table lookup
// (intmath.apply_lut, GELU). REUSE: LANES = ceil(N / REUSE) elements per cycle. The caller's arrays must
// deliver LANES elements a cycle (partitioned or reshaped cyclic by LANES where they are declared), or
// the tool lengthens the II; the templates put no partition pragma on their arguments, so that fused
// steps can pass a row inside a larger buffer.
#ifndef EV_ELEMENTWISE_H
#define EV_ELEMENTWISE_H

#include "ev_types.h"

// y = clamp((a ma + b mb + 2^(shift-1)) >> shift), int32 arithmetic with numpy's wrap-around;
// y may be a or b.
template <int N, int REUSE>
void ev_add(const ev_i8 a[N], const ev_i8 b[N], ev_i8 y[N], ev_i32 ma, ev_i32 mb, ev_i32 shift) {
    static const int LANES = ev_ceil_div<N, REUSE>::value;
    static const int STEPS = ev_ceil_div<N, LANES>::value;
    const int sh = int(shift);
add_steps:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int i = r * LANES + l;
            if (i < N) {
                const ev_i64 wide = ev_i64(a[i]) * ev_i64(ma) + ev_i64(b[i]) * ev_i64(mb) + (ev_i64(1) << (sh - 1));
                const ev_i32 v = ev_i32(wide);  // int32 wrap, as numpy
                y[i] = ev_clamp8(ev_i64(v >> sh));
            }
        }
    }
}

// y = requant(a * b, m, s) (a gated MLP's gate); y may be a or b.
template <int N, int REUSE>
void ev_mul(const ev_i8 a[N], const ev_i8 b[N], ev_i8 y[N], ev_i32 m, ev_i8 s) {
    static const int LANES = ev_ceil_div<N, REUSE>::value;
    static const int STEPS = ev_ceil_div<N, LANES>::value;
mul_steps:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int i = r * LANES + l;
            if (i < N) y[i] = ev_requant(ev_i32(a[i]) * ev_i32(b[i]), m, s);
        }
    }
}

// y[i] = lut[x[i] + 128] (GELU or any other element-wise function tabulated at compile time); y may be x.
template <int N, int REUSE>
void ev_lut(const ev_i8 x[N], ev_i8 y[N], const ev_i8 lut[256]) {
    static const int LANES = ev_ceil_div<N, REUSE>::value;
    static const int STEPS = ev_ceil_div<N, LANES>::value;
lut_steps:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int i = r * LANES + l;
            if (i < N) y[i] = lut[int(x[i]) + 128];
        }
    }
}

#endif  // EV_ELEMENTWISE_H
