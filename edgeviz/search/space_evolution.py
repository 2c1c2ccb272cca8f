"""MCUFormer's search-space evolution: before the search, shift the rank-ratio and patch-size windows
of the space towards sub-spaces where candidates fit the budget and the supernet rates them well."""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

from edgeviz.model import ViTConfig
from edgeviz.search.judge import Judge
from edgeviz.search.space import SearchSpace


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


__all__ = ["evolve_space"]
