"""The host <-> firmware serial protocol: the ONE definition of its constants and layouts.

firmware/runtime/ev_protocol.h is generated from this module
(``python -m edgeviz.runner.genheader``); tests/test_protocol.py checks that the
checked-in header equals the generated one.

Frame (all integers little-endian)::

    offset 0  magic0   u8   0xE7
    offset 1  magic1   u8   0x56
    offset 2  version  u8   PROTOCOL_VERSION
    offset 3  command  u8   request: CMD_*; reply: CMD_* | REPLY_FLAG; error reply: CMD_ERROR | REPLY_FLAG
    offset 4  seq      u16  chosen by the host, echoed in the reply
    offset 6  length   u32  payload bytes
    offset 10 payload  length bytes
    then      crc32    u32  CRC-32 (zlib / IEEE 802.3) over header and payload

The host speaks first; the device answers every well-formed request with exactly one reply frame.
A device that sees a header it cannot accept (unknown version, length not allowed for the command)
answers CMD_ERROR with ERR_BAD_HEADER and resynchronises on the next magic byte.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\xe7\x56"
PROTOCOL_VERSION = 1
HEADER = struct.Struct("<2sBBHI")       # magic, version, command, seq, length
HEADER_LEN = HEADER.size                # 10
CRC_LEN = 4
REPLY_FLAG = 0x80
MAX_PAYLOAD = 1 << 24                   # the host refuses longer frames (resync instead)

# Commands
CMD_INFO = 0x01
CMD_INFER = 0x02
CMD_PROFILE = 0x03
CMD_RESET = 0x04
# Added without a version bump: firmware from before it (and every image built without
# EV_PROFILE_PARTS) answers ERR_UNKNOWN_CMD, which the host reads as "no part profile".
CMD_PARTS = 0x05
CMD_ERROR = 0x7F
COMMANDS = {"INFO": CMD_INFO, "INFER": CMD_INFER, "PROFILE": CMD_PROFILE, "RESET": CMD_RESET,
            "PARTS": CMD_PARTS, "ERROR": CMD_ERROR}

# Error codes (payload byte 0 of an ERROR reply)
ERR_BAD_CRC = 1          # frame CRC did not match: retryable
ERR_BAD_HEADER = 2       # version or length not acceptable: retryable (line noise) a few times
ERR_UNKNOWN_CMD = 3      # command code not known to this firmware
ERR_RX_TIMEOUT = 4       # frame stopped arriving part way: retryable
ERR_NO_INFERENCE = 5     # PROFILE before any INFER since boot
ERRORS = {ERR_BAD_CRC: "bad CRC", ERR_BAD_HEADER: "bad frame header",
          ERR_UNKNOWN_CMD: "unknown command", ERR_RX_TIMEOUT: "frame timed out part way",
          ERR_NO_INFERENCE: "no inference since boot"}
RETRYABLE_ERRORS = frozenset({ERR_BAD_CRC, ERR_BAD_HEADER, ERR_RX_TIMEOUT})

# Timer units reported by INFO
UNIT_CYCLES = 0          # DWT->CYCCNT core cycles (real board)
UNIT_INSTRUCTIONS = 1    # instructions executed (QEMU -icount), not cycles
UNITS = {UNIT_CYCLES: "cycles", UNIT_INSTRUCTIONS: "instructions"}

# The device drops a frame whose bytes stop arriving for this long (ms of device time).
DEVICE_RX_TIMEOUT_MS = 100

BOARD_NAME_LEN = 16

# Payload layouts: (field, struct code). The C header gets an offset per field and the total length.
INFO_FIELDS = [
    ("model_id", "I"), ("arena_bytes", "I"),
    ("input_offset", "I"), ("input_bytes", "I"),
    ("output_offset", "I"), ("output_bytes", "I"),
    ("num_layers", "H"),
    ("input_shape", "4H"), ("output_shape", "4H"),
    ("input_scale", "f"), ("output_scale", "f"),
    ("clock_hz", "I"), ("timer_unit", "B"),
    ("board", f"{BOARD_NAME_LEN}s"),
]
INFER_REPLY_FIELDS = [("infer_count", "I"), ("count", "Q")]          # then output_bytes int8
PROFILE_REPLY_FIELDS = [("infer_count", "I"), ("num_layers", "H"), ("total", "Q")]  # then u64 per layer
# The kinds of work a part-profile image tells apart (firmware/kernels/ev_parts.h): the C header gets
# EV_PART_<NAME> = its index and EV_NUM_PARTS. What a step spends outside them is its total minus them.
PARTS = ("mac", "softmax", "norm", "requant", "move")
# then per layer: u64 per part (in the timer unit), then u64 bound (the most the parts can be off by)
PARTS_REPLY_FIELDS = [("infer_count", "I"), ("num_layers", "H"), ("num_parts", "B")]
ERROR_FIELDS = [("code", "B"), ("command", "B"), ("detail", "I")]


def _struct(fields) -> struct.Struct:
    return struct.Struct("<" + "".join(code for _, code in fields))


INFO = _struct(INFO_FIELDS)
INFER_REPLY = _struct(INFER_REPLY_FIELDS)
PROFILE_REPLY = _struct(PROFILE_REPLY_FIELDS)
PARTS_REPLY = _struct(PARTS_REPLY_FIELDS)
ERROR = _struct(ERROR_FIELDS)


def _offsets(fields):
    off = 0
    for name, code in fields:
        yield name, off
        off += struct.calcsize("<" + code)


# ---------------------------------------------------------------- framing

def crc32(data: bytes, crc: int = 0) -> int:
    return zlib.crc32(data, crc) & 0xFFFFFFFF


def encode_frame(command: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(MAGIC, version, command & 0xFF, seq & 0xFFFF, len(payload))
    body = head + bytes(payload)
    return body + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    version: int
    command: int
    seq: int
    payload: bytes


class FrameParser:
    """Incremental frame parser: feed bytes, get whole CRC-checked frames.

    Garbage is skipped byte by byte until a magic; a candidate whose length is absurd or whose CRC
    fails is dropped and the search restarts one byte after its magic, so a frame hidden inside
    garbage (or inside a damaged frame) is still found.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.crc_errors = 0
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while True:
            frame = self._next()
            if frame is None:
                return out
            out.append(frame)

    def _drop(self, n: int) -> None:
        del self.buf[:n]
        self.skipped += n

    def _next(self) -> Frame | None:
        buf = self.buf
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                # keep a trailing first magic byte: it may start a frame
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self._drop(len(buf) - keep)
                return None
            if i:
                self._drop(i)
            if len(buf) < HEADER_LEN:
                return None
            _, version, command, seq, length = HEADER.unpack_from(buf)
            if length > self.max_payload:
                self._drop(1)
                continue
            if len(buf) < HEADER_LEN + length + CRC_LEN:
                # The candidate may be a damaged header with a long false length swallowing real
                # frames: if a complete valid frame starts at a later magic, skip to it.
                j = buf.find(MAGIC, 1)
                while j > 0 and self._valid_at(j) is None:
                    j = buf.find(MAGIC, j + 1)
                if j > 0:
                    self._drop(j)
                    continue
                return None
            frame = self._valid_at(0)
            if frame is None:
                self.crc_errors += 1
                self._drop(1)
                continue
            del buf[:HEADER_LEN + len(frame.payload) + CRC_LEN]
            return frame

    def _valid_at(self, i: int) -> Frame | None:
        """The complete CRC-valid frame starting at buf[i], else None."""
        buf = self.buf
        if len(buf) < i + HEADER_LEN:
            return None
        _, version, command, seq, length = HEADER.unpack_from(buf, i)
        end = i + HEADER_LEN + length
        if length > self.max_payload or len(buf) < end + CRC_LEN:
            return None
        body = bytes(buf[i:end])
        if struct.unpack_from("<I", buf, end)[0] != crc32(body):
            return None
        return Frame(version, command, seq, body[HEADER_LEN:])

    def pending(self) -> int:
        return len(self.buf)


