"""The same int8 .tflite files under TF Lite Micro + CMSIS-NN (the whole-model peer) and under edgeviz,
on the same emulated Cortex-M7 (QEMU mps2-an500, -icount shift=0: SysTick counts instructions).

Per model: instructions per inference (TFLM: Invoke; edgeviz: `edgeviz profile` end to end), arena
bytes (TFLM: the smallest arena with which AllocateTensors and Invoke succeed, found by bisection on
the device, persistent allocations included; edgeviz: build.json's planned arena_bytes) and the
ratios. The TFLM side is the peer harness (README.md there): fetch_deps.sh extracts tflite-micro and
the trees its Makefile would download (CMSIS-NN among them) from bare git mirrors, build_lib.sh
builds them with TFLM's own Makefile and release flags (-Os core, -O2 kernels), run_tflm_m7.py
embeds a model in firmware and runs it. The library is built once per TFLM commit and cached in
~/.cache/edgeviz-tflm, outside the repository; nothing from TFLM or CMSIS-NN comes into it.

    .venv/bin/python bench/bench_tflm.py [--tflm-mirror /work/.mirror] [--models vit_relu,vit_gelu]
        [--json bench/results/tflm_m7.json] [--edgeviz-root DIR]

Missing mirrors, harness or cross tools: one line saying what is missing, exit 0. The input is one
random int8 tensor (seed 0); TFLM's output on it is compared with LiteRT's BUILTIN_REF kernels (as
information: TFLM rounds a few ops differently). Instruction counts are not cycles.
"""
from __future__ import annotations

import argparse
import json
import os
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

