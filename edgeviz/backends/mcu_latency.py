"""An MCU build's latency before it is built: instructions per step from what each op does.

Every op says what it does per inference by kind (`Op.work`: MACs, output elements and rows, calls,
softmax scores, and the work its kernels do one row at a time where the shape leaves the multi-row
kernels' limits: row_macs, row_outputs). The model gives each (op, kind) pair an instruction cost,
fitted by non-negative least squares, relative to the step, over the per-step instruction counts of
builds profiled on the emulator (`bench/bench_latency.py` measures them and writes the fit). One
model per kernel path, since the path decides the instructions: the ARMv6-M and ARMv7-M tiles, DSP
(the SMLAD kernels of the M4, M7, M33) and Helium (the M55). An op the fit never saw takes the
pooled costs of all ops.

Seconds are instructions at one cycle each over the target's clock: the emulator counts
instructions, not cycles (the M7's dual issue runs faster, the M0+'s multi-cycle multiplies
slower), so the figure is the estimate's unit, stated wherever it is shown. An op that runs another op's
kernels (Op.costs_like: one head of the split attention) counts its work as that op's.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from ..errors import EdgevizError
from ..ir import Graph
from ..ops import OPS
from ..passes import Step
from ..resources import data_dir
from ..targets import Target

# the cores without the DSP extension run matrix tiles written for their instruction set
# (firmware/kernels/ev_gemm_nodsp.c): ARMv6-M (Thumb-1) and ARMv7-M cost differently
ARMV6M_CORES = {"cortex-m0", "cortex-m0plus", "cortex-m1"}
ARMV7M_CORES = {"cortex-m3"}
HELIUM_CORES = {"cortex-m55", "cortex-m85"}
POOLED = "*"                       # the costs of every op together, for ops the fit never saw


def kernel_path(target: Target) -> str:
    """Which kernels the firmware compiles for the target's core: 'armv6m', 'armv7m', 'dsp' or 'helium'."""
    core = str(target.raw.get("core", ""))
    return ("armv6m" if core in ARMV6M_CORES else "armv7m" if core in ARMV7M_CORES
            else "helium" if core in HELIUM_CORES else "dsp")


