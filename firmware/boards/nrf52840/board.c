/* Nordic nRF52840 (nRF52840 DK): 64 MHz core clock, HFCLK from the 32 MHz crystal (HFXO) so that the
 * baud rate is crystal-accurate, instruction cache on, serial instance 0 on P0.06 (TX) / P0.08 (RX)
 * at 115200 8N1 without flow control (the DK's interface MCU virtual COM port, nRF52840 DK user guide
 * "Virtual COM port"), DWT->CYCCNT as the cycle counter, RX by polling.
 * Instance 0 runs in its UART mode (ENABLE = 4), not UARTE (ENABLE = 8): the same peripheral and
 * pins, but bytes move through the RXD / TXD registers with a 6-byte RX FIFO and one RXDRDY event per
 * byte, so a polled reader needs no EasyDMA buffer ring and TX needs no RAM copy of flash data.
 * Register addresses and fields: Nordic's nRF52840 Product Specification v1.x; each comment names
 * the chapter ("Memory", "CLOCK", "UART", "GPIO", "NVMC") and the register.
 * Compiled and linked, not run on a board. */
#include <stdint.h>

static uint32_t core_hz = 64000000u;        /* CPU clock, HFINT or HFXO alike (PS "CLOCK") */

#include "cortex_m.h"

#define REG EV_REG

/* Instances (PS "Memory", instantiation table): CLOCK 0x40000000, UART0 0x40002000, NVMC 0x4001E000,
 * GPIO P0 0x50000000 */
#define CLOCK_TASKS_HFCLKSTART REG(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED REG(0x40000100u)
#define CLOCK_HFCLKSTAT REG(0x4000040Cu)    /* SRC bit 0 (1 = crystal), STATE bit 16 (running) */

#define UART_TASKS_STARTRX REG(0x40002000u)
#define UART_TASKS_STARTTX REG(0x40002008u)
#define UART_EVENTS_RXDRDY REG(0x40002108u)
#define UART_EVENTS_TXDRDY REG(0x4000211Cu)
#define UART_EVENTS_ERROR REG(0x40002124u)
#define UART_ERRORSRC REG(0x40002480u)      /* write 1s to clear */
#define UART_ENABLE REG(0x40002500u)        /* 4 = UART */
#define UART_PSEL_RTS REG(0x40002508u)
#define UART_PSEL_TXD REG(0x4000250Cu)
#define UART_PSEL_CTS REG(0x40002510u)
#define UART_PSEL_RXD REG(0x40002514u)
#define UART_RXD REG(0x40002518u)
#define UART_TXD REG(0x4000251Cu)
#define UART_BAUDRATE REG(0x40002524u)      /* 0x01D7E000 = 115200 (PS "UART" BAUDRATE) */
#define UART_CONFIG REG(0x4000256Cu)        /* HWFC bit 0, PARITY [3:1], STOP bit 4: all 0 = 8N1 */
#define PSEL_DISCONNECTED 0xFFFFFFFFu       /* CONNECT bit 31 = 1 */

/* NVMC ICACHECNF: CACHEEN bit 0 (PS "NVMC") */
#define NVMC_ICACHECNF REG(0x4001E540u)

/* GPIO P0 (PS "GPIO"): OUTSET 0x508, PIN_CNF[n] 0x700 + 4n with DIR bit 0 (1 = output), INPUT bit 1
 * (0 = input buffer connected), PULL [3:2] (3 = pull-up) */
#define P0_OUTSET REG(0x50000508u)
#define P0_PIN_CNF(n) REG(0x50000700u + 4u * (n))

#define PIN_TX 6u
#define PIN_RX 8u
#define WAIT_LIMIT 1000000u

const char board_name[] = "nrf52840";

void board_init(void)
{
    /* HFXO: start it and wait for HFCLKSTARTED (under 1 ms on the DK); on a board without the crystal
     * the core stays on HFINT (64 MHz all the same, the baud rate within HFINT's tolerance) */
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    (void)ev_wait_bits(&CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u, WAIT_LIMIT);
    CLOCK_EVENTS_HFCLKSTARTED = 0;

    NVMC_ICACHECNF |= 1u;

    P0_OUTSET = 1u << PIN_TX;                           /* TX idles high */
    P0_PIN_CNF(PIN_TX) = 1u;                            /* output, input buffer connected */
    P0_PIN_CNF(PIN_RX) = (3u << 2);                     /* input, pull-up */

    UART_ENABLE = 0;
    UART_PSEL_RTS = PSEL_DISCONNECTED;
    UART_PSEL_CTS = PSEL_DISCONNECTED;
    UART_PSEL_TXD = PIN_TX;                             /* PIN [4:0], PORT bit 5 = 0 (P0), connected */
    UART_PSEL_RXD = PIN_RX;
    UART_CONFIG = 0;
    UART_BAUDRATE = 0x01D7E000u;
    UART_ENABLE = 4u;
    UART_EVENTS_RXDRDY = 0;
    UART_EVENTS_TXDRDY = 0;
    UART_EVENTS_ERROR = 0;
    UART_TASKS_STARTRX = 1;
    UART_TASKS_STARTTX = 1;

    ev_counter_init();
}

int board_uart_getc(uint32_t timeout_ms)
{
    uint64_t start = board_counter();
    for (;;) {
        if (UART_EVENTS_ERROR) {                        /* overrun / framing: a lost byte shows up */
            UART_EVENTS_ERROR = 0;                      /* as a CRC error */
            UART_ERRORSRC = 0xFu;
        }
        if (UART_EVENTS_RXDRDY) {
            /* clear the event before reading RXD: the read moves the next FIFO byte into RXD and
             * raises RXDRDY again (PS "UART", Reception) */
            UART_EVENTS_RXDRDY = 0;
            return (int)(UART_RXD & 0xFFu);
        }
        if (ev_expired(start, timeout_ms)) return -1;
    }
}

void board_uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        UART_EVENTS_TXDRDY = 0;
        UART_TXD = *p++;
        while (!UART_EVENTS_TXDRDY) { }                 /* TXDRDY: the byte has left TXD */
    }
}

/* TXDRDY comes as the last byte starts on the wire: wait two character times (20 bits at 115200 =
 * 174 us) more for its stop bit. */
void board_uart_flush(void)
{
    uint64_t start = board_counter();
    while (board_counter() - start < (uint64_t)core_hz / 5750u) { }
}
