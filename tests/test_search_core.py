"""Search space, data loaders, supernet (slicing, SVD factors, extraction, export) and the search."""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from edgeviz.errors import EdgevizError
from edgeviz.model import ViTConfig, load_model
from edgeviz.data import load_data
from edgeviz.search.baselines import random_search, uniform_baseline, uniform_configs
from edgeviz.search.evolution import evolutionary_search
from edgeviz.search.judge import Evaluator, Judge, mcuformer_formula
from edgeviz.search.space_evolution import evolve_space
from edgeviz.search.space import DEFAULT_SPACE, config_key, load_space
from edgeviz.search.supernet import SuperLinear, Supernet, export_onnx, export_state_dict
from test_search_doubles import PlannerTestDouble, write_tiny_space


# ---------------------------------------------------------------- space
@pytest.mark.parametrize("name", [None, "shapes"])
def test_shipped_spaces_are_valid(name):
    """The default space and the one sized for --data shapes (`--space shapes`, found by name)."""
    assert DEFAULT_SPACE.is_file()
    s = load_space(name)
    assert s.name == (name or "digits-default")
    assert 1.0 in s.rank_ratio and min(s.rank_ratio) < 1.0
    big, small = s.largest(), s.smallest()
    assert s.contains(big) and s.contains(small)
    assert big.num_tokens * big.embed > 20 * small.num_tokens * small.embed
    rng = random.Random(0)
    for _ in range(200):
        c = s.sample(rng)
        assert s.contains(c)
        assert s.contains(s.mutate(c, rng)) and s.contains(s.crossover(c, s.sample(rng), rng))


