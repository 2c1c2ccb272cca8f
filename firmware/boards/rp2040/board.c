/* Raspberry Pi RP2040 (Pico): core 0 at 133 MHz from the 12 MHz crystal (XOSC) through PLL_SYS,
 * clk_peri = clk_sys, UART0 on GP0 (TX) / GP1 (RX) at 115200 8N1 (the Pico's default UART; a USB
 * serial adapter or the Raspberry Pi Debug Probe's UART on pins 1 / 2), RX by polling the PL011's
 * FIFO. The Cortex-M0+ has no DWT cycle counter: SysTick on the processor clock counts cycles,
 * extended to 64 bits by its wrap interrupt (cortex_m.h, EV_COUNTER_SYSTICK).
 * The image executes in place from flash behind boot2.S (the second-stage boot loader, built with
 * its CRC by board.mk).
 * Register addresses and fields: Raspberry Pi's RP2040 datasheet; each comment names the chapter
 * ("Address map", "Resets", "Clocks", "XOSC", "PLL", "GPIO", "UART") and the register.
 * Compiled and linked, not run on a board. */
#include <stdint.h>

#define EV_COUNTER_SYSTICK
static uint32_t core_hz = 6500000u;         /* ROSC, nominal, until board_init (datasheet "ROSC") */

#include "cortex_m.h"

#define REG EV_REG
/* Every APB register has atomic aliases: +0x2000 sets the bits written, +0x3000 clears them
 * (datasheet "Atomic Register Access") */
#define SET(addr) REG((addr) + 0x2000u)
#define CLR(addr) REG((addr) + 0x3000u)

/* Address map: RESETS 0x4000C000, CLOCKS 0x40008000, IO_BANK0 0x40014000, PADS_BANK0 0x4001C000,
 * XOSC 0x40024000, PLL_SYS 0x40028000, UART0 0x40034000 */
#define RESETS_RESET 0x4000C000u
#define RESETS_RESET_DONE REG(0x4000C008u)
#define RST_IO_BANK0 (1u << 5)
#define RST_PADS_BANK0 (1u << 8)
#define RST_PLL_SYS (1u << 12)
#define RST_UART0 (1u << 22)

/* Clocks: per clock CTRL, DIV, SELECTED (one-hot of the source in use) */
#define CLK_REF_CTRL 0x40008030u          /* SRC [1:0]: 0 ROSC, 2 XOSC */
#define CLK_REF_SELECTED REG(0x40008038u)
#define CLK_SYS_CTRL 0x4000803Cu          /* SRC bit 0: 0 clk_ref, 1 aux; AUXSRC [7:5]: 0 pll_sys */
#define CLK_SYS_SELECTED REG(0x40008044u)
#define CLK_PERI_CTRL REG(0x40008048u)    /* ENABLE bit 11, AUXSRC [7:5]: 0 clk_sys */
#define CLK_SYS_RESUS_CTRL REG(0x40008078u)

/* XOSC: CTRL FREQ_RANGE [11:0] = 0xAA0 (1-15 MHz), ENABLE [23:12] = 0xFAB; STATUS STABLE bit 31;
 * STARTUP DELAY [13:0] in units of 256 crystal cycles */
#define XOSC_CTRL 0x40024000u
#define XOSC_STATUS REG(0x40024004u)
#define XOSC_STARTUP REG(0x4002400Cu)

/* PLL: CS REFDIV [5:0], LOCK bit 31; PWR PD bit 0, POSTDIVPD bit 3, VCOPD bit 5; FBDIV_INT;
 * PRIM POSTDIV1 [18:16], POSTDIV2 [14:12] */
#define PLL_CS REG(0x40028000u)
#define PLL_PWR 0x40028004u
#define PLL_FBDIV_INT REG(0x40028008u)
#define PLL_PRIM REG(0x4002800Cu)

/* GPIO: IO_BANK0 GPIOn_CTRL at 0x04 + 8n, FUNCSEL [4:0] = 2 selects UART; PADS_BANK0 GPIOn at
 * 0x04 + 4n: PDE bit 2, PUE bit 3, IE bit 6 */
#define GPIO_CTRL(n) REG(0x40014004u + 8u * (n))
#define PADS_GPIO(n) REG(0x4001C004u + 4u * (n))

/* UART0 (an ARM PL011): UARTDR 0x00 (data, error flags [11:8]), UARTRSR 0x04, UARTFR 0x18 (BUSY bit 3,
 * RXFE bit 4, TXFF bit 5), UARTIBRD 0x24, UARTFBRD 0x28, UARTLCR_H 0x2C (FEN bit 4, WLEN [6:5]),
 * UARTCR 0x30 (UARTEN bit 0, TXE bit 8, RXE bit 9) */
#define UART_DR REG(0x40034000u)
#define UART_RSR REG(0x40034004u)
#define UART_FR REG(0x40034018u)
#define UART_IBRD REG(0x40034024u)
#define UART_FBRD REG(0x40034028u)
#define UART_LCR_H REG(0x4003402Cu)
#define UART_CR REG(0x40034030u)
#define FR_BUSY (1u << 3)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)

#define XOSC_HZ 12000000u
#define WAIT_LIMIT 1000000u

const char board_name[] = "rp2040";

