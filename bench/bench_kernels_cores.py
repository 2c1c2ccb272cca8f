"""edgeviz's matrix kernels beside CMSIS-NN's on every emulated Cortex-M core, in one run: MACs per
executed instruction of the linear and attention kernels (bench_kernels.py's shapes and firmware), and
of the CMSIS-NN functions TF Lite Micro calls for the same work, each built for the same core with the
same -mcpu flags and run on that core's QEMU machine (-icount shift=0: SysTick counts instructions).

Cores and flags come from the parts bench_cores.py measures whole models on (targets/*.toml): the M0+
(rp2040) and M3 (stm32f103) on mps2-an385, the M4 (stm32f411) on mps2-an386, the M7 (stm32f746, the
baseline) on mps2-an500, the M33 (stm32u585) on mps2-an505, the M55 (alif-e3) on mps3-an547. edgeviz's
kernels pick their path from the compiler's feature macros (portable C without the DSP extension,
SMLAD with it, Helium with MVE), and so does CMSIS-NN.

CMSIS-NN is built from its source tree (default ../shared/third_party/CMSIS-NN beside the repository,
or --cmsis-nn DIR) into a temporary folder, -O3 (its CMake default is -Ofast; the peer harness in
../shared/peers/cmsis-nn found -O3, -Ofast and -O2 within 0.005 MACs per instruction); nothing of it
comes into this repository. The functions compared:
  linear       arm_fully_connected_per_channel_s8 (per-channel multipliers, as edgeviz's linear)
  q.k, p.v     arm_batch_matmul_s8 (TF Lite Micro's BATCH_MATMUL; its right-hand side is always
               transposed: p.v reads V^T, so edgeviz's "p.v (V rows)" layout has no CMSIS-NN twin)
  and, on every shape, arm_nn_mat_mult_nt_t_s8, the matrix routine underneath (a second column).
On MVE cores the fully connected call reads its kernel sums (bias + offsets) from ctx->buf, filled by
arm_vector_sum_s8 outside the timed calls, as TF Lite Micro does once per layer at Prepare.

Checks: edgeviz's outputs equal edgeviz.intmath (bench_kernels.measure stops otherwise); CMSIS-NN's
are compared with the same integer products requantised by intmath: CMSIS-NN rounds twice (TFLite's
doubling high multiply, then a rounding shift), so a few outputs sit 1 LSB off; more than 1 LSB, or a
call that returns an error status, stops the run.

    python bench/bench_kernels_cores.py [--cores m0plus,m3,m4,m7,m33,m55] [--cmsis-nn DIR]
                                        [--markdown]      # writes results/kernels_cores.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_kernels as bk  # noqa: E402  (puts the kernel harness on sys.path)
from bench_kernels import harness  # noqa: E402

from edgeviz import intmath as im  # noqa: E402
from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.targets import load_target  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_CMSIS_NN = ROOT.parent / "shared" / "third_party" / "CMSIS-NN"
# one part per core (bench_cores.py's), the M7 (the baseline) first
PARTS = {"m7": "stm32f746", "m0plus": "rp2040", "m3": "stm32f103", "m4": "stm32f411",
         "m33": "stm32u585", "m55": "alif-e3"}
SHORT = {"cortex-m0plus": "M0+", "cortex-m3": "M3", "cortex-m4": "M4", "cortex-m7": "M7",
         "cortex-m33": "M33", "cortex-m55": "M55"}
CMSIS_SOURCES = ["FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c",
                 "FullyConnectedFunctions/arm_batch_matmul_s8.c",
                 "FullyConnectedFunctions/arm_vector_sum_s8.c",
                 "NNSupportFunctions/arm_nn_vec_mat_mult_t_s8.c",
                 "NNSupportFunctions/arm_nn_vec_mat_mult_t_per_ch_s8.c",
                 "NNSupportFunctions/arm_nn_mat_mult_nt_t_s8.c"]
CMSIS_OPT = "-O3"
KSUM_WORDS = 1024      # ctx->buf in int32: >= the widest output (576) and the most keys (65)

PRELUDE = r"""
#include <stdbool.h>
#include <stddef.h>
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
typedef arm_cmsis_nn_status (*fcc_fn)(const cmsis_nn_context *, const cmsis_nn_fc_params *,
    const cmsis_nn_per_channel_quant_params *, const cmsis_nn_dims *, const int8_t *,
    const cmsis_nn_dims *, const int8_t *, const cmsis_nn_dims *, const int32_t *,
    const cmsis_nn_dims *, int8_t *);
