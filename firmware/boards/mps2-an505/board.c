/* QEMU mps2-an505 (emulated Cortex-M33 with FPU and DSP, IoT Kit): the board layer is qemu_mps.h;
 * these are the machine's facts from QEMU 7.2's hw/arm/mps2-tz.c. The core boots Secure, so UART0
 * is used at its Secure alias (0x40200000 + 0x10000000); its peripheral protection controller passes
 * Secure accesses out of reset. */
#define BOARD_NAME "mps2-an505"
#define UART0_BASE 0x50200000u
#define UART0_RX_IRQ 32u                    /* expansion IRQ 0 (the IoT Kit's own lines are 0-31) */
#define SYSCLK_HZ 20000000u                 /* MAINCLK */
#define INSTR_PER_TICK_NUM 50u              /* 1e9 instructions per virtual second / 20 MHz */
#define INSTR_PER_TICK_DEN 1u

#include "qemu_mps.h"
