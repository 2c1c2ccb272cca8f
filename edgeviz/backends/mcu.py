"""The MCU backend (targets of kind "mcu"): C for one static arena, a firmware project, ELFs.

emit: model.c / model.h (c_codegen, one emitter per op in its module) -> checked against the int8
reference through a host build (c_toolchain) -> the firmware tree built with arm-none-eabi-gcc for the
target's board and the emulator (runner.firmware) -> plan.json, memory.png, build.json, report.html.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..atomic import staged_dir
from ..errors import EdgevizError
from ..ir import Graph
from ..ops import OPS
from ..passes import Schedule, Switches
from ..planner import Plan, peak_step, plot_timeline
from ..phases import Phases
from ..quantize import float_logits, quantize_image, run_int8
from ..report import write_build_report
from ..runner.firmware import build_firmware, require_firmware_tools
from ..targets import Target
from ..tflite import litert
from .base import Backend, Lowered, kv_all_heads, rank_recomputed, unfused
from .c_codegen import generate
from .mcu_latency import estimate, kernel_path
from .c_toolchain import (HostModel, build_host_library, copy_firmware_tree, elf_sections, elf_symbol_size,
                          write_model_sources)

DEBUG = int(os.environ.get("EDGEVIZ_DEBUG", "0") or 0)


@dataclass
class Compiled:
    graph: Graph                   # quantized reference graph (the specification)
    schedule: Schedule
    plan: Plan
    target: Target
    model_c: str
    model_h: str
    info: dict


def check_fit(p: Plan, s: Schedule, t: Target, weights: int, sram_budget: int | None = None,
              flash_budget: int | None = None) -> str:
    """'' if the plan fits the target (and budgets), else one line saying where and by how much."""
    cap = t.arena_capacity if sram_budget is None else min(sram_budget, t.arena_capacity)
    if p.peak > cap:
        k = peak_step(p)
        live = sorted(p.live_at(k), key=lambda b: -b.size)[:3]
        bank = t.bank_at(cap) if sram_budget is None or cap == t.arena_capacity else "budget"
        what = ", ".join(f"{b.name} {b.size:,} B" for b in live)
        where = (f"overflows {bank} by {p.peak - cap:,} bytes (RAM for the arena: {cap:,} B after "
                 f"{t.runtime_ram:,} B of stack and runtime)" if bank != "budget"
                 else f"exceeds the {cap:,}-byte SRAM budget by {p.peak - cap:,} bytes")
        step = p.steps[k] if 0 <= k < len(p.steps) else "input"
        return f"arena of {p.peak:,} B {where}; at step '{step}' the largest live tensors are {what}"
    flash_cap = t.flash_bytes if flash_budget is None else min(flash_budget, t.flash_bytes)
    need = weights + t.code_bytes
    if need > flash_cap:
        big = sorted(((OPS[n.op].flash_bytes(n), n.name) for n in s.graph.nodes), reverse=True)[:3]
        return (f"flash needs {need:,} B ({weights:,} B weights + {t.code_bytes:,} B code) and overflows FLASH "
                f"({flash_cap:,} B) by {need - flash_cap:,} bytes; largest weights: "
                + ", ".join(f"{name} {b:,} B" for b, name in big))
    return ""


def _params(nodes) -> int:
    """Weights of the nodes: float ones, or an imported int8 file's (its ops hold only those)."""
    return sum(int(np.asarray(n.attrs.get("w", n.qattrs.get("w"))).size) for n in nodes if "w" in n.attrs or "w" in n.qattrs)


