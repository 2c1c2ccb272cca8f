"""Where the instructions go on the emulated Cortex-M7 (QEMU mps2-an500, -icount): each model's share
of instructions in MAC loops, softmax, norms, requantisation, data movement and the rest, from the
part-profile image (`edgeviz profile --parts`, firmware/kernels/ev_parts.h), over the models of
bench_speed.py built the same way.

    .venv/bin/python bench/bench_parts.py [model ...]     # writes results/parts.json

Shares are of the sum of the steps' counts in the part image; "bound" is the most the parts can be
off by (one SysTick tick, 40 instructions, per switch between parts), "overhead" what the counters
add end to end against the normal image.
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import BENCH_CONFIGS, print_markdown_table  # noqa: E402
from bench_speed import DEFAULT, RESULTS  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.backends.mcu import write_project  # noqa: E402
from edgeviz.frontend import graph_from_vit  # noqa: E402
from edgeviz.model import ViT  # noqa: E402
from edgeviz.project import compile_graph  # noqa: E402
from edgeviz.runner import api  # noqa: E402


def measure(name: str) -> tuple[dict, dict]:
    cfg = BENCH_CONFIGS[name]
    torch.manual_seed(0)
    model = ViT(cfg).eval()
    x = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))
    c = compile_graph(graph_from_vit(model), x, "mps2-an500")
    with tempfile.TemporaryDirectory() as d:
        write_project(c, Path(d) / "b", name, x)
        prof = api.profile(Path(d) / "b", "emulator", n=2, parts=True)
    p = prof["parts"]
    row = {"model": name, "instructions": prof["end_to_end"]["median"]}
    row.update({k: f"{100 * v:.1f}%" for k, v in p["share"].items()})
    row["bound"] = f"±{100 * p['bound_share']:.1f}%"
    row["counter overhead"] = f"{100 * p['overhead']:+.1f}%"
    return row, prof


def main(names):
    rows, profiles = [], {}
    for n in names:
        row, profiles[n] = measure(n)
        rows.append(row)
    print_markdown_table(rows)
    write_text(RESULTS / "parts.json", json.dumps({"rows": rows, "profiles": profiles}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
