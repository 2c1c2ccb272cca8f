"""The firmware on the emulated Cortex-M7 (QEMU mps2-an500) equals the int8 reference, byte for byte,
for every test model and random inputs; the linked arena equals the plan."""
import json

import numpy as np
import pytest
from conftest import need
from models import CONFIGS, inputs, make

from edgeviz.frontend import graph_from_vit
from edgeviz.project import compile_graph
from edgeviz.backends.mcu import write_project
from edgeviz.passes import Switches
from edgeviz.quantize import quantize_image, run_int8


# every model as built (with K/V per head asked for from three heads on: kept where it plans smaller),
# five-tokens also with every switch forced on, and odd-1head with K/V per head forced at one head
CASES = [(name, False) for name in sorted(CONFIGS)] + [("five-tokens", True), ("odd-1head", True)]


@pytest.mark.qemu
@pytest.mark.parametrize("name,fused", CASES, ids=lambda v: v if isinstance(v, str) else ("forced-fused" if v else "as-built"))
def test_firmware_on_qemu_is_bit_exact(name, fused, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.runner import api
    m = make(name, seed=5)
    x = inputs(m.cfg, 10, seed=7)
    asked = Switches(kv_per_head=True) if fused or m.cfg.heads >= 3 else None
    c = compile_graph(graph_from_vit(m), x[:6], "mps2-an500", asked, exact_switches=fused)
    assert c.schedule.switches.fuse or not fused
    per_head = any(n.op == "attention_head" for n in c.schedule.graph.nodes)
    assert per_head == c.schedule.switches.kv_per_head
    assert per_head or m.cfg.heads < 3 or not c.schedule.switches.fuse
    out = tmp_path / "build"
    write_project(c, out, name, x)
    meta = json.loads((out / "build.json").read_text())
    assert meta["elf_arena_bytes"] == c.plan.peak
    # the flash the planner judged by (weights + the target's code_bytes) covers what links
    assert meta["elf_flash_bytes"] <= meta["flash_estimate"], (meta["elf_flash_bytes"], meta["flash_estimate"])
    xq = np.stack([quantize_image(c.graph, xi) for xi in np.concatenate([x, 4 * x[:2]])])
    want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
    r = api.validate(out, "emulator", xq, want)
    assert r["bit_exact"] == len(xq), r["mismatched"]


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["cls-wide-mlp3", "deit-11-tokens"])
def test_merged_tail_on_qemu_is_bit_exact(name, tmp_path):
    """Switches.merge_tail: chains of 17 and 11 rows end in a block of 5 and 7 rows, which the M7's path S
    runs as one 5-row block (ev__rs5) and a pair; the same bytes as the reference, and the planned arena links."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    from edgeviz.runner import api
    if name == "deit-11-tokens":
        from zoo import deit_11_tokens
        g, x = deit_11_tokens()
    else:
        m = make(name, seed=4)
        g, x = graph_from_vit(m), inputs(m.cfg, 6, seed=4)
    c = compile_graph(g, x[:4], "mps2-an500", Switches(merge_tail=True), exact_switches=True)
    assert any(st.last >= 5 for st in c.schedule.steps)
    out = tmp_path / "build"
    write_project(c, out, name, x)
    assert json.loads((out / "build.json").read_text())["elf_arena_bytes"] == c.plan.peak
    xq = np.stack([quantize_image(c.graph, xi) for xi in np.concatenate([x, 4 * x[:2]])])
    want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
    r = api.validate(out, "emulator", xq, want)
    assert r["bit_exact"] == len(xq), r["mismatched"]
