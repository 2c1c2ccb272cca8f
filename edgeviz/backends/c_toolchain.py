"""Turning generated C into binaries: a host shared library (bit-exactness checks) and firmware."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..errors import EdgevizError
from ..resources import data_dir


def kernel_sources() -> list[Path]:
    """The kernels' C sources, for the host build. The .S files beside them are the Cortex-M DSP
    path's assembly (only firmware/Makefile assembles them); the host build compiles the portable C path."""
    return sorted((data_dir("firmware") / "kernels").glob("*.c"))


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise EdgevizError(f"{cmd[0]} is not installed; it is needed to {what} (see the README's set-up command)")
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-12:]
        raise EdgevizError(f"{what} failed ({' '.join(cmd[:2])} ...): " + " | ".join(tail))
    return r


def build_host_library(model_dir: Path, out: Path, cc: str = "gcc") -> Path:
    """model.c + kernels (portable C path) -> a shared library for ctypes."""
    kdir = data_dir("firmware") / "kernels"
    cmd = [cc, "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
           f"-I{kdir}", f"-I{model_dir}", str(model_dir / "model.c"), *map(str, kernel_sources()), "-o", str(out)]
    _run(cmd, "compile the model for the host")
    return out


class HostModel:
    """The generated C model, compiled for this machine and called through ctypes."""

    def __init__(self, lib_path: Path, header: str):
        self.lib = ctypes.CDLL(str(lib_path))
        defs = dict(re.findall(r"#define (EV_\w+)\s+(\w+)", header))
        self.arena_bytes = int(defs["EV_ARENA_BYTES"])
        self.in_off, self.in_bytes = int(defs["EV_INPUT_OFFSET"]), int(defs["EV_INPUT_BYTES"])
        self.out_off, self.out_bytes = int(defs["EV_OUTPUT_OFFSET"]), int(defs["EV_OUTPUT_BYTES"])
        self.arena = (ctypes.c_int8 * self.arena_bytes).in_dll(self.lib, "ev_arena")
        self.invoke = self.lib.ev_model_invoke

    def run(self, xq: np.ndarray) -> np.ndarray:
        view = np.ctypeslib.as_array(self.arena)
        # poison the arena so a step reading bytes nobody wrote shows up as a mismatch
        view[:] = np.int8(0x5A)
        view[self.in_off:self.in_off + self.in_bytes] = np.asarray(xq, dtype=np.int8).reshape(-1)
        self.invoke()
        return view[self.out_off:self.out_off + self.out_bytes].copy()


def write_model_sources(model_c: str, model_h: str, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.c").write_text(model_c)
    (model_dir / "model.h").write_text(model_h)


def copy_firmware_tree(dest: Path, boards: list[str]) -> Path:
    """A self-contained firmware project: kernels, runtime, startup, linker, these boards, Makefile."""
    src = data_dir("firmware")
    dest.mkdir(parents=True, exist_ok=True)
    for part in ("kernels", "runtime", "startup", "linker"):
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, dirs_exist_ok=True)
    (dest / "boards").mkdir(exist_ok=True)
    for f in (src / "boards").glob("*.h"):
        shutil.copy2(f, dest / "boards" / f.name)
    for board in boards:
        shutil.copytree(src / "boards" / board, dest / "boards" / board, dirs_exist_ok=True)
    shutil.copy2(src / "Makefile", dest / "Makefile")
    return dest


def elf_symbol_size(elf: Path, symbol: str) -> int | None:
    r = _run(["arm-none-eabi-nm", "-S", str(elf)], "read the ELF symbols")
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            return int(parts[1], 16)
    return None


def elf_sections(elf: Path) -> dict[str, tuple[int, int]]:
    """section -> (address, size) from arm-none-eabi-size -A."""
    r = _run(["arm-none-eabi-size", "-A", "-d", str(elf)], "read the ELF sections")
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("."):
            out[parts[0]] = (int(parts[2]), int(parts[1]))
    return out
