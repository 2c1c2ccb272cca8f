/* STM32F103 (Nucleo-F103RB; a "Blue Pill" with -DEV_F103_USART1): 72 MHz from an 8 MHz HSE through
 * the PLL (the Nucleo's ST-LINK feeds its 8 MHz MCO into OSC_IN: HSE bypass; a Blue Pill carries an
 * 8 MHz crystal), else 64 MHz from HSI / 2 x 16 where neither starts; flash 2 wait states +
 * prefetch, DWT->CYCCNT as the cycle counter, RX by polling, 115200 8N1 on
 *   USART2 PA2 (TX) / PA3 (RX): the Nucleo-64's ST-LINK virtual COM port (UM1724 "USART
 *                               communication"), the default;
 *   USART1 PA9 (TX) / PA10 (RX): with -DEV_F103_USART1, for a board without an ST-LINK (the pins of
 *                               the system-memory boot loader; a USB-serial adapter on them).
 * Register addresses and fields: ST RM0008 (STM32F101xx-F107xx reference manual); each comment names
 * the register (RM0008's register sections are titled by it) or the section.
 * Compiled and linked, not run on a board. */
#include <stdint.h>

static uint32_t core_hz = 8000000u;         /* HSI after reset (RM0008 "HSI clock") */
static uint32_t pclk_hz = 8000000u;         /* the USART's bus clock */

#include "cortex_m.h"

#define REG EV_REG

/* RCC 0x40021000, FLASH interface 0x40022000, GPIOA 0x40010800, USART2 0x40004400 (APB1), USART1
 * 0x40013800 (APB2) (RM0008 "Memory map") */
#define RCC_CR REG(0x40021000u)
#define RCC_CFGR REG(0x40021004u)
#define RCC_APB2ENR REG(0x40021018u)      /* IOPAEN bit 2, USART1EN bit 14 */
#define RCC_APB1ENR REG(0x4002101Cu)      /* USART2EN bit 17 */
#define CR_HSION (1u << 0)
#define CR_HSIRDY (1u << 1)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
/* FLASH_ACR: LATENCY[2:0] = 010 for 48 < SYSCLK <= 72 MHz, PRFTBE bit 4 */
#define FLASH_ACR REG(0x40022000u)

#define GPIOA_CRL REG(0x40010800u)        /* 4 bits per pin 0-7: MODE[1:0], CNF[3:2] */
#define GPIOA_CRH REG(0x40010804u)        /* the same for pins 8-15 */
#define GPIOA_ODR REG(0x4001080Cu)        /* an input with CNF = 10 pulls up where ODR is 1 */
/* pin configurations (RM0008 "Port configuration register low (GPIOx_CRL)"): alternate function
 * push-pull, 50 MHz (CNF 10, MODE 11) and input with pull-up / pull-down (CNF 10, MODE 00) */
#define PIN_AF_PP 0xBu
#define PIN_IN_PULL 0x8u

#ifdef EV_F103_USART1
#define USART_BASE 0x40013800u
#else
#define USART_BASE 0x40004400u
#endif
#include "stm32_usart_v1.h"   /* USART_* registers, ev_usart_init, board_uart_getc / write / flush */

#define WAIT_LIMIT 1000000u
#define HSE_WAIT_LIMIT 100000u              /* ~0.1 s on HSI: a crystal starts within a few ms */

const char board_name[] = "stm32f103";

/* HSE on, bypassed (an external clock on OSC_IN) or not (a crystal); HSEBYP may only change while
 * HSEON is 0 (RM0008 "Clock control register (RCC_CR)"). */
static int hse_start(uint32_t bypass)
{
    RCC_CR &= ~CR_HSEON;
    if (!ev_wait_bits(&RCC_CR, CR_HSERDY, 0, WAIT_LIMIT)) return 0;
    RCC_CR = (RCC_CR & ~CR_HSEBYP) | bypass;
    RCC_CR |= CR_HSEON;
    if (ev_wait_bits(&RCC_CR, CR_HSERDY, CR_HSERDY, HSE_WAIT_LIMIT)) return 1;
    RCC_CR &= ~CR_HSEON;
    return 0;
}

static void clocks(void)
{
    RCC_CR |= CR_HSION;
    if (!ev_wait_bits(&RCC_CR, CR_HSIRDY, CR_HSIRDY, WAIT_LIMIT)) return;
    RCC_CFGR &= ~3u;                                        /* SYSCLK on HSI while the PLL is set up */
    if (!ev_wait_bits(&RCC_CFGR, 3u << 2, 0, WAIT_LIMIT)) return;
    RCC_CR &= ~CR_PLLON;
    if (!ev_wait_bits(&RCC_CR, CR_PLLRDY, 0, WAIT_LIMIT)) return;

    int hse = hse_start(CR_HSEBYP) || hse_start(0);
    FLASH_ACR = (FLASH_ACR & ~7u) | 2u | (1u << 4);         /* 2 wait states, prefetch */
    if ((FLASH_ACR & 7u) != 2u) return;
    /* RCC_CFGR (RM0008 "Clock configuration register (RCC_CFGR)"): PLLSRC bit 16 (1 = HSE, 0 =
     * HSI / 2), PLLXTPRE bit 17 = 0 (HSE not halved), PLLMUL[21:18] (0111 = x9, 1110 = x16),
     * HPRE[7:4] = 0 (AHB / 1), PPRE1[10:8] = 100 (APB1 / 2: 36 MHz at most), PPRE2[13:11] = 0
     * (APB2 / 1); USBPRE and ADCPRE left as they are */
    uint32_t pll = hse ? ((1u << 16) | (7u << 18)) : (14u << 18);
    RCC_CFGR = (RCC_CFGR & ~((1u << 16) | (1u << 17) | (0xFu << 18) | (0xFu << 4) | (7u << 8) | (7u << 11)))
               | pll | (4u << 8);
    RCC_CR |= CR_PLLON;
    if (!ev_wait_bits(&RCC_CR, CR_PLLRDY, CR_PLLRDY, WAIT_LIMIT)) return;
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                       /* SW = 10: PLL */
    if (!ev_wait_bits(&RCC_CFGR, 3u << 2, 2u << 2, WAIT_LIMIT)) return;
    core_hz = hse ? 72000000u : 64000000u;
#ifdef EV_F103_USART1
    pclk_hz = core_hz;                                      /* APB2 / 1 */
#else
    pclk_hz = core_hz / 2u;                                 /* APB1 / 2 */
#endif
}

void board_init(void)
{
    clocks();

    RCC_APB2ENR |= (1u << 2);                               /* IOPAEN */
#ifdef EV_F103_USART1
    RCC_APB2ENR |= (1u << 14);                              /* USART1EN */
    (void)RCC_APB2ENR;
    /* PA9 = USART1_TX, PA10 = USART1_RX (RM0008 "USART alternate function remapping", no remap) */
    GPIOA_CRH = (GPIOA_CRH & ~(0xFFu << 4)) | (PIN_AF_PP << 4) | (PIN_IN_PULL << 8);
    GPIOA_ODR |= (1u << 10);
#else
    RCC_APB1ENR |= (1u << 17);                              /* USART2EN */
    (void)RCC_APB1ENR;
    /* PA2 = USART2_TX, PA3 = USART2_RX (the same table, no remap) */
    GPIOA_CRL = (GPIOA_CRL & ~(0xFFu << 8)) | (PIN_AF_PP << 8) | (PIN_IN_PULL << 12);
    GPIOA_ODR |= (1u << 3);
#endif

    ev_usart_init(pclk_hz);

    ev_counter_init();
}

