"""Benchmark of edgeviz search (MCUFormer's one-shot NAS) on the built-in digits, baselines in the same run.

Trains (or reuses) one supernet, then for each budget runs the evolutionary search, random search with the
same number of accuracy evaluations, and the largest uniformly scaled full-rank ViT that fits, trained
from scratch for as many steps as the supernet. Memory is always edgeviz.compiler.plan_config's figure;
MCUFormer's closed-form formula is printed beside it. Prints ratios against the baselines and writes
bench_search.json in the output folder.

    python bench/bench_search.py                       # default space, 10 epochs, budgets 320KB and 128KB
    python bench/bench_search.py --supernet ckpt.pt    # reuse a trained supernet
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeviz.atomic import write_json  # noqa: E402
from edgeviz.search.budget import format_size  # noqa: E402
from edgeviz.search.run import run_search, run_train  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="320KB,128KB")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--supernet", default=None, help="reuse this checkpoint (trained if missing)")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--space", default=None)
    ap.add_argument("-o", "--out", default="bench-search-out")
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Path(a.supernet) if a.supernet else out / "supernet.pt"
    report = {"cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "budgets": {}}

    t0, c0 = time.perf_counter(), cpu_seconds()
    _, summary = run_train(space=a.space, epochs=a.epochs, output=ckpt, progress=False)
    report["train"] = {"epochs": summary["epochs_done"], "wall_seconds": time.perf_counter() - t0,
                       "cpu_seconds": cpu_seconds() - c0, "history": summary["history"],
                       "train_seconds_in_checkpoint": summary["train_seconds"]}
    for b in a.budgets.split(","):
        t0, c0 = time.perf_counter(), cpu_seconds()
        r = run_search(b, supernet_ckpt=ckpt, population=a.population, generations=a.generations,
                       out_dir=out / b, space=a.space, baselines=not a.no_baselines, progress=False)
        rec = {"wall_seconds": time.perf_counter() - t0, "cpu_seconds": cpu_seconds() - c0, "config": r["config"],
               "summary": r["summary"], "peak_sram": r["peak_sram"], "formula_peak": r["mcuformer_formula_peak"],
               "flash": r["flash"], "macs": r["macs"], "accuracy": r["accuracy"], "search": {
                   k: r["search"][k] for k in ("evaluations", "planned", "search_seconds", "candidates_per_second",
                                               "planned_per_second", "evaluated_per_second")},
               "baselines": r.get("baselines")}
        report["budgets"][b] = rec
    report["loadavg_end"] = os.getloadavg()
    write_json(out / "bench_search.json", report)

    tr = report["train"]
    print(f"supernet: {tr['epochs']} epochs, {tr['wall_seconds']:.0f} s wall, {tr['cpu_seconds']:.0f} CPU s "
          f"(load average {report['loadavg_start'][0]:.1f} at start)")
    for b, rec in report["budgets"].items():
        acc = rec["accuracy"]
        print(f"[{b}] chosen {rec['summary']}")
        print(f"  peak SRAM planned {format_size(rec['peak_sram'])} vs MCUFormer formula {format_size(rec['formula_peak'])} "
              f"(formula / planner = {rec['formula_peak'] / max(1, rec['peak_sram']):.2f}x); flash {format_size(rec['flash'])}")
        s = rec["search"]
        print(f"  search: {s['evaluations']} evaluated, {s['planned']} planned, {s['search_seconds']:.1f} s, "
              f"{s['candidates_per_second']:.2f} candidates/s (planner {s['planned_per_second']:.2f}/s, "
              f"accuracy {s['evaluated_per_second']:.2f}/s)")
        print(f"  evolution: val {acc['val_supernet']:.4f} test {acc['test_standalone']:.4f}")
        bl = rec["baselines"]
        if bl:
            rs, un = bl["random_search"], bl["uniform_vit"]
            print(f"  random search ({rs['evaluations']} evals): val {rs['best_val']:.4f} test {rs['best_test']:.4f} "
                  f"-> evolution/random test = {acc['test_standalone'] / max(1e-9, rs['best_test']):.3f}x")
            print(f"  uniform ViT {format_size(un['peak_sram'])} from scratch ({un['steps']} steps, "
                  f"{un['train_seconds']:.0f} s): val {un['val']:.4f} test {un['test']:.4f} "
                  f"-> evolution/uniform test = {acc['test_standalone'] / max(1e-9, un['test']):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
