"""The search's second stage: K finalists spread over peak SRAM, fine-tuned from the supernet by successive halving."""
from __future__ import annotations

import json

import pytest
import torch

import edgeviz.search.finalists as finalists
from edgeviz.model import ViTConfig, load_model
from edgeviz.data import load_data
from edgeviz.search.finalists import halving_rungs, pick_finalists
from edgeviz.search.judge import Candidate
from edgeviz.search.run import run_search
from edgeviz.search.settings import SearchSettings
from edgeviz.search.train import accuracy, run_train
from test_search_doubles import PlannerTestDouble, write_tiny_space

KW = dict(population=4, generations=2, subset=64, quiet=True)
PLANNER = PlannerTestDouble()


def search(budget: str, **kw) -> dict:
    return run_search(SearchSettings(budget, **kw), planner=PLANNER)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These nets are tiny: one thread is faster, and several threads on a busy 2-core machine are
    many times slower (measured: 19 ms against 720 ms a training step under a load of 5)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ckpt(one_thread, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    space = write_tiny_space(tmp)
    run_train(space=space, epochs=1, output=tmp / "supernet.pt", subset=64, progress=False, log=lambda m: None)
    return tmp / "supernet.pt", space


def _cand(peak: int, acc: float, embed: int = 16) -> Candidate:
    cfg = ViTConfig(img_size=16, patch=8, embed=embed, depth=1, heads=2, rank_ratios=(peak / 1e6,))
    return Candidate(cfg, acc, peak, 0, 0, 0)


def test_pick_finalists_spreads_over_memory():
    # the estimates favour the small end, as a supernet's do: the best three overall are all ~1 KB
    cands = [_cand(1000 + i, 0.9 - i / 100) for i in range(3)] + [_cand(5000, 0.5), _cand(5100, 0.6),
                                                                   _cand(20000, 0.4), _cand(100000, 0.3)]
    got = pick_finalists(cands + cands[:2], 4)           # duplicates count once
    assert [c.peak_sram for c in got] == [1000, 5100, 20000, 100000]   # best of each log bucket, by peak
    got = pick_finalists(cands[:3] + cands[-1:], 3)      # an empty middle bucket goes to the next best overall
    assert sorted(c.peak_sram for c in got) == [1000, 1001, 100000]
    assert len(pick_finalists(cands[:2], 5)) == 2


def test_halving_rungs():
    assert halving_rungs(9, 300) == [(9, 33), (3, 100), (1, 300)]
    assert halving_rungs(8, 300) == [(8, 33), (3, 100), (1, 300)]
    assert halving_rungs(4, 10) == [(4, 1), (2, 3), (1, 10)]
    assert halving_rungs(1, 50) == [(1, 50)]


def test_two_stage_halves_the_finalists_and_exports_the_winner(ckpt, tmp_path):
    sn, space = ckpt
    r = search("2KB", out=tmp_path, supernet=sn, space=space, finalists=3, finetune_steps=9, **KW)
    fins = r["finalists"]
    assert len(fins) == 3 and len({json.dumps(f["config"], sort_keys=True) for f in fins}) == 3
    assert r["finetune"]["rungs"] == [{"finalists": 3, "steps": 3}, {"finalists": 1, "steps": 9}]
    # every finalist ran the short rung; the one best on val there (ties: the smaller) ran the long one
    assert all(f["rungs"][0]["steps"] == 3 for f in fins)
    first = max(fins, key=lambda f: (f["rungs"][0]["val"], -f["peak_sram"]))
    chosen = [f for f in fins if f["chosen"]]
    assert chosen == [first] and [x["steps"] for x in first["rungs"]] == [3, 9]
    assert all(len(f["rungs"]) == 1 for f in fins if f is not first)
    assert first["val_finetuned"] == first["rungs"][-1]["val"] and first["steps"] == 9
    assert first["config"] == r["config"] and r["accuracy"]["val_finetuned"] == first["val_finetuned"]
    # the evolution's choice and its estimate are kept, and it is among the finalists (best in its bucket)
    assert r["evolution_choice"]["val_supernet"] == r["accuracy"]["val_supernet"]
    assert r["evolution_choice"]["config"] in [f["config"] for f in fins]
    # model.pt holds the fine-tuned weights: its accuracies are the reported ones, not the supernet's
    m = load_model(tmp_path / "model.pt")
    d = load_data(None, base=16).subset(64)
    assert m.cfg.to_dict() == r["config"]
    assert accuracy(m, d, m.cfg, "test") == r["accuracy"]["test_standalone"]
    assert accuracy(m, d, m.cfg, "val") == r["accuracy"]["val_finetuned"]
    assert r["finetune"]["steps"] == 9 and r["finetune"]["wall_seconds"] > 0
    log = (tmp_path / "search.log").read_text()
    assert "rung 1/2, finalist 3/3" in log and "rung 2/2, finalist 1/1" in log and "after 9 fine-tuning steps" in log


def test_killed_stage_keeps_finished_runs(ckpt, tmp_path, monkeypatch):
    sn, space = ckpt
    kw = dict(supernet=sn, space=space, finalists=3, finetune_steps=9, **KW)
    ref = search("2KB", out=tmp_path / "ref", **kw)
    n = len(ref["finalists"])
    assert n >= 2
    train, calls = finalists.train_standalone, []

    def dies_in_the_last_rung(*a, **k):
        calls.append(1)
        if len(calls) == n + 1:
            raise KeyboardInterrupt("killed")
        return train(*a, **k)

    monkeypatch.setattr(finalists, "train_standalone", dies_in_the_last_rung)
    with pytest.raises(KeyboardInterrupt):
        search("2KB", out=tmp_path / "o", **kw)
    monkeypatch.setattr(finalists, "train_standalone", train)
    r = search("2KB", out=tmp_path / "o", **kw)
    log = (tmp_path / "o" / "search.log").read_text().split("---- resumed ----")[-1]
    assert log.count("finished before the restart") == n          # the whole first rung
    assert [f["rungs"] for f in r["finalists"]] == [f["rungs"] for f in ref["finalists"]]
    assert r["config"] == ref["config"] and r["accuracy"]["test_standalone"] == ref["accuracy"]["test_standalone"]
    # other fine-tuning settings do not reuse the finished runs
    search("2KB", out=tmp_path / "o", **(kw | {"finetune_steps": 6}))
    assert "finished before" not in (tmp_path / "o" / "search.log").read_text().split("---- resumed ----")[-1]


@pytest.mark.parametrize("flag,value", [("--finalists", "-1"), ("--finalists", "two"), ("--finetune-steps", "0"),
                                        ("--finetune-steps", "1.5")])
def test_bad_stage_flags_are_one_line_errors(tmp_path, capsys, flag, value):
    from edgeviz.cli import main

    assert main(["search", "--budget", "2KB", flag, value, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and flag in err and "whole number" in err
    assert not (tmp_path / "o").exists()                 # checked before any work
