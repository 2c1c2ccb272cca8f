"""Procedurally generated image tasks: seeded, deterministic, made on the spot (never downloaded).

``shapes``: 10 classes of grey ``res`` x ``res`` images (default 40 px), each one textured object on
a cluttered background. The class is the pair (kind, stripe orientation):

* kind (coarse): disc, ring, square, triangle, cross -- class // 2;
* stripe orientation (fine): the object is filled with a sine grating of period 2.2-2.9 px (at 40 px)
  whose stripes run near-horizontal (class % 2 == 0) or near-vertical (class % 2 == 1), +-15 degrees.

Nuisances, drawn per image: the object's centre, radius (22-38 % of the image), rotation, the
grating's period and phase, background level and object contrast, a smooth background
gradient, an untextured distractor blob, and Gaussian pixel noise. Resized to 32 px the stripes'
period is 1.8-2.3 px, at or below the Nyquist limit (2 px), and below 32 px they are gone: a small
input tells the five kinds apart but hardly the stripes, so telling all 10 classes apart takes the
space's full 40 px, and with it 100 tokens of 4 px patches (about 40 KB of peak SRAM at 128 channels). Classes are balanced (class i is image index % 10 before a seeded shuffle); everything is
numpy, vectorised over the batch (about 5,000 40 px images a second on one core).
"""
from __future__ import annotations

import numpy as np

PERIOD = (2.2, 2.9)                    # grating period range, px at 40 px
SHAPE_KINDS = ("disc", "ring", "square", "triangle", "cross")
SHAPES_CLASSES = [f"{k}-{o}" for k in SHAPE_KINDS for o in ("h", "v")]


def _kind_masks(kind: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(B, H, W) bool: the object's support, u / v the rotated coordinates in radii."""
    r = np.sqrt(u * u + v * v)
    k = kind[:, None, None]
    disc = r <= 1.0
    ring = (r <= 1.0) & (r >= 0.55)
    square = np.maximum(np.abs(u), np.abs(v)) <= 0.8
    tri = np.ones_like(disc)
    for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):   # equilateral triangle
        tri &= (u * np.cos(a) + v * np.sin(a)) <= 0.5
    cross = ((np.abs(u) <= 0.32) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.32) & (np.abs(u) <= 1.0))
    return np.select([k == 0, k == 1, k == 2, k == 3, k == 4], [disc, ring, square, tri, cross])


def _shapes_batch(rng: np.random.Generator, y: np.ndarray, res: int) -> np.ndarray:
    b = len(y)
    s = res / 40.0                                        # lengths are given at 40 px
    yy, xx = np.meshgrid(np.arange(res, dtype=np.float32) + 0.5, np.arange(res, dtype=np.float32) + 0.5, indexing="ij")
    col = lambda a: a.astype(np.float32)[:, None, None]  # noqa: E731 - (B,) -> (B, 1, 1)
    # the object
    rad = col(rng.uniform(0.22, 0.38, b) * res)
    cx, cy = (col(rng.uniform(0.0, 1.0, b) * (res - 2 * rad[:, 0, 0]) + rad[:, 0, 0]) for _ in range(2))
    rot = col(rng.uniform(0, 2 * np.pi, b))
    dx, dy = xx[None] - cx, yy[None] - cy
    u = (dx * np.cos(rot) + dy * np.sin(rot)) / rad
    v = (-dx * np.sin(rot) + dy * np.cos(rot)) / rad
    mask = _kind_masks(y // 2, u, v).astype(np.float32)
    # the grating: stripes near-horizontal (wave vector vertical) or near-vertical
    theta = col(np.where(y % 2 == 0, np.pi / 2, 0.0) + rng.uniform(-1, 1, b) * np.deg2rad(15))
    period = col(rng.uniform(*PERIOD, b) * s)
    phase = col(rng.uniform(0, 2 * np.pi, b))
    tex = 0.5 + 0.5 * np.sin(2 * np.pi * (xx[None] * np.cos(theta) + yy[None] * np.sin(theta)) / period + phase)
    # background: a level, a smooth gradient, two plain distractor blobs
    bg = col(rng.uniform(0.1, 0.4, b))
    ga = col(rng.uniform(0, 2 * np.pi, b))
    img = bg + col(rng.uniform(0, 0.25, b)) * ((xx[None] * np.cos(ga) + yy[None] * np.sin(ga)) / res - 0.5)
    for _ in range(1):
        bx, by = col(rng.uniform(0, res, b)), col(rng.uniform(0, res, b))
        br = col(rng.uniform(0.05, 0.12, b) * res)
        blob = ((xx[None] - bx) ** 2 + (yy[None] - by) ** 2 <= br * br).astype(np.float32)
        img = img + blob * col(rng.choice([-1.0, 1.0], b) * rng.uniform(0.15, 0.35, b))
    amp = col(rng.uniform(0.3, 0.5, b))
    img = img * (1 - mask) + mask * (bg + amp * (0.3 + 0.7 * tex))
    img = img + col(rng.uniform(0.02, 0.05, b)) * rng.standard_normal((b, res, res), dtype=np.float32)
    return np.clip(img, 0.0, 1.0)[:, None]


def make_shapes(n: int = 10000, res: int = 40, seed: int = 0, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of the shapes task: x (n, 1, res, res) float32 in [0, 1], y (n,) int64 in 0..9,
    balanced (n // 10 or n // 10 + 1 per class). The same (n, res, seed) always gives the same arrays."""
    if n < 10 or res < 8:
        raise ValueError(f"make_shapes needs n >= 10 and res >= 8 (got n={n}, res={res})")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 10).astype(np.int64)
    x = np.empty((n, 1, res, res), dtype=np.float32)
    for i in range(0, n, chunk):
        x[i:i + chunk] = _shapes_batch(rng, y[i:i + chunk], res)
    return x, y


__all__ = ["SHAPES_CLASSES", "SHAPE_KINDS", "make_shapes"]
