"""MACs per executed instruction of ev_linear_s8 and the attention kernels (one query row, and
ATTN_ROWS query rows per pass over K/V as the fused chains call them) on the emulated Cortex-M7: the SMLAD/SXTB16 path against the portable C path (-DEV_PORTABLE), same run; with
--core cortex-m55, on the emulated Cortex-M55 (QEMU mps3-an547): the Helium (MVE, VMLADAVA) path
against the SMLAD path it replaces there (the same core built +nomve), same run. A second table gives
instructions per element of the row kernels (softmax, LayerNorm, residual add, table lookup): on the
M7 softmax and LayerNorm have a DSP path (ev_norm.c, ev_norm_m7.S) whose portable column is the C
code it replaced (still the M0+/M3/host path), so "port./DSP" is the speed-up over the previous M7
build; the M55 build has Helium versions (ev_norm_mve.c) and its +nomve build is that DSP path.
With --core cortex-m3 / cortex-m0plus (QEMU mps2-an385, which runs ARMv6-M code too): the
register-blocked tiles of the cores without DSP (ev_gemm_nodsp.c: ev_gemm_v7m.S, ev_gemm_v6m.S)
against the portable C path (-DEV_PORTABLE) on the same core, same run; the row kernels are the same
C in both builds there.

The kernels run bare metal under QEMU mps2-an500 with -icount shift=0, where every instruction
takes 1 ns of virtual time; SysTick on the processor clock (CLKSOURCE = 1) then counts
instructions. The conversion (instructions per tick) is measured first with a loop of known
length. Each kernel is called R times through a function pointer and the same number of calls to
an empty function with the same signature is subtracted, so the figure covers everything inside
the kernel (widening, tails, requantisation, stores) and nothing outside it. This is an
instruction count, not Cortex-M7 cycles: caches, TCM, flash wait states and dual issue are not
modelled. Outputs are checked against edgeviz.intmath as a side effect.

    python bench/bench_kernels.py [--core cortex-m7|cortex-m55|cortex-m3|cortex-m0plus]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests" / "fixtures" / "kernel_qemu"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import kernel_qemu as harness  # noqa: E402
from edgeviz import intmath as im  # noqa: E402

# 17 rows: a whole token sequence; 4 rows: the row blocks the fused chains pass (CHAIN_BLOCK)
# 4 x 32 / 16 inputs and row pairs: the small models' short reductions and a chain's last block of
# 4k + 2 tokens
LINEAR_SHAPES = [(17, 64, 192), (17, 64, 128), (1, 128, 64), (17, 192, 576), (17, 768, 192),
                 (4, 64, 192), (4, 192, 576), (5, 7, 5), (4, 32, 32), (4, 16, 32), (2, 48, 192),
                 (2, 256, 48)]
ATTN_SHAPES = [(17, 32), (17, 64), (65, 32)]   # (keys, head dim)
ATTN_ROWS = 4                                   # query rows per multi-row call (passes.CHAIN_BLOCK)
# row kernels: (kernel, rows, row length); softmax one row per call (as the attention chains call
# it), LayerNorm 17 rows per call (a token sequence), add and LUT over 17 tokens x 64 channels
ROW_SHAPES = [("softmax", 1, 5), ("softmax", 1, 17), ("softmax", 1, 65), ("softmax", 1, 197),
              ("layernorm", 17, 32), ("layernorm", 17, 64), ("layernorm", 17, 192), ("add", 1, 17 * 64),
              ("lut", 1, 17 * 64)]
TARGET_INSNS = 3_000_000                        # per measurement; SysTick wraps at 671 M
SPIN = (20_000, 220_000)                        # calibration loop lengths (2 instructions each)

PRELUDE = r"""
typedef void (*lin_fn)(const int8_t *, int, int, int, int, const int8_t *, const int32_t *, int,
                       const int32_t *, const int8_t *, const int8_t *, int8_t *, int);
typedef void (*row_fn)(const int8_t *, const int8_t *, int, int, int, int32_t, int32_t, int8_t *);
__attribute__((noinline)) static void lin_empty(const int8_t *a, int b, int c, int d, int e,
        const int8_t *f, const int32_t *g, int h, const int32_t *i, const int8_t *j,
        const int8_t *k, int8_t *l, int m)
{ __asm__ volatile("" :: "r"(a), "r"(l) : "memory"); (void)b; (void)c; (void)d; (void)e;
  (void)f; (void)g; (void)h; (void)i; (void)j; (void)k; (void)m; }
