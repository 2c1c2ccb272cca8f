// edgeviz HLS template library: everything a generated top function includes.
// Semantics: edgeviz/intmath.py, bit for bit. See each header for its template's contract.
#ifndef EV_LIB_H
#define EV_LIB_H
#include "ev_types.h"
#include "ev_linear.h"
#include "ev_layernorm.h"
#include "ev_softmax.h"
#include "ev_elementwise.h"
#include "ev_attention.h"
#include "ev_pool.h"
#include "ev_patch_embed.h"
#include "ev_tfl.h"
#endif
