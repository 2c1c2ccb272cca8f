/* QEMU mps2-an385 (emulated Cortex-M3; ARMv6-M code for a Cortex-M0+ runs on it too): the board
 * layer is qemu_mps.h; these are the machine's facts from QEMU 7.2's hw/arm/mps2.c. */
#define BOARD_NAME "mps2-an385"
#define UART0_BASE 0x40004000u
#define UART0_RX_IRQ 0u                     /* UART0 RX -> IRQ 0 (TX is IRQ 1) */
#define SYSCLK_HZ 25000000u
#define INSTR_PER_TICK_NUM 40u              /* 1e9 instructions per virtual second / 25 MHz */
#define INSTR_PER_TICK_DEN 1u

#include "qemu_mps.h"
