"""TVM baselines (edgeviz.baselines.tvm_ref): TVM's own static memory plan for a small model, and
TVM-generated plain-C fp32 kernels that compute the same thing as PyTorch on the host."""
import shutil

import numpy as np
import pytest
import torch

from models import CONFIGS, inputs, make

NAME = "cls-lowrank"


@pytest.fixture(scope="module")
def case():
    from edgeviz.baselines import tvm_ref
    cfg = CONFIGS[NAME]
    model = make(NAME)
    x = torch.tensor(inputs(cfg, 1, seed=3), dtype=torch.float32)
    mod = tvm_ref.planned_module(model, x)
    return tvm_ref, cfg, model, x, mod


def test_static_plan_bytes_positive(case):
    tvm_ref, cfg, model, x, mod = case
    r = tvm_ref.static_plan_bytes(model, x)
    assert r["storages"] >= 2
    assert r["storage_bytes"] > 0 and r["storage_bytes"] == sum(r["storage_sizes"])
    assert r["storage_bytes_int8"] == r["storage_bytes"] // 4
    # the input image and the logits sit outside TVM's plan
    assert r["input_bytes"] == 4 * cfg.in_chans * cfg.img_size ** 2
    assert r["output_bytes"] == 4 * cfg.num_classes
    assert r["total_bytes"] == r["storage_bytes"] + r["input_bytes"] + r["output_bytes"]
    # one planned storage can never be smaller than the largest intermediate it must hold: the
    # token matrix [N, E] in fp32 has to fit somewhere
    assert max(r["storage_sizes"]) >= 4 * cfg.num_tokens * cfg.embed


def test_fp32_c_matches_pytorch_on_host(case):
    tvm_ref, cfg, model, x, mod = case
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    prog = tvm_ref.generate_c(model, x, mod)
    assert "TVMFFI" not in prog.model_c and "DLTensor" not in prog.model_c   # plain C, no runtime
    r = tvm_ref.host_check(model, x, prog=prog)
    assert r["output"].shape == (1, cfg.num_classes)
    assert np.all(np.isfinite(r["output"]))
    assert r["max_abs_err"] <= 1e-3, r["max_abs_err"]
    # a real computation: another input gives other logits, still those of PyTorch
    x2 = torch.tensor(inputs(cfg, 1, seed=4), dtype=torch.float32)
    r2 = tvm_ref.host_check(model, x2, prog=prog)
    assert r2["max_abs_err"] <= 1e-3, r2["max_abs_err"]
    assert np.max(np.abs(r2["output"] - r["output"])) > 1e-2
