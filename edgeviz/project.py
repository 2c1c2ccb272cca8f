"""The jobs behind `edgeviz build` and `edgeviz analyze`: a model file in, a project out.

Each job walks the pipeline once: frontend.load_graph -> inputs (preprocessing, calibration) ->
quantize -> lower (schedule, plan, fit; the backend chosen by the target's kind) -> the backend's
emit or analyze. Also here: the same walk from an in-memory graph or edgeviz ViT to an FPGA project
or estimate, for Python callers and benches.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .backends import backend_for
from .backends.base import Lowered
from .backends.fpga import best_estimate
from .backends.mcu import Compiled
from .errors import EdgevizError
from .frontend import ModelFile, graph_from_vit, load_graph
from .hls.generate import HlsProject, assign_banks, generate, reuse_for, schedule_estimate
from .hls.estimate import Estimate
from .inputs import calibration_data, record_preprocessing
from .ir import Graph
from .lower import lower, lower_config
from .model import ViTConfig, load_model
from .passes import Switches
from .phases import Phases
from .quantize import quantize, quantize_image
from .targets import Target, load_fpga_target, load_target

__all__ = ["ModelFile", "analyze", "build", "compile_graph", "default_switches", "lower_calibrated"]


def default_switches(target: str | Target = "stm32f746") -> Switches:
    """The schedule switches a target builds with unless told otherwise (its backend's default): every
    memory technique on, the qkv split included, on an MCU; on an FPGA the qkv split is off
    (backends/fpga.fpga_switches)."""
    t = load_target(target)
    return backend_for(t).switches(None, t)


def lower_calibrated(g: Graph, calib, target: str | Target, switches: Switches | None = None,
                     exact: bool = False, check: bool = True, optimize: str = "ram") -> Lowered:
    """Quantize `g` on the calibration inputs and lower it (optimize: lower.lower's goal, "ram" or
    "time"). With `check`, a model that cannot fit is refused before calibrating: sizes do not depend
    on ranges."""
    t = load_target(target)
    if check:
        quantize(g, None)
        low = lower(g, t, switches, exact, optimize)
        why = low.backend.fit(low)
        if why:
            raise EdgevizError(f"model does not fit {t.name}: {why}")
    quantize(g, calib)
    return lower(g, t, switches, exact, optimize)


def compile_graph(g: Graph, calib: np.ndarray, target: str | Target, switches: Switches | None = None,
                  check: bool = True, exact_switches: bool = False, optimize: str = "ram") -> Compiled:
    """The C sources of a graph for an MCU target. ``exact_switches``: schedule with ``switches`` as
    given (tests use it to run fused kernels on graphs the build would run unfused)."""
    low = lower_calibrated(g, calib, target, switches, exact_switches, check, optimize)
    return low.backend.compile(low)


def build(model: str | Path | ModelFile, target: str | Target = "stm32f746", out: str | Path | None = None,
          calib: str | Path | None = None, switches: Switches | None = None, progress=None, mean=None, std=None,
          optimize: str = "ram", **options) -> dict:
    """switches: None for the target's default (default_switches). mean / std: per-channel
    preprocessing of image files (inputs.record_preprocessing). optimize: "ram" (the smallest arena)
    or "time" (the schedule estimated fastest that fits the target). options: the backend's own (MCU:
    firmware; FPGA: reuse, reuse_file, csim)."""
    t = load_target(target)
    backend = backend_for(t)
    backend.preflight(options)
    switches = backend.switches(switches, t)
    say = Phases(progress)
    say("importing the model through TVM")
    g, module = load_graph(model)
    record_preprocessing(g, model, calib, mean, std)
    x_cal, test = calibration_data(g, calib)
    say("quantizing and planning")
    low = lower_calibrated(g, x_cal, t, switches, optimize=optimize)
    return backend.emit(low, Path(out or "build"), name=Path(model).name, x_check=x_cal, module=module,
                        test=test, say=say, **options)


def analyze(model: str | Path | ModelFile, target: str | Target = "stm32f746", switches: Switches | None = None,
            reuse=None, optimize: str = "ram") -> dict:
    """MACs, parameters, flash and peak SRAM per layer and in total, without building anything (for
    an FPGA target: the resource and latency estimate at the given or automatic reuse factor).
    switches: None for the target's default (default_switches)."""
    t = load_target(target)
    g, _ = load_graph(model)
    quantize(g, None)          # sizes only: ranges do not change any byte count
    low = lower(g, t, switches, optimize=optimize)
    return low.backend.analyze(low, {"reuse": reuse})


# ------------------------------------------------------------------ FPGA projects from Python
def hls_project_from_graph(qgraph: Graph, out_dir, board: str | Target = "zcu102", reuse: int | dict | str = "auto",
                           switches: Switches | None = None, **kw) -> HlsProject:
    """Lower a quantized graph for an FPGA board (switches: None for the FPGA default) and write its
    HLS project (edgeviz.hls.generate.generate: kw tb_inputs, n_vectors, check, seed)."""
    low = lower(qgraph, board, switches)
    return generate(low.schedule, low.plan, out_dir, low.target, reuse, ref_graph=qgraph, **kw)


def hls_project_from_model(model, out_dir, board: str | Target = "zcu102", calib=None,
                           reuse: int | dict | str = "auto", n_vectors: int = 4, seed: int = 0,
                           switches: Switches | None = None) -> HlsProject:
    """An edgeviz ViT (module or model file) -> HLS project.

    calib: float images [B, C, H, W] for calibration; the first n_vectors of them, quantized, become the
    testbench vectors. None: random normal images (scales then mean nothing: smoke tests only)."""
    if not isinstance(model, torch.nn.Module):
        model = load_model(Path(model))
    cfg = model.cfg
    if calib is None:
        calib = np.random.default_rng(seed).normal(size=(max(n_vectors, 8), cfg.in_chans, cfg.img_size, cfg.img_size))
    calib = np.asarray(calib, dtype=np.float64)
    g = graph_from_vit(model.eval())
    quantize(g, calib)
    xs = np.stack([quantize_image(g, x) for x in calib[:n_vectors]])
    return hls_project_from_graph(g, out_dir, board, reuse, switches=switches, tb_inputs=xs, seed=seed)


def fpga_estimate(cfg: ViTConfig, board: str | Target, reuse: int | dict = 1, check: bool = True,
                  switches: Switches | None = None) -> Estimate:
    """Estimate of the HLS project edgeviz would write for this config (same schedule, same buffers).
    reuse: one factor for every node, or {node name or op: factor}; switches: None for the FPGA default."""
    low = lower_config(cfg, load_fpga_target(board), switches)
    banks, _ = assign_banks(low.plan)
    return schedule_estimate(low.schedule, banks, reuse_for(low.schedule, reuse), low.target, check)


def fpga_auto_reuse(cfg: ViTConfig, board: str | Target, switches: Switches | None = None) -> tuple[int, Estimate]:
    """The smallest uniform reuse factor (fastest design) whose estimate fits the board; EdgevizError
    naming the exceeded resources when none does. switches: None for the FPGA default."""
    r, _, e = best_estimate(lower_config(cfg, load_fpga_target(board), switches))
    e.check()
    return r, e
