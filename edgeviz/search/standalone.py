"""Training one standalone ViT (an ``edgeviz.model.ViT``, not the supernet): the one loop that fine-tunes
the finalists from their inherited supernet weights and trains the baselines from scratch."""
from __future__ import annotations

import time

import torch

from edgeviz.model import ViT, ViTConfig
from edgeviz.search.train import DEFAULT_BATCH, DEFAULT_LR, TrainSettings, lr_at


def train_standalone(model: torch.nn.Module, img_size: int, data, steps: int, batch_size: int = DEFAULT_BATCH,
                     lr: float = DEFAULT_LR, weight_decay: float = 0.05, seed: int = 0, label_smoothing: float = 0.1):
    """The one training loop for standalone ViTs: ``steps`` AdamW steps on the train split with the
    supernet's warmup + cosine schedule; used from scratch (baselines) and to fine-tune finalists."""
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
    torch.manual_seed(seed)
    return train_standalone(ViT(cfg), cfg.img_size, data, steps, batch_size, lr, weight_decay, seed, label_smoothing)


__all__ = ["train_from_scratch", "train_standalone"]
