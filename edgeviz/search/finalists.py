"""The search's second stage: a short list of finalists spread over peak SRAM (``pick_finalists``),
fine-tuned from their inherited supernet weights by successive halving (``finetune_finalists``), the
best on the val split winning. Resumable: each finished run is recorded in the evolution's state file.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgeviz.atomic import write_json
from edgeviz.model import load_model
from edgeviz.search.budget import format_size
from edgeviz.search.judge import Candidate
from edgeviz.search.space import config_key, gene_summary
from edgeviz.search.standalone import train_standalone
from edgeviz.search.supernet import export_state_dict
from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_LR, accuracy


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
                       log: Callable[[str], None] = lambda m: None,
                       step_delay: float = 0.0) -> tuple[list[Finalist], Finalist]:
    """Second stage, by successive halving (``halving_rungs``): each rung fine-tunes its finalists from
    their inherited supernet weights (``net.extract``) with ``train_standalone`` for the rung's steps
    (a fresh schedule each rung, same batches for all) and rates them on the val split; the best third
    go on. Returns every finalist (at the last rung it reached) and the winner: the one finalist
    fine-tuned for ``steps``. Cheap short runs weed out the big, slow subnets early (measured on digits:
    a 400-token subnet costs 0.2 s a step, a 5-token one 5 ms).

    ``state_path`` (the evolution's state file): each finished (finalist, steps) run's val accuracy is
    added to it under "finetune", atomically, after its weights are written to ``finalists/`` beside it,
    so a killed run redoes only the unfinished ones. A state rewritten by a longer evolution has no
    "finetune" entry, so a changed short list is never matched against stale results. A run stopped by
    Ctrl-C also leaves its progress (``train_standalone``'s ``progress_path``, tied to the state's
    signature: the same supernet, data and search) in ``finalists/``: the restart goes on from its step.
    ``step_delay``: tests only (``train_standalone``)."""
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
            stem = hashlib.sha256(key.encode()).hexdigest()[:16]
            wfile = state_path.parent / "finalists" / f"{stem}.pt" if state_path else None
            progress = state_path.parent / "finalists" / f"{stem}.progress.pt" if state is not None else None
            if key in done and wfile.exists():
                val, secs, model = done[key]["val"], done[key]["seconds"], load_model(wfile)
                how = "finished before the restart"
            else:
                model, secs = train_standalone(net.extract(f.cand.cfg), f.cand.cfg.img_size, data, rung_steps,
                                               batch_size, lr, seed=seed, progress_path=progress,
                                               origin=(state or {}).get("signature"), step_delay=step_delay,
                                               log=lambda m: log(f"rung {r + 1}/{len(rungs)}, finalist "
                                                                 f"{i + 1}/{len(alive)}: {m}"))
                val = accuracy(model, data, f.cand.cfg, "val")
                how = f"{secs:.1f} s"
                if state is not None:
                    export_state_dict(model, wfile)
                    done[key] = {"val": val, "seconds": secs}
                    state["finetune"] = {"settings": settings, "done": done}
                    write_json(state_path, state)
                    progress.unlink(missing_ok=True)        # its result is kept now
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


__all__ = ["Finalist", "HALVING_ETA", "finetune_finalists", "halving_rungs", "pick_finalists"]