__attribute__((noinline)) static void row_empty(const int8_t *a, const int8_t *b, int c, int d,
        int e, int32_t f, int32_t g, int8_t *h)
{ __asm__ volatile("" :: "r"(a), "r"(h) : "memory"); (void)b; (void)c; (void)d; (void)e;
  (void)f; (void)g; }
typedef void (*rows_fn)(const int8_t *, int, int, const int8_t *, int, int, int, int32_t, int32_t,
                        int8_t *, int);
__attribute__((noinline)) static void rows_empty(const int8_t *a, int b, int c, const int8_t *d,
        int e, int f, int g, int32_t h, int32_t i, int8_t *j, int k)
{ __asm__ volatile("" :: "r"(a), "r"(j) : "memory"); (void)b; (void)c; (void)d; (void)e;
  (void)f; (void)g; (void)h; (void)i; (void)k; }
typedef void (*sm_fn)(const int8_t *, int, const uint16_t *, int8_t *);
__attribute__((noinline)) static void sm_empty(const int8_t *a, int b, const uint16_t *c, int8_t *d)
{ __asm__ volatile("" :: "r"(a), "r"(d) : "memory"); (void)b; (void)c; }
typedef void (*ln_fn)(const int8_t *, int, int, int, const int32_t *, const int64_t *, int64_t,
                      int8_t *, int);
__attribute__((noinline)) static void ln_empty(const int8_t *a, int b, int c, int d,
        const int32_t *e, const int64_t *f, int64_t g, int8_t *h, int i)
{ __asm__ volatile("" :: "r"(a), "r"(h) : "memory"); (void)b; (void)c; (void)d; (void)e;
  (void)f; (void)g; (void)i; }
