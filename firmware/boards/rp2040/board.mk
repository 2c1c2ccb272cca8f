# RP2040 extras, included by firmware/Makefile: the boot2 stage (boot2.S, padded and given the CRC the
# boot ROM checks, at build time, by boot2_crc.py) linked into section .boot2 at the start of flash,
# and fw.uf2 beside fw.bin for the Pico's USB boot mode. Needs a Python 3 (PYTHON=, edgeviz passes its own).
PYTHON ?= python3
RP2040_DIR := $(FW)/boards/rp2040
BOOT2_OUT := $(OUT_ABS)/obj/boot2
BOARD_OBJS += $(BOOT2_OUT)/boot2_crc.o

$(BOOT2_OUT)/boot2.o: $(RP2040_DIR)/boot2.S
	@mkdir -p $(dir $@)
	$(CC) $(ARCH) -c $< -o $@

$(BOOT2_OUT)/boot2.raw: $(BOOT2_OUT)/boot2.o
	$(OBJCOPY) -O binary --only-section=.text.boot2 $< $@

$(BOOT2_OUT)/boot2_crc.S: $(BOOT2_OUT)/boot2.raw $(RP2040_DIR)/boot2_crc.py
	$(PYTHON) $(RP2040_DIR)/boot2_crc.py boot2 $< $@

$(BOOT2_OUT)/boot2_crc.o: $(BOOT2_OUT)/boot2_crc.S
	$(CC) $(ARCH) -c $< -o $@

all: $(OUT_ABS)/fw.uf2

$(OUT_ABS)/fw.uf2: $(OUT_ABS)/fw.bin $(RP2040_DIR)/boot2_crc.py
	$(PYTHON) $(RP2040_DIR)/boot2_crc.py uf2 $< $@
