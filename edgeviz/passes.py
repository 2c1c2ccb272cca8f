"""Memory passes: they turn the quantized graph into a schedule of steps without changing a bit.

- operator integration (fuse): GELU becomes the linear layer's table epilogue; chains of row-wise
  ops run a block of rows at a time so their intermediates are row blocks; attention takes the block's
  query rows together (one pass over K and V), so no [N, N] score matrix exists.
  Off: every op materialises its whole output, attention included ([H*N, N] scores and probs).
- patch-embedding decomposition: the image is embedded patch by patch. Off: an im2col matrix
  [patches, C*p*p] is materialised first.
- token overwriting: a step writes its output rows over an input that dies at that step, when each
  output row is written only after the rows it overwrites were read.
Two C-layout passes change no byte of any value either: rank padding (zero weights up to the MCU
kernel's stride) and V^T (attention's V stored transposed).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .ir import Graph, Node
from .ops import OPS
from .ops.attention import QUERY_BLOCK

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
    # round low-rank ranks up to the MCU linear kernel's stride with zero weights (_pad_rank). Off
    # for the FPGA backend, whose templates take any width.
    pad_rank: bool = True

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
    pad_bytes: int = 0                   # constant bytes _pad_rank added (zero weights, their requant)
    note: str = ""                       # why the switches differ from the ones asked for


def _clone(g: Graph) -> Graph:
    """A copy whose node list and tensors can be rewritten; big arrays are shared, not copied."""
    h = Graph(copy.deepcopy(g.tensors), [], list(g.inputs), list(g.outputs))
    h.nodes = [Node(n.op, n.name, list(n.inputs), list(n.outputs), dict(n.attrs), dict(n.qattrs)) for n in g.nodes]
    return h


def _fold_activation(g: Graph) -> None:
    for act in [n for n in g.nodes if n.op == "activation"]:
        lin = g.producer(act.inputs[0])
        if lin is None or lin.op != "linear" or len(g.consumers(lin.outputs[0])) != 1 or "lut" in lin.qattrs:
            continue
        lin.qattrs["lut"] = act.qattrs["lut"]
        dead = lin.outputs[0]
        lin.outputs = list(act.outputs)
        g.nodes.remove(act)
        del g.tensors[dead]


def _split_attention(g: Graph) -> None:
    for att in [n for n in g.nodes if n.op == "attention"]:
        qkv = att.inputs[0]
        n_tok, three_e = g.tensors[qkv].shape
        h = att.attrs["heads"]
        q = att.qattrs
        common = {"tokens": n_tok, "embed": three_e // 3, "heads": h}
        scores = g.add_tensor(att.name + "_scores", (h * n_tok, n_tok))
        probs = g.add_tensor(att.name + "_probs", (h * n_tok, n_tok))
        i = g.nodes.index(att)
        g.nodes[i:i + 1] = [
            Node("attn_scores", att.name + ".scores", [qkv], [scores.name],
                 dict(common, m_qk=q["m_qk"], s_qk=q["s_qk"])),
            Node("softmax", att.name + ".softmax", [scores.name], [probs.name],
                 {"exp_lut": q["exp_lut"], "lut_name": att.name + ".exp_lut"}),
            Node("attn_av", att.name + ".av", [probs.name, qkv], list(att.outputs),
                 dict(common, m_av=q["m_av"], s_av=q["s_av"])),
        ]


def _slice_linear(q: dict, rows: slice) -> dict:
    return {k: (v[rows] if k in ("w", "bias", "mult", "shift") else v) for k, v in q.items()}


def _split_qkv(g: Graph) -> None:
    """qkv = linear(LN(x)) feeding attention -> kv = linear_kv(LN(x)) for all rows, plus a per-row
    chain LN(x) -> linear_q -> attention row. Same bytes (per-channel requantisation, one output
    scale), 3NE instead of 4NE live at the attention; costs one more LayerNorm (and the low-rank V
    product) per row."""
    for att in [n for n in g.nodes if n.op == "attention"]:
        qkv = att.inputs[0]
        lin = g.producer(qkv)
        if lin is None or lin.op != "linear" or len(g.consumers(qkv)) != 1 or "lut" in lin.qattrs:
            continue
        path = [lin]
        while path[0].op != "layernorm":
            p = g.producer(path[0].inputs[0])
            if p is None or p.op not in ("linear", "layernorm") or len(g.consumers(p.outputs[0])) != 1:
                break
            path.insert(0, p)
        if path[0].op != "layernorm":
            continue
        rows, e = g.tensors[qkv].rows, g.tensors[qkv].channels // 3
        scale = g.tensors[qkv].scale
        kv = g.add_tensor(att.name + "_kv", (rows, 2 * e))
        q = g.add_tensor(att.name + "_q", (rows, e))
        kv.scale = q.scale = scale
        q_lin = Node("linear", lin.name + ".q", [], [q.name], lin.attrs, _slice_linear(lin.qattrs, slice(0, e)))
        lin.qattrs = _slice_linear(lin.qattrs, slice(e, 3 * e))
        lin.outputs = [kv.name]
        del g.tensors[qkv]
        copies, prev = [], path[0].inputs[0]
        for node in path[:-1]:       # same names: their constants are shared, not duplicated in flash
            t = g.add_tensor(node.outputs[0] + "_q", g.tensors[node.outputs[0]].shape)
            t.scale = g.tensors[node.outputs[0]].scale
            copies.append(Node(node.op, node.name, [prev], [t.name], node.attrs, node.qattrs))
            prev = t.name
        q_lin.inputs = [prev]
        split = Node("attention_split", att.name, [q.name, kv.name], list(att.outputs), att.attrs, att.qattrs)
        i = g.nodes.index(att)
        g.nodes[i:i + 1] = copies + [q_lin, split]


# The MCU linear kernel's fast path (ev_linear.c, path S) streams inputs 16 at a time. A low-rank
# layer's second factor reads the rank r, which rarely is a multiple of 16 and then falls to the
# slower paths: measured on the emulator, 5 x 25 -> 192 ran at 0.29 MACs/instruction.
RANK_ALIGN = 16


def _pad_rank(g: Graph) -> int:
    """Round up the width r of a tensor that a linear writes and only linears read (a low-rank pair's
    rank) to a multiple of RANK_ALIGN: the writer gets zero weight rows and zero bias, each reader zero
    weight columns. The added channels are exactly 0 (symmetric int8: a zero sum requantises to 0) and
    add 0 to every reader's sum: same bits, more (but faster) MACs. Returns the constant bytes added."""
    added = 0
    for first in [n for n in g.nodes if n.op == "linear"]:
        t = g.tensors[first.outputs[0]]
        readers = g.consumers(t.name)
        pad = -t.channels % RANK_ALIGN
        if (not pad or t.rows < 4 or "lut" in first.qattrs or t.name in g.outputs or not readers
                or any(r.op != "linear" for r in readers)):
            continue
        flash = lambda: sum(OPS["linear"].flash_bytes(n) for n in [first, *readers])  # noqa: E731
        before, q = flash(), first.qattrs
        first.qattrs = {**q, "w": np.pad(q["w"], ((0, pad), (0, 0))), "bias": np.pad(q["bias"], (0, pad)),
                        "mult": np.pad(q["mult"], (0, pad), mode="edge"),
                        "shift": np.pad(q["shift"], (0, pad), mode="edge")}
        for r in readers:
            r.qattrs = {**r.qattrs, "w": np.pad(r.qattrs["w"], ((0, 0), (0, pad)))}
        added += flash() - before
        t.shape = t.shape[:-1] + (t.channels + pad,)
    return added


