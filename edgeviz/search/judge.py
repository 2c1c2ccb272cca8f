"""How a candidate is judged: memory by the planner, accuracy by the supernet.

Memory is judged only by the planner handed in (in production ``edgeviz.lower.plan_config``, see
``production_planner``): a candidate is feasible when the planner says it fits the target, its peak
SRAM is within the budget, its flash within the flash limit and (optionally) its MACs within a MAC
limit (``Judge``). Accuracy comes from the trained supernet on the held-out split, nothing
recalibrated, cached per configuration (``Evaluator``). A ``Candidate`` is a configuration with both.
Also here: MCUFormer's closed-form memory formula (reported, never decides) and an analytic MAC count.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from edgeviz.errors import EdgevizError
from edgeviz.lower import plan_config
from edgeviz.model import ViTConfig, low_rank
from edgeviz.search.budget import format_duration, format_size
from edgeviz.search.space import SearchSpace, config_key

Planner = Callable[[ViTConfig], Any]   # cfg -> report with .peak_sram .flash .macs .fits (.banks .why)


def mcuformer_formula(cfg: ViTConfig) -> int:
    """MCUFormer's closed-form peak memory, E*[(N+1)(1+m) + E*m*rho] bytes (rho: largest block rank ratio).

    Reported beside the planner's figure for comparison only; it never decides feasibility."""
    e, n, m = cfg.embed, cfg.num_patches, cfg.mlp_ratio
    rho = max(cfg.rank_ratios) if cfg.rank_ratios else 1.0
    return int(round(e * ((n + 1) * (1 + m) + e * m * rho)))


def analytic_macs(cfg: ViTConfig) -> int:
    """Multiply-accumulates of one inference, counted from the config (used to order candidates only)."""
    e, n, hid = cfg.embed, cfg.num_tokens, cfg.hidden
    macs = cfg.num_patches * e * cfg.in_chans * cfg.patch ** 2 + e * cfg.num_classes

    def lin(i, o, r):
        k = low_rank(i, o, r)
        return n * (i * o if k is None else k * (i + o))

    for r in cfg.rank_ratios:
        macs += lin(e, 3 * e, r) + lin(e, e, r) + lin(e, hid, r) + lin(hid, e, r) + 2 * n * n * e
    return int(macs)


def production_planner(target: str = "stm32f746", sram_budget: int | None = None, flash_budget: int | None = None,
                       switches=None, latency: bool = False) -> Planner:
    """``edgeviz.lower.plan_config`` bound to a target and budgets: the only memory judge of the product,
    on every kind of target. ``latency``: reports carry the backend's latency estimate too."""
    kw = {"sram_budget": sram_budget, "flash_budget": flash_budget, "latency": latency}
    if switches is not None:
        kw["switches"] = switches

    def plan(cfg: ViTConfig):
        return plan_config(cfg, target, **kw)

    plan.__name__ = f"plan_config[{target}]"
    return plan


class Judge:
    """Constraints on memory, flash, MACs and latency, with the planner's reports cached per configuration."""

    def __init__(self, plan: Planner, budget: int, flash_limit: int | None = None, mac_limit: int | None = None,
                 latency_limit: float | None = None):
        self.plan, self.budget, self.flash_limit, self.mac_limit = plan, budget, flash_limit, mac_limit
        self.latency_limit = latency_limit
        self.reports: dict[str, Any] = {}
        self.calls = 0
        self.seconds = 0.0

    def report(self, cfg: ViTConfig):
        k = config_key(cfg)
        if k not in self.reports:
            t = time.perf_counter()
            self.reports[k] = self.plan(cfg)
            self.seconds += time.perf_counter() - t
            self.calls += 1
        return self.reports[k]

    def why_not(self, cfg: ViTConfig) -> str:
        """Empty when the candidate is feasible, else the reason."""
        r = self.report(cfg)
        if r.peak_sram > self.budget:
            return f"peak SRAM {format_size(r.peak_sram)} > budget {format_size(self.budget)}"
        if not r.fits:
            return getattr(r, "why", "") or "does not fit the target"
        if self.flash_limit is not None and r.flash > self.flash_limit:
            return f"flash {format_size(r.flash)} > limit {format_size(self.flash_limit)}"
        if self.mac_limit is not None and r.macs > self.mac_limit:
            return f"{r.macs} MACs > limit {self.mac_limit}"
        if self.latency_limit is not None and getattr(r, "latency_s", None) is None:
            raise EdgevizError("the search's planner gives no latency estimate, so --latency cannot be judged: "
                               "use a planner that reports latency_s (edgeviz.search.judge.production_planner(..., "
                               "latency=True)) or leave out --latency")
        if self.latency_limit is not None and r.latency_s > self.latency_limit:
            return f"estimated latency {format_duration(r.latency_s)} > limit {format_duration(self.latency_limit)}"
        return ""

    def feasible(self, cfg: ViTConfig) -> bool:
        return not self.why_not(cfg)


