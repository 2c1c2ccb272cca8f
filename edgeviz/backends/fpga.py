"""The FPGA backend (targets of kind "fpga"): an HLS C++ project over the planner's buffers.

emit: edgeviz.hls.generate writes the top function (one template call per step, buffers in on-chip
banks), weight ROMs, the testbench data (the int8 reference's outputs) and edgeviz's own resource and
latency estimate; with csim=True, g++ runs the C simulation and it must equal the reference byte for
byte. fit: some reuse factor makes the estimate fit the board (and the buffers the SRAM budget).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..atomic import staged_dir
from ..errors import EdgevizError
from ..passes import Switches
from ..phases import Phases
from ..quantize import quantize_image
from ..hls.csim import check_reference, find_gxx
from ..hls.generate import assign_banks, check_switches, choose_reuse, generate, reuse_for, schedule_estimate
from .base import Backend


def fpga_switches(switches: Switches | None = None, **changes) -> Switches:
    """The schedule switches the FPGA backend builds with: the given ones, else the FPGA default (every
    technique on except the qkv split and the MCU kernel's rank padding), with `changes` (Switches
    fields) applied on top.

    The qkv split is off by default here, unlike on the MCU: it saves activation BRAM (x + K + V instead
    of x + [N, 3E] qkv) but adds a second LayerNorm / q datapath per block, so total BRAM is no lower and
    latency is 1.1-3.4x (bench/bench_hls.py; edgeviz's own estimates). Every combination has templates;
    split_qkv=False keeps the fused [N, 3E] qkv tensor (ev_attention_row).

    The low-rank factor kept whole for the query rows (keep_rank) is an MCU schedule: the split's HLS
    q datapath recomputes its LayerNorm and factor per row, so keep_rank is always off here. So is
    merge_tail (an MCU chain's last block of 5 or 7 rows): the HLS chains run row by row.

    K/V per head is always off here (whatever `switches` says; only `changes` can ask for it, and
    hls.generate.check_switches then refuses it): the HLS templates stream every head's K and V from one
    bank per attention (ev_attention_kv_row) and have no per-head form."""
    never_here = dict(kv_per_head=False, keep_rank=False, stream_scores=False, merge_tail=False, widen_weights=False)
    base = (Switches(split_qkv=False, pad_rank=False, **never_here) if switches is None
            else dataclasses.replace(switches, **never_here))
    return dataclasses.replace(base, **changes) if changes else base


def _reuse(reuse, reuse_file):
    if reuse_file:
        try:
            return {str(k): int(v) for k, v in json.loads(Path(reuse_file).read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise EdgevizError(f"cannot read reuse file {reuse_file}: it must be JSON {{\"layer or op\": factor}} ({e})") from None
    return "auto" if reuse is None else int(reuse)


def best_estimate(low):
    """(reuse factor, per-node factors, estimate) of the fastest design that fits, else of the largest
    factor tried (which does not fit). Worked out once per lowering: the search asks fit and latency."""
    if "best_estimate" not in low.memo:
        banks, _ = assign_banks(low.plan)
        low.memo["best_estimate"] = choose_reuse(low.schedule, banks, low.target, check=False)
    return low.memo["best_estimate"]


class FpgaBackend(Backend):
    kind = "fpga"

    def switches(self, requested, target=None):
        sw = fpga_switches(requested)
        check_switches(sw)
        return sw

    def fit(self, low, sram_budget=None, flash_budget=None):
        if sram_budget is not None and low.plan.peak > sram_budget:
            return (f"on-chip buffers of {low.plan.peak:,} B exceed the {sram_budget:,}-byte SRAM budget by "
                    f"{low.plan.peak - sram_budget:,} bytes")
        if flash_budget is not None and low.weights_bytes > flash_budget:
            return (f"weight ROMs of {low.weights_bytes:,} B exceed the {flash_budget:,}-byte budget by "
                    f"{low.weights_bytes - flash_budget:,} bytes")
        _, _, e = best_estimate(low)
        return e.why()

    def latency(self, low):
        reuse, _, e = best_estimate(low)
        return {"seconds": e.latency_s, "cycles": e.latency_cycles, "reuse": reuse,
                "how": f"HLS estimate at reuse factor {reuse}, board clock"}

    def preflight(self, options):
        if options.get("csim"):
            find_gxx()

    def emit(self, low, out, *, name, x_check, module=None, test=None, say=None, reuse=None, reuse_file=None,
             csim: bool = False):
        say = say or Phases()
        g, s, p, t = low.graph, low.schedule, low.plan, low.target
        with staged_dir(out) as stage:
            say("generating the HLS project")
            xs = np.stack([quantize_image(g, x) for x in x_check[:4]])
            proj = generate(s, p, stage, t, _reuse(reuse, reuse_file), tb_inputs=xs, ref_graph=g)
            summary = {"model": name, "target": t.name, "kind": "fpga", "estimate": proj.estimate.to_dict(),
                       "reuse": proj.reuse, "buffers_bytes": p.peak, "switches": dataclasses.asdict(s.switches),
                       "project": str(Path(out).resolve()), "preprocess": getattr(g, "preprocess", None)}
            if csim:
                say("C simulation with g++")
                vectors, bad = check_reference(stage)
                summary["csim"] = {"vectors": vectors, "mismatching_bytes": bad}
                if bad:
                    raise EdgevizError(f"internal error: C simulation differs from the int8 reference in {bad} bytes")
            say("done")
            summary["build_seconds"] = say.total()
            (stage / "build.json").write_text(json.dumps(summary, indent=1))
        return summary

    def analyze(self, low, options):
        reuse = options.get("reuse")
        if reuse is None:
            _, _, e = best_estimate(low)
            e.check()
        else:
            banks, _ = assign_banks(low.plan)
            e = schedule_estimate(low.schedule, banks, reuse_for(low.schedule, int(reuse)), low.target, check=False)
        return {"target": low.target.name, "kind": "fpga", "switches": dataclasses.asdict(low.schedule.switches),
                "estimate": e.to_dict(), "report": e.report()}
