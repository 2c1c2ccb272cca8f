/* QEMU mps3-an547 (emulated Cortex-M55 with FPU, DSP and MVE, SSE-300): the board layer is
 * qemu_mps.h; these are the machine's facts from QEMU 7.2's hw/arm/mps2-tz.c. The core boots Secure,
 * so UART0 is used at its Secure alias (0x49303000 + 0x10000000); its peripheral protection
 * controller passes Secure accesses out of reset. */
#define BOARD_NAME "mps3-an547"
#define UART0_BASE 0x59303000u
#define UART0_RX_IRQ 33u                    /* expansion IRQ 1 (the SSE-300's own lines are 0-31) */
#define SYSCLK_HZ 32000000u
#define INSTR_PER_TICK_NUM 125u             /* 1e9 / 32 MHz = 31.25 instructions per tick */
#define INSTR_PER_TICK_DEN 4u

#include "qemu_mps.h"