typedef arm_cmsis_nn_status (*bmm_fn)(const cmsis_nn_context *, const cmsis_nn_bmm_params *,
    const cmsis_nn_per_tensor_quant_params *, const cmsis_nn_dims *, const int8_t *,
    const cmsis_nn_dims *, const int8_t *, const cmsis_nn_dims *, int8_t *);
typedef arm_cmsis_nn_status (*mm_fn)(const int8_t *, const int8_t *, const int32_t *, int8_t *,
    const int32_t *, const int32_t *, const int32_t, const int32_t, const int32_t, const int32_t,
    const int32_t, const int32_t, const int32_t, const int32_t, const int32_t);
#define SINK(a, b) __asm__ volatile("" :: "r"(a), "r"(b) : "memory")
__attribute__((noinline)) static arm_cmsis_nn_status fcc_empty(const cmsis_nn_context *a,
    const cmsis_nn_fc_params *b, const cmsis_nn_per_channel_quant_params *c, const cmsis_nn_dims *d,
    const int8_t *e, const cmsis_nn_dims *f, const int8_t *g, const cmsis_nn_dims *h,
    const int32_t *i, const cmsis_nn_dims *j, int8_t *k)
{ SINK(e, k); (void)a; (void)b; (void)c; (void)d; (void)f; (void)g; (void)h; (void)i; (void)j;
  return ARM_CMSIS_NN_SUCCESS; }
__attribute__((noinline)) static arm_cmsis_nn_status bmm_empty(const cmsis_nn_context *a,
    const cmsis_nn_bmm_params *b, const cmsis_nn_per_tensor_quant_params *c, const cmsis_nn_dims *d,
    const int8_t *e, const cmsis_nn_dims *f, const int8_t *g, const cmsis_nn_dims *h, int8_t *i)
{ SINK(e, i); (void)a; (void)b; (void)c; (void)d; (void)f; (void)g; (void)h;
  return ARM_CMSIS_NN_SUCCESS; }
__attribute__((noinline)) static arm_cmsis_nn_status mm_empty(const int8_t *a, const int8_t *b,
    const int32_t *c, int8_t *d, const int32_t *e, const int32_t *f, const int32_t g,
    const int32_t h, const int32_t i, const int32_t j, const int32_t k, const int32_t l,
    const int32_t m, const int32_t n, const int32_t o)
{ SINK(a, d); (void)b; (void)c; (void)e; (void)f; (void)g; (void)h; (void)i; (void)j; (void)k;
  (void)l; (void)m; (void)n; (void)o; return ARM_CMSIS_NN_SUCCESS; }
