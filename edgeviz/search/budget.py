"""Byte sizes as users write them: "320KB", "320KiB", "320kB", "0.3125MB", "327680"; and durations:
"50ms", "0.05s", "500us".

1 KB = 1 KiB = 1024 bytes and 1 MB = 1 MiB = 1048576 bytes, as in microcontroller datasheets.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from edgeviz.errors import EdgevizError

ACCEPTED = "accepted forms: 327680, 327680B, 320KB, 320kB, 320KiB, 320K, 0.3125MB, 1MiB, 1M (1 KB = 1024 B)"

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes in ``text``; EdgevizError (one line, naming the accepted forms) for anything else."""
    if isinstance(text, bool):
        raise EdgevizError(f"bad {what} {text!r}; {ACCEPTED}")
    if isinstance(text, int):
        if text <= 0:
            raise EdgevizError(f"bad {what} {text!r}: must be positive; {ACCEPTED}")
        return text
    if not isinstance(text, str):
        raise EdgevizError(f"bad {what} {text!r}; {ACCEPTED}")
    m = _RE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise EdgevizError(f"bad {what} {text!r}; {ACCEPTED}")
    try:
        value = Decimal(m.group(1)) * _UNITS[m.group(2).lower()]
    except InvalidOperation:  # pragma: no cover - the regex admits only decimal numbers
        raise EdgevizError(f"bad {what} {text!r}; {ACCEPTED}") from None
    if value != value.to_integral_value():
        raise EdgevizError(f"bad {what} {text!r}: {value} is not a whole number of bytes; {ACCEPTED}")
    if value <= 0:
        raise EdgevizError(f"bad {what} {text!r}: must be positive; {ACCEPTED}")
    return int(value)


def format_size(n: int) -> str:
    """Short human form: 327680 -> '320.0 KB' (1 KB = 1024 B)."""
    if n >= 1024**2:
        return f"{n / 1024**2:.2f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} B"


TIME_ACCEPTED = "accepted forms: 50ms, 50 ms, 0.05s, 500us, 2s"
_TIME_UNITS = {"s": Decimal(1), "ms": Decimal("1e-3"), "us": Decimal("1e-6"), "\u00b5s": Decimal("1e-6")}
_TIME_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z\u00b5]+)\s*$")


def parse_duration(text: str | float, what: str = "latency limit") -> float:
    """Seconds in ``text`` (a unit is required: a bare number is ambiguous); one EdgevizError line otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise EdgevizError(f"bad {what} {text!r}: must be positive; {TIME_ACCEPTED}")
        return float(text)
    m = _TIME_RE.match(text) if isinstance(text, str) else None
    if not m or m.group(2).lower() not in _TIME_UNITS:
        raise EdgevizError(f"bad {what} {text!r}; {TIME_ACCEPTED}")
    value = Decimal(m.group(1)) * _TIME_UNITS[m.group(2).lower()]
    if value <= 0:
        raise EdgevizError(f"bad {what} {text!r}: must be positive; {TIME_ACCEPTED}")
    return float(value)


def format_duration(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
