/* STM32U585 (B-U585I-IOT02A Discovery kit): 160 MHz from HSI16 through PLL1 (voltage range 1, EPOD
 * booster on, flash 4 wait states + prefetch, instruction cache on), USART1 on PA9 (TX) / PA10 (RX)
 * at 115200 8N1 (the kit's ST-LINK virtual COM port, UM2839 "Virtual COM port"), DWT->CYCCNT as
 * the cycle counter, RX by polling.
 * TrustZone off (option bit TZEN = 0, as the kit ships): every access goes through the non-secure
 * aliases (peripherals at 0x4xxxxxxx, flash at 0x08000000, SRAM at 0x20000000).
 * Register addresses and fields: ST RM0456 (STM32U5 reference manual); each comment names the
 * register (RM0456's register sections are titled by it) or the section.
 * Compiled and linked, not run on a board. */
#include <stdint.h>

static uint32_t core_hz = 4000000u;         /* MSIS 4 MHz after reset (RM0456 "Clocks" / RCC_ICSCR1) */
static uint32_t pclk2_hz = 4000000u;

#include "cortex_m.h"

#define REG EV_REG

/* Non-secure bases (RM0456 "Memory map and register boundary addresses"): RCC 0x46020C00, PWR
 * 0x46020800, FLASH 0x40022000, ICACHE 0x40030400, GPIOA 0x42020000, USART1 0x40013800 */
#define RCC_CR REG(0x46020C00u)           /* HSION bit 8, HSIRDY bit 10, PLL1ON bit 24, PLL1RDY bit 25 */
#define RCC_CFGR1 REG(0x46020C1Cu)        /* SW[1:0], SWS[3:2]: 11 = PLL1 */
#define RCC_CFGR2 REG(0x46020C20u)        /* HPRE[3:0] (0xxx = /1, 1000 = /2), PPRE1[6:4], PPRE2[10:8] */
#define RCC_CFGR3 REG(0x46020C24u)        /* PPRE3[6:4] */
#define RCC_PLL1CFGR REG(0x46020C28u)
#define RCC_PLL1DIVR REG(0x46020C34u)
#define RCC_AHB2ENR1 REG(0x46020C8Cu)     /* GPIOAEN bit 0 */
#define RCC_AHB3ENR REG(0x46020C94u)      /* PWREN bit 2 */
#define RCC_APB2ENR REG(0x46020CA4u)      /* USART1EN bit 14 */
#define CR_HSION (1u << 8)
#define CR_HSIRDY (1u << 10)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)

/* PWR_VOSR: VOS[17:16] (11 = range 1, up to 160 MHz), VOSRDY bit 15, BOOSTEN bit 18, BOOSTRDY bit 14 */
#define PWR_VOSR REG(0x4602080Cu)
#define VOSR_VOS_RANGE1 (3u << 16)
#define VOSR_VOSRDY (1u << 15)
#define VOSR_BOOSTEN (1u << 18)
#define VOSR_BOOSTRDY (1u << 14)

/* FLASH_ACR: LATENCY[3:0], PRFTEN bit 8; range 1 at 128 < HCLK <= 160 MHz needs 4 wait states
 * (RM0456 "Read access latency") */
#define FLASH_ACR REG(0x40022000u)
/* ICACHE_CR EN bit 0; ICACHE_SR BUSYF bit 0 (the invalidation that follows reset) */
#define ICACHE_CR REG(0x40030400u)
#define ICACHE_SR REG(0x40030404u)

#define GPIOA_MODER REG(0x42020000u)
#define GPIOA_OSPEEDR REG(0x42020008u)
#define GPIOA_PUPDR REG(0x4202000Cu)
#define GPIOA_AFRH REG(0x42020024u)

/* USART1 (RM0456 "USART register map"): CR1 0x00, CR2 0x04, CR3 0x08, BRR 0x0C, ISR 0x1C, ICR 0x20,
 * RDR 0x24, TDR 0x28, PRESC 0x2C; FIFO mode off (CR1 FIFOEN = 0), so ISR bit 5 is RXNE, 7 TXE */
#define USART_CR1 REG(0x40013800u)
#define USART_CR2 REG(0x40013804u)
#define USART_CR3 REG(0x40013808u)
#define USART_BRR REG(0x4001380Cu)
#define USART_ISR REG(0x4001381Cu)
#define USART_ICR REG(0x40013820u)
#define USART_RDR REG(0x40013824u)
#define USART_TDR REG(0x40013828u)
#define USART_PRESC REG(0x4001382Cu)
#define ISR_ERRORS (0xFu)                 /* PE, FE, NE, ORE: bits 0-3, cleared through ICR */
#define ISR_RXNE (1u << 5)
#define ISR_TC (1u << 6)
#define ISR_TXE (1u << 7)

#define WAIT_LIMIT 1000000u

const char board_name[] = "stm32u585";

