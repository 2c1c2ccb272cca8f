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

Schedules (edgeviz.passes.Switches), every combination supported and C-simulated bit-exact:
- token overwriting on or off (off: every step writes a buffer of its own, the ablation baseline);
- patch-embedding decomposition on or off (off: an im2col gather fills a [patches, C*p*p] buffer, then one
  linear with a per-row bias embeds it);
- the qkv split (off by default here, on by default on the MCU; see fpga_switches): K and V of all
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

from edgeviz import intmath
from edgeviz.errors import EdgevizError
from edgeviz.hls import estimate as est
from edgeviz.hls.csim import hls_dir

CANDIDATE_REUSE = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
SUPPORTED_OPS = ("patch_embed", "im2col", "layernorm", "linear", "activation", "attention", "attention_split", "add",
                 "select_token", "mean_tokens", "attn_scores", "softmax", "attn_av")
ATTENTION_OPS = ("attention", "attention_split", "attn_scores", "attn_av")   # stream K / V LANES bytes a cycle


def fpga_switches(switches=None, **changes):
    """The schedule switches the FPGA backend builds with: the given ones, else the FPGA default (every
    technique on except the qkv split and the MCU kernel's rank padding), with `changes` (Switches
    fields) applied on top.

    The qkv split is off by default here, unlike on the MCU: it saves activation BRAM (x + K + V instead
    of x + [N, 3E] qkv) but adds a second LayerNorm / q datapath per block, so total BRAM is no lower and
    latency is 1.1-3.4x (bench/bench_hls.py; edgeviz's own estimates). Every combination has templates;
    split_qkv=False keeps the fused [N, 3E] qkv tensor (ev_attention_row)."""
    from edgeviz.passes import Switches

    base = Switches(split_qkv=False, pad_rank=False) if switches is None else switches
    return dataclasses.replace(base, **changes) if changes else base


def check_switches(switches) -> None:
    """EdgevizError for schedule switches the HLS templates cannot build. Every combination of the
    Switches fields has templates (operator integration off included: ev_attn_scores / ev_softmax /
    ev_attn_av); kept as the one place to refuse a future switch."""
    from edgeviz.passes import Switches

    unknown = {f.name for f in dataclasses.fields(switches)} - {f.name for f in dataclasses.fields(Switches)}
    if unknown:
        raise EdgevizError(f"the FPGA backend has no templates for the schedule switches {sorted(unknown)}")


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
    """Operations per row (or per call) that the reuse factor divides."""
    q, t_out = node.qattrs, g.tensors[node.outputs[0]]
    if node.op in ("linear", "patch_embed"):
        return int(q["w"].size)
    if node.op in ATTENTION_OPS:
        n, dh = _attn_dims(node, g)
        return n * dh
    if node.op == "softmax":
        return t_out.channels
    if node.op in ("add", "activation"):
        return t_out.channels if chained else t_out.nbytes
    if node.op == "layernorm":
        return t_out.channels
    if node.op == "mean_tokens":
        return t_out.channels
    return 1


def node_spec(node, g, reuse: int, chained: bool) -> est.LayerSpec | None:
    q, t_out = node.qattrs, g.tensors[node.outputs[0]]
    rows = t_out.rows
    if node.op == "linear":
        o, k = q["w"].shape
        return est.LayerSpec(node.name, "linear", {"rows": rows, "in": k, "out": o, "lut": "lut" in q}, reuse)
    if node.op == "patch_embed" and len(node.inputs) > 1:
        # no patch-embedding decomposition: one linear over the im2col buffer, a bias row per patch
        o, k = q["w"].shape
        return est.LayerSpec(node.name, "linear", {"rows": g.tensors[node.inputs[1]].rows, "in": k, "out": o,
                                                   "row_bias": True}, reuse)
    if node.op == "im2col":
        # the gather is a one-element-per-cycle copy of the whole patch matrix (the cls copy's cost model)
        return est.LayerSpec(node.name, "cls", {"c": t_out.nbytes}, reuse)
    if node.op == "patch_embed":
        c, h, w = g.tensors[node.inputs[0]].shape
        return est.LayerSpec(node.name, "patch_embed",
                             dict(c=c, h=h, w=w, p=node.attrs["patch"], out=q["w"].shape[0], row_bias=True), reuse)
    if node.op == "layernorm":
        return est.LayerSpec(node.name, "layernorm", {"rows": rows, "c": t_out.channels}, reuse)
    if node.op in ("attention", "attention_split"):
        n, dh = _attn_dims(node, g)
        return est.LayerSpec(node.name, "attention", dict(tokens=n, heads=node.attrs["heads"], dh=dh,
                                                         kv_copy=not chained), reuse)
    if node.op in ("attn_scores", "attn_av"):
        n, dh = _attn_dims(node, g)
        return est.LayerSpec(node.name, node.op, dict(tokens=n, heads=node.attrs["heads"], dh=dh), reuse)
    if node.op == "softmax":
        return est.LayerSpec(node.name, "softmax", {"rows": rows, "len": t_out.channels}, reuse)
    if node.op in ("add", "activation"):
        dims = {"n": t_out.channels, "rows": rows} if chained else {"n": t_out.nbytes}
        return est.LayerSpec(node.name, "add" if node.op == "add" else "lut", dims, reuse)
    if node.op == "select_token":
        return est.LayerSpec(node.name, "cls", {"c": t_out.channels}, reuse)
    if node.op == "mean_tokens":
        x = g.tensors[node.inputs[0]]
        return est.LayerSpec(node.name, "mean", {"tokens": x.rows - node.attrs.get("first", 0), "c": x.channels}, reuse)
    return None


