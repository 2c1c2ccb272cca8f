"""Evolutionary search under a memory budget, and its baselines.

Memory is judged only by the planner handed in (in production ``edgeviz.compiler.plan_config``, see
``production_planner``): a candidate is feasible when the planner says it fits the target, its peak
SRAM is within the budget, its flash within the flash limit and (optionally) its MACs within a MAC
limit. Accuracy comes from the trained supernet on the held-out split, nothing recalibrated, cached
per configuration. Then the second stage: a short list spread over memory, fine-tuned from the
supernet (``pick_finalists``, ``finetune_finalists``). Also here: random search with the same number
of accuracy evaluations, the uniformly scaled ViT baseline, the one standalone training loop
(``train_standalone``), MCUFormer's search-space evolution and its closed-form memory formula.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from edgeviz.errors import EdgevizError
from edgeviz.model import ViTConfig
from edgeviz.atomic import write_json
from edgeviz.search.budget import format_size
from edgeviz.search.space import SearchSpace, config_key
from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_LR

Planner = Callable[[ViTConfig], Any]   # cfg -> report with .peak_sram .flash .macs .fits (.banks .why)


def mcuformer_formula(cfg: ViTConfig) -> int:
    """MCUFormer's closed-form peak memory, E*[(N+1)(1+m) + E*m*rho] bytes (rho: largest block rank ratio).

    Reported beside the planner's figure for comparison only; it never decides feasibility."""
    e, n, m = cfg.embed, cfg.num_patches, cfg.mlp_ratio
    rho = max(cfg.rank_ratios) if cfg.rank_ratios else 1.0
    return int(round(e * ((n + 1) * (1 + m) + e * m * rho)))


def analytic_macs(cfg: ViTConfig) -> int:
    """Multiply-accumulates of one inference, counted from the config (used to order candidates only)."""
    from edgeviz.model import low_rank

    e, n, hid = cfg.embed, cfg.num_tokens, cfg.hidden
    macs = cfg.num_patches * e * cfg.in_chans * cfg.patch ** 2 + e * cfg.num_classes

    def lin(i, o, r):
        k = low_rank(i, o, r)
        return n * (i * o if k is None else k * (i + o))

    for r in cfg.rank_ratios:
        macs += lin(e, 3 * e, r) + lin(e, e, r) + lin(e, hid, r) + lin(hid, e, r) + 2 * n * n * e
    return int(macs)


def production_planner(target: str = "stm32f746", sram_budget: int | None = None, flash_budget: int | None = None,
                       switches=None) -> Planner:
    """``edgeviz.compiler.plan_config`` bound to a target and budgets: the only memory judge of the product."""
    try:
        from edgeviz.lower import plan_config
    except ImportError as e:
        raise EdgevizError(f"the memory planner edgeviz.compiler.plan_config is not available ({e})") from None
    kw = {"sram_budget": sram_budget, "flash_budget": flash_budget}
    if switches is not None:
        kw["switches"] = switches

    def plan(cfg: ViTConfig):
        return plan_config(cfg, target, **kw)

    plan.__name__ = f"plan_config[{target}]"
    return plan


class Judge:
    """Constraints on memory, flash and MACs, with the planner's reports cached per configuration."""

    def __init__(self, plan: Planner, budget: int, flash_limit: int | None = None, mac_limit: int | None = None):
        self.plan, self.budget, self.flash_limit, self.mac_limit = plan, budget, flash_limit, mac_limit
        self.reports: dict[str, Any] = {}
        self.calls = 0
        self.seconds = 0.0

    def report(self, cfg: ViTConfig):
        k = config_key(cfg)
        if k not in self.reports:
            t = time.perf_counter()
            self.reports[k] = self.plan(cfg)
            self.seconds += time.perf_counter() - t
            self.calls += 1
        return self.reports[k]

    def why_not(self, cfg: ViTConfig) -> str:
        """Empty when the candidate is feasible, else the reason."""
        r = self.report(cfg)
        if r.peak_sram > self.budget:
            return f"peak SRAM {format_size(r.peak_sram)} > budget {format_size(self.budget)}"
        if not r.fits:
            return getattr(r, "why", "") or "does not fit the target"
        if self.flash_limit is not None and r.flash > self.flash_limit:
            return f"flash {format_size(r.flash)} > limit {format_size(self.flash_limit)}"
        if self.mac_limit is not None and r.macs > self.mac_limit:
            return f"{r.macs} MACs > limit {self.mac_limit}"
        return ""

    def feasible(self, cfg: ViTConfig) -> bool:
        return not self.why_not(cfg)