static void clocks_160mhz(void)
{
    RCC_AHB3ENR |= (1u << 2);                               /* PWREN */
    (void)RCC_AHB3ENR;
    RCC_CR |= CR_HSION;
    if (!ev_wait_bits(&RCC_CR, CR_HSIRDY, CR_HSIRDY, WAIT_LIMIT)) return;
    RCC_CFGR1 &= ~3u;                                       /* SYSCLK on MSIS while PLL1 is set up */
    if (!ev_wait_bits(&RCC_CFGR1, 3u << 2, 0, WAIT_LIMIT)) return;
    RCC_CR &= ~CR_PLL1ON;
    if (!ev_wait_bits(&RCC_CR, CR_PLL1RDY, 0, WAIT_LIMIT)) return;

    /* voltage range 1 (RM0456 "Dynamic voltage scaling management") */
    PWR_VOSR = (PWR_VOSR & ~(3u << 16)) | VOSR_VOS_RANGE1;
    if (!ev_wait_bits(&PWR_VOSR, VOSR_VOSRDY, VOSR_VOSRDY, WAIT_LIMIT)) return;
    FLASH_ACR = (FLASH_ACR & ~0xFu) | 4u | (1u << 8);       /* 4 wait states, prefetch */
    if ((FLASH_ACR & 0xFu) != 4u) return;

    /* RCC_PLL1CFGR: PLL1SRC[1:0] = 10 (HSI16), PLL1RGE[3:2] = 11 (input 8-16 MHz), PLL1FRACEN bit 4
     * = 0, PLL1M[11:8] = 0 (/1), PLL1MBOOST[15:12] = 0 (EPOD boost clock = 16 MHz / 1, within its
     * 16 MHz limit), PLL1REN bit 18 (the R output is SYSCLK's PLL input) */
    RCC_PLL1CFGR = 2u | (3u << 2) | (0u << 8) | (0u << 12) | (1u << 18);
    /* the EPOD booster, needed in range 1 above 55 MHz, runs once PLL1's source and MBOOST are set
     * (RM0456 "EPOD booster") */
    PWR_VOSR |= VOSR_BOOSTEN;
    if (!ev_wait_bits(&PWR_VOSR, VOSR_BOOSTRDY, VOSR_BOOSTRDY, WAIT_LIMIT)) return;
    /* RCC_PLL1DIVR: PLL1N[8:0] = N-1, PLL1P[15:9] = P-1, PLL1Q[22:16] = Q-1, PLL1R[30:24] = R-1:
     * 16 MHz x 20 = 320 MHz VCO, / R 2 = 160 MHz (P and Q outputs stay disabled) */
    RCC_PLL1DIVR = (20u - 1u) | ((2u - 1u) << 9) | ((2u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= CR_PLL1ON;
    if (!ev_wait_bits(&RCC_CR, CR_PLL1RDY, CR_PLL1RDY, WAIT_LIMIT)) return;

    /* Above 80 MHz, switch with AHB / 2 and hold that for at least 1 us before / 1 (RM0456 "Clock
     * switch"); APB1, APB2, APB3 / 1 (160 MHz is their maximum too) */
    RCC_CFGR3 &= ~(7u << 4);
    RCC_CFGR2 = (RCC_CFGR2 & ~(0xFu | (7u << 4) | (7u << 8))) | 8u;
    RCC_CFGR1 |= 3u;
    if (!ev_wait_bits(&RCC_CFGR1, 3u << 2, 3u << 2, WAIT_LIMIT)) {
        RCC_CFGR2 &= ~0xFu;                                 /* still on MSIS: AHB / 1 again */
        return;
    }
    for (volatile uint32_t i = 0; i < 200u; i++) { }       /* > 1 us at 80 MHz */
    RCC_CFGR2 &= ~0xFu;
    core_hz = 160000000u;
    pclk2_hz = 160000000u;
}

void board_init(void)
{
    clocks_160mhz();
    if (ev_wait_bits(&ICACHE_SR, 1u, 0, WAIT_LIMIT)) ICACHE_CR |= 1u;

    RCC_AHB2ENR1 |= (1u << 0);                              /* GPIOA */
    RCC_APB2ENR |= (1u << 14);                              /* USART1 (kernel clock PCLK2 by default,
                                                             * RCC_CCIPR1 USART1SEL = 00) */
    (void)RCC_APB2ENR;
    /* PA9 = USART1_TX, PA10 = USART1_RX: alternate function 7 (DS13086 "Alternate function
     * mapping"); MODER 10 = AF, AFRH 4 bits per pin from pin 8 (RM0456 GPIOx_MODER, GPIOx_AFRH) */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(3u << 18)) | (2u << 18);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << 20)) | (1u << 20);   /* pull-up on RX */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);

    USART_CR1 = 0;
    USART_CR2 = 0;
    USART_CR3 = 0;
    USART_PRESC = 0;                                        /* kernel clock / 1 */
    USART_BRR = (pclk2_hz + 115200u / 2u) / 115200u;        /* oversampling by 16 (RM0456 USART_BRR) */
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;                 /* TE, RE, UE (RM0456 USART_CR1) */

    ev_counter_init();
}

int board_uart_getc(uint32_t timeout_ms)
{
    uint64_t start = board_counter();
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & ISR_ERRORS) USART_ICR = ISR_ERRORS;   /* a lost byte shows up as a CRC error */
        if (isr & ISR_RXNE) return (int)(USART_RDR & 0xFFu);
        if (ev_expired(start, timeout_ms)) return -1;
    }
}

void board_uart_write(const uint8_t *p, uint32_t n)
{
    while (n--) {
        while (!(USART_ISR & ISR_TXE)) { }
        USART_TDR = *p++;
    }
}

void board_uart_flush(void)
{
    while (!(USART_ISR & ISR_TC)) { }
}
