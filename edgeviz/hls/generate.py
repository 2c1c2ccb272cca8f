"""HLS project generator: a quantized, scheduled and planned IR graph -> a Vitis HLS C++ project.

The project (one folder) holds
    ev_top.cpp / ev_top.h     the top function: one template call (or one row loop over a fused chain)
                              per schedule step, over on-chip buffers
    weights/<node>.h          every node's integer constants as ROM arrays; ev_weights.h includes them
    ev_tb_config.h            glue for the generic testbench (hls/testbench/ev_tb_main.cpp)
    tb_data/input.bin         int8 test images, back to back
    tb_data/reference.bin     their outputs from edgeviz.quantize.run_int8 (the specification)
    hls/                      a copy of the template library and testbench, so the folder stands alone
    run_hls.tcl               Vitis HLS script: csim against the reference, csynth, export
    project.json              sizes, board, reuse factors, buffers (read by edgeviz.hls.csim)
    estimate.txt / .json      edgeviz's own resource and latency estimate (not vendor tool figures)

Buffers: each planner buffer (tensors that share storage through token overwriting count as one) is
assigned to an on-chip bank; buffers whose lifetimes do not overlap share a bank, so a chain of layers
alternates between banks (ping-pong) instead of holding one array per tensor. A bank is declared with its
largest buffer's bytes and counted in whole BRAM18K blocks (2048 int8 entries each in the 2K x 9 shape);
banks of at most 1024 bits stay in LUTRAM. A bank that an attention streams K and V from is split cyclic
by that attention's lanes (so K and V arrive LANES bytes a cycle): partitioned (LANES memories) or
reshaped (one memory of LANES-byte words), whichever takes fewer BRAM18K (estimate.buffer_layout).
Element-wise ops on a bank row run one element per cycle (the bank's two ports serve one read and one
write). The planner's scratch buffers are not needed: the templates hold their own row registers. Fused
chains (operator integration) run as one loop over token rows with one-row intermediates; attention
inside a chain runs per query row (ev_attention_kv_row).

Schedules (edgeviz.passes.Switches), every combination supported and C-simulated bit-exact, except K/V per
head (an MCU schedule; backends/fpga.fpga_switches leaves it off, check_switches refuses it):
- token overwriting on or off (off: every step writes a buffer of its own, the ablation baseline);
- patch-embedding decomposition on or off (off: an im2col gather fills a [patches, C*p*p] buffer, then one
  linear with a per-row bias embeds it);
- the qkv split (off by default here, on by default on the MCU; see backends/fpga.fpga_switches): K and V of all
  tokens in kv [N, 2E], each query row's LayerNorm and q projection recomputed inside the attention
  chain, whose output row (projection plus residual) is written over x's row: x + K + V (3NE) live at
  the attention instead of 4NE with the fused [N, 3E] qkv tensor (split_qkv=False; ev_attention_row).
  The per-row copies share their node's constant ROMs but are a second datapath (DSPs, cycles) in the
  estimate;
- operator integration off (--no-fuse): every op materialises its output; attention runs as
  ev_attn_scores -> ev_softmax -> ev_attn_av over the [H*N, N] score matrix (softmax in place with token
  overwriting), GELU as its own table step.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeviz.errors import EdgevizError
from edgeviz.hls import estimate as est
from edgeviz.hls.csim import hls_dir
from edgeviz.ops import OPS
from edgeviz.passes import Switches
from edgeviz.quantize import run_int8
from edgeviz.targets import Target, load_fpga_target

CANDIDATE_REUSE = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def check_switches(switches) -> None:
    """EdgevizError for schedule switches the HLS templates cannot build. Every combination of the
    Switches fields has templates (operator integration off included: ev_attn_scores / ev_softmax /
    ev_attn_av) except K/V per head."""
    unknown = {f.name for f in dataclasses.fields(switches)} - {f.name for f in dataclasses.fields(Switches)}
    if unknown:
        raise EdgevizError(f"the FPGA backend has no templates for the schedule switches {sorted(unknown)}")
    if switches.kv_per_head:
        raise EdgevizError("the FPGA backend has no K/V-per-head schedule (its attention templates stream every "
                           "head's K and V from one bank); build FPGA targets without --kv-per-head")


def cname(name: str) -> str:
    s = re.sub(r"\W", "_", name)
    return s if s and not s[0].isdigit() else "t_" + s


# ------------------------------------------------------------------ buffers -> banks

@dataclass
class Bank:
    name: str
    size: int                       # bytes declared (rounded to BRAM18K blocks when in BRAM)
    buffers: list = field(default_factory=list)   # planner Buffers placed here, disjoint lifetimes
    partition: int = 1              # lanes: bytes per cycle a fused attention reads from it
    reshape: bool = False           # lanes as one wide word (ARRAY_RESHAPE) rather than separate memories

    @property
    def bram18k(self) -> int:
        return est.buffer_bram18k(self.size, self.partition, self.reshape)

    @property
    def need(self) -> int:
        return max(b.size for b in self.buffers)


def assign_banks(plan) -> tuple[list[Bank], dict[str, Bank]]:
    """Greedy interval colouring of the planner's buffers (scratch excluded): a buffer reuses the
    free bank whose size is closest to its own. A bank is declared with its largest buffer's bytes; its
    BRAM18K count (estimate.buffer_bram18k) rounds to whole blocks. Returns the banks and tensor -> bank."""
    bufs = sorted((b for b in plan.buffers if not b.name.startswith("scratch@")), key=lambda b: (b.first, -b.size))
    banks: list[Bank] = []
    for b in bufs:
        free = [k for k in banks if all(o.last < b.first or b.last < o.first for o in k.buffers)]
        if free:
            fit = [k for k in free if k.need >= b.size]
            k = min(fit, key=lambda k: k.need) if fit else max(free, key=lambda k: k.need)
            k.buffers.append(b)
        else:
            banks.append(Bank(f"bank{len(banks)}", 0, [b]))
    for k in banks:
        k.size = k.need
    where = {t: k for k in banks for b in k.buffers for t in b.tensors}
    return banks, where


# ------------------------------------------------------------------ constants

_CTYPES = {np.dtype(np.int8): ("ev_i8", ""), np.dtype(np.int32): ("ev_i32", ""),
           np.dtype(np.int64): ("ev_i64", "LL"), np.dtype(np.uint16): ("ev_u16", "")}


class Consts:
    """Node constants -> ROM arrays in weights/<node>.h."""

    def __init__(self):
        self.files: dict[str, list[str]] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.bytes = 0

    def add(self, node, key: str, arr, dtype) -> str:
        a = np.asarray(arr).astype(dtype).reshape(-1)
        ctype, suffix = _CTYPES[np.dtype(dtype)]
        name = f"{cname(node.name)}_{key}"
        if name in self.arrays:
            # the qkv split's per-row copies of LayerNorm / low-rank factors keep the node's name and
            # constants: one ROM, read by both steps
            if not np.array_equal(self.arrays[name], a):
                raise AssertionError(f"two different constant arrays named {name}")
            return name
        self.arrays[name] = a
        vals = [f"{v}{suffix}" for v in a.tolist()]
        if ctype == "ev_i32":
            vals = [v if v != "-2147483648" else "(-2147483647 - 1)" for v in vals]
        lines = [", ".join(vals[i:i + 24]) for i in range(0, len(vals), 24)]
        body = ",\n    ".join(lines)
        self.files.setdefault(cname(node.name), []).append(
            f"static const {ctype} {name}[{a.size}] = {{\n    {body}\n}};")
        self.bytes += a.nbytes
        return name


# ------------------------------------------------------------------ per node

def node_total(node, g, chained: bool = False) -> int:
    """Operations per row (or per call) that the reuse factor divides (the op's hls_ops)."""
    return OPS[node.op].hls_ops(node, g, chained)


def node_spec(node, g, reuse: int, chained: bool) -> est.LayerSpec | None:
    spec = OPS[node.op].hls_spec(node, g, chained)
    return None if spec is None else est.LayerSpec(node.name, spec[0], spec[1], reuse)


def _check_ops(schedule):
    for st in schedule.steps:
        for n in st.nodes:
            if n.op not in OPS or not OPS[n.op].hls_template:
                raise EdgevizError(f"the HLS backend has no template for op '{n.op}' ({n.name}): no template "
                                   f"exists for it")


def reuse_for(schedule, reuse) -> dict[str, int]:
    """Per-node reuse factors from an int (every node) or a dict {node name or op: factor}, clipped
    to each node's operation count and to what its buffers deliver per cycle (the op's hls_reuse:
    add / LUT one element a cycle, linear LANES | IN, attention rows LANES | dh)."""
    g = schedule.graph
    out = {}
    for st in schedule.steps:
        for n in st.nodes:
            if isinstance(reuse, dict):
                r = reuse.get(n.name, reuse.get(n.op, 1))
            else:
                r = reuse
            r = max(1, min(int(r), node_total(n, g, st.chained)))
            out[n.name] = OPS[n.op].hls_reuse(n, g, st.chained, r)
    return out


def bank_partitions(schedule, banks: list[Bank], reuse: dict[str, int]) -> None:
    """Set each bank's cyclic partition factor: the lanes of the fused attention rows that read it."""
    where = {t: k for k in banks for b in k.buffers for t in b.tensors}
    for k in banks:
        k.partition, k.reshape = 1, False
    g = schedule.graph
    for st in schedule.steps:
        for n in st.nodes:
            kv = OPS[n.op].hls_kv_buffer(n, st.chained)
            if kv is not None:
                lanes = math.ceil(node_total(n, g, st.chained) / reuse[n.name])
                bank = where[kv]
                bank.partition = max(bank.partition, lanes)
    for k in banks:
        k.reshape, _ = est.buffer_layout(k.size, k.partition)


def schedule_estimate(schedule, banks: list[Bank], reuse: dict[str, int], board, check: bool) -> est.Estimate:
    _check_ops(schedule)         # an op without a template has no cost model either: never drop it silently
    g = schedule.graph
    specs, seen = [], set()
    for st in schedule.steps:
        for n in st.nodes:
            s = node_spec(n, g, reuse[n.name], st.chained)
            if s is not None:
                if n.name in seen:
                    # the qkv split recomputes LayerNorm (and a low-rank factor) per query row: its own
                    # datapath and cycles, the same constant ROMs
                    s.name += " (q row)"
                    s.dims["shared_rom"] = True
                specs.append(s)
            seen.add(n.name)
    bank_partitions(schedule, banks, reuse)
    return est.estimate(specs, board, [(k.name, k.size, k.partition, k.reshape) for k in banks], check=check)


def choose_reuse(schedule, banks, board, check: bool = True) -> tuple[int, dict[str, int], est.Estimate]:
    """The smallest uniform reuse factor whose estimate fits the board: (factor, per node, estimate).
    When none fits: EdgevizError naming the exceeded resources, or (check=False) the largest factor's."""
    for r in CANDIDATE_REUSE:
        rf = reuse_for(schedule, r)
        e = schedule_estimate(schedule, banks, rf, board, check=False)
        if e.fits:
            return r, rf, e
    return r, rf, (e.check() if check else e)


# ------------------------------------------------------------------ code

class _Emitter:
    def __init__(self, schedule, where: dict[str, Bank], reuse: dict[str, int], consts: Consts):
        self.s, self.g, self.where, self.reuse, self.c = schedule, schedule.graph, where, reuse, consts

    def base(self, t: str) -> str:
        return self.where[t].name

    def node(self, n, ins: list[str], out: str, rows: int, chained: bool) -> list[str]:
        """The op module's HLS statements (Op.emit_hls); this emitter gives it g, c (ROMs) and reuse."""
        return OPS[n.op].emit_hls(n, self, ins, out, rows, chained)

    def step(self, k: int, st) -> tuple[list[str], list[str]]:
        """(statements, row-scratch declarations) for one schedule step."""
        g = self.g
        head = [f"// step {k}: {st.name}" + (f" (output over {st.alias}: token overwriting)" if st.alias else "")]
        if not st.chained:
            n = st.nodes[0]
            ins = [self.base(t) for t in n.inputs]
            return head + self.node(n, ins, self.base(n.outputs[0]), g.tensors[n.outputs[0]].rows, False), []
        inner = set(st.row_tensors)
        decls = [f"static ev_i8 row_{cname(t)}[{g.tensors[t].channels}];" for t in st.row_tensors]
        rows = g.tensors[st.output].rows
        body = []
        for n in st.nodes:
            ins = []
            for i, t in enumerate(n.inputs):
                if t in inner:
                    ins.append(f"row_{cname(t)}")
                elif i in OPS[n.op].rowwise_inputs:
                    ins.append(f"{self.base(t)} + r * {g.tensors[t].channels}")
                else:
                    ins.append(self.base(t))
            t = n.outputs[0]
            out = f"row_{cname(t)}" if t in inner else f"{self.base(t)} + r * {g.tensors[t].channels}"
            body += self.node(n, ins, out, 1, True)
        return head + [f"for (int r = 0; r < {rows}; r++) {{"] + ["    " + b for b in body] + ["}"], decls


# ------------------------------------------------------------------ project

@dataclass
class HlsProject:
    path: Path
    board: Target
    estimate: est.Estimate
    reuse: dict[str, int]
    banks: list[Bank]
    input_bytes: int
    output_bytes: int
    vectors: int


def _run_int8_scheduled(g, x) -> np.ndarray:
    """run_int8 over a scheduled graph (qkv split, unfused attention steps): every op kind has its own
    int8 reference."""
    env = {g.inputs[0]: np.asarray(x, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape)}
    for n in g.nodes:
        y = OPS[n.op].run_int8(n, [env[i] for i in n.inputs])
        env[n.outputs[0]] = np.asarray(y, dtype=np.int8).reshape(g.tensors[n.outputs[0]].shape)
    return env[g.outputs[0]]


def generate(schedule, plan, out_dir, board: str | Target = "zcu102", reuse: int | dict | str = "auto",
             tb_inputs=None, n_vectors: int = 4, check: bool = True, seed: int = 0, ref_graph=None) -> HlsProject:
    """Write the HLS project for a scheduled (edgeviz.passes.schedule) and planned (edgeviz.planner.plan)
    quantized graph. reuse: "auto" (smallest uniform factor that fits the board), an int, or
    {node name or op: factor}. tb_inputs: int8 images [B, C, H, W] for the testbench (default: n_vectors
    random images). check: EdgevizError when the estimate exceeds the board. ref_graph: the quantized graph
    before scheduling, whose edgeviz.quantize.run_int8 gives the testbench reference (default: the
    scheduled graph, evaluated op by op)."""
    board = load_fpga_target(board)
    check_switches(schedule.switches)
    _check_ops(schedule)
    g = schedule.graph
    banks, where = assign_banks(plan)
    if reuse == "auto":
        _, rf, estimate = choose_reuse(schedule, banks, board)
    else:
        rf = reuse_for(schedule, reuse)
        estimate = schedule_estimate(schedule, banks, rf, board, check=check)
    bank_partitions(schedule, banks, rf)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "csim").is_dir():
        shutil.rmtree(out / "csim")        # a stale C-simulation build of an earlier project
    consts = Consts()
    em = _Emitter(schedule, where, rf, consts)
    body, decls = [], []
    for k, st in enumerate(schedule.steps):
        stmts, d = em.step(k, st)
        body += stmts
        decls += d

    x_name, y_name = g.inputs[0], g.outputs[0]
    in_bytes, out_bytes = g.tensors[x_name].nbytes, g.tensors[y_name].nbytes
    top = ['// Generated by edgeviz (edgeviz.hls.generate): HLS top function of one int8 ViT.',
           '// Semantics: edgeviz/intmath.py bit for bit; reference outputs in tb_data/.',
           '#include "ev_lib.h"', '#include "ev_weights.h"', '#include "ev_top.h"', '',
           'void ev_top(const ev_i8 in[EV_INPUT_BYTES], ev_i8 out[EV_OUTPUT_BYTES]) {',
           f'#pragma HLS INTERFACE mode=m_axi port=in offset=slave bundle=gmem0 depth={in_bytes}',
           f'#pragma HLS INTERFACE mode=m_axi port=out offset=slave bundle=gmem1 depth={out_bytes}',
           '#pragma HLS INTERFACE mode=s_axilite port=return']
    for b in banks:
        tensors = ", ".join(t for buf in b.buffers for t in buf.tensors)
        top.append(f"    static ev_i8 {b.name}[{b.size}];   // {b.bram18k} BRAM18K; holds {tensors}")
        if b.partition > 1:
            kind = "ARRAY_RESHAPE" if b.reshape else "ARRAY_PARTITION"
            top.append(f"#pragma HLS {kind} variable={b.name} cyclic factor={b.partition}")
    top += ["    " + d for d in decls]
    top += ["", f"    ev_copy_row<EV_INPUT_BYTES>(in, {where[x_name].name});"]
    top += ["    " + ln for ln in body]
    top += [f"    ev_copy_row<EV_OUTPUT_BYTES>({where[y_name].name}, out);", "}", ""]
    (out / "ev_top.cpp").write_text("\n".join(top))
    (out / "ev_top.h").write_text("\n".join([
        "#ifndef EV_TOP_H", "#define EV_TOP_H", '#include "ev_types.h"',
        f"#define EV_INPUT_BYTES {in_bytes}", f"#define EV_OUTPUT_BYTES {out_bytes}",
        "void ev_top(const ev_i8 in[EV_INPUT_BYTES], ev_i8 out[EV_OUTPUT_BYTES]);", "#endif", ""]))
    wdir = out / "weights"
    if wdir.exists():
        shutil.rmtree(wdir)
    wdir.mkdir()
    inc = []
    for node, arrays in consts.files.items():
        (wdir / f"{node}.h").write_text("\n".join([f"// ROM constants of {node} (int8 weights, int32 biases, "
                                                   "requantisation multipliers and shifts, tables)",
                                                   f"#ifndef EV_W_{node.upper()}_H", f"#define EV_W_{node.upper()}_H",
                                                   '#include "ev_types.h"', *arrays, "#endif", ""]))
        inc.append(f'#include "weights/{node}.h"')
    (out / "ev_weights.h").write_text("\n".join(["#ifndef EV_WEIGHTS_H", "#define EV_WEIGHTS_H", *inc,
                                                 "#endif", ""]))
    (out / "ev_tb_config.h").write_text("\n".join([
        "// Glue between the generic testbench (hls/testbench/ev_tb_main.cpp) and this project's top.",
        "#ifndef EV_TB_CONFIG_H", "#define EV_TB_CONFIG_H", '#include "ev_top.h"',
        "#define EV_TB_INPUT_BYTES EV_INPUT_BYTES", "#define EV_TB_OUTPUT_BYTES EV_OUTPUT_BYTES",
        "static inline void ev_tb_top(const ev_i8 *in, ev_i8 *out) { ev_top(in, out); }", "#endif", ""]))

    # template library copy, testbench data
    lib = out / "hls"
    if lib.exists():
        shutil.rmtree(lib)
    shutil.copytree(hls_dir(), lib, ignore=shutil.ignore_patterns("*.o", "__pycache__"))
    if tb_inputs is None:
        rng = np.random.default_rng(seed)
        tb_inputs = rng.integers(-128, 128, size=(n_vectors, *g.tensors[x_name].shape)).astype(np.int8)
    xs = np.asarray(tb_inputs)
    if not np.issubdtype(xs.dtype, np.integer) or xs.size % g.tensors[x_name].nbytes:
        raise EdgevizError(f"testbench inputs must be int8 images of shape {list(g.tensors[x_name].shape)} "
                           "(edgeviz.quantize.quantize_image gives them)")
    xs = xs.astype(np.int8).reshape(-1, *g.tensors[x_name].shape)
    if ref_graph is not None:
        refs = np.stack([np.asarray(run_int8(ref_graph, x)).reshape(-1) for x in xs]).astype(np.int8)
    else:
        refs = np.stack([np.asarray(_run_int8_scheduled(g, x)).reshape(-1) for x in xs]).astype(np.int8)
    (out / "tb_data").mkdir(exist_ok=True)
    xs.reshape(len(xs), -1).tofile(out / "tb_data" / "input.bin")
    refs.tofile(out / "tb_data" / "reference.bin")

    period_ns = 1e9 / board.clock_hz
    (out / "run_hls.tcl").write_text("\n".join([
        "# Vitis HLS script written by edgeviz. Run: vitis_hls -f run_hls.tcl (no vendor tool ran here).",
        "open_project -reset ev_hls",
        "set_top ev_top",
        'add_files ev_top.cpp -cflags "-I. -Ihls -std=c++14"',
        'add_files -tb hls/testbench/ev_tb_main.cpp -cflags "-I. -Ihls -std=c++14"',
        "add_files -tb tb_data",
        "open_solution -reset sol1 -flow_target vivado",
        f"set_part {{{board.part}}}",
        f"create_clock -period {period_ns:.3f} -name default",
        'csim_design -argv "tb_data/input.bin csim_output.bin --ref tb_data/reference.bin"',
        "csynth_design",
        'cosim_design -argv "tb_data/input.bin cosim_output.bin --ref tb_data/reference.bin"',
        "export_design -format ip_catalog",
        "exit", ""]))
    meta = {
        "format": "edgeviz-hls/1", "top": "ev_top", "sources": ["ev_top.cpp"],
        "input_bytes": in_bytes, "output_bytes": out_bytes,
        "input_shape": list(g.tensors[x_name].shape), "output_shape": list(g.tensors[y_name].shape),
        "input_scale": g.tensors[x_name].scale, "output_scale": g.tensors[y_name].scale,
        "board": board.name, "part": board.part, "clock_hz": board.clock_hz,
        "reuse": rf, "weights_bytes": consts.bytes, "vectors": int(len(xs)),
        "banks": [{"name": b.name, "bytes": b.size, "lanes": b.partition,
                   "layout": ("reshape" if b.reshape else "partition") if b.partition > 1 else "plain",
                   "bram18k": b.bram18k,
                   "tensors": [t for buf in b.buffers for t in buf.tensors]} for b in banks],
        "planner_peak_bytes": plan.peak,
        "switches": dataclasses.asdict(schedule.switches),
        "estimate_note": est.DISCLAIMER,
    }
    (out / "project.json").write_text(json.dumps(meta, indent=1))
    (out / "estimate.json").write_text(json.dumps(estimate.to_dict(), indent=1))
    (out / "estimate.txt").write_text(estimate.report() + "\n")
    return HlsProject(out, board, estimate, rf, banks, in_bytes, out_bytes, int(len(xs)))
