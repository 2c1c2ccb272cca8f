// edgeviz HLS templates: int8 linear layers (intmath.linear): token rows, strided rows, the head.
//
// Reuse factor REUSE: the IN*OUT multiply-accumulates of one token row are issued LANES =
// ceil(IN*OUT / REUSE) at a time over about REUSE pipelined cycles (II=1). The weight ROM w[OUT*IN]
// (row-major [o][k], as in the C kernels) is reshaped cyclic by LANES, so cycle r reads one word holding
// w[r*LANES .. r*LANES+LANES-1]. Integer sums are exact, so REUSE never changes a result. See ev_mac_cfg
// for the two schedules (output-parallel, row-serial) the factor selects.
#ifndef EV_LINEAR_H
#define EV_LINEAR_H

#include "ev_types.h"

// Stand-in table for layers without a LUT epilogue (never read: HAS_LUT is false), so that no null
// pointer reaches an array argument.
static const ev_i8 ev_no_lut[256] = {0};

// Shape of one token row's MAC schedule.
//   LANES  = ceil(IN*OUT / REUSE) MACs per cycle, STEPS = ceil(IN*OUT / LANES) cycles (II=1).
//   Output-parallel form (LANES >= IN, or LANES not dividing IN): the flattened index o*IN + k advances
//     LANES per cycle; accumulators and the input row are registers (complete partition).
//   Row-serial form (LANES < IN and IN % LANES == 0): output o takes IN/LANES cycles with a scalar running
//     sum, so the accumulators form a plain one-write-per-cycle memory and the input row is partitioned
//     cyclic by LANES only. Both forms read the weights as one LANES-wide word per cycle.
template <int IN, int OUT, int REUSE>
struct ev_mac_cfg {
    static const int TOTAL = IN * OUT;
    static const int LANES = ev_ceil_div<TOTAL, REUSE>::value;
    static const int STEPS = ev_ceil_div<TOTAL, LANES>::value;
    static const bool ROW_SERIAL = (LANES < IN) && (IN % LANES == 0);
    static const int XR_PART = ROW_SERIAL ? LANES : IN;     // cyclic partition factor of the input row
    static const int ACC_PART = ROW_SERIAL ? 1 : OUT;       // cyclic partition factor of the accumulators
};

// One token row: acc[o] = sum_k xr[k] w[o][k]  (int32) in STEPS cycles. The weight ROM w[OUT*IN] is
// reshaped cyclic by LANES: cycle t reads the word w[t*LANES .. t*LANES+LANES-1].
template <int IN, int OUT, int REUSE>
void ev_mac_row(const ev_i8 xr[IN], const ev_i8 w[OUT * IN], ev_i32 acc[OUT]) {
#pragma HLS INLINE
    typedef ev_mac_cfg<IN, OUT, REUSE> cfg;
    static const int TOTAL = cfg::TOTAL;
    static const int LANES = cfg::LANES;
    static const int STEPS = cfg::STEPS;
#pragma HLS ARRAY_RESHAPE variable=w cyclic factor=LANES
    if (cfg::ROW_SERIAL) {
        static const int KSTEPS = IN / LANES;
        ev_i32 run = 0;
    mac_serial:
        for (int t = 0; t < STEPS; t++) {
#pragma HLS PIPELINE II=1
            const int o = t / KSTEPS;
            const int ks = t - o * KSTEPS;
            ev_i32 part = 0;
        mac_serial_lanes:
            for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
                part = ev_i32(part + ev_i32(ev_i16(xr[ks * LANES + l]) * ev_i16(w[t * LANES + l])));
            }
            run = ev_i32((ks == 0 ? ev_i32(0) : run) + part);
            if (ks == KSTEPS - 1) acc[o] = run;
        }
    } else {
    init_acc:
        for (int o = 0; o < OUT; o++) {
#pragma HLS UNROLL
            acc[o] = 0;
        }
    mac_steps:
        for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        mac_lanes:
            for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
                const int idx = r * LANES + l;
                if (idx < TOTAL) {
                    const int o = idx / IN;
                    const int k = idx - o * IN;
                    acc[o] = ev_i32(acc[o] + ev_i32(ev_i16(xr[k]) * ev_i16(w[idx])));
                }
            }
        }
    }
}

// Requantise one row: yr[o] = lut?[requant(bias[o] + acc[o], m[o], s[o])], one output per cycle.
template <int OUT, bool HAS_LUT>
void ev_requant_row(const ev_i32 acc[OUT], const ev_i32 *bias, const ev_i32 m[OUT], const ev_i8 s[OUT],
                    const ev_i8 lut[256], ev_i8 *yr) {
#pragma HLS INLINE
requant_row:
    for (int o = 0; o < OUT; o++) {
#pragma HLS PIPELINE II=1
        ev_i8 v = ev_requant(ev_i32(acc[o] + bias[o]), m[o], s[o]);
        if (HAS_LUT) v = lut[int(v) + 128];
        yr[o] = v;
    }
}

// y[n][o] = lut?[requant(bias[o or n][o] + sum_k x[n][k] w[o][k])] for ROWS token rows.
// Row strides XS / YS (elements) let layers read or write part of a wider token buffer. Each row is read
// whole into a register row before its outputs are written, so y may be the same buffer as x with the
// same stride (token overwriting) when OUT <= XS.
// ROW_BIAS: bias is [ROWS][OUT] (e.g. a positional embedding folded in), else [OUT].
template <int ROWS, int IN, int OUT, int REUSE, bool HAS_LUT = false, bool ROW_BIAS = false, int XS = IN,
          int YS = OUT>
void ev_linear(const ev_i8 x[ROWS * XS], ev_i8 y[ROWS * YS], const ev_i8 w[OUT * IN],
               const ev_i32 bias[ROW_BIAS ? ROWS * OUT : OUT], const ev_i32 m[OUT], const ev_i8 s[OUT],
               const ev_i8 lut[256]) {
    static const int XR_PART = ev_mac_cfg<IN, OUT, REUSE>::XR_PART;
    static const int ACC_PART = ev_mac_cfg<IN, OUT, REUSE>::ACC_PART;
    ev_i8 xr[IN];
    ev_i32 acc[OUT];
#pragma HLS ARRAY_PARTITION variable=xr cyclic factor=XR_PART
#pragma HLS ARRAY_PARTITION variable=acc cyclic factor=ACC_PART
linear_rows:
    for (int n = 0; n < ROWS; n++) {
    load_row:
        for (int k = 0; k < IN; k++) {
#pragma HLS PIPELINE II=1
            xr[k] = x[n * XS + k];
        }
        ev_mac_row<IN, OUT, REUSE>(xr, w, acc);
        ev_requant_row<OUT, HAS_LUT>(acc, ROW_BIAS ? bias + n * OUT : bias, m, s, lut, y + n * YS);
    }
}

#endif  // EV_LINEAR_H
