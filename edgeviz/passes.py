"""Memory passes: they turn the quantized graph into a schedule of steps without changing a bit.

- operator integration (fuse): GELU becomes the linear layer's table epilogue; chains of row-wise
  ops run a block of rows at a time so their intermediates are row blocks; attention takes the block's
  query rows together (one pass over K and V), so no [N, N] score matrix exists; an imported file's
  attention runs 16 query rows at a time where its scores outweigh q and k (ops/tfl_attention.py).
  Off: every op materialises its whole output, attention included ([H*N, N] scores and probs).
- patch-embedding decomposition: the image is embedded patch by patch. Off: an im2col matrix
  [patches, C*p*p] is materialised first.
- token overwriting: a step writes its output rows over an input that dies at that step, when each
  output row is written only after the rows it overwrites were read.
- K/V per head (part of the qkv split): K and V are made one head at a time, and that head's attention
  runs for every query row into its columns of the output before the next head's K and V exist.
Two C-layout passes change no byte of any value either: rank padding (zero weights up to the MCU
kernel's stride) and V^T (attention's V stored transposed).

The rewrites around a node belong to its op (edgeviz.ops.base.Op: fold_epilogue, split_qkv,
split_kv_heads, unfuse, pad_rank, transpose_v, materialise_input); this module decides which run, then
forms the steps.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .ir import Graph, Node
from .ops import OPS
from .ops.attention import QUERY_BLOCK
from .ops.tfl_attention import stream_scores

# A chain advances this many rows at a time: the intermediates are CHAIN_BLOCK rows each, which
# costs a few hundred bytes and lets the linear kernel reuse each widened weight word across rows.
# It is the attention op's query block: attention inside a chain takes the chain's rows.
CHAIN_BLOCK = QUERY_BLOCK


@dataclass(frozen=True)
class Switches:
    fuse: bool = True
    patch_decompose: bool = True
    token_overwrite: bool = True
    # part of operator integration: keep only K and V for all tokens, compute each query row on the
    # fly (its LayerNorm recomputed per row), so [N, 3E] qkv never exists. Off for the FPGA backend.
    split_qkv: bool = True
    # round low-rank ranks up to the MCU linear kernel's stride with zero weights (Linear.pad_rank).
    # Off for the FPGA backend, whose templates take any width.
    pad_rank: bool = True
    # part of the qkv split: make K_h, V_h [N, E/H] one head at a time (their LayerNorm, and the low-rank
    # factor, recomputed per head) and run head h's attention for every query row into its columns of the
    # output (AttentionSplit.split_kv_heads): x + out + 2NE/H live at the attention instead of x + K + V
    # = 3NE, lower for H >= 3, for 12-42% more instructions (bench/bench_kv_heads.py). Off by default:
    # asked for (--kv-per-head), an MCU build tries the schedule without it too and keeps this one only
    # where it plans a smaller arena (McuBackend.candidate_switches). Never on for the FPGA backend.
    kv_per_head: bool = False
    # part of the qkv split, for a low-rank qkv: the query rows read the first factor's output (tokens x
    # rank, kept whole from the K/V step) instead of recomputing their LayerNorm and that factor. On by
    # default; an MCU build tries the recomputation too and keeps whichever plans the smaller arena
    # (McuBackend.candidate_switches), this one on a tie.
    keep_rank: bool = True
    # part of operator integration, for an imported file: its attention (BATCH_MATMUL, tables, SOFTMAX,
    # BATCH_MATMUL) runs a block of query rows at a time, so the [H, N, N] scores never exist whole
    # (ops/tfl_attention.py). Off for the FPGA backend, whose serial templates take them whole.
    stream_scores: bool = True
    # part of operator integration: a chain whose rows leave 1 or 3 over its blocks runs them with its last
    # block (5 of 17 rows, 7 of 19), so the linear kernels take a block of 5 rows where a lone row ran their
    # slowest path (4k + 2 rows would leave 5 + a lone row, no better than 4 + a pair: not merged). The
    # chain's row intermediates hold those rows too (a few hundred bytes). Off by default; an MCU build
    # optimising for time tries it (McuBackend.candidate_switches). Off for the FPGA backend (row by row).
    merge_tail: bool = False
    # C layout, like pad_rank: an imported file's FULLY_CONNECTED / CONV_2D weights also stored pre-widened
    # (16-bit pairs) in flash, which the DSP kernels (M4, M7, M33) read instead of widening them at run time;
    # the other cores' kernels do not read them, so the MCU backend turns this off there (twice the flash
    # for nothing). Off for the FPGA backend (its templates read the int8 weights).
    widen_weights: bool = True

    def label(self) -> str:
        on = [k for k, v in self.__dict__.items() if v]
        return "+".join(on) if on else "none"


@dataclass
class Step:
    nodes: list[Node]                    # one node, or a chain run row by row
    output: str                          # the tensor the step writes
    reads: list[str]                     # materialised tensors the step reads
    row_tensors: list[str] = field(default_factory=list)   # chain intermediates, `block` rows each
    scratch: int = 0                     # bytes: op scratch + row intermediates
    alias: str | None = None             # output overwrites this input (token overwriting)
    block: int = 1                       # rows per chain iteration
    last: int = 0                        # rows of the last iteration when it takes the rows left over
                                         # (Switches.merge_tail), else 0

    @property
    def held_rows(self) -> int:
        """The most rows an iteration holds: the size of each row intermediate."""
        return max(self.block, self.last)

    @property
    def name(self) -> str:
        return "+".join(n.name for n in self.nodes)

    @property
    def chained(self) -> bool:
        return len(self.nodes) > 1


@dataclass
class Schedule:
    graph: Graph
    steps: list[Step]
    switches: Switches
    pad_bytes: int = 0                   # constant bytes the C layout added: Linear.pad_rank's zero weights and
                                         # their requant, pre-widened weights (widen_weights)
    note: str = ""                       # why the switches differ from the ones asked for


def _clone(g: Graph) -> Graph:
    """A copy whose node list and tensors can be rewritten; big arrays are shared, not copied."""
    h = Graph(copy.deepcopy(g.tensors), [], list(g.inputs), list(g.outputs))
    h.nodes = [Node(n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs), dict(n.qattrs)) for n in g.nodes]
    return h


def _each(g: Graph, hook: str, *args) -> int:
    """Call an op's rewrite hook (edgeviz.ops.base.Op) on every node still in the graph, in order;
    the sum of what the hooks return (constant bytes added)."""
    added = 0
    for n in list(g.nodes):
        if any(m is n for m in g.nodes):          # an earlier rewrite may have replaced it
            added += getattr(OPS[n.op], hook)(n, g, *args) or 0
    return added


def _chains(g: Graph, fuse: bool, merge_tail: bool = False) -> list[Step]:
    steps: list[Step] = []
    i = 0
    while i < len(g.nodes):
        chain = [g.nodes[i]]
        if fuse and OPS[g.nodes[i].op].row_producer:
            while i + len(chain) < len(g.nodes):
                nxt, prev_out = g.nodes[i + len(chain)], chain[-1].outputs[0]
                rowwise = [nxt.inputs[k] for k in OPS[nxt.op].rowwise_inputs]
                if (prev_out not in rowwise or len(g.consumers(prev_out)) != 1 or prev_out in g.outputs
                        or OPS[chain[-1].op].fills_columns
                        or g.tensors[nxt.outputs[0]].rows != g.tensors[prev_out].rows):
                    break
                chain.append(nxt)
        inner = {n.outputs[0] for n in chain[:-1]}
        reads = []
        for n in chain:
            reads += [t for t in n.inputs if t not in inner and t not in reads]
        rows = g.tensors[chain[-1].outputs[0]].rows
        block = min(CHAIN_BLOCK, rows) if len(chain) > 1 else 1
        merged = merge_tail and len(chain) > 1 and rows > block and rows % block in (1, 3)
        # an op that fills some columns of its output writes it over the input holding the other columns
        step = Step(chain, chain[-1].outputs[0], reads, sorted(inner), alias=OPS[chain[-1].op].writes_over(chain[-1]),
                    block=block, last=block + rows % block if merged else 0)
        step.scratch = (sum(OPS[n.op].scratch_bytes(n, g) for n in chain)
                        + sum(g.tensors[t].channels * step.held_rows for t in inner))
        steps.append(step)
        i += len(chain)
    return steps


def _overwrite_tokens(g: Graph, steps: list[Step]) -> None:
    last_read = {}
    for k, s in enumerate(steps):
        for t in s.reads:
            last_read[t] = k
    born = {}                                     # tensor -> the step that first wrote its buffer
    for k, s in enumerate(steps):
        if s.alias is not None:                   # written over an input already (Op.writes_over)
            born[s.output] = born.get(s.alias, -1)
            continue
        born[s.output] = k
        out = g.tensors[s.output]
        # the oldest buffer first: the residual stream stays where it is, a younger tensor's buffer dies
        for t in sorted(s.reads, key=lambda t: born.get(t, -1)):
            if last_read[t] != k or t in g.inputs or t in g.outputs or g.tensors[t].shape != out.shape:
                continue
            readers = [n for n in s.nodes if t in n.inputs]
            # an unchained in-place op (an imported file's table, softmax) reads and writes each
            # element (softmax: each row) at the same place, whatever its rows
            row_only = all(t in [n.inputs[j] for j in OPS[n.op].rowwise_inputs]
                           or (OPS[n.op].inplace and not s.chained and n.inputs == [t]) for n in readers)
            final = s.nodes[-1]
            if OPS[final.op].scatters_rows(final):
                break
            # the last op may read the row it overwrites only if its kernel works in place
            safe_final = t not in final.inputs or OPS[final.op].inplace
            if row_only and safe_final and (s.chained or OPS[final.op].inplace):
                s.alias = t
                born[s.output] = born.get(t, -1)
                break


def schedule(qgraph: Graph, switches: Switches = Switches()) -> Schedule:
    g = _clone(qgraph)
    pad_bytes = 0
    if switches.fuse:
        _each(g, "fold_epilogue")
    # after the table fold (a table-epilogue writer is never padded), before the qkv split copies the
    # low-rank V factor
    if switches.pad_rank:
        pad_bytes = _each(g, "pad_rank")
    if switches.fuse:
        if switches.split_qkv:
            # K/V per head recomputes the factor per head from the LayerNorm: nothing whole to keep
            _each(g, "split_qkv", switches.keep_rank and not switches.kv_per_head)
            if switches.kv_per_head:
                _each(g, "split_kv_heads")
    else:
        _each(g, "unfuse")
    if switches.fuse and switches.stream_scores:
        stream_scores(g)
    _each(g, "transpose_v")
    if switches.widen_weights:
        pad_bytes += _each(g, "widen_weights")
    if not switches.patch_decompose:
        _each(g, "materialise_input")
    steps = _chains(g, switches.fuse, switches.merge_tail)
    if switches.token_overwrite:
        _overwrite_tokens(g, steps)
    return Schedule(g, steps, switches, pad_bytes)
