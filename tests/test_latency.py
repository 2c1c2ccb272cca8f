"""The latency estimate: the MCU's instruction model against the emulator, the FPGA's through the search,
and latency limits as users write them."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from models import CONFIGS

from edgeviz.backends import fpga
from edgeviz.backends.mcu import write_project
from edgeviz.backends.mcu_latency import InstructionModel, fit, kernel_path, load_model, step_work
from edgeviz.errors import EdgevizError
from edgeviz.frontend import graph_from_vit
from edgeviz.lower import lower_config, plan_config
from edgeviz.model import ViT, ViTConfig
from edgeviz.ops.attention import QUAD_MAX, RK4_MAX_DIMS
from edgeviz.ops.patch_embed import LINEAR_BUF_UNITS
from edgeviz.project import compile_graph
from edgeviz.runner import api
from edgeviz.search.budget import parse_duration
from edgeviz.search.judge import Judge
from edgeviz.targets import load_target

from conftest import need
from test_search_doubles import PlannerTestDouble


@pytest.mark.parametrize("text,seconds", [("50ms", 0.05), ("50 ms", 0.05), ("0.05s", 0.05), ("500us", 5e-4),
                                          ("2s", 2.0)])
def test_latency_limits_as_users_write_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["50", "fast", "-1ms", "0ms", "5 min", ""])
def test_a_bad_latency_limit_is_one_line(text):
    with pytest.raises(EdgevizError, match="accepted forms") as e:
        parse_duration(text)
    assert "\n" not in str(e.value)


def test_kernel_path_follows_the_core():
    assert [kernel_path(load_target(t)) for t in ("stm32f746", "stm32u585", "rp2040", "stm32f103", "alif-e3")] == \
        ["dsp", "dsp", "armv6m", "armv7m", "helium"]


def test_chain_steps_count_their_kernel_calls():
    """A chain calls each kernel once per block of rows: step_work's 'blocks' (17 tokens in blocks of
    4: 5 calls per node); an unchained step has no such feature."""
    cfg = ViTConfig(img_size=16, patch=4, embed=32, heads=2, depth=1)
    low = lower_config(cfg, "stm32f746")
    chains = [st for st in low.schedule.steps if st.chained]
    assert chains
    for st in chains:
        feats = step_work(st, low.schedule.graph)
        rows = {n.name: low.schedule.graph.tensors[n.outputs[0]].rows for n in st.nodes}
        assert feats["*.blocks"] == sum(-(-r // st.block) for r in rows.values()), st.name
    assert not any("*.blocks" in step_work(st, low.schedule.graph) for st in low.schedule.steps if not st.chained)
    assert any(step_work(st, low.schedule.graph).get("linear.blocks") == 5 for st in chains)


@pytest.mark.parametrize("rows,block,last,iterations,apart", [
    (17, 4, 0, [4, 4, 4, 4, 1], 1), (17, 4, 5, [4, 4, 4, 5], 0), (11, 4, 7, [4, 7], 2), (26, 4, 0, [4] * 6 + [2], 2),
    (3, 3, 0, [3], 3), (16, 4, 0, [4] * 4, 0)])
def test_a_chain_counts_the_rows_it_runs_apart(rows, block, last, iterations, apart):
    """chain_iterations follows the C loop (c_codegen.emit_step): blocks, then the rows left or a merged
    tail; the rows outside blocks of 4 or 5 (a lone row, a pair) are what 'tail_macs' counts."""
    from edgeviz.backends.mcu_latency import chain_iterations, rows_apart
    from edgeviz.passes import Step
    step = Step([], "y", [], block=block, last=last)
    assert chain_iterations(step, rows) == iterations and sum(iterations) == rows
    assert rows_apart(iterations) == apart


def test_a_merged_tail_leaves_no_linear_rows_apart():
    """17 tokens: a plain chain runs each linear's 17th row apart (a 17th of its MACs as 'tail_macs');
    merged (Switches.merge_tail) none."""
    from edgeviz.lower import lower
    from edgeviz.passes import Switches
    cfg = ViTConfig(img_size=16, patch=4, embed=32, heads=2, depth=1)
    g = lower_config(cfg, "stm32f746").graph
    checked = 0
    for merged in (False, True):
        s = lower(g, "stm32f746", Switches(merge_tail=merged), exact=True).schedule
        for st in s.steps:
            f = step_work(st, s.graph)
            if st.chained and s.graph.tensors[st.output].rows == 17 and "linear.macs" in f:
                want = 0 if merged else f["linear.macs"] / 17
                assert abs(f.get("linear.tail_macs", 0) - want) <= len(st.nodes), (merged, st.name)
                checked += 1
    assert checked >= 2


def test_attention_work_counts_softmax_scores():
    cfg = ViTConfig(img_size=16, patch=4, embed=32, heads=2, depth=1)
    low = lower_config(cfg, "stm32f746")
    feats = [step_work(st, low.schedule.graph) for st in low.schedule.steps]
    scores = sum(f.get("attention.scores", 0) + f.get("attention_split.scores", 0) for f in feats)
    assert scores == cfg.heads * cfg.num_tokens ** 2          # every head's N x N scores, once
    assert sum(f["*.macs"] for f in feats) == low.executed_macs


def _c_define(path: str, name: str) -> int:
    text = (Path(__file__).resolve().parents[1] / "firmware" / "kernels" / path).read_text()
    return int(re.search(rf"#define {name}\s+(\d+)", text).group(1))


def test_row_by_row_work_follows_the_kernels_limits():
    """The DSP kernels run p.v over V^T four query rows at a time up to 512 keys and one row at a time
    beyond; patches stream from the image only for a patch that is a multiple of 4. The latency model
    counts the one-at-a-time work apart (row_macs, row_outputs), with the C's own limits."""
    assert RK4_MAX_DIMS == 4 * _c_define("ev_dsp.h", "EV__RK_MAXQ")
    assert QUAD_MAX == 4 * _c_define("ev_attention.c", "EV__ATT_KQ")
    assert LINEAR_BUF_UNITS == _c_define("ev_linear.c", "EV_LINEAR_BUF")

    def row_macs(cfg):
        low = lower_config(cfg, "stm32f746")
        feats = [step_work(st, low.schedule.graph) for st in low.schedule.steps]
        return {k: sum(f.get(k, 0) for f in feats) for k in ("attention_split.row_macs", "patch_embed.row_outputs")}

    short = row_macs(ViTConfig(img_size=32, patch=4, embed=64, heads=2, depth=1))      # 65 tokens
    assert short == {"attention_split.row_macs": 0, "patch_embed.row_outputs": 0}
    most = row_macs(ViTConfig(img_size=40, patch=2, embed=64, heads=2, depth=1))       # 401 tokens
    assert most == {"attention_split.row_macs": 0, "patch_embed.row_outputs": 400 * 64}
    long_cfg = ViTConfig(img_size=48, patch=2, embed=32, heads=1, depth=1)                 # 577 tokens, p.v by rows
    long = row_macs(long_cfg)
    assert long["attention_split.row_macs"] == long_cfg.num_tokens ** 2 * long_cfg.embed