static void unreset(uint32_t bits)
{
    SET(RESETS_RESET) = bits;
    CLR(RESETS_RESET) = bits;
    (void)ev_wait_bits(&RESETS_RESET_DONE, bits, bits, WAIT_LIMIT);
}

/* XOSC 12 MHz -> clk_ref; PLL_SYS: 12 MHz / REFDIV 1 x FBDIV 133 = 1596 MHz VCO (at most 1600),
 * / POSTDIV1 6 / POSTDIV2 2 = 133 MHz -> clk_sys (datasheet "PLL": calculating the settings). Where
 * the PLL does not lock the core runs from the crystal at 12 MHz. */
static void clocks(void)
{
    /* Off the crystal and the PLL first: after a reset through AIRCR (board_reset) they may still
     * be running and feeding clk_sys. Both muxes are glitchless. */
    CLK_SYS_RESUS_CTRL = 0;
    CLR(CLK_SYS_CTRL) = 1u;                                 /* clk_sys from clk_ref */
    if (!ev_wait_bits(&CLK_SYS_SELECTED, 0xFFFFFFFFu, 1u, WAIT_LIMIT)) return;
    CLR(CLK_REF_CTRL) = 3u;                                 /* clk_ref from ROSC */
    if (!ev_wait_bits(&CLK_REF_SELECTED, 0xFFFFFFFFu, 1u, WAIT_LIMIT)) return;

    XOSC_STARTUP = (XOSC_HZ / 1000u + 255u) / 256u;         /* 1 ms */
    REG(XOSC_CTRL) = 0xAA0u | (0xFABu << 12);
    if (!ev_wait_bits(&XOSC_STATUS, 1u << 31, 1u << 31, WAIT_LIMIT)) return;
    REG(CLK_REF_CTRL) = (REG(CLK_REF_CTRL) & ~3u) | 2u;     /* clk_ref from XOSC */
    if (!ev_wait_bits(&CLK_REF_SELECTED, 0xFFFFFFFFu, 1u << 2, WAIT_LIMIT)) return;
    core_hz = XOSC_HZ;

    unreset(RST_PLL_SYS);
    PLL_CS = 1u;                                            /* REFDIV */
    PLL_FBDIV_INT = 133u;
    CLR(PLL_PWR) = (1u << 0) | (1u << 5);                   /* power up the PLL and its VCO */
    if (!ev_wait_bits(&PLL_CS, 1u << 31, 1u << 31, WAIT_LIMIT)) return;
    PLL_PRIM = (6u << 16) | (2u << 12);
    CLR(PLL_PWR) = 1u << 3;                                 /* post dividers on */

    /* the aux mux is not glitchless: set it while clk_sys runs from clk_ref, then switch */
    REG(CLK_SYS_CTRL) = (REG(CLK_SYS_CTRL) & ~(7u << 5)) | (0u << 5);
    SET(CLK_SYS_CTRL) = 1u;
    if (!ev_wait_bits(&CLK_SYS_SELECTED, 0xFFFFFFFFu, 1u << 1, WAIT_LIMIT)) {
        CLR(CLK_SYS_CTRL) = 1u;
        return;
    }
    core_hz = 133000000u;
}

void board_init(void)
{
    clocks();
    /* clk_peri (UART's clock) = clk_sys; disabled while its source changes */
    CLK_PERI_CTRL = 0;
    for (volatile uint32_t i = 0; i < 16u; i++) { }
    CLK_PERI_CTRL = (1u << 11) | (0u << 5);

    unreset(RST_IO_BANK0 | RST_PADS_BANK0 | RST_UART0);
    GPIO_CTRL(0) = 2u;                                      /* GP0 = UART0 TX */
    GPIO_CTRL(1) = 2u;                                      /* GP1 = UART0 RX */
    PADS_GPIO(1) = (PADS_GPIO(1) & ~(1u << 2)) | (1u << 3) | (1u << 6);   /* input, pull-up */

    /* divisor = clk_peri / (16 x baud) as 16.6 fixed point, rounded (datasheet "UART": baud rate
     * calculation); the line control write after it latches both */
    UART_CR = 0;
    uint32_t div64 = (4u * core_hz + 115200u / 2u) / 115200u;
    UART_IBRD = div64 >> 6;
    UART_FBRD = div64 & 63u;
    UART_LCR_H = (3u << 5) | (1u << 4);                     /* 8 bits, no parity, 1 stop, FIFOs on */
    UART_CR = (1u << 9) | (1u << 8) | 1u;                   /* RXE, TXE, UARTEN */

    ev_counter_init();
    __asm volatile("cpsie i" ::: "memory");                 /* SysTick's wrap interrupt */
}

int board_uart_getc(uint32_t timeout_ms)
{
    uint64_t start = board_counter();
    for (;;) {
        if (!(UART_FR & FR_RXFE)) {
            uint32_t v = UART_DR;
            if (v & 0xF00u) UART_RSR = 0;   /* framing / parity / break / overrun: clear; a lost */
            return (int)(v & 0xFFu);        /* byte shows up as a CRC error */
        }
        if (ev_expired(start, timeout_ms)) return -1;
    }
}

void board_uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (UART_FR & FR_TXFF) { }
        UART_DR = *p++;
    }
}

void board_uart_flush(void)
{
    while (UART_FR & FR_BUSY) { }
}