def test_bad_space_files(tmp_path):
    with pytest.raises(EdgevizError, match="does not exist"):
        load_space(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("this is = = not toml")
    with pytest.raises(EdgevizError, match="cannot read"):
        load_space(tmp_path / "bad.toml")
    (tmp_path / "miss.toml").write_text("[choices]\nimg_size=[8]\n")
    with pytest.raises(EdgevizError, match="missing"):
        load_space(tmp_path / "miss.toml")


# ---------------------------------------------------------------- data
def test_digits_split_is_fixed_and_normalised():
    a, b = load_data(), load_data()
    assert a.in_chans == 1 and a.num_classes == 10
    n = sum(int(v.shape[0]) for v in a.y.values())
    assert n == 1797 and a.digest == b.digest
    assert torch.equal(a.y["val"], b.y["val"])
    assert abs(float(a.x["train"].mean())) < 1e-4 and abs(float(a.x["train"].std()) - 1) < 1e-2
    assert a.images("val", 16).shape == (a.y["val"].shape[0], 1, 16, 16)


def test_folder_and_npz(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(8):
            Image.fromarray((rng.random((12, 10)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
        np.save(tmp_path / "imgs" / c / "extra.npy", rng.random((12, 10)).astype(np.float32))
    d = load_data(tmp_path / "imgs", base=16)
    assert d.classes == ["cat", "dog"] and d.in_chans == 1 and sum(int(v.shape[0]) for v in d.y.values()) == 18
    assert tuple(d.x["train"].shape[2:]) == (16, 16)
    np.savez(tmp_path / "d.npz", x=rng.random((30, 3, 8, 8)), y=np.arange(30) % 3)
    d = load_data(tmp_path / "d.npz", base=16)
    assert d.in_chans == 3 and d.num_classes == 3
    np.savez(tmp_path / "g.npz", x=(rng.random((30, 8, 8)) * 255).astype(np.uint8), y=np.arange(30) % 2)
    assert load_data(tmp_path / "g.npz").in_chans == 1


def test_data_errors(tmp_path):
    with pytest.raises(EdgevizError, match="does not exist"):
        load_data(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgevizError, match="subfolder"):
        load_data(tmp_path / "empty")
    for c in ("a", "b"):
        (tmp_path / "broken" / c).mkdir(parents=True)
        (tmp_path / "broken" / c / "x.png").write_bytes(b"not a png at all")
    with pytest.raises(EdgevizError, match="cannot read image"):
        load_data(tmp_path / "broken")
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(EdgevizError, match="cannot read"):
        load_data(tmp_path / "junk.npz")
    np.savez(tmp_path / "nox.npz", images=np.zeros((4, 8, 8)))
    with pytest.raises(EdgevizError, match="'x'"):
        load_data(tmp_path / "nox.npz")
    (tmp_path / "file.txt").write_text("hi")
    with pytest.raises(EdgevizError, match="neither"):
        load_data(tmp_path / "file.txt")


# ---------------------------------------------------------------- supernet
def test_svd_factors_are_ordered_and_optimal():
    torch.manual_seed(0)
    lin = SuperLinear(24, 40)
    sv = lin.u.norm(dim=0) * lin.v.norm(dim=1)        # = singular values
    assert torch.all(sv[:-1] >= sv[1:] - 1e-6)
    for r in (3, 10, 24):
        approx = lin.u[:, :r] @ lin.v[:r]
        s = torch.linalg.svdvals(lin.weight.detach())
        err = torch.linalg.matrix_norm(lin.weight.detach() - approx)
        assert torch.allclose(err, s[r:].square().sum().sqrt(), atol=1e-5)


@pytest.fixture(scope="module")
def default_net():
    torch.manual_seed(0)
    return Supernet(load_space()).eval()


def test_extract_matches_supernet_default_space(default_net):
    net, s = default_net, default_net.space
    rng = random.Random(3)
    for cfg in [s.smallest(), s.sample(rng), s.sample(rng), s.sample(rng)]:
        net.set_subnet(cfg)
        x = torch.randn(2, 1, cfg.img_size, cfg.img_size)
        with torch.no_grad():
            want = net(x)
            got = net.extract(cfg)(x)
        assert torch.allclose(want, got, atol=1e-5), cfg


def test_full_rank_subnets_share_the_factors_after_the_dense_phase(tmp_path):
    from test_search_doubles import TINY_SPACE

    s = load_space(write_tiny_space(tmp_path, TINY_SPACE))
    torch.manual_seed(0)
    net = Supernet(s).eval()
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "u"):            # factors no longer the SVD of the dense weight
                m.weight.add_(torch.randn_like(m.weight) * 0.05)
    net.refresh_low_rank()
    full = replace(s.largest(), rank_ratios=(1.0,) * s.largest().depth)
    x = torch.randn(2, 1, full.img_size, full.img_size)
    with torch.no_grad():
        before = net(x, full)
        for m in net.modules():
            if hasattr(m, "u"):
                m.weight.zero_()           # once factored, the dense weight must not matter
        want = net(x, full)
        got = net.extract(full)(x)
    assert torch.allclose(before, want, atol=1e-5)
    assert torch.allclose(want, got, atol=1e-4)


def test_extract_matches_supernet_mean_pool_low_rank(tmp_path):
    from test_search_doubles import TINY_SPACE

    s = load_space(write_tiny_space(tmp_path, TINY_SPACE.replace('pool = "cls"', 'pool = "mean"')))
    assert s.pool == "mean"
    torch.manual_seed(0)
    net = Supernet(s).eval()
    rng = random.Random(3)
    cfgs = [s.smallest(), s.largest()] + [s.sample(rng) for _ in range(6)]
    for cfg in cfgs:
        net.set_subnet(cfg)
        x = torch.randn(2, 1, cfg.img_size, cfg.img_size)
        with torch.no_grad():
            want = net(x)
            got = net.extract(cfg)(x)
        assert torch.allclose(want, got, atol=1e-5), cfg


def test_set_subnet_rejects_foreign_config(default_net):
    net = default_net
    with pytest.raises(EdgevizError):
        net.set_subnet(ViTConfig(img_size=32, patch=16, embed=64, heads=2))


def test_export_state_dict_and_onnx(tmp_path, default_net):
    import onnx

    net, s = default_net, default_net.space
    cfg = s.sample(random.Random(1))
    m = net.extract(cfg)
    export_state_dict(m, tmp_path / "model.pt")
    back = load_model(tmp_path / "model.pt")
    x = m.example_input(2)
    with torch.no_grad():
        assert torch.allclose(back(x), m(x))
    export_onnx(m, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")))
    assert not list(tmp_path.glob(".*tmp"))


# ---------------------------------------------------------------- search (planner test double)
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    sp = load_space(write_tiny_space(tmp_path_factory.mktemp("space")))
    data = load_data()
    torch.manual_seed(0)
    return sp, Supernet(sp.with_data(1, 10)).eval(), data


def test_mcuformer_formula():
    cfg = ViTConfig(img_size=32, patch=8, embed=64, depth=2, heads=2, mlp_ratio=2.0, rank_ratios=(0.5, 0.8))
    # E*[(N+1)(1+m) + E*m*rho] with N = 16 patches and the largest rho
    assert mcuformer_formula(cfg) == round(64 * (17 * 3 + 64 * 2 * 0.8))


def test_evolution_respects_budget_and_random_search_matches_evaluations(tiny, tmp_path):
    sp, net, data = tiny
    budget = 4 * 5 * 32 + 256          # 5 tokens at embed 32 fit; 17 tokens at embed 16 do not
    judge = Judge(PlannerTestDouble(), budget)
    ev = Evaluator(net, data)
    res = evolutionary_search(sp, judge, ev, population=4, generations=3, seed=0, state_path=tmp_path / "st.json")
    assert res.evaluated and all(c.peak_sram <= budget for c in res.evaluated)
    assert res.best.acc == max(c.acc for c in res.population)
    assert ev.calls == len(ev.cache) == res.evaluations       # cached per config
    rs = random_search(sp, judge, ev, res.evaluations)
    assert rs.evaluations == min(res.evaluations, len(rs.evaluated)) and all(judge.feasible(c.cfg) for c in rs.evaluated)
    u = uniform_baseline(sp, judge)
    assert set(u.rank_ratios) == {1.0} and judge.feasible(u)
    bigger = [c for c in uniform_configs(sp) if judge.feasible(c) and c.embed * c.num_tokens > u.embed * u.num_tokens]
    assert not bigger


def test_evolution_resumes_from_population_checkpoint(tiny, tmp_path):
    sp, net, data = tiny
    judge = Judge(PlannerTestDouble(), 1 << 20)
    state = tmp_path / "st.json"
    ev = Evaluator(net, data)
    calls = {"n": 0}

    def dying(cfg):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt("killed")
        return ev(cfg)

    with pytest.raises(KeyboardInterrupt):
        evolutionary_search(sp, judge, dying, population=4, generations=6, seed=0, state_path=state)
    assert state.exists()
    logs = []
    ev2 = Evaluator(net, data)
    res = evolutionary_search(sp, judge, ev2, population=4, generations=6, seed=0, state_path=state, log=logs.append)
    assert any("resuming" in m for m in logs)
    full = evolutionary_search(sp, judge, Evaluator(net, data), population=4, generations=6, seed=0)
    assert config_key(res.best.cfg) == config_key(full.best.cfg)
    assert ev2.calls < full.evaluations                         # the resumed run re-used cached accuracies


def test_nothing_fits_names_the_smallest(tiny):
    sp, net, data = tiny
    judge = Judge(PlannerTestDouble(), 64)
    with pytest.raises(EdgevizError, match="smallest candidate .* needs"):
        evolutionary_search(sp, judge, Evaluator(net, data), population=4, generations=1)


def test_space_evolution_moves_towards_fit(tiny):
    sp, net, data = tiny
    judge = Judge(PlannerTestDouble(), 4 * 5 * 32 + 256)
    sub, trace = evolve_space(sp, judge, Evaluator(net, data), rounds=2, samples=6)
    assert set(sub.rank_ratio) <= set(sp.rank_ratio) and set(sub.patch) <= set(sp.patch)
    assert trace and all(0 <= t["fit_rate"] <= 1 for t in trace)
