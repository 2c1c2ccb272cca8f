"""Build firmware/ for a board around a folder holding model.c + model.h (runs firmware/Makefile)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import EdgevizError
from ..resources import data_dir

MAKE_TIMEOUT_S = 600


def require_firmware_tools() -> None:
    """EdgevizError naming what to install when make or arm-none-eabi-gcc is not on PATH."""
    for tool in ("make", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise EdgevizError(f"{tool} not found; install it (apt-get install make gcc-arm-none-eabi "
                               f"libnewlib-arm-none-eabi) to build firmware")


def build_firmware(model_dir, board: str, out_dir, *, stack_size: int | None = None, jobs: int | None = None,
                   extra_cflags: str = "", kernels: bool = True, fw_dir: Path | None = None,
                   arch_flags: list[str] | None = None, flash_bytes: int | None = None,
                   ram_bytes: int | None = None) -> Path:
    """make BOARD=board MODEL_DIR=model_dir OUT=out_dir; returns out_dir/fw.elf.
    kernels=False leaves firmware/kernels out (for hand-written test models that call none);
    fw_dir: a copied firmware project (a build folder's firmware/) instead of the installed one;
    arch_flags: the core's compiler flags (a target's cflags; the Makefile's default is the F746's);
    flash_bytes / ram_bytes: the part's sizes, which an emulator board links with."""
    require_firmware_tools()
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir).resolve()
    if not (model_dir / "model.h").is_file():
        raise EdgevizError(f"{model_dir} has no model.h; generate the model first")
    fw = Path(fw_dir).resolve() if fw_dir is not None else data_dir("firmware")
    if not (fw / "boards" / board / "board.c").is_file():
        boards = sorted(p.parent.name for p in (fw / "boards").glob("*/board.c"))
        raise EdgevizError(f"no firmware board '{board}'; choose one of: {', '.join(boards)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # PYTHON: the interpreter running edgeviz, for a board's build-time helpers (the RP2040's boot2 CRC)
    cmd = ["make", "-C", str(fw), f"-j{jobs or os.cpu_count() or 2}", f"BOARD={board}", f"MODEL_DIR={model_dir}",
           f"OUT={out_dir}", f"PYTHON={sys.executable}"]
    if stack_size is not None:
        cmd.append(f"STACK_SIZE={int(stack_size)}")
    if not kernels:
        cmd.append("KERNELS=")
    if extra_cflags:
        cmd.append(f"EXTRA_CFLAGS={extra_cflags}")
    if arch_flags:
        cmd.append(f"ARCH_FLAGS={' '.join(arch_flags)}")
    if flash_bytes is not None:
        cmd.append(f"FLASH_BYTES={int(flash_bytes)}")
    if ram_bytes is not None:
        cmd.append(f"RAM_BYTES={int(ram_bytes)}")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=MAKE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgevizError(f"firmware build did not finish within {MAKE_TIMEOUT_S} s: {' '.join(cmd)}") from None
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        key = [ln for ln in lines if "edgeviz:" in ln or "error" in ln.lower()]
        why = (key or lines or [f"exit code {res.returncode}"])[0].strip()
        if "edgeviz:" in why:                       # our linker ASSERTs: drop the ld path prefix
            why = why[why.index("edgeviz:") + len("edgeviz:"):].strip()
        raise EdgevizError(f"firmware build for {board} failed: {why} (full log: rerun {' '.join(cmd)})")
    return out_dir / "fw.elf"