class McuBackend(Backend):
    kind = "mcu"

    def switches(self, requested, target=None):
        """Every memory technique on, the qkv split included (up to 20% less arena for 5-12% more
        instructions). The pre-widened weights (Switches.widen_weights) only where the target's kernels
        read them: the DSP path of the M4, M7 and M33, whatever was asked (elsewhere they double an
        imported file's FULLY_CONNECTED / CONV_2D weights in flash for nothing)."""
        sw = Switches() if requested is None else requested
        if target is not None and kernel_path(target) != "dsp" and sw.widen_weights:
            sw = replace(sw, widen_weights=False)
        return sw

    def candidate_switches(self, switches, exact, optimize="ram", target=None):
        """Operator integration stays on only where it lowers the peak: with a handful of tokens its row
        blocks, and the qkv split's per-row recomputation, hold more than whole tensors do (a 5-token
        digits subnet: 2,264 B fused against 1,704 B unfused, and 25% more instructions), so a fused
        request runs unfused when that plans smaller (``exact``: never). Likewise K/V per head, which
        recomputes the LayerNorm per head: a request for it runs with K and V of all heads first, and
        per head only where that plans a smaller arena. And the other way round for keep_rank, which
        saves the query rows' recomputation for a tokens x rank tensor: tried first, kept where the
        recomputation plans no smaller arena. Optimising for time, the schedule without the qkv split
        is tried too (lower keeps the fastest that fits), and on the DSP kernels each fused schedule with
        its chains' last blocks merged (Switches.merge_tail: ev__rs5 takes 5 rows where a lone row ran
        apart; 1.7% fewer instructions on 17-token models for 176-264 B. The other kernels gain nothing:
        -0.03% on the M3's tiles)."""
        if exact:
            return [switches]
        fused = ([kv_all_heads(switches), switches] if switches.fuse and switches.split_qkv and switches.kv_per_head
                 else [switches])
        fused = [v for sw in fused for v in ([sw, rank_recomputed(sw)] if sw.fuse and sw.split_qkv and sw.keep_rank
                                             and not sw.kv_per_head else [sw])]
        if optimize == "time" and switches.fuse and switches.split_qkv:
            # the qkv split and K/V per head trade instructions for arena: the whole [N, 3E] qkv is faster
            fused += [replace(switches, split_qkv=False, kv_per_head=False)]
        if optimize == "time" and target is not None and kernel_path(target) == "dsp":
            fused += [replace(sw, merge_tail=True) for sw in fused if sw.fuse and not sw.merge_tail]
        return fused + [unfused(switches)] if switches.fuse else fused

    def fit(self, low, sram_budget=None, flash_budget=None):
        return check_fit(low.plan, low.schedule, low.target, low.weights_bytes, sram_budget, flash_budget)

    def latency(self, low):
        e = estimate(low.schedule.graph, low.schedule.steps, low.target)
        return dict(e, how=f"{e['kernel_path']} kernels' instruction model at one instruction a cycle, "
                           f"{low.target.raw.get('clock_hz', 0) / 1e6:g} MHz")

    def compile(self, low: Lowered) -> Compiled:
        """The C sources of a lowered (and calibrated) graph."""
        src, hdr, info = generate(low.schedule, low.plan)
        info.update(macs=low.macs, executed_macs=low.executed_macs, peak_sram=low.plan.peak, lower_bound=low.plan.lower_bound, banks=low.plan.banks)
        return Compiled(low.graph, low.schedule, low.plan, low.target, src, hdr, info)

    def preflight(self, options):
        if options.get("firmware", True):
            require_firmware_tools()

    def emit(self, low, out, *, name, x_check, module=None, test=None, say=None, firmware: bool = True):
        return write_project(self.compile(low), Path(out), name, x_check, module, test, firmware, say)

    def analyze(self, low, options):
        s, p, t = low.schedule, low.plan, low.target
        layers = []
        for k, st in enumerate(s.steps):
            # a step's MACs as the device runs them (recomputed rows, padded ranks): they sum to executed_macs
            layers.append({"layer": st.name, "macs": sum(OPS[n.op].macs(n, s.graph) for n in st.nodes),
                           "params": _params(st.nodes),
                           "flash": sum(OPS[n.op].flash_bytes(n) for n in st.nodes),
                           "sram_live": sum(b.size for b in p.live_at(k)),
                           "output": st.output, "overwrites": st.alias})
        why = self.fit(low)
        # the model's parameters: the steps' would count the qkv split's slices and recomputed copies twice
        return {"target": t.name, "macs": low.macs, "executed_macs": low.executed_macs, "params": _params(low.graph.nodes),
                "flash": low.weights_bytes + t.code_bytes, "weights_bytes": low.weights_bytes,
                "peak_sram": p.peak, "peak_sram_banks": p.banks, "lower_bound_bytes": p.lower_bound,
                "fits": not why, "why": why, "switches": dict(s.switches.__dict__), "schedule_note": s.note,
                "layers": layers}