static fcc_fn volatile fcc_fns[2] = {fcc_empty, arm_fully_connected_per_channel_s8};
static bmm_fn volatile bmm_fns[2] = {bmm_empty, arm_batch_matmul_s8};
static mm_fn volatile mm_fns[2] = {mm_empty, arm_nn_mat_mult_nt_t_s8};
/* the kernel sums of MVE's fully connected, and arm_batch_matmul_s8's scratch there */
static int32_t ksum[%d] __attribute__((aligned(16)));
static const cmsis_nn_context ctx = {ksum, sizeof(ksum)};
static const cmsis_nn_fc_params fcp = {0, 0, 0, {-128, 127}};
static const cmsis_nn_bmm_params bmp = {false, false, {0, 0, 0, {-128, 127}}};
static arm_cmsis_nn_status status = ARM_CMSIS_NN_SUCCESS;
static void keep_status(arm_cmsis_nn_status s) { if (s != ARM_CMSIS_NN_SUCCESS) status = s; }
/* .syntax unified: GCC passes ARMv6-M (M0+) inline assembly in divided syntax, where SUBS #imm fails */
__attribute__((noinline)) static void spin(uint32_t n)
{ __asm__ volatile(".syntax unified\n1: subs %%0, %%0, #1\n\tbne 1b" : "+r"(n)); }
""" % KSUM_WORDS


def cmsis_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, CMSIS-NN shift) for real, and intmath's right shift as its second use: CMSIS-NN's
    shift is a left shift (negative: right), intmath's s a right shift, s = 31 - shift."""
    m, s = im.quantize_multiplier(real)
    return m, 31 - s


