"""The evolutionary search under a memory budget (population, mutation, crossover), resumable.

Candidates are judged by ``edgeviz.search.judge`` (memory by the planner, accuracy by the supernet);
only feasible ones enter the population. ``sample_feasible`` is shared with the random-search baseline.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgeviz.atomic import write_json
from edgeviz.model import ViTConfig
from edgeviz.search.budget import format_size
from edgeviz.search.judge import Candidate, Judge, no_fit_error
from edgeviz.search.space import SearchSpace, config_key


@dataclass
class SearchResult:
    """What a search (evolutionary or random) found and what it cost."""
    best: Candidate
    population: list[Candidate]
    evaluated: list[Candidate]
    history: list[dict]
    seconds: float
    judged: int
    evaluations: int


def sample_feasible(space: SearchSpace, judge: Judge, rng: random.Random, n: int, seen: set[str],
                    tries: int) -> list[ViTConfig]:
    """Up to ``n`` feasible configurations sampled from ``space`` in at most ``tries`` draws, none of
    them in ``seen`` (each draw is added to it)."""
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
                                                       row["source"], row["generation"], row.get("latency_s"))
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
        pop = sample_feasible(space, judge, rng, population, seen, tries=200 * population)
        if not pop:
            if not judge.feasible(space.smallest()):
                raise no_fit_error(space, judge)
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


__all__ = ["SearchResult", "evolutionary_search", "sample_feasible"]
