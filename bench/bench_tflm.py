"""The same int8 .tflite files under TF Lite Micro + CMSIS-NN (the whole-model peer) and under edgeviz,
on the same emulated Cortex-M7 (QEMU mps2-an500, -icount shift=0: SysTick counts instructions), and
with --parts on the Cortex-M4 (stm32f411, mps2-an386), M33 (stm32u585, mps2-an505), M0+ (rp2040) and
M3 (stm32f103; both on mps2-an385, QEMU's M3 machine, which runs ARMv6-M code) and M55 with Helium
(alif-e3, mps3-an547) too.

Per model: instructions per inference (TFLM: Invoke; edgeviz: `edgeviz profile` end to end), arena
bytes (TFLM: the smallest arena with which AllocateTensors and Invoke succeed, found by bisection on
the device, persistent allocations included; edgeviz: build.json's planned arena_bytes) and the
ratios. The TFLM side is the peer harness (README.md there): fetch_deps.sh extracts tflite-micro and
the trees its Makefile would download (CMSIS-NN among them) from bare git mirrors, build_lib.sh
builds them with TFLM's own Makefile and release flags (-Os core, -O2 kernels), run_tflm_m7.py
embeds a model in firmware and runs it. The library is built once per TFLM commit and core and cached
in ~/.cache/edgeviz-tflm, outside the repository; nothing from TFLM or CMSIS-NN comes into it. For the
other cores the harness' scripts are copied there with their core re-pointed (TFLM's TARGET_ARCH and
FPU, the compiler flags of the part's target, its QEMU machine, and where that machine's map differs
from mps2-an500's, its addresses: the M33's Secure aliases, the M55's ITCM / DDR / SRAM).

    .venv/bin/python bench/bench_tflm.py [--tflm-mirror /work/.mirror] [--models vit_relu,vit_gelu]
        [--parts stm32f746,stm32f411,stm32u585,rp2040,stm32f103,alif-e3] [--json FILE]
        [--edgeviz-root DIR] [--before-root DIR]

The output file keeps the rows of parts that a run leaves out (an earlier run's, with its provenance
under "earlier_runs"), so the cores can be measured one at a time.

Missing mirrors, harness or cross tools: one line saying what is missing, exit 0. The input is one
random int8 tensor (seed 0); TFLM's output on it is compared with LiteRT's BUILTIN_REF kernels (as
information: TFLM rounds a few ops differently). Instruction counts are not cycles.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (ROOT, HERE):
    sys.path.insert(0, str(p))

from bench_models import print_markdown_table  # noqa: E402
from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.targets import load_target  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "tflite"
DEFAULT = ["vit_relu", "vit_sigmoid_gelu", "vit_gelu", "vit_keras_mha", "vit_mha_cls_hswish"]
HARNESS = Path(os.environ.get("TFLM_M7_HARNESS", "/work/shared/peers/tflm-m7"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeviz-tflm"
MIRRORS = ["tensorflow+tflite-micro", "google+flatbuffers", "google+gemmlowp", "google+ruy",
           "mborgerding+kissfft", "ARM-software+CMSIS_6", "ARM-software+Cortex_DFP", "ARM-software+CMSIS-NN"]
# TFLM kernels the fixtures need beyond the harness' own lists (build_lib.sh's KERNELS, run_tflm_m7.py's
# RESOLVER): op -> (its resolver call, TFLM's kernel objects). The library and the harness copy get them.
EXTRA_KERNELS = {"HARD_SWISH": ("AddHardSwish", ["hard_swish", "hard_swish_common"])}
# part -> (library variant, TFLM's TARGET_ARCH, its FPU): the M7's is the harness' own build ("default").
# No FPU named: TFLM's cortex_m_generic makefile then passes -mfpu=auto, soft float on the M0+ and M3;
# on the M55 (its TARGET_ARCH cortex-m55: hard float) -mcpu=cortex-m55 -mfpu=auto brings the FPU and
# MVE, so GCC defines __ARM_FEATURE_MVE and CMSIS-NN compiles its Helium path (ARM_MATH_MVEI).
PARTS = {"stm32f746": ("default", "cortex-m7+fp", "fpv5-sp-d16"),
         "stm32f411": ("m4", "cortex-m4+fp", "fpv4-sp-d16"),
         "stm32u585": ("m33", "cortex-m33", "fpv5-sp-d16"),
         "rp2040": ("m0plus", "cortex-m0plus", ""),
         "stm32f103": ("m3", "cortex-m3", ""),
         "alif-e3": ("m55", "cortex-m55", "")}
# where QEMU's machine puts code, constants and RAM, where it is not mps2-an500's map: the harness'
# link.ld with these replacements (old text -> new, each must be there). mps2-an505 boots Secure with
# VTOR_S = 0x10000000: the Secure aliases. mps3-an547 boots with VTOR = 0 in a 512 KB ITCM: code
# there, constants (the model) and the .data image in the DDR at 0x60000000, RAM (the harness' 2 MB
# arena) in the 4 MB of SRAM at 0x21000000 (firmware/boards/mps3-an547/memory.ld's layout). mps2-an385
# has mps2-an500's map.
LINK_EDITS = {
    "mps2-an505": [("ORIGIN = 0x00000000", "ORIGIN = 0x10000000"), ("ORIGIN = 0x20000000", "ORIGIN = 0x38000000")],
    "mps3-an547": [("FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M",
                    "FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 512K\n    DDR (rx)   : ORIGIN = 0x60000000, LENGTH = 16M"),
                   ("RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4M", "RAM (rwx)  : ORIGIN = 0x21000000, LENGTH = 4M"),
                   ("ALIGN(16); } > FLASH", "ALIGN(16); } > DDR"),
                   ("KEEP(*(.init_array)) __init_array_end = .; } > FLASH",
                    "KEEP(*(.init_array)) __init_array_end = .; } > DDR"),
                   ("} > RAM AT > FLASH", "} > RAM AT > DDR")]}


def sh(cmd, **kw) -> str:
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(map(str, cmd))[:300]}\n"
                         f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r.stdout


def missing(mirror: Path) -> list[str]:
    gone = [m for m in MIRRORS if not (mirror / m / "repo").is_dir()]
    what = "the TFLM source mirrors" if len(gone) == len(MIRRORS) else ", ".join(gone)
    out = [f"{what} under {mirror}"] if gone else []
    need = [HARNESS / f for f in ("fetch_deps.sh", "build_lib.sh", "run_tflm_m7.py", "fw/main.cc")]
    out += [str(f) for f in need + [HARNESS.parent / "cmsis-nn/fw/startup.c"] if not f.is_file()]
    return out + [t for t in ("arm-none-eabi-g++", "qemu-system-arm") if not shutil.which(t)]


def tflm_library(mirror: Path, part: str) -> tuple[Path, dict]:
    """tflite-micro with its dependencies and the CMSIS-NN kernel library, built once per TFLM commit
    and core (the sources once per commit)."""
    tflm = CACHE / "tflite-micro"
    variant, arch, fpu = PARTS[part]
    head = sh(["git", "--git-dir", mirror / MIRRORS[0] / "repo", "rev-parse", "HEAD"]).strip()
    if not ((tflm / "COMMIT").is_file() and (tflm / "COMMIT").read_text().strip() == head):
        sh(["bash", HARNESS / "fetch_deps.sh", mirror, CACHE])
        shutil.rmtree(tflm / "gen_default", ignore_errors=True)   # libraries of the old commit
        for v, _, _ in PARTS.values():
            shutil.rmtree(tflm / f"gen_{v}", ignore_errors=True)
    script = HARNESS / "build_lib.sh"
    listed = re.search(r'KERNELS=\$\{KERNELS:-"([^"]*)"\}', script.read_text())
    if not listed:
        raise SystemExit(f"{script} changed: no KERNELS list to add {', '.join(EXTRA_KERNELS)} to")
    extra = [k for _, ks in EXTRA_KERNELS.values() for k in ks]
    built = tflm / f"gen_{variant}" / "kernel_objs.txt"
    have = {Path(line).stem for line in built.read_text().split()} if built.is_file() else set()
    if not (tflm / f"gen_{variant}" / "libtflm_subset.a").is_file() or not set(extra) <= have:
        print(f"building TF Lite Micro {head[:12]} + CMSIS-NN for {arch} into {CACHE} (once; ~10 min on 2 cores, "
              f"seconds when only kernels are added)", file=sys.stderr)
        if variant != "default":        # the harness builds for the M7: the same script, another core
            src, anchor = script.read_text(), "TARGET_ARCH=cortex-m7+fp FPU=fpv5-sp-d16"
            if anchor not in src:
                raise SystemExit(f"{script} changed: no '{anchor}' to re-point at {arch}")
            script = CACHE / f"build_lib_{variant}.sh"
            script.write_text(src.replace(anchor, f"TARGET_ARCH={arch} FPU={fpu}"))
        kernels = " ".join(listed.group(1).split() + extra)
        sh(["bash", script, tflm, variant], env={**os.environ, "PYVENV": sys.prefix, "KERNELS": kernels})
    pins = (tflm / "tensorflow/lite/micro/tools/make/downloads/COMMITS").read_text().splitlines()
    pins = dict(line.split() for line in pins)
    return tflm, {"tensorflow/tflite-micro": head, **{k.replace("+", "/"): v for k, v in pins.items()}}


def harness_copy(part: str) -> Path:
    """The harness copied into CACHE with one change: its smallest-arena bisection starts at
    arena_used_bytes() + 64, which is too small when AllocateTensors needs temporary room beyond what
    stays allocated (vit_sigmoid_gelu, vit_keras_mha); the copy doubles that start until it works.
    For a part other than the M7: the part's compiler flags and QEMU machine, and its addresses
    (LINK_EDITS); on ARMv6-M its calibration spin loop in unified assembler syntax."""
    variant = PARTS[part][0]
    dst = CACHE / ("harness" if variant == "default" else f"harness-{variant}")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(HARNESS, dst / "tflm-m7", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(HARNESS.parent / "cmsis-nn" / "fw", dst / "cmsis-nn" / "fw")
    main = dst / "tflm-m7" / "fw" / "main.cc"
    src, anchor = main.read_text(), "  if (!works(hi, false)) {"
    if anchor not in src:
        raise SystemExit(f"{HARNESS}/fw/main.cc changed: no '{anchor.strip()}' to start the arena search from")
    grow = "  while (hi < ARENA_MAX / 2 && !works(hi, false)) { lo = hi; hi *= 2; }\n"
    src = src.replace(anchor, grow + anchor, 1)
    t = load_target(part)
    if t.core in ("cortex-m0", "cortex-m0plus"):
        # GCC hands Thumb-1 inline assembly to the assembler in divided syntax, where the spin loop's
        # `subs` (the calibration of instructions per SysTick tick) is no Thumb16 instruction: the same
        # two instructions, in unified syntax
        spin = '__asm__ volatile("1: subs'
        if spin not in src:
            raise SystemExit(f"{HARNESS}/fw/main.cc changed: no '{spin}' spin loop")
        src = src.replace(spin, '__asm__ volatile(".syntax unified\\n\\t1: subs', 1)
    main.write_text(src)
    run = dst / "tflm-m7" / "run_tflm_m7.py"
    src, anchor = run.read_text(), "RESOLVER = {"
    if anchor not in src:
        raise SystemExit(f"{HARNESS}/run_tflm_m7.py changed: no '{anchor}' to add {', '.join(EXTRA_KERNELS)} to")
    run.write_text(src.replace(anchor, anchor + "".join(f"\n    {op!r}: {call!r}," for op, (call, _) in
                                                        EXTRA_KERNELS.items()), 1))
    if variant != "default":
        src = run.read_text()
        cpu = 'CPU = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"]'
        qemu = '"-M", "mps2-an500", "-cpu", "cortex-m7",'
        if cpu not in src or qemu not in src:
            raise SystemExit(f"{HARNESS}/run_tflm_m7.py changed: no M7 flags / machine to re-point")
        run.write_text(src.replace(cpu, f"CPU = {json.dumps(list(t.cflags))}")
                       .replace(qemu, f'"-M", "{t.emulator}",'))
        link = dst / "tflm-m7" / "fw" / "link.ld"
        ld = link.read_text()
        for old, new in LINK_EDITS.get(t.emulator, []):
            if old not in ld:
                raise SystemExit(f"{HARNESS}/fw/link.ld changed: no '{old}' to re-point at {t.emulator}")
            ld = ld.replace(old, new)
        link.write_text(ld)
    return dst / "tflm-m7"


def harness_inputs(name: str, work: Path) -> tuple[list[str], str]:
    """TAG.tflite, TAG_input.bin and TAG.json (ops, LiteRT BUILTIN_REF output) for run_tflm_m7.py."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    src = FIXTURES / f"{name}.tflite"
    shutil.copy(src, work / f"{name}.tflite")
    ip = Interpreter(model_path=str(src), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ip.allocate_tensors()
    i, o = ip.get_input_details()[0], ip.get_output_details()[0]
    x = np.random.default_rng(0).integers(-128, 128, i["shape"], dtype=np.int8)
    (work / f"{name}_input.bin").write_bytes(x.tobytes())
    ip.set_tensor(i["index"], x)
    ip.invoke()
    ref = ip.get_tensor(o["index"]).tobytes().hex()
    ops = [d["op_name"] for d in ip._get_ops_details()]
    (work / f"{name}.json").write_text(json.dumps({
        "op_sequence": ops, "op_counts": {k: ops.count(k) for k in sorted(set(ops))}, "n_ops": len(ops),
        "host": {"litert_builtin_ref": ref}}))
    return ops, ref


def run_tflm(tflm: Path, work: Path, tags: list[str], part: str) -> dict:
    out = work / f"tflm-{part}.json"
    sh([sys.executable, harness_copy(part) / "run_tflm_m7.py", "--tflm", tflm, "--models", work,
        "--tags", ",".join(tags), "--variant", PARTS[part][0], "--work", CACHE / "fw", "--json", out])
    return json.loads(out.read_text())


def run_edgeviz(name: str, work: Path, root: Path, part: str) -> dict:
    """edgeviz's figures, or {"does_not_fit": edgeviz's reason} where the model's arena does not fit
    the part's RAM (vit_relu on the stm32f103's 20 KB: edgeviz refuses the build)."""
    b = work / f"ev_{name}_{part}"
    cli = [sys.executable, "-m", "edgeviz.cli"]
    r = subprocess.run(list(map(str, [*cli, "build", FIXTURES / f"{name}.tflite", "--target", part, "--out", b])),
                       cwd=root, capture_output=True, text=True)
    if r.returncode != 0 and "does not fit" in r.stderr:
        return {"does_not_fit": r.stderr.strip().splitlines()[-1].removeprefix("edgeviz: error: ")}
    if r.returncode != 0:
        raise SystemExit(f"edgeviz build {name} --target {part} failed ({r.returncode})\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    prof = json.loads(sh([*cli, "profile", b, "--port", "emulator", "-n", "3", "--json"], cwd=root))
    meta = json.loads((b / "build.json").read_text())
    per_op: dict = {}
    for layer in prof.get("layers", []):        # layer names are <op>_<index>: instructions per op type
        op = layer["name"].rsplit("_", 1)[0]
        per_op[op] = per_op.get(op, 0) + layer["median"]
    return {"instructions": prof["end_to_end"]["median"], "arena": meta["arena_bytes"], "macs": meta["macs"],
            "build_s": round(meta["build_seconds"], 1), "per_op": per_op}


def edgeviz_source(root: Path) -> dict:
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"root": str(root), "git_head": git("rev-parse", "HEAD"),
            "tree_dirty_edgeviz": bool(git("status", "--porcelain", "--", "edgeviz", "firmware"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflm-mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--parts", default="stm32f746", help="of " + ",".join(PARTS))
    ap.add_argument("--json", type=Path, help="default results/tflm_m7.json (M7 alone) or results/tflm_cores.json")
    ap.add_argument("--edgeviz-root", type=Path, default=ROOT, help="the edgeviz checkout whose CLI is run")
    ap.add_argument("--before-root", type=Path, help="an earlier edgeviz checkout, run in the same session too: "
                    "its instructions (and per op) beside the current ones")
    a = ap.parse_args()
    parts = a.parts.split(",")
    if set(parts) - set(PARTS):
        raise SystemExit(f"--parts: one of {', '.join(PARTS)}")
    out_json = a.json or HERE / "results" / ("tflm_m7.json" if parts == ["stm32f746"] else "tflm_cores.json")
    gone = missing(a.tflm_mirror)
    if gone:
        print(f"bench_tflm: skipped, TF Lite Micro peer not available (missing: {', '.join(gone)})")
        return
    t0 = time.time()
    libs = {part: tflm_library(a.tflm_mirror, part) for part in parts}
    commits = libs[parts[0]][1]
    sys.path.insert(0, str(HARNESS))
    from run_tflm_m7 import RESOLVER      # the ops the harness can register with TFLM's resolver
    names = a.models.split(",")
    rows, notes, macs = [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench_tflm_") as d:
        work = Path(d)
        ops = {n: harness_inputs(n, work) for n in names}
        runnable = []
        for n in names:
            lack = sorted(set(ops[n][0]) - set(RESOLVER) - set(EXTRA_KERNELS))
            if lack:
                notes.append(f"{n}: TF Lite Micro has no {'/'.join(lack)} kernel, edgeviz figures only")
                print(notes[-1], file=sys.stderr)
            else:
                runnable.append(n)
        for part in parts:
            core = load_target(part).core
            tf = run_tflm(libs[part][0], work, runnable, part) if runnable else {}
            for n in names:
                ev = run_edgeviz(n, work, a.edgeviz_root.resolve(), part)
                fits = "does_not_fit" not in ev
                if not fits:
                    notes.append(f"{n} on {part}: edgeviz: {ev['does_not_fit']}")
                    print(notes[-1], file=sys.stderr)
                    ev = {"macs": macs.get(n), "build_s": "-", "instructions": "does not fit",
                          "arena": "does not fit"}
                macs.setdefault(n, ev["macs"])
                r = {"model": n, **({"part": part, "core": core} if parts != ["stm32f746"] else {}),
                     "ops": len(ops[n][0]), "macs": ev["macs"], "edgeviz_build_s": ev["build_s"]}
                t = tf.get(n)
                if t:
                    ti = statistics.median(t["invoke_instructions"])
                    ta = t["min_arena_bytes"]
                    r.update(tflm_instructions=ti, edgeviz_instructions=ev["instructions"],
                             tflm_over_edgeviz_instr=ti / ev["instructions"] if fits else "-", tflm_arena=ta,
                             edgeviz_arena=ev["arena"], edgeviz_over_tflm_arena=ev["arena"] / ta if fits else "-")
                    ref = bytes.fromhex(ops[n][1])
                    got = bytes.fromhex(t["output_hex"])
                    r["tflm_bytes_differ_from_litert_ref"] = f"{sum(p != q for p, q in zip(ref, got))}/{len(ref)}"
                    r["tflm_min_arena_invoke_ok"] = t["min_arena_invoke_ok"]
                    r["tflm_arena_used_bytes"] = t["arena_used_bytes"]
                    if ev["macs"]:
                        r["tflm_macs_per_instr"] = ev["macs"] / ti
                    # the part's largest RAM bank: TFLM's arena alone can outgrow it (harness: 4 MB on QEMU)
                    r["tflm_arena_fits_part_ram"] = ta <= max(b.size for b in load_target(part).ram)
                else:
                    r.update(tflm_instructions="no kernel", edgeviz_instructions=ev["instructions"],
                             tflm_over_edgeviz_instr="-", tflm_arena="no kernel", edgeviz_arena=ev["arena"],
                             edgeviz_over_tflm_arena="-", tflm_bytes_differ_from_litert_ref="-")
                if fits:
                    r["edgeviz_macs_per_instr"] = ev["macs"] / ev["instructions"]
                    r["edgeviz_per_op"] = ev["per_op"]
                if a.before_root and fits:
                    bf = run_edgeviz(n, work, a.before_root.resolve(), part)
                    if "does_not_fit" not in bf:
                        r["edgeviz_before_instructions"] = bf["instructions"]
                        r["edgeviz_before_per_op"] = bf["per_op"]
                        r["tflm_over_edgeviz_before_instr"] = ti / bf["instructions"] if t else "-"
                rows.append(r)
                print(f"{n} on {part}: done at {time.time() - t0:.0f} s", file=sys.stderr)
    for r in rows:          # a model that did not fit its part came first: its MACs from another part
        if r["macs"] is None and macs.get(r["model"]):
            r["macs"] = macs[r["model"]]
            if isinstance(r["tflm_instructions"], float | int):
                r["tflm_macs_per_instr"] = r["macs"] / r["tflm_instructions"]
    print_markdown_table(rows, skip=("macs", "tflm_min_arena_invoke_ok", "tflm_arena_used_bytes",
                                     "tflm_macs_per_instr", "edgeviz_macs_per_instr", "tflm_arena_fits_part_ram",
                                     "edgeviz_per_op", "edgeviz_before_per_op"))
    if a.before_root:
        print_per_op_table(rows)
    if len(parts) > 1:
        print_cores_table(rows, parts)
    for line in notes:
        print(line)
    kept, earlier = keep_other_parts(out_json, parts)
    machines = ", ".join(f"{p}: {load_target(p).emulator}" for p in dict.fromkeys([*kept, *parts]))
    write_text(out_json, json.dumps({
        "note": "QEMU -icount shift=0 instruction counts (SysTick x calibrated instructions per tick), not cycles, "
                f"each part on its QEMU machine ({machines}). TFLM: Invoke "
                "median of 3, TFLM's Makefile release flags (-Os core, -O2 kernels, CMSIS-NN) for the part's core, "
                "tflm_arena = smallest arena (bisection) with which AllocateTensors succeeds and Invoke gives "
                "the same output, persistent allocations included (the search starts from a size that works: "
                "tflm_arena_used_bytes, arena_used_bytes() after AllocateTensors, can be smaller). edgeviz: "
                "`edgeviz profile` end-to-end median of 3 on the part's emulator image, edgeviz_arena = "
                "build.json arena_bytes (the "
                "planned activation arena). Input: one random int8 tensor (numpy default_rng(0)); TFLM's "
                "output is compared with LiteRT BUILTIN_REF as information (TFLM rounds some ops differently).",
        "parts": {p: dict(zip(("tflm_variant", "tflm_target_arch", "tflm_fpu"), PARTS[p]))
                  for p in dict.fromkeys([*kept, *parts])},
        "tflm_commits": commits, "edgeviz": edgeviz_source(a.edgeviz_root.resolve()),
        **({"edgeviz_before": edgeviz_source(a.before_root.resolve())} if a.before_root else {}), "skipped": notes,
        "seconds": round(time.time() - t0, 1), **({"earlier_runs": earlier} if earlier else {}),
        "rows": [r for p in kept for r in kept[p]] + rows}, indent=1) + "\n")


def keep_other_parts(out_json: Path, parts: list[str]) -> tuple[dict, list]:
    """The rows of an existing multi-part results file for the parts this run leaves out, per part,
    and where they came from (that run's edgeviz, TFLM commits and earlier runs), so that one core
    can be measured (again) without losing the others. A single-part file (no "part" in its rows) or
    a run of all the file's parts keeps nothing."""
    if not out_json.is_file():
        return {}, []
    old = json.loads(out_json.read_text())
    kept: dict = {}
    for r in old.get("rows", []):
        if r.get("part") and r["part"] not in parts and r["part"] in PARTS:
            kept.setdefault(r["part"], []).append(r)
    if not kept:
        return {}, []
    earlier = [{**e, "parts": [p for p in e["parts"] if p in kept]} for e in old.get("earlier_runs", [])]
    earlier = [e for e in earlier if e["parts"]]
    mine = sorted(set(kept) - {p for e in earlier for p in e["parts"]})
    if mine:
        earlier.append({"parts": mine, "edgeviz": old.get("edgeviz"), "tflm_commits": old.get("tflm_commits"),
                        "seconds": old.get("seconds")})
    return kept, earlier


def print_per_op_table(rows) -> None:
    """edgeviz's instructions per op type, the --before-root checkout's and the current one's."""
    for r in rows:
        if "edgeviz_before_per_op" not in r:
            continue
        before, after = r["edgeviz_before_per_op"], r["edgeviz_per_op"]
        print(f"\n{r['model']}{' on ' + r['part'] if 'part' in r else ''}: instructions per op, before -> after")
        print("| op | before | after | before / after |")
        print("|---|---|---|---|")
        for op in sorted(set(before) | set(after), key=lambda o: -before.get(o, after.get(o, 0))):
            b, x = before.get(op, 0), after.get(op, 0)
            print(f"| {op} | {b:,.0f} | {x:,.0f} | {b / x:.2f} |" if x else f"| {op} | {b:,.0f} | {x:,.0f} | - |")


def print_cores_table(rows, parts) -> None:
    """MACs per instruction per model, edgeviz / TFLM + CMSIS-NN, a column per part, then each part's
    edgeviz over the first part's (the M7)."""
    short = {p: load_target(p).core.replace("cortex-m", "M") for p in parts}
    by = {(r["model"], r["part"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    print("\n| model | MACs | " + " | ".join(short[p] for p in parts) + " | "
          + " | ".join(f"{short[p]} / {short[parts[0]]}" for p in parts[1:]) + " |")
    print("|---|---|" + "---|" * (2 * len(parts) - 1))
    for m in models:
        cells = []
        for p in parts:
            r = by[(m, p)]
            tf = (f"{r['tflm_macs_per_instr']:.3f}" if "tflm_macs_per_instr" in r
                  else "no kernel" if r["tflm_instructions"] == "no kernel" else "-")
            ev = f"{r['edgeviz_macs_per_instr']:.3f}" if "edgeviz_macs_per_instr" in r else "does not fit"
            cells.append(f"{ev} / {tf}")
        base = by[(m, parts[0])].get("edgeviz_macs_per_instr")
        cells += [f"{by[(m, p)]['edgeviz_macs_per_instr'] / base:.3f}"
                  if base and "edgeviz_macs_per_instr" in by[(m, p)] else "-" for p in parts[1:]]
        macs = next((by[(m, p)]["macs"] for p in parts if by[(m, p)]["macs"]), None)
        print(f"| {m} | {f'{macs:,}' if macs else '-'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
