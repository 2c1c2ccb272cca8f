"""Benchmark of edgeviz search (MCUFormer's one-shot NAS) on the built-in digits, baselines in the same run.

Trains (or reuses) one supernet, then for each budget runs the two-stage search (evolution on the supernet's
estimates, then K finalists fine-tuned from the supernet by successive halving) and the baselines: random
search with the same number of accuracy evaluations (also through the same fine-tuning stage), the
largest uniformly scaled full-rank ViT that fits and the best uniform ViT the search finds, both trained
from scratch for as many steps as the searched subnet got in all (supernet + fine-tuning), and the best
uniform ViT through the very same two stages (the architecture-only comparison). Memory is always
edgeviz.lower.plan_config's figure; MCUFormer's closed-form formula is printed beside it. Prints the
differences against the baselines and writes bench_search.json in the output folder.

    python bench/bench_search.py                       # default space and epochs, budgets 320KB and 128KB
    python bench/bench_search.py --supernet ckpt.pt    # reuse a trained supernet
    python bench/bench_search.py --data shapes --space shapes --seeds 0,1,2 --budgets 2KB,8KB,32KB,64KB --epochs 3 -o sweep/

A sweep (--seeds or --data) trains one supernet per seed (its data split and training seed), runs every
budget on each, prints accuracy vs budget as the mean and min-max over seeds with the searched subnet's
lead over each baseline, plots it (accuracy_vs_budget.png) and resumes where it stopped when run again.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeviz.atomic import write_json, write_text  # noqa: E402
from edgeviz.search.budget import format_size  # noqa: E402
from edgeviz.search.run import run_search  # noqa: E402
from edgeviz.search.settings import DEFAULT_FINALISTS, DEFAULT_FINETUNE_STEPS, SearchSettings  # noqa: E402
from edgeviz.search.train import DEFAULT_EPOCHS, run_train  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def landscape(ckpt: Path, space_path) -> dict:
    """Supernet validation accuracy along the two genes that set peak SRAM (tokens, embed), the other
    genes fixed (depth 2, MLP ratio 2, heads 4, full rank), with the planner's peak: does accuracy grow
    with memory on this data?"""
    from edgeviz.lower import plan_config
    from edgeviz.data import load_data
    from edgeviz.search.judge import Evaluator
    from edgeviz.search.train import load_checkpoint, supernet_from_checkpoint

    net = supernet_from_checkpoint(load_checkpoint(ckpt))
    sp = net.space
    data = load_data(None)
    ev = Evaluator(net, data, "val")
    mid_e = sorted(sp.embed)[len(sp.embed) // 2]
    rows = []

    def point(sweep, r, p, e):
        d = max(sp.depth)
        cfg = sp.config(img_size=r, patch=p, embed=e, depth=d, heads=max(h for h in sp.heads if e % h == 0),
                        mlp_ratio=min(sp.mlp_ratio), rank_ratios=(1.0,) * d)
        rows.append({"sweep": sweep, "img_size": r, "patch": p, "tokens": cfg.num_tokens, "embed": e,
                     "peak_sram": plan_config(cfg).peak_sram, "val_acc": ev(cfg)})

    for r, p in sorted(sp.res_patch_pairs(), key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0])):
        point("tokens", r, p, mid_e)
    r0, p0 = sorted(sp.res_patch_pairs(), key=lambda rp: (rp[0] // rp[1]) ** 2)[len(sp.res_patch_pairs()) // 2]
    for e in sp.embed:
        point("embed", r0, p0, e)
    print(f"landscape (depth {max(sp.depth)}, MLP ratio {min(sp.mlp_ratio)}, full rank; supernet val accuracy):")
    for row in rows:
        print(f"  {row['sweep']:6s} {row['img_size']:3d}px/{row['patch']} {row['tokens']:4d} tokens x {row['embed']:3d}: "
              f"peak {format_size(row['peak_sram']):>9s}  val {row['val_acc']:.4f}")
    import numpy as np

    peak = np.array([r["peak_sram"] for r in rows], float)
    acc = np.array([r["val_acc"] for r in rows], float)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    rho = float(np.corrcoef(rank(peak), rank(acc))[0, 1]) if len(rows) > 2 else float("nan")
    print(f"  Spearman rank correlation of accuracy with peak SRAM over these points: {rho:+.2f}")
    return {"rows": rows, "spearman_peak_acc": rho}


BASELINES = [("uniform_vit", "largest uniform ViT, from scratch (MCUFormer's baseline)"),
             ("uniform_best", "best uniform ViT, from scratch"),
             ("random_two_stage", "random search + fine-tuning"),
             ("uniform_two_stage", "uniform ViTs, two stages"),
             ("searched_scratch", "the searched architecture, from scratch")]


def budget_record(r: dict, t0: float, c0: float) -> dict:
    return {"wall_seconds": time.perf_counter() - t0, "cpu_seconds": cpu_seconds() - c0, "config": r["config"],
            "summary": r["summary"], "peak_sram": r["peak_sram"], "formula_peak": r["mcuformer_formula_peak"],
            "flash": r["flash"], "macs": r["macs"], "accuracy": r["accuracy"], "search": {
                k: r["search"][k] for k in ("evaluations", "planned", "search_seconds", "candidates_per_second",
                                            "planned_per_second", "evaluated_per_second")},
            "evolution_choice": r["evolution_choice"], "finalists": r["finalists"], "finetune": r["finetune"],
            "baselines": r.get("baselines")}


def sweep_summary(report: dict) -> dict:
    """Per budget, over the seeds that finished it: test accuracy of the searched subnet and of each
    baseline (mean, min, max) and the searched subnet's lead over each (mean and per seed, points)."""
    import numpy as np

    from edgeviz.search.budget import parse_size

    out = {}
    done = {b for runs in report["seeds"].values() for b in runs.get("budgets", {})}
    for b in sorted(done, key=parse_size):
        recs = [runs["budgets"][b] for runs in report["seeds"].values() if b in runs.get("budgets", {})]
        if not recs:
            continue
        row = {"seeds": len(recs), "peak_sram": [r["peak_sram"] for r in recs],
               "chosen": [r["summary"] for r in recs]}
        searched = np.array([r["accuracy"]["test_standalone"] for r in recs])
        row["searched"] = {"mean": float(searched.mean()), "min": float(searched.min()), "max": float(searched.max())}
        for key, _ in BASELINES:
            vals = [r["baselines"][key]["test"] for r in recs if r.get("baselines") and key in r["baselines"]]
            if len(vals) == len(recs):
                v = np.array(vals)
                lead = 100 * (searched - v)
                row[key] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
                            "peak_sram": [r["baselines"][key]["peak_sram"] for r in recs],
                            "lead_points": [round(float(x), 2) for x in lead], "lead_mean": float(lead.mean())}
        out[b] = row
    return out