# ---------------------------------------------------------------- payloads

def parse_info(payload: bytes) -> dict:
    if len(payload) != INFO.size:
        raise ValueError(f"INFO payload is {len(payload)} bytes, expected {INFO.size}")
    v = INFO.unpack(payload)
    (model_id, arena, in_off, in_bytes, out_off, out_bytes, nl) = v[:7]
    in_shape, out_shape = list(v[7:11]), list(v[11:15])
    in_scale, out_scale, clock_hz, unit, board = v[15:]
    return {"model_id": model_id, "arena_bytes": arena, "input_offset": in_off, "input_bytes": in_bytes,
            "output_offset": out_off, "output_bytes": out_bytes, "num_layers": nl,
            "input_shape": in_shape, "output_shape": out_shape,
            "input_scale": in_scale, "output_scale": out_scale, "clock_hz": clock_hz,
            "timer_unit": UNITS.get(unit, f"unit{unit}"),
            "board": board.split(b"\0", 1)[0].decode("ascii", "replace")}


def parse_infer_reply(payload: bytes, output_bytes: int) -> tuple[int, int, bytes]:
    if len(payload) != INFER_REPLY.size + output_bytes:
        raise ValueError(f"INFER reply is {len(payload)} bytes, expected {INFER_REPLY.size + output_bytes}")
    count_since_boot, count = INFER_REPLY.unpack_from(payload)
    return count_since_boot, count, payload[INFER_REPLY.size:]


def parse_profile_reply(payload: bytes) -> tuple[int, int, list[int]]:
    if len(payload) < PROFILE_REPLY.size:
        raise ValueError("PROFILE reply too short")
    infer_count, nl, total = PROFILE_REPLY.unpack_from(payload)
    if len(payload) != PROFILE_REPLY.size + 8 * nl:
        raise ValueError(f"PROFILE reply is {len(payload)} bytes for {nl} layers")
    layers = list(struct.unpack_from(f"<{nl}Q", payload, PROFILE_REPLY.size))
    return infer_count, total, layers


