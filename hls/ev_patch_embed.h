// edgeviz HLS template: patch embedding, patch by patch straight from the CHW int8 image, so the image
// and the full token matrix need not coexist beyond one gathered patch row.
//   row[(ci*P + ky)*P + kx] = img[ci][py*P + ky][px*P + kx], patch = py*(W/P) + px
//   y[Y_ROW0 + patch][o] = requant(bias[(patch)][o] + sum_k row[k] w[o][k])       (an int8 linear)
// Y_ROW0 = 1 leaves row 0 for the class token. ROW_BIAS: bias is [patches][OUT] (positional embedding
// folded into the bias), else [OUT]. REUSE as in ev_linear (MACs in flight = P*P*C*OUT / REUSE).
#ifndef EV_PATCH_EMBED_H
#define EV_PATCH_EMBED_H

#include "ev_types.h"
#include "ev_linear.h"

template <int C, int H, int W, int P, int OUT, int REUSE, bool ROW_BIAS = false, int Y_ROW0 = 0, int YS = OUT>
void ev_patch_embed(const ev_i8 img[C * H * W], ev_i8 y[(Y_ROW0 + (H / P) * (W / P)) * YS],
                    const ev_i8 w[OUT * C * P * P], const ev_i32 bias[ROW_BIAS ? (H / P) * (W / P) * OUT : OUT],
                    const ev_i32 m[OUT], const ev_i8 s[OUT]) {
    static const int IN = C * P * P;
    static const int GW = W / P;
    static const int PATCHES = (H / P) * GW;
    static const int XR_PART = ev_mac_cfg<IN, OUT, REUSE>::XR_PART;
    static const int ACC_PART = ev_mac_cfg<IN, OUT, REUSE>::ACC_PART;
    ev_i8 xr[IN];
    ev_i32 acc[OUT];
#pragma HLS ARRAY_PARTITION variable=xr cyclic factor=XR_PART
#pragma HLS ARRAY_PARTITION variable=acc cyclic factor=ACC_PART
patches:
    for (int pt = 0; pt < PATCHES; pt++) {
        const int py = pt / GW;
        const int px = pt - py * GW;
    gather:
        for (int k = 0; k < IN; k++) {
#pragma HLS PIPELINE II=1
            const int ci = k / (P * P);
            const int rem = k - ci * P * P;
            const int ky = rem / P;
            const int kx = rem - ky * P;
            xr[k] = img[(ci * H + py * P + ky) * W + px * P + kx];
        }
        ev_mac_row<IN, OUT, REUSE>(xr, w, acc);
        ev_requant_row<OUT, false>(acc, ROW_BIAS ? bias + pt * OUT : bias, m, s, ev_no_lut, y + (Y_ROW0 + pt) * YS);
    }
}

// Write a constant token row (the quantised class token + its positional embedding) into row `row`.
template <int C, int YS = C>
void ev_set_row(ev_i8 *y, int row, const ev_i8 value[C]) {
    ev_copy_row<C>(value, y + row * YS);
}

#endif  // EV_PATCH_EMBED_H
