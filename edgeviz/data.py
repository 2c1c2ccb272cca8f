"""Datasets for the search: built-in data (scikit-learn digits, the generated shapes task), a folder of
images, or an .npz.

Images are held as float tensors (N, C, H, W) at a base resolution, normalised with the training
split's per-channel mean and std; ``Dataset.images(split, res)`` gives them at a candidate's input
resolution (bilinear ``torch.nn.functional.interpolate``). The split is fixed: stratified 70/15/15
with a seed, so the same data always gives the same train / val (search) / test (report) sets.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgeviz.datagen import SHAPES_CLASSES, make_shapes
from edgeviz.errors import EdgevizError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".npy")


@dataclass
class Dataset:
    name: str
    x: dict[str, torch.Tensor]          # split -> (N, C, H, W) float32, normalised
    y: dict[str, torch.Tensor]          # split -> (N,) int64
    classes: list[str]
    mean: list[float]
    std: list[float]
    digest: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def in_chans(self) -> int:
        return int(self.x["train"].shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def images(self, split: str, res: int) -> torch.Tensor:
        key = (split, res)
        if key not in self._cache:
            self._cache[key] = resize(self.x[split], res)
        return self._cache[key]

    def info(self) -> dict:
        return {"name": self.name, "classes": self.classes, "in_chans": self.in_chans, "mean": self.mean,
                "std": self.std, "sizes": {k: int(v.shape[0]) for k, v in self.y.items()},
                "base_resolution": list(self.x["train"].shape[2:]), "resize": "bilinear", "digest": self.digest}

    def subset(self, n_train: int) -> "Dataset":
        """The first n_train training images (for fast tests); val and test unchanged."""
        x = dict(self.x, train=self.x["train"][:n_train])
        y = dict(self.y, train=self.y["train"][:n_train])
        return Dataset(self.name + f"[:{n_train}]", x, y, self.classes, self.mean, self.std, self.digest + f":{n_train}")


def resize(x: torch.Tensor, res: int) -> torch.Tensor:
    if tuple(x.shape[2:]) == (res, res):
        return x
    down = res < x.shape[2] or res < x.shape[3]
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False, antialias=down).contiguous()


def _split(n: int, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    counts = np.bincount(y)
    strat = y if counts[counts > 0].min() >= 3 and n >= 3 * len(counts) else None
    try:
        tr, rest = train_test_split(idx, test_size=0.30, random_state=seed, stratify=strat)
        va, te = train_test_split(rest, test_size=0.50, random_state=seed, stratify=None if strat is None else y[rest])
    except ValueError:
        tr, rest = train_test_split(idx, test_size=0.30, random_state=seed)
        va, te = train_test_split(rest, test_size=0.50, random_state=seed)
    return {"train": np.sort(tr), "val": np.sort(va), "test": np.sort(te)}


def _finish(name: str, x: np.ndarray, y: np.ndarray, classes: list[str], seed: int, base: int | None) -> Dataset:
    """x: (N, C, H, W) float in [0, 1]; y: (N,) ints 0..K-1."""
    if len(x) < 10:
        raise EdgevizError(f"data {name} has {len(x)} images; at least 10 are needed")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if base is not None and tuple(xt.shape[2:]) != (base, base):
        xt = F.interpolate(xt, size=(base, base), mode="bilinear", align_corners=False, antialias=True)
    parts = _split(len(y), y, seed)
    mean = xt[parts["train"]].mean(dim=(0, 2, 3))
    std = xt[parts["train"]].std(dim=(0, 2, 3)).clamp_min(1e-6)
    xt = (xt - mean[None, :, None, None]) / std[None, :, None, None]
    yt = torch.from_numpy(y.astype(np.int64))
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes() + y.astype(np.int64).tobytes()
                            + str(seed).encode()).hexdigest()[:16]
    return Dataset(name, {k: xt[v] for k, v in parts.items()}, {k: yt[v] for k, v in parts.items()},
                   classes, mean.tolist(), std.tolist(), digest)


_DIGITS: dict[int, Dataset] = {}


def load_digits_data(seed: int = 0) -> Dataset:
    """The built-in data: scikit-learn's 1797 8x8 grey digits (cached per seed in this process)."""
    if seed not in _DIGITS:
        _DIGITS[seed] = _load_digits(seed)
    return _DIGITS[seed]


def _load_digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    return _finish("digits", x, d.target.astype(np.int64), [str(c) for c in d.target_names], seed, None)


_SHAPES: dict[tuple, Dataset] = {}
SHAPES_N = 10000


def load_shapes_data(seed: int = 0, res: int = 40, n: int = SHAPES_N) -> Dataset:
    """The generated shapes task (edgeviz.datagen.make_shapes): n grey res x res images, 10 classes;
    images and split both follow ``seed`` (cached per (seed, res, n) in this process)."""
    key = (seed, res, n)
    if key not in _SHAPES:
        x, y = make_shapes(n, res, seed)
        _SHAPES[key] = _finish("shapes", x, y, list(SHAPES_CLASSES), seed, None)
    return _SHAPES[key]


BUILTIN = {"digits": "scikit-learn's 1797 8x8 grey digits", "shapes": "generated textured shapes, 10 classes"}


