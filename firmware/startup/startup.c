/* Vector table and reset handler for every Cortex-M board edgeviz builds for (ARMv6-M to v8.1-M).
 * Reset: enable the FPU / MVE (CPACR) before any C code may touch it, copy .data from flash, zero
 * .bss, point VTOR at our table, call main(), exit through the board layer if main returns. */
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*ev_vector_t)(void);

/* 16 system exceptions; no device interrupts are used (the runtime polls). */
__attribute__((section(".isr_vector"), used))
const ev_vector_t ev_vector_table[16] = {
    (ev_vector_t)(uintptr_t)__stack_top,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((noreturn, used)) void Reset_Handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10 + CP11 full access (the FPU, and on v8.1-M the MVE vector unit): the hard-float ABI may
     * use FP registers anywhere below, and GCC may vectorise loops with MVE. A core without them
     * has no CPACR to write (QEMU's Cortex-M3 faults on it). */
    SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)ev_vector_table;

    /* Plain word loops: no library call before .data/.bss exist. */
    uint32_t *src = __data_load, *dst = __data_start;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; ) *dst++ = 0;

    int rc = main();
    board_exit(rc);
}

/* Any unexpected exception: stop with a recognisable code (QEMU exits, a board parks). */
void Default_Handler(void)
{
    board_exit(0xEF);
}