FIXTURES = ROOT / "tests" / "fixtures" / "tflite"
DEFAULT = ["vit_relu", "vit_sigmoid_gelu", "vit_gelu", "vit_keras_mha"]
HARNESS = Path(os.environ.get("TFLM_M7_HARNESS", "/work/shared/peers/tflm-m7"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeviz-tflm"
MIRRORS = ["tensorflow+tflite-micro", "google+flatbuffers", "google+gemmlowp", "google+ruy",
           "mborgerding+kissfft", "ARM-software+CMSIS_6", "ARM-software+Cortex_DFP", "ARM-software+CMSIS-NN"]
TARGET = "stm32f746"        # a Cortex-M7 part; edgeviz profiles its image on mps2-an500


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


def tflm_library(mirror: Path) -> tuple[Path, dict]:
    """tflite-micro with its dependencies and the CMSIS-NN kernel library, built once per TFLM commit."""
    tflm = CACHE / "tflite-micro"
    head = sh(["git", "--git-dir", mirror / MIRRORS[0] / "repo", "rev-parse", "HEAD"]).strip()
    lib = tflm / "gen_default" / "libtflm_subset.a"
    if not (lib.is_file() and (tflm / "COMMIT").read_text().strip() == head):
        print(f"building TF Lite Micro {head[:12]} + CMSIS-NN into {CACHE} (once; ~10 min on 2 cores)", file=sys.stderr)
        sh(["bash", HARNESS / "fetch_deps.sh", mirror, CACHE])
        sh(["bash", HARNESS / "build_lib.sh", tflm, "default"], env={**os.environ, "PYVENV": sys.prefix})
    pins = (tflm / "tensorflow/lite/micro/tools/make/downloads/COMMITS").read_text().splitlines()
    pins = dict(line.split() for line in pins)
    return tflm, {"tensorflow/tflite-micro": head, **{k.replace("+", "/"): v for k, v in pins.items()}}


def harness_copy() -> Path:
    """The harness copied into CACHE with one change: its smallest-arena bisection starts at
    arena_used_bytes() + 64, which is too small when AllocateTensors needs temporary room beyond what
    stays allocated (vit_sigmoid_gelu, vit_keras_mha); the copy doubles that start until it works."""
    dst = CACHE / "harness"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(HARNESS, dst / "tflm-m7", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(HARNESS.parent / "cmsis-nn" / "fw", dst / "cmsis-nn" / "fw")
    main = dst / "tflm-m7" / "fw" / "main.cc"
    src, anchor = main.read_text(), "  if (!works(hi, false)) {"
    if anchor not in src:
        raise SystemExit(f"{HARNESS}/fw/main.cc changed: no '{anchor.strip()}' to start the arena search from")
    grow = "  while (hi < ARENA_MAX / 2 && !works(hi, false)) { lo = hi; hi *= 2; }\n"
    main.write_text(src.replace(anchor, grow + anchor, 1))
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


def run_tflm(tflm: Path, work: Path, tags: list[str]) -> dict:
    out = work / "tflm.json"
    sh([sys.executable, harness_copy() / "run_tflm_m7.py", "--tflm", tflm, "--models", work, "--tags", ",".join(tags),
        "--work", CACHE / "fw", "--json", out])
    return json.loads(out.read_text())


def run_edgeviz(name: str, work: Path, root: Path) -> dict:
    b = work / f"ev_{name}"
    cli = [sys.executable, "-m", "edgeviz.cli"]
    sh([*cli, "build", FIXTURES / f"{name}.tflite", "--target", TARGET, "--out", b], cwd=root)
    prof = json.loads(sh([*cli, "profile", b, "--port", "emulator", "-n", "3", "--json"], cwd=root))
    meta = json.loads((b / "build.json").read_text())
    return {"instructions": prof["end_to_end"]["median"], "arena": meta["arena_bytes"], "macs": meta["macs"],
            "build_s": round(meta["build_seconds"], 1)}


def edgeviz_source(root: Path) -> dict:
    git = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"root": str(root), "git_head": git("rev-parse", "HEAD"),
            "tree_dirty_edgeviz": bool(git("status", "--porcelain", "--", "edgeviz", "firmware"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflm-mirror", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--json", type=Path, default=HERE / "results" / "tflm_m7.json")
    ap.add_argument("--edgeviz-root", type=Path, default=ROOT, help="the edgeviz checkout whose CLI is run")
    a = ap.parse_args()
    gone = missing(a.tflm_mirror)
    if gone:
        print(f"bench_tflm: skipped, TF Lite Micro peer not available (missing: {', '.join(gone)})")
        return
    t0 = time.time()
    tflm, commits = tflm_library(a.tflm_mirror)
    sys.path.insert(0, str(HARNESS))
    from run_tflm_m7 import RESOLVER      # the ops the harness can register with TFLM's resolver
    names = a.models.split(",")
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_tflm_") as d:
        work = Path(d)
        ops = {n: harness_inputs(n, work) for n in names}
        runnable = []
        for n in names:
            lack = sorted(set(ops[n][0]) - set(RESOLVER))
            if lack:
                notes.append(f"{n}: TF Lite Micro has no {'/'.join(lack)} kernel, edgeviz figures only")
                print(notes[-1], file=sys.stderr)
            else:
                runnable.append(n)
        tf = run_tflm(tflm, work, runnable) if runnable else {}
        for n in names:
            ev = run_edgeviz(n, work, a.edgeviz_root.resolve())
            r = {"model": n, "ops": len(ops[n][0]), "macs": ev["macs"], "edgeviz_build_s": ev["build_s"]}
            t = tf.get(n)
            if t:
                ti = statistics.median(t["invoke_instructions"])
                r.update(tflm_instructions=ti, edgeviz_instructions=ev["instructions"],
                         tflm_over_edgeviz_instr=ti / ev["instructions"], tflm_arena=t["min_arena_bytes"],
                         edgeviz_arena=ev["arena"], edgeviz_over_tflm_arena=ev["arena"] / t["min_arena_bytes"])
                ref = bytes.fromhex(ops[n][1])
                got = bytes.fromhex(t["output_hex"])
                r["tflm_bytes_differ_from_litert_ref"] = f"{sum(p != q for p, q in zip(ref, got))}/{len(ref)}"
                r["tflm_min_arena_invoke_ok"] = t["min_arena_invoke_ok"]
                r["tflm_arena_used_bytes"] = t["arena_used_bytes"]
            else:
                r.update(tflm_instructions="no kernel", edgeviz_instructions=ev["instructions"],
                         tflm_over_edgeviz_instr="-", tflm_arena="no kernel", edgeviz_arena=ev["arena"],
                         edgeviz_over_tflm_arena="-", tflm_bytes_differ_from_litert_ref="-")
            rows.append(r)
            print(f"{n}: done at {time.time() - t0:.0f} s", file=sys.stderr)
    print_markdown_table(rows, skip=("macs", "tflm_min_arena_invoke_ok", "tflm_arena_used_bytes"))
    for line in notes:
        print(line)
    write_text(a.json, json.dumps({
        "note": "QEMU mps2-an500 -icount shift=0 instruction counts (SysTick x 40), not cycles. TFLM: Invoke "
                "median of 3, TFLM's Makefile release flags (-Os core, -O2 kernels, CMSIS-NN), "
                "tflm_arena = smallest arena (bisection) with which AllocateTensors succeeds and Invoke gives "
                "the same output, persistent allocations included (the search starts from a size that works: "
                "tflm_arena_used_bytes, arena_used_bytes() after AllocateTensors, can be smaller). edgeviz: "
                "`edgeviz profile` end-to-end "
                f"median of 3 on {TARGET}'s mps2-an500 image, edgeviz_arena = build.json arena_bytes (the "
                "planned activation arena). Input: one random int8 tensor (numpy default_rng(0)); TFLM's "
                "output is compared with LiteRT BUILTIN_REF as information (TFLM rounds some ops differently).",
        "tflm_commits": commits, "edgeviz": edgeviz_source(a.edgeviz_root.resolve()), "skipped": notes,
        "seconds": round(time.time() - t0, 1), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
