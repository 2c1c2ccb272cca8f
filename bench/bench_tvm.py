"""TVM baselines next to edgeviz, same models, same run.

For each configuration: edgeviz's planned int8 arena (plan_config(cfg).peak_sram, the bytes the
firmware links with) against the activation memory TVM 0.27's StaticPlanBlockMemory allocates for
the same model (fp32, as TVM plans it, and /4 as the int8 equivalent), and the executed
instructions of one inference with TVM-generated plain-C fp32 kernels on the emulated Cortex-M7
(QEMU mps2-an500, -icount shift=0). edgeviz's int8 firmware instruction count is measured by the
lead's bench; `measure_config` / `tvm_fp32_instructions` below are for importing from there.

"TVM plan" = sum of R.memory.alloc_storage sizes (intermediates only); "+io" adds the model input
and the output tensor, which TVM keeps outside its plan and edgeviz keeps in its arena. "scratch"
is the largest buffer a TVM fused kernel allocates inside itself (on the stack here), which no
StaticPlanBlockMemory figure includes. Instruction counts are not Cortex-M7 cycles (no caches,
wait states or dual issue in QEMU). Every TVM C program is checked against PyTorch on the host
(max abs error <= 1e-3) and the MCU output against the host output before its count is kept.

    .venv/bin/python bench/bench_tvm.py              # the 5 test configs -> results/tvm.json
    .venv/bin/python bench/bench_tvm.py --all        # + the MCU-sized configs of bench_models.py
    .venv/bin/python bench/bench_tvm.py --no-mcu     # memory figures only
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, ROOT / "tests", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.baselines import tvm_ref  # noqa: E402
from edgeviz.lower import plan_config  # noqa: E402
from edgeviz.model import ViT, ViTConfig  # noqa: E402

RESULTS = HERE / "results"
HARNESS = HERE / "tvm_harness"
# QEMU's mps2-an500 has more memory than the F746: fp32 builds that do not link in the F746's 1 MB
# flash + 320 KB RAM are run with this map instead, and the table says so ("fp32 fits F746").
BIG_LD = HARNESS / "mps2-an500-big.ld"


def _model(name: str, cfg: ViTConfig, seed: int = 0):
    import torch
    import models
    if name in models.CONFIGS and models.CONFIGS[name] == cfg:
        return models.make(name, seed)
    torch.manual_seed(seed)
    return ViT(cfg).eval()


def _example(cfg: ViTConfig, seed: int = 0):
    import torch
    import models
    return torch.tensor(models.inputs(cfg, 1, seed), dtype=torch.float32)


def measure_config(name: str, cfg: ViTConfig | None = None, instructions: bool = True,
                   seed: int = 0) -> dict:
    """TVM baselines and edgeviz's planned arena for one config (a test or bench_models name)."""
    if cfg is None:
        from bench_models import BENCH_CONFIGS
        cfg = BENCH_CONFIGS[name]
    rep = plan_config(cfg)
    model, x = _model(name, cfg, seed), _example(cfg, seed)
    t0 = time.time()
    mod = tvm_ref.planned_module(model, x)
    sp = tvm_ref._plan_summary(tvm_ref._walk_main(mod))
    row = {
        "edgeviz_arena_bytes": rep.peak_sram,
        "macs": rep.macs,
        "static_plan_bytes": sp["storage_bytes"],
        "static_plan_storages": sp["storages"],
        "static_plan_storage_sizes": sp["storage_sizes"],
        "static_plan_int8_bytes": sp["storage_bytes_int8"],
        "static_plan_with_io_bytes": sp["total_bytes"],
        "static_plan_with_io_int8_bytes": sp["total_bytes_int8"],
        "input_bytes_fp32": sp["input_bytes"],
        "output_bytes_fp32": sp["output_bytes"],
    }
    if instructions:
        prog = tvm_ref.generate_c(model, x, mod)
        try:       # the board's own memory map (F746-sized) first, the emulator's 4 MB if it fails to link
            r = tvm_ref.fp32_c_instructions(model, x, prog=prog)
            linked = "mps2-an500 memory.ld (F746 sizes)"
        except tvm_ref.TVMBaselineError as e:
            if "firmware build failed" not in str(e):
                raise
            r = tvm_ref.fp32_c_instructions(model, x, prog=prog, linker_script=BIG_LD)
            linked = "bench/tvm_harness/mps2-an500-big.ld (4 MB)"
        fits = (r["flash_bytes"] <= 1024 * 1024
                and r["ram_static_bytes"] + r["stack_bytes"] <= 320 * 1024)
        row.update({
            "fp32_c_instructions": r["instructions"],
            "fp32_c_instructions_per_mac": r["instructions"] / rep.macs if rep.macs else None,
            "fp32_c_runs": r["runs"],
            "fp32_c_host_max_abs_err": r["host_max_abs_err"],
            "fp32_c_mcu_vs_host_max_abs_err": r["mcu_vs_host_max_abs_err"],
            "fp32_c_kernel_calls": r["kernel_calls"],
            "fp32_c_kernels": r["kernels"],
            "kernel_scratch_max_bytes": r["kernel_scratch_max_bytes"],
            "fp32_c_flash_bytes": r["flash_bytes"],
            "fp32_c_ram_static_bytes": r["ram_static_bytes"],
            "fp32_c_stack_bytes": r["stack_bytes"],
            "fp32_c_f64_instructions": r["f64_instructions"],
            "fp32_c_fits_f746": bool(fits),
            "fp32_c_linked_with": linked,
        })
    row["seconds"] = round(time.time() - t0, 1)
    return row


