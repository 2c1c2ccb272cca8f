"""The pipeline's middle: a quantized graph and a target -> schedule, plan, fit. The only caller of
edgeviz.passes.schedule and edgeviz.planner.plan.

`edgeviz build` and `analyze` lower the model they import; `edgeviz search` lowers each candidate
through `plan_config`. Both ask the same backend (chosen by the target's kind) the same questions,
so a searched budget is what the build links (MCU) or places in BRAM (FPGA).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .backends import backend_for
from .backends.base import Lowered
from .errors import EdgevizError
from .frontend import graph_from_vit
from .ir import Graph
from .model import ViT, ViTConfig
from .passes import Switches, schedule
from .planner import plan
from .quantize import quantize
from .targets import Target, load_target


OPTIMIZE = ("ram", "time")


def lower(g: Graph, target: str | Target, switches: Switches | None = None, exact: bool = False,
          optimize: str = "ram") -> Lowered:
    """Schedule and plan a quantized graph for a target. switches: None for the backend's default.
    The backend may offer other schedules (the MCU: operator integration off, where that plans a
    smaller arena); ``optimize`` "ram": the smallest arena wins, the first on a tie; "time": of the
    schedules that fit the target, the one the backend's latency model estimates fastest (the MCU
    offers faster ones too: the whole [N, 3E] qkv, the low-rank factor kept, on the DSP kernels the
    chains' last blocks merged), the smaller arena on a tie; the smallest arena when none fits.
    ``exact``: the switches as given."""
    if optimize not in OPTIMIZE:
        raise EdgevizError(f"unknown optimisation goal {optimize!r}: use one of {', '.join(OPTIMIZE)}")
    t = load_target(target)
    backend = backend_for(t)
    asked = backend.switches(switches, t)
    tried = []
    for sw in backend.candidate_switches(asked, exact, optimize, t):
        s = schedule(g, sw)
        tried.append(Lowered(g, s, plan(s, t), t, backend))
    low = smallest = min(tried, key=lambda lo: lo.plan.peak)          # the first on a tie
    if optimize == "time" and len(tried) > 1:
        seconds = {id(lo): backend.latency(lo)["seconds"] for lo in tried}   # each estimated once
        fitting = [lo for lo in tried if not backend.fit(lo)]
        if fitting:
            low = min(fitting, key=lambda lo: (seconds[id(lo)], lo.plan.peak))
        if low is not smallest:
            low.schedule.note = (f"optimize time: {low.plan.peak:,} B, estimated {seconds[id(low)] * 1e3:.3g} ms, "
                                 f"against {smallest.plan.peak:,} B and {seconds[id(smallest)] * 1e3:.3g} ms for the "
                                 "smallest arena")
            return low
    low.schedule.note = _note(low, asked, tried)
    return low


def _note(low: Lowered, asked: Switches, tried: list[Lowered]) -> str:
    """Why the schedule that won runs other switches than the ones asked for ('' when it does not)."""
    sw, peak = low.schedule.switches, low.plan.peak
    if sw == asked:
        return ""
    if asked.fuse and not sw.fuse:
        fused = min(lo.plan.peak for lo in tried if lo.schedule.switches.fuse)
        return f"operator integration off: {peak:,} B unfused against {fused:,} B fused"
    if asked.kv_per_head and not sw.kv_per_head:
        per_head = min(lo.plan.peak for lo in tried if lo.schedule.switches.kv_per_head)
        if per_head == peak:      # e.g. a .tflite graph: no split attention for the switch to act on
            return f"K/V per head off: it saves nothing here ({peak:,} B either way)"
        return f"K/V per head off: {peak:,} B with K and V of all heads against {per_head:,} B per head"
    if asked.keep_rank and not sw.keep_rank:
        kept = min(lo.plan.peak for lo in tried if lo.schedule.switches.keep_rank)
        return f"low-rank factor recomputed per query row: {peak:,} B against {kept:,} B with it kept whole"
    return f"{sw.label()}: {peak:,} B"


def lower_config(cfg: ViTConfig, target: str | Target, switches: Switches | None = None, seed: int = 0) -> Lowered:
    """A ViTConfig lowered as a build would lower its model, with random weights and unit ranges:
    sizes and resources depend on shapes, not on weight values."""
    torch.manual_seed(seed)
    g = graph_from_vit(ViT(cfg).eval())
    quantize(g, None)
    return lower(g, target, switches)


@dataclass
class MemoryReport:
    peak_sram: int                 # arena bytes = what the firmware links (FPGA: on-chip buffer bytes)
    banks: dict[str, int]
    flash: int                     # weights + the target's runtime code
    macs: int
    lower_bound: int
    fits: bool
    why: str = ""
    latency_s: float | None = None  # the backend's estimate (plan_config(..., latency=True))


def plan_config(cfg: ViTConfig, target: str | Target = "stm32f746", switches: Switches | None = None,
                sram_budget: int | None = None, flash_budget: int | None = None, seed: int = 0,
                latency: bool = False) -> MemoryReport:
    """Judge a configuration exactly as `edgeviz build` would, on any kind of target: same IR, same
    schedule, same planner, same fit check. switches: None for the target's default.

    Memory does not depend on weight values or ranges: random weights and unit ranges give the
    exact arena and flash sizes. ``latency``: also the backend's latency estimate (seconds).
    """
    low = lower_config(cfg, target, switches, seed)
    why = low.backend.fit(low, sram_budget, flash_budget)
    return MemoryReport(low.plan.peak, low.plan.banks, low.weights_bytes + low.target.code_bytes, low.macs,
                        low.plan.lower_bound, not why, why,
                        low.backend.latency(low)["seconds"] if latency else None)
