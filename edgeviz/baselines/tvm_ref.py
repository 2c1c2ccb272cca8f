"""TVM 0.27 Relax on its own, as a baseline for edgeviz: the same model, TVM's memory plan, and
TVM-generated plain-C fp32 kernels run on the emulated Cortex-M7.

Both baselines import the model exactly as edgeviz does (`edgeviz.frontend.relax_from_torch`, i.e.
torch.export -> `from_exported_program`) and lower it with TVM's own CPU pipeline for the C target
`{"kind": "c", "mcpu": "cortex-m7"}` (relax.backend.cpu_generic: library dispatch, LegalizeOps,
AnnotateTIROpPattern, FoldConstant, FuseOps, FuseTIR, RewriteDataflowReshape, ToNonDataflow,
RemovePurityChecking, CallTIRRewrite) up to and including StaticPlanBlockMemory. TVM has no int8
lowering for these models (a QDQ graph constant-folds to fp32), so the TVM figures are fp32.

    static_plan_bytes(module, example)     -> what StaticPlanBlockMemory allocates
    fp32_c_instructions(module, example)   -> executed instructions of TVM's C kernels on QEMU
    host_check(module, example)            -> the same C on the host vs PyTorch

How the plain C comes out of TVM 0.27 (internal APIs; the version is pinned in pyproject.toml):
each PrimFunc goes through the passes of TVM's default "s_tir" TIR pipeline up to, but not
including, MakePackedAPI; its body is wrapped in a `target` AttrStmt so that SplitHostDevice
outlines it into `<name>_kernel(T* a_ptr, ...)`, a function whose parameters are the buffers'
data pointers (TVM's own parameter order; it is read back from the host stub's call). Only those
kernels are handed to `target.build.c` (with SkipAssert, `tirx.disable_assert`), so MakePackedAPI
and LowerTVMBuiltin never run: the code needs <stdint.h>, <stdbool.h> and libm only. A generated
driver then calls the kernels in the order of the Relax main function, with every storage of the
static plan as one static byte array, tensors at their planned offsets, reshapes as aliases and
the weights as const arrays (flash on the MCU).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..frontend import quiet_native, relax_from_torch
from ..resources import data_dir

TARGET = {"kind": "c", "mcpu": "cortex-m7"}
ARM_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"]
QEMU = ["qemu-system-arm", "-machine", "mps2-an500", "-nographic", "-monitor", "none",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,sleep=off"]
BOARD = "mps2-an500"
TOLERANCE = 1e-3           # max |C - PyTorch| accepted by host_check / fp32_c_instructions

_CTYPE = {"float32": "float", "float64": "double", "int64": "int64_t", "int32": "int32_t",
          "int16": "int16_t", "int8": "int8_t", "uint8": "uint8_t", "bool": "bool"}


class TVMBaselineError(RuntimeError):
    """TVM produced something this baseline does not know how to turn into a C program."""


# ------------------------------------------------------------------ Relax: TVM's own lowering
def _target():
    import tvm
    return tvm.target.Target(TARGET)


def planned_module(module, example):
    """The Relax IRModule after TVM's CPU pipeline up to and including StaticPlanBlockMemory
    (main is in DPS form: R.memory.alloc_storage / alloc_tensor, calls to fused PrimFuncs)."""
    import torch
    import tvm
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    t = _target()
    with torch.no_grad(), quiet_native():
        mod = relax_from_torch(module, example)
        passes = (cpu.library_dispatch_passes(t) + cpu.legalize_passes(t)
                  + cpu.dataflow_lower_passes(t) + [relax.transform.StaticPlanBlockMemory()])
        with t:
            mod = tvm.transform.Sequential(passes)(mod)
    return mod


def _nbytes(ty) -> int:
    n = 1
    for s in ty.shape:
        n *= int(s)
    return n * np.dtype(str(ty.dtype)).itemsize


def _is_tensor_const(e) -> bool:
    import tvm
    return type(e).__name__ in ("GenericConst", "Constant") and isinstance(e.value, tvm.runtime.Tensor)


@dataclass
class _Plan:
    """Relax main after StaticPlanBlockMemory, reduced to what a C driver needs."""
    input_var: object
    input_bytes: int
    storages: list = field(default_factory=list)      # [(name, bytes)], in allocation order
    tensors: dict = field(default_factory=dict)       # relax Var -> C pointer expression
    extern_allocs: list = field(default_factory=list)  # [(name, bytes)] R.builtin.alloc_tensor
    consts: list = field(default_factory=list)        # [np.ndarray]
    calls: list = field(default_factory=list)         # [(prim func name, [arg])]
    output_var: object = None
    output_shape: tuple = ()


def _walk_main(mod) -> _Plan:
    import tvm
    from tvm import relax

    main = mod["main"]
    if len(main.params) != 1:
        raise TVMBaselineError(f"expected one input, main has {len(main.params)}")
    x = main.params[0]
    plan = _Plan(input_var=x, input_bytes=_nbytes(x.ty))
    plan.tensors[x] = "input"
    tuples = {}

    def arg(a):
        if isinstance(a, relax.Var):
            if a not in plan.tensors:
                raise TVMBaselineError(f"argument {a.name} used before it is allocated")
            return ("tensor", a)
        if _is_tensor_const(a):
            plan.consts.append(a.value.numpy())
            return ("const", len(plan.consts) - 1)
        if isinstance(a, relax.PrimValue):
            return ("prim", int(a.value))
        raise TVMBaselineError(f"unsupported kernel argument {type(a).__name__}: {a}")

    for block in main.body.blocks:
        for b in block.bindings:
            if not isinstance(b, relax.VarBinding):
                raise TVMBaselineError(f"unsupported binding {type(b).__name__}")
            v, var = b.value, b.var
            if isinstance(v, relax.Var):
                if v in plan.tensors:
                    plan.tensors[var] = plan.tensors[v]
                elif v in tuples:
                    tuples[var] = tuples[v]
                continue
            if isinstance(v, relax.Tuple):
                tuples[var] = list(v.fields)
                continue
            if not isinstance(v, relax.Call):
                raise TVMBaselineError(f"unsupported binding {var.name} = {type(v).__name__}")
            op = v.op
            if isinstance(op, tvm.ir.GlobalVar):
                plan.calls.append((op.name_hint, [arg(a) for a in v.args]))
                continue
            name = op.name
            if name == "relax.memory.alloc_storage":
                nbytes = int(v.args[0].values[0])
                sname = f"tvm_storage{len(plan.storages)}"
                plan.storages.append((sname, nbytes))
                plan.tensors[var] = sname               # the storage var itself
            elif name == "relax.memory.alloc_tensor":
                base = plan.tensors[v.args[0]]
                off = int(v.args[1].value) if hasattr(v.args[1], "value") else int(v.args[1])
                plan.tensors[var] = f"({base} + {off})"
            elif name == "relax.builtin.alloc_tensor":
                ename = f"tvm_extern{len(plan.extern_allocs)}"
                plan.extern_allocs.append((ename, _nbytes(var.ty)))
                plan.tensors[var] = ename
            elif name in ("relax.reshape", "relax.memory.view"):
                plan.tensors[var] = plan.tensors[v.args[0]]     # same bytes, new shape
            else:
                raise TVMBaselineError(f"unsupported Relax op {name} at {var.name}")

    ret = main.body.body
    fields = tuples.get(ret, [ret])
    if len(fields) != 1 or fields[0] not in plan.tensors:
        raise TVMBaselineError("expected main to return one tensor")
    plan.output_var = fields[0]
    plan.output_shape = tuple(int(s) for s in fields[0].ty.shape)
    if str(fields[0].ty.dtype) != "float32":
        raise TVMBaselineError(f"output dtype {fields[0].ty.dtype}, expected float32")
    return plan


def static_plan_bytes(module, example) -> dict:
    """Bytes of activation memory TVM's StaticPlanBlockMemory allocates for the model, fp32.

    Counted (`storage_bytes`, `storages`): every `R.memory.alloc_storage` in the Relax main
    function after TVM's CPU pipeline up to and including StaticPlanBlockMemory, with the byte
    size TVM gives it. StaticPlanBlockMemory reuses a storage for tensors whose lifetimes do not
    overlap, but each storage is a separate buffer (no offsets in one arena), so the sum is the
    memory a TVM deployment reserves for intermediate tensors.

    Not counted in `storage_bytes`, reported beside it: the model input (`input_bytes`, owned by
    the caller) and the output (`output_bytes`: TVM allocates the returned tensor with
    R.builtin.alloc_tensor outside the plan). `total_bytes` = storage + input + output, the figure
    to hold against an arena that also holds the input image and the logits. Never counted:
    weights (constants, flash), reshapes (views, no storage), scratch buffers inside a fused
    kernel (TIR-local; `fp32_c_instructions` reports the largest as `kernel_scratch_max_bytes`),
    and runtime structures (VM, tensor headers).

    `*_int8` fields are the fp32 figures divided by 4 (every tensor is fp32, so this is the same
    plan with 1-byte elements), for comparison with edgeviz's int8 arena.
    """
    return _plan_summary(_walk_main(planned_module(module, example)))


def _plan_summary(plan: "_Plan") -> dict:
    storage = sum(n for _, n in plan.storages)
    out = sum(n for _, n in plan.extern_allocs)
    total = storage + plan.input_bytes + out
    return {
        "storages": len(plan.storages),
        "storage_sizes": [n for _, n in plan.storages],
        "storage_bytes": storage,
        "input_bytes": plan.input_bytes,
        "output_bytes": out,
        "total_bytes": total,
        "storage_bytes_int8": storage // 4,
        "total_bytes_int8": total // 4,
        "dtype": "float32",
        "kernel_calls": len(plan.calls),
    }


# ------------------------------------------------------------------ TIR -> plain C kernels
def _tir_passes():
    """TVM 0.27's default s_tir pipeline (tvm/s_tir/pipeline.py, default config), stopped before
    MakePackedAPI; SplitHostDevice runs separately."""
    from tvm import s_tir, tirx
    st, tt = s_tir.transform, tirx.transform
    return [
        st.CanonicalizeLoop(), st.LowerCrossThreadReduction(), st.LowerInitBlock(),
        st.PlanAndUpdateBufferAllocationLocation(), st.ConvertBlocksToOpaque(),
        st.LiftThreadBinding(), st.ManifestSharedMemoryLocalStage(), st.CompactBufferAllocation(),
        st.LowerAutoCopy(), st.UnifyThreadBinding(), st.LowerMatchBuffer(), st.StmtSimplify(),
        st.InjectPermutedLayout(), st.AnnotateIrregularLoop(), st.InjectSoftwarePipeline(),
        st.TransformMmaBufferLayout(), st.LowerOpaqueBlock(), tt.FlattenBuffer(),
        tt.BF16ComputeLegalize(), tt.NarrowDataType(32), st.LoopPartition(), tt.VectorizeLoop(True),
        st.InjectVirtualThread(), st.InjectDoubleBuffer(), tt.StorageRewrite(),
        st.HoistIfThenElse(), tt.UnrollLoop(), st.RenormalizeSplitPattern(), tt.StmtSimplify(),
        tt.RemoveNoOp(), st.RewriteUnsafeSelect(), tt.CommonSubexprElim(),
        tt.FP8ComputeLegalize(), tt.VerifyMemory(),
    ]


@dataclass
class _Kernel:
    symbol: str              # C function name
    order: list              # kernel parameter i takes the PrimFunc's parameter order[i]
    ctypes: list             # C pointer type of each kernel parameter


_PRELUDE = """/* Generated by edgeviz.baselines.tvm_ref from TVM 0.27 target.build.c output:
 * plain C kernels (no packed API, no TVM runtime). */
