"""LiteRT (ai-edge-litert, the maintained successor of tflite-runtime), the oracle for imported .tflite
files: its interpreter with the builtin reference kernels (OpResolverType.BUILTIN_REF), named
exactly because LiteRT's default kernels (XNNPACK) and TF Lite Micro give other bytes on the same
file. Also the source of element-wise tables: a function of one int8 tensor has 256 inputs, so
running the runtime's own kernel on each gives its table exactly, float code inside included.

LiteRT is not hardened against damaged files (a mutated model can crash it), so it runs in a child
process: a crash there is a one-line error here, never the end of edgeviz."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np

from ..errors import EdgevizError

ORACLE = "LiteRT BUILTIN_REF"


def _litert():
    try:
        from ai_edge_litert import interpreter as lrt
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise EdgevizError("reading a .tflite file needs LiteRT: pip install ai-edge-litert (the README's "
                           "set-up installs it)") from None
    return lrt, schema


def interpreter(model: bytes):
    lrt, _ = _litert()
    try:
        it = lrt.Interpreter(model_content=model, experimental_op_resolver_type=lrt.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgevizError(f"LiteRT cannot run this model: {str(e).strip().splitlines()[0]}") from None
    return it


def _isolated(fn, *args):
    """fn(*args) (a function of this module) in a fresh Python process, `python -m` this module: the
    request and the answer cross as pickles over its stdin and stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, "-m", __name__], input=pickle.dumps((fn.__name__, args)),
                       capture_output=True, env=env)
    if r.returncode != 0:
        raise EdgevizError("LiteRT crashed on this .tflite file (the file is damaged, or holds something LiteRT "
                           "cannot run); re-export it with the TFLite converter")
    ok, value = pickle.loads(r.stdout)
    if not ok:
        raise EdgevizError(value)
    return value


def run(model: bytes, xs: np.ndarray, io: tuple | None = None) -> np.ndarray:
    """The model's int8 outputs [B, n] for int8 inputs [B, ...] (input 0, output 0). A model with a
    float interface (QUANTIZE first, DEQUANTIZE last) takes the inputs dequantized and gives its outputs
    quantized with io = (input scale, zero point, output scale, zero point), the int8 tensors' own:
    the same int8 values on both sides of the interface."""
    return _isolated(_run, model, np.asarray(xs), io)


def run_graph(model: bytes, g, xs: np.ndarray) -> np.ndarray:
    """run() for the file a graph was imported from, with the graph's int8 input and output
    quantisation for a float interface."""
    x, y = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    return run(model, xs, (x.scale, x.zero_point, y.scale, y.zero_point))


def element_tables(model: bytes, requests: list[tuple[list[int], int, int, str]]) -> list[np.ndarray]:
    """element_table for each (operators, src, dst, what), all in one child process."""
    return _isolated(_tables, model, requests) if requests else []


def _tables(model: bytes, requests) -> list[np.ndarray]:
    return [element_table(model, *r) for r in requests]


def _run(model: bytes, xs: np.ndarray, io) -> np.ndarray:
    it = interpreter(model)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for x in xs:
        x = np.asarray(x)
        if inp["dtype"] == np.float32:
            x = (x.astype(np.float32) - np.float32(io[1])) * np.float32(io[0])
        it.set_tensor(inp["index"], x.astype(inp["dtype"]).reshape(inp["shape"]))
        it.invoke()
        y = it.get_tensor(out["index"]).reshape(-1)
        if out["dtype"] == np.float32:
            y = np.clip(np.round(y / np.float32(io[2])) + io[3], -128, 127)
        ys.append(y.astype(np.int8))
    return np.stack(ys)


def element_table(model: bytes, operators: list[int], src: int, dst: int, what: str) -> np.ndarray:
    """The table of an element-wise chain of operators from int8 tensor src to int8 tensor dst:
    [256] (entry v + 128 is the output for input v), or [C, 256] when the chain's constants differ
    along the last axis. Runs the chain alone in LiteRT, once per input value."""
    _, schema = _litert()
    import flatbuffers

    try:
        # the file passed edgeviz's reader; LiteRT's schema reads every part of it, the ones edgeviz
        # ignores (signatures, metadata, other options) too
        m = schema.ModelT.InitFromPackedBuf(model, 0)
    except Exception:  # noqa: BLE001 - flatbuffers raises struct.error, IndexError, ... on a damaged part
        raise EdgevizError(f"{what}: the file is damaged in parts edgeviz does not read itself (LiteRT's "
                           f"reader fails on them); re-export it with the TFLite converter") from None
    sg = m.subgraphs[0]
    sg.operators = [sg.operators[i] for i in operators]
    sg.inputs, sg.outputs = [src], [dst]
    m.signatureDefs = None
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    it = interpreter(bytes(b.Output()))
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if tuple(out["shape"]) != tuple(inp["shape"]):
        raise EdgevizError(f"{what} changes the shape of its input ({list(inp['shape'])} -> {list(out['shape'])}): "
                           f"not an element-wise function edgeviz can turn into a table")
    ys = []
    for v in range(-128, 128):
        it.set_tensor(inp["index"], np.full(inp["shape"], v, dtype=np.int8))
        it.invoke()
        ys.append(it.get_tensor(out["index"]).copy())
    ys = np.stack(ys).reshape(256, -1)                     # [value, position]
    if (ys == ys[:, :1]).all():
        return ys[:, 0].astype(np.int8)
    ch = int(inp["shape"][-1])
    per_channel = ys.reshape(256, -1, ch)
    if (per_channel == per_channel[:, :1, :]).all():
        return np.ascontiguousarray(per_channel[:, 0, :].T).astype(np.int8)
    raise EdgevizError(f"{what} computes something different at each position of its input, not one "
                       f"function per channel; edgeviz cannot run it as a table")


def _serve() -> None:
    """The child's side of _isolated."""
    name, args = pickle.loads(sys.stdin.buffer.read())
    try:
        answer = (True, globals()[name](*args))
    except EdgevizError as e:
        answer = (False, str(e))
    sys.stdout.buffer.write(pickle.dumps(answer))


if __name__ == "__main__":
    _serve()
