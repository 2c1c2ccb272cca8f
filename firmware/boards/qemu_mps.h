/* The board layer of QEMU's MPS2 / MPS3 machines (every emulated core edgeviz runs on): CMSDK UART0,
 * SysTick as an instruction counter (QEMU -icount shift=0: 1 instruction = 1 ns of virtual time, and
 * SysTick on the processor clock ticks at SYSCLK_HZ of that virtual time), serial timeouts in host
 * real time and exit, both through semihosting.
 *
 * Not a header to include anywhere else: firmware/boards/<machine>/board.c defines the machine's
 * facts, then includes this file once, so the machines share one implementation:
 *   BOARD_NAME            the name INFO reports (the QEMU machine)
 *   UART0_BASE            CMSDK UART0 as the core sees it at boot
 *   UART0_RX_IRQ          its RX interrupt (NVIC number), which wakes the core from WFI
 *   SYSCLK_HZ             the processor clock SysTick counts (QEMU's value for the machine)
 *   INSTR_PER_TICK_NUM / INSTR_PER_TICK_DEN   1e9 / SYSCLK_HZ as a fraction
 * Plain C for every core from ARMv6-M up (no DSP, no divide instruction needed). */
#ifndef EV_QEMU_MPS_BOARD
#define EV_QEMU_MPS_BOARD

#include <stdint.h>

#include "board.h"
#include "ev_protocol.h"

#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_RXINT (1u << 3)
#define UART_INT_RX (1u << 1)
/* UART0's RX interrupt in the NVIC's set/clear-enable and clear-pending registers (IRQ 32 and up on
 * the SSE-based machines, whose first 32 lines are the subsystem's own). */
#define NVIC_WORD(base) (*(volatile uint32_t *)((base) + 4u * (UART0_RX_IRQ / 32u)))
#define NVIC_ISER NVIC_WORD(0xE000E100u)
#define NVIC_ICER NVIC_WORD(0xE000E180u)
#define NVIC_ICPR NVIC_WORD(0xE000E280u)
#define UART0_RX_BIT (1u << (UART0_RX_IRQ % 32u))

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)

#define TICKS_PER_WRAP (1u << 24)

const char board_name[] = BOARD_NAME;

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

void board_init(void)
{
    UART_BAUDDIV = SYSCLK_HZ / 115200u;    /* QEMU ignores the rate but needs BAUDDIV >= 16 */
    UART_INTCLR = 0xFu;
    UART_CTRL = 0x3u;                       /* TX + RX enable; RX interrupt only to wake from WFI */

    SYST_RVR = TICKS_PER_WRAP - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7u;                        /* processor clock, interrupt on wrap, enable */
    /* CVR = 0 is read as a full count until the first tick loads RVR (no wrap is counted), so
     * wait for that load: otherwise the counter steps back once, one tick from now. */
    while (SYST_CVR == 0u) {
    }
}

static uint64_t ticks(void)
{
    uint32_t hi, v;
    do {
        hi = systick_wraps;
        v = SYST_CVR;
    } while (hi != systick_wraps);
    return ((uint64_t)hi << 24) + (uint64_t)(TICKS_PER_WRAP - 1u - v);
}

/* Instructions = ticks x 1e9 / SYSCLK_HZ (exact when SYSCLK_HZ divides 1e9; on a 32 MHz machine one
 * tick is 31.25 instructions, so counts there are rounded to a tick). */
uint64_t board_counter(void) { return ticks() * INSTR_PER_TICK_NUM / INSTR_PER_TICK_DEN; }
uint64_t board_ticks_to_counter(uint64_t t) { return t * INSTR_PER_TICK_NUM / INSTR_PER_TICK_DEN; }
uint8_t board_counter_unit(void) { return EV_UNIT_INSTRUCTIONS; }
uint32_t board_counter_per_ms(void) { return 1000000u; }
uint32_t board_clock_hz(void) { return SYSCLK_HZ; }

