"""`edgeviz train` and `edgeviz search`: registered on the main parser by ``add_cli(subparsers)``.

Each subcommand sets ``func(args) -> exit code``; EdgevizError propagates to edgeviz.cli (one line, exit 2).
"""
from __future__ import annotations

import argparse
import json

from edgeviz.errors import EdgevizError


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {v}")
    return v


def _macs(text: str) -> int:
    t = text.strip().lower()
    mult = {"k": 10**3, "m": 10**6, "g": 10**9}.get(t[-1:], 1)
    try:
        v = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad MAC limit {text!r}; write e.g. 5000000, 5M or 5e6") from None
    return int(v)


def cmd_train(a) -> int:
    from edgeviz.search.run import run_train

    net, summary = run_train(space=a.space, data=a.data, epochs=a.epochs, output=a.output, batch_size=a.batch_size,
                             seed=a.seed, progress=not a.no_progress, subset=a.subset, step_delay=a.step_delay)
    if a.json and summary.get("rank", 0) == 0:
        print(json.dumps({k: summary[k] for k in ("epochs_done", "train_seconds", "history", "checkpoint",
                                                  "world_size")}))
    return 0


def cmd_search(a) -> int:
    from edgeviz.search.run import run_search

    r = run_search(budget=a.budget, target=a.target, flash=a.flash, data=a.data, supernet_ckpt=a.supernet,
                   epochs=a.epochs, population=a.population, generations=a.generations, out_dir=a.out,
                   json=a.json, space=a.space, macs=a.macs, seed=a.seed, evolve_search_space=a.evolve_space,
                   baselines=a.baselines, progress=False if a.no_progress else None, quiet=a.json,
                   finalists=a.finalists, finetune_steps=a.finetune_steps)
    if not a.json:
        acc = r["accuracy"]
        val = (f"val acc {acc['val_finetuned']:.3f} fine-tuned" if acc["val_finetuned"] is not None
               else f"val acc {acc['val_supernet']:.3f}")
        print(f"searched {a.out}: {r['summary']}; peak SRAM {r['peak_sram']:,} B "
              f"({', '.join(f'{b} {n:,}' for b, n in r['peak_sram_banks'].items() if n)}), flash {r['flash']:,} B, "
              f"{r['macs']:,} MACs, {val}, test acc {acc['test_standalone']:.3f}")
    return 0


def add_cli(subparsers) -> None:
    from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_EPOCHS
    from edgeviz.search.run import DEFAULT_FINALISTS, DEFAULT_FINETUNE_STEPS, DEFAULT_GENERATIONS, DEFAULT_POPULATION

    t = subparsers.add_parser("train", help="train the weight-sharing supernet of the search space")
    t.add_argument("--space", metavar="FILE", help="search space TOML (default: the shipped digits space)")
    t.add_argument("--data", metavar="PATH", help="image folder (one subfolder per class) or .npz with x, y; "
                                                  "default: built-in digits")
    t.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS, help=f"default {DEFAULT_EPOCHS}")
    t.add_argument("-o", "--output", metavar="CKPT", default="supernet.pt",
                   help="checkpoint, written every epoch; resumed if it exists (default supernet.pt)")
    t.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH, help=argparse.SUPPRESS)
    t.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print a machine-readable summary")
    t.add_argument("--subset", type=int, default=0, help=argparse.SUPPRESS)
    t.add_argument("--step-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_train)

    s = subparsers.add_parser("search", help="find the most accurate ViT that fits an SRAM budget (MCUFormer NAS)")
    s.add_argument("--budget", required=True, help="peak SRAM budget, e.g. 320KB, 320KiB, 0.3125MB, 327680 (1 KB = 1024 B)")
    s.add_argument("--target", default="stm32f746", help="board (targets/*.toml), default stm32f746")
    s.add_argument("--flash", default=None, help="flash limit, e.g. 1MB (default: the target's flash)")
    s.add_argument("--data", metavar="PATH", help="image folder or .npz (default: built-in digits)")
    s.add_argument("--supernet", metavar="CKPT", help="trained supernet (edgeviz train); default: train one in -o DIR")
    s.add_argument("--epochs", type=_positive_int, default=None,
                   help=f"supernet training epochs when training (default {DEFAULT_EPOCHS})")
    s.add_argument("--population", type=_positive_int, default=DEFAULT_POPULATION,
                   help=f"default {DEFAULT_POPULATION}")
    s.add_argument("--generations", type=_positive_int, default=DEFAULT_GENERATIONS,
                   help=f"default {DEFAULT_GENERATIONS}")
    s.add_argument("-o", "--out", metavar="DIR", default="search-out", help="output folder (default search-out)")
    s.add_argument("--json", action="store_true", help="print subnet.json on stdout (logs stay in search.log)")
    s.add_argument("--space", metavar="FILE", help="search space TOML")
    s.add_argument("--macs", type=_macs, default=None, help="optional MAC limit, e.g. 20M")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--evolve-space", action="store_true",
                   help="first shift the rank-ratio and patch ranges by fit rate and error (MCUFormer)")
    s.add_argument("--baselines", action="store_true",
                   help="also run random search (same evaluations) and uniform ViTs (from scratch with as many "
                        "training steps, and through the same search + fine-tuning)")
    # No argparse type: run_search checks these, so a bad value is one EdgevizError line.
    s.add_argument("--finalists", metavar="K", default=DEFAULT_FINALISTS,
                   help=f"after the search, fine-tune K candidates spread over peak SRAM from the supernet by "
                        f"successive halving (all for S/9 steps, the best third for S/3, the best one for S) and "
                        f"export the winner; 0: export the search's choice as is (default {DEFAULT_FINALISTS})")
    s.add_argument("--finetune-steps", metavar="S", default=DEFAULT_FINETUNE_STEPS,
                   help=f"fine-tuning steps of the winner, the last rung (default {DEFAULT_FINETUNE_STEPS})")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_search)


__all__ = ["add_cli", "EdgevizError"]
