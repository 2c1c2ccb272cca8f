"""The `edgeviz build` and `edgeviz analyze` jobs: a model file in, a firmware project out."""
from __future__ import annotations

import json
import os
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import staged_dir
from .build import (HostModel, build_host_library, copy_firmware_tree, elf_sections, elf_symbol_size,
                    write_model_sources)
from .compiler import Compiled, compile_graph, graph_flash, graph_macs, schedule_plan
from .errors import EdgevizError
from .inputs import preprocessing, read_inputs
from .ir import Graph
from .passes import Switches
from .planner import plot_timeline
from .quantize import quantize, quantize_image, run_int8
from .runner.firmware import build_firmware
from .targets import load_target

DEBUG = int(os.environ.get("EDGEVIZ_DEBUG", "0") or 0)
EMULATOR_BOARD = "mps2-an500"


# ------------------------------------------------------------------ loading
@dataclass(frozen=True)
class ModelFile:
    """A model path and how far to trust it: a pickled module runs code from the file when loaded,
    so it is read only with trust_pickle (the CLI's --trust-pickle)."""
    path: str
    trust_pickle: bool = False

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


def _first_line(e: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()      # torch puts terminal colours in its messages
    return text.splitlines()[0] if text else type(e).__name__


def example_input(module):
    """A [1, C, H, W] zero image for a module that does not say its input: channels from its first
    convolution, size from the attribute the library keeps it in (timm img_size, torchvision
    image_size, Hugging Face config.image_size)."""
    import torch
    if hasattr(module, "example_input"):
        return module.example_input()
    conv = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)
    size = None
    for m in module.modules():
        for v in (getattr(m, "image_size", None), getattr(m, "img_size", None),
                  getattr(getattr(m, "config", None), "image_size", None)):
            if v is not None:
                size = v
                break
        if size is not None:
            break
    if conv is None or size is None:
        raise EdgevizError(f"cannot tell the input size of {type(module).__name__}; save it with torch.export.save "
                           f"as a .pt2 file (or export it to ONNX) so the file says its input")
    h, w = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    return torch.zeros(1, conv.in_channels, int(h), int(w))


def _load_torch_file(p: Path, shown, trust_pickle: bool):
    """(graph, module) from a .pt: edgeviz's own format, else a pickled nn.Module when trusted."""
    import torch
    from .frontend import import_torch
    from .model import load_model
    try:
        module = load_model(p)
    except ValueError:
        raise EdgevizError(f"{shown} is a PyTorch file but not a model edgeviz can read (a state dict holds no "
                           f"architecture); export the model with torch.export.save (.pt2) or to ONNX") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        if "unsupported global" not in str(e).lower():     # not a pickled object: a damaged or foreign file
            raise EdgevizError(f"cannot read model {shown}: {_first_line(e)}; give a .pt2 (torch.export.save), "
                               f".onnx, or an edgeviz model (.pt from edgeviz search)") from None
        if not trust_pickle:
            raise EdgevizError(f"{shown} is a pickled PyTorch module, and loading one runs code from the file; "
                               f"save it with torch.export.save (.pt2) or export it to ONNX, or pass --trust-pickle "
                               f"if you trust where it came from") from None
        try:
            module = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as e2:  # noqa: BLE001
            raise EdgevizError(f"cannot read model {shown}: {_first_line(e2)}") from None
        if not isinstance(module, torch.nn.Module):
            raise EdgevizError(f"{shown} holds a {type(module).__name__}, not a torch.nn.Module") from None
        module.eval()
        return import_torch(module, example_input(module)), None
    return import_torch(module), module


