"""Built-in data for the search: the generated shapes task (edgeviz.datagen) and --data NAME."""
from __future__ import annotations

import numpy as np
import pytest

from edgeviz.data import load_data, load_shapes_data
from edgeviz.datagen import SHAPES_CLASSES, make_shapes
from edgeviz.errors import EdgevizError
from edgeviz.search.settings import SearchSettings


def test_shapes_are_deterministic_balanced_and_well_formed():
    x, y = make_shapes(200, res=32, seed=3)
    x2, y2 = make_shapes(200, res=32, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(make_shapes(200, res=32, seed=4)[0], x)
    assert x.shape == (200, 1, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05
    assert np.bincount(y, minlength=10).tolist() == [20] * 10
    assert np.bincount(make_shapes(25, res=16, seed=0)[1], minlength=10).tolist() == [3] * 5 + [2] * 5
    assert len(SHAPES_CLASSES) == 10


def test_shapes_dataset_through_load_data():
    d = load_data("shapes", seed=0, base=24)
    assert d is load_shapes_data(0, res=24) and d.name == "shapes" and d.num_classes == 10 and d.in_chans == 1
    assert tuple(d.x["train"].shape[1:]) == (1, 24, 24) and sum(len(v) for v in d.y.values()) == 10000
    assert load_data("builtin:shapes", seed=0, base=24) is d
    assert abs(float(d.x["train"].mean())) < 1e-3               # normalised with the train split's statistics


def test_data_shapes_reaches_the_search_settings():
    from types import SimpleNamespace

    from edgeviz.cli import cli
    from edgeviz.search.cli import settings_from_flags

    params = cli.commands["search"].make_context("search", ["--budget", "320KB", "--data", "shapes"]).params
    assert settings_from_flags(SimpleNamespace(**params)).data == "shapes"
    assert SearchSettings("320KB").data is None                 # digits stays the default


@pytest.mark.parametrize("spec", ["shapez", "builtin:cifar"])
def test_unknown_builtin_is_one_line_error(spec, capsys):
    with pytest.raises(EdgevizError, match="no such built-in data .*digits, shapes") as e:
        SearchSettings("320KB", data=spec)
    assert "\n" not in str(e.value)
    with pytest.raises(EdgevizError, match="no such built-in data"):
        load_data(spec)
    from edgeviz.cli import main

    assert main(["search", "--budget", "320KB", "--data", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such built-in data" in err
