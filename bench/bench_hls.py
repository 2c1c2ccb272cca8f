"""FPGA (HLS) backend benchmark: token-overwriting BRAM ablation, reuse-factor sweep, hls4ml comparison.

    .venv/bin/python bench/bench_hls.py                 # all three parts; writes results/hls.json
    .venv/bin/python bench/bench_hls.py --skip-hls4ml   # parts (a) and (b) only

(a) BRAM with and without token overwriting, per model and board, for the FPGA default schedule (the qkv
    split off: the fused [N, 3E] qkv tensor) and, as a second set of rows, with the qkv split on
    (`--qkv-split`). Both sides use the same fusion, the same per-layer reuse factors (the smallest
    uniform factor that fits the board with overwriting, as `edgeviz build` picks it) and the same bank
    assignment rule, so only the planner buffers differ. Extra column, not the goal's baseline: one
    memory per tensor (hls4ml-style, no sharing) for the schedule without overwriting. The summary also
    sets the split against the default per model and board (buffer and total BRAM, DSP, latency).
(b) Latency, DSP, BRAM, LUT, FF against the reuse factor for two models on the ZCU102 (default schedule).
    (a) and (b) are edgeviz's own estimates (edgeviz.hls.estimate), not vendor tool figures: no Vitis HLS
    or Vivado runs here.
(c) edgeviz against hls4ml 1.3.0 on one model both tools take: a digits MLP (sklearn's 8x8 digits,
    64 -> Linear 32 -> LayerNorm -> Linear 10, trained here in float). Why this model: hls4ml 1.3.0 has no
    GELU and edgeviz has no ReLU, so LayerNorm is the one non-linearity both have; hls4ml's LayerNorm
    takes only [batch, seq, features] inputs, so the model sees each image as one 64-feature token, which
    is also how edgeviz lays out a token matrix. Transformers are out: hls4ml needs parser patches for them
    (FIELD-NOTES). Measured, in this one run: top-1 agreement with the float model and max |logit error|
    on the 297 held-out images, accuracy, and the time to build each tool's C simulation (edgeviz:
    generate + g++; hls4ml: convert + compile, i.e. write the project and build its g++ library).
    hls4ml runs in .venv-bench (bench-only dependency) as a subprocess of this script.

    hls4ml workaround, stated: with channels_last_conversion="off" (needed for a 3-D input), hls4ml
    1.3.0 leaves the weights of a PyTorch Linear (a Dense, or the PointwiseConv1D it becomes on 3-D
    inputs) in PyTorch's [out, in] order, so its C simulation computes with transposed weights (top-1
    agreement about 11% here). The worker transposes them in the converted model before compile();
    nothing in hls4ml is patched.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BENCH_VENV_PY = ROOT / ".venv-bench" / "bin" / "python"
LABEL = "edgeviz estimate, not vendor tool"
BOARDS = ("zcu102", "ultra96v2", "pynq-z2")
SWEEP_MODELS = ("cls-wide-mlp3", "digits-32px-e96")
HLS4ML_PRECISIONS = ("ap_fixed<16,6>", "ap_fixed<8,3>")
REPEATS = 3          # timed builds per tool (median reported)


# ------------------------------------------------------------------ shared helpers

def _table(title: str, rows: list[dict], cols: list[str]) -> str:
    out = [f"**{title}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


def _fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _config_graph(cfg, seed: int = 0):
    """A quantized graph of a config with random weights and unit ranges (resources depend on shapes)."""
    import torch

    from edgeviz.frontend import graph_from_vit
    from edgeviz.model import ViT
    from edgeviz.quantize import quantize

    torch.manual_seed(seed)
    g = graph_from_vit(ViT(cfg).eval())
    quantize(g, None)
    return g


def _scheduled(g, token_overwrite: bool = True, split_qkv: bool | None = None):
    """The FPGA default schedule (fpga_switches), with token overwriting / the qkv split as given."""
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.hls.generate import assign_banks
    from edgeviz.passes import schedule
    from edgeviz.planner import plan

    sw = fpga_switches(token_overwrite=token_overwrite)
    s = schedule(g, sw if split_qkv is None else fpga_switches(sw, split_qkv=split_qkv))
    p = plan(s)
    banks, _ = assign_banks(p)
    return s, p, banks


# ------------------------------------------------------------------ (a) token overwriting

def _one_memory_per_tensor(plan, banks) -> int:
    """Extra column, not the goal's baseline: BRAM18K if every planner buffer (scratch excluded) had a memory
    of its own, as hls4ml's io_parallel gives every layer output its own array (no ping-pong sharing);
    a buffer that an attention streams keeps its bank's lane split."""
    from edgeviz.hls import estimate as est

    lanes = {id(b): k.partition for k in banks for b in k.buffers}
    total = 0
    for b in plan.buffers:
        if b.name.startswith("scratch@"):
            continue
        total += est.buffer_layout(b.size, lanes.get(id(b), 1))[1]
    return total