class Evaluator:
    """Top-1 accuracy of a subnet with the supernet's shared weights on one split; cached per config."""

    def __init__(self, supernet, data, split: str = "val", batch: int = 270):
        self.net, self.data, self.split, self.batch = supernet.eval(), data, split, batch
        self.cache: dict[str, float] = {}
        self.seconds = 0.0
        self.calls = 0

    @torch.no_grad()
    def __call__(self, cfg: ViTConfig) -> float:
        k = config_key(cfg)
        if k not in self.cache:
            t = time.perf_counter()
            x, y = self.data.images(self.split, cfg.img_size), self.data.y[self.split]
            correct = sum(int((self.net(x[i:i + self.batch], cfg).argmax(1) == y[i:i + self.batch]).sum())
                          for i in range(0, len(y), self.batch))
            self.cache[k] = correct / max(1, len(y))
            self.seconds += time.perf_counter() - t
            self.calls += 1
        return self.cache[k]


@dataclass
class Candidate:
    cfg: ViTConfig
    acc: float
    peak_sram: int
    flash: int
    macs: int
    formula_peak: int
    banks: dict = field(default_factory=dict)
    source: str = "evolution"
    generation: int = 0

    @classmethod
    def make(cls, cfg: ViTConfig, acc: float, judge: Judge, source: str, generation: int = 0) -> "Candidate":
        r = judge.report(cfg)
        return cls(cfg, acc, int(r.peak_sram), int(r.flash), int(r.macs), mcuformer_formula(cfg),
                   dict(getattr(r, "banks", {}) or {}), source, generation)

    def row(self) -> dict:
        c = self.cfg
        return {"source": self.source, "generation": self.generation, "accuracy": round(self.acc, 6),
                "peak_sram": self.peak_sram, "formula_peak": self.formula_peak, "flash": self.flash,
                "macs": self.macs, "img_size": c.img_size, "patch": c.patch, "embed": c.embed, "depth": c.depth,
                "heads": c.heads, "mlp_ratio": c.mlp_ratio,
                "rank_ratios": " ".join(f"{r:g}" for r in c.rank_ratios)}


@dataclass
class SearchResult:
    best: Candidate
    population: list[Candidate]
    evaluated: list[Candidate]
    history: list[dict]
    seconds: float
    judged: int
    evaluations: int


def smallest_need(space: SearchSpace, judge: Judge) -> str:
    """What the smallest candidate of the space needs, for the 'nothing fits' error."""
    cfg = space.smallest()
    r = judge.report(cfg)
    banks = getattr(r, "banks", {}) or {}
    bank_s = (" (" + ", ".join(f"{k} {format_size(v)}" for k, v in banks.items()) + ")") if banks else ""
    extra = f"; planner says: {r.why}" if getattr(r, "why", "") else ""
    return (f"the smallest candidate (img {cfg.img_size}, patch {cfg.patch}, embed {cfg.embed}, depth {cfg.depth}, "
            f"rank {min(cfg.rank_ratios):g}) needs {format_size(r.peak_sram)} peak SRAM{bank_s} and "
            f"{format_size(r.flash)} flash{extra}")


def _sample_feasible(space: SearchSpace, judge: Judge, rng: random.Random, n: int, seen: set[str],
                     tries: int) -> list[ViTConfig]:
    out: list[ViTConfig] = []
    for _ in range(tries):
        if len(out) >= n:
            break
        c = space.sample(rng)
        k = config_key(c)
        if k in seen:
            continue
        seen.add(k)
        if judge.feasible(c):
            out.append(c)
    return out


def _no_fit_error(space: SearchSpace, judge: Judge) -> EdgevizError:
    return EdgevizError(f"no candidate fits the budget of {format_size(judge.budget)}"
                        + (f" with flash <= {format_size(judge.flash_limit)}" if judge.flash_limit else "")
                        + f": {smallest_need(space, judge)}")


