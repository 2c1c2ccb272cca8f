"""The inputs a user gives edgeviz, read one way everywhere (build --calib, validate --data):

- an .npz array `x` holds model inputs [N, C, H, W] as they are (channels-last [N, H, W, C] and
  [N, H, W] for one channel are accepted); `y`, if there, holds labels, which only add top-1 figures;
- a folder of image files (labelled when they sit in one subfolder per class) goes through the
  build's preprocessing: pixels to [0, 1], resized to the model's input, then (x - mean) / std per
  channel. The build records that preprocessing in build.json and in its reference graph, so
  calibration, validation and profiling feed the firmware the same numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import IMAGE_EXTS, load_digits_data, read_image
from .errors import EdgevizError
from .ir import Graph


def preprocessing(mean=None, std=None, channels: int = 1, source: str = "--mean/--std") -> dict:
    """The record of how image files become model inputs: (pixel in [0, 1] - mean) / std."""
    def per_channel(v, default, what):
        v = [default] * channels if v is None else [float(a) for a in (v if hasattr(v, "__len__") else [v])]
        if len(v) == 1:
            v = v * channels
        if len(v) != channels:
            raise EdgevizError(f"{what} has {len(v)} values; the model takes {channels} channels")
        return v
    std_v = per_channel(std, 1.0, "--std")
    if any(s <= 0 for s in std_v):
        raise EdgevizError(f"--std must be positive, got {std_v}")
    return {"pixels": "[0, 1]", "mean": per_channel(mean, 0.0, "--mean"), "std": std_v, "source": source}


def parse_floats(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise EdgevizError(f"'{text}' is not a comma-separated list of numbers (e.g. 0.485,0.456,0.406)") from None


def _fit_array(x: np.ndarray, shape: tuple, where: str, role: str) -> np.ndarray:
    c, h, w = shape
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise EdgevizError(f"{role} array x in {where} holds {x.dtype} values; give numbers (model inputs)")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == len(shape):
        x = x[None]
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim == 4 and x.shape[1:] != (c, h, w) and x.shape[1:] == (h, w, c):
        x = x.transpose(0, 3, 1, 2)              # channels-last
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise EdgevizError(f"{role} array x has shape {list(x.shape)} ({where}) but the model takes [N, {c}, {h}, {w}]; "
                           f"resize the images or pick another file")
    if len(x) == 0:
        raise EdgevizError(f"{role} array x in {where} holds no samples (shape {list(x.shape)}); give at least one")
    if not np.isfinite(x).all():
        raise EdgevizError(f"{role} array x in {where} holds NaN or infinite values; give finite model inputs")
    return x


def _images(files: list[Path], shape: tuple, pre: dict) -> np.ndarray:
    c, h, w = shape
    out = []
    for f in files:
        try:
            a = read_image(f)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the user's file
            raise EdgevizError(f"cannot read image {f}: {e}") from None
        a = a[:, :, :3] if a.ndim == 3 and a.shape[2] == 4 else a
        a = a[:, :, None] if a.ndim == 2 else a
        if a.ndim != 3 or a.shape[2] not in (1, 3):
            raise EdgevizError(f"image {f} has shape {list(a.shape)}; expected H x W grey or H x W x 3 colour")
        if a.shape[2] != c:                      # grey to colour by repetition, colour to grey by the mean
            a = np.repeat(a, c, axis=2) if a.shape[2] == 1 else a.mean(axis=2, keepdims=True).repeat(c, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]
        out.append(F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].numpy())
    x = np.stack(out).astype(np.float64)
    mean = np.asarray(pre["mean"], dtype=np.float64)[None, :, None, None]
    std = np.asarray(pre["std"], dtype=np.float64)[None, :, None, None]
    return (x - mean) / std


def read_inputs(spec, shape: tuple, pre: dict | None = None, role: str = "input") -> tuple[np.ndarray, np.ndarray | None, str]:
    """(model inputs [N, C, H, W], labels or None, where they came from) from an .npz or an image folder."""
    p = Path(spec)
    if not p.exists():
        raise EdgevizError(f"{spec} does not exist (give an .npz with an array x, or a folder of images)")
    if p.is_dir():
        pre = pre or preprocessing(channels=shape[0], source="none recorded")
        top = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
        classes = sorted(d.name for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
        if top or not classes:
            if not top:
                raise EdgevizError(f"folder {spec} holds no images ({', '.join(IMAGE_EXTS)})")
            return _images(top, shape, pre), None, f"{len(top)} images from {spec}"
        files, labels = [], []
        for i, cls in enumerate(classes):
            found = sorted(f for f in (p / cls).iterdir() if f.suffix.lower() in IMAGE_EXTS)
            files += found
            labels += [i] * len(found)
        if not files:
            raise EdgevizError(f"folder {spec} holds no images in its subfolders ({', '.join(IMAGE_EXTS)})")
        return _images(files, shape, pre), np.asarray(labels), f"{len(files)} labelled images from {spec}"
    if p.suffix.lower() != ".npz":
        raise EdgevizError(f"{spec} is neither an .npz file nor a folder of images")
    try:
        with np.load(p, allow_pickle=False) as z:
            names = list(z.files)
            x = z["x"] if "x" in names else None
            y = np.asarray(z["y"]).reshape(-1) if "y" in names else None
    except Exception as e:  # noqa: BLE001 - zip / pickle / format errors
        raise EdgevizError(f"cannot read {spec} as .npz: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if x is None:
        raise EdgevizError(f"{spec} holds no array 'x' (model inputs [N, {', '.join(map(str, shape))}]); it has {names}")
    x = _fit_array(x, shape, str(spec), role)
    if y is not None and len(y) != len(x):
        raise EdgevizError(f"{spec}: {len(x)} inputs but {len(y)} labels in y")
    return x, y, f"inputs from {spec} as given" + ("" if y is not None else " (no labels)")


def search_record(model) -> dict:
    """The subnet.json an edgeviz search wrote beside ``model`` (or in the folder it names), {} if none:
    the data it trained on (preprocessing) and the switches it judged memory with."""
    try:
        p = Path(str(model))
        sub = (p if p.is_dir() else p.parent) / "subnet.json"
        found = json.loads(sub.read_text()) if sub.is_file() else {}
    except (OSError, ValueError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def record_preprocessing(g: Graph, model, calib, mean=None, std=None) -> dict:
    """How image files become this model's inputs, recorded on the graph (and so in model.evq and
    build.json): --mean/--std if given, else the data an edgeviz search trained on, else the built-in
    digits' statistics when they calibrate it, else none ((pixel - 0) / 1)."""
    c = g.input_chw()[0]
    if mean is not None or std is not None:
        pre = preprocessing(mean, std, c, "--mean/--std")
    else:
        found = search_record(model).get("data")
        if found and "mean" in found and len(found["mean"]) == c:
            pre = preprocessing(found["mean"], found["std"], c, f"the search's data ({found.get('name', '?')})")
        elif calib is None and c == 1:
            d = load_digits_data()
            pre = preprocessing(d.mean, d.std, c, "built-in digits")
        else:
            pre = preprocessing(None, None, c, "none given (pass --mean/--std for image files)")
    g.preprocess = pre
    return pre


