"""What the search is compared against: random search with as many accuracy evaluations, and
uniformly scaled ViTs (one embed / heads / MLP ratio in every block, full rank), MCUFormer's baseline.

Training a baseline from scratch is ``edgeviz.search.standalone.train_from_scratch``.
"""
from __future__ import annotations

import random
import time
from typing import Callable

from edgeviz.model import ViTConfig
from edgeviz.search.evolution import SearchResult, sample_feasible
from edgeviz.search.judge import Candidate, Judge, analytic_macs, no_fit_error
from edgeviz.search.space import SearchSpace


def random_search(space: SearchSpace, judge: Judge, evaluate: Callable[[ViTConfig], float], evaluations: int,
                  seed: int = 1) -> SearchResult:
    """Baseline: the best of ``evaluations`` uniformly sampled feasible candidates."""
    t0 = time.perf_counter()
    rng = random.Random(f"{seed}:random")
    cfgs = sample_feasible(space, judge, rng, evaluations, set(), tries=500 * max(1, evaluations))
    if not cfgs:
        raise no_fit_error(space, judge)
    cands = [Candidate.make(c, evaluate(c), judge, "random") for c in cfgs]
    best = max(cands, key=lambda c: (c.acc, -c.peak_sram))
    return SearchResult(best, cands, cands, [], time.perf_counter() - t0, judge.calls, len(cands))


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
    raise no_fit_error(space, judge)


__all__ = ["random_search", "uniform_baseline", "uniform_configs"]
