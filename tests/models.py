"""The ViT configurations every backend is checked on: they differ in embed dim, depth, heads,
patch, rank, resolution, channels, MLP ratio and pooling."""
import random

import numpy as np
import torch

from edgeviz.lower import plan_config
from edgeviz.model import ViT, ViTConfig
from edgeviz.search.space import load_space
from edgeviz.search.supernet import Supernet

CONFIGS = {
    "cls-lowrank": ViTConfig(img_size=16, patch=4, embed=32, heads=2, depth=2, rank_ratios=(1.0, 0.5)),
    "mean-3heads": ViTConfig(img_size=24, patch=4, embed=48, heads=3, depth=1, pool="mean"),
    "cls-wide-mlp3": ViTConfig(img_size=32, patch=8, embed=64, heads=4, depth=2, mlp_ratio=3.0,
                               rank_ratios=(0.5, 0.75)),
    "rgb-deep-mean": ViTConfig(img_size=20, patch=5, in_chans=3, embed=40, heads=2, depth=3, pool="mean",
                               rank_ratios=(1.0, 1.0, 0.4)),
    "odd-1head": ViTConfig(img_size=28, patch=7, in_chans=2, embed=24, heads=1, depth=1, mlp_ratio=4.0,
                           num_classes=7),
    # the shape digits searches pick: 4 patches + cls, too few keys for the V^T layout
    "five-tokens": ViTConfig(img_size=16, patch=8, embed=32, heads=4, depth=1, rank_ratios=(0.4,)),
}


def make(name: str | ViTConfig, seed: int = 0) -> ViT:
    torch.manual_seed(seed)
    m = ViT(CONFIGS[name] if isinstance(name, str) else name).eval()
    # pull the position embedding and cls token out of their tiny init so they matter
    with torch.no_grad():
        m.pos_embed.normal_(0, 0.3)
        if m.cls_token is not None:
            m.cls_token.normal_(0, 0.5)
    return m


def inputs(cfg: ViTConfig, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, cfg.in_chans, cfg.img_size, cfg.img_size))


def search_subnets(target: str, n: int, seed: int = 0, max_macs: int = 4_000_000, space=None):
    """``n`` subnets the default search space can produce that fit ``target`` (the search's own fit
    check) and stay under ``max_macs`` so the emulators run them in seconds: standalone ViTs extracted
    from a randomly initialised supernet, as `edgeviz search` exports its choice. Deterministic in
    ``seed``; the draws go on until ``n`` fit."""
    space = space or load_space()
    rng = random.Random(seed)
    picked = []
    for _ in range(2000):
        cfg = space.sample(rng)
        if any(cfg == p for p in picked):
            continue
        r = plan_config(cfg, target)
        if r.fits and r.macs <= max_macs:
            picked.append(cfg)
            if len(picked) == n:
                break
    assert len(picked) == n, f"only {len(picked)} subnets of the space fit {target} under {max_macs:,} MACs"
    torch.manual_seed(seed)
    net = Supernet(space)
    with torch.no_grad():          # the supernet's own init leaves position and class tokens tiny
        net.pos_embed.normal_(0, 0.3)
        net.cls_token.normal_(0, 0.5)
    return [(cfg, net.extract(cfg)) for cfg in picked]
