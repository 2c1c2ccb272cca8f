"""Does the built-in data reward memory? Uniform, full-rank ViTs of the default search space trained
alone, from scratch, for as many steps as the search's baselines get (546 supernet + 300 fine-tuning =
846), across the space's token grids (embed fixed) and embed dims (token grid fixed), with the
planner's peak SRAM for each. A memory budget can only change the chosen subnet if accuracy still
grows where the budget cuts; this measures where it stops growing on digits.

    .venv/bin/python bench/bench_capacity.py [--steps 846] [--seeds 0,1] [--max-tokens N] [--sweeps tokens,embed]
    .venv/bin/python bench/bench_capacity.py --data shapes --sweeps ladder --seeds 0

--data names the data (built-in digits, shapes, a folder, an .npz). The ``ladder`` sweep grows input
resolution, token grid and embed dim together, from the space's smallest uniform ViT up to 101 tokens
x 192 channels (62 KB), the check that data rewards capacity: test accuracy should rise with peak SRAM.
Writes results/capacity.json (digits) or results/capacity_<data>.json after every configuration; a rerun with the same steps and seeds reuses
the configurations it holds (the 257- and 401-token ones take 10-25 minutes each on one core).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.lower import plan_config  # noqa: E402
from edgeviz.search.budget import format_size  # noqa: E402
from edgeviz.data import load_data  # noqa: E402
from edgeviz.search.standalone import train_from_scratch  # noqa: E402
from edgeviz.search.space import load_space  # noqa: E402
from edgeviz.search.train import accuracy  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


LADDER = [(16, 8, 64), (24, 8, 96), (32, 8, 128), (32, 4, 128), (40, 4, 128), (40, 4, 192)]   # res, patch, embed


def sweep(space, embed: int, grid: tuple[int, int]) -> list:
    """(sweep name, config): every token grid at ``embed``, every embed at token grid ``grid``."""
    depth, mlp = max(space.depth), min(space.mlp_ratio)

    def cfg(r, p, e):
        h = max(h for h in space.heads if e % h == 0)
        return space.config(img_size=r, patch=p, embed=e, depth=depth, heads=h, mlp_ratio=mlp,
                            rank_ratios=(1.0,) * depth)

    pairs = sorted(space.res_patch_pairs(), key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
    seen, out = set(), []
    for r, p in pairs:
        if (r // p) not in seen:                   # one resolution per token grid: the smallest
            seen.add(r // p)
            out.append(("tokens", cfg(r, p, embed)))
    out += [("embed", cfg(*grid, e)) for e in space.embed if e != embed]
    out += [("ladder", cfg(r, p, e)) for r, p, e in LADDER]
    return out


def train_row(what: str, cfg, data, steps: int, seeds: list[int]) -> dict:
    """Train ``cfg`` from scratch once per seed; mean val / test accuracy."""
    vals, tests, secs = [], [], 0.0
    for seed in seeds:
        model, s = train_from_scratch(cfg, data, steps, seed=seed)
        vals.append(accuracy(model, data, cfg, "val"))
        tests.append(accuracy(model, data, cfg, "test"))
        secs += s
    return {"sweep": what, "img_size": cfg.img_size, "patch": cfg.patch, "tokens": cfg.num_tokens,
            "embed": cfg.embed, "depth": cfg.depth, "params": sum(p.numel() for p in model.parameters()), "val": float(np.mean(vals)), "test": float(np.mean(tests)),
            "test_per_seed": tests, "train_seconds": secs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=846)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--embed", type=int, default=128, help="embed dim of the token-grid sweep")
    ap.add_argument("--grid", default="16,4", help="resolution,patch of the embed sweep (17 tokens)")
    ap.add_argument("--max-tokens", type=int, default=0, help="skip token grids above this (0: none)")
    ap.add_argument("--sweeps", default="tokens,embed", help="of tokens, embed, ladder")
    ap.add_argument("--data", default="digits", help="digits (default), shapes, a folder or an .npz")
    a = ap.parse_args(argv)
    space = load_space(None)
    data = load_data(a.data, base=max(space.img_size))
    out = RESULTS / ("capacity.json" if a.data == "digits" else f"capacity_{Path(a.data).stem}.json")
    space = space.with_data(data.in_chans, data.num_classes)
    seeds = [int(s) for s in a.seeds.split(",")]
    old = json.loads(out.read_text()) if out.exists() else {}
    done = {(r["sweep"], r["img_size"], r["patch"], r["embed"]): r for r in old.get("rows", [])
            if old.get("steps") == a.steps and old.get("seeds") == seeds
            and old.get("data", {}).get("digest", data.digest) == data.digest}
    kept = dict(done)           # the file keeps rows this run's --sweeps / --max-tokens leave out
    rows = []
    for what, cfg in sweep(space, a.embed, tuple(int(v) for v in a.grid.split(","))):
        if what not in a.sweeps.split(",") or (a.max_tokens and cfg.num_tokens > a.max_tokens):
            continue
        key = (what, cfg.img_size, cfg.patch, cfg.embed)
        row = done.get(key) or train_row(what, cfg, data, a.steps, seeds)
        row = row | {"peak_sram": plan_config(cfg).peak_sram}          # today's planner, also for old rows
        rows.append(row)
        kept[key] = row
        print(f"{what:6s} {cfg.img_size:3d}px/{cfg.patch} {cfg.num_tokens:4d} tokens x {cfg.embed:3d} "
              f"({row.get('params', 0):,} params): peak "
              f"{format_size(row['peak_sram']):>9s}  val {row['val']:.3f}  test {row['test']:.3f} "
              f"({' '.join(f'{t:.3f}' for t in row['test_per_seed'])})  "
              + ("measured before" if key in done else f"{row['train_seconds']:.0f} s"), flush=True)
        write_text(out, json.dumps({"steps": a.steps, "seeds": seeds, "data": data.info() | {"classes": None},
                                    "rows": list(kept.values()), "when": time.strftime("%Y-%m-%d")}, indent=1))
    best = max(rows, key=lambda r: r["test"])
    print(f"best: {best['tokens']} tokens x {best['embed']} ({format_size(best['peak_sram'])}), test {best['test']:.3f}; "
          f"best above 32 KB: {max((r['test'] for r in rows if r['peak_sram'] > 32 * 1024), default=float('nan')):.3f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
