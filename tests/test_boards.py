"""The real boards' layers (firmware/boards/<board>/ for every target whose TOML names a `board`):
each compiles warning-free, and a small model links into an image whose vector table, code and RAM
sit where the part has them. Compiled and linked only: nothing here runs on a board."""
import binascii
import importlib.util
import json
import re
import struct
import subprocess

import numpy as np
import pytest
from conftest import need
from models import inputs, make

from edgeviz.backends.c_toolchain import elf_sections, write_model_sources
from edgeviz.backends.mcu import write_project
from edgeviz.cli import main
from edgeviz.frontend import graph_from_vit
from edgeviz.model import save_model
from edgeviz.project import compile_graph
from edgeviz.quantize import quantize_image, run_int8
from edgeviz.resources import data_dir

# the RP2040 build's own CRC, anchored below to the catalogue's check value
_spec = importlib.util.spec_from_file_location("boot2_crc", data_dir("firmware") / "boards" / "rp2040" / "boot2_crc.py")
_boot2_crc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_boot2_crc)
_crc32_mpeg2 = _boot2_crc.crc32_mpeg2
from edgeviz.runner import api
from edgeviz.runner import qemu as qemu_mod
from edgeviz.runner.firmware import build_firmware
from edgeviz.runner.flash import KNOWN_TOOLS
from edgeviz.targets import available_targets, load_target

BOARDS = [n for n in available_targets()
          if load_target(n).kind == "mcu" and load_target(n).board and load_target(n).board != load_target(n).emulator]
# the parts whose boot ROM runs a second-stage boot loader from the first 256 bytes of flash
BOOT2 = {"rp2040": 256}
# build-time choices a board layer offers (each must compile warning-free too)
VARIANTS = {"stm32f103": [[], ["-DEV_F103_USART1"]]}


def test_the_parts_with_a_board_layer():
    assert set(BOARDS) >= {"stm32f746", "stm32f411", "nrf52840", "stm32u585", "stm32f103", "rp2040"}


@pytest.mark.parametrize("name", BOARDS)
def test_board_toml_names_its_layer_and_tools(name):
    t = load_target(name)
    text = (data_dir("targets") / f"{name}.toml").read_text()
    assert "No board layer yet" not in text
    fw = data_dir("firmware") / "boards" / t.board
    assert (fw / "board.c").is_file() and (fw / "memory.ld").is_file()
    assert t["timer"] in ("dwt", "systick")
    tools = t.get("flash_tools", [])
    assert tools and set(tools) <= set(KNOWN_TOOLS), tools
    assert ("pyocd" not in tools) or t.get("pyocd_target")
    assert ("openocd" not in tools) or t.get("openocd_cfg")


@pytest.mark.parametrize("name", BOARDS)
def test_board_layer_compiles_without_warnings(name, tmp_path):
    need("arm-none-eabi-gcc")
    t = load_target(name)
    fw = data_dir("firmware")
    for defs in VARIANTS.get(name, [[]]):
        r = subprocess.run(["arm-none-eabi-gcc", *t.cflags, *defs, "-O2", "-std=c11", "-Wall", "-Wextra",
                            "-Wdouble-promotion", "-Werror", f"-I{fw / 'runtime'}", f"-I{fw / 'boards'}",
                            f"-I{fw / 'boards' / t.board}", "-c", str(fw / "boards" / t.board / "board.c"),
                            "-o", str(tmp_path / "board.o")], capture_output=True, text=True)
        assert r.returncode == 0, (defs, r.stderr)
        # every function board.h declares is defined (board_ticks_to_counter too: a part-profile image
        # may be linked for the board one day)
        nm = subprocess.run(["arm-none-eabi-nm", "--defined-only", str(tmp_path / "board.o")], capture_output=True,
                            text=True, check=True).stdout
        defined = {ln.split()[-1] for ln in nm.splitlines() if ln.split()[1] in "TDRB"}
        assert BOARD_API <= defined, BOARD_API - defined


BOARD_API = set(re.findall(r"\b(board_\w+)\s*(?:\(|\[)", (data_dir("firmware") / "boards" / "board.h").read_text()))


