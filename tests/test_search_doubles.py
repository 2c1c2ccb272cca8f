"""TEST DOUBLES for the search's unit tests, plus a check of the doubles themselves.

``PlannerTestDouble`` stands in for ``edgeviz.lower.plan_config`` ONLY in unit tests (it is fast and
its numbers are easy to reason about). The product never uses it: edgeviz.search.run defaults to
edgeviz.search.judge.production_planner, which imports the real planner.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeviz.model import ViTConfig
from edgeviz.search.judge import analytic_macs

TINY_SPACE = """
name = "tiny-test"
pool = "cls"
[choices]
img_size = [8, 16]
patch = [4, 8]
embed = [16, 32]
depth = [1, 2]
heads = [2]
mlp_ratio = [2.0]
rank_ratio = [0.5, 1.0]
"""


def write_tiny_space(folder: Path, text: str = TINY_SPACE) -> Path:
    p = Path(folder) / "tiny.toml"
    p.write_text(text)
    return p


@dataclass
class ReportTestDouble:
    peak_sram: int
    flash: int
    macs: int
    fits: bool
    banks: dict = field(default_factory=dict)
    why: str = ""
    lower_bound: int = 0


class PlannerTestDouble:
    """peak = 4 x tokens x embed + 256 B, flash = parameter count (int8). Counts its calls."""

    def __init__(self, capacity: int = 1 << 30, flash_capacity: int = 1 << 30):
        self.capacity, self.flash_capacity, self.calls = capacity, flash_capacity, 0
        self.__name__ = "PlannerTestDouble"

    def __call__(self, cfg: ViTConfig) -> ReportTestDouble:
        self.calls += 1
        from edgeviz.model import ViT

        peak = 4 * cfg.num_tokens * cfg.embed + 256
        flash = sum(p.numel() for p in ViT(cfg).parameters())
        why = "" if peak <= self.capacity and flash <= self.flash_capacity else "too big (test double)"
        return ReportTestDouble(peak, flash, analytic_macs(cfg), not why, {"RAM": peak}, why, peak)


def test_double_is_monotone_in_tokens_and_embed():
    p = PlannerTestDouble(capacity=1000)
    small = ViTConfig(img_size=8, patch=8, embed=16, depth=1, heads=2)
    big = ViTConfig(img_size=16, patch=4, embed=32, depth=1, heads=2)
    a, b = p(small), p(big)
    assert a.peak_sram < b.peak_sram
    assert a.fits and not b.fits and p.calls == 2
