"""edgeviz's own FPGA resource and latency estimator for designs built from the hls/ev_*.h templates.

All figures here are edgeviz's estimates from layer shapes and reuse factors, following the loop
structure of the templates; they are not figures from Vitis HLS, Vivado or any vendor tool, and every
report says so. No vendor tool runs on these machines.

The model
- Parallelism: a layer with T multiply-accumulates per token row (linear: IN*OUT) and reuse factor R
  issues LANES = ceil(T / R) MACs per cycle over STEPS = ceil(T / LANES) pipelined cycles (II = 1).
  A linear with LANES >= IN keeps its accumulators and input row in registers (output-parallel); with
  LANES < IN dividing IN it runs row-serial (hls/ev_linear.h, ev_mac_cfg): accumulators and input row
  sit in small memories instead of flip-flops.
- DSP: one DSP per int8 MAC lane on 7-series (DSP48E1), two per DSP on UltraScale+ (DSP48E2 27x18: two
  int8 products that share one operand are packed into one multiplier); the board file's
  `int8_macs_per_dsp` says which. A 32x32-bit multiply (requantisation acc*m, LayerNorm d*inv and n*g)
  costs 4 DSPs; the residual add's 8x23-bit products one each. Divisions and isqrt are built from LUTs.
- BRAM18K: each array is width x depth bits. Weight ROMs are reshaped cyclic by LANES (one word of
  LANES int8 weights per cycle): width 8*LANES, depth STEPS. A memory takes the cheapest 18 Kbit
  aspect ratio (16Kx1, 8Kx2, 4Kx4, 2Kx9, 1Kx18, 512x36), blocks = ceil(width/w) * ceil(depth/d).
  Arrays of at most 1024 bits or of depth below 16 go to LUTRAM / registers instead (one LUT6 per 64 bits
  of ROM), as HLS does with small memories. Activation buffers (from the planner) are int8, one element
  per cycle per port: ceil(bytes / 2048) blocks each (2Kx9). A buffer that a fused attention reads LANES
  bytes a cycle from is either partitioned cyclic (LANES memories of bytes/LANES, each rounded) or
  reshaped cyclic (one memory of 8*LANES-bit words, depth bytes/LANES), whichever takes fewer blocks.
- LUT / FF: approximate, per unit: MAC lane 24 LUT / 40 FF; requantiser 150 / 250; 32-bit pipelined
  divider 1100 / 2100; isqrt 250 / 200; element-wise lane 60 / 60; per layer control 300 / 300; plus the
  register rows (8 FF per int8 element, 32 per int32 accumulator) and LUTRAM-mapped memories.
- Latency: the templates' phases run one after another inside a layer; a pipelined loop of trip count n
  costs n + depth cycles. Layers run one after another in the top function (they share planner buffers),
  so the model's initiation interval equals its latency; `dataflow_interval_cycles` (the slowest layer) is
  what a DATAFLOW top with private buffers could reach.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

from edgeviz.errors import EdgevizError
from edgeviz.targets import Target, load_fpga_target

DISCLAIMER = ("These are edgeviz's own estimates from layer shapes and reuse factors, "
              "not Vitis HLS / Vivado (vendor tool) figures.")

BRAM18K_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
LUTRAM_MAX_BITS = 1024
LUTRAM_MAX_DEPTH = 16

# per-unit costs (LUT, FF)
MAC_LANE = (24, 40)
REQUANT = (150, 250)
DIVIDER = (1100, 2100)
ISQRT = (250, 200)
ELEM_LANE = (60, 60)
CONTROL = (300, 300)
DSP_MUL32 = 4
# pipeline depths (cycles) of the templates' loops
D_LOOP = 3
D_REQUANT = 7
D_DIV = 36
D_ISQRT = 32

RESOURCES = ("bram18k", "dsp", "lut", "ff")


# A board is a Target of kind "fpga" (edgeviz.targets: part, clock_hz, bram18k, dsp, lut, ff,
# int8_macs_per_dsp), read once from targets/<name>.toml.

# ------------------------------------------------------------------ layer specs

@dataclass
class LayerSpec:
    """One template instance; `op` names the template's cost model (TEMPLATE_COSTS), chosen by the op
    module's hls_spec. dims by template:
    linear       rows, in, out, [lut], [row_bias]
    patch_embed  c, h, w, p, out, [row_bias]
    layernorm    rows, c
    softmax      rows, len
    attention    tokens, heads, dh, [kv_copy]
    attn_scores  tokens, heads, dh     (unfused: q k^T for every head and query row)
    attn_av      tokens, heads, dh     (unfused: p v)
    any op       [shared_rom]: a second call site of a node already counted (its constant ROMs once)
    add, mul     n, [rows]     n elements per call, rows calls (a fused chain calls once per token row)
    lut          n, [rows]
    mean         tokens, c
    copy         c             c bytes copied one a cycle (a token row, an im2col gather)
    """
    name: str
    op: str
    dims: dict
    reuse: int = 1


@dataclass
class LayerCost:
    name: str
    op: str
    reuse: int
    macs: int               # multiply-accumulates per inference
    lanes: int              # MACs (or elements) in flight per cycle
    dsp: int
    bram18k: int
    lut: int
    ff: int
    latency_cycles: int
    ii: int = 1             # initiation interval of the layer's inner pipelined loops


@dataclass
class Estimate:
    board: Target
    layers: list[LayerCost]
    buffers: list[tuple[str, int, int]]   # (name, bytes, bram18k)
    bram18k: int
    dsp: int
    lut: int
    ff: int
    latency_cycles: int
    interval_cycles: int
    dataflow_interval_cycles: int
    notes: list[str] = field(default_factory=list)

    @property
    def latency_s(self) -> float:
        return self.latency_cycles / self.board.clock_hz

    @property
    def over(self) -> list[tuple[str, int, int]]:
        """(resource, used, available) for every resource the design exceeds."""
        return [(r, getattr(self, r), getattr(self.board, r)) for r in RESOURCES
                if getattr(self, r) > getattr(self.board, r)]

    @property
    def fits(self) -> bool:
        return not self.over

    def why(self) -> str:
        """'' when the design fits, else one line naming each exceeded resource."""
        if not self.over:
            return ""
        parts = ", ".join(f"{r.upper()} {u} used > {a} available" for r, u, a in self.over)
        return (f"{parts} on {self.board.part} (edgeviz estimate, not a vendor tool figure); raise the reuse "
                f"factor or choose a larger board")

    def check(self) -> "Estimate":
        """EdgevizError naming each exceeded resource with used and available counts."""
        if self.over:
            raise EdgevizError(f"model does not fit {self.board.name}: {self.why()}")
        return self

    def to_dict(self) -> dict:
        return {
            "source": "edgeviz estimate (not a vendor tool figure)",
            "board": self.board.name, "part": self.board.part, "clock_hz": self.board.clock_hz,
            "totals": {r: getattr(self, r) for r in RESOURCES},
            "available": {r: getattr(self.board, r) for r in RESOURCES},
            "latency_cycles": self.latency_cycles, "latency_s": self.latency_s,
            "interval_cycles": self.interval_cycles,
            "dataflow_interval_cycles": self.dataflow_interval_cycles,
            "fits": self.fits,
            "layers": [asdict(c) for c in self.layers],
            "buffers": [{"name": n, "bytes": b, "bram18k": k} for n, b, k in self.buffers],
            "notes": list(self.notes) + [DISCLAIMER],
        }

    def report(self) -> str:
        b = self.board
        lines = [f"HLS estimate for {b.name} ({b.part}) at {b.clock_hz / 1e6:g} MHz",
                 DISCLAIMER, "",
                 f"{'layer':28s} {'op':11s} {'reuse':>6s} {'lanes':>6s} {'DSP':>6s} {'BRAM18K':>8s} "
                 f"{'LUT':>8s} {'FF':>8s} {'cycles':>10s}"]
        for c in self.layers:
            lines.append(f"{c.name:28s} {c.op:11s} {c.reuse:6d} {c.lanes:6d} {c.dsp:6d} {c.bram18k:8d} "
                         f"{c.lut:8d} {c.ff:8d} {c.latency_cycles:10d}")
        for n, by, k in self.buffers:
            lines.append(f"{'buffer ' + n:28s} {'':11s} {'':6s} {'':6s} {'':6s} {k:8d} {'':8s} {'':8s} "
                         f"{'':10s}  ({by} B)")
        lines.append("")
        for r in RESOURCES:
            used, avail = getattr(self, r), getattr(b, r)
            lines.append(f"{r.upper():8s} {used:9d} / {avail:9d}  ({100.0 * used / avail:5.1f}%)"
                         + ("  OVER" if used > avail else ""))
        lines.append(f"latency  {self.latency_cycles} cycles = {self.latency_s * 1e3:.3f} ms; "
                     f"interval {self.interval_cycles} cycles (layers run in sequence); "
                     f"a DATAFLOW top could reach {self.dataflow_interval_cycles}")
        lines += self.notes
        return "\n".join(lines)


# ------------------------------------------------------------------ memories

def bram18k_blocks(width_bits: int, depth: int) -> int:
    """18 Kbit blocks for a width x depth memory in the cheapest aspect ratio."""
    if width_bits <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for w, d in BRAM18K_SHAPES)


def memory_cost(width_bits: int, depth: int, copies: int = 1) -> tuple[int, int]:
    """(BRAM18K, LUT) for a ROM/RAM: small ones go to LUTRAM (one LUT6 per 64 bits)."""
    if width_bits * depth <= LUTRAM_MAX_BITS or depth < LUTRAM_MAX_DEPTH:
        return 0, copies * width_bits * math.ceil(depth / 64)
    return copies * bram18k_blocks(width_bits, depth), 0


def buffer_bram18k(nbytes: int, partitions: int = 1, reshape: bool = False) -> int:
    """An int8 activation buffer, optionally split cyclic into `partitions` lanes: partitioned (that many
    8-bit memories) or reshaped (one memory of 8*partitions-bit words)."""
    if nbytes <= 0:
        return 0
    per = math.ceil(nbytes / partitions)
    if reshape and partitions > 1:
        return memory_cost(8 * partitions, per)[0]
    bram, _ = memory_cost(8, per)
    return partitions * bram if bram else 0


def buffer_layout(nbytes: int, lanes: int) -> tuple[bool, int]:
    """How a buffer read `lanes` consecutive (lane-aligned) bytes a cycle is best split: (reshape, BRAM18K).
    Cyclic partition (lanes 8-bit memories, small ones in LUTRAM) or cyclic reshape (one memory of
    8*lanes-bit words, the aspect ratio that fits best); the fewer BRAM18K wins, partition on a tie."""
    part = buffer_bram18k(nbytes, lanes)
    if lanes <= 1:
        return False, part
    wide = buffer_bram18k(nbytes, lanes, reshape=True)
    return (True, wide) if wide < part else (False, part)


# ------------------------------------------------------------------ per layer

def _lanes(total: int, reuse: int) -> tuple[int, int]:
    reuse = max(1, int(reuse))
    lanes = max(1, math.ceil(total / reuse))
    return lanes, math.ceil(total / lanes)


def _tree(lanes: int) -> int:
    return max(1, math.ceil(math.log2(lanes))) if lanes > 1 else 0


class _Acc:
    """Accumulates one layer's resources."""

    def __init__(self, board: Target, shared_rom: bool = False):
        self.board, self.dsp, self.bram, self.lut, self.ff = board, 0, 0, CONTROL[0], CONTROL[1]
        self.shared_rom = shared_rom

    def mac_array(self, lanes: int, in_regs: int, accs: int):
        self.dsp += math.ceil(lanes / self.board.int8_macs_per_dsp)
        self.lut += lanes * MAC_LANE[0]
        self.ff += lanes * MAC_LANE[1] + 8 * in_regs + 32 * accs

    def unit(self, cost, n=1, dsp=0):
        self.lut += n * cost[0]
        self.ff += n * cost[1]
        self.dsp += n * dsp

    def mem(self, width: int, depth: int, copies: int = 1):
        b, l = memory_cost(width, depth, copies)
        self.bram += b
        self.lut += l

    def rom(self, width: int, depth: int, copies: int = 1):
        """A constant array (weights, biases, requantisation parameters, tables); not counted again for
        a second call site of the same node (the qkv split's per-row copies read the same ROM)."""
        if not self.shared_rom:
            self.mem(width, depth, copies)

    def weights(self, total: int, lanes: int, steps: int):
        self.rom(8 * lanes, steps)