# V^T pays for its scattered writes once there are enough keys to stream: measured on the emulator
# (whole models, -icount), 5 tokens +0.4..+0.7% instructions with V^T, 10 tokens -0.2%, 17-65 tokens
# -0.7..-2.1%.
V_T_MIN_TOKENS = 8


def _transpose_v(g: Graph) -> None:
    """The linear that writes attention's qkv (or the split's kv) puts V transposed after the other
    rows: [N, C - E] rows, then V^T [E, N]. p.v then reads each head dim's values over all keys as one
    contiguous row, the same streaming kernel as q.k (ev__rk4). Same bytes, same bits; a layout of the
    C backend (the HLS templates keep their own row layout and ignore the mark)."""
    for att in [n for n in g.nodes if n.op in ("attention", "attention_split", "attn_av")]:
        t = att.inputs[-1]                         # qkv, or the split's kv: V is its last E columns
        lin = g.producer(t)
        if (lin is None or lin.op != "linear" or "lut" in lin.qattrs or "v_t" in lin.attrs
                or g.tensors[t].shape[0] < V_T_MIN_TOKENS
                or any(not OPS[c.op].reads_kv for c in g.consumers(t))):
            continue
        c = g.tensors[t].channels
        e = c // 2 if att.op == "attention_split" else c // 3
        lin.attrs = {**lin.attrs, "v_t": e}       # a new dict: the split's q linear shares the old one
        for reader in g.consumers(t):
            reader.attrs = {**reader.attrs, "v_t": e}


