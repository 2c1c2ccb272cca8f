"""The compiler pipeline as a Python API: model -> IR -> int8 -> schedule -> plan -> C.

`plan_config` is the memory oracle the search uses; `compile_graph` is what `edgeviz build` runs.
Both go through the same schedule_plan() call, so a searched budget is the linked arena.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import EdgevizError
from .ir import Graph
from .model import LowRankLinear, ViT, ViTConfig
from .ops import OPS
from .ops.activation import GELU
from .passes import Schedule, Switches, schedule
from .planner import Plan, peak_step, plan
from .quantize import quantize
from .targets import Target, load_target


# ------------------------------------------------------------------ IR straight from a ViT module
def graph_from_vit(model: ViT) -> Graph:
    """The IR that the TVM frontend produces for an edgeviz ViT, built directly from its modules.

    The search judges thousands of candidates, and torch.export + Relax costs about a second each;
    tests/test_frontend.py checks that both paths give identical graphs (ops, shapes, weights).
    """
    cfg = model.cfg
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    g = Graph()
    counters: dict[str, int] = {}

    def node(op, inputs, shape, **attrs) -> str:
        i = counters.get(op, 0)
        counters[op] = i + 1
        return g.add_node(op, f"{op}{i}", inputs, shape, attrs).name

    def linear(x, mod, rows) -> str:
        if isinstance(mod, LowRankLinear):
            x = node("linear", [x], (rows, mod.v.out_features), w=mod.v.weight.detach().double().numpy(), b=None)
            mod = mod.u
        return node("linear", [x], (rows, mod.out_features), w=mod.weight.detach().double().numpy(),
                    b=mod.bias.detach().double().numpy())

    g.inputs = [g.add_tensor("input", (cfg.in_chans, cfg.img_size, cfg.img_size)).name]
    pos = sd["pos_embed"][0]
    bias = np.tile(sd["patch_embed.bias"], (cfg.num_patches, 1))
    prefix = None
    if cfg.pool == "cls":
        prefix = sd["cls_token"].reshape(1, -1) + pos[:1]
        pos = pos[1:]
    n, e = cfg.num_tokens, cfg.embed
    x = node("patch_embed", [g.inputs[0]], (n, e), w=sd["patch_embed.weight"], patch=cfg.patch,
             bias_tokens=bias + pos, prefix=prefix)
    for blk in model.blocks:
        h = node("layernorm", [x], (n, e), gamma=sd_get(blk.norm1.weight), beta=sd_get(blk.norm1.bias), eps=blk.norm1.eps)
        h = linear(h, blk.attn.qkv, n)
        h = node("attention", [h], (n, e), heads=blk.attn.heads, scale=float(np.float32(blk.attn.scale)))
        h = linear(h, blk.attn.proj, n)
        x = node("add", [x, h], (n, e))
        h = node("layernorm", [x], (n, e), gamma=sd_get(blk.norm2.weight), beta=sd_get(blk.norm2.bias), eps=blk.norm2.eps)
        h = linear(h, blk.fc1, n)
        h = node("activation", [h], (n, cfg.hidden), fn=GELU, kind="gelu")
        h = linear(h, blk.fc2, n)
        x = node("add", [x, h], (n, e))
    norm = dict(gamma=sd_get(model.norm.weight), beta=sd_get(model.norm.bias), eps=model.norm.eps)
    if cfg.pool == "cls":
        x = node("select_token", [x], (1, e), index=0)
        x = node("layernorm", [x], (1, e), **norm)
    else:
        x = node("layernorm", [x], (n, e), **norm)
        x = node("mean_tokens", [x], (1, e))
    g.outputs = [linear(x, model.head, 1)]
    return g


def sd_get(p) -> np.ndarray:
    return p.detach().double().numpy()


# ------------------------------------------------------------------ memory oracle
@dataclass
class MemoryReport:
    peak_sram: int                 # arena bytes = what the firmware links
    banks: dict[str, int]
    flash: int                     # weights + the target's runtime code
    macs: int
    lower_bound: int
    fits: bool
    why: str = ""


def graph_macs(g: Graph) -> int:
    """MACs of a graph; of a schedule's graph, the MACs the device executes (recomputed rows included)."""
    return sum(OPS[n.op].macs(n, g) for n in g.nodes)