def _check_ops(schedule):
    for st in schedule.steps:
        for n in st.nodes:
            if n.op in SUPPORTED_OPS:
                continue
            why = "no template exists for it"
            raise EdgevizError(f"the HLS backend has no template for op '{n.op}' ({n.name}): {why}")


def reuse_for(schedule, reuse) -> dict[str, int]:
    """Per-node reuse factors from an int (every node) or a dict {node name or op: factor}, clipped
    to each node's operation count."""
    g = schedule.graph
    out = {}
    for st in schedule.steps:
        for n in st.nodes:
            if isinstance(reuse, dict):
                r = reuse.get(n.name, reuse.get(n.op, 1))
            else:
                r = reuse
            r = max(1, min(int(r), node_total(n, g, st.chained)))
            out[n.name] = _port_limited(n, g, st.chained, r)
    return out


def _attn_dims(n, g) -> tuple[int, int]:
    """(tokens, head dim) of an attention node: from qkv [N, 3E], or after the qkv split from kv [N, 2E]."""
    if n.op == "attention_split":
        ntok, two_e = g.tensors[n.inputs[1]].shape
        return ntok, two_e // 2 // n.attrs["heads"]
    if n.op in ("attn_scores", "attn_av"):
        return n.attrs["tokens"], n.attrs["embed"] // n.attrs["heads"]
    ntok, three_e = g.tensors[n.inputs[0]].shape
    return ntok, three_e // 3 // n.attrs["heads"]


def _kv_input(n) -> str:
    """The token buffer a fused attention row streams K and V from."""
    return n.inputs[1] if n.op in ("attention_split", "attn_av") else n.inputs[0]


def _port_limited(n, g, chained: bool, r: int) -> int:
    """Reuse adjusted so that a node streaming a token buffer (an on-chip bank) never needs more bytes
    per cycle than that bank delivers:
    - add / LUT read and write bank rows: one element per cycle (dual port);
    - attention rows (fused, after the qkv split, or the unfused scores / p.v steps) read K and V from
      the qkv (or kv) bank: LANES is cut to a power of two that divides dh, and the bank is split cyclic
      by LANES (see bank_partitions), so the LANES bytes of one cycle (one key row, consecutive channels)
      always sit in distinct partitions, or in one word of a reshaped bank."""
    if n.op in ("linear", "patch_embed"):
        o, k = n.qattrs["w"].shape
        lanes = math.ceil(o * k / r)
        if lanes < k and k % lanes:
            # the row-serial MAC schedule needs LANES | IN: take the largest divisor below
            lanes = max(d for d in range(1, lanes + 1) if k % d == 0)
            return o * k // lanes
        return r
    if n.op in ("add", "activation"):
        # one element a cycle: a bank's two ports serve one read and one write (unfused too)
        return node_total(n, g, chained)
    if n.op in ATTENTION_OPS and (chained or n.op != "attention"):
        ntok, dh = _attn_dims(n, g)
        total = ntok * dh
        want = math.ceil(total / r)
        lanes = 1
        while lanes * 2 <= want and dh % (lanes * 2) == 0:
            lanes *= 2
        return total // lanes
    return r