def plot_sweep(summary: dict, path: Path, title: str) -> None:
    """Accuracy vs budget: mean over seeds with the min-max spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeviz.atomic import atomic_path
    from edgeviz.search.budget import parse_size

    budgets = list(summary)
    xs = [parse_size(b) / 1024 for b in budgets]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    series = [("searched", "searched, two stages", "k", "o")] + [
        (k, lab, col, mk) for (k, lab), col, mk in zip(BASELINES, ["tab:red", "tab:orange", "tab:gray", "tab:blue"],
                                                        ["s", "^", "x", "v"])]
    for key, label, col, mk in series:
        pts = [(x, summary[b][key]) for x, b in zip(xs, budgets) if key in summary[b]]
        if not pts:
            continue
        x = [p[0] for p in pts]
        m = [100 * p[1]["mean"] for p in pts]
        lo = [100 * (p[1]["mean"] - p[1]["min"]) for p in pts]
        hi = [100 * (p[1]["max"] - p[1]["mean"]) for p in pts]
        ax.errorbar(x, m, yerr=[lo, hi], color=col, marker=mk, capsize=3, lw=1.5 if key == "searched" else 1,
                    label=label)
    ax.set_xscale("log")
    ax.set_xticks(xs, budgets)
    ax.minorticks_off()
    ax.set_xlabel("SRAM budget (KB, log scale)")
    ax.set_ylabel("test accuracy (%), mean and min-max over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_sweep_report(out: Path, report: dict) -> None:
    """report.html: accuracy vs budget, the table behind it, and each search's accuracy-vs-SRAM plot."""
    from edgeviz.report import page, table

    rows = []
    for b, row in report["summary"].items():
        r = {"budget": b, "seeds": row["seeds"], "searched": row["searched"]["mean"],
             "chosen peak SRAM": ", ".join(format_size(p) for p in row["peak_sram"])}
        for key, _ in BASELINES:
            if key in row:
                r[key] = row[key]["mean"]
                r[f"lead over {key} (points)"] = row[key]["lead_mean"]
        rows.append(r)
    sections = [("Accuracy vs budget", "<img src='accuracy_vs_budget.png'>"), ("Mean test accuracy over seeds", table(rows))]
    for seed, runs in report["seeds"].items():
        for b in runs["budgets"]:
            png = Path(f"seed{seed}") / b / "pareto.png"
            if (out / png).exists():
                sections.append((f"seed {seed}, {b}: what the search saw and what decided", f"<img src='{png.as_posix()}'>"))
    write_text(out / "report.html", page(f"edgeviz search sweep on {report['data']}", sections))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="320KB,128KB", help="comma-separated, run in this order")
    ap.add_argument("--seeds", default="0", help="comma-separated: one supernet (and data split) per seed")
    ap.add_argument("--data", default=None, help="built-in data (digits, shapes), a folder or an .npz")
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="supernet epochs (default: the search's)")
    ap.add_argument("--supernet", default=None, help="reuse this checkpoint (one seed only; trained if missing)")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--finalists", type=int, default=DEFAULT_FINALISTS)
    ap.add_argument("--finetune-steps", type=int, default=DEFAULT_FINETUNE_STEPS)
    ap.add_argument("--space", default=None)
    ap.add_argument("-o", "--out", default="bench-search-out")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--no-landscape", action="store_true", help="skip the accuracy-vs-size sweep")
    ap.add_argument("--report-only", action="store_true",
                    help="a sweep: summarise, plot and print what -o's bench_search.json holds; run nothing")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(x) for x in a.seeds.split(",")]
    budgets = a.budgets.split(",")
    if a.supernet and len(seeds) > 1:
        ap.error("--supernet takes one seed")
    sweep = len(seeds) > 1 or a.data is not None
    # A sweep (several seeds or other data) lays out out/seedS/{supernet.pt,BUDGET/} and resumes: a
    # finished (seed, budget) kept in bench_search.json is not run again, an unfinished one resumes from
    # the search's own state files.
    report_path = out / "bench_search.json"
    old = json.loads(report_path.read_text()) if sweep and report_path.exists() else {}
    report = {"cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "data": a.data or "digits",
              "epochs": a.epochs, "seeds": old.get("seeds", {}), "budgets": {}}
    for seed in seeds if not a.report_only else []:
        sdir = out / f"seed{seed}" if sweep else out
        ckpt = Path(a.supernet) if a.supernet else sdir / "supernet.pt"
        runs = report["seeds"].setdefault(str(seed), {"budgets": {}})
        t0, c0 = time.perf_counter(), cpu_seconds()
        _, summary = run_train(space=a.space, data=a.data, epochs=a.epochs, output=ckpt, seed=seed, progress=False)
        if "train" not in runs:
            runs["train"] = {"epochs": summary["epochs_done"], "wall_seconds": time.perf_counter() - t0,
                             "cpu_seconds": cpu_seconds() - c0, "history": summary["history"],
                             "train_seconds_in_checkpoint": summary["train_seconds"]}
        write_json(report_path, report)
    for b in budgets if not a.report_only else []:
        for seed in seeds:
            runs = report["seeds"][str(seed)]
            if b in runs["budgets"]:
                continue
            sdir = out / f"seed{seed}" if sweep else out
            ckpt = Path(a.supernet) if a.supernet else sdir / "supernet.pt"
            t0, c0 = time.perf_counter(), cpu_seconds()
            r = run_search(SearchSettings(b, supernet=ckpt, population=a.population, generations=a.generations,
                                          out=sdir / b, space=a.space, data=a.data, seed=seed,
                                          baselines=not a.no_baselines, progress=False, finalists=a.finalists,
                                          finetune_steps=a.finetune_steps))
            runs["budgets"][b] = budget_record(r, t0, c0)
            if not sweep:
                report["budgets"][b] = runs["budgets"][b]
            report["summary"] = sweep_summary(report)
            write_json(report_path, report)      # a budget's figures survive a crash in the next
    report["summary"] = sweep_summary(report)
    if sweep and not a.no_baselines:
        plot_sweep(report["summary"], out / "accuracy_vs_budget.png",
                   f"edgeviz search on {a.data or 'digits'}: accuracy vs SRAM budget ({len(seeds)} seeds)")
        write_sweep_report(out, report)
    if not a.no_landscape and not sweep:
        report["landscape"] = landscape(ckpt, a.space)
    report["loadavg_end"] = os.getloadavg()
    write_json(report_path, report)

    for seed, runs in report["seeds"].items():
        tr = runs["train"]
        print(f"seed {seed} supernet: {tr['epochs']} epochs, {tr['wall_seconds']:.0f} s wall, {tr['cpu_seconds']:.0f} CPU s "
              f"(load average {report['loadavg_start'][0]:.1f} at start)")
        for b, rec in runs["budgets"].items():
            print_budget(f"seed {seed}, {b}", rec)
    if sweep:
        print("accuracy vs budget (test, mean [min, max] over seeds; lead = searched - baseline, points):")
        for b, row in report["summary"].items():
            s = row["searched"]
            print(f"  {b:>6s}: searched {s['mean']:.4f} [{s['min']:.4f}, {s['max']:.4f}] over {row['seeds']} seeds, "
                  f"peaks {', '.join(format_size(p) for p in row['peak_sram'])}")
            for key, what in BASELINES:
                if key in row:
                    u = row[key]
                    print(f"          {what}: {u['mean']:.4f} [{u['min']:.4f}, {u['max']:.4f}], lead "
                          f"{u['lead_mean']:+.1f} ({', '.join(f'{x:+.1f}' for x in u['lead_points'])})")
    return 0