def _regions(map_file):
    """MEMORY regions of a linked image, from the map's "Memory Configuration": name -> (origin, length)."""
    text = map_file.read_text()
    block = text[text.index("Memory Configuration"):text.index("Linker script and memory map")]
    return {m[1]: (int(m[2], 16), int(m[3], 16))
            for m in re.finditer(r"^(\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)", block, re.M) if m[1] != "*default*"}


def _symbols(elf):
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.splitlines()) if len(p) == 3}


def _section(elf, name, tmp_path):
    out = tmp_path / f"{name.strip('.')}.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", f"--only-section={name}", str(elf), str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("name", BOARDS)
def test_a_model_links_for_the_part(name, tmp_path):
    """fw.elf for the board: the linker's regions are the TOML's flash and RAM, the vector table opens
    flash (after the boot loader where the part has one), the arena starts RAM and .data / .bss /
    stack stay inside the banks, and the reset vector points into the image's code."""
    need("arm-none-eabi-gcc")
    t = load_target(name)
    m = make("five-tokens", seed=1)
    c = compile_graph(graph_from_vit(m), inputs(m.cfg, 4, seed=2), t)
    write_model_sources(c.model_c, c.model_h, tmp_path / "model")
    # -O0: the layout is what is checked here, and it compiles the kernels five times faster (the
    # optimised image is linked by test_edgeviz_build_links_the_board_image_beside_the_emulators)
    elf = build_firmware(tmp_path / "model", t.board, tmp_path / "fw", arch_flags=t.cflags,
                         flash_bytes=t.flash_bytes, ram_bytes=t.ram_bytes, extra_cflags="-O0")
    flash0, flash_n = int(t["flash"]["origin"]), t.flash_bytes
    ram0, ram_n = t.ram[0].origin, t.ram_bytes
    boot = BOOT2.get(name, 0)

    regions = _regions(elf.with_suffix(".map"))
    assert regions["RAM"] == (ram0, ram_n), regions
    assert regions["FLASH"] == (flash0 + boot, flash_n - boot), regions

    secs = elf_sections(elf)
    assert secs[".isr_vector"][0] == flash0 + boot
    for s in (".isr_vector", ".text", ".rodata"):
        addr, size = secs[s]
        assert flash0 <= addr and addr + size <= flash0 + flash_n, (s, hex(addr))
    for s in (".ev_arena", ".data", ".bss", ".stack"):
        addr, size = secs[s]
        assert ram0 <= addr and addr + size <= ram0 + ram_n, (s, hex(addr))
    assert secs[".ev_arena"] == (ram0, c.plan.peak)

    sym = _symbols(elf)
    assert sym["__stack_top"] == ram0 + ram_n
    # .data's initial values are copied from flash by the reset handler
    assert flash0 + boot <= sym["__data_load"] and sym["__data_load"] + secs[".data"][1] <= flash0 + flash_n
    vec = _section(elf, ".isr_vector", tmp_path)
    sp, reset = int.from_bytes(vec[0:4], "little"), int.from_bytes(vec[4:8], "little")
    assert sp == ram0 + ram_n and reset == sym["Reset_Handler"] | 1
    assert flash0 + boot < reset < flash0 + flash_n

    if boot:
        b2 = _section(elf, ".boot2", tmp_path)
        assert secs[".boot2"] == (flash0, boot) and len(b2) == boot
        # CRC-32 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final xor) of the first
        # 252 bytes, stored little-endian in the last 4: what the boot ROM checks before running it
        assert int.from_bytes(b2[-4:], "little") == _crc32_mpeg2(b2[:-4])
        assert (flash0 + boot).to_bytes(4, "little") in b2             # it enters the vector table
        assert (tmp_path / "fw" / "fw.bin").read_bytes()[:boot] == b2


def test_crc_matches_the_reference_check_value():
    # the build's own CRC (boards/rp2040/boot2_crc.py): CRC-32/MPEG-2 of "123456789" is 0x0376E6E7 (the catalogue's check value); binascii's is the
    # reflected CRC-32, a different function
    assert _crc32_mpeg2(b"123456789") == 0x0376E6E7 != binascii.crc32(b"123456789")


