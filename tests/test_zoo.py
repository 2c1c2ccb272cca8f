"""Models users bring: small random-init ViTs from torchvision, timm and Hugging Face (tests/zoo.py),
through every way they hand them over (torch.export .pt2 and three ONNX exports), imported by what
they compute; built, their host C and firmware on QEMU equal the int8 reference byte for byte, the
HLS C simulation too, and int8 keeps the float model's answers."""
import json

import numpy as np
import pytest
import torch
from conftest import need
from zoo import (EXPORTS, HF_FAMILY, TIMM_FAMILY, ZOO, export, make_hf_family, make_timm_family, make_zoo,
                 zoo_inputs)

from edgeviz.project import compile_graph
from edgeviz.frontend import import_exported, import_onnx, import_torch
from edgeviz.quantize import float_logits, quantize_image, run_float, run_int8

pytest.importorskip("timm")
pytest.importorskip("transformers")


def _reference(m, x):
    with torch.no_grad():
        return m(torch.as_tensor(x, dtype=torch.float32)).numpy()


@pytest.mark.parametrize("how", EXPORTS)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_export_path_imports_the_same_model(name, how, tmp_path):
    m = make_zoo(name)
    f = export(m, ZOO[name][1], how, tmp_path / "model")
    g = import_exported(f) if how == "pt2" else import_onnx(f)
    x = zoo_inputs(name, 2)
    got = np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x])
    ref = _reference(m, x)
    np.testing.assert_allclose(got, ref, atol=1e-4 * max(1.0, np.abs(ref).max()))
    assert {n.op for n in g.nodes} <= {"patch_embed", "layernorm", "linear", "attention", "activation", "add",
                                       "mul", "select_token", "mean_tokens"}


def _compiled(name, target="stm32f746"):
    m = make_zoo(name)
    g = import_torch(m, torch.zeros((1,) + ZOO[name][1]))
    return m, compile_graph(g, zoo_inputs(name, 32, seed=1), target)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_host_c_is_bit_exact_and_int8_keeps_the_answers(name, tmp_path):
    need("gcc")
    from edgeviz.backends.c_toolchain import HostModel, build_host_library, write_model_sources
    m, c = _compiled(name)
    write_model_sources(c.model_c, c.model_h, tmp_path / "model")
    host = HostModel(build_host_library(tmp_path / "model", tmp_path / "model.so"), c.model_h)
    x = zoo_inputs(name, 48, seed=2)
    for xi in np.concatenate([x[:8], 3 * x[8:12]]):      # also inputs beyond the calibrated range
        xq = quantize_image(c.graph, xi)
        np.testing.assert_array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1))
    fl = _reference(m, x)
    np.testing.assert_allclose(float_logits(c.graph, x), fl, atol=1e-4 * np.abs(fl).max())
    q = np.stack([run_int8(c.graph, quantize_image(c.graph, xi)).reshape(-1) for xi in x]) \
        * c.graph.tensors[c.graph.outputs[0]].scale
    cosine = np.sum(q * fl, 1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(fl, axis=1))
    assert np.mean(q.argmax(1) == fl.argmax(1)) >= 0.95
    assert cosine.mean() >= 0.99


@pytest.mark.parametrize("name", ["timm-cls", "timm-reg-noembedclass", "timm-deit-distilled"])
def test_prefix_tokens_keep_their_precision_at_the_library_init(name):
    """timm starts cls / register / distillation tokens near zero: in the patch rows' int8 scale they
    would hold 0-7 levels (output cosine 0.44-0.95); at a scale of their own they keep the answer."""
    from edgeviz.quantize import prefix_scaled, quantize
    torch.manual_seed(0)
    m = ZOO[name][0]().eval()
    g = import_torch(m, torch.zeros((1,) + ZOO[name][1]))
    quantize(g, zoo_inputs(name, 64, seed=1))
    assert prefix_scaled(g) and all(g.tensors[t].prefix_scale < g.tensors[t].scale for t in prefix_scaled(g)[:1])
    x = zoo_inputs(name, 48, seed=2)
    fl = float_logits(g, x)
    q = np.stack([run_int8(g, quantize_image(g, xi)).reshape(-1) for xi in x]) * g.tensors[g.outputs[0]].scale
    assert np.mean(np.sum(q * fl, 1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(fl, axis=1))) >= 0.99


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["torchvision-vit", "timm-deit-distilled", "hf-vit-gelu-tanh", "timm-relu-nobias",
                                  "timm-swiglu"])