#include <stdint.h>
#include <stdbool.h>
#include <math.h>
#define TVM_DLL
"""


def _kernels_c(mod) -> tuple[str, dict]:
    """Plain C for every PrimFunc of `mod`: (source, {prim func name: _Kernel})."""
    import tvm
    from tvm import tirx

    t = _target()
    prims = {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)}
    tmod = tirx.transform.BindTarget(t)(tvm.IRModule({n: f for n, f in prims.items()}))
    with tvm.transform.PassContext(config={"tirx.disable_assert": True}):
        tmod = tvm.transform.Sequential(_tir_passes())(tmod)
        wrapped = {}
        for gv, f in tmod.functions.items():
            f = f.with_body(tirx.AttrStmt(t, "target", 0, f.body))
            wrapped[gv.name_hint] = f.with_attr("global_symbol", gv.name_hint)
        split = tirx.transform.SplitHostDevice()(tvm.IRModule(wrapped))
        kernels = {}
        for name, f in prims.items():
            stub = split[name]
            call = None
            for s in (stub.body.seq if hasattr(stub.body, "seq") else [stub.body]):
                if type(s).__name__ == "Bind" and isinstance(getattr(s.value, "op", None), tvm.ir.GlobalVar):
                    call = s.value
                    break
            if call is None:
                raise TVMBaselineError(f"SplitHostDevice did not outline a kernel for {name}")
            kf = split[call.op.name_hint]
            order, ctypes = [], []
            for a, p in zip(call.args, kf.params):
                if getattr(getattr(a, "op", None), "name", "") != "tirx.buffer_data":
                    raise TVMBaselineError(f"kernel {call.op.name_hint} takes a non-buffer argument")
                idx = [i for i, q in enumerate(stub.params) if q.same_as(a.args[0])]
                if len(idx) != 1:
                    raise TVMBaselineError(f"cannot match kernel argument of {name}")
                order.append(idx[0])
                ctypes.append(_CTYPE[str(p.ty.element_type.dtype)] + "*")
            kernels[name] = _Kernel(call.op.name_hint, order, ctypes)
        kmod = tvm.IRModule({gv: f for gv, f in split.functions.items()
                             if gv.name_hint in {k.symbol for k in kernels.values()}})
        kmod = tirx.transform.LowerIntrin()(tirx.transform.SkipAssert()(kmod))
        src = tvm.get_global_func("target.build.c")(kmod, t).inspect_source()
    body = []
    for line in src.splitlines():
        if line.startswith(("#include", "#define TVM_EXPORTS", "void* __tvm_ffi__library_ctx")):
            continue
        body.append(line)
    out = _PRELUDE + "\n".join(body) + "\n"
    bad = re.findall(r"\b(TVM\w+|__tvm\w*|DLTensor)\b", out.replace("TVM_DLL", ""))
    if bad:
        raise TVMBaselineError(f"generated kernels still need the TVM runtime: {sorted(set(bad))[:5]}")
    return out, kernels


def _c_array(arr: np.ndarray) -> tuple[str, str]:
    arr = np.ascontiguousarray(arr).ravel()
    if arr.dtype == np.float32:
        vals = [float(v).hex() + "f" for v in arr.tolist()]
        return "float", ",".join(vals)
    if arr.dtype.kind in "iu":
        ct = _CTYPE[str(arr.dtype)]
        suf = "LL" if arr.dtype.itemsize == 8 else ""
        return ct, ",".join(f"{int(v)}{suf}" for v in arr.tolist())
    raise TVMBaselineError(f"unsupported constant dtype {arr.dtype}")


@dataclass
class CProgram:
    model_c: str              # kernels + driver: void tvm_model_run(const float *in, float *out)
    input_len: int
    output_shape: tuple
    storage_bytes: int
    kernel_scratch_max_bytes: int
    kernel_calls: int
    kernels: int


def generate_c(module, example, mod=None) -> CProgram:
    """TVM's fp32 kernels for `module` plus a static driver, as one C translation unit.
    `mod`: the output of planned_module(module, example), if the caller has it already."""
    mod = planned_module(module, example) if mod is None else mod
    plan = _walk_main(mod)
    src, kernels = _kernels_c(mod)
    lines = [src, "/* ---- driver: the Relax main function after StaticPlanBlockMemory ---- */"]
    for i, c in enumerate(plan.consts):
        ct, vals = _c_array(c)
        lines.append(f"static const {ct} tvm_const{i}[{max(c.size, 1)}] __attribute__((aligned(8))) = {{{vals}}};")
    for name, n in plan.storages:
        lines.append(f"static uint8_t {name}[{n}] __attribute__((aligned(16)));")
    for name, n in plan.extern_allocs:
        if name != plan.tensors[plan.output_var]:
            lines.append(f"static uint8_t {name}[{n}] __attribute__((aligned(16)));")
    lines.append("void tvm_model_run(const float *tvm_input, float *tvm_output)")
    lines.append("{")
    lines.append("    uint8_t *input = (uint8_t *)tvm_input;")
    out_name = plan.tensors[plan.output_var]
    if out_name.startswith("tvm_extern"):
        lines.append(f"    uint8_t *{out_name} = (uint8_t *)tvm_output;")
    for fname, args in plan.calls:
        k = kernels.get(fname)
        if k is None:
            raise TVMBaselineError(f"main calls {fname}, which is not a PrimFunc")
        cargs = []
        for idx, ct in zip(k.order, k.ctypes):
            kind, val = args[idx]
            if kind == "tensor":
                cargs.append(f"({ct}){plan.tensors[val]}")
            elif kind == "const":
                cargs.append(f"({ct})tvm_const{val}")
            else:
                raise TVMBaselineError(f"scalar argument to {fname}")
        lines.append(f"    {k.symbol}({', '.join(cargs)});")
    if not out_name.startswith("tvm_extern"):   # output planned inside a storage: copy it out
        n = int(np.prod(plan.output_shape))
        lines.append(f"    for (int i = 0; i < {n}; i++) tvm_output[i] = ((const float *){out_name})[i];")
    lines.append("}")
    scratch = 0
    for m in re.finditer(r"^\s+(float|int\d+_t|uint\d+_t|int8_t|bool|double) \w+\[(\d+)\];", src, re.M):
        size = {"float": 4, "double": 8, "bool": 1}.get(m.group(1))
        if size is None:
            size = int(re.sub(r"\D", "", m.group(1))) // 8
        scratch = max(scratch, size * int(m.group(2)))
    return CProgram(model_c="\n".join(lines) + "\n",
                    input_len=plan.input_bytes // 4, output_shape=plan.output_shape,
                    storage_bytes=sum(n for _, n in plan.storages),
                    kernel_scratch_max_bytes=scratch, kernel_calls=len(plan.calls),
                    kernels=len(kernels))


def _input_c(x: np.ndarray) -> str:
    _, vals = _c_array(np.asarray(x, dtype=np.float32))
    return (f"static const float tvm_in[{x.size}] __attribute__((aligned(8))) = {{{vals}}};\n"
            f"static float tvm_out[TVM_OUT_LEN] __attribute__((aligned(8)));\n")


_HOST_MAIN = r"""#include <stdio.h>
void tvm_model_run(const float *tvm_input, float *tvm_output);
%(data)s
int main(void)
{
    tvm_model_run(tvm_in, tvm_out);
    for (int i = 0; i < TVM_OUT_LEN; i++) printf("%%a\n", (double)tvm_out[i]);
    return 0;
}
"""

_MCU_MAIN = r"""#include <stdint.h>
#include "board.h"
void tvm_model_run(const float *tvm_input, float *tvm_output);
%(data)s
static void put(const char *s) { uint32_t n = 0; while (s[n]) n++; board_uart_write((const uint8_t *)s, n); }
static void put_u64(const char *name, uint64_t v)
{
    char buf[24]; int i = 23; buf[i] = 0;
    do { buf[--i] = (char)('0' + v %% 10u); v /= 10u; } while (v);
    put(name); put(" "); put(buf + i); put("\n");
}
__attribute__((noinline)) static void spin(uint32_t n)
{ __asm__ volatile("1: subs %%0, %%0, #1\n\tbne 1b" : "+r"(n)); }
int main(void)
{
    board_init();
    uint64_t t0, t1;
    /* SysTick starts from CVR = 0: its first reload comes without a wrap interrupt, so the board
     * counter steps back once right after board_init; measure only after that */
    spin(1000);
    /* counter check: spin(n) runs 2n loop instructions; the difference of two lengths cancels the call */
    t0 = board_counter(); spin(%(spin0)d); t1 = board_counter(); uint64_t s0 = t1 - t0;
    t0 = board_counter(); spin(%(spin1)d); t1 = board_counter(); uint64_t s1 = t1 - t0;
    put_u64("spin_delta", s1 - s0);
    t0 = board_counter(); t1 = board_counter();
    put_u64("overhead", t1 - t0);
    for (int r = 0; r < 2; r++) {
        t0 = board_counter();
        tvm_model_run(tvm_in, tvm_out);
        t1 = board_counter();
        put_u64("instructions", t1 - t0);
    }
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)tvm_out;
    put("out ");
    for (uint32_t i = 0; i < sizeof tvm_out; i++) { char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]}; board_uart_write((const uint8_t *)h, 2); }
    put("\n");
    board_uart_flush();
    board_exit(0);
}
"""
SPIN = (100_000, 1_100_000)


def _run(cmd, cwd, timeout, what):
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise TVMBaselineError(f"{what} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def _example_numpy(example) -> np.ndarray:
    return example.detach().cpu().numpy().astype(np.float32) if hasattr(example, "detach") \
        else np.asarray(example, dtype=np.float32)


def _torch_out(module, example) -> np.ndarray:
    import torch
    with torch.no_grad():
        y = module.eval()(example)
    if isinstance(y, (tuple, list)):
        y = y[0]
    return y.detach().cpu().numpy().astype(np.float32)


def host_check(module, example, work_dir: str | Path | None = None, prog: CProgram | None = None) -> dict:
    """Compile TVM's C (kernels + driver) with the host gcc, run it on `example`, compare with
    PyTorch. Returns {max_abs_err, output, reference, ok}."""
    prog = prog or generate_c(module, example)
    x = _example_numpy(example)
    ref = _torch_out(module, example)
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise TVMBaselineError("no host C compiler (gcc) found")
    with tempfile.TemporaryDirectory(prefix="tvm_host_", dir=work_dir) as d:
        d = Path(d)
        n_out = int(np.prod(prog.output_shape))
        (d / "tvm_model.c").write_text(prog.model_c)
        (d / "main.c").write_text(f"#define TVM_OUT_LEN {n_out}\n"
                                  + _HOST_MAIN % {"data": _input_c(x.ravel())})
        _run([cc, "-O2", "-std=c11", "-w", "tvm_model.c", "main.c", "-lm", "-o", "host"],
             d, 300, "host build")
        res = _run([str(d / "host")], d, 60, "host run")
    y = np.array([float.fromhex(s) for s in res.stdout.split()], dtype=np.float32).reshape(ref.shape)
    err = float(np.max(np.abs(y - ref)))
    return {"max_abs_err": err, "ok": err <= TOLERANCE, "output": y, "reference": ref}


def _firmware_dir() -> Path:
    return data_dir("firmware")


def fp32_c_instructions(module, example, work_dir: str | Path | None = None,
                        keep_dir: str | Path | None = None, timeout: float = 600.0,
                        prog: CProgram | None = None, linker_script: str | Path | None = None) -> dict:
    """Executed instructions of one inference with TVM-generated plain-C fp32 kernels on the
    emulated Cortex-M7 (QEMU mps2-an500, -icount shift=0: SysTick counts instructions, through
    the board layer firmware/boards/mps2-an500). Built with arm-none-eabi-gcc -mcpu=cortex-m7
    -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard -O2 against firmware/startup and the board layer;
    weights are const arrays in flash, the planned storages static arrays in RAM, kernel scratch
    on the stack. The same C is first checked on the host against PyTorch (max abs error <=
    TOLERANCE) and the MCU output against the host output.

    Counts `tvm_model_run` only (all kernel calls of the Relax main, nothing else), minus the cost
    of reading the counter. An instruction count, not Cortex-M7 cycles (QEMU models no caches,
    wait states or dual issue); resolution 40 instructions (one SysTick tick at 25 MHz).
    """
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            raise TVMBaselineError(f"{tool} is not installed")
    prog = prog or generate_c(module, example)
    host = host_check(module, example, work_dir, prog)
    if not host["ok"]:
        raise TVMBaselineError(f"TVM C output differs from PyTorch by {host['max_abs_err']:.3g} on the host")
    x = _example_numpy(example)
    fw = _firmware_dir()
    n_out = int(np.prod(prog.output_shape))
    stack = 8192 + ((prog.kernel_scratch_max_bytes + 1023) // 1024) * 1024
    ctx = tempfile.TemporaryDirectory(prefix="tvm_mcu_", dir=work_dir)
    with ctx as d:
        d = Path(keep_dir) if keep_dir else Path(d)
        d.mkdir(parents=True, exist_ok=True)
        (d / "tvm_model.c").write_text(prog.model_c)
        (d / "main.c").write_text(f"#define TVM_OUT_LEN {n_out}\n" + _MCU_MAIN % {
            "data": _input_c(x.ravel()), "spin0": SPIN[0], "spin1": SPIN[1]})
        bdir = fw / "boards" / BOARD
        cmd = ["arm-none-eabi-gcc", *ARM_FLAGS, "-O2", "-std=c11", "-w", "-ffunction-sections",
               "-fdata-sections", "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
               f"-I{fw / 'runtime'}", f"-I{fw / 'boards'}", f"-I{bdir}", f"-L{fw / 'linker'}",
               "-T", str(linker_script or bdir / "memory.ld"), f"-Wl,--defsym=__stack_size={stack}",
               "-Wl,-Map=fw.map", str(fw / "startup" / "startup.c"), str(bdir / "board.c"),
               "tvm_model.c", "main.c", "-lm", "-o", "fw.elf"]
        _run(cmd, d, 600, "firmware build")
        size = _run(["arm-none-eabi-size", "-A", "fw.elf"], d, 60, "size").stdout
        dis = _run(["arm-none-eabi-objdump", "-d", "fw.elf"], d, 120, "objdump").stdout
        f64 = len(re.findall(r"\.f64\b", dis))
        res = _run([*QEMU, "-kernel", "fw.elf"], d, timeout, "QEMU run")
    vals = {}
    for line in (res.stdout + "\n" + res.stderr).splitlines():
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            vals.setdefault(parts[0], []).append(parts[1].strip())
    try:
        runs = [int(v) for v in vals["instructions"]]
        overhead = int(vals["overhead"][0])
        spin_delta = int(vals["spin_delta"][0])
        y = np.frombuffer(bytes.fromhex(vals["out"][0]), dtype="<f4").reshape(prog.output_shape)
    except (KeyError, ValueError) as e:
        raise TVMBaselineError(f"unexpected firmware output ({e}):\n{res.stdout[-2000:]}") from None
    counter_scale = 2 * (SPIN[1] - SPIN[0]) / spin_delta       # 1.0 when 40 instructions/tick holds
    if abs(counter_scale - 1.0) > 0.01:
        raise TVMBaselineError(f"board counter is not an instruction count here: a loop of "
                               f"{2 * (SPIN[1] - SPIN[0])} instructions read {spin_delta}")
    sect = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\w+)\s+(\d+)", size, re.M)}
    mcu_err = float(np.max(np.abs(y - host["output"])))
    return {
        "instructions": runs[-1] - overhead,
        "runs": runs,
        "counter_overhead": overhead,
        "counter_scale": counter_scale,
        "host_max_abs_err": host["max_abs_err"],
        "mcu_vs_host_max_abs_err": mcu_err,
        "f64_instructions": f64,
        "kernel_calls": prog.kernel_calls,
        "kernels": prog.kernels,
        "kernel_scratch_max_bytes": prog.kernel_scratch_max_bytes,
        "stack_bytes": stack,
        "flash_bytes": sum(sect.get(s, 0) for s in (".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")),
        "ram_static_bytes": sum(sect.get(s, 0) for s in (".data", ".bss")),
        "board": BOARD,
    }


def measure(module, example, instructions: bool = True, **kw) -> dict:
    """Both baselines from one TVM lowering: {"static_plan": static_plan_bytes(...),
    "fp32_c": fp32_c_instructions(...) or None}. kw goes to fp32_c_instructions."""
    mod = planned_module(module, example)
    out = {"static_plan": _plan_summary(_walk_main(mod)), "fp32_c": None}
    if instructions:
        out["fp32_c"] = fp32_c_instructions(module, example, prog=generate_c(module, example, mod), **kw)
    return out
