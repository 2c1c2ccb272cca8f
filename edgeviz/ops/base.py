"""What every op module provides. Adding an op means one new module that subclasses Op."""
from __future__ import annotations

import math

import numpy as np

from .. import intmath
from ..errors import EdgevizError
from ..ir import Graph, Node

# op name -> its Op instance; filled by edgeviz/ops/__init__.py (here so an op module can ask what
# another node's op is without importing the registry that imports it)
OPS: dict[str, "Op"] = {}


class Op:
    name = ""
    # Row n of the output depends only on row n of each input listed in rowwise_inputs. Such ops can
    # be chained so that intermediates exist one row at a time (operator integration), and can write
    # their output over a dying input row by row (token overwriting).
    rowwise_inputs: tuple[int, ...] = ()
    # The output keeps the input's scale (no requantisation): selection, concatenation.
    keeps_scale = False
    # Element-wise over rows whose output may be written over its input as it goes (token overwriting
    # of an unchained step).
    inplace = False
    # Streams K and V from the qkv (or kv) tensor: such readers may take V transposed (Op.transpose_v in ops/attention.py).
    reads_kv = False
    # Can write a residual-stream tensor whose prefix-token rows have a scale of their own
    # (quantize.prefix_scaled); reads_prefix_scaled says whether a node takes such a tensor apart.
    writes_prefix_scaled = False

    def reads_prefix_scaled(self, node: Node, prefix_rows: int) -> bool:
        return False

    def prefix_rows(self, node: Node) -> int:
        """Constant token rows this node puts first (the patch embedding's cls / register tokens)."""
        return 0

    def min_output_scale(self, node: Node, g: Graph) -> float:
        """The smallest output scale the op's integer parameters can express (the input scales in g
        are final when it is asked)."""
        return 0.0

    # Facts the frontend reads the model with. takes_prefix_tokens: constant token rows put in front of
    # this op's fresh output become its `prefix` attr (the patch embedding's cls / register tokens).
    # rows_per_channel: output channel i comes from row i of attrs w (and b) alone, so nodes of this op
    # over one input merge into one by stacking rows (the q, k, v Linear layers into one qkv).
    takes_prefix_tokens = False
    rows_per_channel = False

    def simplify(self, node: Node, g: Graph) -> None:
        """An exact rewrite the frontend applies around this node after import."""

    # The frontend folds a constant added to or multiplied into a fresh output into its producer
    # (m: the constant laid over the output, [rows, channels]); False when the op cannot take it.
    def fold_add(self, node: Node, m: np.ndarray) -> bool:
        return False

    def fold_mul(self, node: Node, m: np.ndarray) -> bool:
        return False

    # ------------------------------------------------------------ schedule rewrites (edgeviz.passes)
    # Each rewrites the graph around one node of this op without changing a byte of any value. The
    # passes call a hook on every node, in graph order, when the switches ask for it.
    @property
    def row_producer(self) -> bool:
        """Can produce its output a row block at a time inside a chain (operator integration)."""
        return bool(self.rowwise_inputs)

    # A table (an element-wise function of one int8 tensor) can run in this op's requantisation
    # epilogue, so the table op folds into it under operator integration.
    takes_table_epilogue = False

    def fold_epilogue(self, node: Node, g: Graph) -> None:
        """Operator integration: fold this node into its producer's epilogue."""

    def split_qkv(self, node: Node, g: Graph, keep_rank: bool = False) -> None:
        """The qkv split (part of operator integration): K, V for all tokens, q per row (keep_rank:
        Switches.keep_rank)."""

    def split_kv_heads(self, node: Node, g: Graph) -> None:
        """K/V per head (part of the qkv split): K and V made, and attended to, one head at a time."""

    # Writes only some columns of its output (one head of attention): the output is never a chain's
    # row intermediate, and writes_over names the input holding the other columns, which the output is
    # written over (the step's alias whatever the switches; None: the first such writer).
    fills_columns = False

    def writes_over(self, node: Node) -> str | None:
        return None

    def unfuse(self, node: Node, g: Graph) -> None:
        """Operator integration off: replace a fused node by the ops it fuses."""

    def pad_rank(self, node: Node, g: Graph) -> int:
        """Pad a width to the C kernel's stride with zero weights; returns the constant bytes added."""
        return 0

    def transpose_v(self, node: Node, g: Graph) -> None:
        """C layout: V stored transposed for a K/V reader."""

    def widen_weights(self, node: Node, g: Graph) -> int:
        """C layout: keep the weights pre-widened in flash too, for kernels that read them so; returns the
        constant bytes added."""
        return 0

    def materialise_input(self, node: Node, g: Graph) -> None:
        """Patch-embedding decomposition off: materialise what the op gathers on the fly."""

    def scatters_rows(self, node: Node) -> bool:
        """Writes output rows out of row order (so its output may not overwrite an input row by row)."""
        return False

    # ------------------------------------------------------------ float reference
    def run_float(self, node: Node, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def calibrate(self, node: Node, xs: list[np.ndarray], stats: dict) -> None:
        """Record internal ranges (beyond the output tensor) needed to quantize this op."""

    # ------------------------------------------------------------ int8
    def quantize(self, node: Node, g: Graph, stats: dict) -> None:
        """Fill node.qattrs from the float attrs and the tensor scales."""

    def run_int8(self, node: Node, xs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------ cost
    def macs(self, node: Node, g: Graph) -> int:
        return 0

    # The op whose instruction costs (edgeviz/backends/mcu_latency.py) this op's work takes, when it runs
    # that op's kernels ('' for its own).
    costs_like = ""

    def work(self, node: Node, g: Graph) -> dict[str, int]:
        """What the op does per inference, by kind: the features of the MCU latency model, which fits an
        instruction cost per op and kind on the emulator (edgeviz/backends/mcu_latency.py). MACs, output
        elements and rows, one call; an op with other per-element work (softmax) adds its own kind."""
        out = g.tensors[node.outputs[0]]
        return {"macs": self.macs(node, g), "elements": out.nbytes, "rows": out.rows, "calls": 1}

    def flash_bytes(self, node: Node) -> int:
        return sum(np.asarray(v).nbytes for v in node.qattrs.values() if isinstance(v, np.ndarray))

    def scratch_bytes(self, node: Node, g: Graph) -> int:
        """Bytes of per-call scratch the C kernel needs (lives only during this op)."""
        return 0

    # ------------------------------------------------------------ HLS (edgeviz/hls/generate.py)
    # `e` is the HLS emitter: e.g (graph), e.c.add(node, key, array, dtype) -> ROM name, e.reuse[name].
    hls_template = False

    def hls_ops(self, node: Node, g: Graph, chained: bool) -> int:
        """Operations per row (or per call) that the reuse factor divides."""
        return 1

    def hls_spec(self, node: Node, g: Graph, chained: bool) -> tuple[str, dict] | None:
        """(estimate layer kind, its dimensions) for edgeviz.hls.estimate."""
        return None

    def hls_reuse(self, node: Node, g: Graph, chained: bool, r: int) -> int:
        """The reuse factor adjusted to what the op's buffers can deliver per cycle."""
        return r

    def hls_kv_buffer(self, node: Node, chained: bool) -> str | None:
        """The token buffer this node streams K and V from, LANES bytes a cycle (it is split cyclic)."""
        return None

    def emit_hls(self, node: Node, e, ins: list[str], out: str, rows: int, chained: bool) -> list[str]:
        raise EdgevizError(f"the HLS backend has no template for op '{node.op}' ({node.name})")

    # ------------------------------------------------------------ C
    def emit_c(self, node: Node, g: Graph, c, ins: list[str], out: str, rows: int, row0: str,
               scratch: str) -> list[str]:
        """C statements computing `rows` output rows (an int or a C expression) from row index `row0`.

        ins[i] points at row row0 of input i if i is in rowwise_inputs, else at the input's start;
        out points at output row row0; scratch at scratch_bytes() bytes. `c` is the CWriter that
        turns constants into flash arrays.
        """
        raise NotImplementedError


class Elementwise(Op):
    """An op over a bank's elements, one a cycle on an FPGA: the bank's two ports serve one read and
    one write. hls_kind names its estimate layer."""
    hls_template = True
    hls_kind = ""

    def hls_ops(self, node, g, chained):
        t = g.tensors[node.outputs[0]]
        return t.channels if chained else t.nbytes

    def hls_spec(self, node, g, chained):
        t = g.tensors[node.outputs[0]]
        return self.hls_kind, ({"n": t.channels, "rows": t.rows} if chained else {"n": t.nbytes})

    def hls_reuse(self, node, g, chained, r):
        return self.hls_ops(node, g, chained)


def prefix_split_c(k: int, rows, row0, call) -> list[str]:
    """C for an op whose first k token rows (the prefix tokens, at a scale of their own) take other
    parameters. call(prefix, n_rows, skip) gives the kernel call for n_rows rows starting skip rows
    after row0; rows and row0 are ints or C expressions (a fused chain's row block)."""
    if isinstance(rows, int) and str(row0) == "0":          # a whole tensor: split at compile time
        pre = min(k, rows)
        return ([call(True, str(pre), "0")] if pre else []) + ([call(False, str(rows - pre), str(pre))]
                                                               if rows > pre else [])
    return ["{",
            f"  const int ev_pre = ({row0}) < {k} ? ({k} - ({row0}) < ({rows}) ? {k} - ({row0}) : ({rows})) : 0;",
            "  if (ev_pre > 0) " + call(True, "ev_pre", "0"),
            f"  if (({rows}) - ev_pre > 0) " + call(False, f"({rows}) - ev_pre", "ev_pre"),
            "}"]


def row_offset(ptr: str, skip: str, channels: int) -> str:
    return ptr if skip == "0" else f"{ptr} + ({skip}) * {channels}"


def hls_rows_at(ptr: str, skip: int, channels: int) -> str:
    return ptr if not skip else f"{ptr} + {skip * channels}"


def hls_prefix_split(k: int, rows: int, chained: bool, call) -> list[str]:
    """HLS statements for an op whose first k token rows (prefix tokens at scales of their own) take
    other parameters: per row in a chain (row index r), else two calls over the two row ranges."""
    if not k:
        return [call(False, rows, 0)]
    if chained:
        return [f"if (r < {k}) {call(True, rows, 0)}", f"else {call(False, rows, 0)}"]
    pre = min(k, rows)
    return [call(True, pre, 0)] + ([call(False, rows - pre, pre)] if rows > pre else [])


def hls_mac_reuse(node: Node, r: int) -> int:
    """The row-serial MAC schedule of ev_linear / ev_patch_embed needs LANES | IN: the largest divisor
    of the input width below the lanes the reuse factor asks for."""
    o, k = node.qattrs["w"].shape
    lanes = math.ceil(o * k / r)
    if lanes < k and k % lanes:
        lanes = max(d for d in range(1, lanes + 1) if k % d == 0)
        return o * k // lanes
    return r


# A bias in the int32 accumulator stays below 2^30: room for the sum of products beside it.
BIAS_LIMIT = float(1 << 30)


def quantize_weights(w: np.ndarray, bias_abs: np.ndarray | None = None, s_x: float | None = None):
    """Per-output-channel symmetric int8: returns (int8 weights, float scales). With the largest |bias|
    of each channel and the input scale, a channel's weight scale is floored so that its bias
    (bias / (s_x s_w)) fits the int32 accumulator: weights far smaller than their bias (a gate that
    starts near zero) would otherwise overflow it."""
    w2 = w.reshape(w.shape[0], -1)
    s = np.abs(w2).max(axis=1) / 127.0
    if bias_abs is not None and s_x:
        s = np.maximum(s, np.asarray(bias_abs, dtype=np.float64) / (s_x * BIAS_LIMIT))
    s = np.where(s > 0, s, 1e-12)
    q = np.clip(np.round(w2 / s[:, None]), -127, 127).astype(np.int8)
    return q, s


def requant_params(real: np.ndarray):
    ms = [intmath.quantize_multiplier(float(r)) for r in np.atleast_1d(real)]
    return (np.array([m for m, _ in ms], dtype=np.int32), np.array([s for _, s in ms], dtype=np.int8))


def quantize_input(x: np.ndarray, scale: float, zero_point: int = 0) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
