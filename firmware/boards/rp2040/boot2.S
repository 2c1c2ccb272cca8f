/* RP2040 second-stage boot loader ("boot2"), edgeviz's own, from the RP2040 datasheet (sections
 * "Bootrom" / "Boot sequence" and "SSI"). The boot ROM copies the first 256 bytes of flash to SRAM
 * (0x20041F00), checks the CRC-32 in their last 4 bytes and runs them. This stage sets the flash
 * interface (SSI) up for execute-in-place with the plain 03h READ DATA command, which every serial
 * NOR flash answers (slower than quad reads, but needing no flash-specific set-up), then enters the
 * image's vector table right after it, at 0x10000100. Position-independent: literals are PC-relative.
 * board.mk pads it to 252 bytes and appends the CRC (boot2_crc.py). */
    .syntax unified
    .cpu cortex-m0plus
    .thumb

    .section .text.boot2, "ax"
    .global ev_boot2
    .type ev_boot2, %function
    .thumb_func
ev_boot2:
    ldr r3, =0x18000000         @ XIP_SSI base (datasheet "SSI": list of registers)
    movs r1, #0
    str r1, [r3, #0x08]         @ SSIENR = 0: the SSI is configured while disabled
    movs r1, #4
    str r1, [r3, #0x14]         @ BAUDR: SCK = clk_sys / 4 (33 MHz once clk_sys is 133 MHz)
    ldr r1, =(31 << 16) | (3 << 8)
    str r1, [r3, #0x00]         @ CTRLR0: DFS_32 [20:16] = 31 (32-bit frames), TMOD [9:8] = 3
                                @ (EEPROM read: send command + address, then receive),
                                @ SPI_FRF [22:21] = 0 (standard 1-bit SPI)
    movs r1, #0
    str r1, [r3, #0x04]         @ CTRLR1: NDF = 0, one data frame per XIP access
    ldr r1, =(0x03 << 24) | (2 << 8) | (6 << 2)
    movs r2, #0xF4
    adds r2, r2, r3
    str r1, [r2]                @ SPI_CTRLR0 (0xF4): XIP_CMD [31:24] = 03h, INST_L [9:8] = 2
                                @ (8-bit instruction), ADDR_L [5:2] = 6 (24-bit address),
                                @ WAIT_CYCLES [15:11] = 0, TRANS_TYPE [1:0] = 0 (all in 1-bit SPI)
    movs r1, #1
    str r1, [r3, #0x08]         @ SSIENR = 1: flash reads through XIP from here on

    ldr r0, =0x10000100         @ the vector table, after this stage
    ldr r1, =0xE000ED08
    str r0, [r1]                @ VTOR (ARMv6-M ARM B3.2.5)
    ldmia r0!, {r1, r2}         @ initial SP, reset vector
    msr msp, r1
    bx r2
    .ltorg
    .size ev_boot2, . - ev_boot2
