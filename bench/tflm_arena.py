"""Optional benchmark: TF Lite Micro's arena for the same int8 ViTs that edgeviz compiles.

For each configuration in tests/models.py this script
  1. builds the PyTorch model (tests.models.make) and an equivalent Keras model holding the same
     weights: conv patch embedding, cls token + position embedding, LayerNorm, multi-head attention
     written as Dense / matmul / softmax, low-rank linears as two Dense layers, and an MLP whose GELU
     is replaced by x * sigmoid(1.702 x), because TFLM has no GELU kernel;
  2. checks the Keras float output against a PyTorch copy that uses the same sigmoid GELU;
  3. converts to a full-int8 .tflite (random normal representative data);
  4. measures TFLM's arena with the tflite-micro Python interpreter (a host build of the real TFLM
     kernels): the "Arena allocation total/head/tail" lines of print_allocations(), read from C
     stderr, and the smallest arena_size with which the interpreter allocates and invokes (bisection);
  5. compares with edgeviz's planned arena, plan_config(cfg).peak_sram, computed in the main venv
     (.venv) as a subprocess, from the working tree or, if that does not run, from HEAD
     (--edgeviz-source); the JSON records which, with the commit.

It needs the separate bench environment (bench/requirements-bench.txt), never the main test suite:

    .venv-bench/bin/python bench/tflm_arena.py [--configs NAME ...] [--out bench/results/tflm.json]

Run from the repository root (or anywhere: the root is put on sys.path).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

GELU_NOTE = ("GELU replaced by x*sigmoid(1.702x) in the TFLite models (TFLM has no GELU kernel); "
             "the Keras float check is against a PyTorch copy using the same activation")


# ------------------------------------------------------------------ PyTorch side
class SigmoidGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def sigmoid_gelu_copy(model: nn.Module) -> nn.Module:
    """The same model with every nn.GELU swapped for x*sigmoid(1.702x)."""
    m = copy.deepcopy(model)
    for blk in m.blocks:
        blk.act = SigmoidGELU()
    return m.eval()


def _t(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32)


def linear_weights(mod: nn.Module) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """A dense nn.Linear or a LowRankLinear as a list of (kernel [in, out], bias) Dense layers."""
    if isinstance(mod, nn.Linear):
        return [(_t(mod.weight).T.copy(), None if mod.bias is None else _t(mod.bias))]
    # LowRankLinear: y = u(v(x))
    return linear_weights(mod.v) + linear_weights(mod.u)


# ------------------------------------------------------------------ Keras side
def build_keras(model: nn.Module, fold_scale: bool = False):
    """Keras functional model, batch 1, NHWC input, with the PyTorch model's weights.

    fold_scale: multiply the q columns of the qkv projection by head_dim**-0.5 instead of scaling
    q k^T afterwards (same function, one MUL fewer). Off by default: it does not lower the graph's
    liveness peak (softmax's input and output are the same two heads x n x n tensors), and TFLM's
    greedy planner happened to place the folded graph worse for one config."""
    import keras
    from keras import layers, ops

    cfg = model.cfg
    e, h, n = cfg.embed, cfg.heads, cfg.num_tokens
    d = e // h
    scale = float(d ** -0.5)

    class TokenPrep(layers.Layer):
        """cls token (optional) + position embedding, both constants of the model."""

        def __init__(self, cls_token, pos_embed, **kw):
            super().__init__(**kw)
            self._cls0 = cls_token
            self._pos0 = pos_embed

        def call(self, x):
            # plain constants: they become int8 constant tensors of the .tflite (variables would
            # become READ_VARIABLE ops that the converter cannot freeze here)
            if self._cls0 is not None:
                x = ops.concatenate([ops.convert_to_tensor(self._cls0), x], axis=1)  # batch fixed to 1
            return x + ops.convert_to_tensor(self._pos0)

    def dense_chain(x, mod, name, ws=None):
        ws = linear_weights(mod) if ws is None else ws
        for i, (k, b) in enumerate(ws):
            lay = layers.Dense(k.shape[1], use_bias=b is not None, name=f"{name}_{i}")
            x = lay(x)
            lay.set_weights([k] if b is None else [k, b])
        return x

    def layer_norm(x, ln, name):
        lay = layers.LayerNormalization(axis=-1, epsilon=ln.eps, name=name)
        y = lay(x)
        lay.set_weights([_t(ln.weight), _t(ln.bias)])
        return y

    def heads_first(t):  # (1, n, e) -> (1, h, n, d)
        return ops.transpose(ops.reshape(t, (1, n, h, d)), (0, 2, 1, 3))

    inp = keras.Input(shape=(cfg.img_size, cfg.img_size, cfg.in_chans), batch_size=1, name="image")
    conv = layers.Conv2D(e, cfg.patch, strides=cfg.patch, padding="valid", name="patch_embed")
    x = conv(inp)
    conv.set_weights([_t(model.patch_embed.weight).transpose(2, 3, 1, 0), _t(model.patch_embed.bias)])
    x = layers.Reshape((cfg.num_patches, e), name="tokens")(x)  # row-major (h, w) = torch's flatten(2)
    cls0 = None if model.cls_token is None else _t(model.cls_token)
    x = TokenPrep(cls0, _t(model.pos_embed), name="cls_pos")(x)

    for i, blk in enumerate(model.blocks):
        p = f"b{i}"
        y = layer_norm(x, blk.norm1, f"{p}_norm1")
        ws = linear_weights(blk.attn.qkv)
        if fold_scale:
            k_last, b_last = ws[-1]
            k_last = k_last.copy()
            k_last[:, :e] *= scale
            if b_last is not None:
                b_last = b_last.copy()
                b_last[:e] *= scale
            ws[-1] = (k_last, b_last)
        qkv = dense_chain(y, blk.attn.qkv, f"{p}_qkv", ws)
        q, k, v = qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
        q, k, v = heads_first(q), heads_first(k), heads_first(v)
        att = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        if not fold_scale:
            att = att * scale
        att = ops.softmax(att, axis=-1)
        o = ops.matmul(att, v)  # (1, h, n, d)
        o = ops.reshape(ops.transpose(o, (0, 2, 1, 3)), (1, n, e))
        x = x + dense_chain(o, blk.attn.proj, f"{p}_proj")
        y = layer_norm(x, blk.norm2, f"{p}_norm2")
        y = dense_chain(y, blk.fc1, f"{p}_fc1")
        y = y * ops.sigmoid(1.702 * y)  # GELU stand-in: TFLM has no GELU kernel
        x = x + dense_chain(y, blk.fc2, f"{p}_fc2")

    x = layer_norm(x, model.norm, "norm")
    x = x[:, 0, :] if cfg.pool == "cls" else ops.mean(x, axis=1)
    head = layers.Dense(cfg.num_classes, name="head")
    out = head(x)
    head.set_weights([_t(model.head.weight).T.copy(), _t(model.head.bias)])
    return keras.Model(inp, out, name="vit")


def to_int8_tflite(kmodel, cfg, n_calib: int = 64, seed: int = 1) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(n_calib):
            yield [rng.standard_normal((1, cfg.img_size, cfg.img_size, cfg.in_chans)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(kmodel)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_ops(tfl: bytes) -> list[str]:
    """Operator names of the flatbuffer, in execution order (via TFLM's own schema reader)."""
    from tflite_micro.python.tflite_micro import runtime
    m = runtime.convert_bytearray_to_object(bytearray(tfl))
    names = {v: k for k, v in vars(runtime.schema_fb.BuiltinOperator).items() if not k.startswith("_")}
    codes = [runtime.get_builtin_code_from_operator_code(oc) for oc in m.operatorCodes]
    return [names.get(codes[op.opcodeIndex], str(codes[op.opcodeIndex])) for op in m.subgraphs[0].operators]


# TFLite tensor type -> bytes per element (schema TensorType numbering)
_TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: 2, 14: 4,
               15: 2, 16: 4, 17: 1, 18: 1}


def liveness_peak(tfl: bytes) -> int:
    """Largest sum of live activation bytes at any op of the graph, as TFLM orders it (inputs
    and outputs of each op counted as live together, kernel scratch not counted). A lower bound
    for any planner of this graph that keeps every tensor whole, TFLM's greedy one included."""
    from tflite_micro.python.tflite_micro import runtime
    m = runtime.convert_bytearray_to_object(bytearray(tfl))
    sg = m.subgraphs[0]

    def const(t):
        data = m.buffers[sg.tensors[t].buffer].data
        return data is not None and len(data) > 0

    def nbytes(t):
        tt = sg.tensors[t]
        return int(np.prod(tt.shape)) * _TYPE_BYTES.get(tt.type, 4)

    first, last = {}, {}
    for t in sg.inputs:
        first[t] = -1
    for k, op in enumerate(sg.operators):
        for t in op.outputs:
            first.setdefault(t, k)
        for t in op.inputs:
            if t >= 0 and not const(t):
                last[t] = k
    end = len(sg.operators)
    for t in sg.outputs:
        last[t] = end
    return max(sum(nbytes(t) for t in first if first[t] <= k <= last.get(t, first[t]))
               for k in range(end))


# ------------------------------------------------------------------ TFLM side
@contextlib.contextmanager
def capture_fd(fd: int = 2):
    """Capture what C code (and Python) writes to a file descriptor; TFLM's MicroPrintf uses fd 2."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    buf = {"text": ""}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield buf
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            buf["text"] = tmp.read().decode(errors="replace")


def capture_fd2():
    return capture_fd(2)


@contextlib.contextmanager
def quiet():
    """Hide the converter's chatter (Keras export prints its signatures, TF logs to stderr);
    replay it on stderr if the block fails."""
    failed = False
    try:
        with capture_fd(1) as out, capture_fd(2) as err:
            try:
                yield
            except BaseException:
                failed = True
                raise
    finally:
        if failed:
            sys.stderr.write(out["text"][-4000:] + err["text"][-4000:])


ALLOC_RE = re.compile(r"Arena allocation (total|head|tail)\D*?(\d+)\s*bytes", re.I)
PART_RE = re.compile(r"'([^']+)' used (\d+) bytes", re.I)


def tflm_allocations(tfl: bytes, arena: int) -> tuple[dict[str, int], str]:
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(tfl, arena_size=arena)
    with capture_fd2() as buf:
        it.print_allocations()
    found = {k.lower(): int(v) for k, v in ALLOC_RE.findall(buf["text"])}
    found["parts"] = {k: int(v) for k, v in PART_RE.findall(buf["text"])}
    return found, buf["text"]


_TRY_CODE = """import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
tfl = open(sys.argv[1], "rb").read()
try:
    it = runtime.Interpreter.from_bytes(tfl, arena_size=int(sys.argv[2]))
    it.set_input(np.zeros(it.get_input_details(0)["shape"], np.int8), 0)
    it.invoke()
except Exception:
    sys.exit(1)
"""


def tflm_fits(path: Path, arena: int, crashes: list[int]) -> bool:
    """Does TFLM allocate and invoke with this arena_size?  Each try runs in its own process:
    the host TFLM build can segfault (not just fail) when the arena is far too small."""
    r = subprocess.run([sys.executable, "-c", _TRY_CODE, str(path), str(arena)], capture_output=True)
    if r.returncode < 0:
        crashes.append(arena)
    return r.returncode == 0


def bisect_arena(tfl: bytes, lo: int, hi: int) -> tuple[int, list[int]]:
    """Smallest arena_size (bytes) with which allocation and one invoke succeed, searched in
    (lo, hi]; lo must be a size known to be too small (e.g. the recorded total less alignment)."""
    crashes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="tflm-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(tfl)
        if tflm_fits(path, lo, crashes):
            raise RuntimeError(f"arena_size {lo} was expected to fail and did not")
        while not tflm_fits(path, hi, crashes):
            lo, hi = hi, hi * 2
            if hi > 1 << 28:
                raise RuntimeError("TFLM fails even with a 256 MiB arena")
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if tflm_fits(path, mid, crashes):
                hi = mid
            else:
                lo = mid
    return hi, crashes


def tflm_int8_outputs(tfl: bytes, arena: int, x_nhwc: np.ndarray) -> np.ndarray:
    """Run the int8 model in TFLM on float inputs (quantized with the model's input scale) and
    return dequantized float outputs."""
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(tfl, arena_size=arena)
    qi = it.get_input_details(0)["quantization_parameters"]
    qo = it.get_output_details(0)["quantization_parameters"]
    si, zi = float(qi["scales"][0]), int(qi["zero_points"][0])
    so, zo = float(qo["scales"][0]), int(qo["zero_points"][0])
    ys = []
    for i in range(len(x_nhwc)):
        xq = np.clip(np.round(x_nhwc[i:i + 1] / si + zi), -128, 127).astype(np.int8)
        it.set_input(xq, 0)
        it.invoke()
        ys.append((it.get_output(0).astype(np.float32) - zo) * so)
    return np.concatenate(ys)


# ------------------------------------------------------------------ edgeviz side
_EDGEVIZ_CODE = """import json, sys
from tests.models import CONFIGS
from edgeviz.lower import plan_config
out = {}
for n in sys.argv[1:]:
    r = plan_config(CONFIGS[n])
    out[n] = {"peak_sram": r.peak_sram, "lower_bound": r.lower_bound, "flash": r.flash}
print(json.dumps(out))
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _plan_with(src: Path, names: list[str]) -> tuple[str, dict] | tuple[None, list[str]]:
    errors = []
    for py in dict.fromkeys([sys.executable, str(ROOT / ".venv" / "bin" / "python")]):
        if not Path(py).exists():
            continue
        env = dict(os.environ, PYTHONPATH=str(src))
        r = subprocess.run([py, "-c", _EDGEVIZ_CODE, *names], cwd=src, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            return py, json.loads(r.stdout.strip().splitlines()[-1])
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        errors.append(f"{py}: {last}")
    return None, errors


def edgeviz_arenas(names: list[str], source: str = "auto") -> dict:
    """edgeviz's planned arena, plan_config(cfg).peak_sram, for each configuration.

    Runs in this interpreter if edgeviz's dependencies are here, else in the main venv (.venv).
    source: "tree" = the working tree as it is; "head" = the committed edgeviz/ and tests/ of HEAD,
    exported read-only to a temporary folder (git archive); "auto" = the tree, or HEAD if the tree's
    edgeviz does not run (e.g. someone is mid-edit)."""
    info = {"git_head": _git("rev-parse", "HEAD").strip()}
    with contextlib.suppress(Exception):
        info["tree_dirty_edgeviz"] = bool(_git("status", "--porcelain", "--", "edgeviz", "tests").strip())
    errors = []
    if source in ("tree", "auto"):
        py, res = _plan_with(ROOT, names)
        if py is not None:
            return {**info, "source": "working tree", "python": py, "arenas": res}
        errors += [f"tree: {e}" for e in res]
    if source in ("head", "auto"):
        with tempfile.TemporaryDirectory(prefix="edgeviz-head-") as tmp:
            top = set(_git("ls-tree", "--name-only", "HEAD").split())
            want = [p for p in ("pyproject.toml", "edgeviz", "tests", "targets", "firmware", "hls") if p in top]
            tar = subprocess.run(["git", "archive", "--format=tar", "HEAD", *want], cwd=ROOT,
                                 capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
            py, res = _plan_with(Path(tmp), names)
        if py is not None:
            return {**info, "source": "HEAD (git archive)", "python": py, "arenas": res}
        errors += [f"HEAD: {e}" for e in res]
    raise RuntimeError("edgeviz plan_config failed: " + "; ".join(errors))


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": sys.version.split()[0]}
    for p in ("tensorflow-cpu", "tensorflow", "keras", "tflite-micro", "numpy", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[p] = version(p)
    return out


# ------------------------------------------------------------------ main
def run_config(name: str, n_check: int, tol: float, keep_dir: Path | None, fold_scale: bool = False) -> dict:
    from tests.models import CONFIGS, inputs, make

    cfg = CONFIGS[name]
    t0 = time.time()
    pt = make(name)
    pt_sig = sigmoid_gelu_copy(pt)
    km = build_keras(pt, fold_scale)

    x = inputs(cfg, n_check, seed=123).astype(np.float32)  # NCHW
    with torch.no_grad():
        ref_sig = pt_sig(torch.from_numpy(x)).numpy()
        ref_exact = pt(torch.from_numpy(x)).numpy()
    x_nhwc = x.transpose(0, 2, 3, 1)
    k_out = np.concatenate([np.asarray(km(x_nhwc[i:i + 1], training=False)) for i in range(n_check)])
    err_sig = float(np.abs(k_out - ref_sig).max())
    err_exact = float(np.abs(k_out - ref_exact).max())
    if not err_sig <= tol:
        raise AssertionError(f"{name}: Keras vs PyTorch(sigmoid GELU) max |diff| {err_sig:.3g} > {tol}")

    with quiet():
        tfl = to_int8_tflite(km, cfg)
    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        (keep_dir / f"{name}.tflite").write_bytes(tfl)
    ops_used = tflite_ops(tfl)

    # int8 sanity: the TFLM output on the check inputs against the float model
    big = 4 * len(tfl) + (1 << 20)
    y8 = tflm_int8_outputs(tfl, big, x_nhwc)
    agree = int((y8.argmax(1) == ref_sig.argmax(1)).sum())
    q_err = float(np.abs(y8 - ref_sig).max())

    alloc, text = tflm_allocations(tfl, big)
    if not {"total", "head", "tail"} <= alloc.keys():
        raise RuntimeError(f"{name}: no 'Arena allocation' lines in print_allocations():\n{text[:2000]}")
    # an arena smaller than the recorded total (less the arena's start alignment) cannot work
    min_arena, crashes = bisect_arena(tfl, max(0, alloc["total"] - 16), alloc["total"] + 4096)
    return {
        "config": cfg.to_dict(),
        "tflite_bytes": len(tfl),
        "tflite_ops": sorted(set(ops_used)),
        "n_ops": len(ops_used),
        "keras_vs_torch_sigmoid_gelu_max_abs": err_sig,
        "keras_vs_torch_exact_gelu_max_abs": err_exact,
        "int8_tflm_vs_float_max_abs": q_err,
        "int8_tflm_top1_agree": f"{agree}/{n_check}",
        "tflm_arena_total": alloc["total"],
        "tflm_arena_head": alloc["head"],
        "tflm_arena_tail": alloc["tail"],
        "tflm_min_arena_size_bisect": min_arena,
        "tflm_graph_liveness_peak": liveness_peak(tfl),
        "tflm_tail_parts": alloc["parts"],
        "tflm_bisect_crashed_sizes": crashes,
        "seconds": round(time.time() - t0, 1),
    }


def main(argv=None) -> int:
    from tests.models import CONFIGS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tflm.json")
    ap.add_argument("--check", type=int, default=16, help="inputs for the float and int8 checks")
    ap.add_argument("--tol", type=float, default=1e-3, help="Keras vs PyTorch float tolerance")
    ap.add_argument("--edgeviz-source", choices=["auto", "tree", "head"], default="auto",
                    help="edgeviz code to plan with: working tree, committed HEAD, or tree-else-HEAD")
    ap.add_argument("--fold-scale", action="store_true",
                    help="fold the attention scale into q instead of a MUL after q k^T")
    ap.add_argument("--keep-tflite", type=Path, default=None, help="folder to save the .tflite files")
    a = ap.parse_args(argv)
    # a crash inside TFLM or the converter happens while fd 2 may be redirected: keep a copy of
    # the real stderr for the traceback
    import faulthandler
    faulthandler.enable(file=os.fdopen(os.dup(2), "w"), all_threads=False)

    print(f"note: {GELU_NOTE}")
    print("note: attention scale " + ("folded into the q columns of the qkv projection" if a.fold_scale
                                      else "kept as a MUL after q k^T, as in PyTorch"))
    ev = edgeviz_arenas(a.configs, a.edgeviz_source)
    print(f"edgeviz arenas from the {ev['source']} (HEAD {ev['git_head'][:12]}), {ev['python']}")
    rows = {}
    for name in a.configs:
        r = run_config(name, a.check, a.tol, a.keep_tflite, a.fold_scale)
        e = ev["arenas"][name]["peak_sram"]
        r["edgeviz_arena"] = e
        r["edgeviz_lower_bound"] = ev["arenas"][name]["lower_bound"]
        r["ratio_edgeviz_over_tflm_total"] = e / r["tflm_arena_total"]
        r["ratio_edgeviz_over_tflm_head"] = e / r["tflm_arena_head"]
        rows[name] = r
        print(f"  {name}: keras-vs-torch {r['keras_vs_torch_sigmoid_gelu_max_abs']:.2e} "
              f"(vs exact GELU {r['keras_vs_torch_exact_gelu_max_abs']:.2e}), int8 top-1 "
              f"{r['int8_tflm_top1_agree']}, {r['n_ops']} ops, {r['seconds']} s", flush=True)

    hdr = (f"{'config':<15} {'TFLM total':>10} {'TFLM head':>10} {'TFLM tail':>10} {'bisect':>8} "
           f"{'live LB':>8} {'edgeviz':>8} {'ev/total':>9} {'ev/head':>8}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for name, r in rows.items():
        print(f"{name:<15} {r['tflm_arena_total']:>10,} {r['tflm_arena_head']:>10,} {r['tflm_arena_tail']:>10,} "
              f"{r['tflm_min_arena_size_bisect']:>8,} {r['tflm_graph_liveness_peak']:>8,} {r['edgeviz_arena']:>8,} "
              f"{r['ratio_edgeviz_over_tflm_total']:>9.3f} {r['ratio_edgeviz_over_tflm_head']:>8.3f}")
    print("TFLM head = activations + kernel scratch (non-persistent); tail = persistent runtime structures;\n"
          "bisect = smallest arena_size with which TFLM allocates and invokes (above total: the greedy\n"
          "planner's temporary bookkeeping during AllocateTensors); live LB = peak of live activation\n"
          "bytes of the .tflite graph (a lower bound for the head of any whole-tensor planner).")

    write_json_atomic(a.out, {
        "benchmark": "tflm_arena",
        "note": GELU_NOTE,
        "attention_scale": "folded into the q projection" if a.fold_scale else "MUL after q k^T",
        "versions": versions(),
        "edgeviz": {k: v for k, v in ev.items() if k != "arenas"},
        "edgeviz_target": "stm32f746 (plan_config default)",
        "results": rows,
    })
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
