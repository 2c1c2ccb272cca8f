"""What every backend offers, and what the pipeline hands it.

A backend turns a lowered model (a quantized graph, its schedule and its arena plan for one target)
into a project for one kind of target, and says whether it fits. `edgeviz.lower` runs the
schedule and the planner and asks the backend two things on the way (which switches, which of the
candidate schedules); the jobs in `edgeviz.project` then ask it to emit, analyze or run.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import EdgevizError
from ..ir import Graph
from ..ops import OPS
from ..passes import Schedule, Switches
from ..planner import Plan
from ..targets import Target


@dataclass
class Lowered:
    """A quantized graph lowered for one target: the unit every backend works on."""
    graph: Graph                   # the quantized graph before scheduling: run_int8 on it is the spec
    schedule: Schedule
    plan: Plan
    target: Target
    backend: "Backend"
    # what the backend worked out about this lowering once and is asked again (fit, then latency)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def weights_bytes(self) -> int:
        return graph_flash(self.graph, self.schedule)

    @property
    def macs(self) -> int:
        """The model's MACs (the figure MACs per instruction and the search's --macs are judged by)."""
        return graph_macs(self.graph)

    @property
    def executed_macs(self) -> int:
        """The MACs the device runs: the model's plus what the schedule adds for memory or speed (rows
        recomputed by the qkv split, the zero columns of padded ranks)."""
        return graph_macs(self.schedule.graph)


def graph_macs(g: Graph) -> int:
    """MACs of a graph; of a schedule's graph, the MACs the device executes (recomputed rows and
    padded ranks included)."""
    return sum(OPS[n.op].macs(n, g) for n in g.nodes)


def graph_flash(g: Graph, s: Schedule | None = None) -> int:
    """Constant bytes of a graph; with its schedule, plus the zero weights the schedule padded in."""
    return sum(OPS[n.op].flash_bytes(n) for n in g.nodes) + (s.pad_bytes if s is not None else 0)


class Backend:
    """One kind of target. Subclasses set `kind` (the targets' `kind` field that selects them) and
    override what differs; `edgeviz.backends.BACKENDS` holds one instance per kind."""

    kind = ""

    # ---- lowering policy (asked by edgeviz.lower)
    def switches(self, requested: Switches | None, target: Target | None = None) -> Switches:
        """The schedule switches to build with for the target: the requested ones (checked), else the kind's
        default."""
        return Switches() if requested is None else requested

    def candidate_switches(self, switches: Switches, exact: bool, optimize: str = "ram",
                           target: Target | None = None) -> list[Switches]:
        """Schedules to try for the target, in order of preference; lower keeps the first with the smallest
        arena (with optimize "time": the fastest that fits)."""
        return [switches]

    def fit(self, low: Lowered, sram_budget: int | None = None, flash_budget: int | None = None) -> str:
        """'' when the lowered model fits the target (and the budgets), else one line saying where
        and by how much."""
        raise NotImplementedError

    def latency(self, low: Lowered) -> dict:
        """The backend's own latency estimate of one inference: {"seconds", "how"} (and its details)."""
        raise EdgevizError(f"the {self.kind} backend has no latency estimate")

    # ---- jobs (asked by edgeviz.project)
    def preflight(self, options: dict) -> None:
        """Refuse (EdgevizError) before any work when a tool that emit will need with these options is
        missing, so the user learns it in a second rather than after the model import. Default: none."""

    def emit(self, low: Lowered, out: Path, *, name: str, x_check, module=None, test=None, say=None,
             **options) -> dict:
        """Write the project for `low` into `out` atomically and check it against the int8 reference;
        returns the build summary (build.json). name: the model's file name; x_check: float inputs
        [B, C, H, W] to check with; module / test: the float model and held-out data for accuracy, when
        there are; say: progress callback (edgeviz.project.Phases); options: the backend's own."""
        raise NotImplementedError

    def analyze(self, low: Lowered, options: dict) -> dict:
        """Cost per layer and in total, without building anything."""
        raise NotImplementedError

    def compile(self, low: Lowered):
        """The generated sources in memory (the MCU's C), for Python callers and tests."""
        raise EdgevizError(f"the {self.kind} backend writes its sources with build; compile gives C for an MCU "
                           f"target, and {low.target.name} is not one")


def unfused(switches: Switches) -> Switches:
    """The same switches with operator integration (and so the qkv split and K/V per head, parts of it)
    off."""
    return replace(switches, fuse=False, split_qkv=False, kv_per_head=False, stream_scores=False)


def rank_recomputed(switches: Switches) -> Switches:
    """The same switches with the query rows recomputing a low-rank qkv's first factor (keep_rank off)."""
    return replace(switches, keep_rank=False)


def kv_all_heads(switches: Switches) -> Switches:
    """The same switches with K/V per head off: K and V of every head made together."""
    return replace(switches, kv_per_head=False)
