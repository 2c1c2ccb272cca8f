/* The part profile: which kind of work a step's instructions do (MAC loops, softmax, norms,
 * requantisation, data movement), for `edgeviz profile --parts`.
 *
 * A kernel marks the stretch of code that does one kind of work:
 *     EV_PART_ENTER(pp, EV_PART_MAC);  ...the MAC loops...;  EV_PART_LEAVE(pp);
 * and every return inside the stretch leaves it first. Stretches may nest (a kernel that calls
 * another): entering one switches the running part and leaving it switches back, so each
 * instruction is counted in the innermost part it runs in, once.
 *
 * Only an image built with -DEV_PROFILE_PARTS (edgeviz builds one for the emulator machine) counts:
 * there a switch reads SysTick's current value (one load, the counter the emulator boards run at
 * the processor clock with a 2^24 reload) and adds the ticks since the previous switch to the part
 * that was running. The runtime (ev_runtime.c) files the sums under the step that ran them and
 * converts them to the board counter's unit. Anything else (host builds, the normal firmware) gets
 * a constant that the compiler drops: the normal images' code is the same as without these lines
 * (tests/test_profile_parts.py compiles the kernels both ways and compares their code).
 *
 * The counter ticks once per 1e9 / SYSCLK_HZ instructions under QEMU -icount (40 on the MPS2
 * machines), so each stretch between two switches is measured to within one tick; the runtime
 * counts the switches, and the host reports that count of ticks as the error bound of a step's
 * parts. A stretch must be shorter than 2^24 ticks. */
#ifndef EV_PARTS_H
#define EV_PARTS_H

#if defined(EV_PROFILE_PARTS) && defined(__arm__) && !defined(__ASSEMBLER__)
#include <stdint.h>

#include "ev_protocol.h"   /* EV_PART_MAC .. EV_NUM_PARTS (edgeviz/runner/protocol.py's PARTS) */

/* Index EV_NUM_PARTS is "outside every part": the runtime sets it at a step's start and drops its
 * ticks; the host gets a step's unmarked instructions as its total minus the parts. */
extern uint32_t ev_part_ticks[EV_NUM_PARTS + 1];
extern uint32_t ev_part_mark;        /* SysTick's value at the last switch */
extern uint32_t ev_part_switches;    /* switches since the step began: the error bound in ticks */
extern int ev_part_running;

#define EV__PART_SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static inline __attribute__((always_inline)) int ev__part_switch(int part)
{
    uint32_t now = EV__PART_SYST_CVR;
    int prev = ev_part_running;
    ev_part_ticks[prev] += (ev_part_mark - now) & 0xFFFFFFu;   /* SysTick counts down, 24 bits */
    ev_part_mark = now;
    ev_part_running = part;
    ev_part_switches++;
    return prev;
}

#define EV_PART_ENTER(var, part) const int var = ev__part_switch(part)
#define EV_PART_LEAVE(var) ((void)ev__part_switch(var))
#else
#define EV_PART_ENTER(var, part) const int var = 0
#define EV_PART_LEAVE(var) ((void)(var))
#endif

#endif /* EV_PARTS_H */
