"""K/V per head (Switches.kv_per_head): arena bytes, the planner's live-set lower bound and instructions on
the emulated Cortex-M7 (QEMU mps2-an500, -icount) with the switch on and off, every other switch on.

    .venv/bin/python bench/bench_kv_heads.py [model ...]     # writes results/kv_heads.json

Both schedules are forced (exact switches), so the instruction cost is the switch's own even where
a build would keep the other one. Instruction counts are not Cortex-M7 cycles.
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
from edgeviz.backends.mcu import write_project  # noqa: E402
from edgeviz.frontend import graph_from_vit  # noqa: E402
from edgeviz.model import ViT  # noqa: E402
from edgeviz.passes import Switches  # noqa: E402
from edgeviz.project import compile_graph  # noqa: E402
from edgeviz.runner import api  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = ["mean-3heads", "digits-32px-e96"]


def measure(name: str) -> dict:
    cfg = BENCH_CONFIGS[name]
    torch.manual_seed(0)
    model = ViT(cfg).eval()
    x = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))
    r = {"model": name, "heads": cfg.heads}
    for label, sw in (("off", Switches()), ("on", Switches(kv_per_head=True))):
        c = compile_graph(graph_from_vit(model), x, "mps2-an500", sw, exact_switches=True)
        with tempfile.TemporaryDirectory() as d:
            write_project(c, Path(d) / "b", name, x)
            prof = api.profile(Path(d) / "b", "emulator", n=2)
        r[f"arena {label}"] = c.plan.peak
        r[f"lower bound {label}"] = c.plan.lower_bound
        r[f"instructions {label}"] = prof["end_to_end"]["median"]
        r[f"macs {label}"] = c.info["macs"]
    r["arena on/off"] = r["arena on"] / r["arena off"]
    r["instructions on/off"] = r["instructions on"] / r["instructions off"]
    return r


def main(names):
    rows = [measure(n) for n in names]
    print_markdown_table(rows)
    write_text(RESULTS / "kv_heads.json", json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
