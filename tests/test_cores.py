"""Every Cortex-M core edgeviz builds for: targets as data (core, flags, the QEMU machine that stands
in), `edgeviz targets`, the planner over a part's RAM banks, and each core's firmware bit-exact on its
emulated machine against the int8 reference."""
import importlib
import json
import re
import subprocess

import numpy as np
import pytest
import torch
from conftest import need
from models import inputs, make

from edgeviz import targets as targets_mod
from edgeviz.backends.mcu import write_project
from edgeviz.cli import main
from edgeviz.errors import EdgevizError
from edgeviz.frontend import graph_from_vit
from edgeviz.lower import plan_config
from edgeviz.model import ViT, ViTConfig, save_model
from edgeviz.project import compile_graph
from edgeviz.quantize import quantize_image, run_int8
from edgeviz.resources import data_dir
from edgeviz.runner import api
from edgeviz.targets import available_targets, load_target

# QEMU 7.2's machine for each core (ARMv6-M code for the M0+ runs on the M3 machine)
MACHINE = {"cortex-m0plus": "mps2-an385", "cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386",
           "cortex-m7": "mps2-an500", "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
# a part for each core the M7 tests (test_firmware_qemu.py) do not cover
PART = {"cortex-m0plus": "rp2040", "cortex-m3": "stm32f103", "cortex-m4": "stm32f411",
        "cortex-m33": "stm32u585", "cortex-m55": "alif-e3"}
DSP = {"cortex-m0plus": False, "cortex-m3": False}        # every other core takes the SMLAD path,
MVE = {"cortex-m55"}                                       # but the M55's matrix kernels are Helium
# the cores without DSP take matrix tiles for their instruction set (ev_gemm_nodsp.c)
TILES = {"cortex-m3": ("V7M", "ev__t22_v7m"), "cortex-m0plus": ("V6M", "ev__t14_v6m")}


def _mcu_targets():
    return [load_target(n) for n in available_targets() if load_target(n).kind == "mcu"]


def test_mcu_targets_name_their_core_flags_and_emulator():
    fw = data_dir("firmware") / "boards"
    cores = set()
    for t in _mcu_targets():
        cores.add(t.core)
        assert f"-mcpu={t.core}" in t.cflags and "-mthumb" in t.cflags, t.name
        assert t.emulator == MACHINE[t.core], t.name
        assert (fw / t.emulator / "board.c").is_file() and (fw / t.emulator / "memory.ld").is_file()
        assert t.board is None or (fw / t.board / "board.c").is_file(), t.name
        assert t.clock_hz > 0 and t.flash_bytes > 0 and t.ram_bytes > t.runtime_ram
    assert cores == set(MACHINE)
    assert [b.size for b in load_target("stm32u585").ram] == [192 << 10, 64 << 10, 512 << 10]
    assert load_target("rp2040").ram_bytes == 264 << 10


@pytest.mark.parametrize("name", sorted(set(PART.values()) | {"stm32f746"}))
def test_each_core_compiles_the_kernels_path_it_has(name):
    need("arm-none-eabi-gcc")
    t = load_target(name)
    kernels = data_dir("firmware") / "kernels"
    r = subprocess.run(["arm-none-eabi-gcc", *t.cflags, "-dM", "-E", "-x", "c", str(kernels / "ev_kernels.h")],
                       capture_output=True, text=True, check=True)
    assert f"#define EV_KERNELS_DSP {int(DSP.get(t.core, True))}" in r.stdout
    for core, (isa, _) in TILES.items():
        assert f"#define EV_KERNELS_{isa} {int(t.core == core)}" in r.stdout


def test_banks_must_be_contiguous(tmp_path, monkeypatch):
    (tmp_path / "gappy.toml").write_text('name = "gappy"\nkind = "mcu"\n[flash]\norigin = 0\nsize = 1024\n'
                                         '[[ram]]\nname = "A"\norigin = 0x20000000\nsize = 1024\n'
                                         '[[ram]]\nname = "B"\norigin = 0x20001000\nsize = 1024\n')
    monkeypatch.setattr(targets_mod, "data_dir", lambda name: tmp_path)
    targets_mod._read_target.cache_clear()
    try:
        with pytest.raises(EdgevizError, match="RAM bank B .* does not follow A"):
            load_target("gappy")
    finally:
        targets_mod._read_target.cache_clear()


def test_targets_command_lists_cores_memory_and_emulators(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for t in _mcu_targets():
        row = next(ln for ln in out.splitlines() if re.search(rf"\b{re.escape(t.name)}\b", ln))
        assert t.core in row and t.emulator in row and "MHz" in row, row
    assert "768 KB (3 banks)" in out
    assert ("none yet" in out) == any(t.board is None for t in _mcu_targets())
    assert main(["targets", "--json"]) == 0
    facts = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    u5 = facts["stm32u585"]
    assert (u5["core"], u5["emulator"], u5["clock_hz"], u5["flash_bytes"], u5["board"]) == \
        ("cortex-m33", "mps2-an505", 160_000_000, 2 << 20, "stm32u585")
    assert [b["name"] for b in u5["ram_banks"]] == ["SRAM1", "SRAM2", "SRAM3"]
    assert facts["stm32f746"]["board"] == "stm32f746" and facts["zcu102"]["kind"] == "fpga"


def test_planner_spreads_the_arena_over_the_banks_of_a_part():
    # 1,024 tokens of 128: a ~400 KB arena, past SRAM1 and SRAM2 into SRAM3
    r = plan_config(ViTConfig(img_size=64, patch=2, embed=128, heads=2, depth=1), "stm32u585")
    assert r.fits, r.why
    assert r.banks["SRAM1"] == 192 << 10 and r.banks["SRAM2"] == 64 << 10 and r.banks["SRAM3"] > 0
    assert sum(r.banks.values()) == r.peak_sram
    # the same plan on the RP2040 (264 KB) does not fit, and says by how much
    rp = plan_config(ViTConfig(img_size=64, patch=2, embed=128, heads=2, depth=1), "rp2040")
    assert not rp.fits and f"by {rp.peak_sram - load_target('rp2040').arena_capacity:,} bytes" in rp.why


def test_a_model_too_big_for_the_stm32f411_fails_in_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    p = tmp_path / "big.pt"
    save_model(ViT(ViTConfig(img_size=96, patch=4, embed=128, heads=2, depth=1)), p)
    rc = main(["build", str(p), "--target", "stm32f411", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert re.match(r"edgeviz: error: model does not fit stm32f411: arena of [\d,]+ B overflows SRAM by [\d,]+ bytes",
                    err[0]), err[0]
    assert not (tmp_path / "o").exists()


def _disassembly(elf, mve: bool = False) -> str:
    arch = ["-m", "armv8.1-m.main"] if mve else []   # objdump names MVE instructions only when told
    return subprocess.run(["arm-none-eabi-objdump", "-d", *arch, str(elf)], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.qemu
@pytest.mark.parametrize("core", sorted(PART))
@pytest.mark.parametrize("name", ["five-tokens", "cls-lowrank"])
def test_each_core_is_bit_exact_on_its_emulator(core, name, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    target = PART[core]
    m = make(name, seed=5)
    x = inputs(m.cfg, 8, seed=7)
    c = compile_graph(graph_from_vit(m), x[:6], target)
    out = tmp_path / "build"
    meta = write_project(c, out, name, x)
    machine = MACHINE[core]
    board = load_target(target).board
    assert (meta["core"], meta["emulator"], meta["board"]) == (core, machine, board)
    elf = out / "firmware" / f"fw-{machine}.elf"
    assert meta["emulator_elf"] == f"firmware/{elf.name}" and elf.is_file()
    # the part's own image where it has a board layer (tests/test_boards.py checks its layout)
    assert (out / "firmware" / "fw.elf").exists() == bool(board)
    assert meta["elf_arena_bytes"] == c.plan.peak
    asm = _disassembly(elf, core in MVE)
    if core in MVE:                                             # VMLADAVA.S8 (objdump: vmlava.s8)
        assert "vmlava.s8" in asm and "<ev__mv32>:" in asm
    else:
        assert ("smlad" in asm) == DSP.get(core, True)
    if core in TILES:
        assert f"<{TILES[core][1]}>:" in asm
    if core == "cortex-m0plus":                                 # ARMv6-M: no divide instruction
        assert not re.search(r"\s[su]div\s", asm)
    xq = np.stack([quantize_image(c.graph, xi) for xi in np.concatenate([x, 4 * x[:2]])])
    want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
    r = api.validate(out, "emulator", xq, want)
    assert r["bit_exact"] == len(xq), r["mismatched"]
    assert r["counts_median"] > c.info["macs"] / 4             # instructions, not ticks


@pytest.mark.qemu
def test_cli_profile_and_validate_boot_the_targets_machine(tmp_path, capsys, monkeypatch):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    p, b = tmp_path / "vit.pt", tmp_path / "b"
    save_model(make("five-tokens"), p)
    assert main(["build", str(p), "--target", "stm32u585", "-o", str(b)]) == 0
    assert "no board layer yet" not in capsys.readouterr().out
    assert main(["profile", str(b), "--port", "emulator", "-n", "2", "--json"]) == 0
    prof = json.loads(capsys.readouterr().out)
    assert prof["board"] == "mps2-an505" and prof["unit"] == "instructions" and prof["end_to_end"]["median"] > 0
    assert main(["validate", str(b), "--port", "emulator", "-n", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bit_exact"] == 4
    # a target without a board layer: flash points to the emulator image
    u5 = load_target("stm32u585")
    bare = targets_mod.Target(u5.name, u5.kind, u5.description, {k: v for k, v in u5.raw.items() if k != "board"},
                              u5.ram)
    # (edgeviz.runner re-exports the function flash(), which shadows the module of that name)
    monkeypatch.setattr(importlib.import_module("edgeviz.runner.flash"), "load_target", lambda name: bare)
    rc = main(["flash", str(b)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no board layer yet" in err[0] and "--port emulator" in err[0], err
