"""How well does the supernet's one-shot estimate rank subnets? Spearman correlation of the supernet's
validation accuracy with the accuracy each subnet reaches trained alone, over subnets spread over peak SRAM.

Picks N subnets of the space, one per log-spaced bucket of peak SRAM (edgeviz.lower.plan_config's figure,
the number the search judges by), trains each alone from scratch for --steps (as the search's from-scratch
baselines are trained), and rates each with every given supernet (edgeviz train / a search's supernet.pt,
same data and seed), and, with --finetune, after K steps of fine-tuning from the supernet's weights (the
search's second stage rates its finalists that way: a few-shot estimate). Standalone results are kept in
the output JSON, so a rerun, or a second supernet to compare, costs only the evaluations.

    python bench/bench_estimate.py --data shapes --supernets out/seed0/supernet.pt --subnets 12
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeviz.atomic import write_json  # noqa: E402
from edgeviz.lower import plan_config  # noqa: E402
from edgeviz.search.budget import format_size  # noqa: E402
from edgeviz.search.judge import Evaluator  # noqa: E402
from edgeviz.search.space import config_key, gene_summary  # noqa: E402
from edgeviz.search.settings import FINETUNE_LR  # noqa: E402
from edgeviz.search.standalone import train_from_scratch, train_standalone  # noqa: E402
from edgeviz.search.train import (accuracy, as_space, data_for, load_checkpoint,  # noqa: E402
                                  supernet_from_checkpoint, training_threads)


def ranks(v) -> np.ndarray:
    """Ranks with ties averaged (Spearman's definition)."""
    v = np.asarray(v, float)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    for x in np.unique(v):
        tie = v == x
        r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def spread_subnets(space, n: int, seed: int, pool: int = 400) -> list:
    """n subnets, one per log-spaced peak-SRAM bucket between the smallest and largest of ``pool`` random
    feasible candidates (the one nearest the bucket's centre); fewer if buckets are empty."""
    rng = random.Random(f"{seed}:estimate")
    seen, cands = set(), []
    for _ in range(pool):
        c = space.sample(rng)
        k = config_key(c)
        if k in seen:
            continue
        seen.add(k)
        r = plan_config(c)
        if r.fits:
            cands.append((r.peak_sram, c))
    lo, hi = math.log(min(p for p, _ in cands)), math.log(max(p for p, _ in cands))
    chosen = []
    for i in range(n):
        a, b = lo + (hi - lo) * i / n, lo + (hi - lo) * (i + 1) / n
        inside = [(p, c) for p, c in cands if a <= math.log(p) <= b]
        if inside:
            mid = (a + b) / 2
            chosen.append(min(inside, key=lambda pc: abs(math.log(pc[0]) - mid)))
    return chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="built-in data (digits, shapes), a folder or an .npz")
    ap.add_argument("--seed", type=int, default=0, help="data split and training seed (the supernets' own)")
    ap.add_argument("--supernets", default="", help="comma-separated checkpoints to rate the subnets with")
    ap.add_argument("--subnets", type=int, default=12)
    ap.add_argument("--steps", type=int, default=846, help="standalone training steps per subnet")
    ap.add_argument("--finetune", default="", help="comma-separated fine-tuning steps to rate each subnet after too")
    ap.add_argument("--space", default=None)
    ap.add_argument("-o", "--out", default="bench-estimate.json")
    a = ap.parse_args(argv)
    import json

    import torch

    torch.set_num_threads(training_threads())
    out = Path(a.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    report.update({"data": a.data or "digits", "seed": a.seed, "steps": a.steps})
    standalone = report.setdefault("standalone", {})
    sp = as_space(a.space)
    d = data_for(a.data, sp, a.seed)
    sp = sp.with_data(d.in_chans, d.num_classes)
    picked = spread_subnets(sp, a.subnets, a.seed)
    print(f"{len(picked)} subnets over {format_size(picked[0][0])} .. {format_size(picked[-1][0])} of peak SRAM, "
          f"each trained alone for {a.steps} steps")
    for peak, cfg in picked:
        k = config_key(cfg)
        if k in standalone:
            continue
        t = time.perf_counter()
        model, _ = train_from_scratch(cfg, d, a.steps, seed=a.seed)
        standalone[k] = {"summary": gene_summary(cfg), "peak_sram": peak, "val": accuracy(model, d, cfg, "val"),
                         "test": accuracy(model, d, cfg, "test"), "seconds": round(time.perf_counter() - t, 1)}
        print(f"  {format_size(peak):>9s} {gene_summary(cfg)}: val {standalone[k]['val']:.4f} "
              f"({standalone[k]['seconds']:.0f} s)", flush=True)
        write_json(out, report)
    keys = [config_key(c) for _, c in picked]
    alone = [standalone[k]["val"] for k in keys]
    results = report.setdefault("supernets", {})
    for path in [p for p in a.supernets.split(",") if p]:
        blob = load_checkpoint(path)
        net = supernet_from_checkpoint(blob)
        ev = Evaluator(net, d, "val")
        est = [ev(c) for _, c in picked]
        rho = spearman(est, alone)
        s = blob["settings"]
        rec = results.setdefault(path, {})
        rec.update({"settings": s, "epochs_done": blob["epochs_done"], "estimates": dict(zip(keys, est)),
                    "spearman": rho})
        print(f"supernet {path} ({blob['epochs_done']} epochs, {s.get('num_random')} random subnets a step): "
              f"Spearman {rho:+.2f} over {len(picked)} subnets")
        tuned = rec.setdefault("finetuned", {})
        for k_steps in [int(x) for x in a.finetune.split(",") if x]:
            got = tuned.setdefault(str(k_steps), {})
            t = time.perf_counter()
            for (peak, cfg), key in zip(picked, keys):
                if key not in got:
                    model, _ = train_standalone(net.extract(cfg), cfg.img_size, d, k_steps, lr=FINETUNE_LR, seed=a.seed)
                    got[key] = accuracy(model, d, cfg, "val")
                    write_json(out, report)
            vals = [got[k] for k in keys]
            print(f"  after {k_steps} fine-tuning steps from its weights: Spearman {spearman(vals, alone):+.2f} "
                  f"({time.perf_counter() - t:.0f} s for {len(keys)} subnets)")
        for (peak, cfg), e, al, key in zip(picked, est, alone, keys):
            extra = "".join(f", {k} steps {v[key]:.4f}" for k, v in tuned.items() if key in v)
            print(f"  {format_size(peak):>9s} {gene_summary(cfg)}: supernet {e:.4f}{extra}; alone {al:.4f}")
    print(f"Spearman of peak SRAM with standalone accuracy: {spearman([p for p, _ in picked], alone):+.2f}")
    write_json(out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