def token_overwrite_table(configs) -> list[dict]:
    from edgeviz.errors import EdgevizError
    from edgeviz.hls import estimate as est
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.hls.generate import CANDIDATE_REUSE, choose_reuse, reuse_for, schedule_estimate

    default_split = fpga_switches().split_qkv
    rows = []
    # the default schedule's rows first, then the other qkv schedule's (the split on: --qkv-split)
    for split, (name, cfg) in ((sp, nc) for sp in (default_split, not default_split) for nc in configs.items()):
        g = _config_graph(cfg)
        s_on, p_on, b_on = _scheduled(g, True, split)
        s_off, p_off, b_off = _scheduled(g, False, split)
        for board_name in BOARDS:
            board = load_fpga_target(board_name)
            try:
                r, rf, e_on = choose_reuse(s_on, b_on, board)
            except EdgevizError:       # fits at no uniform factor: report the largest one
                r = CANDIDATE_REUSE[-1]
                rf = reuse_for(s_on, r)
                e_on = schedule_estimate(s_on, b_on, rf, board, check=False)
            e_off = schedule_estimate(s_off, b_off, rf, board, check=False)
            buf_on = sum(k for _, _, k in e_on.buffers)
            buf_off = sum(k for _, _, k in e_off.buffers)
            rows.append({
                "model": name, "board": board_name, "qkv": "split" if split else "fused [N,3E]",
                "schedule": "default" if split == default_split else "qkv split on", "reuse": r,
                "planner bytes with": p_on.peak, "planner bytes without": p_off.peak,
                "buffer BRAM18K with": buf_on, "buffer BRAM18K without": buf_off,
                "buffer ratio": buf_on / buf_off if buf_off else None,
                "total BRAM18K with": e_on.bram18k, "total BRAM18K without": e_off.bram18k,
                "total ratio": e_on.bram18k / e_off.bram18k if e_off.bram18k else None,
                "fits with": e_on.fits, "fits without": e_off.fits,
                "latency cycles with": e_on.latency_cycles, "DSP with": e_on.dsp, "LUT with": e_on.lut,
                "buffer BRAM18K one memory per tensor (without)": _one_memory_per_tensor(p_off, b_off),
            })
    return rows


