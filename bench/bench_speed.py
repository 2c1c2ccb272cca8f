"""Speed on the emulated Cortex-M7 (QEMU mps2-an500, -icount): instructions per inference of edgeviz's
int8 firmware, MACs per instruction overall and in the linear/matmul steps, and (when the TVM baseline
is importable) the ratio against the fp32 plain C that TVM generates for the same graph.

    .venv/bin/python bench/bench_speed.py [model ...]     # writes results/speed.json

Instruction counts are not Cortex-M7 cycles: QEMU models no caches, TCM, wait states or dual issue.
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import BENCH_CONFIGS, print_markdown_table  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.frontend import graph_from_vit  # noqa: E402
from edgeviz.project import compile_graph  # noqa: E402
from edgeviz.model import ViT  # noqa: E402
from edgeviz.ops import OPS  # noqa: E402
from edgeviz.passes import Switches  # noqa: E402
from edgeviz.backends.mcu import write_project  # noqa: E402
from edgeviz.runner import api  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = ["cls-lowrank", "mean-3heads", "digits-32px-e96", "rgb-64px-e64"]


def measure(name: str) -> dict:
    cfg = BENCH_CONFIGS[name]
    torch.manual_seed(0)
    model = ViT(cfg).eval()
    x = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))
    c = compile_graph(graph_from_vit(model), x, "mps2-an500")
    prof = run_on_emulator(c, name, x)
    total = prof["end_to_end"]["median"]
    g = c.schedule.graph
    lin_macs = lin_instr = 0
    for st, layer in zip(c.schedule.steps, prof["layers"]):
        if all(n.op == "linear" or n.op in ("layernorm", "add") for n in st.nodes):
            lin_macs += sum(OPS[n.op].macs(n, g) for n in st.nodes)
            lin_instr += layer["median"]
    # the model's MACs per instruction; executed_macs adds what the schedule runs besides (rows the qkv split
    # recomputes, padded ranks' zero columns), which the linear steps' figure below counts
    r = {"model": name, "macs": c.info["macs"], "executed_macs": c.info["executed_macs"], "instructions": total,
         "macs_per_instr": c.info["macs"] / total,
         "linear_steps_macs_per_instr": lin_macs / lin_instr if lin_instr else None}
    # baseline, same run: TVM's fp32 C kernels for the same graph on the same emulator
    from bench_tvm import tvm_fp32_instructions
    base = tvm_fp32_instructions(name, cfg)
    r["tvm_fp32_instructions"] = base
    r["fewer_instructions_than_tvm_fp32"] = base / total
    # the qkv split's price, same run: the fused [N, 3E] qkv schedule
    fused = compile_graph(graph_from_vit(model), x, "mps2-an500", Switches(split_qkv=False))
    r["arena_split"], r["arena_no_split"] = c.plan.peak, fused.plan.peak
    r["instructions_no_split"] = run_on_emulator(fused, name, x)["end_to_end"]["median"]
    return r


def run_on_emulator(c, name: str, x) -> dict:
    with tempfile.TemporaryDirectory() as d:
        write_project(c, Path(d) / "b", name, x)
        return api.profile(Path(d) / "b", "emulator", n=2)


def main(names):
    rows = [measure(n) for n in names]
    print_markdown_table(rows)
    write_text(RESULTS / "speed.json", json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
