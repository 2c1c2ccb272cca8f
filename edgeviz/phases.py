"""Progress of a long job: names the stage in progress (for a spinner) and times each one."""
from __future__ import annotations

import time


class Phases:
    """Call it with the name of the stage that starts; `seconds` holds how long each finished one took."""

    def __init__(self, progress=None):
        self.progress = progress or (lambda msg: None)
        self.seconds: dict[str, float] = {}
        self.t0 = self.mark = time.perf_counter()
        self.current = None

    def __call__(self, msg: str) -> None:
        now = time.perf_counter()
        if self.current:
            self.seconds[self.current] = round(now - self.mark, 2)
        self.current, self.mark = msg, now
        self.progress(msg)

    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 2)