def make_cmsis_program(rng):
    """The CMSIS-NN calls on bench_kernels' shapes, keyed like bench_kernels.make_program's cases.
    Returns (prog, cases); cases[key] = dict(fn, macs, reps, y, want) per measured call."""
    prog = harness.CProgram()
    cases: dict[str, dict] = {}
    prog("    systick_start();")
    for i, n in enumerate(bk.SPIN):
        prog(f"    {{ uint32_t t0 = systick_now(); spin({n}); uint32_t t1 = systick_now();"
             f' emit_u32("spin{i}", systick_elapsed(t0, t1)); }}')
    n_dims = 0

    def dims(n, h, w, c) -> str:
        nonlocal n_dims
        n_dims += 1
        prog.decls.append(f"static const cmsis_nn_dims d{n_dims} = {{{n}, {h}, {w}, {c}}};")
        return f"&d{n_dims}"

    def timed(key, fn_type, table, reps, args, y, want, macs, fn):
        prog(f"    keep_status({table}[1]({args}));")      # checked once, outside the timing
        bk.timed_calls(prog, fn_type, table, 1, key, reps, args)
        prog(f'    emit_hex("{key}_y", {y}, {want.size});')
        cases[key] = dict(fn=fn, macs=macs, reps=reps, want=want)

    def matmul(lhs, rhs, bias):
        """The int32 products lhs [rows][cols] x rhs [out][cols]^T (+ bias) and multipliers for an
        output spread of ~40 LSB: per channel for the linear layers, one for the attention products."""
        acc = lhs.astype(np.int64) @ rhs.astype(np.int64).T + (0 if bias is None else bias)
        real = 40 / max(float(acc.std()), 1.0)
        mq = [cmsis_multiplier(real * (rng.uniform(0.5, 2) if bias is not None else 1))
              for _ in range(rhs.shape[0])]
        mult = np.array([a for a, _ in mq], np.int32)
        shift = np.array([b for _, b in mq], np.int32)
        return acc, mult, shift

    for idx, (rows, k, out) in enumerate(bk.LINEAR_SHAPES):
        x = rng.integers(-128, 128, (rows, k), dtype=np.int8)
        w = rng.integers(-128, 128, (out, k), dtype=np.int8)
        bias = rng.integers(-20000, 20000, out, dtype=np.int32)
        acc, mult, shift = matmul(x, w, bias)
        want = im.requantize(acc, mult, 31 - shift)
        xc, wc, bc, mc, sc = (prog.const(a) for a in (x, w, bias, mult, shift))
        quant = f"qc{idx}"
        prog.decls.append(f"static const cmsis_nn_per_channel_quant_params {quant} = "
                          f"{{(int32_t *){mc}, (int32_t *){sc}}};")
        macs = rows * k * out
        reps = max(1, bk.TARGET_INSNS // (2 * macs))
        # MVE's fully connected takes bias + input_offset * sum(w) from ctx->buf (ignores bias)
        prog("#if defined(ARM_MATH_MVEI)\n"
             f"    keep_status(arm_vector_sum_s8(ksum, {k}, {out}, {wc}, 0, 0, {bc}));\n#endif")
        y = prog.buffer("int8_t", rows * out)
        timed(f"lin{idx}_fc", "fcc_fn", "fcc_fns", reps,
              f"&ctx, &fcp, &{quant}, {dims(rows, 1, 1, k)}, {xc}, {dims(k, 1, 1, out)}, {wc}, "
              f"{dims(1, 1, 1, out)}, {bc}, {dims(rows, 1, 1, out)}, {y}", y, want, macs,
              "arm_fully_connected_per_channel_s8")
        y = prog.buffer("int8_t", rows * out)
        timed(f"lin{idx}_mm", "mm_fn", "mm_fns", reps,
              f"{xc}, {wc}, {bc}, {y}, {mc}, {sc}, {rows}, {out}, {k}, 0, 0, -128, 127, {out}, {k}",
              y, want, macs, "arm_nn_mat_mult_nt_t_s8")
    # attention: bench_kernels' keys sc/av (one query row), scm/avt (ATTN_ROWS rows); p.v reads V^T
    for idx, (n, dh) in enumerate(bk.ATTN_SHAPES):
        for rows, tag in ((1, ""), (bk.ATTN_ROWS, "m")):
            for prod in ("qk", "pv"):
                if prod == "qk":
                    lhs = rng.integers(-128, 128, (rows, dh), dtype=np.int8)
                    rhs = rng.integers(-128, 128, (n, dh), dtype=np.int8)      # K
                    key = f"sc{tag}{idx}"
                else:
                    lhs = rng.integers(0, 20, (rows, n), dtype=np.int8)        # probabilities
                    rhs = rng.integers(-128, 128, (dh, n), dtype=np.int8)      # V^T
                    key = f"av{'t' if tag else ''}{idx}"
                acc, mult, shift = matmul(lhs, rhs, None)
                want = im.requantize(acc, mult, 31 - shift)
                lc, rc, mc, sc = (prog.const(a) for a in (lhs, rhs, mult, shift))
                quant = f"qt_{key}"
                prog.decls.append(f"static const cmsis_nn_per_tensor_quant_params {quant} = "
                                  f"{{{int(mult[0])}, {int(shift[0])}}};")
                macs = lhs.shape[0] * lhs.shape[1] * rhs.shape[0]
                reps = max(1, bk.TARGET_INSNS // (2 * macs))
                lr, cols, rr = lhs.shape[0], lhs.shape[1], rhs.shape[0]
                y = prog.buffer("int8_t", lr * rr)
                timed(f"{key}_fc", "bmm_fn", "bmm_fns", reps,
                      f"&ctx, &bmp, &{quant}, {dims(1, 1, lr, cols)}, {lc}, {dims(1, 1, rr, cols)}, "
                      f"{rc}, {dims(1, 1, lr, rr)}, {y}", y, want, macs, "arm_batch_matmul_s8")
                y = prog.buffer("int8_t", lr * rr)
                timed(f"{key}_mm", "mm_fn", "mm_fns", reps,
                      f"{lc}, {rc}, NULL, {y}, {mc}, {sc}, {lr}, {rr}, {cols}, 0, 0, -128, 127, "
                      f"{rr}, {cols}", y, want, macs, "arm_nn_mat_mult_nt_t_s8")
    prog('    emit_u32("status", (uint32_t)(status == ARM_CMSIS_NN_SUCCESS ? 0 : 1));')
    return prog, cases


def run_checked(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)[:300]}\n{res.stderr[-3000:]}")


def build_cmsis(src: str, cmsis: Path, core: str, work: Path) -> Path:
    """CMSIS-NN's sources from its tree and the harness' startup, compiled for core (-O3), linked
    with the harness' linker script for core's machine."""
    cpu, _, ld = harness.CORES[core]
    out = work / f"cmsis-{core}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cases.c").write_text(src)
    flags = [*cpu, CMSIS_OPT, "-std=gnu11", "-ffunction-sections", "-fdata-sections",
             "-I", str(harness.HERE), "-I", str(harness.KDIR), "-I", str(cmsis / "Include")]
    objs = []
    for c in [*(cmsis / "Source" / s for s in CMSIS_SOURCES), harness.HERE / "startup.c",
              out / "cases.c"]:
        obj = out / (c.stem + ".o")
        run_checked(["arm-none-eabi-gcc", *flags, "-c", str(c), "-o", str(obj)])
        objs.append(str(obj))
    elf = out / "fw.elf"
    run_checked(["arm-none-eabi-gcc", *cpu, "-nostartfiles", "--specs=nano.specs",
                 "-T", str(harness.HERE / ld), "-Wl,--gc-sections", *objs, "-o", str(elf)])
    return elf