def test_edgeviz_build_links_the_board_image_beside_the_emulators(tmp_path, capsys):
    """The whole `edgeviz build` on the RP2040 (the one board layer with extra build steps): fw.elf
    for the Pico with fw.bin and fw.uf2 beside it (the UF2 blocks carry fw.bin from the flash origin,
    boot2 first), and the M3 emulator image."""
    need("arm-none-eabi-gcc")
    p, b = tmp_path / "vit.pt", tmp_path / "b"
    save_model(make("five-tokens"), p)
    assert main(["build", str(p), "--target", "rp2040", "-o", str(b)]) == 0
    assert "no board layer yet" not in capsys.readouterr().out
    meta = json.loads((b / "build.json").read_text())
    fw = b / "firmware"
    assert meta["board"] == "rp2040" and meta["elf"] == str((fw / "fw.elf").resolve())
    assert (fw / "fw.elf").is_file() and (fw / "fw-mps2-an385.elf").is_file()
    image, uf2 = (fw / "fw.bin").read_bytes(), (fw / "fw.uf2").read_bytes()
    assert len(uf2) == 512 * -(-len(image) // 256)
    for i in range(len(uf2) // 512):
        block = uf2[512 * i:512 * (i + 1)]
        magic0, magic1, flags, addr, size, number, count, family = struct.unpack_from("<8I", block)
        assert (magic0, magic1, flags, family) == (0x0A324655, 0x9E5D5157, 0x2000, 0xE48BFF56)
        assert (addr, size, number, count) == (0x10000000 + 256 * i, 256, i, len(uf2) // 512)
        assert block[32:288] == image[256 * i:256 * (i + 1)].ljust(256, b"\0")
        assert struct.unpack_from("<I", block, 508)[0] == 0x0AB16F30
    assert _crc32_mpeg2(image[:252]) == int.from_bytes(image[252:256], "little")


# QEMU machines close enough to a part to boot its board image: (machine, its SRAM where it has less)
EMULATED = {"stm32f411": ("netduinoplus2", None), "stm32f103": ("stm32vldiscovery", 8 << 10)}


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(EMULATED))
def test_the_board_image_answers_on_a_similar_emulated_part(name, tmp_path, monkeypatch):
    """QEMU models two relatives of the parts: netduinoplus2 is an STM32F405 (the F411's flash and SRAM
    addresses, the same USART2 at the same address), stm32vldiscovery an STM32F100 (the F103's RCC,
    GPIO and USART2 addresses, but 8 KB SRAM: the F103 image is relinked with that RAM and a 3 KB
    stack). The board's own code (startup, board_init, USART2 polling) with the runtime answers INFO
    and INFER bit-exact over the machine's second serial port. QEMU has no model of these parts' RCC
    or GPIO (writes ignored, reads zero) nor of the DWT: the clock set-up falls back to the internal
    oscillator after its bounded waits and the cycle counts are 0, so neither the clocks, the pins
    nor the timing are checked here."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    machine, sram = EMULATED[name]
    t = load_target(name)
    m = make("five-tokens", seed=3)
    x = inputs(m.cfg, 4, seed=4)
    c = compile_graph(graph_from_vit(m), x, t)
    out = tmp_path / "b"
    write_project(c, out, "five-tokens", x)
    elf = out / "firmware" / "fw.elf"
    if sram:
        fw = out / "firmware"
        ld = fw / "boards" / t.board / "memory.ld"
        ld.write_text(re.sub(r"(RAM\s+\(rwx\)\s*:\s*ORIGIN = 0x20000000, LENGTH = )\w+", rf"\g<1>{sram}", ld.read_text()))
        assert f"LENGTH = {sram}" in ld.read_text()
        elf = build_firmware(out / "model", t.board, tmp_path / "small", fw_dir=fw, arch_flags=t.cflags,
                             stack_size=3072)

    def command(elf, port, exe, _machine):
        return [exe, "-machine", machine, "-nographic", "-monitor", "none", "-kernel", str(elf),
                "-serial", "null", "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"]
    monkeypatch.setattr(qemu_mod, "qemu_command", command)
    xq = np.stack([quantize_image(c.graph, xi) for xi in x])
    want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
    with qemu_mod.Emulator(elf, machine=machine) as emu:
        r = api.validate(out, emu.url, xq, want)
    assert r["bit_exact"] == len(xq), r["mismatched"]
