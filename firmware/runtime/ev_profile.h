/* Per-layer profiling hooks used by the generated model.c:
 *     EV_LAYER_BEGIN(i); ...layer i...; EV_LAYER_END(i);
 * On the firmware (an ARM build without EV_NO_PROFILE) they add the board counter's delta (cycles on
 * a board, instructions on the emulator) to ev_prof_layer[i]; the runtime zeroes the counters before
 * each inference, so a layer entered several times accumulates. Brackets must not nest.
 * A part-profile image (-DEV_PROFILE_PARTS, see kernels/ev_parts.h) also files the kernels' part
 * counts under the layer (ev_parts_layer_begin / _end in ev_runtime.c).
 * On host builds they expand to nothing. */
#ifndef EV_PROFILE_H
#define EV_PROFILE_H

#if defined(__arm__) && !defined(EV_NO_PROFILE)
#include <stdint.h>

extern uint64_t ev_prof_layer[];
extern uint64_t ev_prof_t0;
uint64_t board_counter(void);

#ifdef EV_PROFILE_PARTS
void ev_parts_layer_begin(void);
void ev_parts_layer_end(int layer);
#define EV_LAYER_BEGIN(i) do { (void)(i); ev_prof_t0 = board_counter(); ev_parts_layer_begin(); } while (0)
#define EV_LAYER_END(i) do { ev_prof_layer[(i)] += board_counter() - ev_prof_t0; ev_parts_layer_end(i); } while (0)
#else
#define EV_LAYER_BEGIN(i) do { (void)(i); ev_prof_t0 = board_counter(); } while (0)
#define EV_LAYER_END(i) do { ev_prof_layer[(i)] += board_counter() - ev_prof_t0; } while (0)
#endif
#else
#define EV_LAYER_BEGIN(i) do { (void)(i); } while (0)
#define EV_LAYER_END(i) do { (void)(i); } while (0)
#endif

#endif
