"""The search's subnets on every core: subnets the default search space produces (low-rank blocks,
every patch size and resolution it offers), extracted from a supernet as `edgeviz search` exports
its choice, each judged to fit the part by the search's own planner, built for a part with each core
and run on that core's QEMU machine bit for bit against the int8 reference (host C too: the build
checks it). tests/test_cores.py does the same for the fixed test models."""
import numpy as np
import pytest
from conftest import need
from models import inputs, search_subnets
from test_cores import MACHINE, PART

from edgeviz.backends.mcu import write_project
from edgeviz.frontend import graph_from_vit
from edgeviz.lower import plan_config
from edgeviz.project import compile_graph
from edgeviz.quantize import quantize_image, run_int8
from edgeviz.runner import api

CORES = sorted(PART) + ["cortex-m7"]
PART_OF = {**PART, "cortex-m7": "stm32f746"}


@pytest.mark.qemu
@pytest.mark.parametrize("core", CORES)
def test_search_subnets_are_bit_exact_on_every_core(core, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    target = PART_OF[core]
    # a different draw per core, so the six cores see twelve different subnets between them
    for i, (cfg, model) in enumerate(search_subnets(target, 2, seed=CORES.index(core), max_macs=6_000_000)):
        x = inputs(cfg, 8, seed=i)
        c = compile_graph(graph_from_vit(model), x[:6], target)
        promised = plan_config(cfg, target)
        assert c.plan.peak == promised.peak_sram, cfg      # what the search judged is what is built
        out = tmp_path / f"b{i}"
        meta = write_project(c, out, f"subnet{i}", x)
        assert meta["emulator"] == MACHINE[core] and meta["elf_arena_bytes"] == c.plan.peak
        xq = np.stack([quantize_image(c.graph, xi) for xi in np.concatenate([x, 3 * x[:2]])])
        want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
        r = api.validate(out, "emulator", xq, want)
        assert r["bit_exact"] == len(xq), (cfg, r["mismatched"])
