"""SearchSettings: the search's settings as one frozen dataclass, built by the CLI from its flags."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgeviz.cli import cli
from edgeviz.errors import EdgevizError
from edgeviz.search.cli import settings_from_flags
from edgeviz.search.settings import SearchSettings

NOT_FLAGS = {"progress", "quiet", "subset"}      # set by --no-progress / --json, or by tests only


def _flags(*argv: str) -> dict:
    """`edgeviz search` options as click parses them (callbacks and defaults applied)."""
    return cli.commands["search"].make_context("search", list(argv)).params


def test_fields_are_the_flags():
    flags = set(_flags("--budget", "2KB")) - {"no_progress"}
    assert flags == {f.name for f in dataclasses.fields(SearchSettings)} - NOT_FLAGS


def test_defaults_equal_the_cli_defaults():
    params = _flags("--budget", "2KB")
    assert settings_from_flags(SimpleNamespace(**params)) == SearchSettings("2KB")
    default = SearchSettings("2KB")
    for name, value in params.items():          # each flag's default, as the settings keep it
        if name not in ("budget", "no_progress"):
            assert getattr(SearchSettings("2KB", **{name: value}), name) == getattr(default, name), name
    assert default.progress is None and not default.quiet and default.subset == 0


def test_every_flag_reaches_its_field():
    params = _flags("--budget", "4KB", "--target", "nucleo", "--flash", "1MB", "--data", "d.npz", "--supernet",
                    "c.pt", "--epochs", "3", "--population", "5", "--generations", "2", "-o", "o", "--json",
                    "--space", "s.toml", "--macs", "5M", "--seed", "7", "--evolve-space", "--baselines",
                    "--finalists", "2", "--finetune-steps", "20", "--no-progress")
    assert settings_from_flags(SimpleNamespace(**params)) == SearchSettings(
        budget=4096, target="nucleo", flash=1 << 20, data="d.npz", supernet="c.pt", epochs=3, population=5,
        generations=2, out=Path("o"), json=True, space="s.toml", macs=5_000_000, seed=7, evolve_space=True,
        baselines=True, finalists=2, finetune_steps=20, progress=False, quiet=True)


def test_sizes_and_counts_are_kept_as_whole_numbers():
    s = SearchSettings("320KB", flash="1MB", finalists="3", finetune_steps=" 30 ", out="x")
    assert (s.budget, s.flash, s.finalists, s.finetune_steps, s.out) == (327680, 1 << 20, 3, 30, Path("x"))
    assert s == SearchSettings(327680, flash=1 << 20, finalists=3, finetune_steps=30, out=Path("x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.budget = 1                                                    # type: ignore[misc]
    assert dataclasses.replace(s, seed=1).budget == 327680             # replace checks again
    with pytest.raises(EdgevizError, match="--finalists"):
        dataclasses.replace(s, finalists="many")


@pytest.mark.parametrize("kw,says", [
    ({"budget": "lots"}, "bad budget 'lots'; accepted forms"),
    ({"budget": 0}, "bad budget 0: must be positive"),
    ({"flash": "1.5B"}, "bad flash limit '1.5B'"),
    ({"population": 1}, "--population must be >= 2 and --generations >= 1"),
    ({"generations": 0}, "--population must be >= 2 and --generations >= 1"),
    ({"finalists": -1}, "--finalists must be a whole number >= 0 (got -1)"),
    ({"finalists": "two"}, "--finalists must be a whole number >= 0 (got 'two')"),
    ({"finalists": 1.5}, "--finalists must be a whole number >= 0 (got 1.5)"),
    ({"finetune_steps": "0"}, "--finetune-steps must be a whole number >= 1 (got '0')"),
    ({"finetune_steps": True}, "--finetune-steps must be a whole number >= 1 (got True)"),
])
def test_bad_values_are_one_line_errors(kw, says):
    with pytest.raises(EdgevizError) as e:
        SearchSettings(**({"budget": "2KB"} | kw))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_training_threads_take_the_idle_cores_and_follow_the_environment(monkeypatch):
    from edgeviz.search import train

    monkeypatch.delenv("EDGEVIZ_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(train, "usable_cores", lambda: 8)
    for load, threads in [(0.0, 8), (0.3, 8), (3.0, 5), (7.2, 1), (40.0, 1)]:
        monkeypatch.setattr(train.os, "getloadavg", lambda load=load: (load, load, load))
        assert train.training_threads() == threads, load
    monkeypatch.setattr(train.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert train.training_threads(world=2) == 4                                      # each rank its share
    monkeypatch.setattr(train, "usable_cores", lambda: 2)
    monkeypatch.setattr(train.os, "getloadavg", lambda: (1.0, 1.0, 1.0))              # one busy process beside
    assert train.training_threads() == 1
    monkeypatch.setattr(train, "usable_cores", lambda: 8)
    monkeypatch.setenv("EDGEVIZ_THREADS", "4")
    assert train.training_threads() == 4 and train.training_threads(world=4) == 2     # a share of the cores
    monkeypatch.setenv("EDGEVIZ_THREADS", "64")
    assert train.training_threads() == 8                                              # never more than usable
    monkeypatch.setenv("EDGEVIZ_THREADS", "many")
    with pytest.raises(EdgevizError, match="whole number"):
        train.training_threads()


def test_usable_cores_is_the_affinity():
    import os

    from edgeviz.search.train import usable_cores

    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))
