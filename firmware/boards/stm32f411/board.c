/* STM32F411 (Nucleo-F411RE): 100 MHz from HSI via the PLL (no crystal needed: the Nucleo's HSE comes
 * from the ST-LINK and is not fitted on every board), flash 3 wait states + prefetch + ART caches,
 * USART2 on PA2 (TX) / PA3 (RX) at 115200 8N1 (the ST-LINK's virtual COM port on Nucleo-64 boards,
 * UM1724 "USART communication"), DWT->CYCCNT as the cycle counter, RX by polling.
 * Register addresses and fields: ST RM0383 (STM32F411xC/E reference manual); each comment names the
 * manual's section by its title (register sections are titled by the register's name).
 * Compiled and linked, not run on a board. */
#include <stdint.h>

static uint32_t core_hz = 16000000u;        /* HSI after reset (RM0383 "HSI clock") */
static uint32_t apb1_hz = 16000000u;

#include "cortex_m.h"

#define REG EV_REG

/* RCC at 0x40023800 (RM0383 "Memory map"; offsets: "RCC register map") */
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define CR_HSION (1u << 0)
#define CR_HSIRDY (1u << 1)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
/* PWR_CR VOS[15:14] = 11: scale 1, needed above 84 MHz (RM0383 "PWR power control register") */
#define PWR_CR REG(0x40007000u)
/* FLASH_ACR: LATENCY[3:0], PRFTEN bit 8, ICEN bit 9, DCEN bit 10 (RM0383 "Flash access control
 * register"); 3 wait states for 90 < HCLK <= 100 MHz at 2.7-3.6 V (RM0383 "Relation between CPU
 * clock frequency and Flash memory read time") */
#define FLASH_ACR REG(0x40023C00u)

#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_OSPEEDR REG(0x40020008u)
#define GPIOA_PUPDR REG(0x4002000Cu)
#define GPIOA_AFRL REG(0x40020020u)

/* USART2 (APB1), RM0383 "USART register map" */
#define USART_BASE 0x40004400u
#include "stm32_usart_v1.h"   /* USART_* registers, ev_usart_init, board_uart_getc / write / flush */

#define WAIT_LIMIT 1000000u

const char board_name[] = "stm32f411";

static void clocks_100mhz(void)
{
    RCC_CR |= CR_HSION;
    if (!ev_wait_bits(&RCC_CR, CR_HSIRDY, CR_HSIRDY, WAIT_LIMIT)) return;
    RCC_CFGR &= ~3u;                                    /* SYSCLK on HSI while the PLL is set up */
    if (!ev_wait_bits(&RCC_CFGR, 3u << 2, 0, WAIT_LIMIT)) return;
    RCC_CR &= ~CR_PLLON;
    if (!ev_wait_bits(&RCC_CR, CR_PLLRDY, 0, WAIT_LIMIT)) return;
    RCC_APB1ENR |= (1u << 28);                          /* PWREN (RM0383 RCC_APB1ENR) */
    (void)RCC_APB1ENR;
    PWR_CR = (PWR_CR & ~(3u << 14)) | (3u << 14);       /* voltage scale 1: VOS changes only with
                                                         * the PLL off */
    /* RCC_PLLCFGR (RM0383 "RCC PLL configuration register"): PLLM[5:0], PLLN[14:6], PLLP[17:16]
     * (00 = /2), PLLSRC bit 22 (0 = HSI), PLLQ[27:24]; the other bits are reserved and kept.
     * HSI 16 MHz / M 8 = 2 MHz (VCO input 1-2 MHz); x N 100 = 200 MHz VCO; / P 2 = 100 MHz;
     * / Q 5 = 40 MHz (USB / SDIO unused) */
    uint32_t fields = 0x3Fu | (0x1FFu << 6) | (3u << 16) | (1u << 22) | (0xFu << 24);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~fields) | 8u | (100u << 6) | (0u << 16) | (0u << 22) | (5u << 24);
    RCC_CR |= CR_PLLON;
    if (!ev_wait_bits(&RCC_CR, CR_PLLRDY, CR_PLLRDY, WAIT_LIMIT)) return;
    FLASH_ACR = 3u | (1u << 8) | (1u << 9) | (1u << 10);
    if ((FLASH_ACR & 0xFu) != 3u) return;
    /* RCC_CFGR (RM0383 "RCC clock configuration register"): HPRE[7:4] = 0 (AHB /1), PPRE1[12:10] =
     * 100 (APB1 /2 = 50 MHz, its maximum), PPRE2[15:13] = 0 (APB2 /1 = 100 MHz); then SW[1:0] = 10
     * (PLL), SWS[3:2] follows */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13))) | (4u << 10);
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;
    if (ev_wait_bits(&RCC_CFGR, 3u << 2, 2u << 2, WAIT_LIMIT)) {
        core_hz = 100000000u;
        apb1_hz = 50000000u;
    }
}

void board_init(void)
{
    clocks_100mhz();

    RCC_AHB1ENR |= (1u << 0);                           /* GPIOAEN (RM0383 RCC_AHB1ENR) */
    RCC_APB1ENR |= (1u << 17);                          /* USART2EN (RM0383 RCC_APB1ENR) */
    (void)RCC_APB1ENR;
    /* PA2 = USART2_TX, PA3 = USART2_RX: alternate function 7 (DS10314 "Alternate function mapping");
     * MODER 10 = AF, AFRL 4 bits per pin (RM0383 GPIOx_MODER, GPIOx_AFRL) */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);
    GPIOA_OSPEEDR |= (3u << 4);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << 6)) | (1u << 6);   /* pull-up on RX */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);

    ev_usart_init(apb1_hz);

    ev_counter_init();
}

