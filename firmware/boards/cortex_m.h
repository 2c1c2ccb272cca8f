/* What the real boards' layers share: the Cortex-M core's own registers (the same address on every
 * part, from the ARMv7-M / ARMv8-M / ARMv6-M Architecture Reference Manuals), the cycle counter, reset
 * and exit. Each firmware/boards/<board>/board.c defines its part's facts, then includes this file
 * once (like qemu_mps.h for the emulator machines).
 *
 * The board.c defines before including:
 *   EV_COUNTER_SYSTICK   (on the M0+, which has no DWT cycle counter) count cycles with SysTick on
 *                        the processor clock, extended to 64 bits by its wrap interrupt; otherwise
 *                        DWT->CYCCNT, extended in software
 *   EV_DWT_LOCKED        (the Cortex-M7) write the DWT's CoreSight lock access key before using it
 * and provides `static uint32_t core_hz` (the clock board_init configured). */
#ifndef EV_BOARD_CORTEX_M
#define EV_BOARD_CORTEX_M

#include <stdint.h>

#include "board.h"
#include "ev_protocol.h"

#define EV_REG(addr) (*(volatile uint32_t *)(addr))

/* System Control Block (ARMv7-M ARM B3.2.2, ARMv6-M ARM B3.2.2) */
#define SCB_AIRCR EV_REG(0xE000ED0Cu)
#define AIRCR_RESET (0x05FAu << 16 | 1u << 2)   /* VECTKEY | SYSRESETREQ */
/* Debug Exception and Monitor Control (ARMv7-M ARM C1.6.5): TRCENA powers the DWT */
#define DEMCR EV_REG(0xE000EDFCu)
/* Data Watchpoint and Trace unit (ARMv7-M ARM C1.8.6-C1.8.7): CTRL.CYCCNTENA is bit 0 */
#define DWT_CTRL EV_REG(0xE0001000u)
#define DWT_CYCCNT EV_REG(0xE0001004u)
#define DWT_LAR EV_REG(0xE0001FB0u)               /* CoreSight lock access (the M7 has it, ARMv8-M not) */
/* SysTick (ARMv6-M ARM B3.3.2): CSR ENABLE bit 0, TICKINT bit 1, CLKSOURCE bit 2 (processor clock) */
#define SYST_CSR EV_REG(0xE000E010u)
#define SYST_RVR EV_REG(0xE000E014u)
#define SYST_CVR EV_REG(0xE000E018u)

/* Busy-wait for (reg & mask) == want, at most `limit` reads; 1 when it came. */
static int ev_wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t want, uint32_t limit)
{
    for (uint32_t i = 0; i < limit; i++)
        if ((*reg & mask) == want) return 1;
    return 0;
}

#ifdef EV_COUNTER_SYSTICK
/* SysTick counts the processor clock down from 2^24 - 1; its wrap interrupt (the startup's vector
 * table names SysTick_Handler) carries the high part. At 133 MHz a wrap is 126 ms. */
#define SYSTICK_WRAP (1u << 24)
static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

static void ev_counter_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_WRAP - 1u;
    SYST_CVR = 0;                       /* any write clears it; the next tick reloads RVR */
    SYST_CSR = 0x7u;                    /* processor clock, interrupt on wrap, enable */
    while (SYST_CVR == 0u) { }          /* see qemu_mps.h: wait for the first reload */
}

uint64_t board_counter(void)
{
    uint32_t hi, v;
    do {
        hi = systick_wraps;
        v = SYST_CVR;
    } while (hi != systick_wraps);
    return ((uint64_t)hi << 24) + (uint64_t)(SYSTICK_WRAP - 1u - v);
}
#else
static void ev_counter_init(void)
{
    DEMCR |= (1u << 24);                /* TRCENA */
#ifdef EV_DWT_LOCKED
    DWT_LAR = 0xC5ACCE55u;              /* unlock: the M7's DWT ignores writes after reset */
#endif
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;                     /* CYCCNTENA */
}

/* CYCCNT is 32 bits (27 s at 160 MHz): extended in software, so read it at least that often (the
 * runtime reads it around every inference and while it waits for bytes). */
uint64_t board_counter(void)
{
    static uint32_t last, high;
    uint32_t now = DWT_CYCCNT;
    if (now < last) high++;
    last = now;
    return ((uint64_t)high << 32) | now;
}
#endif

uint8_t board_counter_unit(void) { return EV_UNIT_CYCLES; }
uint32_t board_counter_per_ms(void) { return core_hz / 1000u; }
uint32_t board_clock_hz(void) { return core_hz; }
/* SysTick on the processor clock (what kernels/ev_parts.h reads) ticks once per cycle. */
uint64_t board_ticks_to_counter(uint64_t ticks) { return ticks; }

/* Has timeout_ms of board time passed since `start` (a board_counter() value)? */
static int ev_expired(uint64_t start, uint32_t timeout_ms)
{
    return timeout_ms != BOARD_WAIT_FOREVER &&
           board_counter() - start >= (uint64_t)timeout_ms * (core_hz / 1000u);
}

void board_reset(void)
{
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = AIRCR_RESET;
    __asm volatile("dsb" ::: "memory");
    for (;;) { }
}

/* No one to report the code to on a board: park the core (a debugger can still read it in r0). */
void board_exit(int code)
{
    (void)code;
    __asm volatile("cpsid i" ::: "memory");
    for (;;) { __asm volatile("wfi"); }
}

#endif