def _linear_row(a: _Acc, k: int, o: int, reuse: int, bias_rows: int, use_lut: bool) -> tuple[int, int]:
    """One linear's hardware; returns (lanes, cycles per row)."""
    lanes, steps = _lanes(k * o, reuse)
    if lanes < k and k % lanes == 0:
        # row-serial schedule (ev_mac_cfg): scalar running sum, accumulators and input row in memories
        a.mac_array(lanes, 0, 0)
        a.mem(32, o)
        a.mem(8 * lanes, k // lanes)
        a.unit((40, 40))
    else:
        a.mac_array(lanes, k, o)
    a.weights(k * o, lanes, steps)
    a.rom(32, o * bias_rows)        # bias
    a.rom(32, o)                    # multipliers
    a.rom(8, o)                     # shifts
    if use_lut:
        a.rom(8, 256)
    a.unit(REQUANT, dsp=DSP_MUL32)
    return lanes, (k + D_LOOP) + (steps + D_LOOP + _tree(lanes)) + (o + D_REQUANT)


def _softmax_row(a: _Acc, length: int, reuse: int) -> tuple[int, int]:
    lanes, steps = _lanes(length, reuse)
    a.mem(16, 256, copies=math.ceil(lanes / 2) + 1)   # exp LUT: dual-port copies for the lanes + divide
    a.unit(DIVIDER)
    a.ff += 8 * length
    return lanes, (length + D_LOOP) + (steps + D_LOOP + _tree(lanes)) + (length + D_DIV)


# Each template's cost model: (accumulator, dims, reuse) -> (lanes, MACs, cycles); resources go into the
# accumulator. Keyed by the template kind an op's hls_spec names.
TEMPLATE_COSTS: dict[str, Callable[[_Acc, dict, int], tuple[int, int, int]]] = {}


def template_cost(kind: str):
    def register(fn):
        TEMPLATE_COSTS[kind] = fn
        return fn
    return register


@template_cost("linear")
def _linear_cost(a: _Acc, d: dict, r: int):
    rows = int(d.get("rows", 1))
    k, o = int(d["in"]), int(d["out"])
    lanes, per_row = _linear_row(a, k, o, r, rows if d.get("row_bias") else 1, bool(d.get("lut")))
    return lanes, rows * k * o, rows * per_row


@template_cost("patch_embed")
def _patch_embed_cost(a: _Acc, d: dict, r: int):
    c, h, w, p, o = (int(d[x]) for x in ("c", "h", "w", "p", "out"))
    patches = (h // p) * (w // p)
    lanes, per_row = _linear_row(a, c * p * p, o, r, patches if d.get("row_bias") else 1, False)
    return lanes, patches * c * p * p * o, patches * per_row


@template_cost("layernorm")
def _layernorm_cost(a: _Acc, d: dict, r: int):
    rows, c = int(d["rows"]), int(d["c"])
    lanes, steps = _lanes(c, r)
    dbits = math.ceil(math.log2(max(2, c))) + 9
    a.dsp += lanes * (1 if dbits <= 18 else 2)           # d*d
    a.unit(REQUANT, n=2, dsp=DSP_MUL32)                    # d*inv and n*g
    a.unit(ISQRT)
    a.unit(DIVIDER)
    a.unit(ELEM_LANE, n=lanes)
    a.ff += 8 * c
    a.rom(32, c)        # gamma
    a.rom(64, c)        # beta
    cycles = rows * ((c + D_LOOP) + (steps + D_LOOP + _tree(lanes)) + D_ISQRT + D_DIV + (c + D_REQUANT + 3))
    return lanes, rows * 3 * c, cycles


@template_cost("softmax")
def _softmax_cost(a: _Acc, d: dict, r: int):
    rows, length = int(d["rows"]), int(d["len"])
    lanes, per_row = _softmax_row(a, length, r)
    return lanes, 0, rows * (per_row + 2 * (length + D_LOOP))


@template_cost("attention")
def _attention_cost(a: _Acc, d: dict, r: int):
    n, heads, dh = int(d["tokens"]), int(d["heads"]), int(d["dh"])
    lanes, steps = _lanes(n * dh, r)
    kv_copy = d.get("kv_copy", True)   # ev_attention copies K, V per head; ev_attention_row reads the buffer
    a.mac_array(lanes, dh, n)      # q . K
    a.mac_array(lanes, 0, dh)      # p . V
    if kv_copy:
        a.mem(8 * lanes, steps, copies=2)    # K and V of one head, reshaped by lanes
    a.unit(REQUANT, n=2, dsp=DSP_MUL32)
    _, sm = _softmax_row(a, n, r)
    per_query = (dh + D_LOOP) + 2 * (steps + D_LOOP + _tree(lanes)) + (n + D_REQUANT) + sm + (dh + D_REQUANT)
    return lanes, heads * n * n * dh * 2, heads * ((n * dh + D_LOOP if kv_copy else 0) + n * per_query)


def _attention_product(a: _Acc, d: dict, r: int, scores: bool):
    """The unfused attention steps (ev_attn_scores / ev_attn_av): one product per head and query row."""
    n, heads, dh = int(d["tokens"]), int(d["heads"]), int(d["dh"])
    lanes, steps = _lanes(n * dh, r)
    if scores:
        a.mac_array(lanes, dh, n)
        load, store = dh, n
    else:
        a.mac_array(lanes, 0, dh)
        a.ff += 8 * n                  # the probability row
        load, store = n, dh
    a.unit(REQUANT, dsp=DSP_MUL32)
    return lanes, heads * n * n * dh, heads * n * ((load + D_LOOP) + (steps + D_LOOP + _tree(lanes)) + (store + D_REQUANT))


TEMPLATE_COSTS["attn_scores"] = lambda a, d, r: _attention_product(a, d, r, scores=True)
TEMPLATE_COSTS["attn_av"] = lambda a, d, r: _attention_product(a, d, r, scores=False)


@template_cost("add")
def _add_cost(a: _Acc, d: dict, r: int):
    n, calls = int(d["n"]), int(d.get("rows", 1))
    lanes, steps = _lanes(n, r)
    a.unit(ELEM_LANE, n=lanes, dsp=2)
    return lanes, 2 * n * calls, calls * (steps + D_REQUANT)


@template_cost("mul")
def _mul_cost(a: _Acc, d: dict, r: int):
    """ev_mul: an 8x8 product and a requantisation (a 32x32 multiply) per lane."""
    n, calls = int(d["n"]), int(d.get("rows", 1))
    lanes, steps = _lanes(n, r)
    a.unit(ELEM_LANE, n=lanes, dsp=1)
    a.unit(REQUANT, n=lanes, dsp=DSP_MUL32)
    return lanes, 0, calls * (steps + D_REQUANT)


@template_cost("lut")
def _lut_cost(a: _Acc, d: dict, r: int):
    n, calls = int(d["n"]), int(d.get("rows", 1))
    lanes, steps = _lanes(n, r)
    a.mem(8, 256, copies=math.ceil(lanes / 2))
    a.unit((10, 16), n=lanes)
    return lanes, 0, calls * (steps + D_LOOP)


@template_cost("mean")
def _mean_cost(a: _Acc, d: dict, r: int):
    n, c = int(d["tokens"]), int(d["c"])
    lanes, steps = _lanes(c, r)
    a.unit(ELEM_LANE, n=lanes)
    a.unit(REQUANT, dsp=DSP_MUL32)
    a.ff += 32 * c
    return lanes, n * c, (c + D_LOOP) + n * (steps + D_LOOP) + (c + D_REQUANT)


@template_cost("copy")
def _copy_cost(a: _Acc, d: dict, r: int):
    a.lut, a.ff = 50, 50
    return 1, 0, int(d["c"]) + D_LOOP


def layer_cost(spec: LayerSpec, board: Target) -> LayerCost:
    r = max(1, int(spec.reuse))
    a = _Acc(board, bool(spec.dims.get("shared_rom")))
    cost = TEMPLATE_COSTS.get(spec.op)
    if cost is None:
        raise EdgevizError(f"the HLS estimator has no model for template '{spec.op}' (layer {spec.name}); "
                           f"known: {', '.join(sorted(TEMPLATE_COSTS))}")
    lanes, macs, cycles = cost(a, spec.dims, r)
    return LayerCost(spec.name, spec.op, r, int(macs), int(lanes), int(a.dsp), int(a.bram), int(a.lut), int(a.ff),
                     int(cycles))


# ------------------------------------------------------------------ totals

def estimate(layers: list[LayerSpec], board: Target | str, buffers=(), check: bool = True) -> Estimate:
    """Per-layer and total resources and latency. buffers: (name, bytes), (name, bytes, lanes) or (name,
    bytes, lanes, reshape) for the activation buffers (planner buffers adapted to BRAM; see
    buffer_bram18k). check: raise EdgevizError when a
    resource is exceeded."""
    if isinstance(board, str):
        board = load_fpga_target(board)
    costs = [layer_cost(s, board) for s in layers]
    bufs = []
    for b in buffers:
        name, nbytes = b[0], int(b[1])
        parts = int(b[2]) if len(b) > 2 else 1
        reshape = bool(b[3]) if len(b) > 3 else False
        bufs.append((name, nbytes, buffer_bram18k(nbytes, parts, reshape)))
    lut_bufs = sum(8 * math.ceil(n / 64) for _, n, k in bufs if k == 0)   # small buffers in LUTRAM
    lat = sum(c.latency_cycles for c in costs)
    est = Estimate(
        board=board, layers=costs, buffers=bufs,
        bram18k=sum(c.bram18k for c in costs) + sum(k for _, _, k in bufs),
        dsp=sum(c.dsp for c in costs),
        lut=sum(c.lut for c in costs) + lut_bufs,
        ff=sum(c.ff for c in costs),
        latency_cycles=lat, interval_cycles=lat,
        dataflow_interval_cycles=max((c.latency_cycles for c in costs), default=0),
        notes=["DSP model: " + ("two int8 MACs packed per DSP48E2" if board.int8_macs_per_dsp == 2
                                else "one int8 MAC per DSP") + "; 4 DSPs per 32x32-bit multiply."],
    )
    return est.check() if check else est