def parse_parts_reply(payload: bytes) -> tuple[int, list[dict]]:
    """(infer_count, per layer {part: count, ..., "bound": count}) of a PARTS reply."""
    if len(payload) < PARTS_REPLY.size:
        raise ValueError("PARTS reply too short")
    infer_count, nl, np_ = PARTS_REPLY.unpack_from(payload)
    if np_ != len(PARTS):
        raise ValueError(f"PARTS reply has {np_} parts, this edgeviz knows {len(PARTS)}")
    if len(payload) != PARTS_REPLY.size + 8 * nl * (np_ + 1):
        raise ValueError(f"PARTS reply is {len(payload)} bytes for {nl} layers")
    v = struct.unpack_from(f"<{nl * (np_ + 1)}Q", payload, PARTS_REPLY.size)
    layers = [dict(zip(PARTS + ("bound",), v[i * (np_ + 1):(i + 1) * (np_ + 1)])) for i in range(nl)]
    return infer_count, layers


def parse_error(payload: bytes) -> tuple[int, int, int]:
    if len(payload) != ERROR.size:
        raise ValueError(f"ERROR payload is {len(payload)} bytes, expected {ERROR.size}")
    return ERROR.unpack(payload)


# ---------------------------------------------------------------- C header

HEADER_PATH = Path(__file__).resolve().parents[2] / "firmware" / "runtime" / "ev_protocol.h"


def render_c_header() -> str:
    lines = [
        "/* GENERATED by `python -m edgeviz.runner.genheader` from",
        " * edgeviz/runner/protocol.py. Do not edit; tests/test_protocol.py checks it is current. */",
        "#ifndef EV_PROTOCOL_H",
        "#define EV_PROTOCOL_H",
        "",
        f"#define EV_PROTO_MAGIC0 0x{MAGIC[0]:02X}u",
        f"#define EV_PROTO_MAGIC1 0x{MAGIC[1]:02X}u",
        f"#define EV_PROTO_VERSION {PROTOCOL_VERSION}u",
        f"#define EV_PROTO_HEADER_LEN {HEADER_LEN}u",
        f"#define EV_PROTO_CRC_LEN {CRC_LEN}u",
        f"#define EV_PROTO_REPLY_FLAG 0x{REPLY_FLAG:02X}u",
        f"#define EV_PROTO_RX_TIMEOUT_MS {DEVICE_RX_TIMEOUT_MS}u",
        f"#define EV_PROTO_BOARD_NAME_LEN {BOARD_NAME_LEN}u",
        "",
        "/* header field offsets */",
    ]
    for name, off in _offsets([("magic", "2s"), ("version", "B"), ("command", "B"), ("seq", "H"),
                               ("length", "I")]):
        lines.append(f"#define EV_HDR_OFF_{name.upper()} {off}u")
    lines.append("")
    lines.append("/* commands */")
    for name, code in COMMANDS.items():
        lines.append(f"#define EV_CMD_{name} 0x{code:02X}u")
    lines.append("")
    lines.append("/* error codes */")
    names = {ERR_BAD_CRC: "BAD_CRC", ERR_BAD_HEADER: "BAD_HEADER", ERR_UNKNOWN_CMD: "UNKNOWN_CMD",
             ERR_RX_TIMEOUT: "RX_TIMEOUT", ERR_NO_INFERENCE: "NO_INFERENCE"}
    for code, name in sorted(names.items()):
        lines.append(f"#define EV_ERR_{name} {code}u")
    lines.append("")
    lines.append("/* timer units */")
    lines.append(f"#define EV_UNIT_CYCLES {UNIT_CYCLES}u")
    lines.append(f"#define EV_UNIT_INSTRUCTIONS {UNIT_INSTRUCTIONS}u")
    lines.append("")
    lines.append("/* parts of the part profile (firmware/kernels/ev_parts.h) */")
    for i, name in enumerate(PARTS):
        lines.append(f"#define EV_PART_{name.upper()} {i}u")
    lines.append(f"#define EV_NUM_PARTS {len(PARTS)}u")
    for prefix, fields, st in (("INFO", INFO_FIELDS, INFO), ("INFER_REPLY", INFER_REPLY_FIELDS, INFER_REPLY),
                               ("PROFILE_REPLY", PROFILE_REPLY_FIELDS, PROFILE_REPLY),
                               ("PARTS_REPLY", PARTS_REPLY_FIELDS, PARTS_REPLY),
                               ("ERROR", ERROR_FIELDS, ERROR)):
        lines.append("")
        lines.append(f"/* {prefix} payload: little-endian, packed */")
        for name, off in _offsets(fields):
            lines.append(f"#define EV_{prefix}_OFF_{name.upper()} {off}u")
        lines.append(f"#define EV_{prefix}_LEN {st.size}u")
    lines += ["", "#endif /* EV_PROTOCOL_H */", ""]
    return "\n".join(lines)
