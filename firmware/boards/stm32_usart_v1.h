/* The UART of the STM32 parts whose USART has the SR / DR register pair (STM32F1, STM32F4: RM0008,
 * RM0383 "USART registers"; the F7 and U5 have ISR / RDR / TDR instead): its set-up at 115200 8N1 and
 * board.h's polled byte I/O. The including board.c defines USART_BASE (the instance its dev board
 * wires to the USB virtual COM port) and includes cortex_m.h first (board_counter, ev_expired). */
#ifndef EV_STM32_USART_V1_H
#define EV_STM32_USART_V1_H

#include <stdint.h>

/* SR 0x00, DR 0x04, BRR 0x08, CR1 0x0C, CR2 0x10, CR3 0x14 (the reference manuals' USART register map) */
#define USART_SR REG(USART_BASE + 0x00u)
#define USART_DR REG(USART_BASE + 0x04u)
#define USART_BRR REG(USART_BASE + 0x08u)
#define USART_CR1 REG(USART_BASE + 0x0Cu)
#define USART_CR2 REG(USART_BASE + 0x10u)
#define USART_CR3 REG(USART_BASE + 0x14u)
#define SR_RXNE (1u << 5)
#define SR_TC (1u << 6)
#define SR_TXE (1u << 7)

/* 115200 8N1, oversampling by 16: BRR = f_PCLK / baud as mantissa.fraction in 12.4 ("Fractional
 * baud rate generation"); pclk_hz is the clock of the APB bus the instance sits on */
static void ev_usart_init(uint32_t pclk_hz)
{
    USART_CR1 = 0;
    USART_CR2 = 0;
    USART_CR3 = 0;
    USART_BRR = (pclk_hz + 115200u / 2u) / 115200u;
    USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2);     /* UE, TE, RE (USART_CR1) */
}

int board_uart_getc(uint32_t timeout_ms)
{
    uint64_t start = board_counter();
    for (;;) {
        /* reading SR then DR also clears an overrun / framing / noise error (USART_SR): a lost byte
         * shows up as a CRC error */
        if (USART_SR & SR_RXNE) return (int)(USART_DR & 0xFFu);
        if (ev_expired(start, timeout_ms)) return -1;
    }
}

void board_uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (!(USART_SR & SR_TXE)) { }
        USART_DR = *p++;
    }
}

void board_uart_flush(void)
{
    while (!(USART_SR & SR_TC)) { }
}

#endif
