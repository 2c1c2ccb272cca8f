"""Memory ablation: peak SRAM with each technique off and on (K/V per head: with its own lower bound, the
arena before it), the planner against the live-set lower bound, and (when their result files exist) against TVM's StaticPlanBlockMemory and TF Lite Micro.

    .venv/bin/python bench/bench_memory.py            # prints a markdown table, writes results/memory.json
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import BENCH_CONFIGS  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.lower import plan_config  # noqa: E402
from edgeviz.passes import Switches  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "all on": Switches(kv_per_head=True),
    "no kv-per-head": Switches(),                      # the default build
    "no fuse": Switches(fuse=False),
    "no patch-decomp": Switches(patch_decompose=False, kv_per_head=True),
    "no token-overwrite": Switches(token_overwrite=False, kv_per_head=True),
    "all off": Switches(False, False, False),
}


def _load(name):
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else {}


def main():
    tvm = _load("tvm.json").get("configs", {})
    tflm = _load("tflm.json").get("results", {})      # written by bench/tflm_arena.py (.venv-bench)
    rows = []
    for name, cfg in BENCH_CONFIGS.items():
        r = {"model": name}
        for label, sw in VARIANTS.items():
            rep = plan_config(cfg, switches=sw)
            r[label] = rep.peak_sram
            if label == "all on":
                r["lower bound"] = rep.lower_bound
            if label == "no kv-per-head":
                r["lower bound (no kv-per-head)"] = rep.lower_bound
                r["kv-per-head on/off"] = r["all on"] / rep.peak_sram
        r["planner/LB"] = r["all on"] / r["lower bound"]
        r["off/on"] = r["all off"] / r["all on"]
        if name in tvm:
            # TVM plans fp32; /4 gives the int8 equivalent. edgeviz's arena holds input and logits too.
            r["TVM StaticPlanBlockMemory /4 (+io)"] = tvm[name]["static_plan_with_io_int8_bytes"]
            r["ours/TVM"] = r["all on"] / tvm[name]["static_plan_with_io_int8_bytes"]
        if name in tflm:
            r["TFLM arena"] = tflm[name]["tflm_arena_total"]
            r["ours/TFLM"] = r["all on"] / tflm[name]["tflm_arena_total"]
            r["TFLM head (activations)"] = tflm[name]["tflm_arena_head"]
            r["ours/TFLM head"] = r["all on"] / tflm[name]["tflm_arena_head"]
        rows.append(r)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    write_text(RESULTS / "memory.json", json.dumps({"rows": rows}, indent=1))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


if __name__ == "__main__":
    main()