def test_firmware_on_qemu_is_bit_exact(name, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.backends.mcu import write_project
    from edgeviz.runner import api
    _, c = _compiled(name, "mps2-an500")
    out = tmp_path / "build"
    write_project(c, out, name, zoo_inputs(name, 4))
    assert json.loads((out / "build.json").read_text())["elf_arena_bytes"] == c.plan.peak
    x = zoo_inputs(name, 6, seed=3)
    xq = np.stack([quantize_image(c.graph, xi) for xi in np.concatenate([x, 4 * x[:2]])])
    want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
    r = api.validate(out, "emulator", xq, want)
    assert r["bit_exact"] == len(xq), r["mismatched"]


@pytest.mark.parametrize("name", ["timm-avg-layerscale", "timm-cls-avgpool", "timm-deit-distilled", "hf-vit",
                                  "timm-swiglu"])
def test_hls_csim_is_bit_exact(name, tmp_path):
    need("g++")
    from edgeviz.project import build
    m = make_zoo(name)
    f = export(m, ZOO[name][1], "pt2", tmp_path / "model")
    np.savez(tmp_path / "calib.npz", x=zoo_inputs(name, 8, seed=1))
    s = build(f, "zcu102", tmp_path / "hls", tmp_path / "calib.npz", csim=True)
    assert s["csim"]["vectors"] > 0 and s["csim"]["mismatching_bytes"] == 0


def test_cli_builds_a_pt2_and_validates_it_on_inputs_without_labels(tmp_path, capsys):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.cli import main
    m = make_zoo("hf-vit")
    f = export(m, ZOO["hf-vit"][1], "pt2", tmp_path / "model")
    np.savez(tmp_path / "calib.npz", x=zoo_inputs("hf-vit", 16, seed=1))
    assert main(["build", f, "--target", "mps2-an500", "--calib", str(tmp_path / "calib.npz"),
                 "--mean", "0.5", "--std", "0.25,0.5,1", "-o", str(tmp_path / "b")]) == 0
    pre = json.loads((tmp_path / "b" / "build.json").read_text())["preprocess"]
    assert pre["mean"] == [0.5] * 3 and pre["std"] == [0.25, 0.5, 1.0]
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "b"), "--port", "emulator", "-n", "4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] == 4 and "random inputs" in r["inputs"] and "labels_top1_device" not in r
    from PIL import Image                    # the user's own unlabelled photos, through the recorded --mean/--std
    (tmp_path / "photos").mkdir()
    for i, a in enumerate(np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)):
        Image.fromarray(a).save(tmp_path / "photos" / f"{i}.jpg")
    assert main(["validate", str(tmp_path / "b"), "--port", "emulator", "--data", str(tmp_path / "photos"),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] == 3 and "3 images" in r["inputs"]


@pytest.mark.parametrize("what,build,says", [
    ("attention pooling", lambda: make_zoo.__globals__["_timm"](global_pool="map", class_token=False),
     "global_pool='map'"),
    ("normalised q and k", lambda: make_zoo.__globals__["_timm"](qk_norm=True), "layer_norm"),
    ("a conv stem", lambda: __import__("timm").create_model("mobilevit_xxs", pretrained=False, num_classes=10),
     "convolution with stride [2, 2]"),
    ("an image size torch.export cannot trace", lambda: make_zoo.__globals__["_timm"](img_size=48),
     "torch.export could not trace"),
])
def test_what_edgeviz_cannot_read_is_refused_in_one_line(what, build, says):
    from edgeviz.errors import EdgevizError
    with pytest.raises(EdgevizError) as e:
        import_torch(build().eval(), torch.zeros(1, 3, 32, 32))
    assert says in str(e.value) and "\n" not in str(e.value), what


@pytest.mark.parametrize("name", [f"timm:{n}" for n in sorted(TIMM_FAMILY)] + [f"hf:{n}" for n in sorted(HF_FAMILY)])
def test_vit_families_import_or_are_refused_in_one_line(name):
    from edgeviz.errors import EdgevizError
    lib, name = name.split(":")
    if lib == "timm":
        cfg, reads = TIMM_FAMILY[name]
        m, size = make_timm_family(name), cfg.get("img_size", 32)
    else:
        m, size, reads = make_hf_family(name), 32, HF_FAMILY[name][2]
    try:
        g = import_torch(m, torch.zeros(1, 3, size, size))
    except EdgevizError as e:
        assert not reads and "\n" not in str(e), str(e)
        return
    assert reads, f"{name} imports now: move it to the models that read"
    x = np.random.default_rng(0).standard_normal((2, 3, size, size))
    ref = _reference(m, x)
    np.testing.assert_allclose(np.stack([run_float(g, xi)[g.outputs[0]][0] for xi in x]), ref,
                               atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_a_pickled_module_needs_trust_pickle(tmp_path, capsys):
    from edgeviz.cli import main
    from edgeviz.model import ViT, ViTConfig
    torch.save(ViT(ViTConfig(img_size=16, patch=8, embed=16, heads=1, depth=1)).eval(), tmp_path / "whole.pt")
    assert main(["analyze", str(tmp_path / "whole.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trust-pickle" in err and "\x1b" not in err
    assert main(["analyze", str(tmp_path / "whole.pt"), "--trust-pickle", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] > 0
