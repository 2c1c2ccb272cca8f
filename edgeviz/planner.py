"""The memory planner: lifetimes, offsets in one static arena, banks, and the live-set lower bound.

It is edgeviz's only memory oracle: `edgeviz build` links the arena it computes and `edgeviz search`
judges candidates with the same function, so the searched budget is the firmware's byte count.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .passes import Schedule
from .targets import Target

ALIGN = 8          # every buffer starts on an 8-byte boundary (word and double-word loads)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    name: str                      # tensor (or "scratch@<step>") that owns it
    size: int                      # bytes, aligned
    first: int                     # step index that writes it (-1: the model input)
    last: int                      # last step index that reads it
    tensors: list[str] = field(default_factory=list)   # tensors sharing it (token overwriting)
    offset: int = -1


@dataclass
class Plan:
    buffers: list[Buffer]
    steps: list[str]
    peak: int                      # arena bytes: the firmware reserves exactly this
    lower_bound: int               # max over steps of live bytes: no placement can beat it
    offsets: dict[str, int]        # tensor -> arena offset
    scratch: dict[int, int]        # step index -> scratch offset
    banks: dict[str, int] = field(default_factory=dict)   # bytes of the arena in each RAM bank

    def live_at(self, step: int) -> list[Buffer]:
        return [b for b in self.buffers if b.first <= step <= b.last]

    def to_json(self) -> str:
        return json.dumps({
            "peak_bytes": self.peak, "lower_bound_bytes": self.lower_bound, "banks": self.banks,
            "steps": self.steps, "buffers": [asdict(b) for b in self.buffers]}, indent=1)


def _buffers(s: Schedule) -> list[Buffer]:
    g = s.graph
    owner: dict[str, Buffer] = {}
    bufs: list[Buffer] = []
    end = len(s.steps)
    for t in g.inputs:
        owner[t] = Buffer(t, _align(g.tensors[t].nbytes), -1, -1, [t])
        bufs.append(owner[t])
    for k, st in enumerate(s.steps):
        for t in st.reads:
            owner[t].last = max(owner[t].last, k)
        if st.alias is not None:
            b = owner[st.alias]
            b.tensors.append(st.output)
            b.last = k
            owner[st.output] = b
        else:
            owner[st.output] = Buffer(st.output, _align(g.tensors[st.output].nbytes), k, k, [st.output])
            bufs.append(owner[st.output])
        if st.scratch:
            bufs.append(Buffer(f"scratch@{k}", _align(st.scratch), k, k, []))
    for t in g.outputs:
        owner[t].last = end
    return bufs


def _overlaps(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def _place(bufs: list[Buffer], order) -> int:
    """Greedy: each buffer goes to the lowest offset free for its whole lifetime."""
    placed: list[Buffer] = []
    for b in sorted(bufs, key=order):
        busy = sorted((p.offset, p.offset + p.size) for p in placed if _overlaps(p, b))
        off = 0
        for lo, hi in busy:
            if off + b.size <= lo:
                break
            off = max(off, hi)
        b.offset = off
        placed.append(b)
    return max((b.offset + b.size for b in bufs), default=0)


def plan(s: Schedule, target: Target | None = None) -> Plan:
    bufs = _buffers(s)
    # A few orders; keep the tightest. All are deterministic.
    orders = [lambda b: (-b.size, b.first), lambda b: (-(b.last - b.first), -b.size),
              lambda b: (b.first, -b.size), lambda b: (-b.size * (b.last - b.first + 1), b.first)]
    best, best_offsets = None, None
    for order in orders:
        peak = _place(bufs, order)
        if best is None or peak < best:
            best, best_offsets = peak, [b.offset for b in bufs]
    for b, o in zip(bufs, best_offsets):
        b.offset = o
    n_steps = len(s.steps)
    lower = max((sum(b.size for b in bufs if b.first <= k <= b.last) for k in range(-1, n_steps + 1)), default=0)
    offsets = {t: b.offset for b in bufs for t in b.tensors}
    scratch = {int(b.name.split("@")[1]): b.offset for b in bufs if b.name.startswith("scratch@")}
    p = Plan(bufs, [st.name for st in s.steps], best, lower, offsets, scratch)
    if target is not None:
        p.banks = target.bank_usage(0, p.peak)
    return p


def peak_step(p: Plan) -> int:
    return max(range(-1, len(p.steps) + 1), key=lambda k: sum(b.size for b in p.live_at(k)))


def plot_timeline(p: Plan, path, title: str = "") -> None:
    """Arena offset against step, one rectangle per buffer: where the memory goes and when."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    fig, ax = plt.subplots(figsize=(max(8, len(p.steps) * 0.35), 5))
    cmap = plt.get_cmap("tab20")
    for i, b in enumerate(p.buffers):
        x0, x1 = b.first - 0.45, b.last + 0.45
        ax.add_patch(Rectangle((x0, b.offset / 1024), x1 - x0, b.size / 1024,
                               facecolor=cmap(i % 20), edgecolor="black", linewidth=0.4, alpha=0.85))
        if b.size / max(p.peak, 1) > 0.06:
            label = b.name + (f" (+{len(b.tensors) - 1} tensors written over it)" if len(b.tensors) > 1 else "")
            ax.text((x0 + x1) / 2, (b.offset + b.size / 2) / 1024, label, ha="center", va="center", fontsize=6)
    ax.axhline(p.peak / 1024, color="red", linestyle="--", linewidth=1, label=f"planned peak {p.peak:,} B")
    ax.axhline(p.lower_bound / 1024, color="gray", linestyle=":", linewidth=1,
               label=f"live-set lower bound {p.lower_bound:,} B")
    ax.set_xlim(-1.5, len(p.steps) + 0.5)
    ax.set_ylim(0, p.peak / 1024 * 1.08 + 0.1)
    ax.set_xlabel("step")
    ax.set_ylabel("arena offset (KiB)")
    ax.set_title(title or "memory timeline")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