def tvm_fp32_instructions(name: str, cfg: ViTConfig | None = None, seed: int = 0) -> int:
    """Executed instructions of one inference with TVM's fp32 C kernels (QEMU mps2-an500)."""
    return measure_config(name, cfg, True, seed)["fp32_c_instructions"]


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(rows: dict) -> str:
    cols = ["model", "edgeviz arena (int8)", "TVM plan fp32", "storages", "TVM plan /4",
            "TVM plan+io /4", "ours / (TVM/4)", "scratch fp32", "TVM fp32 C instr", "instr/MAC",
            "max|C-torch|", "fp32 fits F746"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, r in rows.items():
        ins = r.get("fp32_c_instructions")
        vals = [name, r["edgeviz_arena_bytes"], r["static_plan_bytes"], r["static_plan_storages"],
                r["static_plan_int8_bytes"], r["static_plan_with_io_int8_bytes"],
                r["edgeviz_arena_bytes"] / r["static_plan_int8_bytes"],
                r.get("kernel_scratch_max_bytes"), ins, r.get("fp32_c_instructions_per_mac"),
                f"{r['fp32_c_host_max_abs_err']:.1e}" if ins else None,
                ("yes" if r["fp32_c_fits_f746"] else "no") if ins else None]
        out.append("| " + " | ".join(_fmt(v) for v in vals) + " |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also the MCU-sized configs of bench_models.py")
    ap.add_argument("--no-mcu", action="store_true", help="memory figures only (no QEMU runs)")
    ap.add_argument("--only", nargs="*", help="config names")
    ap.add_argument("--out", default=str(RESULTS / "tvm.json"))
    a = ap.parse_args(argv)
    from bench_models import BENCH_CONFIGS
    import models
    names = list(BENCH_CONFIGS) if a.all else list(models.CONFIGS)
    if a.only:
        names = [n for n in names if n in a.only] or a.only
    rows = {}
    for n in names:
        rows[n] = measure_config(n, BENCH_CONFIGS[n], instructions=not a.no_mcu)
        print(f"{n}: done in {rows[n]['seconds']} s", file=sys.stderr, flush=True)
    print(table(rows))
    import tvm
    doc = {
        "tool": f"apache-tvm {tvm.__version__}",
        "target": tvm_ref.TARGET,
        "board": tvm_ref.BOARD,
        "pipeline": "relax.backend.cpu_generic legalize/dataflow-lower passes + StaticPlanBlockMemory",
        "notes": ("static_plan_bytes = sum of R.memory.alloc_storage sizes (fp32, intermediates only); "
                  "static_plan_int8_bytes = that / 4; *_with_io_* adds the model input and output; "
                  "kernel_scratch_max_bytes = largest buffer inside one TVM fused kernel (not in any plan). "
                  "fp32_c_instructions = executed instructions of one inference, QEMU mps2-an500 "
                  "-icount shift=0 (not cycles)."),
        "configs": rows,
    }
    write_text(Path(a.out), json.dumps(doc, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