# ------------------------------------------------------------------ the build folder
def accuracy(c: Compiled, host: HostModel, module, test: dict) -> dict:
    """Top-1 of float (PyTorch, else the float IR) and of int8 (the generated C) on held-out data."""
    x, y = test["x"], test["y"]
    if module is not None:
        with torch.no_grad():
            fl = module(torch.as_tensor(x, dtype=torch.float32)).numpy()
    else:
        fl = float_logits(c.graph, x)
    q = np.stack([host.run(quantize_image(c.graph, xi)) for xi in x])
    return {"images": int(len(y)), "float_top1": float((fl.argmax(1) == y).mean()),
            "int8_top1": float((q.argmax(1) == y).mean()), "agreement": float((fl.argmax(1) == q.argmax(1)).mean())}


def check_oracle(g, stage: Path, xq: np.ndarray, host: HostModel) -> dict | None:
    """An imported .tflite keeps its file beside the build (model.tflite, what validate compares with)
    and its generated C is checked against LiteRT's reference kernels on the build's check inputs."""
    if not (g.source and Path(g.source).suffix.lower() == ".tflite"):
        return None
    data = Path(g.source).read_bytes()
    (stage / "model.tflite").write_bytes(data)
    want = litert.run_graph(data, g, xq)
    got = np.stack([host.run(x) for x in xq])
    return {"name": litert.ORACLE, "file": "model.tflite", "inputs": int(len(xq)),
            "differing_bytes": int((got != want.reshape(got.shape)).sum())}


def write_project(c: Compiled, out: Path, name: str, x_check: np.ndarray, module=None, test=None,
                  firmware: bool = True, say: Phases | None = None) -> dict:
    """Everything after compilation, written into `out` atomically: sources, plan, checks, ELFs, report."""
    say = say or Phases()
    tgt = c.target
    if DEBUG >= 1:
        print(c.schedule.graph.summary())
    if DEBUG >= 2:
        print(c.model_c[c.model_c.index("void ev_model_invoke"):])
    with staged_dir(out) as stage:
        model_dir = stage / "model"
        write_model_sources(c.model_c, c.model_h, model_dir)
        (stage / "plan.json").write_text(c.plan.to_json())
        plot_timeline(c.plan, stage / "memory.png", f"{name} on {tgt.name}: arena timeline")
        evq = pickle.dumps(c.graph)
        (stage / "model.evq").write_bytes(evq)
        say("checking the generated C against the int8 reference")
        host = HostModel(build_host_library(model_dir, stage / "host_model.so"), c.model_h)
        rng = np.random.default_rng(0)
        checked = []
        for i in range(4):
            x = x_check[i % len(x_check)] + (0 if i < 2 else rng.standard_normal(x_check.shape[1:]))
            xq = quantize_image(c.graph, x)
            if not np.array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1)):
                raise EdgevizError("internal error: the generated C differs from the int8 reference; "
                                   "please report it with the model file")
            checked.append(xq)
        oracle = check_oracle(c.graph, stage, np.stack(checked), host)
        acc = None
        if test is not None:
            say("measuring accuracy on held-out data")
            acc = accuracy(c, host, module, test)
        summary = _summary(c, tgt, name, acc, c.schedule.switches)
        summary["model_evq_sha256"] = hashlib.sha256(evq).hexdigest()
        if oracle:
            summary["oracle"] = oracle
        if firmware:
            say("building firmware with arm-none-eabi-gcc")
            images = firmware_images(tgt)
            fw = copy_firmware_tree(stage / "firmware", list(images))
            for board, elf_name in images.items():
                # one core, one set of flags: the emulator image runs the board's instructions
                elf = build_firmware(model_dir, board, fw / f"build-{board}", fw_dir=fw, arch_flags=tgt.cflags,
                                     flash_bytes=tgt.flash_bytes, ram_bytes=tgt.ram_bytes)
                os.replace(elf, fw / elf_name)
                for ext in (".bin", ".hex", ".map", ".uf2"):   # flashing tools want these beside the ELF
                    if elf.with_suffix(ext).exists():
                        os.replace(elf.with_suffix(ext), (fw / elf_name).with_suffix(ext))
            # the facts of the image the target runs: the board's, else the emulator's
            main = images.get(tgt.board, images[tgt.emulator])
            summary.update(_elf_facts(fw / main, c))
            summary["elf"] = str((out / "firmware" / main).resolve())
            summary["emulator_elf"] = f"firmware/{images[tgt.emulator]}"
        say("done")
        summary["build_seconds"] = say.total()
        summary["phase_seconds"] = say.seconds
        (stage / "build.json").write_text(json.dumps(summary, indent=1))
        write_build_report(stage / "report.html", summary, c)
    return summary


