"""Ctrl-C inside a training loop, held until the step in flight is done, so its state can be saved.

A KeyboardInterrupt raised in the middle of ``optimizer.step()`` leaves the weights half updated: what
is saved then cannot be resumed. Inside ``step_boundary_interrupts()`` the first SIGINT only sets
``.requested``; the loop checks it after each whole step, saves and raises KeyboardInterrupt itself
(``stop_if_requested``). A second Ctrl-C interrupts at once, the way the user expects when the first
seems ignored. Outside the main thread (signal handlers cannot be set there) nothing changes.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable


class StepInterrupt:
    def __init__(self) -> None:
        self.requested = False

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def stop_if_requested(self, save: Callable[[], None]) -> None:
        """At a step boundary: after a Ctrl-C, ``save()`` and raise KeyboardInterrupt."""
        if self.requested:
            save()
            self.requested = False      # handled here: the context's exit must not raise it again
            raise KeyboardInterrupt


@contextlib.contextmanager
def step_boundary_interrupts(enabled: bool = True):
    guard = StepInterrupt()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = signal.signal(signal.SIGINT, guard._on_sigint)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous)
    if guard.requested:
        raise KeyboardInterrupt         # a Ctrl-C after the loop's last check is not lost


__all__ = ["StepInterrupt", "step_boundary_interrupts"]
