/* STM32F746 (Discovery / Nucleo-144): 216 MHz from HSI via the PLL (works on boards with or without
 * an HSE crystal), flash 7 wait states + ART, I/D caches on, USART1 on PA9 (TX) / PB7 (RX) at
 * 115200 8N1 (the Discovery's ST-LINK virtual COM port), DWT->CYCCNT as the cycle counter.
 * Build with -DEV_F746_NO_PLL to stay on the 16 MHz HSI. Not yet run on hardware. */
#include <stdint.h>

#define HSI_HZ 16000000u
static uint32_t core_hz = HSI_HZ;

#define EV_DWT_LOCKED         /* the M7's DWT is locked after reset: cortex_m.h unlocks it */
#include "cortex_m.h"         /* SCB_AIRCR, the DWT cycle counter, board_reset / board_exit */

#define REG EV_REG

#define RCC_BASE 0x40023800u
#define RCC_CR REG(RCC_BASE + 0x00u)
#define RCC_PLLCFGR REG(RCC_BASE + 0x04u)
#define RCC_CFGR REG(RCC_BASE + 0x08u)
#define RCC_AHB1ENR REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG(RCC_BASE + 0x44u)
#define PWR_CR1 REG(0x40007000u)
#define PWR_CSR1 REG(0x40007004u)
#define FLASH_ACR REG(0x40023C00u)

#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(b) REG((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG((b) + 0x08u)
#define GPIO_PUPDR(b) REG((b) + 0x0Cu)
#define GPIO_AFRL(b) REG((b) + 0x20u)
#define GPIO_AFRH(b) REG((b) + 0x24u)

#define USART1_BASE 0x40011000u
#define USART_CR1 REG(USART1_BASE + 0x00u)
#define USART_CR2 REG(USART1_BASE + 0x04u)
#define USART_CR3 REG(USART1_BASE + 0x08u)
#define USART_BRR REG(USART1_BASE + 0x0Cu)
#define USART_ISR REG(USART1_BASE + 0x1Cu)
#define USART_ICR REG(USART1_BASE + 0x20u)
#define USART_RDR REG(USART1_BASE + 0x24u)
#define USART_TDR REG(USART1_BASE + 0x28u)
#define ISR_FE (1u << 1)
#define ISR_NE (1u << 2)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TC (1u << 6)
#define ISR_TXE (1u << 7)

#define SCB_CCR REG(0xE000ED14u)
#define SCB_CCSIDR REG(0xE000ED80u)
#define SCB_CSSELR REG(0xE000ED84u)
#define SCB_ICIALLU REG(0xE000EF50u)
#define SCB_DCISW REG(0xE000EF60u)

#define WAIT_LIMIT 1000000u

const char board_name[] = "stm32f746";

static uint32_t apb2_hz = HSI_HZ;

static int wait_set(volatile uint32_t *reg, uint32_t mask) { return ev_wait_bits(reg, mask, mask, WAIT_LIMIT); }

static void clocks_216mhz(void)
{
#ifndef EV_F746_NO_PLL
    RCC_APB1ENR |= (1u << 28);                       /* PWREN */
    (void)RCC_APB1ENR;
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14);  /* voltage scale 1 */
    RCC_CR |= 1u;                                    /* HSION */
    if (!wait_set(&RCC_CR, 1u << 1)) return;
    RCC_CR &= ~(1u << 24);                           /* PLL off to configure */
    /* HSI 16 MHz / M 8 = 2 MHz; x N 216 = 432 MHz VCO; / P 2 = 216 MHz; / Q 9 = 48 MHz */
    RCC_PLLCFGR = 8u | (216u << 6) | (0u << 16) | (0u << 22) | (9u << 24);
    RCC_CR |= (1u << 24);
    if (!wait_set(&RCC_CR, 1u << 25)) return;
    PWR_CR1 |= (1u << 16);                           /* over-drive on */
    if (!wait_set(&PWR_CSR1, 1u << 16)) return;
    PWR_CR1 |= (1u << 17);                           /* over-drive switch */
    if (!wait_set(&PWR_CSR1, 1u << 17)) return;
    FLASH_ACR = 7u | (1u << 8) | (1u << 9);          /* 7 wait states, prefetch, ART */
    if ((FLASH_ACR & 0xFu) != 7u) return;
    /* AHB /1, APB1 /4 = 54 MHz, APB2 /2 = 108 MHz, then switch SYSCLK to the PLL */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | (5u << 10) | (4u << 13);
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;
    for (uint32_t i = 0; i < WAIT_LIMIT; i++) {
        if (((RCC_CFGR >> 2) & 3u) == 2u) {
            core_hz = 216000000u;
            apb2_hz = 108000000u;
            return;
        }
    }
#endif
}

static void caches_on(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_ICIALLU = 0;
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_CCR |= (1u << 17);                           /* I-cache */
    SCB_CSSELR = 0;                                  /* level 1 data cache */
    __asm volatile("dsb" ::: "memory");
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    for (uint32_t s = 0; s < sets; s++)
        for (uint32_t w = 0; w < ways; w++)
            SCB_DCISW = (s << 5) | (w << 30);
    __asm volatile("dsb" ::: "memory");
    SCB_CCR |= (1u << 16);                           /* D-cache */
    __asm volatile("dsb\n\tisb" ::: "memory");
}

void board_init(void)
{
    clocks_216mhz();
    caches_on();

    RCC_AHB1ENR |= (1u << 0) | (1u << 1);            /* GPIOA, GPIOB */
    RCC_APB2ENR |= (1u << 4);                        /* USART1 */
    (void)RCC_APB2ENR;
    /* PA9 = USART1_TX (AF7), PB7 = USART1_RX (AF7) */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);
    GPIO_OSPEEDR(GPIOA_BASE) |= (3u << 18);
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);
    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (2u << 14);
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (1u << 14);  /* pull-up */
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);

    USART_CR1 = 0;
    USART_CR2 = 0;
    USART_CR3 = 0;
    USART_BRR = (apb2_hz + 115200u / 2u) / 115200u; /* oversampling by 16 */
    USART_CR1 = (1u << 3) | (1u << 2) | 1u;          /* TE, RE, UE */

    ev_counter_init();
}

int board_uart_getc(uint32_t timeout_ms)
{
    uint64_t start = board_counter();
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & (ISR_ORE | ISR_FE | ISR_NE))
            USART_ICR = ISR_ORE | ISR_FE | ISR_NE;   /* a lost byte shows up as a CRC error */
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
