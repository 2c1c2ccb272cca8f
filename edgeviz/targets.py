"""Board descriptions, read from targets/<name>.toml."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from .errors import EdgevizError
from .resources import data_dir


@dataclass
class Bank:
    name: str
    origin: int
    size: int


@dataclass
class Target:
    name: str
    kind: str                     # "mcu" or "fpga"
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

    @property
    def arena_capacity(self) -> int:
        """RAM left for the arena once the stack and runtime data are placed after it."""
        return self.ram_bytes - self.runtime_ram

    def bank_usage(self, start: int, length: int) -> dict[str, int]:
        """Bytes of [start, start+length) (offsets from the first bank) that fall in each bank."""
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


def load_target(name: str) -> Target:
    path = data_dir("targets") / f"{name}.toml"
    if not path.is_file():
        raise EdgevizError(f"unknown target '{name}'; choose one of: {', '.join(available_targets())}")
    raw = tomllib.loads(path.read_text())
    ram = [Bank(r["name"], int(r["origin"]), int(r["size"])) for r in raw.get("ram", [])]
    return Target(raw["name"], raw.get("kind", "mcu"), raw.get("description", ""), raw, ram)
