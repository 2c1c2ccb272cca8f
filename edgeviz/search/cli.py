"""`edgeviz train` and `edgeviz search`: registered on the main click group by ``add_cli(group)``.

Each command hands its options to ``cmd_*(args) -> exit code``; EdgevizError propagates to
edgeviz.cli (one line, exit 2). ``search`` turns its flags into a ``SearchSettings`` (``settings_from_flags``).
"""
from __future__ import annotations

import json

import click

from edgeviz.clikit import handler
from edgeviz.errors import EdgevizError
from edgeviz.search.budget import format_duration
from edgeviz.search.run import run_search
from edgeviz.search.settings import (DEFAULT_FINALISTS, DEFAULT_FINETUNE_STEPS, DEFAULT_GENERATIONS, DEFAULT_OUT,
                                     DEFAULT_POPULATION, DEFAULT_TARGET, SearchSettings)
from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_EPOCHS, run_train


def _positive_int(ctx, param, text) -> int | None:
    if text is None:
        return None
    try:
        v = int(text)
    except ValueError:
        raise click.BadParameter(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise click.BadParameter(f"expected a number >= 1, got {v}")
    return v


def _macs(ctx, param, text) -> int | None:
    if text is None:
        return None
    t = text.strip().lower()
    mult = {"k": 10**3, "m": 10**6, "g": 10**9}.get(t[-1:], 1)
    try:
        v = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise click.BadParameter(f"bad MAC limit {text!r}; write e.g. 5000000, 5M or 5e6") from None
    return int(v)


def cmd_train(a) -> int:
    net, summary = run_train(space=a.space, data=a.data, epochs=a.epochs, output=a.output, batch_size=a.batch_size,
                             seed=a.seed, progress=not a.no_progress, subset=a.subset, step_delay=a.step_delay)
    if a.json and summary.get("rank", 0) == 0:
        print(json.dumps({k: summary[k] for k in ("epochs_done", "train_seconds", "history", "checkpoint",
                                                  "world_size")}))
    return 0


def settings_from_flags(a) -> SearchSettings:
    """The search's settings from `edgeviz search`'s options (a namespace of them, as click parsed them):
    each flag sets the field of its name, --no-progress sets ``progress``, --json also ``quiet``."""
    return SearchSettings(budget=a.budget, target=a.target, flash=a.flash, data=a.data, supernet=a.supernet,
                          epochs=a.epochs, population=a.population, generations=a.generations, out=a.out,
                          json=a.json, space=a.space, macs=a.macs, latency=a.latency, seed=a.seed, evolve_space=a.evolve_space,
                          kv_per_head=a.kv_per_head,
                          baselines=a.baselines, finalists=a.finalists, finetune_steps=a.finetune_steps,
                          progress=False if a.no_progress else None, quiet=a.json, step_delay=a.step_delay)


def cmd_search(a) -> int:
    r = run_search(settings_from_flags(a))
    if not a.json:
        acc = r["accuracy"]
        val = (f"val acc {acc['val_finetuned']:.3f} fine-tuned" if acc["val_finetuned"] is not None
               else f"val acc {acc['val_supernet']:.3f}")
        print(f"searched {a.out}: {r['summary']}; peak SRAM {r['peak_sram']:,} B "
              f"({', '.join(f'{b} {n:,}' for b, n in r['peak_sram_banks'].items() if n)}), flash {r['flash']:,} B, "
              f"{r['macs']:,} MACs" + (f" (estimated {format_duration(r['latency_estimate_s'])})"
                                        if r.get("latency_estimate_s") is not None else "")
              + f", {val}, test acc {acc['test_standalone']:.3f}")
    return 0


def add_cli(group) -> None:
    @group.command("train", help="train the weight-sharing supernet of the search space")
    @click.option("--space", metavar="FILE|NAME", help="search space TOML or a shipped one by name (default: the "
                                                      "digits space; shapes: sized for --data shapes)")
    @click.option("--data", metavar="NAME|PATH", help="built-in data (digits, shapes), an image folder (one "
                                                      "subfolder per class) or .npz with x, y; default: digits")
    @click.option("--epochs", default=str(DEFAULT_EPOCHS), callback=_positive_int, help=f"default {DEFAULT_EPOCHS}")
    @click.option("-o", "--output", metavar="CKPT", default="supernet.pt",
                  help="checkpoint, written every epoch; resumed if it exists (default supernet.pt)")
    @click.option("--batch-size", default=str(DEFAULT_BATCH), callback=_positive_int, hidden=True)
    @click.option("--seed", type=int, default=0, hidden=True)
    @click.option("--no-progress", is_flag=True, help="no progress bar")
    @click.option("--json", is_flag=True, help="print a machine-readable summary")
    @click.option("--subset", type=int, default=0, hidden=True)
    @click.option("--step-delay", type=float, default=0.0, hidden=True)
    def train_command(**kw):
        return handler(cmd_train)(**kw)

    @group.command("search", help="find the most accurate ViT that fits an SRAM budget (MCUFormer NAS)")
    @click.option("--budget", required=True,
                  help="peak SRAM budget, e.g. 320KB, 320KiB, 0.3125MB, 327680 (1 KB = 1024 B)")
    @click.option("--target", default=DEFAULT_TARGET, help=f"board (targets/*.toml), default {DEFAULT_TARGET}")
    @click.option("--flash", default=None, help="flash limit, e.g. 1MB (default: the target's flash)")
    @click.option("--data", metavar="NAME|PATH", help="built-in data (digits, shapes), image folder or .npz "
                                                      "(default: digits)")
    @click.option("--supernet", metavar="CKPT", help="trained supernet (edgeviz train); default: train one in -o DIR")
    @click.option("--epochs", default=None, callback=_positive_int,
                  help=f"supernet training epochs when training (default {DEFAULT_EPOCHS})")
    @click.option("--population", default=str(DEFAULT_POPULATION), callback=_positive_int,
                  help=f"default {DEFAULT_POPULATION}")
    @click.option("--generations", default=str(DEFAULT_GENERATIONS), callback=_positive_int,
                  help=f"default {DEFAULT_GENERATIONS}")
    @click.option("-o", "--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    @click.option("--json", is_flag=True, help="print subnet.json on stdout (logs stay in search.log)")
    @click.option("--space", metavar="FILE|NAME",
                  help="search space TOML, or a shipped one by name (shapes: sized for --data shapes)")
    @click.option("--macs", default=None, callback=_macs, help="optional MAC limit, e.g. 20M")
    @click.option("--latency", metavar="TIME", default=None,
                  help="optional latency limit per inference, e.g. 50ms: on an MCU the kernels' instruction "
                       "model (calibrated on the emulator) at one instruction a cycle and the target's clock; "
                       "on an FPGA the HLS estimate at the board clock")
    @click.option("--seed", type=int, default=0)
    @click.option("--kv-per-head", is_flag=True,
                  help="judge candidates as `edgeviz build --kv-per-head` builds them (K and V one head at a time "
                       "where that plans a smaller arena, for more instructions); MCU targets only")
    @click.option("--evolve-space", is_flag=True,
                  help="first shift the rank-ratio and patch ranges by fit rate and error (MCUFormer)")
    @click.option("--baselines", is_flag=True,
                  help="also run random search (same evaluations) and uniform ViTs (from scratch with as many "
                       "training steps, and through the same search + fine-tuning)")
    # no click type: SearchSettings checks these, so a bad value is one EdgevizError line
    @click.option("--finalists", metavar="K", type=str, default=DEFAULT_FINALISTS,
                  help=f"after the search, fine-tune K candidates spread over peak SRAM from the supernet by "
                       f"successive halving (all for S/9 steps, the best third for S/3, the best one for S) and "
                       f"export the winner; 0: export the search's choice as is (default {DEFAULT_FINALISTS})")
    @click.option("--finetune-steps", metavar="S", type=str, default=DEFAULT_FINETUNE_STEPS,
                  help=f"fine-tuning steps of the winner, the last rung (default {DEFAULT_FINETUNE_STEPS})")
    @click.option("--no-progress", is_flag=True, help="no progress bar")
    @click.option("--step-delay", type=float, default=0.0, hidden=True)    # tests: interrupt mid-stage
    def search_command(**kw):
        return handler(cmd_search)(**kw)


__all__ = ["add_cli", "EdgevizError", "settings_from_flags"]
