"""The fuzz campaign (tests/fuzz_cases.py) with fixed seeds and few cases per family: every case ends
in a correct build or one line, never an internal error. bench/bench_fuzz.py runs many more."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_cases as fz
from edgeviz.errors import EdgevizError
from edgeviz.model import ViT, ViTConfig, save_model

# fixed seeds, few cases: the suite stays fast; EDGEVIZ_FUZZ_SCALE multiplies the counts
SCALE = int(os.environ.get("EDGEVIZ_FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(max_examples=n * SCALE, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz_model")
    torch.manual_seed(0)
    m = ViT(ViTConfig(img_size=16, patch=8, embed=32, heads=2, depth=1, rank_ratios=(0.5,))).eval()
    save_model(m, d / "model.pt")
    return d / "model.pt"


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory) -> bytes:
    d = tmp_path_factory.mktemp("fuzz_onnx")
    m = fz.make_vit(ViTConfig(img_size=16, patch=8, embed=16, heads=2, depth=1), "normal")
    torch.onnx.export(m, (m.example_input(1),), str(d / "m.onnx"), dynamo=False, opset_version=17)
    return (d / "m.onnx").read_bytes()


@fuzz(10)
@given(cfg=fz.vit_configs(), weights=fz.WEIGHTS)
def test_random_vit_configurations_build_bit_exact(cfg, weights):
    need("gcc")
    fz.check_config(cfg, weights)


@fuzz(3)
@given(cfg=fz.vit_configs())
def test_random_vit_configurations_through_both_exporters(cfg, tmp_path_factory):
    fz.check_exporters(cfg, tmp_path_factory.mktemp("exp"))


@fuzz(40)
@given(mutation=fz.MUTATIONS)
def test_damaged_onnx_files(onnx_bytes, mutation, tmp_path_factory, capsys):
    fz.check_model_file(fz.mutate(onnx_bytes, *mutation), ".onnx", tmp_path_factory.mktemp("onnx"))
    assert capsys.readouterr().out == ""         # TVM's own prints stay off the terminal


@pytest.mark.parametrize("opset", [12, 15, 19])
def test_onnx_opsets_the_other_tests_do_not_cover(opset, tmp_path):
    """Opsets 11, 13, 14, 16-18, 20 and 21 are read in test_frontend and test_zoo; these are the rest
    (the TorchScript exporter writes them all)."""
    cfg = ViTConfig(img_size=16, patch=8, embed=16, heads=2, depth=1)
    assert fz.check_opset(cfg, opset, False, tmp_path) == "built"


@fuzz(40)
@given(mutation=fz.MUTATIONS)
def test_damaged_tflite_files(mutation, tmp_path_factory):
    """A small int8 .tflite (tests/fixtures/tflite/ops_mix.tflite) truncated, flipped, grown or zeroed:
    it reads and its reference runs, or one line says what is wrong."""
    data = (Path(__file__).parent / "fixtures" / "tflite" / "ops_mix.tflite").read_bytes()
    fz.check_model_file(fz.mutate(data, *mutation), ".tflite", tmp_path_factory.mktemp("tflite"))


@fuzz(10)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".tflite", ".pt", ".pt2", ".onnx"]))
def test_arbitrary_bytes_as_a_model_file(data, suffix, tmp_path_factory):
    assert fz.check_model_file(data, suffix, tmp_path_factory.mktemp("bytes")) == "refused"


@pytest.mark.parametrize("kind", ["normal", "nan", "inf", "zeros", "constant", "huge", "uint8", "channels-last",
                                  "one-sample", "wrong-shape", "flat", "empty", "no-x", "object"])
def test_odd_calibration_arrays(model_file, kind, tmp_path):
    need("gcc")
    expect = {"normal": "built", "zeros": "built", "constant": "built", "uint8": "built", "channels-last": "built",
              "one-sample": "built", "huge": "built"}.get(kind, "refused")
    assert fz.check_calibration(model_file, kind, tmp_path) == expect


@fuzz(8)
@given(switches=fz.SWITCHES, target=st.sampled_from(fz.available_targets()))
def test_any_switches_on_any_target(model_file, switches, target):
    fz.check_switches(model_file, switches, target)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory, model_file):
    need("arm-none-eabi-gcc")
    from edgeviz.project import build
    d = tmp_path_factory.mktemp("fuzz_builds")
    build(model_file, "stm32f746", d / "a")
    torch.manual_seed(1)
    other = ViT(ViTConfig(img_size=16, patch=8, embed=32, heads=2, depth=1, rank_ratios=(0.5,))).eval()
    save_model(other, d / "other.pt")
    build(d / "other.pt", "stm32f746", d / "b")
    return d / "a", d / "b"


@pytest.mark.qemu
@pytest.mark.parametrize("how", ["intact", "no-build.json", "no-model.evq", "no-elf", "build.json-not-json",
                                 "build.json-drop-key", "build.json-wrong-type", "model.evq-garbage",
                                 "other-model-evq"])
def test_damaged_build_folders(two_builds, how):
    need("qemu-system-arm")
    a, b = two_builds
    # a dropped or retyped field of build.json may be one validate does not need: either outcome is
    # right then, as long as it is not an internal error or a wrong comparison
    either = how in ("build.json-drop-key", "build.json-wrong-type")
    for seed in range(4 if either else 1):
        got = fz.check_build_folder(a, b, how, seed)
        assert either or got == ("built" if how == "intact" else "refused")


def test_names_in_the_model_file_never_reach_generated_code(onnx_bytes, tmp_path):
    """Node, tensor and initializer names come from whoever made the model: C comment terminators,
    braces and newlines in them must not reach model.c or the HLS project."""
    need("gcc")
    from edgeviz.project import build
    evil = 'x*/ } void evil(void) { /*\n#include "evil.h"'
    model = onnx.load_from_string(onnx_bytes)
    rename = {}
    for i, t in enumerate([*model.graph.initializer]):
        rename[t.name] = f"{evil}{i}"
    for i, n in enumerate(model.graph.node):
        n.name = f"{evil}node{i}"
        for j, o in enumerate(n.output):
            if o not in [v.name for v in model.graph.output]:
                rename.setdefault(o, f"{evil}t{i}_{j}")
    for t in model.graph.initializer:
        t.name = rename[t.name]
    for n in model.graph.node:
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    f = tmp_path / "evil.onnx"
    onnx.save(model, str(f))
    x = np.random.default_rng(0).standard_normal((4, 1, 16, 16))
    np.savez(tmp_path / "calib.npz", x=x)
    build(f, "stm32f746", tmp_path / "mcu", tmp_path / "calib.npz", firmware=False)
    build(f, "zcu102", tmp_path / "fpga", tmp_path / "calib.npz")
    for p in [*(tmp_path / "mcu").rglob("*.[ch]"), *(tmp_path / "fpga").rglob("*.cpp"), *(tmp_path / "fpga").rglob("*.h")]:
        assert "evil" not in p.read_text(), p


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    """An ONNX file whose weights point at a file outside its own folder (../, an absolute path) is
    refused before anything reads that file."""
    m = fz.make_vit(ViTConfig(img_size=16, patch=8, embed=16, heads=2, depth=1), "normal")
    (tmp_path / "model").mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.random.default_rng(0).bytes(1 << 16))
    f = tmp_path / "model" / "m.onnx"
    torch.onnx.export(m, (m.example_input(1),), str(f), dynamo=False, opset_version=17)
    model = onnx.load(str(f))
    from onnx.external_data_helper import convert_model_to_external_data
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(model, str(f))
    for where in ("../secret.bin", str(secret)):
        model = onnx.load(str(f), load_external_data=False)
        for t in model.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = where
        onnx.save(model, str(f))
        with pytest.raises(EdgevizError, match="outside") as e:
            fz.load_graph(f)
        assert "\n" not in str(e.value)


def test_a_requantisation_multiplier_beyond_2_30_saturates_as_the_exact_one():
    """An output range far below its inputs' (found by the campaign: embed 1, huge weights) asks for a
    multiplier >= 2^30: every nonzero accumulator saturates then, and (2^31 - 1) * 2^-1 gives exactly
    those bytes."""
    from edgeviz import intmath as im
    acc = np.array([-(1 << 20), -5, -1, 0, 1, 7, 1 << 20])
    for real in (2.0 ** 30, 3e9, 1e12):
        m, s = im.quantize_multiplier(real)
        np.testing.assert_array_equal(im.requantize(acc, m, s), np.clip(np.round(acc * real), -128, 127))