def qkv_split_comparison(tok: list[dict]) -> list[dict]:
    """Per model and board, the split-on rows of the token-overwriting table against the default ones
    (both with token overwriting, each at its own smallest fitting uniform reuse factor)."""
    default = {(r["model"], r["board"]): r for r in tok if r["schedule"] == "default"}
    rows = []
    for r in tok:
        d = default.get((r["model"], r["board"]))
        if r["schedule"] == "default" or d is None:
            continue
        row = {"model": r["model"], "board": r["board"]}
        for col, src in (("reuse", "reuse"), ("buffer BRAM18K", "buffer BRAM18K with"),
                         ("total BRAM18K", "total BRAM18K with"), ("DSP", "DSP with"),
                         ("latency cycles", "latency cycles with"), ("fits", "fits with")):
            row[f"{col} default"], row[f"{col} split"] = d[src], r[src]
        row["latency ratio split/default"] = r["latency cycles with"] / d["latency cycles with"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------ (b) reuse sweep

def reuse_sweep(configs, board_name: str = "zcu102") -> list[dict]:
    from edgeviz.hls import estimate as est
    from edgeviz.hls.generate import CANDIDATE_REUSE, node_total, reuse_for, schedule_estimate

    board = load_fpga_target(board_name)
    rows = []
    for name in SWEEP_MODELS:
        g = _config_graph(configs[name])
        s, _, banks = _scheduled(g, True)
        biggest = max(node_total(n, s.graph, st.chained) for st in s.steps for n in st.nodes)
        for r in CANDIDATE_REUSE:
            if r > 2 * biggest:            # every layer is already fully serial
                break
            e = schedule_estimate(s, banks, reuse_for(s, r), board, check=False)
            rows.append({"model": name, "board": board_name, "reuse": r, "latency cycles": e.latency_cycles,
                         "latency ms": e.latency_s * 1e3, "DSP": e.dsp, "BRAM18K": e.bram18k, "LUT": e.lut,
                         "FF": e.ff, "fits": e.fits})
    return rows


# ------------------------------------------------------------------ (c) hls4ml comparison

def _digits_mlp(seed: int = 0):
    """Train the comparison MLP in float: (model, train x, test x, test labels)."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target
    x_tr, y_tr, x_te, y_te = x[:1500], y[:1500], x[1500:], y[1500:]
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2, weight_decay=1e-4)
    xt, yt = torch.tensor(x_tr), torch.tensor(y_tr)
    for _ in range(400):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(xt), yt).backward()
        opt.step()
    return m.eval(), x_tr, x_te, y_te


def _mlp_graph(m):
    """edgeviz IR of the MLP: input [1, 64] (one token of 64 features) -> linear -> layernorm -> linear."""
    from edgeviz.ir import Graph

    sd = {k: v.detach().double().numpy() for k, v in m.state_dict().items()}
    g = Graph()
    g.inputs = [g.add_tensor("input", (1, 64)).name]
    h = g.add_node("linear", "fc1", g.inputs, (1, 32), dict(w=sd["0.weight"], b=sd["0.bias"])).name
    h = g.add_node("layernorm", "ln", [h], (1, 32), dict(gamma=sd["1.weight"], beta=sd["1.bias"],
                                                          eps=m[1].eps)).name
    g.outputs = [g.add_node("linear", "fc2", [h], (1, 10), dict(w=sd["2.weight"], b=sd["2.bias"])).name]
    return g


def _metrics(y, f, labels) -> dict:
    import numpy as np

    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    return {"top1_agreement_with_float": float((y.argmax(1) == f.argmax(1)).mean()),
            "max_abs_logit_error": float(np.abs(y - f).max()),
            "mean_abs_logit_error": float(np.abs(y - f).mean()),
            "accuracy": float((y.argmax(1) == labels).mean())}


def edgeviz_mlp(m, x_tr, x_te, y_te, f_te, work: Path) -> dict:
    import numpy as np

    from edgeviz.hls import csim
    from edgeviz.backends.fpga import fpga_switches
    from edgeviz.hls.generate import generate
    from edgeviz.passes import schedule
    from edgeviz.planner import plan
    from edgeviz.quantize import dequantize_output, quantize, quantize_image, run_int8

    g = _mlp_graph(m)
    quantize(g, x_tr.reshape(-1, 1, 64).astype(np.float64))
    xq = np.stack([quantize_image(g, x.reshape(1, 64)) for x in x_te])
    times, proj = [], None
    for i in range(REPEATS):
        t0 = time.perf_counter()
        s = schedule(g, fpga_switches())
        proj = generate(s, plan(s), work / f"edgeviz_mlp_{i}", "zcu102", tb_inputs=xq[:4])
        csim.compile_project(proj.path)
        times.append(time.perf_counter() - t0)
    out = csim.run_csim(proj.path, xq)
    ref = np.stack([np.asarray(run_int8(g, x)).reshape(-1) for x in xq])
    return {"tool": "edgeviz", "precision": "int8 (weights per channel, activations per tensor)",
            "reuse": max(proj.reuse.values()), "build_seconds": _median(times), "build_seconds_all": times,
            "csim_equals_run_int8": bool(np.array_equal(out, ref)),
            **_metrics(dequantize_output(g, out), f_te, y_te),
            "estimate_zcu102": {k: getattr(proj.estimate, k) for k in ("bram18k", "dsp", "lut", "ff",
                                                                         "latency_cycles")}}


def hls4ml_mlp(work: Path, npz: Path) -> list[dict]:
    """Run the hls4ml part in .venv-bench; [] (with a note) when that venv or hls4ml is missing."""
    if not BENCH_VENV_PY.is_file():
        return [{"tool": "hls4ml", "error": f"{BENCH_VENV_PY} not found (see bench/requirements-bench.txt)"}]
    out = work / "hls4ml.json"
    log = work / "hls4ml.log"
    with open(log, "w") as lf:
        r = subprocess.run([str(BENCH_VENV_PY), str(Path(__file__).resolve()), "--hls4ml-worker", str(npz),
                            str(out), str(work)], stdout=lf, stderr=subprocess.STDOUT, timeout=1800,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if r.returncode != 0 or not out.is_file():
        tail = log.read_text().strip().splitlines()[-3:]
        return [{"tool": "hls4ml", "error": f"worker exit {r.returncode}: {' | '.join(tail)[:400]}"}]
    return json.loads(out.read_text())


def hls4ml_worker(npz: str, out: str, work: str) -> None:
    """Runs inside .venv-bench: numpy, torch and hls4ml only (edgeviz is not installed there)."""
    import numpy as np
    import torch

    t0 = time.perf_counter()
    import hls4ml
    import_s = time.perf_counter() - t0
    d = np.load(npz)
    m = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 10))
    m.load_state_dict({k.replace("__", "."): torch.tensor(d[k]) for k in d.files if "__" in k})
    m.eval()
    x_te = d["x_te"].reshape(-1, 1, 64).astype(np.float32)
    with torch.no_grad():
        f_te = m(torch.tensor(x_te)).numpy().reshape(len(x_te), -1)
    res = []
    for prec in HLS4ML_PRECISIONS:
        times, hm = [], None
        for i in range(REPEATS):
            t0 = time.perf_counter()
            cfg = hls4ml.utils.config_from_pytorch_model(m, input_shape=(1, 64), granularity="name",
                                                         backend="Vitis", default_precision=prec,
                                                         channels_last_conversion="off")
            hm = hls4ml.converters.convert_from_pytorch_model(
                m, hls_config=cfg, output_dir=str(Path(work) / f"hls4ml_{prec[9:-1].replace(',', '_')}_{i}"),
                backend="Vitis", io_type="io_parallel", part="xczu9eg-ffvb1156-2-e")
            for layer in hm.get_layers():      # the 3-D Linear workaround (module docstring)
                if layer.class_name in ("Dense", "PointwiseConv1D"):   # a 3-D Linear may become the latter
                    wv = layer.get_weights("weight")
                    # PyTorch order [out, in] (as [1, out, in] for a pointwise conv) -> [in, out]
                    axes = (1, 0) if wv.data.ndim == 2 else (0, 2, 1)
                    wv.data = np.ascontiguousarray(np.transpose(wv.data, axes))
            hm.compile()
            times.append(time.perf_counter() - t0)
        y = np.asarray(hm.predict(np.ascontiguousarray(x_te)), dtype=np.float64).reshape(len(x_te), -1)
        res.append({"tool": "hls4ml " + hls4ml.__version__, "precision": prec + " (weights and activations; "
                    "LayerNorm tables at hls4ml's defaults)", "reuse": 1, "build_seconds": _median(times),
                    "build_seconds_all": times, "import_seconds": import_s,
                    **_metrics(y, f_te, d["y_te"])})
    Path(out).write_text(json.dumps(res))


def hls4ml_comparison(work: Path) -> list[dict]:
    import numpy as np
    import torch

    m, x_tr, x_te, y_te = _digits_mlp()
    with torch.no_grad():
        f_te = m(torch.tensor(x_te)).numpy().astype(np.float64)
    float_row = {"tool": "float (PyTorch)", "precision": "fp32", **_metrics(f_te, f_te, y_te)}
    npz = work / "mlp.npz"
    np.savez(npz, x_te=x_te, y_te=y_te, **{k.replace(".", "__"): v.numpy() for k, v in m.state_dict().items()})
    rows = [float_row, edgeviz_mlp(m, x_tr, x_te, y_te, f_te, work)]
    rows += hls4ml_mlp(work, npz)
    return rows


# ------------------------------------------------------------------ main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-hls4ml", action="store_true", help="parts (a) and (b) only")
    ap.add_argument("--hls4ml-worker", nargs=3, metavar=("NPZ", "OUT", "WORK"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.hls4ml_worker:
        hls4ml_worker(*a.hls4ml_worker)
        return

    sys.path.insert(0, str(HERE))
    from bench_models import BENCH_CONFIGS

    from edgeviz.atomic import write_text
    from edgeviz.hls.estimate import DISCLAIMER

    t0 = time.perf_counter()
    tok = token_overwrite_table(BENCH_CONFIGS)
    cols = ["model", "board", "qkv", "reuse", "planner bytes with", "planner bytes without",
            "buffer BRAM18K with", "buffer BRAM18K without", "buffer ratio", "total BRAM18K with",
            "total BRAM18K without", "total ratio", "fits with", "fits without", "latency cycles with",
            "DSP with", "buffer BRAM18K one memory per tensor (without)"]
    for sched, title in (("default", "FPGA default schedule, qkv split off"), ("qkv split on", "qkv split on")):
        print(_table(f"(a) BRAM18K with and without token overwriting, {title} ({LABEL})",
                     [r for r in tok if r["schedule"] == sched], cols))
        print()
    summary = {}
    for sched, key in (("default", "token_overwrite_summary"), ("qkv split on", "token_overwrite_summary_split")):
        fitting = [r for r in tok if r["fits with"] and r["buffer ratio"] is not None and r["schedule"] == sched]
        if not fitting:
            continue
        label = "fused [N, 3E] qkv, the FPGA default" if sched == "default" else "qkv split on (--qkv-split)"
        sm = {"buffer_ratio_min": min(r["buffer ratio"] for r in fitting),
              "buffer_ratio_max": max(r["buffer ratio"] for r in fitting),
              "total_ratio_min": min(r["total ratio"] for r in fitting),
              "total_ratio_max": max(r["total ratio"] for r in fitting),
              "planner_ratio_min": min(r["planner bytes with"] / r["planner bytes without"] for r in fitting),
              "planner_ratio_max": max(r["planner bytes with"] / r["planner bytes without"] for r in fitting),
              "goal_buffer_ratio_le_0.6_met_by": sum(r["buffer ratio"] <= 0.6 for r in fitting),
              "goal_total_ratio_le_0.6_met_by": sum(r["total ratio"] <= 0.6 for r in fitting),
              "rows_fitting": len(fitting), "schedule": label}
        summary[key] = sm
        print(f"{label}: buffer BRAM ratio with/without: {sm['buffer_ratio_min']:.3f} .. "
              f"{sm['buffer_ratio_max']:.3f}; total BRAM ratio {sm['total_ratio_min']:.3f} .. "
              f"{sm['total_ratio_max']:.3f}; planner bytes ratio {sm['planner_ratio_min']:.3f} .. "
              f"{sm['planner_ratio_max']:.3f}; goal <= 0.6 met by {sm['goal_buffer_ratio_le_0.6_met_by']} "
              f"of {len(fitting)} fitting rows for buffer BRAM, {sm['goal_total_ratio_le_0.6_met_by']} for "
              f"total BRAM ({LABEL})")
    split_vs = qkv_split_comparison(tok)
    print()
    print(_table(f"qkv split on against the FPGA default (split off), both with token overwriting ({LABEL})",
                 split_vs, ["model", "board", "reuse default", "reuse split", "buffer BRAM18K default",
                            "buffer BRAM18K split", "total BRAM18K default", "total BRAM18K split",
                            "DSP default", "DSP split", "latency ratio split/default", "fits default",
                            "fits split"]))
    print()
    sweep = reuse_sweep(BENCH_CONFIGS)
    print(_table(f"(b) reuse factor sweep on zcu102 ({LABEL})", sweep,
                 ["model", "reuse", "latency cycles", "latency ms", "DSP", "BRAM18K", "LUT", "FF", "fits"]))
    result = {"note": DISCLAIMER + " Part (c) is measured (C simulation on this machine); its edgeviz "
              "resource figures are estimates.",
              "token_overwrite": tok, **summary, "qkv_split_vs_default": split_vs, "reuse_sweep": sweep}
    if not a.skip_hls4ml:
        with tempfile.TemporaryDirectory(prefix="ev_bench_hls_") as tmp:
            cmp_rows = hls4ml_comparison(Path(tmp))
        print()
        print(_table("(c) digits MLP (64-32-LayerNorm-10), 297 held-out images: edgeviz vs hls4ml "
                     f"(measured in this run; build = median of {REPEATS})", cmp_rows,
                     ["tool", "precision", "reuse", "top1_agreement_with_float", "max_abs_logit_error",
                      "mean_abs_logit_error", "accuracy", "build_seconds", "error"]))
        ev = next((r for r in cmp_rows if r["tool"] == "edgeviz"), None)
        if ev:
            print(f"\nedgeviz C simulation == run_int8: {ev['csim_equals_run_int8']}; edgeviz estimate for the "
                  f"MLP on zcu102 ({LABEL}): {ev['estimate_zcu102']}. hls4ml gives no resource figure "
                  "without the vendor tool.")
        result["hls4ml_comparison"] = cmp_rows
    result["bench_seconds"] = time.perf_counter() - t0
    write_text(RESULTS / "hls.json", json.dumps(result, indent=1))
    print(f"\nwrote {RESULTS / 'hls.json'}")


if __name__ == "__main__":
    main()
