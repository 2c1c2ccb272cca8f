"""Wall time of `edgeviz build` (the real command, a fresh process) on this machine, with the time
per stage from build.json. Baseline in the same run: the same model's `edgeviz analyze` (import
and planning only, no codegen, no compile, no accuracy).

    .venv/bin/python bench/bench_build.py            # writes results/build.json
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import BENCH_CONFIGS  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.model import ViT, save_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
EDGEVIZ = str(Path(sys.executable).with_name("edgeviz"))


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main(names):
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            torch.manual_seed(0)
            p = Path(d) / f"{name}.pt"
            save_model(ViT(BENCH_CONFIGS[name]), p)
            analyze = timed([EDGEVIZ, "analyze", str(p), "--json"])
            build = timed([EDGEVIZ, "build", str(p), "-o", str(Path(d) / name), "--target", "stm32f746"])
            meta = json.loads((Path(d) / name / "build.json").read_text())
            rows.append({"model": name, "build_s": round(build, 2), "analyze_s": round(analyze, 2),
                         "build/analyze": round(build / analyze, 2), "stages": meta["phase_seconds"]})
            print(f"{name:18s} build {build:6.2f} s   analyze {analyze:6.2f} s   stages {meta['phase_seconds']}")
    write_text(RESULTS / "build.json", json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["cls-lowrank", "digits-32px-e96"])