def firmware_images(tgt: Target) -> dict[str, str]:
    """board layer -> ELF name in the build's firmware/: fw.elf for the target's board and, riding
    along so that `edgeviz profile --port emulator` works on any MCU build, fw-<machine>.elf for the
    QEMU machine that stands in for it (fw.elf itself where the target is that machine). A target
    without a board layer yet gets the emulator image only."""
    images = {tgt.board: "fw.elf"} if tgt.board else {}
    if tgt.emulator not in images:
        images[tgt.emulator] = f"fw-{tgt.emulator}.elf"
    return images


def _summary(c: Compiled, tgt, model: str, acc, switches: Switches) -> dict:
    g = c.graph
    inp, outp = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    return {
        "model": str(model), "target": tgt.name, "core": tgt.core, "board": tgt.board, "emulator": tgt.emulator,
        "model_id": c.info["model_id"],
        "input_shape": list(inp.shape), "input_scale": inp.scale,
        "output_shape": list(outp.shape), "output_scale": outp.scale,
        "arena_bytes": c.plan.peak, "peak_sram": c.plan.peak, "peak_sram_banks": c.plan.banks,
        "lower_bound_bytes": c.plan.lower_bound, "weights_bytes": c.info["weights_bytes"],
        "flash_estimate": c.info["weights_bytes"] + tgt.code_bytes, "macs": c.info["macs"], "executed_macs": c.info["executed_macs"],
        "layers": list(c.plan.steps), "switches": dict(switches.__dict__), "schedule_note": c.schedule.note,
        "accuracy": acc, "preprocess": getattr(g, "preprocess", None),
        "plan": "plan.json", "memory_png": "memory.png",
    }


def _elf_facts(elf: Path, c: Compiled) -> dict:
    """What the linked ELF really reserves: the arena must equal the plan byte for byte."""
    arena = elf_symbol_size(elf, "ev_arena")
    if arena != c.plan.peak:
        raise EdgevizError(f"internal error: linked arena is {arena} B but the plan says {c.plan.peak} B")
    secs = elf_sections(elf)
    flash = sum(size for name, (addr, size) in secs.items() if name in (".isr_vector", ".text", ".rodata", ".data", ".ARM.exidx"))
    ram = sum(size for name, (addr, size) in secs.items() if name in (".ev_arena", ".data", ".bss", ".stack", "._stack", ".heap"))
    return {"elf_arena_bytes": arena, "elf_flash_bytes": flash, "elf_ram_bytes": ram, "elf_sections": secs}