def smallest_need(space: SearchSpace, judge: Judge) -> str:
    """What the smallest candidate of the space needs, for the 'nothing fits' error."""
    cfg = space.smallest()
    r = judge.report(cfg)
    banks = getattr(r, "banks", {}) or {}
    bank_s = (" (" + ", ".join(f"{k} {format_size(v)}" for k, v in banks.items()) + ")") if banks else ""
    extra = f"; planner says: {r.why}" if getattr(r, "why", "") else ""
    if getattr(r, "latency_s", None) is not None:
        extra += f"; estimated latency {format_duration(r.latency_s)}"
    return (f"the smallest candidate (img {cfg.img_size}, patch {cfg.patch}, embed {cfg.embed}, depth {cfg.depth}, "
            f"rank {min(cfg.rank_ratios):g}) needs {format_size(r.peak_sram)} peak SRAM{bank_s} and "
            f"{format_size(r.flash)} flash{extra}")


def no_fit_error(space: SearchSpace, judge: Judge) -> EdgevizError:
    """The one-line error when no candidate of ``space`` is feasible."""
    return EdgevizError(f"no candidate fits the budget of {format_size(judge.budget)}"
                        + (f" with flash <= {format_size(judge.flash_limit)}" if judge.flash_limit else "")
                        + (f" within {format_duration(judge.latency_limit)}" if judge.latency_limit else "")
                        + f": {smallest_need(space, judge)}")


class Evaluator:
    """Top-1 accuracy of a subnet with the supernet's shared weights on one split; cached per config."""

    def __init__(self, supernet, data, split: str = "val", batch: int = 270, delay: float = 0.0):
        self.net, self.data, self.split, self.batch = supernet.eval(), data, split, batch
        self.delay = delay          # tests only: a sleep after each evaluation (interrupt a search mid-generation)
        self.cache: dict[str, float] = {}
        self.seconds = 0.0
        self.calls = 0

    @torch.no_grad()
    def __call__(self, cfg: ViTConfig) -> float:
        k = config_key(cfg)
        if k not in self.cache:
            t = time.perf_counter()
            x, y = self.data.images(self.split, cfg.img_size), self.data.y[self.split]
            correct = sum(int((self.net(x[i:i + self.batch], cfg).argmax(1) == y[i:i + self.batch]).sum())
                          for i in range(0, len(y), self.batch))
            self.cache[k] = correct / max(1, len(y))
            self.seconds += time.perf_counter() - t
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
        return self.cache[k]


@dataclass
class Candidate:
    """A configuration as judged: the planner's figures and an accuracy (where it came from: ``source``)."""
    cfg: ViTConfig
    acc: float
    peak_sram: int
    flash: int
    macs: int
    formula_peak: int
    banks: dict = field(default_factory=dict)
    source: str = "evolution"
    generation: int = 0
    latency_s: float | None = None      # the backend's estimate, when the search has a latency limit

    @classmethod
    def make(cls, cfg: ViTConfig, acc: float, judge: Judge, source: str, generation: int = 0) -> "Candidate":
        r = judge.report(cfg)
        return cls(cfg, acc, int(r.peak_sram), int(r.flash), int(r.macs), mcuformer_formula(cfg),
                   dict(getattr(r, "banks", {}) or {}), source, generation, getattr(r, "latency_s", None))

    def row(self) -> dict:
        c = self.cfg
        return {"source": self.source, "generation": self.generation, "accuracy": round(self.acc, 6),
                "peak_sram": self.peak_sram, "formula_peak": self.formula_peak, "flash": self.flash,
                "macs": self.macs, "latency_s": self.latency_s, "img_size": c.img_size, "patch": c.patch, "embed": c.embed, "depth": c.depth,
                "heads": c.heads, "mlp_ratio": c.mlp_ratio,
                "rank_ratios": " ".join(f"{r:g}" for r in c.rank_ratios)}


__all__ = ["Candidate", "Evaluator", "Judge", "Planner", "analytic_macs", "mcuformer_formula", "no_fit_error",
           "production_planner", "smallest_need"]
