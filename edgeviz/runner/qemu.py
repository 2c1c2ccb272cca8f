"""Boot firmware on a QEMU Cortex-M machine with its UART on a local TCP port.

The machine is the one the image was linked for (a target's `emulator`: mps2-an385 Cortex-M3, which
also runs Cortex-M0+ code, mps2-an386 M4, mps2-an500 M7, mps2-an505 M33, mps3-an547 M55; each has its
board layer in firmware/boards/<machine>/). The host speaks first (bytes the firmware sends before a
client connects are lost), SysTick counts instructions deterministically under -icount shift=0, and
the emulator is always stopped afterwards.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import EdgevizError

QEMU = "qemu-system-arm"
MACHINE = "mps2-an500"           # the default: the emulated Cortex-M7
EMULATOR_PORT = "emulator"       # the `port` value that means "boot QEMU"


def qemu_command(elf: Path, tcp_port: int, qemu: str = QEMU, machine: str = MACHINE) -> list[str]:
    return [qemu, "-machine", machine, "-nographic", "-monitor", "none", "-kernel", str(elf),
            "-serial", f"tcp:127.0.0.1:{tcp_port},server=on,wait=off,nodelay=on",
            "-icount", "shift=0,sleep=off", "-semihosting-config", "enable=on,target=native"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """Context manager: `with Emulator(elf, machine=...) as emu: open_port(emu.url)`."""

    def __init__(self, elf, *, machine: str = MACHINE, boot_timeout: float = 10.0, attempts: int = 3):
        self.elf = Path(elf)
        self.machine = machine
        self.boot_timeout = boot_timeout
        self.attempts = attempts
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.command: list[str] = []
        self._log = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> "Emulator":
        exe = shutil.which(QEMU)
        if exe is None:
            raise EdgevizError(f"{QEMU} not found; install it (apt-get install qemu-system-arm) to run on the emulator")
        if not self.elf.is_file():
            raise EdgevizError(f"firmware {self.elf} not found; build the model first")
        last = ""
        for _ in range(self.attempts):      # a port picked free may be taken before QEMU binds it
            self.port = free_port()
            self.command = qemu_command(self.elf, self.port, exe, self.machine)
            self._log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT)
            last = self._wait_listening()
            if not last:
                return self
            self.stop()
        raise EdgevizError(f"QEMU did not start: {last}")

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            why = self.dead()
            if why:
                return why
            try:
                # probing the port once is harmless: QEMU's chardev takes the next client
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return ""
            except OSError:
                time.sleep(0.02)
        return f"its serial port {self.port} did not open within {self.boot_timeout:g} s"

    def output(self) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def dead(self) -> str | None:
        """None while QEMU runs; otherwise why it stopped, in one line."""
        if self.proc is None:
            return "the emulator is not running"
        rc = self.proc.poll()
        if rc is None:
            return None
        text = " ".join(self.output().split())[-200:]
        what = {0: "the firmware exited", 0xEF: "the firmware crashed (fault handler)"}.get(rc, f"exit code {rc}")
        return f"the emulator stopped ({what}){': ' + text if text else ''}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