typedef void (*add_fn)(const int8_t *, const int8_t *, int, int32_t, int32_t, int32_t, int8_t *);
__attribute__((noinline)) static void add_empty(const int8_t *a, const int8_t *b, int c, int32_t d,
        int32_t e, int32_t f, int8_t *g)
{ __asm__ volatile("" :: "r"(a), "r"(g) : "memory"); (void)b; (void)c; (void)d; (void)e; (void)f; }
typedef void (*lut_fn)(const int8_t *, int, const int8_t *, int8_t *);
__attribute__((noinline)) static void lut_empty(const int8_t *a, int b, const int8_t *c, int8_t *d)
{ __asm__ volatile("" :: "r"(a), "r"(d) : "memory"); (void)b; (void)c; }
static sm_fn volatile sm_fns[2] = {sm_empty, ev_softmax_s8};
static ln_fn volatile ln_fns[2] = {ln_empty, ev_layernorm_s8};
static add_fn volatile add_fns[2] = {add_empty, ev_add_s8};
static lut_fn volatile lut_fns[2] = {lut_empty, ev_lut_s8};
static lin_fn volatile lin_fns[2] = {lin_empty, ev_linear_s8};
static row_fn volatile row_fns[3] = {row_empty, ev_attn_scores_row, ev_attn_av_row};
static rows_fn volatile rows_fns[3] = {rows_empty, ev_attn_scores_rows, ev_attn_av_rows};
/* .syntax unified: GCC passes ARMv6-M (M0+) inline assembly in divided syntax, where SUBS #imm fails */
__attribute__((noinline)) static void spin(uint32_t n)
{ __asm__ volatile(".syntax unified\n1: subs %0, %0, #1\n\tbne 1b" : "+r"(n)); }
"""


M32 = 1300000000 >> 12     # a multiplier at shift 32, as quantize.py gives attention (real ~3e-4)


def timed_calls(prog, fn_type: str, table: str, index: int, name: str, reps: int, args: str) -> None:
    """Time reps calls of table[index] and reps calls of the empty function table[0] with the same
    arguments; emitted as name_1 and name_0."""
    for f in (0, index):
        prog(f"    {{ {fn_type} fn = {table}[{f}]; uint32_t t0 = systick_now();\n"
             f"      for (int r = 0; r < {reps}; r++) fn({args});\n"
             f'      uint32_t t1 = systick_now(); emit_u32("{name}_{min(f, 1)}", '
             f"systick_elapsed(t0, t1)); }}")


def make_program(rng):
    prog = harness.CProgram()
    expect = {}
    prog("    systick_start();")
    for i, n in enumerate(SPIN):
        prog(f"    {{ uint32_t t0 = systick_now(); spin({n}); uint32_t t1 = systick_now();"
             f' emit_u32("spin{i}", systick_elapsed(t0, t1)); }}')
    for idx, (rows, k, out) in enumerate(LINEAR_SHAPES):
        x = rng.integers(-128, 128, (rows, k), dtype=np.int8)
        w = rng.integers(-128, 128, (out, k), dtype=np.int8)
        bias = rng.integers(-20000, 20000, out, dtype=np.int32)
        ms = [im.quantize_multiplier(40 / (74 * 74 * np.sqrt(k)) * rng.uniform(0.5, 2))
              for _ in range(out)]
        m = np.array([a for a, _ in ms], np.int32)
        s = np.array([b for _, b in ms], np.int8)
        reps = max(1, TARGET_INSNS // (rows * k * out * 2))
        y = prog.buffer("int8_t", rows * out)
        args = (f"{prog.const(x)}, {k}, {rows}, {k}, {out}, {prog.const(w)}, {prog.const(bias)}, 0, "
                f"{prog.const(m)}, {prog.const(s)}, 0, {y}, {out}")
        timed_calls(prog, "lin_fn", "lin_fns", 1, f"lin{idx}", reps, args)
        prog(f'    emit_hex("lin{idx}_y", {y}, {rows * out});')
        expect[f"lin{idx}_y"] = im.linear(x, w, bias, m, s)
        expect[f"lin{idx}"] = (rows * k * out, reps, f"linear {rows}x{k}->{out}")
    for idx, (n, dh) in enumerate(ATTN_SHAPES):
        q = rng.integers(-128, 128, dh, dtype=np.int8)
        kv = rng.integers(-128, 128, (n, 3 * dh), dtype=np.int8)   # rows at a wider stride
        p = rng.integers(0, 20, n, dtype=np.int8)
        reps = max(1, TARGET_INSNS // (n * dh * 3))
        qc, kvc, pc = prog.const(q), prog.const(kv), prog.const(p)
        sc, av = prog.buffer("int8_t", n), prog.buffer("int8_t", dh)
        calls = {"sc": (1, f"{qc}, {kvc}, {3 * dh}, {n}, {dh}, 1300000000, 45, {sc}"),
                 "av": (2, f"{pc}, {kvc}, {3 * dh}, {n}, {dh}, 1300000000, 40, {av}")}
        for key, (fi, args) in calls.items():
            timed_calls(prog, "row_fn", "row_fns", fi, f"{key}{idx}", reps, args)
            expect[f"{key}{idx}"] = (n * dh, reps, f"attn {'q.k' if key == 'sc' else 'p.v'} row "
                                                   f"{n} keys x {dh}")
        prog(f'    emit_hex("sc{idx}_y", {sc}, {n});')
        prog(f'    emit_hex("av{idx}_y", {av}, {dh});')
        expect[f"sc{idx}_y"] = im.requantize(kv[:, :dh].astype(np.int32) @ q.astype(np.int32),
                                             1300000000, 45)
        expect[f"av{idx}_y"] = im.requantize(p.astype(np.int32) @ kv[:, :dh].astype(np.int32),
                                             1300000000, 40)
        # ATTN_ROWS query rows per call: q rows inside a wider row (as in the chains), scores and
        # probabilities [rows][n], outputs into rows of a wider tensor
        nr = ATTN_ROWS
        qm = rng.integers(-128, 128, (nr, 2 * dh), dtype=np.int8)
        pm = rng.integers(0, 20, (nr, n), dtype=np.int8)
        reps = max(1, TARGET_INSNS // (nr * n * dh * 2))
        # models quantise both attention products at shift 32 (ev__rk4); "avt" is p.v over the
        # qkv split's V^T ([dh][n], the layout the split writes), "avm" p.v over V's rows (the
        # --no-qkv-split / --no-fuse layout)
        qmc, pmc, vtc = prog.const(qm), prog.const(pm), prog.const(np.ascontiguousarray(kv[:, :dh].T))
        scm, avm, avt = (prog.buffer("int8_t", nr * n), prog.buffer("int8_t", nr * 2 * dh),
                         prog.buffer("int8_t", nr * 2 * dh))
        calls = {"scm": (1, f"{qmc}, {2 * dh}, {nr}, {kvc}, {3 * dh}, {n}, {dh}, {M32}, 32, {scm}, {n}",
                         "q.k"),
                 "avt": (1, f"{pmc}, {n}, {nr}, {vtc}, {n}, {dh}, {n}, {M32}, 32, {avt}, {2 * dh}",
                         "p.v (V^T)"),
                 "avm": (2, f"{pmc}, {n}, {nr}, {kvc}, {3 * dh}, {n}, {dh}, {M32}, 32, {avm}, {2 * dh}",
                         "p.v (V rows)")}
        for key, (fi, args, what) in calls.items():
            timed_calls(prog, "rows_fn", "rows_fns", fi, f"{key}{idx}", reps, args)
            expect[f"{key}{idx}"] = (nr * n * dh, reps, f"attn {what} {nr} rows {n} keys x {dh}")
        prog(f'    emit_hex("scm{idx}_y", {scm}, {nr * n});')
        prog(f'    emit_hex("avm{idx}_y", {avm}, {nr * 2 * dh});')
        prog(f'    emit_hex("avt{idx}_y", {avt}, {nr * 2 * dh});')
        expect[f"scm{idx}_y"] = im.requantize(qm[:, :dh].astype(np.int32)
                                              @ kv[:, :dh].astype(np.int32).T, M32, 32)
        avw = np.zeros((nr, 2 * dh), np.int8)
        avw[:, :dh] = im.requantize(pm.astype(np.int32) @ kv[:, :dh].astype(np.int32), M32, 32)
        expect[f"avm{idx}_y"] = expect[f"avt{idx}_y"] = avw
    for idx, (kind, rows, n) in enumerate(ROW_SHAPES):
        x = rng.integers(-128, 128, (rows, n), dtype=np.int8)
        y = prog.buffer("int8_t", rows * n)
        reps = max(1, TARGET_INSNS // (rows * n * 20))
        if kind == "softmax":   # scores of a typical layer (int8 at ~0.06)
            lut = im.softmax_lut(0.06)
            args, fn = f"{prog.const(x)}, {n}, {prog.const(lut)}, {y}", ("sm_fn", "sm_fns")
            want = im.softmax(x, lut)
        elif kind == "layernorm":
            g, b = im.layernorm_params(rng.uniform(0.5, 2, n), rng.uniform(-1, 1, n), 0.03)
            eps = im.layernorm_eps(1e-5, 0.05, n)
            args = (f"{prog.const(x)}, {n}, {rows}, {n}, {prog.const(g)}, {prog.const(b)}, {eps}LL, "
                    f"{y}, {n}")
            fn = ("ln_fn", "ln_fns")
            want = im.layernorm(x, g, b, eps)
        elif kind == "add":
            b = rng.integers(-128, 128, (rows, n), dtype=np.int8)
            ma, mb, sh = im.add_params(0.05, 0.03, 0.04)
            args, fn = (f"{prog.const(x)}, {prog.const(b)}, {n}, {ma}, {mb}, {sh}, {y}",
                        ("add_fn", "add_fns"))
            want = im.add(x, b, ma, mb, sh)
        else:
            lut = im.make_lut(lambda v: v / (1 + np.exp(-1.702 * v)), 0.05, 0.04)
            args, fn = f"{prog.const(x)}, {n}, {prog.const(lut)}, {y}", ("lut_fn", "lut_fns")
            want = lut[x.astype(np.int32) + 128]
        timed_calls(prog, fn[0], fn[1], 1, f"row{idx}", reps, args)
        prog(f'    emit_hex("row{idx}_y", {y}, {rows * n});')
        expect[f"row{idx}_y"] = want
        expect[f"row{idx}"] = (rows * n, reps, f"{kind} {rows} x {n}" if rows > 1 else f"{kind} {n}")
    return prog, expect


# per core: the two builds compared, (column label, harness core, portable)
BUILDS = {"cortex-m7": (("DSP", "cortex-m7", False), ("port.", "cortex-m7", True)),
          "cortex-m55": (("MVE", "cortex-m55", False), ("DSP", "cortex-m55-nomve", False)),
          "cortex-m3": (("v7M", "cortex-m3", False), ("port.", "cortex-m3", True)),
          "cortex-m0plus": (("v6M", "cortex-m0plus", False), ("port.", "cortex-m0plus", True))}


def measure(prog, expect, build, work: Path):
    label, core, portable = build
    elf = harness.build(prog.source(PRELUDE), work / f"{core}-{label}", portable=portable, core=core)
    got = harness.run(elf, timeout=300, core=core)
    spin_ticks = [int(got[f"spin{i}"]) for i in range(len(SPIN))]
    ipt = 2 * (SPIN[1] - SPIN[0]) / (spin_ticks[1] - spin_ticks[0])   # instructions per tick
    res = {}
    for key, val in expect.items():
        if key.endswith("_y"):
            have = harness.hex_bytes(got[key])
            if not np.array_equal(have, np.asarray(val).ravel()):
                raise SystemExit(f"{key}: output differs from intmath ({core}, {label})")
            continue
        macs, reps, _ = val
        insns = (int(got[f"{key}_1"]) - int(got[f"{key}_0"])) * ipt / reps
        res[key] = (macs, insns)
    return ipt, res


def linear_path(rows: int, k: int, buf: int = 384) -> str:
    """Which code path ev_linear_s8's DSP build takes (see firmware/kernels/ev_linear.c)."""
    kq = k // 4
    if kq < 2:
        return "scalar"
    if rows >= 4 and k % 16 == 0:   # with a bias (every shape here has one); "Sc": over input chunks
        s = "S" if 5 * kq <= buf else "Sc"
        return s if rows not in (6, 7, 11) else s + "+A/B"
    if rows >= 4 and buf // kq >= 6:
        return "A"
    if 2 * kq <= buf and k % 16 == 0 and rows <= 2:   # ev__r1c4 (a lone row), ev__rs2 (a pair)
        return "B r1" if rows == 1 else "B rs2"
    return "B" if 2 * kq <= buf else "C"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core", choices=sorted(BUILDS), default="cortex-m7",
                    help="cortex-m7 (mps2-an500): DSP vs portable; cortex-m55 (mps3-an547): MVE vs DSP; "
                         "cortex-m3 / cortex-m0plus (mps2-an385): their tiles vs portable")
    args = ap.parse_args(argv)
    if harness.missing_tools():
        raise SystemExit(f"cannot run: {harness.missing_tools()}")
    prog, expect = make_program(np.random.default_rng(7))
    (la, _, _), (lb, _, _) = BUILDS[args.core]
    with tempfile.TemporaryDirectory() as tmp:
        ipt_d, dsp = measure(prog, expect, BUILDS[args.core][0], Path(tmp))
        ipt_p, port = measure(prog, expect, BUILDS[args.core][1], Path(tmp))
    clock = ("expected 31.25: 1 ns per instruction, 32 MHz clock" if args.core == "cortex-m55" else
             "expected 40: 1 ns per instruction, 25 MHz clock")
    print(f"SysTick calibration: {ipt_d:.3f} / {ipt_p:.3f} instructions per tick ({clock})")
    print(f"Instruction counts under QEMU -icount on {args.core} (not cycles); outputs equal intmath.\n")
    hdr = (f"{'kernel':32s} {'path':>6s} {'MACs':>8s} {la + ' insns':>11s} {la + ' MAC/insn':>13s} "
           f"{lb + ' insns':>12s} {lb + ' MAC/insn':>15s} {la + '/' + lb:>10s}")
    print(hdr)
    print("-" * len(hdr))
    for key, val in expect.items():
        if key.endswith("_y") or key.startswith("row"):
            continue
        macs, _, label = val
        di, pi = dsp[key][1], port[key][1]
        path = "-"
        if key.startswith("lin") and args.core == "cortex-m7":
            rows, k, _ = LINEAR_SHAPES[int(key[3:])]
            path = linear_path(rows, k)
        elif args.core == "cortex-m55":
            path = "MVE"
        elif args.core in ("cortex-m3", "cortex-m0plus"):
            one_row = " row " in label or label.startswith("linear 1x")   # ARMv7-M: 1 x 4 for one row
            path = "1x4" if args.core == "cortex-m0plus" or one_row else "2x2"
        print(f"{label:32s} {path:>6s} {macs:8d} {di:11.0f} {macs / di:13.3f} {pi:12.0f} "
              f"{macs / pi:15.3f} {(macs / di) / (macs / pi):9.2f}x")
    what = ("softmax/LayerNorm's port. column is the C code the DSP path replaced"
            if args.core == "cortex-m7" else f"{lb}: the M7/M4/M33 DSP path")
    print(f"\nRow kernels, instructions per element ({la} vs {lb}, same run; {what}):\n")
    hdr = (f"{'kernel':32s} {'elements':>8s} {la + ' insns':>11s} {la + ' /elem':>11s} {lb + ' insns':>12s} "
           f"{lb + ' /elem':>12s} {lb + '/' + la:>10s}")
    print(hdr)
    print("-" * len(hdr))
    for key, val in expect.items():
        if not key.startswith("row") or key.endswith("_y"):
            continue
        n, _, label = val
        di, pi = dsp[key][1], port[key][1]
        print(f"{label:32s} {n:8d} {di:11.0f} {di / n:11.2f} {pi:12.0f} {pi / n:12.2f} {pi / di:9.2f}x")


if __name__ == "__main__":
    main()
