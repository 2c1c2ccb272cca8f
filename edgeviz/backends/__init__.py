"""Backends behind one interface (base.Backend), chosen by the target's kind: "mcu" (C + firmware)
and "fpga" (HLS C++). A new kind of target adds a module here and its line in BACKENDS."""
from __future__ import annotations

from ..errors import EdgevizError
from ..targets import Target
from .base import Backend
from .fpga import FpgaBackend
from .mcu import McuBackend

BACKENDS: dict[str, Backend] = {b.kind: b for b in (McuBackend(), FpgaBackend())}


def backend_for(target: Target) -> Backend:
    try:
        return BACKENDS[target.kind]
    except KeyError:
        raise EdgevizError(f"target '{target.name}' is of kind {target.kind!r}, which no backend builds; "
                           f"kinds: {', '.join(sorted(BACKENDS))}") from None
