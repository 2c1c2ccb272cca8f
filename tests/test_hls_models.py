"""Generated HLS projects of the five test ViTs (tests/models.py), C-simulated with g++, against
edgeviz.quantize.run_int8 byte for byte; plus the schedule ablations the FPGA backend takes (token
overwriting off, patch-embedding decomposition off) and the one it refuses (operator integration off).

Each project is compiled once (run_csim reuses the executable for every later batch of inputs).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from models import CONFIGS, inputs, make

from edgeviz.model import ViTConfig
from edgeviz.targets import load_fpga_target

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

N_CALIB = 8          # float calibration images; the first N_TB become the testbench vectors
N_TB = 4


def _compiled(name: str):
    """The graph generate_from_model builds for this model and calibration set (same calls, same order)."""
    from edgeviz.frontend import graph_from_vit
    from edgeviz.quantize import quantize

    m = make(name)
    calib = inputs(m.cfg, N_CALIB)
    g = graph_from_vit(m.eval())
    quantize(g, calib)
    return m, g, calib


def _random_images(g, cfg, seed: int) -> np.ndarray:
    """Int8 inputs the testbench did not hold: quantized unseen float images (wider than the
    calibration range, so some pixels clamp) and uniformly random int8 images."""
    from edgeviz.quantize import quantize_image

    x = np.random.default_rng(seed).normal(scale=1.5, size=(3, cfg.in_chans, cfg.img_size, cfg.img_size))
    q = np.stack([quantize_image(g, xi) for xi in x])
    u = np.random.default_rng(seed + 1).integers(-128, 128, size=(3, *q.shape[1:])).astype(np.int8)
    return np.concatenate([q, u])


def _check_bit_exact(proj, g, xs):
    from edgeviz.hls import csim
    from edgeviz.quantize import run_int8

    vectors, bad = csim.check_reference(proj.path)
    assert (vectors, bad) == (N_TB, 0), f"{bad} bytes differ on the testbench vectors"
    out = csim.run_csim(proj.path, xs)
    ref = np.stack([np.asarray(run_int8(g, x)).reshape(-1) for x in xs])
    diff = np.argwhere(out != ref)
    assert diff.size == 0, (f"{len(diff)} of {ref.size} bytes differ; first (vector, byte) {tuple(diff[0])}: "
                            f"csim {out[tuple(diff[0])]}, run_int8 {ref[tuple(diff[0])]}")
    return ref


@needs_gxx
@pytest.mark.parametrize("name", list(CONFIGS))
def test_model_csim_bit_exact(tmp_path, name):
    """generate_from_model (calibrated) -> g++ C simulation == run_int8 on the testbench vectors and on
    six more random inputs, for every test config."""
    from edgeviz.project import hls_project_from_model
    from edgeviz.quantize import quantize_image, run_int8

    m, g, calib = _compiled(name)
    proj = hls_project_from_model(m, tmp_path / "prj", "zcu102", calib=calib, n_vectors=N_TB)
    assert proj.estimate.fits and proj.vectors == N_TB
    # the project's reference is this graph's run_int8: generate_from_model quantized identically
    tb = np.stack([quantize_image(g, x) for x in calib[:N_TB]])
    tb_ref = np.stack([np.asarray(run_int8(g, x)).reshape(-1) for x in tb])
    assert np.array_equal(np.fromfile(proj.path / "tb_data" / "reference.bin", np.int8).reshape(tb_ref.shape),
                          tb_ref)
    ref = _check_bit_exact(proj, g, _random_images(g, m.cfg, seed=7))
    assert ref.shape[1] == m.cfg.num_classes
    assert len(np.unique(ref)) > 3          # not a degenerate (all-clamped) output


@needs_gxx
@pytest.mark.parametrize("name, switches", [
    ("cls-lowrank", dict(token_overwrite=False, split_qkv=True)),     # the split on: not the FPGA default
    ("rgb-deep-mean", dict(patch_decompose=False)),
    ("odd-1head", dict(token_overwrite=False, patch_decompose=False)),
    ("mean-3heads", dict(split_qkv=False)),
    ("cls-wide-mlp3", dict(split_qkv=False, token_overwrite=False)),
    ("cls-lowrank", dict(fuse=False)),
    ("mean-3heads", dict(fuse=False, token_overwrite=False)),
    ("rgb-deep-mean", dict(fuse=False, patch_decompose=False)),
])
def test_ablation_schedules_csim_bit_exact(tmp_path, name, switches):
    """The schedules without token overwriting / patch-embedding decomposition / operator integration,
    with or without the qkv split (Switches(...) keeps it on unless told; the FPGA default has it off)
    generate projects whose C simulation is bit-exact too; without overwriting no buffer holds two
    tensors."""
    from edgeviz.project import hls_project_from_model
    from edgeviz.passes import Switches

    m, g, calib = _compiled(name)
    proj = hls_project_from_model(m, tmp_path / "prj", "zcu102", calib=calib, n_vectors=N_TB,
                               switches=Switches(**switches))
    meta = json.loads((proj.path / "project.json").read_text())
    for k, v in switches.items():
        assert meta["switches"][k] is v
    top = (proj.path / "ev_top.cpp").read_text()
    if not switches.get("token_overwrite", True):
        assert "token overwriting" not in top
    if not switches.get("patch_decompose", True):
        assert "ev_patch_embed<" not in top and "ev_linear<" in top
    if not switches.get("fuse", True):        # scores -> softmax -> p.v over materialised [H*N, N] tensors
        assert "ev_attn_scores<" in top and "ev_softmax<" in top and "ev_attn_av<" in top
        assert "ev_attention" not in top and "for (int r = 0;" not in top
        if switches.get("token_overwrite", True):
            assert "softmax (output over" in top
    elif switches.get("split_qkv", True):     # K and V for all tokens, each query row inside the chain
        assert "ev_attention_kv_row<" in top and "ev_attention_row<" not in top
    else:                                     # the fused [N, 3E] qkv buffer
        assert "ev_attention_row<" in top and "ev_attention_kv_row<" not in top
    _check_bit_exact(proj, g, _random_images(g, m.cfg, seed=11))


@pytest.mark.parametrize("name", ["cls-lowrank", "mean-3heads"])
def test_token_overwriting_saves_buffer_bram(name):
    """Same reuse factors, same bank assignment: the activation buffers with token overwriting take
    fewer BRAM18K than without (edgeviz estimate), and never more in total."""
    from edgeviz.hls import estimate as est
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.hls.generate import assign_banks, reuse_for, schedule_estimate
    from edgeviz.passes import schedule
    from edgeviz.planner import plan

    _, g, _ = _compiled(name)
    board = load_fpga_target("zcu102")
    s_on = schedule(g, fpga_switches())
    rf = reuse_for(s_on, 16)
    figures = {}
    for label, sw in (("on", fpga_switches()), ("off", fpga_switches(token_overwrite=False))):
        s = schedule(g, sw)
        assert any(st.alias for st in s.steps) == (label == "on")
        banks, _ = assign_banks(plan(s))
        e = schedule_estimate(s, banks, rf, board, check=False)
        figures[label] = (sum(k for _, _, k in e.buffers), e.bram18k)
    assert figures["on"][0] < figures["off"][0]
    assert figures["on"][1] < figures["off"][1]


def test_fpga_switch_checks():
    """build/analyze accept every switch on or off (the qkv split and rank padding off by default on the
    FPGA, on by default on the MCU); a schedule with an op that has no template is a one-line user error."""
    import dataclasses

    from edgeviz.errors import EdgevizError
    from edgeviz.backends.fpga import FpgaBackend
    from edgeviz.passes import Switches

    for kw in ({}, {"token_overwrite": False}, {"patch_decompose": False},
               {"token_overwrite": False, "patch_decompose": False}, {"split_qkv": False}, {"fuse": False},
               {"fuse": False, "token_overwrite": False, "patch_decompose": False}):
        sw = FpgaBackend().switches(Switches(**kw))
        assert all(getattr(sw, k) == v for k, v in kw.items())
        assert sw.split_qkv == kw.get("split_qkv", True)
        assert {f.name for f in dataclasses.fields(sw)} == {f.name for f in dataclasses.fields(Switches())}
        assert not sw.kv_per_head                   # no per-head templates: always off here
    fpga_default = Switches(split_qkv=False, pad_rank=False, kv_per_head=False, keep_rank=False, stream_scores=False,
                            widen_weights=False)
    assert FpgaBackend().switches(None) == fpga_default      # the FPGA default
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.project import default_switches
    assert default_switches("zcu102") == fpga_switches() == fpga_default
    assert default_switches("stm32f746") == Switches()      # the MCU default keeps the split and pads ranks
    assert fpga_switches(token_overwrite=False) == Switches(token_overwrite=False, split_qkv=False, pad_rank=False,
                                                            kv_per_head=False, keep_rank=False, stream_scores=False,
                                                            widen_weights=False)
    from edgeviz.hls.generate import check_switches
    with pytest.raises(EdgevizError, match="no K/V-per-head schedule"):      # a schedule asked for it anyway
        check_switches(fpga_switches(kv_per_head=True))
    from types import SimpleNamespace

    from edgeviz.hls.generate import _check_ops
    from edgeviz.ir import Node

    bad = SimpleNamespace(steps=[SimpleNamespace(nodes=[Node("conv3d", "blocks.0.conv", [], [])])])
    with pytest.raises(EdgevizError, match="no template for op 'conv3d'") as e:
        _check_ops(bad)
    assert "\n" not in str(e.value)


def test_the_search_judges_an_fpga_board_as_the_build_plans_it(tmp_path):
    """lower.plan_config (the search's oracle) on an FPGA target: the same buffers as the HLS project's
    planner, fits on the board's resources, and the SRAM / flash budgets bind in one line each."""
    from edgeviz.lower import plan_config
    from edgeviz.project import hls_project_from_model

    m, g, calib = _compiled("cls-lowrank")
    rep = plan_config(m.cfg, "zcu102")
    assert rep.fits and not rep.why and rep.macs > 0
    proj = hls_project_from_model(m, tmp_path / "prj", "zcu102", calib=calib, n_vectors=2)
    meta = json.loads((proj.path / "project.json").read_text())
    assert rep.peak_sram == meta["planner_peak_bytes"]
    tight = plan_config(m.cfg, "zcu102", sram_budget=rep.peak_sram - 1)
    assert not tight.fits and "SRAM budget by 1 bytes" in tight.why
    rom = plan_config(m.cfg, "zcu102", flash_budget=rep.flash - 8)
    assert not rom.fits and "exceed the" in rom.why
    big = plan_config(ViTConfig(img_size=64, patch=4, embed=192, heads=3, depth=2), "pynq-z2")
    assert not big.fits and "available" in big.why and "xc7z020" in big.why