def bank_partitions(schedule, banks: list[Bank], reuse: dict[str, int]) -> None:
    """Set each bank's cyclic partition factor: the lanes of the fused attention rows that read it."""
    where = {t: k for k in banks for b in k.buffers for t in b.tensors}
    for k in banks:
        k.partition, k.reshape = 1, False
    g = schedule.graph
    for st in schedule.steps:
        for n in st.nodes:
            if n.op in ATTENTION_OPS and (st.chained or n.op != "attention"):
                ntok, dh = _attn_dims(n, g)
                lanes = math.ceil(ntok * dh / reuse[n.name])
                bank = where[_kv_input(n)]
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


def choose_reuse(schedule, banks, board) -> tuple[int, dict[str, int], est.Estimate]:
    """The smallest uniform reuse factor whose estimate fits the board: (factor, per node, estimate)."""
    e = None
    for r in CANDIDATE_REUSE:
        rf = reuse_for(schedule, r)
        e = schedule_estimate(schedule, banks, rf, board, check=False)
        if e.fits:
            return r, rf, e
    e.check()
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ code

class _Emitter:
    def __init__(self, schedule, where: dict[str, Bank], reuse: dict[str, int], consts: Consts):
        self.s, self.g, self.where, self.reuse, self.c = schedule, schedule.graph, where, reuse, consts

    def base(self, t: str) -> str:
        return self.where[t].name

    def node(self, n, ins: list[str], out: str, rows: int, chained: bool) -> list[str]:
        g, q, c, r = self.g, n.qattrs, self.c, self.reuse[n.name]
        t_out = g.tensors[n.outputs[0]]
        if n.op == "linear":
            o, k = q["w"].shape
            lut = c.add(n, "lut", q["lut"], np.int8) if "lut" in q else "ev_no_lut"
            return [f"ev_linear<{rows}, {k}, {o}, {r}, {'true' if 'lut' in q else 'false'}, false>("
                    f"{ins[0]}, {out}, {c.add(n, 'w', q['w'], np.int8)}, {c.add(n, 'bias', q['bias'], np.int32)}, "
                    f"{c.add(n, 'mult', q['mult'], np.int32)}, {c.add(n, 'shift', q['shift'], np.int8)}, {lut});"]
        if n.op == "layernorm":
            ch = t_out.channels
            arrays = {k: c.add(n, k, q[k], np.int32 if k.startswith("g") else np.int64)
                      for k in ("g", "b", "g_prefix", "b_prefix") if k in q}

            def call(prefix, nrows, skip):
                gk, bk = ("g_prefix", "b_prefix") if prefix and "g_prefix" in q else ("g", "b")
                eps = q["eps_prefix"] if prefix else q["eps"]
                return (f"ev_layernorm<{nrows}, {ch}, {r}>({_rows_at(ins[0], skip, ch)}, {_rows_at(out, skip, ch)}, "
                        f"{arrays[gk]}, {arrays[bk]}, {int(eps)}LL);")
            return _prefix_split(q.get("prefix_rows", 0), rows, chained, call)
        if n.op == "activation":
            return [f"ev_lut<{rows * t_out.channels}, {r}>({ins[0]}, {out}, {c.add(n, 'lut', q['lut'], np.int8)});"]
        if n.op == "add":
            ch = t_out.channels

            def call(prefix, nrows, skip):
                ma, mb, sh = q["prefix"][1:] if prefix else (q["ma"], q["mb"], q["shift"])
                a, b, y = (_rows_at(p, skip, ch) for p in (ins[0], ins[1], out))
                return f"ev_add<{nrows * ch}, {r}>({a}, {b}, {y}, {ma}, {mb}, {sh});"
            return _prefix_split(q["prefix"][0] if "prefix" in q else 0, rows, chained, call)
        if n.op == "attention":
            ntok, three_e = g.tensors[n.inputs[0]].shape
            h = n.attrs["heads"]
            dh = three_e // 3 // h
            lut = c.add(n, "exp_lut", q["exp_lut"], np.uint16)
            args = f"{q['m_qk']}, {q['s_qk']}, {lut}, {q['m_av']}, {q['s_av']}"
            if chained:
                return [f"ev_attention_row<{ntok}, {h}, {dh}, {r}>({ins[0]}, r, {out}, {args});"]
            return [f"ev_attention<{ntok}, {h}, {dh}, {r}>({ins[0]}, {out}, {args});"]
        if n.op == "attn_scores":
            ntok, dh = _attn_dims(n, g)
            return [f"ev_attn_scores<{ntok}, {n.attrs['heads']}, {dh}, {r}>({ins[0]}, {out}, {n.attrs['m_qk']}, "
                    f"{n.attrs['s_qk']});"]
        if n.op == "softmax":
            lut = c.add(n, "exp_lut", n.attrs["exp_lut"], np.uint16)
            return [f"ev_softmax<{rows}, {t_out.channels}, {r}>({ins[0]}, {out}, {lut});"]
        if n.op == "attn_av":
            ntok, dh = _attn_dims(n, g)
            return [f"ev_attn_av<{ntok}, {n.attrs['heads']}, {dh}, {r}>({ins[0]}, {ins[1]}, {out}, "
                    f"{n.attrs['m_av']}, {n.attrs['s_av']});"]
        if n.op == "attention_split":
            # qkv split: the query row comes from the chain, K and V of every token from the kv buffer
            ntok, dh = _attn_dims(n, g)
            lut = c.add(n, "exp_lut", q["exp_lut"], np.uint16)
            return [f"ev_attention_kv_row<{ntok}, {n.attrs['heads']}, {dh}, {r}>({ins[0]}, {ins[1]}, {out}, "
                    f"{q['m_qk']}, {q['s_qk']}, {lut}, {q['m_av']}, {q['s_av']});"]
        if n.op == "select_token":
            ch = t_out.channels
            return [f"ev_copy_row<{ch}>({ins[0]} + {n.attrs['index'] * ch}, {out});"]
        if n.op == "mean_tokens":
            x = g.tensors[n.inputs[0]]
            first = n.attrs.get("first", 0)     # prefix tokens left out of the pool
            return [f"ev_mean_tokens<{x.rows - first}, {x.channels}, {r}>({ins[0]} + {first * x.channels}, {out}, {q['m']}, {q['s']});"]
        if n.op == "im2col":
            ch, hh, ww = g.tensors[n.inputs[0]].shape
            p = n.attrs["patch"]
            k = ch * p * p
            gw = ww // p
            # cols[pt][(ci*p + ky)*p + kx] = img[ci][py*p + ky][px*p + kx], one image row segment at a time
            return [f"for (int pt = 0; pt < {(hh // p) * gw}; pt++) {{",
                    f"    const int py = pt / {gw}, px = pt % {gw};",
                    f"    for (int ci = 0; ci < {ch}; ci++) for (int ky = 0; ky < {p}; ky++)",
                    f"        ev_copy_row<{p}>({ins[0]} + (ci * {hh} + py * {p} + ky) * {ww} + px * {p}, "
                    f"{out} + pt * {k} + (ci * {p} + ky) * {p});",
                    "}"]
        if n.op == "patch_embed":
            ch, hh, ww = g.tensors[n.inputs[0]].shape
            e = q["w"].shape[0]
            lines, row0 = [], 0
            if "prefix" in q:         # cls / distillation / register tokens: constant rows
                prefix = c.add(n, 'prefix', q['prefix'], np.int8)
                row0 = q["prefix"].shape[0]
                lines += [f"ev_set_row<{e}>({out}, {i}, {prefix} + {i * e});" for i in range(row0)]
            if len(n.inputs) > 1:
                # undecomposed: the im2col buffer [patches, C*p*p] is materialised; one linear embeds it
                patches, k = g.tensors[n.inputs[1]].shape
                lines.append(f"ev_linear<{patches}, {k}, {e}, {r}, false, true>({ins[1]}, {out} + {row0 * e}, "
                             f"{c.add(n, 'w', q['w'], np.int8)}, {c.add(n, 'bias', q['bias'], np.int32)}, "
                             f"{c.add(n, 'mult', q['mult'], np.int32)}, {c.add(n, 'shift', q['shift'], np.int8)}, "
                             "ev_no_lut);")
                return lines
            lines.append(f"ev_patch_embed<{ch}, {hh}, {ww}, {n.attrs['patch']}, {e}, {r}, true, {row0}>("
                         f"{ins[0]}, {out}, {c.add(n, 'w', q['w'], np.int8)}, {c.add(n, 'bias', q['bias'], np.int32)}, "
                         f"{c.add(n, 'mult', q['mult'], np.int32)}, {c.add(n, 'shift', q['shift'], np.int8)});")
            return lines
        raise EdgevizError(f"the HLS backend has no template for op '{n.op}' ({n.name})")

    def step(self, k: int, st) -> tuple[list[str], list[str]]:
        """(statements, row-scratch declarations) for one schedule step."""
        from edgeviz.ops import OPS

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