def graph_flash(g: Graph, s: Schedule | None = None) -> int:
    """Constant bytes of a graph; with its schedule, plus the zero weights the schedule padded in."""
    return sum(OPS[n.op].flash_bytes(n) for n in g.nodes) + (s.pad_bytes if s is not None else 0)


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


def schedule_plan(g: Graph, switches: Switches, t: Target, exact: bool = False) -> tuple[Schedule, Plan]:
    """The schedule an MCU build runs, and its plan. Operator integration stays on only where it lowers
    the peak: with a handful of tokens its row blocks, and the qkv split's per-row recomputation, hold
    more than whole tensors do (a 5-token digits subnet: 2,264 B fused against 1,704 B unfused, and
    25% more instructions), so a fused request runs unfused when that plans smaller (``exact``: never).
    The schedule records the switches that ran."""
    s = schedule(g, switches)
    p = plan(s, t)
    if switches.fuse and not exact:
        s_off = schedule(g, replace(switches, fuse=False, split_qkv=False))
        p_off = plan(s_off, t)
        if p_off.peak < p.peak:
            s_off.note = f"operator integration off: {p_off.peak:,} B unfused against {p.peak:,} B fused"
            return s_off, p_off
    return s, p


def plan_config(cfg: ViTConfig, target: str | Target = "stm32f746", switches: Switches = Switches(),
                sram_budget: int | None = None, flash_budget: int | None = None, seed: int = 0) -> MemoryReport:
    """Judge a configuration exactly as `edgeviz build` would: same IR, same schedule, same planner.

    Memory does not depend on weight values or ranges: random weights and unit ranges give the
    exact arena and flash sizes.
    """
    import torch
    t = load_target(target) if isinstance(target, str) else target
    torch.manual_seed(seed)
    g = graph_from_vit(ViT(cfg).eval())
    quantize(g, None)
    s, p = schedule_plan(g, switches, t)
    weights = graph_flash(g, s)
    why = check_fit(p, s, t, weights, sram_budget, flash_budget)
    return MemoryReport(p.peak, p.banks, weights + t.code_bytes, graph_macs(s.graph), p.lower_bound, not why, why)


# ------------------------------------------------------------------ whole-model compile
@dataclass
class Compiled:
    graph: Graph                   # quantized reference graph (the specification)
    schedule: Schedule
    plan: Plan
    target: Target
    model_c: str
    model_h: str
    info: dict


def compile_graph(g: Graph, calib: np.ndarray, target: str | Target, switches: Switches = Switches(),
                  check: bool = True, exact_switches: bool = False) -> Compiled:
    """``exact_switches``: schedule with ``switches`` as given (see schedule_plan; tests use it to run
    fused kernels on graphs the build would run unfused)."""
    from .codegen_c import generate
    t = load_target(target) if isinstance(target, str) else target
    if check and t.kind == "mcu":
        # sizes do not depend on calibration: refuse a model that cannot fit before calibrating it
        quantize(g, None)
        s, p = schedule_plan(g, switches, t, exact_switches)
        why = check_fit(p, s, t, graph_flash(g, s))
        if why:
            raise EdgevizError(f"model does not fit {t.name}: {why}")
    quantize(g, calib)
    s, p = schedule_plan(g, switches, t, exact_switches)
    src, hdr, info = generate(s, p)
    info.update(macs=graph_macs(s.graph), peak_sram=p.peak, lower_bound=p.lower_bound, banks=p.banks)
    return Compiled(g, s, p, t, src, hdr, info)