def test_the_fit_recovers_known_costs_and_pools_unseen_ops():
    rng = np.random.default_rng(0)
    truth = {"linear.macs": 0.9, "linear.calls": 300.0, "add.elements": 4.0}
    samples = []
    for _ in range(40):
        f = {"linear.macs": float(rng.integers(1000, 100000)), "linear.calls": 1.0,
             "add.elements": float(rng.integers(10, 5000))}
        f.update({"*.macs": f["linear.macs"], "*.calls": 1.0, "*.elements": f["add.elements"]})
        samples.append((f, sum(truth[k] * v for k, v in f.items() if k in truth)))
    m = fit(samples, "dsp")
    for k, v in truth.items():
        assert m.costs[k] == pytest.approx(v, rel=1e-3)
    unseen = {"softmax.elements": 1000.0, "*.elements": 1000.0}
    assert m.step_instructions(unseen) == pytest.approx(m.costs["*.elements"] * 1000.0)
    assert m.unseen_ops([unseen]) == ["softmax"]


def test_no_model_for_a_kernel_path_is_one_line(monkeypatch, tmp_path):
    load_model.cache_clear()
    monkeypatch.setattr("edgeviz.backends.mcu_latency.model_file", lambda path: tmp_path / f"{path}.json")
    try:
        with pytest.raises(EdgevizError, match="no instruction model for the armv6m kernels of rp2040"):
            plan_config(ViTConfig(img_size=8, patch=4, embed=8, heads=1, depth=1), "rp2040", latency=True)
    finally:
        load_model.cache_clear()


@pytest.mark.parametrize("name", ["cls-lowrank", "mean-3heads"])
def test_the_shipped_model_predicts_the_emulator(name, tmp_path):
    """Models the fit never saw (the test configurations), built and run on the emulated M7: the
    estimate of the whole inference within 15% of the instructions counted."""
    need("qemu-system-arm")
    need("arm-none-eabi-gcc")
    m = load_model("dsp")
    assert m is not None and m.fitted_on.get("target") == "stm32f746"
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, cfg.in_chans, cfg.img_size, cfg.img_size))
    c = compile_graph(graph_from_vit(ViT(cfg).eval()), x, "stm32f746")
    write_project(c, tmp_path / "b", name, x)
    measured = api.profile(tmp_path / "b", "emulator", n=1)["end_to_end"]["median"]
    est = sum(m.step_instructions(step_work(st, c.schedule.graph)) for st in c.schedule.steps)
    assert abs(est / measured - 1) < 0.15, (est, measured)


def test_shipped_models_are_well_formed():
    for path in ("dsp",):
        m = load_model(path)
        assert isinstance(m, InstructionModel) and m.path == path
        assert all(v >= 0 for v in m.costs.values()) and m.costs.get("linear.macs", 0) > 0
        assert json.loads(json.dumps(m.to_dict())) == m.to_dict()


def test_a_planner_without_latency_under_a_latency_limit_is_one_line():
    judge = Judge(PlannerTestDouble(), budget=1 << 20, latency_limit=0.05)
    with pytest.raises(EdgevizError, match="gives no latency estimate, so --latency cannot be judged"):
        judge.why_not(ViTConfig(img_size=8, patch=4, embed=16, heads=2, depth=1))


def test_the_fpga_backend_chooses_its_reuse_factor_once_per_lowering(monkeypatch):
    calls = []
    choose = fpga.choose_reuse
    monkeypatch.setattr(fpga, "choose_reuse", lambda *a, **k: calls.append(1) or choose(*a, **k))
    low = lower_config(ViTConfig(img_size=16, patch=8, embed=32, heads=2, depth=1), "zcu102")
    assert low.backend.fit(low) == "" and low.backend.latency(low)["seconds"] > 0
    assert len(calls) == 1
