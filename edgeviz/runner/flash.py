"""Put a build's firmware on a board with pyocd, openocd or st-flash (whichever is installed).

For the emulator target, "flashing" means booting QEMU with the ELF and checking that it answers
INFO with the build's model id.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from ..errors import EdgevizError
from ..targets import load_target
from .builddir import Build, check_model, load_build
from .client import Device, open_port
from .qemu import Emulator

FLASH_TIMEOUT_S = 120
KNOWN_TOOLS = ("pyocd", "openocd", "st-flash")


def is_emulated(build: Build) -> bool:
    return list(load_target(build.target).get("flash_tools", [])) == ["qemu"]


def emulator_machine(build: Build) -> str:
    """The QEMU machine the build's emulator image was linked for: build.json records it (a target
    edited since still boots what was built); older builds name only the target, whose `emulator`
    was mps2-an500 for every target then."""
    machine = build.raw.get("emulator")
    return str(machine) if machine else load_target(build.target).emulator


def emulator_image(build: Build) -> tuple[Path, str]:
    """(ELF, QEMU machine) to boot for `--port emulator`: the build's own image for an emulated
    target, else the fw-<machine>.elf that every MCU build links beside the board's."""
    machine = emulator_machine(build)
    if is_emulated(build):
        return build.elf, machine
    elf = build.path / "firmware" / f"fw-{machine}.elf"
    if not elf.is_file():
        raise EdgevizError(f"{build.path} is built for {build.target} and holds no emulator image "
                           f"(firmware/fw-{machine}.elf); rebuild it or pass the board's serial port")
    return elf, machine


def flash_command(tool: str, build: Build) -> list[str]:
    target = load_target(build.target)
    elf = build.elf.resolve()
    if tool == "pyocd":
        # -W: fail instead of waiting forever for a probe
        return ["pyocd", "flash", "-W", "-t", str(target.get("pyocd_target", build.target)), str(elf)]
    if tool == "openocd":
        # one board file, or a list (an interface and a target file where OpenOCD has no board file)
        cfg = target.get("openocd_cfg", "board/stm32f746g-disco.cfg")
        files = [a for c in ([cfg] if isinstance(cfg, str) else cfg) for a in ("-f", str(c))]
        return ["openocd", *files, "-c", f"program {elf} verify reset exit"]
    if tool == "st-flash":
        origin = int(target["flash"]["origin"])
        return ["st-flash", "--reset", "write", str(elf.with_suffix(".bin")), f"0x{origin:08x}"]
    raise EdgevizError(f"unknown flashing tool '{tool}'; use one of: auto, {', '.join(KNOWN_TOOLS)}")


def flash(build_dir, probe: str = "auto", *, timeout: float = FLASH_TIMEOUT_S) -> dict:
    """Flash build_dir's firmware. probe: 'auto', 'pyocd', 'openocd', 'st-flash' (or 'qemu')."""
    build = load_build(build_dir)
    if is_emulated(build):
        return _boot_emulator(build)
    target = load_target(build.target)
    if not target.board:
        raise EdgevizError(f"target {target.name} has no board layer yet (firmware/boards/{target.name}), so "
                           f"{build.path} holds only the emulator image firmware/fw-{emulator_machine(build)}.elf; "
                           f"run it with --port emulator")
    tools = [t for t in target.get("flash_tools", KNOWN_TOOLS) if t in KNOWN_TOOLS]
    if probe != "auto":
        if probe not in tools:
            raise EdgevizError(f"probe '{probe}' cannot flash target {build.target}; use one of: auto, {', '.join(tools)}")
        tools = [probe]
    installed = [t for t in tools if shutil.which(t)]
    if not installed:
        cmd = shlex.join(flash_command(tools[0], build))
        raise EdgevizError(f"no flashing tool found ({', '.join(tools)} not installed); install one, plug in the "
                           f"board and run: {cmd}")
    tool = installed[0]
    cmd = flash_command(tool, build)
    if tool == "st-flash" and not Path(cmd[3]).is_file():
        raise EdgevizError(f"{cmd[3]} not found (st-flash needs the raw image); rebuild the model into {build.path}")
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgevizError(f"{tool} did not finish within {timeout:g} s (no probe connected?); check the USB "
                           f"cable, then run: {shlex.join(cmd)}") from None
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {res.returncode}"
        raise EdgevizError(f"{tool} failed ({why}); check the probe connection, then run: {shlex.join(cmd)}")
    return {"tool": tool, "command": cmd, "target": build.target, "model_id": f"0x{build.model_id:08x}"}


def _boot_emulator(build: Build) -> dict:
    elf, machine = emulator_image(build)
    with Emulator(elf, machine=machine) as emu:
        with Device(open_port(emu.url), name="emulator", alive=emu.dead) as dev:
            info = dev.info()
            check_model(build, info, "emulator")
        return {"tool": "qemu", "command": emu.command, "target": build.target,
                "model_id": f"0x{build.model_id:08x}", "board": info["board"]}
