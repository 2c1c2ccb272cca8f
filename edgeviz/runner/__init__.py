"""Host side of on-device runs: serial protocol, transports, QEMU, flashing, profile, validate.

    from edgeviz.runner import flash, profile, validate

(`flash` here is the function; the module is edgeviz.runner.flash.)
"""
from __future__ import annotations

from .api import flash, profile, validate

__all__ = ["flash", "profile", "validate"]