def evolutionary_search(space: SearchSpace, judge: Judge, evaluate: Callable[[ViTConfig], float],
                        population: int = 20, generations: int = 10, top_k: int | None = None,
                        mutate_prob: float = 0.3, seed: int = 0, state_path: str | Path | None = None,
                        signature: dict | None = None, log: Callable[[str], None] = lambda m: None,
                        on_generation: Callable[[int, int], None] | None = None) -> SearchResult:
    """Population-based search (mutation + crossover of the top-k) over feasible candidates.

    ``state_path``: a JSON checkpoint of the population written atomically after every generation;
    when it exists with the same ``signature`` the search resumes from it (accuracies included)."""
    t0 = time.perf_counter()
    top_k = top_k or max(2, population // 2)
    evaluated: dict[str, Candidate] = {}
    seen: set[str] = set()
    history: list[dict] = []
    start_gen = 0
    pop: list[ViTConfig] = []
    # generations is left out of the signature on purpose: a finished search can be extended.
    sig = dict(signature or {}, population=population, seed=seed, top_k=top_k,
               space=space.digest(), budget=judge.budget, flash=judge.flash_limit, macs=judge.mac_limit)
    state_path = Path(state_path) if state_path else None
    if state_path and state_path.exists():
        try:
            st = json.loads(state_path.read_text())
        except (OSError, ValueError):
            st = None
        if st and st.get("signature") == json.loads(json.dumps(sig)):
            for row in st["evaluated"]:
                cfg = ViTConfig.from_dict(row["config"])
                if hasattr(evaluate, "cache"):
                    evaluate.cache[config_key(cfg)] = row["accuracy"]
                evaluated[config_key(cfg)] = Candidate(cfg, row["accuracy"], row["peak_sram"], row["flash"],
                                                       row["macs"], row["formula_peak"], row["banks"],
                                                       row["source"], row["generation"])
            seen = set(st["seen"])
            pop = [ViTConfig.from_dict(d) for d in st["population"]]
            history, start_gen = st["history"], st["generation"]
            log(f"resuming the search from {state_path} at generation {start_gen}/{generations}")

    def score(cfg: ViTConfig, gen: int) -> Candidate:
        k = config_key(cfg)
        if k not in evaluated:
            evaluated[k] = Candidate.make(cfg, evaluate(cfg), judge, "evolution", gen)
        return evaluated[k]

    if not pop:
        rng = random.Random(f"{seed}:init")
        pop = _sample_feasible(space, judge, rng, population, seen, tries=200 * population)
        if not pop:
            if not judge.feasible(space.smallest()):
                raise _no_fit_error(space, judge)
            pop = [space.smallest()]       # a tight budget: grow the population from the smallest subnet
    for gen in range(start_gen, generations):
        ranked = sorted((score(c, gen) for c in pop), key=lambda c: (-c.acc, c.peak_sram))
        parents = [c.cfg for c in ranked[:top_k]]
        history.append({"generation": gen, "best_acc": ranked[0].acc, "mean_top_acc":
                        sum(c.acc for c in ranked[:top_k]) / len(ranked[:top_k]), "evaluated": len(evaluated),
                        "judged": judge.calls, "seconds": time.perf_counter() - t0})
        log(f"generation {gen + 1}/{generations}: best val acc {ranked[0].acc:.4f}, peak "
            f"{format_size(ranked[0].peak_sram)}, {len(evaluated)} evaluated, {judge.calls} planned")
        rng = random.Random(f"{seed}:gen:{gen}")
        children: list[ViTConfig] = []
        n_mut = (population - len(parents)) // 2
        tries = 0
        while len(children) < population - len(parents) and tries < 100 * population:
            tries += 1
            if len(children) < n_mut or len(parents) < 2:
                c = space.mutate(rng.choice(parents), rng, mutate_prob)
            else:
                a, b = rng.sample(parents, 2)
                c = space.crossover(a, b, rng)
            k = config_key(c)
            if k in seen:
                continue
            seen.add(k)
            if judge.feasible(c):
                children.append(c)
        pop = parents + children
        if state_path:
            write_json(state_path, {
                "signature": sig, "generation": gen + 1, "population": [c.to_dict() for c in pop],
                "seen": sorted(seen), "history": history,
                "evaluated": [{"config": c.cfg.to_dict(), "accuracy": c.acc, "source": c.source,
                               "generation": c.generation, "peak_sram": c.peak_sram, "flash": c.flash,
                               "macs": c.macs, "formula_peak": c.formula_peak, "banks": c.banks}
                              for c in evaluated.values()]})
        if on_generation:
            on_generation(gen + 1, generations)
    final = sorted((score(c, generations) for c in pop), key=lambda c: (-c.acc, c.peak_sram))
    return SearchResult(final[0], final, list(evaluated.values()), history, time.perf_counter() - t0,
                        judge.calls, len(evaluated))


def random_search(space: SearchSpace, judge: Judge, evaluate: Callable[[ViTConfig], float], evaluations: int,
                  seed: int = 1) -> SearchResult:
    """Baseline: the best of ``evaluations`` uniformly sampled feasible candidates."""
    t0 = time.perf_counter()
    rng = random.Random(f"{seed}:random")
    cfgs = _sample_feasible(space, judge, rng, evaluations, set(), tries=500 * max(1, evaluations))
    if not cfgs:
        raise _no_fit_error(space, judge)
    cands = [Candidate.make(c, evaluate(c), judge, "random") for c in cfgs]
    best = max(cands, key=lambda c: (c.acc, -c.peak_sram))
    return SearchResult(best, cands, cands, [], time.perf_counter() - t0, judge.calls, len(cands))


def pick_finalists(cands: list[Candidate], k: int) -> list[Candidate]:
    """``k`` distinct candidates spread over peak SRAM, for the fine-tuning stage: the best by supernet
    estimate in each of ``k`` log-spaced peak buckets between the smallest and the largest peak
    evaluated; buckets left empty go to the next best overall. Sorted by peak.

    Why buckets: the supernet's estimates favour its smallest subnets (measured on digits: 17 tokens x
    128, 0.47 in the supernet, 0.99 trained alone; the 2 KB subnets 0.84 vs 0.93), so the k best by
    estimate would all be tiny variants of one subnet."""
    ranked = sorted({config_key(c.cfg): c for c in cands}.values(), key=lambda c: (-c.acc, c.peak_sram))
    if len(ranked) <= k:
        return sorted(ranked, key=lambda c: c.peak_sram)
    logp = lambda c: math.log(max(1, c.peak_sram))  # noqa: E731
    lo, hi = min(map(logp, ranked)), max(map(logp, ranked))
    bucket = lambda c: min(k - 1, int(k * (logp(c) - lo) / max(hi - lo, 1e-9)))  # noqa: E731
    picked: list[Candidate] = []
    for b in range(k):
        picked += [c for c in ranked if bucket(c) == b][:1]
    picked += [c for c in ranked if c not in picked][:k - len(picked)]
    return sorted(picked, key=lambda c: c.peak_sram)


@dataclass
class Finalist:
    cand: Candidate             # config, planner figures and the supernet's estimate (cand.acc)
    seconds: float = 0.0        # fine-tuning time over all its rungs
    model: Any = None           # the fine-tuned standalone edgeviz.model.ViT (its last rung)
    rungs: list = field(default_factory=list)   # [{"steps", "val"}] per rung it reached

    @property
    def steps(self) -> int:
        return self.rungs[-1]["steps"] if self.rungs else 0

    @property
    def val(self) -> float:
        """Validation accuracy after its last rung's fine-tuning."""
        return self.rungs[-1]["val"] if self.rungs else 0.0

    def row(self) -> dict:
        return {"summary": gene_summary(self.cand.cfg), "config": self.cand.cfg.to_dict(),
                "peak_sram": self.cand.peak_sram, "val_supernet": self.cand.acc, "val_finetuned": self.val,
                "steps": self.steps, "rungs": self.rungs, "finetune_seconds": round(self.seconds, 3)}


HALVING_ETA = 3


def halving_rungs(k: int, steps: int, eta: int = HALVING_ETA) -> list[tuple[int, int]]:
    """Successive halving's (finalists, steps) per rung: all ``k`` for steps / eta^(R-1), the best 1/eta
    of them (rounded up) for eta times as many, ... one for ``steps``."""
    counts = [k]
    while counts[-1] > 1:
        counts.append(-(-counts[-1] // eta))
    last = len(counts) - 1
    return [(n, max(1, round(steps / eta ** (last - r)))) for r, n in enumerate(counts)]


def finetune_finalists(net, finalists: list[Candidate], data, steps: int, batch_size: int = DEFAULT_BATCH,
                       lr: float = DEFAULT_LR, seed: int = 0, state_path: str | Path | None = None,
                       log: Callable[[str], None] = lambda m: None) -> tuple[list[Finalist], Finalist]:
    """Second stage, by successive halving (``halving_rungs``): each rung fine-tunes its finalists from
    their inherited supernet weights (``net.extract``) with ``train_standalone`` for the rung's steps
    (a fresh schedule each rung, same batches for all) and rates them on the val split; the best third
    go on. Returns every finalist (at the last rung it reached) and the winner: the one finalist
    fine-tuned for ``steps``. Cheap short runs weed out the big, slow subnets early (measured on digits:
    a 400-token subnet costs 0.2 s a step, a 5-token one 5 ms).

    ``state_path`` (the evolution's state file): each finished (finalist, steps) run's val accuracy is
    added to it under "finetune", atomically, after its weights are written to ``finalists/`` beside it,
    so a killed run redoes only the unfinished ones. A state rewritten by a longer evolution has no
    "finetune" entry, so a changed short list is never matched against stale results."""
    from edgeviz.model import load_model
    from edgeviz.search.supernet import export_state_dict
    from edgeviz.search.train import accuracy

    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "eta": HALVING_ETA}
    state_path = Path(state_path) if state_path else None
    state = json.loads(state_path.read_text()) if state_path and state_path.exists() else None
    done = (state or {}).get("finetune", {})
    done = done.get("done", {}) if done.get("settings") == settings else {}
    rungs = halving_rungs(len(finalists), steps)
    fins = [Finalist(c) for c in finalists]
    alive = fins
    for r, (_, rung_steps) in enumerate(rungs):
        for i, f in enumerate(alive):
            key = f"{config_key(f.cand.cfg)}@{rung_steps}"
            wfile = state_path.parent / "finalists" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt" \
                if state_path else None
            if key in done and wfile.exists():
                val, secs, model = done[key]["val"], done[key]["seconds"], load_model(wfile)
                how = "finished before the restart"
            else:
                model, secs = train_standalone(net.extract(f.cand.cfg), f.cand.cfg.img_size, data, rung_steps,
                                               batch_size, lr, seed=seed)
                val = accuracy(model, data, f.cand.cfg, "val")
                how = f"{secs:.1f} s"
                if state is not None:
                    export_state_dict(model, wfile)
                    done[key] = {"val": val, "seconds": secs}
                    state["finetune"] = {"settings": settings, "done": done}
                    write_json(state_path, state)
            f.model, f.seconds = model, f.seconds + secs
            f.rungs.append({"steps": rung_steps, "val": val})
            log(f"rung {r + 1}/{len(rungs)}, finalist {i + 1}/{len(alive)}: {gene_summary(f.cand.cfg)}, peak "
                f"{format_size(f.cand.peak_sram)}: val {f.cand.acc:.4f} in the supernet -> {val:.4f} after "
                f"{rung_steps} fine-tuning steps ({how})")
        if r + 1 < len(rungs):
            for f in alive:
                f.model = None          # only the winner's weights are kept
            alive = sorted(alive, key=lambda f: (-f.val, f.cand.peak_sram))[:rungs[r + 1][0]]
    return fins, alive[0]


def uniform_configs(space: SearchSpace) -> list[ViTConfig]:
    """Uniformly scaled ViTs: one embed/heads/MLP ratio in every layer, full rank."""
    out = []
    for r, p in space.res_patch_pairs():
        for e in space.embed:
            for h in space.heads:
                if e % h:
                    continue
                for d in space.depth:
                    for m in space.mlp_ratio:
                        out.append(space.config(img_size=r, patch=p, embed=e, depth=d, heads=h, mlp_ratio=m,
                                                rank_ratios=(1.0,) * d))
    return out


def uniform_baseline(space: SearchSpace, judge: Judge) -> ViTConfig:
    """The largest (by MACs) uniformly scaled, full-rank ViT of the space that is feasible."""
    cands = sorted(uniform_configs(space), key=lambda c: (analytic_macs(c), c.embed, c.num_tokens), reverse=True)
    for c in cands:
        if judge.feasible(c):
            return c
    raise _no_fit_error(space, judge)


def train_standalone(model: torch.nn.Module, img_size: int, data, steps: int, batch_size: int = DEFAULT_BATCH,
                     lr: float = DEFAULT_LR, weight_decay: float = 0.05, seed: int = 0, label_smoothing: float = 0.1):
    """The one training loop for standalone ViTs: ``steps`` AdamW steps on the train split with the
    supernet's warmup + cosine schedule; used from scratch (baselines) and to fine-tune finalists."""
    from edgeviz.search.train import TrainSettings, lr_at

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    s = TrainSettings(lr=lr)
    x_all, y_all = data.images("train", img_size), data.y["train"]
    n = len(y_all)
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(n, generator=g), 0
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, s)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx], label_smoothing=label_smoothing).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval(), time.perf_counter() - t0