def measure_cmsis(prog, cases, cmsis: Path, core: str, work: Path):
    got = harness.run(build_cmsis(prog.source(PRELUDE), cmsis, core, work), timeout=600, core=core)
    if got.get("status") != "0":
        raise SystemExit(f"CMSIS-NN returned an error status on {core}")
    ticks = [int(got[f"spin{i}"]) for i in range(len(bk.SPIN))]
    ipt = 2 * (bk.SPIN[1] - bk.SPIN[0]) / (ticks[1] - ticks[0])
    res = {}
    for key, case in cases.items():
        have = harness.hex_bytes(got[f"{key}_y"]).astype(np.int16)
        diff = np.abs(have - case["want"].ravel().astype(np.int16))
        if diff.max() > 1:
            raise SystemExit(f"CMSIS-NN {case['fn']} ({key}, {core}): output {int(diff.max())} LSB "
                             "from the intmath requantisation of the same products")
        res[key] = dict(fn=case["fn"], instructions=(int(got[f"{key}_1"]) - int(got[f"{key}_0"]))
                        * ipt / case["reps"], off_by_one=float((diff == 1).mean()))
    return ipt, res


def kernel_label(key: str, label: str) -> str:
    """bench_kernels' row labels, shortened for the tables."""
    return (label.replace("attn ", "").replace(" row ", " 1 row, ").replace(" rows ", " rows, ")
            .replace("linear 5x7->5", "linear 5x7->5 (toy)"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", default=",".join(PARTS), help="of " + ",".join(PARTS))
    ap.add_argument("--cmsis-nn", type=Path, default=DEFAULT_CMSIS_NN)
    ap.add_argument("--markdown", action="store_true", help="also print the README table")
    ap.add_argument("--json", type=Path, default=RESULTS / "kernels_cores.json")
    args = ap.parse_args(argv)
    if not (args.cmsis_nn / "Include" / "arm_nnfunctions.h").is_file():
        print(f"skipped: no CMSIS-NN source tree at {args.cmsis_nn}")
        return
    if harness.missing_tools():
        raise SystemExit(f"cannot run: {harness.missing_tools()}")
    names = args.cores.split(",")
    if "m7" not in names:
        names.insert(0, "m7")           # the baseline the other cores are compared with
    commit_file = args.cmsis_nn / "COMMIT"
    commit = commit_file.read_text().strip() if commit_file.is_file() else "unknown"
    ev_prog, expect = bk.make_program(np.random.default_rng(7))
    nn_prog, nn_cases = make_cmsis_program(np.random.default_rng(11))
    cores = {}
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t = load_target(PARTS[name])
            cpu, machine, _ = harness.CORES[t.core]
            if list(t.cflags) != cpu or t.emulator != machine:
                raise SystemExit(f"{t.name}: cflags / machine {t.cflags} {t.emulator} differ from the "
                                 f"kernel harness' {cpu} {machine} (tests/fixtures/kernel_qemu)")
            t0 = time.time()
            ipt_ev, ev = bk.measure(ev_prog, expect, ("ev", t.core, False), Path(tmp))
            ipt_nn, nn = measure_cmsis(nn_prog, nn_cases, args.cmsis_nn, t.core, Path(tmp))
            cores[name] = dict(core=t.core, part=t.name, machine=machine, cflags=cpu,
                               instr_per_tick=[ipt_ev, ipt_nn], ev=ev, nn=nn, seconds=time.time() - t0)
            print(f"{t.core} ({t.name}, {machine}): built and ran in {time.time() - t0:.0f} s; "
                  f"SysTick {ipt_ev:.3f} / {ipt_nn:.3f} instructions per tick", file=sys.stderr)
    total_s = time.time() - t_start

    rows, row_kernels = [], []
    for key, val in expect.items():
        if key.endswith("_y"):
            continue
        if key.startswith("row"):       # bench_kernels' row kernels: per element, no CMSIS-NN twin here
            n, _, label = val
            rk = dict(key=key, kernel=label, elements=n, cores={
                name: dict(ev_instructions=c["ev"][key][1]) for name, c in cores.items()})
            for c in rk["cores"].values():
                c["ev_vs_m7"] = rk["cores"]["m7"]["ev_instructions"] / c["ev_instructions"]
            row_kernels.append(rk)
            continue
        macs, _, label = val
        row = dict(key=key, kernel=kernel_label(key, label), macs=macs, cores={})
        for name, c in cores.items():
            ev_i = c["ev"][key][1]
            fc, mm = c["nn"].get(f"{key}_fc"), c["nn"].get(f"{key}_mm")
            row["cores"][name] = dict(
                ev_instructions=ev_i, ev_macs_per_instr=macs / ev_i,
                cmsis_fn=fc and fc["fn"], cmsis_instructions=fc and fc["instructions"],
                cmsis_macs_per_instr=fc and macs / fc["instructions"],
                cmsis_off_by_one=fc and fc["off_by_one"],
                cmsis_mm_instructions=mm and mm["instructions"],
                cmsis_mm_macs_per_instr=mm and macs / mm["instructions"])
        m7 = row["cores"]["m7"]["ev_macs_per_instr"]
        for c in row["cores"].values():
            c["ev_vs_m7"] = c["ev_macs_per_instr"] / m7
        rows.append(row)

    for name, c in cores.items():
        print(f"\n{c['core']} ({c['part']} on {c['machine']}, {' '.join(c['cflags'])}); QEMU -icount "
              f"instruction counts, not cycles; CMSIS-NN {commit[:8]} {CMSIS_OPT}")
        hdr = (f"{'kernel':34s} {'MACs':>7s} {'ev instr':>9s} {'ev MAC/i':>8s} {'NN instr':>9s} "
               f"{'NN MAC/i':>8s} {'ev/NN':>6s} {'nt_t MAC/i':>10s} {'ev vs M7':>8s}")
        print(hdr)
        print("-" * len(hdr))
        for r in rows:
            v = r["cores"][name]
            nn = (f"{v['cmsis_instructions']:9.0f} {v['cmsis_macs_per_instr']:8.3f} "
                  f"{v['ev_macs_per_instr'] / v['cmsis_macs_per_instr']:5.2f}x"
                  if v["cmsis_instructions"] else f"{'-':>9s} {'-':>8s} {'-':>6s}")
            mm = f"{v['cmsis_mm_macs_per_instr']:10.3f}" if v["cmsis_mm_instructions"] else f"{'-':>10s}"
            print(f"{r['kernel']:34s} {r['macs']:7d} {v['ev_instructions']:9.0f} "
                  f"{v['ev_macs_per_instr']:8.3f} {nn} {mm} {v['ev_vs_m7']:7.3f}x")
    worst = {n: min(r["cores"][n]["ev_vs_m7"] for r in rows) for n in cores}
    best = {n: max(r["cores"][n]["ev_vs_m7"] for r in rows) for n in cores}
    print("\nedgeviz MACs/instr vs the M7's, over the kernels: " + "; ".join(
        f"{SHORT[cores[n]['core']]} {worst[n]:.3f}-{best[n]:.3f}" for n in cores if n != "m7"))
    if row_kernels:
        print("\nedgeviz's row kernels, instructions per element (M7 instructions / the core's):")
        print(f"{'kernel':24s} " + " ".join(f"{SHORT[c['core']]:>14s}" for c in cores.values()))
        for r in row_kernels:
            print(f"{r['kernel']:24s} " + " ".join(
                f"{v['ev_instructions'] / r['elements']:7.2f} ({v['ev_vs_m7']:.3f})" for v in r["cores"].values()))
    print(f"bench time: {total_s:.0f} s for {len(cores)} cores")
    if args.markdown:
        print_markdown(rows, cores)
        if row_kernels:
            print_markdown_rows(row_kernels, cores)
    write_text(args.json, json.dumps(dict(
        note="QEMU 7.2 -icount shift=0 instruction counts (SysTick, calibrated per run), not cycles; "
             "per call, R calls minus R calls of an empty function with the same arguments; edgeviz's "
             "outputs equal intmath, CMSIS-NN's within 1 LSB of intmath's rounding of the same products "
             "(cmsis_off_by_one: the fraction 1 LSB off)",
        cmsis_nn_commit=commit, cmsis_nn_opt=CMSIS_OPT, edgeviz_opt="-O2 (the kernel harness')",
        seconds=total_s,
        cores={n: {k: v for k, v in c.items() if k not in ("ev", "nn")} for n, c in cores.items()},
        rows=rows, row_kernels=row_kernels), indent=1))


def print_markdown(rows, cores) -> None:
    """One table, a column per core: edgeviz / CMSIS-NN MACs per instruction, then M4 and M33 vs M7."""
    order = [n for n in ("m0plus", "m3", "m4", "m7", "m33", "m55") if n in cores]
    ratios = [n for n in ("m4", "m33") if n in cores]
    print("\n| kernel | MACs | " + " | ".join(SHORT[cores[n]["core"]] for n in order) + " | "
          + " | ".join(f"{SHORT[cores[n]['core']]} / M7" for n in ratios) + " |")
    print("|---|---|" + "---|" * (len(order) + len(ratios)))
    for r in rows:
        cells = []
        for n in order:
            v = r["cores"][n]
            nn = f"{v['cmsis_macs_per_instr']:.3f}" if v["cmsis_instructions"] else "-"
            cells.append(f"{v['ev_macs_per_instr']:.3f} / {nn}")
        cells += [f"{r['cores'][n]['ev_vs_m7']:.3f}" for n in ratios]
        print(f"| {r['kernel']} | {r['macs']:,} | " + " | ".join(cells) + " |")


def print_markdown_rows(row_kernels, cores) -> None:
    """Instructions per element of the row kernels per core, then the M4 and M33 against the M7."""
    order = [n for n in ("m0plus", "m3", "m4", "m7", "m33", "m55") if n in cores]
    ratios = [n for n in ("m4", "m33") if n in cores]
    print("\n| kernel | elements | " + " | ".join(SHORT[cores[n]["core"]] for n in order) + " | "
          + " | ".join(f"M7 / {SHORT[cores[n]['core']]}" for n in ratios) + " |")
    print("|---|---|" + "---|" * (len(order) + len(ratios)))
    for r in row_kernels:
        cells = [f"{r['cores'][n]['ev_instructions'] / r['elements']:.2f}" for n in order]
        cells += [f"{r['cores'][n]['ev_vs_m7']:.3f}" for n in ratios]
        print(f"| {r['kernel']} | {r['elements']:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