def chain_iterations(step: Step, rows: int) -> list[int]:
    """The rows each iteration of a chain takes: blocks of step.block, the last one the rows left, or
    with a merged tail (Switches.merge_tail) step.last rows."""
    if step.last:
        return [step.block] * ((rows - step.last) // step.block) + [step.last]
    return [step.block] * (rows // step.block) + ([rows % step.block] if rows % step.block else [])


def rows_apart(iterations: list[int]) -> int:
    """The rows that iterations leave outside blocks of 4 or 5 rows: a lone row or a pair, which the
    multi-row kernels run on their slower paths (a merged tail of 7 is 5 + a pair)."""
    return sum(0 if n in (4, 5) else n - 5 if n > 5 else n for n in iterations)


def step_work(step: Step, g: Graph) -> dict[str, float]:
    """The step's features: each node's work under the key 'op.kind', plus the pooled '*.kind'. A chain
    calls each of its kernels once per block of rows: 'blocks' counts those calls (the set-up a call
    costs, which the Helium kernels pay more of than the others), and 'tail_macs' the MACs of the rows
    it runs apart (rows_apart; an op that states its own one-row work, row_macs, keeps that)."""
    feats: dict[str, float] = {}
    for n in step.nodes:
        op = OPS[n.op].costs_like or n.op
        work = OPS[n.op].work(n, g)
        if step.chained:
            rows = g.tensors[n.outputs[0]].rows
            iterations = chain_iterations(step, rows)
            work["blocks"] = len(iterations)
            if work.get("macs") and "row_macs" not in work:
                work["tail_macs"] = work["macs"] * rows_apart(iterations) // rows
        for kind, v in work.items():
            for key in (f"{op}.{kind}", f"{POOLED}.{kind}"):
                feats[key] = feats.get(key, 0.0) + float(v)
    return feats


@dataclass
class InstructionModel:
    path: str
    costs: dict[str, float]                  # 'op.kind' -> instructions per unit
    fitted_on: dict = field(default_factory=dict)   # provenance: models, steps, errors

    def __post_init__(self) -> None:
        # the ops the fit saw, once: step_instructions runs for every step of every candidate judged
        self.fitted_ops = {k.split(".")[0] for k in self.costs if not k.startswith(POOLED)}

    def step_instructions(self, feats: dict[str, float]) -> float:
        total = 0.0
        for key, v in feats.items():
            op = key.split(".")[0]
            if op == POOLED:
                continue
            cost_key = key if op in self.fitted_ops else f"{POOLED}.{key.split('.', 1)[1]}"
            total += self.costs.get(cost_key, 0.0) * v
        return total

    def unseen_ops(self, steps: list[dict[str, float]]) -> list[str]:
        return sorted({k.split(".")[0] for f in steps for k in f} - self.fitted_ops - {POOLED})

    def to_dict(self) -> dict:
        return {"path": self.path, "costs": self.costs, "fitted_on": self.fitted_on}


def model_file(path: str) -> Path:
    return data_dir("firmware") / "kernels" / f"instructions-{path}.json"


@functools.lru_cache(maxsize=None)
def load_model(path: str) -> InstructionModel | None:
    """The shipped model of a kernel path; None when that path was never calibrated."""
    f = model_file(path)
    if not f.exists():
        return None
    d = json.loads(f.read_text())
    return InstructionModel(d["path"], {k: float(v) for k, v in d["costs"].items()}, d.get("fitted_on", {}))


def estimate(schedule_graph: Graph, steps: list[Step], target: Target) -> dict:
    """Instructions per step and in total, and seconds at one instruction a cycle at the target's
    clock. Refused in one line when the kernel path has no calibrated model."""
    path = kernel_path(target)
    m = load_model(path)
    if m is None:
        raise EdgevizError(f"no instruction model for the {path} kernels of {target.name} yet; leave out --latency "
                           f"or calibrate one with bench/bench_latency.py --target {target.name}")
    feats = [step_work(st, schedule_graph) for st in steps]
    per_step = [m.step_instructions(f) for f in feats]
    total = float(sum(per_step))
    clock = float(target.raw.get("clock_hz", 0)) or None
    return {"instructions": int(round(total)), "seconds": total / clock if clock else None,
            "steps": [{"layer": st.name, "instructions": int(round(n))} for st, n in zip(steps, per_step)],
            "kernel_path": path, "unseen_ops": m.unseen_ops(feats)}


def fit(samples: list[tuple[dict[str, float], float]], path: str, provenance: dict | None = None) -> InstructionModel:
    """Costs from (step features, measured instructions) pairs: non-negative least squares on each step's
    relative error, so a small step counts as much as a large one. The pooled costs are fitted apart,
    over the same steps with only the '*.kind' features."""
    if not samples:
        raise EdgevizError("no measured steps to fit an instruction model to")

    def solve(keys: list[str]) -> dict[str, float]:
        a = np.array([[f.get(k, 0.0) / max(1.0, y) for k in keys] for f, y in samples])
        b = np.array([y / max(1.0, y) for _, y in samples])
        scale = np.maximum(a.max(axis=0), 1e-12)     # columns of MACs and calls differ by 10^5
        coef, _ = nnls(a / scale, b, maxiter=50 * len(keys))
        return {k: float(c / s) for k, c, s in zip(keys, coef, scale)}

    keys = sorted({k for f, _ in samples for k in f})
    costs = solve([k for k in keys if not k.startswith(POOLED)])
    costs.update(solve([k for k in keys if k.startswith(POOLED)]))
    return InstructionModel(path, {k: v for k, v in costs.items() if v > 0 or k.startswith(POOLED)},
                            provenance or {})