def calibration_data(g: Graph, calib: str | Path | None, n: int = 64) -> tuple[np.ndarray, dict | None]:
    """Calibration inputs [n, C, H, W] (an .npz x as given, image files through g.preprocess); with
    the built-in data also the held-out test split."""
    shape = g.input_chw()
    if calib is not None:
        x, _, _ = read_inputs(calib, shape, getattr(g, "preprocess", None), "calibration")
        return x[:max(n, 1)], None
    if g.prequantized:                   # nothing to calibrate: inputs only check the generated C
        return random_inputs(g, n), None
    c, h, w = shape
    data = builtin_data(g, f"--calib (an .npz with an array x of shape [N, {c}, {h}, {w}], or a folder of images)")
    x = data.images("train", h).numpy().astype(np.float64)[:n]
    test = {"x": data.images("test", h).numpy(), "y": data.y["test"].numpy()}
    return x, test


def builtin_data(g: Graph, what_to_pass: str):
    """The built-in digits at the model's input shape (1-channel, square inputs only); otherwise one
    line saying which flag to pass. A user's own data goes through edgeviz.inputs."""
    c, h, w = g.input_chw()
    if c != 1 or h != w:
        raise EdgevizError(f"no built-in data for input shape {[c, h, w]} (the built-in digits are 1-channel, "
                           f"square); pass {what_to_pass}")
    return load_digits_data()


def random_inputs(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    """n inputs [n, C, H, W] drawn uniformly over the input's int8 range (fixed seed): each is exactly
    an int8 value of the input's quantisation, so quantizing them gives those values back."""
    t = g.tensors[g.inputs[0]]
    q = np.random.default_rng(seed).integers(-128, 128, (n,) + g.input_chw())
    return (q - t.zero_point) * float(t.scale)
