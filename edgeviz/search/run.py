"""The ``search`` job as a function (the CLI in ``edgeviz.search.cli`` calls it; the ``train`` job is
``edgeviz.search.train.run_train``).

``run_search(settings)`` writes into ``settings.out``: subnet.json, model.pt (edgeviz.model.save_model
format), model.onnx, pareto.csv, pareto.png, search.log, plus supernet.pt (when it trains one),
search_state.json (the population after each generation, then the finalists' val accuracies per
fine-tuning run) and finalists/ (their fine-tuned weights), baselines/ with --baselines. Every file is
written atomically; a search stopped and started again with the same settings resumes: supernet training
after the last epoch (after the last step on Ctrl-C), the search after the last generation, the
fine-tuning stage and the baselines after the last finished run (a stopped run from its last saved step:
on Ctrl-C, else every 50 steps). While it runs, it holds ``.search.lock`` in the folder (SEARCH_LOCK).
"""
from __future__ import annotations

import csv
import io
import json as jsonlib
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from edgeviz.errors import EdgevizError
from edgeviz.passes import Switches
from edgeviz.atomic import SEARCH_LOCK, atomic_path, held_lock, write_json, write_text
from edgeviz.search.baselines import random_search, uniform_baseline
from edgeviz.search.budget import format_size
from edgeviz.search.evolution import evolutionary_search
from edgeviz.search.finalists import HALVING_ETA, Finalist, finetune_finalists, halving_rungs, pick_finalists
from edgeviz.search.judge import (Candidate, Evaluator, Judge, Planner, mcuformer_formula, production_planner,
                                  no_fit_error)
from edgeviz.search.settings import FINETUNE_LR, SearchSettings
from edgeviz.search.space import gene_summary
from edgeviz.search.space_evolution import evolve_space
from edgeviz.search.standalone import train_from_scratch
from edgeviz.search.supernet import export_onnx, export_state_dict
from edgeviz.search.train import (DEFAULT_EPOCHS, ProgressBar, TrainSettings, accuracy, as_space, data_for,
                                  read_checkpoint, supernet_from_checkpoint, train_supernet, training_threads)


