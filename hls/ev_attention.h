// edgeviz HLS template: multi-head attention core (intmath.attention), one head and one query row at a
// time, so the N x N score matrix never exists: only one score row (N int32 accumulators + N int8)
// plus the head's K and V slices (N x DH each) are held on chip.
//
// qkv [N][QS] holds per token [3][HEADS][DH] (q, k, v) from column 0; out [N][OS] gets [HEADS][DH].
//   scores_j = requant(q_i . k_j, m_qk, s_qk)  (1/sqrt(dh) folded into m_qk)
//   p        = softmax(scores) at scale 1/127
//   out_i[d] = requant(sum_j p_j v_j[d], m_av, s_av)
// REUSE: the N*DH MACs of q.K and of p.V for one query row each run LANES = ceil(N*DH / REUSE) per
// cycle over REUSE cycles; K and V are reshaped cyclic by LANES to feed them.
#ifndef EV_ATTENTION_H
#define EV_ATTENTION_H

#include "ev_types.h"
#include "ev_softmax.h"

// The two products every attention form shares, for one query row of one head. LANES = ceil(N*DH /
// REUSE) MACs a cycle over REUSE cycles; the buffer behind k / v must deliver LANES bytes a cycle.
// sacc[j] = sum_d q[d] * k[j * S + d] for the N keys (row j of K starts at k + j * S).
template <int N, int DH, int REUSE, int S>
void ev_qk_row(const ev_i8 q[DH], const ev_i8 *k, ev_i32 sacc[N]) {
#pragma HLS INLINE
    static const int TOTAL = N * DH;
    static const int LANES = ev_ceil_div<TOTAL, REUSE>::value;
    static const int STEPS = ev_ceil_div<TOTAL, LANES>::value;
    for (int j = 0; j < N; j++) {
#pragma HLS UNROLL
        sacc[j] = 0;
    }
qk_steps:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int idx = r * LANES + l;   // idx = j * DH + d
            if (idx < TOTAL) {
                const int j = idx / DH;
                const int d = idx - j * DH;
                sacc[j] = ev_i32(sacc[j] + ev_i32(ev_i16(q[d]) * ev_i16(k[j * S + d])));
            }
        }
    }
}

// oacc[d] = sum_j p[j] * v[j * S + d] over the N keys (row j of V starts at v + j * S).
template <int N, int DH, int REUSE, int S>
void ev_pv_row(const ev_i8 p[N], const ev_i8 *v, ev_i32 oacc[DH]) {
#pragma HLS INLINE
    static const int TOTAL = N * DH;
    static const int LANES = ev_ceil_div<TOTAL, REUSE>::value;
    static const int STEPS = ev_ceil_div<TOTAL, LANES>::value;
    for (int d = 0; d < DH; d++) {
#pragma HLS UNROLL
        oacc[d] = 0;
    }
pv_steps:
    for (int r = 0; r < STEPS; r++) {
#pragma HLS PIPELINE II=1
        for (int l = 0; l < LANES; l++) {
#pragma HLS UNROLL
            const int idx = r * LANES + l;   // idx = j * DH + d
            if (idx < TOTAL) {
                const int j = idx / DH;
                const int d = idx - j * DH;
                oacc[d] = ev_i32(oacc[d] + ev_i32(ev_i16(p[j]) * ev_i16(v[j * S + d])));
            }
        }
    }
}