def load_graph(path: str | Path | ModelFile) -> tuple[Graph, object | None]:
    """IR (float) from a search output folder, an edgeviz model file (.pt), a torch.export file (.pt2),
    an ONNX file, or (with ModelFile(trust_pickle=True)) a pickled nn.Module.

    Returns the graph and the PyTorch module when there is one (for float accuracy).
    """
    from .frontend import import_exported, import_onnx
    trust = getattr(path, "trust_pickle", False)
    p = Path(path)
    if p.is_dir():
        for name in ("model.pt", "subnet.pt"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            if (p / "model.onnx").is_file():
                p = p / "model.onnx"
            else:
                raise EdgevizError(f"{path} holds no model (expected model.pt or model.onnx from edgeviz search)")
    if not p.is_file():
        raise EdgevizError(f"model file {path} does not exist")
    if p.suffix.lower() == ".onnx":
        return import_onnx(p), None
    if p.suffix.lower() == ".pt2":
        return import_exported(p), None
    if p.suffix.lower() == ".tflite":
        raise EdgevizError(f"{path}: int8 .tflite models are not read yet; export the float model with "
                           f"torch.export.save (.pt2) or to ONNX and let edgeviz quantize it")
    return _load_torch_file(p, path, trust)


def record_preprocessing(g: Graph, model, calib, mean=None, std=None) -> dict:
    """How image files become this model's inputs, recorded on the graph (and so in model.evq and
    build.json): --mean/--std if given, else the data an edgeviz search trained on, else the built-in
    digits' statistics when they calibrate it, else none ((pixel - 0) / 1)."""
    c = g.tensors[g.inputs[0]].shape[0]
    if mean is not None or std is not None:
        pre = preprocessing(mean, std, c, "--mean/--std")
    else:
        found = None
        folder = Path(model) if Path(model).is_dir() else Path(model).parent
        sub = folder / "subnet.json"
        if sub.is_file():
            try:
                found = json.loads(sub.read_text()).get("data")
            except (OSError, ValueError):
                found = None
        if found and "mean" in found and len(found["mean"]) == c:
            pre = preprocessing(found["mean"], found["std"], c, f"the search's data ({found.get('name', '?')})")
        elif calib is None and c == 1:
            from .data import load_digits_data
            d = load_digits_data()
            pre = preprocessing(d.mean, d.std, c, "built-in digits")
        else:
            pre = preprocessing(None, None, c, "none given (pass --mean/--std for image files)")
    g.preprocess = pre
    return pre


def calibration_data(g: Graph, calib: str | Path | None, n: int = 64) -> tuple[np.ndarray, dict | None]:
    """Calibration inputs [n, C, H, W] (an .npz x as given, image files through g.preprocess); with
    the built-in data also the held-out test split."""
    shape = g.tensors[g.inputs[0]].shape
    if calib is not None:
        x, _, _ = read_inputs(calib, tuple(shape), getattr(g, "preprocess", None), "calibration")
        return x[:max(n, 1)], None
    c, h, w = shape
    data = builtin_data(g, f"--calib (an .npz with an array x of shape [N, {c}, {h}, {w}], or a folder of images)")
    x = data.images("train", h).numpy().astype(np.float64)[:n]
    test = {"x": data.images("test", h).numpy(), "y": data.y["test"].numpy()}
    return x, test


def builtin_data(g: Graph, what_to_pass: str):
    """The built-in digits at the model's input shape (1-channel, square inputs only); otherwise one
    line saying which flag to pass. A user's own data goes through edgeviz.inputs."""
    c, h, w = g.tensors[g.inputs[0]].shape
    if c != 1 or h != w:
        raise EdgevizError(f"no built-in data for input shape {[c, h, w]} (the built-in digits are 1-channel, "
                           f"square); pass {what_to_pass}")
    from .data import load_digits_data
    return load_digits_data()


# ------------------------------------------------------------------ accuracy
def accuracy(c: Compiled, host: HostModel, module, test: dict) -> dict:
    """Top-1 of float (PyTorch, else the float IR) and of int8 (the generated C) on held-out data."""
    import torch
    from .quantize import float_logits
    x, y = test["x"], test["y"]
    if module is not None:
        with torch.no_grad():
            fl = module(torch.as_tensor(x, dtype=torch.float32)).numpy()
    else:
        fl = float_logits(c.graph, x)
    q = np.stack([host.run(quantize_image(c.graph, xi)) for xi in x])
    return {"images": int(len(y)), "float_top1": float((fl.argmax(1) == y).mean()),
            "int8_top1": float((q.argmax(1) == y).mean()), "agreement": float((fl.argmax(1) == q.argmax(1)).mean())}


# ------------------------------------------------------------------ build
class Phases:
    """Names the stage in progress (for a spinner) and records how long each one took."""

    def __init__(self, progress=None):
        self.progress = progress or (lambda msg: None)
        self.seconds: dict[str, float] = {}
        self.t0 = self.mark = time.perf_counter()
        self.current = None

    def __call__(self, msg: str) -> None:
        now = time.perf_counter()
        if self.current:
            self.seconds[self.current] = round(now - self.mark, 2)
        self.current, self.mark = msg, now
        self.progress(msg)

    def total(self) -> float:
        return round(time.perf_counter() - self.t0, 2)


def default_switches(target: str = "stm32f746") -> Switches:
    """The schedule switches a target builds with unless told otherwise: every memory technique on, the
    qkv split included, on an MCU (up to 20% less arena for 5-12% more instructions); on an FPGA the qkv split is off
    (edgeviz.hls.generate.fpga_switches: less activation BRAM, but a second LayerNorm / q datapath per
    block, so no lower total BRAM and 1.1-3.4x the latency)."""
    tgt = load_target(target)
    if tgt.kind != "mcu":
        from .hls.generate import fpga_switches
        return fpga_switches()
    return Switches()


def build(model: str | Path, target: str = "stm32f746", out: str | Path | None = None,
          calib: str | Path | None = None, switches: Switches | None = None, firmware: bool = True,
          progress=None, mean=None, std=None, **fpga) -> dict:
    """switches: None for the target's default (default_switches). mean / std: per-channel
    preprocessing of image files (record_preprocessing). fpga: reuse, reuse_file, csim for FPGA
    targets (edgeviz.hls.project.build)."""
    tgt = load_target(target)
    if tgt.kind != "mcu":
        from .hls import project as hls_project   # the FPGA backend
        return hls_project.build(model, tgt, out, calib, switches, progress=progress, mean=mean, std=std, **fpga)
    say = Phases(progress)
    say("importing the model through TVM")
    g, module = load_graph(model)
    record_preprocessing(g, model, calib, mean, std)
    x_cal, test = calibration_data(g, calib)
    say("quantizing and planning")
    c = compile_graph(g, x_cal, tgt, Switches() if switches is None else switches)
    return write_project(c, Path(out or "build"), Path(model).name, x_cal, module, test, firmware, say)


def write_project(c: Compiled, out: Path, name: str, x_check: np.ndarray, module=None, test=None,
                  firmware: bool = True, say: Phases | None = None) -> dict:
    """Everything after compilation, written into `out` atomically: sources, plan, checks, ELFs, report."""
    say = say or Phases()
    tgt = c.target
    if DEBUG >= 1:
        print(c.schedule.graph.summary())
    if DEBUG >= 2:
        print(c.model_c[c.model_c.index("void ev_model_invoke"):])
    with staged_dir(out) as stage:
        model_dir = stage / "model"
        write_model_sources(c.model_c, c.model_h, model_dir)
        (stage / "plan.json").write_text(c.plan.to_json())
        plot_timeline(c.plan, stage / "memory.png", f"{name} on {tgt.name}: arena timeline")
        with open(stage / "model.evq", "wb") as f:
            pickle.dump(c.graph, f)
        say("checking the generated C against the int8 reference")
        host = HostModel(build_host_library(model_dir, stage / "host_model.so"), c.model_h)
        rng = np.random.default_rng(0)
        for i in range(4):
            x = x_check[i % len(x_check)] + (0 if i < 2 else rng.standard_normal(x_check.shape[1:]))
            xq = quantize_image(c.graph, x)
            if not np.array_equal(host.run(xq), run_int8(c.graph, xq).reshape(-1)):
                raise EdgevizError("internal error: the generated C differs from the int8 reference; "
                                   "please report it with the model file")
        acc = None
        if test is not None:
            say("measuring accuracy on held-out data")
            acc = accuracy(c, host, module, test)
        summary = _summary(c, tgt, name, acc, c.schedule.switches)
        if firmware:
            say("building firmware with arm-none-eabi-gcc")
            # the emulator build rides along, so `edgeviz profile --port emulator` works on any MCU build
            boards = [tgt["board"]] + ([EMULATOR_BOARD] if tgt["board"] != EMULATOR_BOARD else [])
            fw = copy_firmware_tree(stage / "firmware", boards)
            for board in boards:
                elf = build_firmware(model_dir, board, fw / f"build-{board}", fw_dir=fw)
                elf_name = "fw.elf" if board == tgt["board"] else f"fw-{board}.elf"
                os.replace(elf, fw / elf_name)
                for ext in (".bin", ".hex", ".map"):      # flashing tools want these beside the ELF
                    if elf.with_suffix(ext).exists():
                        os.replace(elf.with_suffix(ext), (fw / elf_name).with_suffix(ext))
                if board == tgt["board"]:
                    summary.update(_elf_facts(fw / elf_name, c))
            summary["elf"] = str((out / "firmware" / "fw.elf").resolve())
        say("done")
        summary["build_seconds"] = say.total()
        summary["phase_seconds"] = say.seconds
        (stage / "build.json").write_text(json.dumps(summary, indent=1))
        _report(stage, summary, c)
    return summary


def _summary(c: Compiled, tgt, model: str, acc, switches: Switches) -> dict:
    g = c.graph
    inp, outp = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    return {
        "model": str(model), "target": tgt.name, "model_id": c.info["model_id"],
        "input_shape": list(inp.shape), "input_scale": inp.scale,
        "output_shape": list(outp.shape), "output_scale": outp.scale,
        "arena_bytes": c.plan.peak, "peak_sram": c.plan.peak, "peak_sram_banks": c.plan.banks,
        "lower_bound_bytes": c.plan.lower_bound, "weights_bytes": c.info["weights_bytes"],
        "flash_estimate": c.info["weights_bytes"] + tgt.code_bytes, "macs": c.info["macs"],
        "layers": list(c.plan.steps), "switches": dict(switches.__dict__), "schedule_note": c.schedule.note,
        "accuracy": acc, "preprocess": getattr(g, "preprocess", None),
        "plan": "plan.json", "memory_png": "memory.png",
    }


def _elf_facts(elf: Path, c: Compiled) -> dict:
    """What the linked ELF really reserves: the arena must equal the plan byte for byte."""
    arena = elf_symbol_size(elf, "ev_arena")
    if arena != c.plan.peak:
        raise EdgevizError(f"internal error: linked arena is {arena} B but the plan says {c.plan.peak} B")
    secs = elf_sections(elf)
    flash = sum(size for name, (addr, size) in secs.items() if name in (".isr_vector", ".text", ".rodata", ".data", ".ARM.exidx"))
    ram = sum(size for name, (addr, size) in secs.items() if name in (".ev_arena", ".data", ".bss", ".stack", "._stack", ".heap"))
    return {"elf_arena_bytes": arena, "elf_flash_bytes": flash, "elf_ram_bytes": ram, "elf_sections": secs}


def _report(stage: Path, summary: dict, c: Compiled) -> None:
    from .report import write_build_report
    write_build_report(stage / "report.html", summary, c)


# ------------------------------------------------------------------ analyze
def analyze(model: str | Path, target: str = "stm32f746", switches: Switches | None = None, reuse=None) -> dict:
    """MACs, parameters, flash and peak SRAM per layer and in total, without building anything
    (for an FPGA target: the resource and latency estimate at the given or automatic reuse factor).
    switches: None for the target's default (default_switches)."""
    tgt = load_target(target)
    if tgt.kind != "mcu":
        from .hls import project as hls_project
        return hls_project.analyze(model, tgt, switches, reuse)
    switches = Switches() if switches is None else switches
    g, _ = load_graph(model)
    quantize(g, None)          # sizes only: ranges do not change any byte count
    s, p = schedule_plan(g, switches, tgt)
    switches = s.switches
    from .ops import OPS
    layers = []
    for k, st in enumerate(s.steps):
        live = sum(b.size for b in p.live_at(k))
        layers.append({"layer": st.name, "macs": sum(OPS[n.op].macs(n, s.graph) for n in st.nodes),
                       "params": sum(int(np.asarray(n.attrs["w"]).size) for n in st.nodes if "w" in n.attrs),
                       "flash": sum(OPS[n.op].flash_bytes(n) for n in st.nodes), "sram_live": live,
                       "output": st.output, "overwrites": st.alias})
    from .compiler import check_fit
    return {"target": tgt.name, "macs": graph_macs(s.graph), "params": sum(l["params"] for l in layers),
            "flash": graph_flash(g, s) + tgt.code_bytes, "weights_bytes": graph_flash(g, s),
            "peak_sram": p.peak, "peak_sram_banks": p.banks, "lower_bound_bytes": p.lower_bound,
            "fits": not check_fit(p, s, tgt, graph_flash(g, s)), "why": check_fit(p, s, tgt, graph_flash(g, s)),
            "switches": dict(switches.__dict__), "schedule_note": s.note, "layers": layers}