class RunLog:
    """Lines to stderr (unless quiet) and to a log file rewritten atomically after each line."""

    def __init__(self, path: Path | None, quiet: bool = False, echo: Callable[[str], None] | None = None):
        self.path, self.quiet, self.lines = path, quiet, []
        self.echo = echo
        if path is not None and path.exists():
            self.lines = path.read_text(encoding="utf-8").splitlines()
            if self.lines:
                self.lines.append("---- resumed ----")

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        self.lines.append(line)
        if self.path is not None:
            write_text(self.path, "\n".join(self.lines) + "\n")
        if self.echo:
            self.echo(msg)
        elif not self.quiet:
            print(msg, file=sys.stderr, flush=True)


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no other beats on both accuracy (higher) and peak SRAM (lower)."""
    front, best = [], -1.0
    for c in sorted(cands, key=lambda c: (c.peak_sram, -c.acc)):
        if c.acc > best:
            front.append(c)
            best = c.acc
    return front


def write_pareto(out: Path, cands: list[Candidate], chosen: Candidate, budget: int,
                 finalists: list[dict] | None = None) -> None:
    """pareto.csv and pareto.png: every candidate at its supernet estimate, the evolution's front, and
    what decided: each finalist's fine-tuned validation accuracy (a line from its supernet estimate),
    the exported subnet marked there."""
    front = {id(c) for c in pareto_front([c for c in cands if c.source == "evolution"])}
    rows = []
    for c in sorted(cands, key=lambda c: (c.source, c.peak_sram)):
        r = c.row()
        r["pareto"] = int(id(c) in front)
        r["chosen"] = int(c is chosen)
        rows.append(r)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
    write_text(out / "pareto.csv", buf.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    styles = {"evolution": ("tab:blue", "o", "evolution (supernet weights)"),
              "random": ("tab:gray", "x", "random search (same evaluations)"),
              "uniform": ("tab:red", "s", "uniform ViT (trained from scratch)"),
              "scratch": ("tab:green", "^", "searched architecture (trained from scratch)")}
    for src, (col, mk, lab) in styles.items():
        pts = [c for c in cands if c.source == src]
        if pts:
            ax.scatter([c.peak_sram / 1024 for c in pts], [c.acc * 100 for c in pts], c=col, marker=mk, s=22,
                       alpha=0.7, label=lab)
    fr = pareto_front([c for c in cands if c.source == "evolution"])
    if fr:
        ax.step([c.peak_sram / 1024 for c in fr], [c.acc * 100 for c in fr], where="post", color="tab:blue", lw=1)
    chosen_acc = chosen.acc
    if finalists:
        for i, f in enumerate(finalists):
            x = f["peak_sram"] / 1024
            ax.plot([x, x], [f["val_supernet"] * 100, f["val_finetuned"] * 100], color="tab:green", lw=0.8, alpha=0.6)
            ax.scatter([x], [f["val_finetuned"] * 100], c="tab:green", marker="D", s=26,
                       label="finalists after fine-tuning (steps by successive halving)" if i == 0 else None)
            if f["chosen"]:
                chosen_acc = f["val_finetuned"]
    ax.scatter([chosen.peak_sram / 1024], [chosen_acc * 100], s=160, facecolors="none", edgecolors="k",
               label="chosen (exported)")
    ax.axvline(budget / 1024, color="tab:orange", ls="--", label=f"budget {format_size(budget)}")
    ax.set_xlabel("peak SRAM planned by edgeviz (KB)")
    ax.set_ylabel("top-1 accuracy, validation split (%)")
    ax.set_title("edgeviz search: accuracy vs peak SRAM")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(out / "pareto.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def run_search(settings: SearchSettings, planner: Planner | None = None) -> dict:
    """Search the space for the most accurate subnet whose planned peak SRAM fits ``settings.budget``.

    Two stages: evolution on the supernet's estimates, then ``settings.finalists`` candidates spread over
    peak SRAM fine-tuned from the supernet by successive halving; the winner, fine-tuned
    ``settings.finetune_steps`` steps, is exported (``finalists=0``: the evolution's choice with the
    supernet's weights).

    ``planner``: callable cfg -> report (.peak_sram .flash .macs .fits); default
    ``edgeviz.lower.plan_config`` for ``settings.target`` -- the only memory judge in production.
    Returns the subnet.json content; with ``settings.json`` it is also printed on stdout."""
    t_start = time.perf_counter()
    torch.set_num_threads(training_threads())
    try:
        settings.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgevizError(f"cannot create output folder {settings.out}: {e}") from None
    # one search at a time in a folder: two would resume from and overwrite each other's state
    with held_lock(settings.out / SEARCH_LOCK, f"a search is already running in {settings.out}; wait for it to "
                                               f"finish, or search into another folder (-o)"):
        return _search(settings, planner, t_start)


def _search(s: SearchSettings, planner: Planner | None, t_start: float) -> dict:
    """run_search's work, with the output folder made and locked."""
    out, budget_b, flash_b, target, seed = s.out, s.budget, s.flash, s.target, s.seed
    finalists, finetune_steps = s.finalists, s.finetune_steps
    progress = (not s.json and not s.quiet and sys.stderr.isatty()) if s.progress is None else s.progress
    log = RunLog(out / "search.log", quiet=s.quiet)
    sp = as_space(s.space)
    d = data_for(s.data, sp, seed, s.subset)
    sp = sp.with_data(d.in_chans, d.num_classes)
    plan = planner or production_planner(target, sram_budget=budget_b, flash_budget=flash_b,
                                         switches=Switches(kv_per_head=True) if s.kv_per_head else None,
                                         latency=s.latency is not None)
    judge = Judge(plan, budget_b, flash_b, s.macs, s.latency)
    log(f"search: budget {format_size(budget_b)} ({budget_b} B), target {target}, flash limit "
        f"{format_size(flash_b) if flash_b else 'target flash'}, space {sp.name} ({sp.size()} candidates), data "
        f"{d.name} ({d.info()['sizes']})")
    # Fail fast, before any training, when not even the smallest candidate fits.
    if not judge.feasible(sp.smallest()):
        raise no_fit_error(sp, judge)

    # ---- supernet --------------------------------------------------------------------------------
    ckpt = Path(s.supernet) if s.supernet else out / "supernet.pt"
    blob, ckpt_digest = read_checkpoint(ckpt) if ckpt.exists() else (None, None)
    # The search's own supernet, stopped part way, is trained on to the epochs it was started with; a
    # user's checkpoint (--supernet) without --epochs is taken as it is.
    epochs_wanted = s.epochs or (blob["settings"]["epochs"] if blob is not None and s.supernet is None else None)
    if blob is not None and (epochs_wanted is None or epochs_wanted <= blob["epochs_done"]):
        if blob["data_digest"].split(":")[0] != d.digest.split(":")[0]:   # a subset of the same data is fine
            raise EdgevizError(f"supernet {ckpt} was trained on other data ({blob['data']['name']}); "
                               "train one for this data or leave out --supernet")
        net = supernet_from_checkpoint(blob)
        if net.space.with_data(d.in_chans, d.num_classes).digest() != sp.digest():
            if s.supernet is not None and s.space is None:
                sp = net.space      # a user's checkpoint brings its own space
            else:
                raise EdgevizError(f"supernet {ckpt} was trained on another search space")
        train_info = {"checkpoint": str(ckpt), "epochs_done": blob["epochs_done"],
                      "train_seconds": blob.get("train_seconds"), "history": blob["history"], "trained_now": False}
        log(f"supernet: loaded {ckpt} ({blob['epochs_done']} epochs, {blob.get('train_seconds', 0):.0f} s of training)")
    else:
        if s.supernet is not None and not ckpt.exists() and s.epochs is None:
            raise EdgevizError(f"supernet checkpoint {ckpt} does not exist (train one with `edgeviz train -o {ckpt}`)")
        n_ep = epochs_wanted or DEFAULT_EPOCHS
        log(f"supernet: training {n_ep} epochs into {ckpt}")
        net, summ = train_supernet(sp, d, ckpt, TrainSettings(epochs=n_ep, seed=seed, step_delay=s.step_delay),
                                   log=log, progress=progress)
        blob, ckpt_digest = read_checkpoint(ckpt)
        train_info = dict(summ, trained_now=True)
    net.eval()
    steps_trained = blob["epochs_done"] * max(1, int(d.y["train"].shape[0]) // blob["settings"]["batch_size"])

    # ---- search ----------------------------------------------------------------------------------
    evaluator = Evaluator(net, d, "val", delay=s.step_delay)
    space_trace = None
    search_space = sp
    if s.evolve_space:
        search_space, space_trace = evolve_space(sp, judge, evaluator, seed=seed, log=log)
    bar = None
    if progress:
        bar = ProgressBar(True, s.generations, "search")
    t0 = time.perf_counter()
    signature = {"supernet": ckpt_digest, "target": target, "data": d.digest,
                 **({"latency": s.latency} if s.latency is not None else {})}
    res = evolutionary_search(search_space, judge, evaluator, population=s.population, generations=s.generations,
                              seed=seed, state_path=out / "search_state.json", signature=signature,
                              log=log, on_generation=(lambda g, n: bar.advance(1)) if bar else None)
    if bar:
        bar.close()
    search_seconds = time.perf_counter() - t0
    best = res.best
    all_cands = list(res.evaluated)
    stats = {"evaluations": res.evaluations, "planned": judge.calls, "search_seconds": round(search_seconds, 3),
             "planner_seconds": round(judge.seconds, 3), "accuracy_seconds": round(evaluator.seconds, 3),
             "candidates_per_second": round((judge.calls + evaluator.calls) / max(search_seconds, 1e-9), 3),
             "planned_per_second": round(judge.calls / max(judge.seconds, 1e-9), 3),
             "evaluated_per_second": round(evaluator.calls / max(evaluator.seconds, 1e-9), 3)}
    log(f"search done: {res.evaluations} candidates evaluated, {judge.calls} planned in {search_seconds:.1f} s "
        f"({stats['candidates_per_second']:.2f} candidates/s)")

    # ---- second stage: fine-tune a short list, choose by val ------------------------------------
    # The supernet's estimates rank subnets badly (they favour its smallest subnets: on digits 0.84 for
    # a 2 KB subnet, 0.43-0.63 for mid-size ones that reach 0.97-0.99 trained alone), so evolution only
    # proposes: K finalists spread over peak SRAM are fine-tuned from their inherited weights, short
    # runs first, the best on val for longer (successive halving), and the winner is exported
    # (MCUFormer also retrains its searched subnet).
    tune = {"batch_size": blob["settings"]["batch_size"], "lr": FINETUNE_LR, "seed": seed}

    def two_stage(cands: list[Candidate], what: str, state_path: Path | None = None) -> tuple[Finalist, dict]:
        t, c = time.perf_counter(), time.process_time()
        fins, pick = finetune_finalists(net, pick_finalists(cands, finalists), d, finetune_steps, **tune,
                                        state_path=state_path, log=lambda m: log(f"{what}: {m}"),
                                        step_delay=s.step_delay)
        return pick, {"summary": gene_summary(pick.cand.cfg), "config": pick.cand.cfg.to_dict(),
                      "peak_sram": pick.cand.peak_sram, "val_supernet": pick.cand.acc, "val": pick.val,
                      "test": accuracy(pick.model, d, pick.cand.cfg, "test"),
                      "finalists": [f.row() | {"chosen": f is pick} for f in fins],
                      "wall_seconds": round(time.perf_counter() - t, 3),
                      "cpu_seconds": round(time.process_time() - c, 3)}

    evo_test = accuracy(net, d, best.cfg, "test")        # the evolution's choice with the supernet's weights
    stage = None
    if finalists:
        pick, stage = two_stage(res.evaluated, "fine-tune", out / "search_state.json")
        chosen, model, test_acc = pick.cand, pick.model, stage["test"]
        log(f"fine-tune: {len(stage['finalists'])} finalists, successive halving up to {finetune_steps} steps in "
            f"{stage['wall_seconds']:.1f} s ({stage['cpu_seconds']:.0f} CPU s); winner: {stage['summary']} "
            f"(val {pick.val:.4f})")
    else:
        chosen, model, test_acc = best, net.extract(best.cfg), evo_test

    # ---- export ----------------------------------------------------------------------------------
    export_state_dict(model, out / "model.pt")
    export_onnx(model, out / "model.onnx")
    r = judge.report(chosen.cfg)
    result = {
        "config": chosen.cfg.to_dict(), "summary": gene_summary(chosen.cfg),
        "target": target, "budget_bytes": budget_b, "flash_limit_bytes": flash_b, "mac_limit": s.macs,
        "peak_sram": int(r.peak_sram), "peak_sram_banks": {k: int(v) for k, v in (getattr(r, "banks", {}) or {}).items()},
        "lower_bound_bytes": int(getattr(r, "lower_bound", 0) or 0), "flash": int(r.flash), "macs": int(r.macs),
        "latency_limit_s": s.latency, "latency_estimate_s": getattr(r, "latency_s", None),
        # what the judge planned with beyond the target's default; a build of this folder uses it too
        "switches": {"kv_per_head": s.kv_per_head},
        "mcuformer_formula_peak": mcuformer_formula(chosen.cfg), "planner": getattr(plan, "__name__", str(plan)),
        # val_supernet / test_supernet: the evolution's own choice with the supernet's weights;
        # val_finetuned / test_standalone: the exported model (the same subnet when --finalists 0).
        "accuracy": {"val_supernet": best.acc, "test_supernet": evo_test,
                     "val_finetuned": stage["val"] if stage else None, "test_standalone": test_acc,
                     "split": "val ranks, test reports"},
        "evolution_choice": {"summary": gene_summary(best.cfg), "config": best.cfg.to_dict(),
                             "peak_sram": best.peak_sram, "val_supernet": best.acc, "test_supernet": evo_test},
        "finalists": stage["finalists"] if stage else [],
        "finetune": {"finalists": finalists, "steps": finetune_steps, **tune, "eta": HALVING_ETA,
                     "rungs": [{"finalists": n, "steps": st} for n, st in halving_rungs(finalists, finetune_steps)]
                     if finalists else [],
                     "wall_seconds": stage["wall_seconds"] if stage else 0.0,
                     "cpu_seconds": stage["cpu_seconds"] if stage else 0.0},
        "data": d.info(), "supernet": train_info | {"steps": steps_trained},
        "search": stats | {"population": s.population, "generations": s.generations, "seed": seed,
                           "history": res.history, "space": search_space.to_dict(), "space_evolution": space_trace},
        "files": {k: str(out / k) for k in ("model.pt", "model.onnx", "pareto.csv", "pareto.png", "search.log")},
    }
    # ---- baselines (optional: they cost as much again) -------------------------------------------
    if s.baselines:
        # Fair comparison: a from-scratch baseline gets as many optimizer steps (same batch size, lr
        # schedule and seed) as the exported subnet got in all: the supernet's steps (each trains 4
        # subnets on one batch, the sandwich rule) plus the S fine-tuning steps. The architecture-only
        # comparison is "uniform_two_stage": the same two stages (evolution on the same supernet, K
        # finalists through the same halving) confined to uniform, full-rank ViTs; "searched_scratch" is the
        # exported architecture trained from scratch like the uniform ViTs (the architectures alone compared).
        total_steps = steps_trained + (finetune_steps if finalists else 0)
        rs = random_search(sp, judge, evaluator, res.evaluations, seed=seed + 1)
        all_cands += rs.evaluated

        # Resumable like the search: each finished baseline's result is kept in baselines/NAME.json (with
        # what it was trained from and how), a stopped one's progress in baselines/NAME.progress.pt.
        baselines_dir = out / "baselines"

        def from_scratch(ucfg, what: str, name: str, source: str = "uniform") -> dict:
            run = {"config": ucfg.to_dict(), "steps": total_steps, "batch_size": blob["settings"]["batch_size"],
                   "lr": blob["settings"]["lr"], "seed": seed, "data": d.digest}
            kept = baselines_dir / f"{name}.json"
            saved = jsonlib.loads(kept.read_text()) if kept.exists() else {}
            if saved.get("run") == run:
                row = saved["result"]
                log(f"{what} {gene_summary(ucfg)}: finished before the restart")
            else:
                log(f"{what} {gene_summary(ucfg)}: training from scratch for {total_steps} steps")
                progress_file = baselines_dir / f"{name}.progress.pt"
                umodel, useconds = train_from_scratch(ucfg, d, total_steps, batch_size=run["batch_size"], lr=run["lr"],
                                                      seed=seed, progress_path=progress_file, origin=run,
                                                      step_delay=s.step_delay, log=lambda m: log(f"{what}: {m}"))
                row = {"config": ucfg.to_dict(), "summary": gene_summary(ucfg),
                       "val": accuracy(umodel, d, ucfg, "val"), "test": accuracy(umodel, d, ucfg, "test"),
                       "train_seconds": useconds, "steps": total_steps}
                write_json(kept, {"run": run, "result": row})
                progress_file.unlink(missing_ok=True)
            ucand = Candidate.make(ucfg, row["val"], judge, source)
            all_cands.append(ucand)
            return row | {"peak_sram": ucand.peak_sram, "flash": ucand.flash}

        def baseline_state(name: str) -> Path:
            """A state file for a baseline's fine-tuning stage (finetune_finalists keeps its finished runs
            there), started afresh when the supernet, data or search differ."""
            path = baselines_dir / name / "search_state.json"
            sig = signature | {"baseline": name, "population": s.population, "generations": s.generations,
                               "seed": seed, "budget": budget_b, "flash": flash_b, "macs": s.macs}
            if not path.exists() or jsonlib.loads(path.read_text()).get("signature") != sig:
                write_json(path, {"signature": sig})
            return path

        # Two uniform baselines: MCUFormer's (the largest uniformly scaled ViT that fits) and the best
        # one: the same evolutionary search confined to uniform, full-rank ViTs (one embed / heads / MLP
        # ratio for every block, no low rank), with as many evaluations; each trained from scratch.
        uniform_space = replace(sp, rank_ratio=(1.0,))
        ures = evolutionary_search(uniform_space, judge, evaluator, population=s.population,
                                   generations=s.generations, seed=seed + 2)
        largest = uniform_baseline(sp, judge)
        largest_row = from_scratch(largest, "uniform baseline (largest that fits)", "uniform_vit")
        # the same configuration trained the same way gives the same figures: train it once
        best_row = largest_row if ures.best.cfg == largest else \
            from_scratch(ures.best.cfg, "uniform baseline (best uniform ViT found)", "uniform_best")
        result["baselines"] = {
            "training_steps": {"searched": f"{steps_trained} supernet + {total_steps - steps_trained} fine-tuning",
                               "from_scratch": total_steps,
                               "note": "from-scratch baselines get the searched subnet's total number of optimizer "
                                       "steps; *_two_stage entries go through the same search + fine-tuning"},
            "random_search": {"evaluations": rs.evaluations, "best_val": rs.best.acc,
                              "best_test": accuracy(net, d, rs.best.cfg, "test"),
                              "best_config": rs.best.cfg.to_dict(), "peak_sram": rs.best.peak_sram},
            "uniform_vit": largest_row, "uniform_best": best_row | {"evaluations": ures.evaluations},
            # the architecture alone: the exported subnet's configuration trained as the uniform ViTs are
            "searched_scratch": from_scratch(chosen.cfg, "the searched architecture, from scratch",
                                             "searched_scratch", "scratch")}
        ub = result["baselines"]
        if finalists:
            ub["random_two_stage"] = two_stage(rs.evaluated, "random search + fine-tune",
                                               baseline_state("random_two_stage"))[1]
            ub["uniform_two_stage"] = two_stage(ures.evaluated, "uniform ViTs + fine-tune",
                                                baseline_state("uniform_two_stage"))[1] \
                | {"evaluations": ures.evaluations}
        log(f"baselines: random search best val {rs.best.acc:.4f}; largest uniform ViT test "
            f"{ub['uniform_vit']['test']:.4f}; best uniform ViT test {ub['uniform_best']['test']:.4f}"
            + (f"; random + fine-tune test {ub['random_two_stage']['test']:.4f}; uniform + fine-tune test "
               f"{ub['uniform_two_stage']['test']:.4f}" if finalists else "")
            + f"; searched architecture from scratch test {ub['searched_scratch']['test']:.4f}"
            + f"; searched test {test_acc:.4f}")
    write_pareto(out, all_cands, chosen, budget_b, stage["finalists"] if stage else None)
    result["total_seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(out / "subnet.json", result)
    log(f"chosen: {gene_summary(chosen.cfg)}; peak SRAM {format_size(result['peak_sram'])} "
        f"(MCUFormer formula {format_size(result['mcuformer_formula_peak'])}), flash {format_size(result['flash'])}, "
        f"{result['macs']:,} MACs, val acc {stage['val'] if stage else best.acc:.4f}, test acc {test_acc:.4f} -> {out}")
    if s.json:
        print(jsonlib.dumps(result, sort_keys=True))
    return result
