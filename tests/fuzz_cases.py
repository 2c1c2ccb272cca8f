"""The fuzz campaign's families: what a user may feed edgeviz, drawn at random, and what must come of
it: a correct build (the host C equal to the int8 reference) or one line saying what is wrong, never
an internal error. tests/test_fuzz.py runs each family with fixed seeds and few cases;
bench/bench_fuzz.py runs many and counts the outcomes.

Every check returns "built" or "refused"; anything else raises (an internal error, a refusal that
spans lines, a build whose bytes differ from the reference).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
from edgeviz.errors import EdgevizError
from edgeviz.frontend import graph_from_vit, import_onnx, import_torch, load_graph
from edgeviz.model import ViT, ViTConfig
from edgeviz.passes import Switches
from edgeviz.project import analyze, compile_graph
from edgeviz.quantize import quantize_image, run_float, run_int8
from edgeviz.targets import available_targets


class InternalError(AssertionError):
    """What the campaign exists to find: edgeviz failed in a way a user should never see."""


def outcome(fn, *args, **kw) -> str:
    """'built' if fn returns, 'refused' for a one-line EdgevizError; anything else is raised."""
    try:
        fn(*args, **kw)
    except EdgevizError as e:
        if "\n" in str(e) or not str(e).strip() or "internal error" in str(e):
            raise InternalError(f"not one clean line: {str(e)!r}") from e
        return "refused"
    return "built"


# ------------------------------------------------------------------ ViT configurations
# the space edgeviz's own ViT takes, degenerate corners included: one patch, embed 8, one channel per
# head, depth 1, rank 1 (the smallest rank ratio on an 8-wide layer)
@st.composite
def vit_configs(draw):
    patch = draw(st.sampled_from([2, 4, 8]))
    grid = draw(st.integers(1, 4))
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    dh = draw(st.sampled_from([1, 2, 4, 8]))
    depth = draw(st.integers(1, 2))
    return ViTConfig(img_size=patch * grid, patch=patch, in_chans=draw(st.integers(1, 3)),
                     num_classes=draw(st.integers(2, 12)), embed=heads * dh, depth=depth, heads=heads,
                     mlp_ratio=draw(st.sampled_from([1.0, 2.0, 4.0])),
                     rank_ratios=tuple(draw(st.sampled_from([1.0, 0.5, 0.1])) for _ in range(depth)),
                     pool=draw(st.sampled_from(["cls", "mean"])))


# how the weights look: trained-like, all zero (every LayerNorm row has zero variance, softmax sees
# equal scores), huge (saturating activations), or one constant
WEIGHTS = st.sampled_from(["normal", "zeros", "huge", "constant"])


def make_vit(cfg: ViTConfig, weights: str, seed: int = 0) -> ViT:
    torch.manual_seed(seed)
    m = ViT(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            if weights == "zeros":
                p.zero_()
            elif weights == "huge":
                p.mul_(1e4)
            elif weights == "constant":
                p.fill_(0.37)
    return m


def host_bit_exact(c, xs: np.ndarray) -> None:
    with tempfile.TemporaryDirectory(prefix="ev_fuzz_") as d:
        write_model_sources(c.model_c, c.model_h, Path(d))
        host = HostModel(build_host_library(Path(d), Path(d) / "m.so"), c.model_h)
        for x in xs:
            xq = quantize_image(c.graph, x)
            got, want = host.run(xq), run_int8(c.graph, xq).reshape(-1)
            if not np.array_equal(got, want):
                raise InternalError(f"host C differs from the int8 reference in {int((got != want).sum())} bytes")


def check_config(cfg: ViTConfig, weights: str, target: str = "stm32f746") -> str:
    """An edgeviz ViT built for an MCU: host C bit-exact on calibration-range and wild inputs."""
    m = make_vit(cfg, weights)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))

    def build():
        c = compile_graph(graph_from_vit(m), x, target)
        host_bit_exact(c, np.concatenate([x[:2], 50 * x[2:]]))
    return outcome(build)


def check_exporters(cfg: ViTConfig, work: Path) -> str:
    """The same ViT through torch.export and the TorchScript ONNX exporter: the float graph equals
    PyTorch, or both paths refuse in one line."""
    m = make_vit(cfg, "normal")
    ex = m.example_input(1)
    x = np.random.default_rng(2).standard_normal((2, cfg.in_chans, cfg.img_size, cfg.img_size))
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()

    def same(g):
        got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
        if not np.allclose(got, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max()))):
            raise InternalError(f"imported float graph differs from PyTorch by {np.abs(got - ref).max():.3g}")

    results = [outcome(lambda: same(import_torch(m, ex)))]
    f = work / "m.onnx"
    torch.onnx.export(m, (ex,), str(f), dynamo=False, opset_version=17)
    results.append(outcome(lambda: same(import_onnx(f))))
    return "built" if results == ["built", "built"] else "refused"


# every ONNX opset torch's exporters write: TorchScript 11-20, torch.export 18 and up
OPSETS = st.sampled_from([(o, False) for o in range(11, 21)] + [(o, True) for o in range(18, 22)])


def check_opset(cfg: ViTConfig, opset: int, dynamo: bool, work: Path) -> str:
    """A ViT exported at one opset by one exporter: the imported float graph equals PyTorch, or the
    refusal is one line (an exporter's own failure is not edgeviz's, and is skipped as 'refused')."""
    import contextlib
    import io
    m = make_vit(cfg, "normal")
    f = work / f"m{opset}.onnx"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(m, (m.example_input(1),), str(f), dynamo=dynamo, opset_version=opset)
    except Exception:  # noqa: BLE001 - torch cannot write this opset: nothing for edgeviz to read
        return "refused"
    x = np.random.default_rng(3).standard_normal((2, cfg.in_chans, cfg.img_size, cfg.img_size))
    with torch.no_grad():
        ref = m(torch.as_tensor(x, dtype=torch.float32)).numpy()

    def same():
        g = import_onnx(f)
        got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
        if not np.allclose(got, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max()))):
            raise InternalError(f"opset {opset} float graph differs from PyTorch by {np.abs(got - ref).max():.3g}")
    return outcome(same)


# ------------------------------------------------------------------ damaged model files
MUTATIONS = st.tuples(st.sampled_from(["truncate", "flip", "insert", "zero-run"]), st.integers(0, 2**31 - 1))


def mutate(data: bytes, how: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    if how == "truncate":
        return bytes(b[:int(rng.integers(0, len(b)))])
    if how == "flip":
        for _ in range(int(rng.integers(1, 24))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        return bytes(b)
    p = int(rng.integers(0, len(b)))
    if how == "insert":
        b[p:p] = rng.integers(0, 256, int(rng.integers(1, 64))).astype(np.uint8).tobytes()
    else:
        b[p:p + int(rng.integers(1, 256))] = bytes(256)[:len(b[p:p + 256])]
    return bytes(b)


def check_model_file(data: bytes, suffix: str, work: Path) -> str:
    """A model file as the build reads it: a graph (whose float IR runs) or one line."""
    f = work / f"model{suffix}"
    f.write_bytes(data)

    def read():
        g, _ = load_graph(f)
        if g.prequantized:                       # an int8 file: its integer reference runs
            run_int8(g, np.zeros(g.tensors[g.inputs[0]].shape, np.int8))
        else:
            c, h, w = g.tensors[g.inputs[0]].shape
            run_float(g, np.zeros((c, h, w)))
    return outcome(read)


# ------------------------------------------------------------------ calibration arrays
ARRAYS = st.sampled_from(["normal", "nan", "inf", "zeros", "constant", "huge", "uint8", "channels-last",
                          "one-sample", "wrong-shape", "flat", "empty", "no-x", "object"])


def calibration_array(kind: str, shape: tuple, seed: int = 0) -> dict:
    c, h, w = shape
    x = np.random.default_rng(seed).standard_normal((6, c, h, w))
    return {"normal": {"x": x}, "nan": {"x": np.where(x > 1, np.nan, x)}, "inf": {"x": np.where(x > 1, np.inf, x)},
            "zeros": {"x": np.zeros_like(x)}, "constant": {"x": np.full_like(x, 3.0)}, "huge": {"x": x * 1e30},
            "uint8": {"x": (np.abs(x) * 60).astype(np.uint8)}, "channels-last": {"x": x.transpose(0, 2, 3, 1)},
            "one-sample": {"x": x[:1]}, "wrong-shape": {"x": x[:, :, :-1]}, "flat": {"x": x.reshape(6, -1)},
            "empty": {"x": x[:0]}, "no-x": {"images": x}, "object": {"x": np.array([None, 1], dtype=object)},
            }[kind]


def check_calibration(model_file: Path, kind: str, work: Path) -> str:
    """`edgeviz build --calib FILE` on an odd array: a build whose C equals the reference, or one line."""
    from edgeviz.project import build
    f = work / "calib.npz"
    g, _ = load_graph(model_file)
    arrays = calibration_array(kind, g.tensors[g.inputs[0]].shape)
    np.savez(f, **arrays)                      # an object array is pickled: edgeviz must not unpickle it
    return outcome(lambda: build(model_file, "stm32f746", work / "out", f, firmware=False))


# ------------------------------------------------------------------ switches x targets
SWITCHES = st.builds(Switches, fuse=st.booleans(), patch_decompose=st.booleans(), token_overwrite=st.booleans(),
                     split_qkv=st.booleans(), pad_rank=st.booleans())


def check_switches(model_file: Path, switches: Switches, target: str) -> str:
    """analyze (and the lowering behind build) with any switches on any target."""
    return outcome(lambda: analyze(model_file, target, switches))


# ------------------------------------------------------------------ build folders
DAMAGE = st.sampled_from(["intact", "no-build.json", "no-model.evq", "no-elf", "build.json-not-json",
                          "build.json-drop-key", "build.json-wrong-type", "model.evq-garbage",
                          "other-model-evq"])


def damage(build_dir: Path, other_dir: Path, how: str, seed: int = 0) -> None:
    meta = build_dir / "build.json"
    if how == "no-build.json":
        meta.unlink()
    elif how == "no-model.evq":
        (build_dir / "model.evq").unlink()
    elif how == "no-elf":
        for f in (build_dir / "firmware").glob("*.elf"):
            f.unlink()
    elif how == "build.json-not-json":
        meta.write_text(meta.read_text()[: len(meta.read_text()) // 2])
    elif how in ("build.json-drop-key", "build.json-wrong-type"):
        d = json.loads(meta.read_text())
        key = sorted(d)[int(np.random.default_rng(seed).integers(0, len(d)))]
        if how == "build.json-drop-key":
            del d[key]
        else:
            d[key] = [{"not": "what was there"}]
        meta.write_text(json.dumps(d))
    elif how == "model.evq-garbage":
        (build_dir / "model.evq").write_bytes(b"\x80\x04not a pickle at all")
    elif how == "other-model-evq":
        shutil.copy2(other_dir / "model.evq", build_dir / "model.evq")


def check_build_folder(build_dir: Path, other_dir: Path, how: str, seed: int = 0) -> str:
    """`edgeviz validate --port emulator` on a damaged copy of a build folder: the device's outputs
    equal the build's reference, or one line saying what to rebuild."""
    from edgeviz.device_cli import validate_build
    with tempfile.TemporaryDirectory(prefix="ev_fuzz_build_") as d:
        b = Path(d) / "build"
        shutil.copytree(build_dir, b)
        damage(b, other_dir, how, seed)

        def run():
            r = validate_build(b, "emulator", 2)
            if r["bit_exact"] != r["n"]:
                raise InternalError(f"{how}: validate ran against a reference that is not this firmware's "
                                    f"({r['bit_exact']}/{r['n']} bit-exact) instead of refusing")
        return outcome(run)