template <int N, int HEADS, int DH, int REUSE, int QS = 3 * HEADS * DH, int OS = HEADS * DH>
void ev_attention(const ev_i8 qkv[N * QS], ev_i8 out[N * OS], ev_i32 m_qk, ev_i8 s_qk,
                  const ev_u16 exp_lut[256], ev_i32 m_av, ev_i8 s_av) {
    static const int E = HEADS * DH;
    static const int TOTAL = N * DH;
    static const int LANES = ev_ceil_div<TOTAL, REUSE>::value;
    ev_i8 kh[N * DH];   // [j][d]
    ev_i8 vh[N * DH];   // [j][d]
    ev_i8 q[DH];
    ev_i32 sacc[N];     // score row accumulators
    ev_i8 srow[N];      // score row -> probability row
    ev_i32 oacc[DH];
#pragma HLS ARRAY_RESHAPE variable=kh cyclic factor=LANES
#pragma HLS ARRAY_RESHAPE variable=vh cyclic factor=LANES
#pragma HLS ARRAY_PARTITION variable=q complete
#pragma HLS ARRAY_PARTITION variable=sacc complete
#pragma HLS ARRAY_PARTITION variable=srow complete
#pragma HLS ARRAY_PARTITION variable=oacc complete
attn_heads:
    for (int h = 0; h < HEADS; h++) {
    load_kv:
        for (int i = 0; i < TOTAL; i++) {
#pragma HLS PIPELINE II=1
            const int j = i / DH;
            const int d = i - j * DH;
            kh[i] = qkv[j * QS + E + h * DH + d];
            vh[i] = qkv[j * QS + 2 * E + h * DH + d];
        }
    attn_queries:
        for (int i = 0; i < N; i++) {
        load_q:
            for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
                q[d] = qkv[i * QS + h * DH + d];
            }
            ev_qk_row<N, DH, REUSE, DH>(q, kh, sacc);
        qk_requant:
            for (int j = 0; j < N; j++) {
#pragma HLS PIPELINE II=1
                srow[j] = ev_requant(sacc[j], m_qk, s_qk);
            }
            ev_softmax_row<N, REUSE>(srow, exp_lut);
            ev_pv_row<N, DH, REUSE, DH>(srow, vh, oacc);
        av_store:
            for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
                out[i * OS + h * DH + d] = ev_requant(oacc[d], m_av, s_av);
            }
        }
    }
}

// One query row of every head against K and V of all tokens, read straight from a token buffer (no
// per-head copy): the form a fused step uses when attention feeds the projection and residual add row by
// row (operator integration). q_row[HEADS*DH] holds [HEADS][DH]; kv[N][KS] holds per token K at columns
// [0, E) and V at [E, 2E) (E = HEADS*DH), each [HEADS][DH]; out_row[HEADS*DH] gets [HEADS][DH]. With the
// qkv split the schedule keeps only kv [N][2E] for all tokens (KS = 2E) and computes q row by row; the
// fused qkv tensor [N][3E] is read with kv = qkv + E and KS = 3E (ev_attention_row). Same bits as one
// row of intmath.attention. REUSE: the N*DH MACs of q.K and of p.V each take REUSE cycles at LANES =
// ceil(N*DH / REUSE) per cycle; the kv buffer must then be partitioned to deliver LANES bytes a cycle
// (the generator's job).
template <int N, int HEADS, int DH, int REUSE, int KS = 2 * HEADS * DH>
void ev_attention_kv_row(const ev_i8 *q_row, const ev_i8 *kv, ev_i8 *out_row, ev_i32 m_qk, ev_i8 s_qk,
                         const ev_u16 exp_lut[256], ev_i32 m_av, ev_i8 s_av) {
    static const int E = HEADS * DH;
    ev_i8 q[DH];
    ev_i32 sacc[N];
    ev_i8 srow[N];
    ev_i32 oacc[DH];
#pragma HLS ARRAY_PARTITION variable=q complete
#pragma HLS ARRAY_PARTITION variable=sacc complete
#pragma HLS ARRAY_PARTITION variable=srow complete
#pragma HLS ARRAY_PARTITION variable=oacc complete
row_heads:
    for (int h = 0; h < HEADS; h++) {
        for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
            q[d] = q_row[h * DH + d];
        }
        ev_qk_row<N, DH, REUSE, KS>(q, kv + h * DH, sacc);
        for (int j = 0; j < N; j++) {
#pragma HLS PIPELINE II=1
            srow[j] = ev_requant(sacc[j], m_qk, s_qk);
        }
        ev_softmax_row<N, REUSE>(srow, exp_lut);
        ev_pv_row<N, DH, REUSE, KS>(srow, kv + E + h * DH, oacc);
        for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
            out_row[h * DH + d] = ev_requant(oacc[d], m_av, s_av);
        }
    }
}

