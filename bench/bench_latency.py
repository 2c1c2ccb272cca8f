"""Calibrate and check the MCU latency model (edgeviz/backends/mcu_latency.py) on the emulator.

Builds subnets of the default search space and the bench models for a target, profiles each on its
QEMU machine (-icount: instructions per layer), fits the per-(op, kind) instruction costs on one set
of random subnets and reports the model's error on the others (held out: other random subnets and
every bench model, every finalist of the last bench_search.py run), per model and per step, in the
same run. The fit subnets and the bench models are measured under the default schedule and the
faster ones `--optimize time` chooses from (SCHEDULES: the whole [N, 3E] qkv, unfused; on the DSP
kernels the whole qkv with merged chain tails too), so that the
model ranks schedules as well as models. `--write` stores the fit as the
kernel path's shipped model (firmware/kernels/instructions-<path>.json). Measurements are cached
in results/latency_measured-<target>.json under a digest of the firmware sources, so an interrupted
run resumes and a kernel change measures everything again.

    .venv/bin/python bench/bench_latency.py [--target stm32f746] [--fit-models 12] [--check-models 6]
        [--finalists N] [--write]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_models import BENCH_CONFIGS, print_markdown_table  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.backends.base import unfused  # noqa: E402
from edgeviz.backends.mcu import write_project  # noqa: E402
from edgeviz.backends.mcu_latency import fit, kernel_path, model_file, step_work  # noqa: E402
from edgeviz.frontend import graph_from_vit  # noqa: E402
from edgeviz.lower import lower, lower_config, plan_config  # noqa: E402
from edgeviz.passes import Switches  # noqa: E402
from edgeviz.model import ViT, ViTConfig  # noqa: E402
from edgeviz.project import compile_graph  # noqa: E402
from edgeviz.runner import api  # noqa: E402
from edgeviz.search.space import config_key  # noqa: E402
from edgeviz.search.train import as_space  # noqa: E402
from edgeviz.targets import load_target  # noqa: E402

RESULTS = ROOT / "results"


# The schedules each model is measured under: the build's default (the smallest arena) and the two
# faster ones `--optimize time` may pick (ops the default never runs: the fused attention over the whole
# [N, 3E] qkv; the unfused q.k, softmax and p.v steps), so the model can rank them.
# On the DSP kernels `--optimize time` also offers chains with merged tails (Switches.merge_tail).
SCHEDULES = {"default": None, "whole-qkv": Switches(split_qkv=False), "unfused": unfused(Switches()),
             "whole-qkv-merged": Switches(split_qkv=False, merge_tail=True)}


def schedules_for(target) -> list[str]:
    return [s for s in SCHEDULES if kernel_path(target) == "dsp" or not (SCHEDULES[s] and SCHEDULES[s].merge_tail)]


def key(cfg: ViTConfig, sched: str) -> str:
    return config_key(cfg) + ("" if sched == "default" else f" @{sched}")


def measure(cfg: ViTConfig, target: str, sched: str = "default") -> dict:
    """Per-step features and measured instructions of one build of cfg (random weights, 4 inputs)."""
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))
    sw = SCHEDULES[sched]
    c = compile_graph(graph_from_vit(ViT(cfg).eval()), x, target, sw, exact_switches=sw is not None)
    with tempfile.TemporaryDirectory() as d:
        write_project(c, Path(d) / "b", "m", x)
        prof = api.profile(Path(d) / "b", "emulator", n=1)
    measured = {l["name"]: l["median"] for l in prof["layers"]}
    return {"config": cfg.to_dict(), "macs": int(c.info["macs"]), "total": prof["end_to_end"]["median"],
            "steps": [{"layer": st.name, "features": step_work(st, c.schedule.graph), "instructions": measured[st.name]}
                      for st in c.schedule.steps]}


def subnets(n: int, seed: int, target: str, stratify: bool = False) -> list[ViTConfig]:
    """n distinct subnets of the default search space that fit the target (what a search may pick).
    stratify: the first ones one per token count of the space, so the fit sees every kernel route
    (e.g. attention over more than 512 keys, which runs p.v one query row at a time); a token count
    no subnet of which fits in 2,000 draws is left out."""
    space = as_space(None).with_data(1, 10)
    rng, seen = random.Random(seed), set()

    def draw(tokens: int | None = None, tries: int | None = None) -> ViTConfig | None:
        while tries is None or tries > 0:
            cfg = space.sample(rng)
            tries = None if tries is None else tries - 1
            if (tokens is None or cfg.num_tokens == tokens) and config_key(cfg) not in seen:
                seen.add(config_key(cfg))
                if plan_config(cfg, target).fits:
                    return cfg
        return None

    grid = sorted({space.config(img_size=r, patch=p, embed=space.embed[0], heads=space.heads[0], depth=1).num_tokens
                   for r, p in space.res_patch_pairs()}) if stratify else []
    out = [cfg for t in grid[:n] if (cfg := draw(t, tries=2000)) is not None]
    return out + [draw() for _ in range(n - len(out))]


def search_finalists(target: str) -> list[tuple[str, ViTConfig]]:
    """Every finalist of the last bench_search.py run (its fine-tuning stage's candidates per budget)."""
    f = RESULTS / "search.json"
    if not f.exists():
        return []
    out, seen = [], set()
    for budget, r in json.loads(f.read_text()).get("budgets", {}).items():
        for fin in r.get("finalists", []):
            cfg = ViTConfig.from_dict(fin["config"])
            if config_key(cfg) not in seen and plan_config(cfg, target).fits:
                seen.add(config_key(cfg))
                out.append((f"finalist {budget}", cfg))
    return out


def _lowered(cfg: ViTConfig, target: str, sched: str):
    """cfg lowered as measure() builds it: the judge's lowering, or the schedule's switches as given."""
    low = lower_config(cfg, target)
    return low if SCHEDULES[sched] is None else lower(low.graph, target, SCHEDULES[sched], exact=True)


def with_features(cfg: ViTConfig, target: str, measured: dict, sched: str = "default") -> dict:
    """A measured model with each step's features as the ops state them now (the same schedule as the
    build), so a new work kind needs no new measurement: the cache keeps the counts."""
    low = _lowered(cfg, target, sched)
    feats = {st.name: step_work(st, low.schedule.graph) for st in low.schedule.steps}
    return dict(measured, steps=[dict(s, features=feats[s["layer"]]) for s in measured["steps"]])


def _fits(cfg: ViTConfig, target: str, sched: str) -> bool:
    """Whether cfg fits the target under the schedule (the faster ones hold more arena)."""
    low = _lowered(cfg, target, sched)
    return not low.backend.fit(low)


def kernels_digest() -> str:
    """The firmware's kernels and runtime, whose instructions the counts measure (not the board layers:
    a step's count starts and ends inside the runtime, so a board change leaves every count as it was)."""
    h = hashlib.sha256()
    fw = ROOT.parent / "firmware"
    for f in sorted([*(fw / "kernels").rglob("*"), *(fw / "runtime").rglob("*")]):
        if f.is_file() and f.suffix in (".c", ".h", ".S"):
            h.update(f.relative_to(ROOT.parent).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


def main(target: str, n_fit: int, n_check: int, write: bool, jobs: int, n_finalists: int | None = None) -> int:
    t = load_target(target)
    cache_file = RESULTS / f"latency_measured-{target}.json"
    kernels = kernels_digest()
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    if cache.get("kernels") != kernels:          # other kernels: every count is stale
        cache = {"kernels": kernels, "models": {}}
    fits = subnets(n_fit, 1, target, stratify=True)
    bench = [(k, c) for k, c in BENCH_CONFIGS.items() if plan_config(c, target).fits]
    scheds = schedules_for(t)
    sets = {"fit": [(f"subnet {i + 1}", c, sched) for sched in scheds for i, c in enumerate(fits)
                    if _fits(c, target, sched)],
            "check": [(f"subnet {i + 1}", c, "default") for i, c in enumerate(subnets(n_check, 2, target))]
            + [(k, c, sched) for sched in scheds for k, c in bench if _fits(c, target, sched)]
            + [(k, c, "default") for k, c in search_finalists(target)[:n_finalists]]}
    todo = list({key(c, sched): (c, sched) for items in sets.values() for _, c, sched in items
                 if key(c, sched) not in cache["models"]}.values())
    # two builds at a time: gcc and QEMU each keep one core busy
    with ProcessPoolExecutor(max(1, min(jobs, len(todo) or 1)), mp_context=get_context("spawn")) as pool:
        for i, ((cfg, sched), m) in enumerate(zip(todo, pool.map(measure, [c for c, _ in todo], [target] * len(todo),
                                                                  [s for _, s in todo]))):
            print(f"[{i + 1}/{len(todo)}] measured {key(cfg, sched)}", file=sys.stderr, flush=True)
            cache["models"][key(cfg, sched)] = m
            write_text(cache_file, json.dumps(cache))
    got = {which: [(name if sched == "default" else f"{name} @{sched}", cfg,
                    with_features(cfg, target, cache["models"][key(cfg, sched)], sched))
                   for name, cfg, sched in items] for which, items in sets.items()}
    samples = [(s["features"], s["instructions"]) for _, _, m in got["fit"] for s in m["steps"] if s["instructions"] > 0]
    model = fit(samples, kernel_path(t), {"target": target, "machine": t.raw.get("emulator"),
                                          "models": len(got["fit"]), "steps": len(samples)})
    rows, step_errors = [], {"fit": [], "check": []}
    for which in ("fit", "check"):
        for name, cfg, m in got[which]:
            est = sum(model.step_instructions(s["features"]) for s in m["steps"])
            for s in m["steps"]:
                if s["instructions"] > 200:       # below that, QEMU's 40-instruction SysTick tick dominates
                    step_errors[which].append(abs(model.step_instructions(s["features"]) / s["instructions"] - 1))
            rows.append({"set": which, "model": name, "tokens": cfg.num_tokens,
                         "embed": cfg.embed, "depth": cfg.depth, "MACs": m["macs"], "measured": m["total"],
                         "estimated": round(est), "error": est / m["total"] - 1})
    print(f"{target} ({kernel_path(t)} kernels, {t.raw.get('emulator')}): fitted on {len(samples)} steps of "
          f"{len(got['fit'])} subnets")
    print_markdown_table(rows)
    summary = {}
    for which in ("fit", "check"):
        errs = [abs(r["error"]) for r in rows if r["set"] == which]
        summary[which] = {"models": len(errs), "median_abs_error": statistics.median(errs), "max_abs_error": max(errs),
                          "step_median_abs_error": statistics.median(step_errors[which])}
        print(f"{which}: whole-model |error| median {summary[which]['median_abs_error']:.1%}, max "
              f"{summary[which]['max_abs_error']:.1%}; per step (> 200 instructions) median "
              f"{summary[which]['step_median_abs_error']:.1%}")
    model.fitted_on.update(errors=summary)
    write_text(RESULTS / f"latency-{target}.json", json.dumps({"rows": rows, "summary": summary,
                                                                "model": model.to_dict()}, indent=1))
    if write:
        write_text(model_file(model.path), json.dumps(model.to_dict(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {model_file(model.path)}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="stm32f746")
    ap.add_argument("--fit-models", type=int, default=12)
    ap.add_argument("--check-models", type=int, default=6)
    ap.add_argument("--write", action="store_true", help="store the fit as the kernel path's shipped model")
    ap.add_argument("--jobs", type=int, default=2, help="models built and run at a time")
    ap.add_argument("--finalists", type=int, default=None, help="check on the first N finalists only (default: all)")
    a = ap.parse_args()
    sys.exit(main(a.target, a.fit_models, a.check_models, a.write, a.jobs, a.finalists))
