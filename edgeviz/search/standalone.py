"""Training one standalone ViT (an ``edgeviz.model.ViT``, not the supernet): the one loop that fine-tunes
the finalists from their inherited supernet weights and trains the baselines from scratch."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from edgeviz.atomic import torch_save
from edgeviz.model import ViT, ViTConfig
from edgeviz.search.interrupt import step_boundary_interrupts
from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_LR, TrainSettings, lr_at

# A run with a progress file also saves every this many steps, so a kill (no Ctrl-C to catch) loses at
# most that many: 10 s of the slowest finalist (0.2 s a step, 400 tokens), and a save costs a few ms.
SAVE_EVERY_STEPS = 50


def train_standalone(model: torch.nn.Module, img_size: int, data, steps: int, batch_size: int = DEFAULT_BATCH,
                     lr: float = DEFAULT_LR, weight_decay: float = 0.05, seed: int = 0, label_smoothing: float = 0.1,
                     progress_path: str | Path | None = None, origin=None, step_delay: float = 0.0,
                     log=lambda m: None):
    """The one training loop for standalone ViTs: ``steps`` AdamW steps on the train split with the
    supernet's warmup + cosine schedule; used from scratch (baselines) and to fine-tune finalists.

    ``progress_path``: on Ctrl-C the run finishes its step, saves everything it needs to go on (weights,
    optimizer, batch order, step) there atomically and raises KeyboardInterrupt (it also saves there
    every ``SAVE_EVERY_STEPS`` steps, for a kill); a later call with the
    same arguments and ``origin`` (what the starting weights came from) continues from that step and
    ends with the same weights as a run never stopped. The caller removes the file once the run's result
    is kept. ``step_delay``: tests only, a sleep after each step (lets a test interrupt mid-run)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    s = TrainSettings(lr=lr)
    x_all, y_all = data.images("train", img_size), data.y["train"]
    n = len(y_all)
    g = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(n, generator=g), 0
    run = {"steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
           "label_smoothing": label_smoothing, "origin": origin}
    first, seconds_before = 0, 0.0
    progress_path = Path(progress_path) if progress_path else None
    if progress_path is not None and progress_path.exists():
        try:
            saved = torch.load(progress_path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a damaged file only costs the steps it held
            saved = None
        if isinstance(saved, dict) and saved.get("run") == run:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            g.set_state(saved["generator"])
            perm, pos, first, seconds_before = saved["perm"], saved["pos"], saved["step"], saved["seconds"]
            log(f"continuing at step {first}/{steps} (interrupted before)")
    t0 = time.perf_counter()
    model.train()

    def save(step_done: int) -> None:
        if progress_path is not None:
            torch_save({"run": run, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "generator": g.get_state(), "perm": perm, "pos": pos, "step": step_done,
                        "seconds": seconds_before + time.perf_counter() - t0}, progress_path)

    with step_boundary_interrupts(progress_path is not None) as interrupt:
        for step in range(first, steps):
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=g), 0
            idx = perm[pos:pos + batch_size]
            pos += batch_size
            for pg in opt.param_groups:
                pg["lr"] = lr_at(step, steps, s)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx],
                                              label_smoothing=label_smoothing).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step_delay:
                time.sleep(step_delay)
            interrupt.stop_if_requested(lambda: save(step + 1))
            if (step + 1) % SAVE_EVERY_STEPS == 0 and step + 1 < steps:
                save(step + 1)
    return model.eval(), seconds_before + time.perf_counter() - t0


def train_from_scratch(cfg: ViTConfig, data, steps: int, batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR,
                       weight_decay: float = 0.05, seed: int = 0, label_smoothing: float = 0.1,
                       progress_path: str | Path | None = None, origin=None, step_delay: float = 0.0,
                       log=lambda m: None):
    """Train ``edgeviz.model.ViT(cfg)`` alone, from a fresh initialisation, for ``steps`` steps
    (``progress_path``, ``origin``, ``step_delay``: as ``train_standalone``)."""
    torch.manual_seed(seed)
    return train_standalone(ViT(cfg), cfg.img_size, data, steps, batch_size, lr, weight_decay, seed, label_smoothing,
                            progress_path=progress_path, origin=origin, step_delay=step_delay, log=log)


__all__ = ["train_from_scratch", "train_standalone"]
