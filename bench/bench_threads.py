"""Supernet training speed by torch thread count, alone and beside busy processes (issue: a search
on a shared machine). Times the default search's supernet training (built-in digits, default space,
sandwich of 4 subnets per step) for a few steps at each thread count, with 0 and with `usable` busy
processes (one pure-Python spin loop per core the process may use) beside it; prints seconds per
step and the ratio against torch's own default thread count in the same run.

    .venv/bin/python bench/bench_threads.py [--steps 20] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_models import print_markdown_table  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.search.train import TrainSettings, as_space, data_for, train_supernet, usable_cores  # noqa: E402

SPIN = "while True: pass"


def seconds_per_step(threads: int, steps: int, work: Path) -> float:
    torch.set_num_threads(threads)
    space = as_space(None)
    data = data_for(None, space, 0, subset=16 * steps)
    ckpt = work / f"s{threads}-{os.urandom(4).hex()}.pt"
    _, summary = train_supernet(space, data, ckpt, TrainSettings(epochs=1), log=lambda m: None)
    return summary["history"][-1]["seconds"] / steps


def main(steps: int, repeats: int) -> int:
    usable = usable_cores()
    torch_default = torch.get_num_threads()
    counts = sorted({1, usable, torch_default})
    rows, work = [], Path(tempfile.mkdtemp(prefix="ev_bench_threads_"))
    for neighbours in (0, usable):
        spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(neighbours)]
        try:
            best = {n: min(seconds_per_step(n, steps, work) for _ in range(repeats)) for n in counts}
            print(f"beside {neighbours} busy: " + ", ".join(f"{n} threads {s:.3f} s/step" for n, s in best.items()),
                  file=sys.stderr, flush=True)
        finally:
            for p in spinners:
                p.kill()
        for n in counts:
            rows.append({"busy processes beside": neighbours, "torch threads": n,
                         "s/step": round(best[n], 4), "vs torch default": round(best[n] / best[torch_default], 2)})
    print(f"usable cores {usable}, torch default threads {torch_default}, {steps} steps, best of {repeats}")
    print_markdown_table(rows)
    write_text(ROOT / "results" / "threads.json",
               json.dumps({"usable_cores": usable, "torch_default": torch_default, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    sys.exit(main(a.steps, a.repeats))