def _materialise_patches(g: Graph) -> None:
    for pe in [n for n in g.nodes if n.op == "patch_embed"]:
        c, h, w = g.tensors[pe.inputs[0]].shape
        p = pe.attrs["patch"]
        cols = g.add_tensor("im2col", ((h // p) * (w // p), c * p * p))
        g.nodes.insert(g.nodes.index(pe), Node("im2col", "im2col", [pe.inputs[0]], [cols.name], {"patch": p}))
        pe.attrs["decompose"] = False
        pe.inputs = [pe.inputs[0], cols.name]


def _row_producer(n: Node) -> bool:
    """Can this node produce its output one row at a time inside a chain?"""
    return bool(OPS[n.op].rowwise_inputs) or n.op == "attention"


def _chains(g: Graph, fuse: bool) -> list[Step]:
    steps: list[Step] = []
    i = 0
    while i < len(g.nodes):
        chain = [g.nodes[i]]
        if fuse and _row_producer(g.nodes[i]):
            while i + len(chain) < len(g.nodes):
                nxt, prev_out = g.nodes[i + len(chain)], chain[-1].outputs[0]
                rowwise = [nxt.inputs[k] for k in OPS[nxt.op].rowwise_inputs]
                if (prev_out not in rowwise or len(g.consumers(prev_out)) != 1 or prev_out in g.outputs
                        or g.tensors[nxt.outputs[0]].rows != g.tensors[prev_out].rows):
                    break
                chain.append(nxt)
        inner = {n.outputs[0] for n in chain[:-1]}
        reads = []
        for n in chain:
            reads += [t for t in n.inputs if t not in inner and t not in reads]
        block = min(CHAIN_BLOCK, g.tensors[chain[-1].outputs[0]].rows) if len(chain) > 1 else 1
        scratch = sum(OPS[n.op].scratch_bytes(n, g) for n in chain)
        scratch += sum(g.tensors[t].channels * block for t in inner)
        steps.append(Step(chain, chain[-1].outputs[0], reads, sorted(inner), scratch, block=block))
        i += len(chain)
    return steps


def _overwrite_tokens(g: Graph, steps: list[Step]) -> None:
    last_read = {}
    for k, s in enumerate(steps):
        for t in s.reads:
            last_read[t] = k
    for k, s in enumerate(steps):
        out = g.tensors[s.output]
        for t in s.reads:
            if last_read[t] != k or t in g.inputs or t in g.outputs or g.tensors[t].shape != out.shape:
                continue
            readers = [n for n in s.nodes if t in n.inputs]
            row_only = all(t in [n.inputs[j] for j in OPS[n.op].rowwise_inputs] for n in readers)
            final = s.nodes[-1]
            if final.op == "linear" and "v_t" in final.attrs:   # V^T columns land all over the tensor
                break
            # the last op may read the row it overwrites only if its kernel works in place
            safe_final = t not in final.inputs or OPS[final.op].inplace
            if row_only and safe_final and (s.chained or OPS[final.op].inplace):
                s.alias = t
                break


def schedule(qgraph: Graph, switches: Switches = Switches()) -> Schedule:
    g = _clone(qgraph)
    pad_bytes = 0
    if switches.fuse:
        _fold_activation(g)
    # after the GELU fold (a table-epilogue writer is never padded), before the qkv split copies the
    # low-rank V factor
    if switches.pad_rank:
        pad_bytes = _pad_rank(g)
    if switches.fuse:
        if switches.split_qkv:
            _split_qkv(g)
    else:
        _split_attention(g)
    _transpose_v(g)
    if not switches.patch_decompose:
        _materialise_patches(g)
    steps = _chains(g, switches.fuse)
    if switches.token_overwrite:
        _overwrite_tokens(g, steps)
    return Schedule(g, steps, switches, pad_bytes)
