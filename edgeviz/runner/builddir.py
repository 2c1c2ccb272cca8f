"""A BUILD_DIR as written by the build step: firmware/fw.elf (or fw-<board>.elf) and build.json."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EdgevizError

REQUIRED = ("target", "model_id", "input_shape", "input_scale", "output_shape", "output_scale",
            "arena_bytes", "layers")
MODEL_ID_SYMBOL = "ev_fw_model_id"      # const uint32_t in the runtime (firmware/runtime/ev_runtime.c)


@dataclass
class Build:
    path: Path
    target: str
    model_id: int
    input_shape: list[int]
    input_scale: float
    output_shape: list[int]
    output_scale: float
    arena_bytes: int
    layers: list[str]
    elf: Path
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def input_bytes(self) -> int:
        return _prod(self.input_shape)

    @property
    def output_bytes(self) -> int:
        return _prod(self.output_shape)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def parse_model_id(value) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value & 0xFFFFFFFF
    return int(str(value), 0 if str(value).lower().startswith("0x") else 16) & 0xFFFFFFFF


def load_build(build_dir) -> Build:
    """Read and check a build dir; any problem is one EdgevizError line saying what to do."""
    path = Path(build_dir)
    if not path.is_dir():
        raise EdgevizError(f"build dir {path} does not exist; build the model into it first")
    meta_path = path / "build.json"
    if not meta_path.is_file():
        raise EdgevizError(f"{path} is not a build dir (no build.json); build the model into it first")
    try:
        raw = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise EdgevizError(f"{meta_path} is unreadable ({e}); rebuild the model into {path}") from None
    if not isinstance(raw, dict):
        raise EdgevizError(f"{meta_path} is not a JSON object; rebuild the model into {path}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise EdgevizError(f"{meta_path} lacks {', '.join(missing)}: it is stale or from another tool; rebuild the model into {path}")
    try:
        model_id = parse_model_id(raw["model_id"])
        build = Build(path=path, target=str(raw["target"]), model_id=model_id,
                      input_shape=[int(d) for d in raw["input_shape"]], input_scale=float(raw["input_scale"]),
                      output_shape=[int(d) for d in raw["output_shape"]], output_scale=float(raw["output_scale"]),
                      arena_bytes=int(raw["arena_bytes"]), layers=[str(n) for n in raw["layers"]],
                      elf=path, raw=raw)
    except (TypeError, ValueError) as e:
        raise EdgevizError(f"{meta_path} has a malformed field ({e}); rebuild the model into {path}") from None
    build.elf = find_elf(path, build.target)
    elf_id = read_u32_symbol(build.elf, MODEL_ID_SYMBOL)
    if elf_id is not None and elf_id != model_id:
        raise EdgevizError(f"build dir {path} is stale: {build.elf.name} holds model 0x{elf_id:08x} but build.json says "
                           f"0x{model_id:08x}; rebuild it")
    return build


def find_elf(path: Path, target: str) -> Path:
    fw = path / "firmware"
    for cand in (fw / "fw.elf", fw / f"fw-{target}.elf", path / "fw.elf", path / f"fw-{target}.elf"):
        if cand.is_file():
            return cand
    found = sorted(fw.glob("fw-*.elf")) if fw.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise EdgevizError(f"no firmware in {path} (expected firmware/fw.elf); the build did not finish: rebuild the model into {path}")


def read_u32_symbol(elf: Path, name: str) -> int | None:
    """Value stored at a symbol of a 32-bit little-endian ELF; None if the symbol is absent."""
    try:
        data = elf.read_bytes()
    except OSError as e:
        raise EdgevizError(f"cannot read {elf}: {e}") from None
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise EdgevizError(f"{elf} is not a 32-bit little-endian ELF; rebuild the firmware")
    try:
        shoff, = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
        sections = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
        want = name.encode()
        for sh in sections:
            if sh[1] != 2:                           # SHT_SYMTAB
                continue
            strtab = sections[sh[6]]
            for off in range(sh[4], sh[4] + sh[5], 16):
                st_name, st_value, st_size, _info, _other, st_shndx = struct.unpack_from("<IIIBBH", data, off)
                s0 = strtab[4] + st_name
                if data[s0:data.index(b"\0", s0)] != want or st_shndx == 0 or st_shndx >= len(sections):
                    continue
                sec = sections[st_shndx]
                if sec[1] == 8:                      # SHT_NOBITS: no stored value
                    return None
                pos = sec[4] + st_value - sec[3]
                return struct.unpack_from("<I", data, pos)[0]
    except (struct.error, ValueError, IndexError):
        raise EdgevizError(f"{elf} is truncated or corrupt; rebuild the firmware") from None
    return None


def check_model(build: Build, info: dict, where: str) -> None:
    """The device must run the build's model; otherwise one line saying what to flash."""
    if info["model_id"] != build.model_id:
        raise EdgevizError(f"{where} runs model 0x{info['model_id']:08x}, but {build.path} is model "
                           f"0x{build.model_id:08x}: flash this build first (edgeviz flash {build.path})")
    if info["input_bytes"] != build.input_bytes or info["output_bytes"] != build.output_bytes:
        raise EdgevizError(f"{where} reports input/output of {info['input_bytes']}/{info['output_bytes']} bytes but "
                           f"{build.path}/build.json says {build.input_bytes}/{build.output_bytes}: rebuild it")
    if info["num_layers"] != len(build.layers):
        raise EdgevizError(f"{where} reports {info['num_layers']} layers but {build.path}/build.json lists "
                           f"{len(build.layers)}: rebuild it")