def _rows_at(ptr: str, skip: int, channels: int) -> str:
    return ptr if not skip else f"{ptr} + {skip * channels}"


def _prefix_split(k: int, rows: int, chained: bool, call) -> list[str]:
    """Statements for an op whose first k token rows (prefix tokens at scales of their own) take other
    parameters: per row in a chain (row index r), else two calls over the two row ranges."""
    if not k:
        return [call(False, rows, 0)]
    if chained:
        return [f"if (r < {k}) {call(True, rows, 0)}", f"else {call(False, rows, 0)}"]
    pre = min(k, rows)
    return [call(True, pre, 0)] + ([call(False, rows - pre, pre)] if rows > pre else [])


# ------------------------------------------------------------------ project

@dataclass
class HlsProject:
    path: Path
    board: est.Board
    estimate: est.Estimate
    reuse: dict[str, int]
    banks: list[Bank]
    input_bytes: int
    output_bytes: int
    vectors: int


def _run_int8_scheduled(g, x) -> np.ndarray:
    """run_int8 over a scheduled graph (qkv split, unfused attention steps): every op kind has its own
    int8 reference."""
    from edgeviz.ops import OPS

    env = {g.inputs[0]: np.asarray(x, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape)}
    for n in g.nodes:
        y = OPS[n.op].run_int8(n, [env[i] for i in n.inputs])
        env[n.outputs[0]] = np.asarray(y, dtype=np.int8).reshape(g.tensors[n.outputs[0]].shape)
    return env[g.outputs[0]]