def check_builtin(spec) -> None:
    """A one-line EdgevizError if ``spec`` names built-in data that does not exist: 'builtin:NAME', or a
    bare NAME (no '/', no suffix) that is neither built-in nor a folder here."""
    if not isinstance(spec, str) or spec == "":
        return
    name = spec.removeprefix("builtin:")
    if name in BUILTIN:
        return
    if spec.startswith("builtin:") or ("/" not in spec and "." not in spec and not Path(spec).exists()):
        raise EdgevizError(f"--data {spec}: no such built-in data (built-in: {', '.join(BUILTIN)}) and no such folder")


def read_image(path: Path) -> np.ndarray:
    """(H, W) or (H, W, C) float in [0, 1]."""
    if path.suffix.lower() == ".npy":
        a = np.load(path, allow_pickle=False)
        a = a.astype(np.float32)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
            a = a.transpose(1, 2, 0)
        return a / 255.0 if a.max() > 1.0 else a
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL comes with matplotlib in practice
        import matplotlib.image as mpimg

        a = np.asarray(mpimg.imread(path), dtype=np.float32)
        return a / 255.0 if a.max() > 1.0 else a
    with Image.open(path) as im:
        if im.mode in ("RGBA", "P", "LA", "CMYK", "YCbCr", "HSV", "I;16"):
            im = im.convert("RGB" if im.mode != "LA" else "L")
        if im.mode in ("I", "F"):
            a = np.asarray(im, dtype=np.float32)
            return a / max(float(a.max()), 1.0)
        return np.asarray(im, dtype=np.float32) / 255.0


def load_folder(root: Path, seed: int = 0, base: int = 32) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise EdgevizError(f"data folder {root} needs one subfolder of images per class (found {len(classes)})")
    xs, ys = [], []
    for ci, c in enumerate(classes):
        files = sorted(f for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise EdgevizError(f"data folder {root / c} holds no images ({', '.join(IMAGE_EXTS)})")
        for f in files:
            try:
                a = read_image(f)
            except Exception as e:  # noqa: BLE001 - any decoder failure is the user's file
                raise EdgevizError(f"cannot read image {f}: {e}") from None
            if a.ndim == 3 and a.shape[2] == 4:
                a = a[:, :, :3]
            if a.ndim == 3 and a.shape[2] == 1:
                a = a[:, :, 0]
            if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
                raise EdgevizError(f"image {f} has shape {a.shape}; expected H x W grey or H x W x 3 colour")
            xs.append(a)
            ys.append(ci)
    colour = any(a.ndim == 3 for a in xs)
    out = []
    for a in xs:
        if colour and a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[:, :, None])).permute(2, 0, 1)[None]
        out.append(F.interpolate(t.float(), size=(base, base), mode="bilinear", align_corners=False, antialias=True))
    x = torch.cat(out).numpy()
    return _finish(f"folder:{root}", x, np.asarray(ys, dtype=np.int64), classes, seed, None)


def load_npz(path: Path, seed: int = 0, base: int = 32) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise EdgevizError(f"{path} must hold arrays 'x' (N,C,H,W or N,H,W) and 'y' (N,); it has {z.files}")
            x, y = np.asarray(z["x"]), np.asarray(z["y"])
    except EdgevizError:
        raise
    except Exception as e:  # noqa: BLE001 - zip / pickle / format errors
        raise EdgevizError(f"cannot read {path} as .npz: {e}") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] != y.shape[0] or y.ndim != 1:
        raise EdgevizError(f"{path}: x has shape {x.shape} and y {y.shape}; expected x (N,C,H,W) or (N,H,W), y (N,)")
    if x.shape[1] > 4:
        raise EdgevizError(f"{path}: x has {x.shape[1]} channels; expected channels first (N,C,H,W)")
    x = x.astype(np.float32)
    if x.max() > 1.0:
        x = x / 255.0 if x.max() <= 255.0 else x / x.max()
    labels, yi = np.unique(y, return_inverse=True)
    if len(labels) < 2:
        raise EdgevizError(f"{path}: y has {len(labels)} class; at least 2 are needed")
    xt = torch.from_numpy(x)
    if x.shape[2:] != (base, base):
        xt = F.interpolate(xt, size=(base, base), mode="bilinear", align_corners=False, antialias=True)
    return _finish(f"npz:{path}", xt.numpy(), yi.astype(np.int64), [str(v) for v in labels], seed, None)


def load_data(spec: str | Path | None = None, seed: int = 0, base: int = 32) -> Dataset:
    """None or 'digits': built-in digits; 'shapes': the generated shapes task at ``base`` px; a folder:
    one subfolder per class (./NAME for one named like built-in data); a .npz file: x and y."""
    name = "digits" if spec is None or str(spec) == "" else str(spec).removeprefix("builtin:")
    if name == "digits":
        return load_digits_data(seed)
    if name == "shapes":
        return load_shapes_data(seed, res=base)
    check_builtin(spec)
    p = Path(spec)
    if not p.exists():
        raise EdgevizError(f"data {p} does not exist (give {' or '.join(BUILTIN)}, a folder with one subfolder "
                          "per class, or an .npz)")
    if p.is_dir():
        try:
            return load_folder(p, seed, base)
        except PermissionError as e:
            raise EdgevizError(f"cannot read data folder {p}: {e}") from None
    if p.suffix.lower() == ".npz":
        return load_npz(p, seed, base)
    raise EdgevizError(f"data {p} is neither a folder nor an .npz file")
