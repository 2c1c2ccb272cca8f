"""The fuzz campaign at length: each family of tests/fuzz_cases.py with many cases, counting what came
of them (built: the host C equal to the int8 reference; refused: one line; internal: anything else,
which must stay 0). Prints a table and writes results/fuzz.json.

    .venv/bin/python bench/bench_fuzz.py [--scale K] [--only WORD]
        K x the default counts (default 1); --only: the families whose name holds WORD, their rows
        replacing the same families' in results/fuzz.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

import fuzz_cases as fz  # noqa: E402
from bench_models import print_markdown_table  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.model import ViT, ViTConfig, save_model  # noqa: E402

RESULTS = ROOT / "results"


def campaign(name: str, strategy, check, n: int) -> dict:
    """Run `check(**case)` on n cases drawn by hypothesis (fixed seed); count the outcomes."""
    counts, internal = Counter(), []

    @settings(max_examples=n, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        try:
            counts[check(**case)] += 1
        except Exception as e:  # noqa: BLE001 - what the campaign counts
            counts["internal"] += 1
            internal.append(f"{type(e).__name__}: {str(e)[:200]}")

    t = time.perf_counter()
    run()
    row = {"family": name, "cases": sum(counts.values()), "built": counts["built"], "refused": counts["refused"],
           "internal": counts["internal"], "seconds": round(time.perf_counter() - t, 1)}
    print(f"{name}: {row}", flush=True)
    for msg in internal[:5]:
        print("   internal:", msg, flush=True)
    return row


def main(scale: int, only: str | None = None):
    work = Path(tempfile.mkdtemp(prefix="ev_bench_fuzz_"))
    torch.manual_seed(0)
    model = work / "model.pt"
    save_model(ViT(ViTConfig(img_size=16, patch=8, embed=32, heads=2, depth=1, rank_ratios=(0.5,))).eval(), model)
    m = fz.make_vit(ViTConfig(img_size=16, patch=8, embed=16, heads=2, depth=1), "normal")
    torch.onnx.export(m, (m.example_input(1),), str(work / "m.onnx"), dynamo=False, opset_version=17)
    onnx_bytes = (work / "m.onnx").read_bytes()
    tflite_bytes = (ROOT.parent / "tests" / "fixtures" / "tflite" / "ops_mix.tflite").read_bytes()
    n = 0

    def fresh() -> Path:
        nonlocal n
        n += 1
        (work / f"c{n}").mkdir()
        return work / f"c{n}"

    families = [
        ("ViT configurations x weights (host C bit-exact)",
         st.fixed_dictionaries({"cfg": fz.vit_configs(), "weights": fz.WEIGHTS}), fz.check_config, 60 * scale),
        ("ViT configurations through torch.export and ONNX",
         st.fixed_dictionaries({"cfg": fz.vit_configs()}), lambda cfg: fz.check_exporters(cfg, fresh()),
         12 * scale),
        ("ViT configurations x every ONNX opset 11-21 (TorchScript exporter 11-20, torch.export 18-21)",
         st.fixed_dictionaries({"cfg": fz.vit_configs(), "how": fz.OPSETS}),
         lambda cfg, how: fz.check_opset(cfg, *how, fresh()), 44 * scale),
        ("damaged ONNX files", st.fixed_dictionaries({"mutation": fz.MUTATIONS}),
         lambda mutation: fz.check_model_file(fz.mutate(onnx_bytes, *mutation), ".onnx", fresh()), 1500 * scale),
        ("damaged .tflite files", st.fixed_dictionaries({"mutation": fz.MUTATIONS}),
         lambda mutation: fz.check_model_file(fz.mutate(tflite_bytes, *mutation), ".tflite", fresh()), 1000 * scale),
        ("arbitrary bytes as .tflite / .pt / .pt2 / .onnx",
         st.fixed_dictionaries({"data": st.binary(max_size=4096),
                                "suffix": st.sampled_from([".tflite", ".pt", ".pt2", ".onnx"])}),
         lambda data, suffix: fz.check_model_file(data, suffix, fresh()), 1000 * scale),
        ("calibration arrays", st.fixed_dictionaries({"kind": fz.ARRAYS}),
         lambda kind: fz.check_calibration(model, kind, fresh()), 14 * scale),
        ("switches x targets (analyze)",
         st.fixed_dictionaries({"switches": fz.SWITCHES, "target": st.sampled_from(fz.available_targets())}),
         lambda switches, target: fz.check_switches(model, switches, target), 300 * scale),
    ]
    rows = [campaign(*f) for f in families if only is None or only in f[0]]
    path = RESULTS / "fuzz.json"
    old = {r["family"]: r for r in json.loads(path.read_text())["rows"]} if only and path.exists() else {}
    old.update({r["family"]: r for r in rows})
    print_markdown_table(list(old.values()))
    write_text(path, json.dumps({"rows": list(old.values()), "scale": scale}, indent=1))
    return 1 if any(r["internal"] for r in rows) else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--only", help="run only the families whose name holds this")
    a = ap.parse_args()
    sys.exit(main(a.scale, a.only))