def print_budget(label: str, rec: dict) -> None:
    acc = rec["accuracy"]
    print(f"[{label}] chosen {rec['summary']}")
    print(f"  peak SRAM planned {format_size(rec['peak_sram'])} vs MCUFormer formula {format_size(rec['formula_peak'])} "
          f"(formula / planner = {rec['formula_peak'] / max(1, rec['peak_sram']):.2f}x); flash {format_size(rec['flash'])}")
    s = rec["search"]
    print(f"  search: {s['evaluations']} evaluated, {s['planned']} planned, {s['search_seconds']:.1f} s, "
          f"{s['candidates_per_second']:.2f} candidates/s (planner {s['planned_per_second']:.2f}/s, "
          f"accuracy {s['evaluated_per_second']:.2f}/s)")
    ev, ft = rec["evolution_choice"], rec["finetune"]
    print(f"  evolution's choice {ev['summary']} {format_size(ev['peak_sram'])}: supernet val "
          f"{ev['val_supernet']:.4f} test {ev['test_supernet']:.4f}")
    for f in rec["finalists"]:
        print(f"  {'*' if f['chosen'] else ' '} finalist {f['summary']} {format_size(f['peak_sram'])}: val "
              f"{f['val_supernet']:.4f} in the supernet -> "
              + ", ".join(f"{r['val']:.4f} after {r['steps']}" for r in f["rungs"]) + " fine-tuning steps")
    if rec["finalists"]:
        rungs = " -> ".join(f"{r['finalists']} x {r['steps']}" for r in ft["rungs"])
        print(f"  fine-tuning stage (successive halving, finalists x steps): {rungs}, "
              f"{ft['wall_seconds']:.0f} s wall, {ft['cpu_seconds']:.0f} CPU s; chosen: val "
              f"{acc['val_finetuned']:.4f} "
              f"test {acc['test_standalone']:.4f}")
    bl = rec["baselines"]
    if bl:
        test = acc["test_standalone"]
        rs = bl["random_search"]
        print(f"  random search ({rs['evaluations']} evals): val {rs['best_val']:.4f} test {rs['best_test']:.4f}")
        for key, what in BASELINES:
            un = bl.get(key)
            if un:
                steps = f"{un['steps']} steps, " if "steps" in un else ""
                print(f"  {what}: {un['summary']} {format_size(un['peak_sram'])} ({steps}val {un['val']:.4f}) "
                      f"test {un['test']:.4f} -> searched - this = {100 * (test - un['test']):+.1f} points")


if __name__ == "__main__":
    sys.exit(main())