// One query row i of every head from the fused qkv buffer [N][QS] (per token [3][HEADS][DH]): q from row
// i, K and V of every token read in place. Same bits as one row of ev_attention.
template <int N, int HEADS, int DH, int REUSE, int QS = 3 * HEADS * DH>
void ev_attention_row(const ev_i8 qkv[N * QS], int i, ev_i8 out_row[HEADS * DH], ev_i32 m_qk, ev_i8 s_qk,
                      const ev_u16 exp_lut[256], ev_i32 m_av, ev_i8 s_av) {
#pragma HLS INLINE
    ev_attention_kv_row<N, HEADS, DH, REUSE, QS>(qkv + i * QS, qkv + HEADS * DH, out_row, m_qk, s_qk, exp_lut,
                                                 m_av, s_av);
}

// Without operator integration (--no-fuse) attention runs as three steps over materialised tensors, as on
// the MCU: ev_attn_scores -> ev_softmax (in place when token overwriting is on) -> ev_attn_av. The
// [HEADS*N][N] score / probability matrix exists whole. Both read q, K and V straight from the qkv buffer
// [N][QS] (per token [3][HEADS][DH]); REUSE as in ev_attention_kv_row (LANES = ceil(N*DH / REUSE) bytes of
// K or V a cycle: the generator splits the qkv buffer by LANES).

// scores[h][i][j] = requant(q_i . k_j, m_qk, s_qk) for every head h and query row i.
template <int N, int HEADS, int DH, int REUSE, int QS = 3 * HEADS * DH>
void ev_attn_scores(const ev_i8 qkv[N * QS], ev_i8 scores[HEADS * N * N], ev_i32 m_qk, ev_i8 s_qk) {
    static const int E = HEADS * DH;
    ev_i8 q[DH];
    ev_i32 sacc[N];
#pragma HLS ARRAY_PARTITION variable=q complete
#pragma HLS ARRAY_PARTITION variable=sacc complete
sc_heads:
    for (int h = 0; h < HEADS; h++) {
    sc_queries:
        for (int i = 0; i < N; i++) {
            for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
                q[d] = qkv[i * QS + h * DH + d];
            }
            ev_qk_row<N, DH, REUSE, QS>(q, qkv + E + h * DH, sacc);
        sc_store:
            for (int j = 0; j < N; j++) {
#pragma HLS PIPELINE II=1
                scores[(h * N + i) * N + j] = ev_requant(sacc[j], m_qk, s_qk);
            }
        }
    }
}

// out[i][h*DH + d] = requant(sum_j probs[h][i][j] v_j[d], m_av, s_av).
template <int N, int HEADS, int DH, int REUSE, int QS = 3 * HEADS * DH>
void ev_attn_av(const ev_i8 probs[HEADS * N * N], const ev_i8 qkv[N * QS], ev_i8 out[N * HEADS * DH],
                ev_i32 m_av, ev_i8 s_av) {
    static const int E = HEADS * DH;
    ev_i8 prow[N];
    ev_i32 oacc[DH];
#pragma HLS ARRAY_PARTITION variable=prow complete
#pragma HLS ARRAY_PARTITION variable=oacc complete
av_heads:
    for (int h = 0; h < HEADS; h++) {
    av_queries:
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) {
#pragma HLS PIPELINE II=1
                prow[j] = probs[(h * N + i) * N + j];
            }
            ev_pv_row<N, DH, REUSE, QS>(prow, qkv + 2 * E + h * DH, oacc);
        av_out:
            for (int d = 0; d < DH; d++) {
#pragma HLS PIPELINE II=1
                out[i * E + h * DH + d] = ev_requant(oacc[d], m_av, s_av);
            }
        }
    }
}

#endif  // EV_ATTENTION_H
