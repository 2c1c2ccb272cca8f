// edgeviz HLS template library: scalar types and the integer helpers every template shares.
//
// The integer semantics are edgeviz/intmath.py, bit for bit. Under Vitis HLS (__SYNTHESIS__) or when
// <ap_int.h> is on the include path, the types are arbitrary-precision ap_int; otherwise they are
// plain stdint typedefs, so that g++ alone compiles the library for C simulation. Define
// EV_NO_AP_INT to force the stdint types. Every template casts explicitly to the width intmath.py uses
// (int32 accumulators, int64 products), so both type sets give identical results.
#ifndef EV_TYPES_H
#define EV_TYPES_H

#include <stdint.h>

#if defined(__SYNTHESIS__)
#define EV_USE_AP_INT 1
#elif !defined(EV_NO_AP_INT) && defined(__has_include)
#if __has_include(<ap_int.h>)
#define EV_USE_AP_INT 1
#endif
#endif

#if defined(EV_REQUIRE_AP_INT) && !defined(EV_USE_AP_INT)
#error "EV_REQUIRE_AP_INT is set but <ap_int.h> is not on the include path"
#endif

#ifdef EV_USE_AP_INT
#include <ap_int.h>
typedef ap_int<8> ev_i8;
typedef ap_int<16> ev_i16;
typedef ap_int<32> ev_i32;
typedef ap_int<64> ev_i64;
typedef ap_uint<16> ev_u16;
typedef ap_uint<64> ev_u64;
#else
typedef int8_t ev_i8;
typedef int16_t ev_i16;
typedef int32_t ev_i32;
typedef int64_t ev_i64;
typedef uint16_t ev_u16;
typedef uint64_t ev_u64;
#endif

// Fixed-point constants of intmath.py.
#define EV_LN_FRAC 12
#define EV_LN_INV_BITS 31
#define EV_LN_GAMMA_FRAC 16
#define EV_SOFTMAX_OUT_MAX 127

// Compile-time helpers for the parallelism knob: LANES = ceil(total / reuse) operations in flight.
template <int A, int B>
struct ev_ceil_div {
    static const int value = (A + B - 1) / B;
};

// clamp to int8
static inline ev_i8 ev_clamp8(ev_i64 v) {
#pragma HLS INLINE
    if (v < -128) return ev_i8(-128);
    if (v > 127) return ev_i8(127);
    return ev_i8(v);
}

// intmath.requantize: clamp((acc * m + 2^(s-1)) >> s), int64 product, arithmetic shift (floor).
static inline ev_i8 ev_requant(ev_i32 acc, ev_i32 m, ev_i8 s) {
#pragma HLS INLINE
    const int sh = int(s);
    ev_i64 v = (ev_i64(acc) * ev_i64(m) + (ev_i64(1) << (sh - 1))) >> sh;
    return ev_clamp8(v);
}

// intmath.isqrt: floor(sqrt(v)) for 0 <= v < 2^63, digit by digit (32 fixed iterations, no float).
static inline ev_i64 ev_isqrt(ev_i64 v) {
#pragma HLS INLINE off
    ev_u64 op = ev_u64(v);
    ev_u64 res = 0;
    ev_u64 one = ev_u64(1) << 62;
isqrt_loop:
    for (int i = 0; i < 32; i++) {
#pragma HLS PIPELINE II=1
        if (op >= res + one) {
            op = op - (res + one);
            res = (res >> 1) + one;
        } else {
            res = res >> 1;
        }
        one = one >> 2;
    }
    return ev_i64(res);
}

// Row copy, one element per cycle (used for token rows between buffers and row scratches).
template <int C>
void ev_copy_row(const ev_i8 *src, ev_i8 *dst) {
copy_row:
    for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II=1
        dst[c] = src[c];
    }
}

#endif  // EV_TYPES_H
