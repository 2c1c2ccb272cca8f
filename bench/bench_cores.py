"""Every emulated Cortex-M core: instructions per inference and MACs per instruction of edgeviz's int8
firmware for two test models, each built for a part with that core and run on the QEMU machine that
stands in for it (-icount: SysTick counts instructions), with the outputs checked bit for bit against
the int8 reference. Baseline in the same run: the Cortex-M7 (stm32f746's image on mps2-an500).

    .venv/bin/python bench/bench_cores.py [model ...]     # writes results/cores.json
    .venv/bin/python bench/bench_cores.py --subnets 3      # the search's subnets: results/cores_subnets.json
    .venv/bin/python bench/bench_cores.py --parts stm32f746 [--subnets N | model ...]   # some parts only
    .venv/bin/python bench/bench_cores.py --out long_attention.json --parts stm32f746 tokens401-e64 tokens257-e128
    .venv/bin/python bench/bench_cores.py --optimize time --out NAME.json --parts stm32f746 [model ...]

--subnets N: N subnets of the default search space (extracted from a supernet as `edgeviz search`
exports them, tests/models.search_subnets) small enough for the smallest part (stm32f103, 20 KB
SRAM), so the same subnet runs on every core.

The kernels take their SMLAD/SXTB16 path (hand-written for the M7) on the M4, M7 and M33, on the M3
and M0+ their register-blocked matrix tiles for ARMv7-M (LDRSB + MLA) and ARMv6-M (Thumb-1)
(ev_gemm_nodsp.c; the other kernels are the portable C there), and on the M55 their Helium (MVE) path
(the matrix kernels: linear, q.k, p.v; the row kernels: LayerNorm, softmax, add, LUT, transposition,
token mean); CMSIS-NN per core: bench_kernels_cores.py (kernels), bench_tflm.py --parts (whole .tflite
models). Instruction counts are not cycles: QEMU models no pipeline, caches, TCM, wait
states, multi-cycle multiplies (the M0+'s may take 32 cycles) or dual issue.
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_models import BENCH_CONFIGS, LONG_ATTENTION_CONFIGS, print_markdown_table  # noqa: E402
from models import search_subnets  # noqa: E402  (tests/, on the path through bench_models)

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.backends.mcu import write_project  # noqa: E402
from edgeviz.frontend import graph_from_vit  # noqa: E402
from edgeviz.model import ViT  # noqa: E402
from edgeviz.project import compile_graph  # noqa: E402
from edgeviz.quantize import quantize_image, run_int8  # noqa: E402
from edgeviz.runner import api  # noqa: E402
from edgeviz.search.space import gene_summary  # noqa: E402
from edgeviz.targets import load_target  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT = ["cls-lowrank", "mean-3heads"]
# one part per core, the M7 (the baseline) first
PARTS = ["stm32f746", "rp2040", "stm32f103", "stm32f411", "stm32u585", "alif-e3"]
NODSP = {"cortex-m0plus": "ARMv6-M tiles", "cortex-m3": "ARMv7-M tiles"}
MVE = {"cortex-m55"}


def measure(name: str, target: str, model: ViT | None = None, optimize: str = "ram") -> dict:
    if model is None:
        torch.manual_seed(0)
        model = ViT((BENCH_CONFIGS | LONG_ATTENTION_CONFIGS)[name]).eval()
    cfg = model.cfg
    x = np.random.default_rng(0).standard_normal((4, cfg.in_chans, cfg.img_size, cfg.img_size))
    c = compile_graph(graph_from_vit(model), x, target, optimize=optimize)
    t = load_target(target)
    with tempfile.TemporaryDirectory() as d:
        b = Path(d) / "b"
        meta = write_project(c, b, name, x)
        prof = api.profile(b, "emulator", n=2)
        xq = np.stack([quantize_image(c.graph, xi) for xi in x])
        want = np.stack([run_int8(c.graph, q).reshape(-1) for q in xq])
        val = api.validate(b, "emulator", xq, want)
    total = prof["end_to_end"]["median"]
    return {"model": name, "core": t.core, "target": target, "machine": meta["emulator"],
            "kernels": NODSP[t.core] if t.core in NODSP else "MVE (Helium)" if t.core in MVE else "DSP (SMLAD)",
            "macs": c.info["macs"], "executed_macs": c.info["executed_macs"], "instructions": total,
            "macs_per_instr": c.info["macs"] / total,   # the model's MACs (executed_macs: with recomputed rows, padding)
            "bit_exact": f"{val['bit_exact']}/{val['n']}", "arena": c.plan.peak, "optimize": optimize,
            "schedule": c.schedule.switches.label(),
            "code_bytes": meta["elf_flash_bytes"] - meta["weights_bytes"]}


def main(names, subnets: dict | None = None, out: str = "cores.json", parts: list[str] = PARTS,
         optimize: str = "ram"):
    unknown = [n for n in names if n not in (subnets or BENCH_CONFIGS | LONG_ATTENTION_CONFIGS)]
    if unknown:
        raise SystemExit(f"unknown model {', '.join(unknown)}: use one of "
                         f"{', '.join(BENCH_CONFIGS | LONG_ATTENTION_CONFIGS)} (or --subnets N)")
    rows = []
    for name in names:
        base = None
        for target in parts:
            r = measure(name, target, (subnets or {}).get(name), optimize)
            base = base or r["instructions"]
            r["instructions_vs_m7"] = r["instructions"] / base
            rows.append(r)
            print(f"{name} on {target} ({r['core']}, {r['machine']}): {r['instructions']:,.0f} instructions, "
                  f"{r['macs_per_instr']:.3f} MACs/instruction, bit-exact {r['bit_exact']}", file=sys.stderr)
    print_markdown_table(rows)
    write_text(RESULTS / out, json.dumps({
        "note": "QEMU 7.2 -icount shift=0 instruction counts (SysTick), not cycles; outputs compared with the "
                "int8 reference on 4 inputs; code_bytes = ELF flash minus weights",
        "rows": rows}, indent=1))


if __name__ == "__main__":
    args = sys.argv[1:]
    if {"-h", "--help"} & set(args):
        print(__doc__)
        raise SystemExit(0)
    parts, out, named, optimize = PARTS, None, None, "ram"
    if args[:1] == ["--optimize"]:  # --optimize time: the schedule `edgeviz build --optimize time` picks
        optimize, args = args[1], args[2:]
    if args[:1] == ["--out"]:     # --out NAME.json: results/NAME.json, leaving the section tables' files alone
        named, args = args[1], args[2:]
    if args[:1] == ["--parts"]:   # --parts stm32f746[,..]: those parts only, to results/cores[_subnets]_<parts>.json
        parts, args = args[1].split(","), args[2:]
        out = "_".join(parts) + ".json"
    if args[:1] == ["--subnets"]:
        found = search_subnets("stm32f103", int(args[1]), seed=0, max_macs=6_000_000)
        subnets = {gene_summary(cfg): m for cfg, m in found}
        main(list(subnets), subnets, named or "cores_subnets" + ("_" + out if out else ".json"), parts, optimize)
    else:
        main(args or DEFAULT, out=named or "cores" + ("_" + out if out else ".json"), parts=parts, optimize=optimize)