def train_from_scratch(cfg: ViTConfig, data, steps: int, batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR,
                       weight_decay: float = 0.05, seed: int = 0, label_smoothing: float = 0.1):
    """Train ``edgeviz.model.ViT(cfg)`` alone, from a fresh initialisation, for ``steps`` steps."""
    from edgeviz.model import ViT

    torch.manual_seed(seed)
    return train_standalone(ViT(cfg), cfg.img_size, data, steps, batch_size, lr, weight_decay, seed, label_smoothing)


# ---- MCUFormer's search-space evolution -------------------------------------------------------------
def _window(choices: tuple, start: int, width: int) -> tuple:
    return tuple(choices[start:start + width])


def evolve_space(space: SearchSpace, judge: Judge, evaluate: Callable[[ViTConfig], float], rounds: int = 3,
                 samples: int = 12, top_k: int = 3, min_fit: float = 0.3, seed: int = 0,
                 log: Callable[[str], None] = lambda m: None) -> tuple[SearchSpace, list[dict]]:
    """Shift the rank-ratio and patch-size windows of the space by fit rate and top-k error.

    Each round scores the current sub-space and its neighbours (rank window one step down / up, patch
    window one step up / down) on ``samples`` random candidates each: fit rate = share feasible,
    error = 1 - mean accuracy of the top-k feasible. A sub-space below ``min_fit`` is only left
    towards a higher fit rate; otherwise the lowest error wins. Returns the chosen sub-space."""
    rr, pp = space.rank_ratio, space.patch
    wr, wp = max(2, (len(rr) + 1) // 2), max(1, (len(pp) + 1) // 2)
    ir, ip = len(rr) - wr, 0          # start at the high-rank, small-patch end (most accurate)
    trace: list[dict] = []

    def sub(i_r: int, i_p: int) -> SearchSpace | None:
        if not (0 <= i_r <= len(rr) - wr and 0 <= i_p <= len(pp) - wp):
            return None
        s = replace(space, rank_ratio=_window(rr, i_r, wr), patch=_window(pp, i_p, wp))
        return s if s.res_patch_pairs() else None

    def measure(s: SearchSpace, tag: str, rnd: int) -> dict:
        rng = random.Random(f"{seed}:space:{rnd}:{tag}")
        cfgs = [s.sample(rng) for _ in range(samples)]
        ok = [c for c in cfgs if judge.feasible(c)]
        accs = sorted((evaluate(c) for c in ok), reverse=True)[:top_k]
        fit = len(ok) / len(cfgs)
        err = 1.0 - (sum(accs) / len(accs)) if accs else 1.0
        return {"round": rnd, "move": tag, "rank_ratio": list(s.rank_ratio), "patch": list(s.patch),
                "fit_rate": fit, "top_error": err}

    for rnd in range(rounds):
        moves = {"stay": (ir, ip), "rank-": (ir - 1, ip), "rank+": (ir + 1, ip), "patch+": (ir, ip + 1),
                 "patch-": (ir, ip - 1)}
        scored = []
        for tag, (a, b) in moves.items():
            s = sub(a, b)
            if s is not None:
                m = measure(s, tag, rnd)
                trace.append(m)
                scored.append((m, (a, b)))
        cur = next(m for m, _ in scored if m["move"] == "stay")
        good = [x for x in scored if x[0]["fit_rate"] >= min_fit]
        if cur["fit_rate"] < min_fit or not good:
            best = max(scored, key=lambda x: (x[0]["fit_rate"], -x[0]["top_error"]))
        else:
            best = min(good, key=lambda x: (x[0]["top_error"], -x[0]["fit_rate"]))
        log(f"space round {rnd + 1}: {best[0]['move']} -> rank {best[0]['rank_ratio']} patch {best[0]['patch']} "
            f"(fit {best[0]['fit_rate']:.2f}, top-{top_k} error {best[0]['top_error']:.3f})")
        if best[0]["move"] == "stay":
            break
        ir, ip = best[1]
    return sub(ir, ip), trace


def gene_summary(cfg: ViTConfig) -> str:
    return (f"img {cfg.img_size} patch {cfg.patch} embed {cfg.embed} depth {cfg.depth} heads {cfg.heads} "
            f"mlp {cfg.mlp_ratio:g} rank [{', '.join(f'{r:g}' for r in cfg.rank_ratios)}]")


__all__ = ["Candidate", "Evaluator", "Finalist", "Judge", "SearchResult", "analytic_macs", "evolutionary_search",
           "evolve_space", "finetune_finalists", "halving_rungs", "mcuformer_formula", "pick_finalists",
           "production_planner", "random_search", "train_from_scratch", "train_standalone", "uniform_baseline",
           "uniform_configs"]