/* Host real time in ns (semihosting SYS_ELAPSED; QEMU's SYS_TICKFREQ is 1e9). Serial timeouts
 * follow real time, because under -icount polling MMIO advances virtual time hundreds of times more
 * slowly than the wall clock, so a SysTick timeout would fire seconds late. But a loaded host may
 * deschedule QEMU for tens of ms between two bytes of one frame, so a timeout also needs the guest
 * to have polled at least POLLS_PER_MS times per ms (about 1 us per poll on an idle host): a
 * starved emulator does not time out a frame that is still arriving. */
#define POLLS_PER_MS 1000u

static uint64_t host_ns(void)
{
    volatile uint32_t t[2] = {0, 0};
    register uint32_t r0 __asm("r0") = 0x30u;       /* SYS_ELAPSED */
    register uint32_t r1 __asm("r1") = (uint32_t)(uintptr_t)t;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return ((uint64_t)t[1] << 32) | t[0];
}

/* Sleep (WFI) until a byte arrives, so an idle emulator costs no host CPU. SysTick is stopped
 * meanwhile: under -icount sleep=off an armed timer would end every WFI at once. The UART RX
 * interrupt only wakes the core (PRIMASK is set; no handler runs). */
static int wait_rx_sleeping(void)
{
    uint32_t csr = SYST_CSR;
    SYST_CSR = 0;
    __asm volatile("cpsid i" ::: "memory");
    UART_CTRL |= UART_CTRL_RXINT;
    NVIC_ISER = UART0_RX_BIT;
    while (!(UART_STATE & UART_STATE_RXFULL)) {
        __asm volatile("wfi" ::: "memory");
        UART_INTCLR = UART_INT_RX;
        NVIC_ICPR = UART0_RX_BIT;
    }
    UART_CTRL &= ~UART_CTRL_RXINT;
    UART_INTCLR = UART_INT_RX;
    NVIC_ICER = UART0_RX_BIT;
    NVIC_ICPR = UART0_RX_BIT;
    __asm volatile("cpsie i" ::: "memory");
    SYST_CSR = csr;
    return (int)(UART_DATA & 0xFFu);
}

static int poll_rx(uint32_t timeout_ms)
{
    /* The clock is read only once the byte is late (64 polls): a semihosting call costs far more
     * than a poll, and most bytes of a frame arrive within a few polls. */
    uint64_t limit = (uint64_t)timeout_ms * 1000000u, start = 0;
    uint32_t min_polls = timeout_ms * POLLS_PER_MS;
    for (uint32_t i = 1;; i++) {
        if (UART_STATE & UART_STATE_RXFULL) return (int)(UART_DATA & 0xFFu);
        if ((i & 63u) == 0) {
            if (i == 64u) start = host_ns();
            else if (i >= min_polls && host_ns() - start >= limit) return -1;
        }
    }
}

/* Waiting for the next frame: spin a few ms first (a host sending back-to-back requests gets the
 * low latency of a polling core), then sleep until the next byte. */
#define SPIN_BEFORE_SLEEP_MS 5u

int board_uart_getc(uint32_t timeout_ms)
{
    if (UART_STATE & UART_STATE_RXFULL) return (int)(UART_DATA & 0xFFu);
    if (timeout_ms != BOARD_WAIT_FOREVER) return poll_rx(timeout_ms);
    int c = poll_rx(SPIN_BEFORE_SLEEP_MS);
    return c >= 0 ? c : wait_rx_sleeping();
}

void board_uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (UART_STATE & UART_STATE_TXFULL) { }
        UART_DATA = *p++;
    }
}

void board_uart_flush(void)
{
    while (UART_STATE & UART_STATE_TXFULL) { }
}

void board_reset(void)
{
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u;                /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) { }
}

void board_exit(int code)
{
    /* semihosting SYS_EXIT_EXTENDED (0x20): block = {ADP_Stopped_ApplicationExit, code} */
    volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
    register uint32_t r0 __asm("r0") = 0x20u;
    register uint32_t r1 __asm("r1") = (uint32_t)(uintptr_t)block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) { }
}

#endif