def generate(schedule, plan, out_dir, board: str | est.Board = "zcu102", reuse: int | dict | str = "auto",
             tb_inputs=None, n_vectors: int = 4, check: bool = True, seed: int = 0, ref_graph=None) -> HlsProject:
    """Write the HLS project for a scheduled (edgeviz.passes.schedule) and planned (edgeviz.planner.plan)
    quantized graph. reuse: "auto" (smallest uniform factor that fits the board), an int, or
    {node name or op: factor}. tb_inputs: int8 images [B, C, H, W] for the testbench (default: n_vectors
    random images). check: EdgevizError when the estimate exceeds the board. ref_graph: the quantized graph
    before scheduling, whose edgeviz.quantize.run_int8 gives the testbench reference (default: the
    scheduled graph, evaluated op by op)."""
    from edgeviz.quantize import run_int8

    if isinstance(board, str):
        board = est.load_board(board)
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


def generate_from_graph(qgraph, out_dir, board: str | est.Board = "zcu102", reuse: int | dict | str = "auto",
                        switches=None, **kw) -> HlsProject:
    """Schedule (switches, default the FPGA default: see fpga_switches) and plan a quantized graph, then
    write its HLS project."""
    from edgeviz.passes import schedule as make_schedule
    from edgeviz.planner import plan as make_plan

    sw = fpga_switches(switches)
    check_switches(sw)
    s = make_schedule(qgraph, sw)
    return generate(s, make_plan(s), out_dir, board, reuse, ref_graph=qgraph, **kw)


def generate_from_model(model, out_dir, board: str | est.Board = "zcu102", calib=None,
                        reuse: int | dict | str = "auto", n_vectors: int = 4, seed: int = 0,
                        switches=None) -> HlsProject:
    """`edgeviz build --target <fpga board>`: an edgeviz ViT (module or model file) -> HLS project.

    calib: float images [B, C, H, W] for calibration; the first n_vectors of them, quantized, become the
    testbench vectors. None: random normal images (scales then mean nothing: smoke tests only)."""
    import torch

    from edgeviz.compiler import graph_from_vit
    from edgeviz.model import load_model
    from edgeviz.quantize import quantize, quantize_image

    if not isinstance(model, torch.nn.Module):
        model = load_model(Path(model))
    cfg = model.cfg
    if calib is None:
        calib = np.random.default_rng(seed).normal(size=(max(n_vectors, 8), cfg.in_chans, cfg.img_size, cfg.img_size))
    calib = np.asarray(calib, dtype=np.float64)
    g = graph_from_vit(model.eval())
    quantize(g, calib)
    xs = np.stack([quantize_image(g, x) for x in calib[:n_vectors]])
    return generate_from_graph(g, out_dir, board, reuse, switches=switches, tb_inputs=xs, seed=seed)
