/* Board layer: the few things the runtime needs from a board. One implementation per
 * firmware/boards/<board>/board.c. */
#ifndef EV_BOARD_H
#define EV_BOARD_H

#include <stdint.h>

/* Clocks, UART and the cycle/instruction counter. Called once by main() before anything else. */
void board_init(void);

/* One received byte (0..255), or -1 if none arrived within timeout_ms of real time.
 * BOARD_WAIT_FOREVER waits without a limit, and may sleep the core meanwhile. */
#define BOARD_WAIT_FOREVER 0xFFFFFFFFu
int board_uart_getc(uint32_t timeout_ms);

/* Blocking write; returns when the bytes are in the UART (board_uart_flush waits for the wire). */
void board_uart_write(const uint8_t *p, uint32_t n);
void board_uart_flush(void);

/* Free-running 64-bit counter and its unit (EV_UNIT_CYCLES or EV_UNIT_INSTRUCTIONS from
 * ev_protocol.h); board_counter_per_ms() converts milliseconds of board time into counts. */
uint64_t board_counter(void);
uint8_t board_counter_unit(void);
uint32_t board_counter_per_ms(void);

/* SysTick ticks (the part profile's counter, kernels/ev_parts.h) in board_counter's unit. Only
 * part-profile images call it, which edgeviz builds for the emulator machines. */
uint64_t board_ticks_to_counter(uint64_t ticks);

/* Core clock in Hz as configured by board_init (the reference clock of SysTick on the emulator). */
uint32_t board_clock_hz(void);

/* NUL-terminated short board name reported by INFO. */
extern const char board_name[];

/* Whole-system reset (RESET command); does not return. */
void board_reset(void) __attribute__((noreturn));

/* End the program: semihosting exit on the emulator, a parked core on a board. */
void board_exit(int code) __attribute__((noreturn));

#endif
