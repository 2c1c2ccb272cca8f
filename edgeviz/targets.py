"""Board descriptions, read from targets/<name>.toml: one Target type for every kind of target.

A target is read once (load_target) and the object travels through the pipeline: the planner takes
its RAM banks, the MCU backend its flags, board layer and runtime sizes, the FPGA backend its part and
resources. Fields a kind does not use are absent from its file, and reading one says so.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field

from .errors import EdgevizError
from .resources import data_dir


@dataclass
class Bank:
    name: str
    origin: int
    size: int


class _Field:
    """A board-file field that only some kinds of target have; reading it where it is absent is one
    line naming the file and the field."""

    def __init__(self, cast):
        self.cast = cast

    def __set_name__(self, owner, name):
        self.key = name

    def __get__(self, target, owner=None):
        if target is None:
            return self
        if self.key not in target.raw:
            raise EdgevizError(f"targets/{target.name}.toml lacks the field {self.key!r} (a {target.kind} target)")
        return self.cast(target.raw[self.key])


@dataclass
class Target:
    name: str
    kind: str                     # "mcu" or "fpga": picks the backend (edgeviz.backends)
    description: str
    raw: dict = field(repr=False)
    ram: list[Bank] = field(default_factory=list)

    @property
    def ram_bytes(self) -> int:
        return sum(b.size for b in self.ram)

    @property
    def flash_bytes(self) -> int:
        return int(self.raw["flash"]["size"])

    @property
    def runtime_ram(self) -> int:
        r = self.raw.get("runtime", {})
        return int(r.get("stack_bytes", 0)) + int(r.get("reserved_bytes", 0))

    @property
    def code_bytes(self) -> int:
        return int(self.raw.get("runtime", {}).get("code_bytes", 0))

    # MCU targets: the core (cortex-m0plus, -m3, -m4, -m7, -m33 or -m55), its compiler flags (-mcpu,
    # -mthumb, FPU and float ABI: every firmware image of the target is compiled with them, its emulator
    # image included) and the QEMU machine that runs its code (board layer firmware/boards/<machine>/)
    core = _Field(str)
    cflags = _Field(lambda v: [str(f) for f in v])
    emulator = _Field(str)

    @property
    def board(self) -> str | None:
        """The real board layer (firmware/boards/<board>/), or None where none is written yet: builds
        for such a target carry only the emulator image."""
        b = self.raw.get("board")
        return str(b) if b else None

    @property
    def arena_capacity(self) -> int:
        """RAM left for the arena once the stack and runtime data are placed after it."""
        return self.ram_bytes - self.runtime_ram

    # FPGA resources (targets of kind "fpga"): what edgeviz.hls.estimate compares its estimate with
    part = _Field(str)
    clock_hz = _Field(int)
    bram18k = _Field(int)
    dsp = _Field(int)
    lut = _Field(int)
    ff = _Field(int)

    @property
    def int8_macs_per_dsp(self) -> int:
        """Two on UltraScale+ (a DSP48E2 packs two int8 products that share an operand), else one."""
        return int(self.raw.get("int8_macs_per_dsp", 2 if self.part.startswith("xczu") else 1))

    def bank_usage(self, start: int, length: int) -> dict[str, int]:
        """Bytes of [start, start+length) (offsets from the first bank) that fall in each bank."""
        if not self.ram:
            return {}
        base = self.ram[0].origin
        out = {}
        for b in self.ram:
            lo, hi = max(start, b.origin - base), min(start + length, b.origin - base + b.size)
            out[b.name] = max(0, hi - lo)
        return out

    def bank_at(self, offset: int) -> str:
        base = self.ram[0].origin
        for b in self.ram:
            if offset < b.origin - base + b.size:
                return b.name
        return self.ram[-1].name

    def __getitem__(self, key):
        return self.raw[key]

    def get(self, key, default=None):
        return self.raw.get(key, default)


def available_targets() -> list[str]:
    return sorted(p.stem for p in data_dir("targets").glob("*.toml"))


def load_target(name: str | Target) -> Target:
    """The target named `name` (a Target is returned as it is). Read once per name and shared: a
    Target is not to be changed."""
    return name if isinstance(name, Target) else _read_target(name)


@functools.lru_cache(maxsize=None)
def _read_target(name: str) -> Target:
    path = data_dir("targets") / f"{name}.toml"
    if not path.is_file():
        raise EdgevizError(f"unknown target '{name}'; choose one of: {', '.join(available_targets())}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise EdgevizError(f"targets/{name}.toml is not valid TOML: {e}") from None
    ram = [Bank(r["name"], int(r["origin"]), int(r["size"])) for r in raw.get("ram", [])]
    for a, b in zip(ram, ram[1:]):
        # the arena is one run of bytes from the first bank's origin (bank_usage, bank_at)
        if b.origin != a.origin + a.size:
            raise EdgevizError(f"targets/{name}.toml: RAM bank {b.name} (0x{b.origin:08x}) does not follow {a.name} "
                               f"(ends at 0x{a.origin + a.size:08x}); list only banks that are contiguous, in address order")
    return Target(raw.get("name", name), raw.get("kind", "mcu"), raw.get("description", ""), raw, ram)


def load_fpga_target(name: str | Target) -> Target:
    """A target of kind "fpga" (the HLS estimator and generator need its resources)."""
    t = load_target(name)
    if t.kind != "fpga":
        known = [n for n in available_targets() if load_target(n).kind == "fpga"]
        raise EdgevizError(f"target '{t.name}' is a {t.kind!r} target, not an FPGA board; FPGA boards: {', '.join(known)}")
    return t
