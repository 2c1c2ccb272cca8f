"""flash / profile / validate a build on a board or on the emulator.

port: a device path (/dev/ttyACM0), a pyserial URL (socket://127.0.0.1:4321), or "emulator" to boot
the QEMU machine of the build's core (the target's `emulator`) with the build's emulator image for the
duration of the call.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import held_lock
from ..errors import EdgevizError
from .builddir import Build, check_model, load_build
from .client import Device, open_port
from .flash import emulator_image, flash  # noqa: F401  (re-exported: edgeviz.runner.api.flash)
from .qemu import EMULATOR_PORT, Emulator

__all__ = ["flash", "profile", "validate", "session", "check_model"]

EMULATOR_NOTE = ("instruction counts from QEMU -icount (1 per executed instruction), not core cycles: "
                 "caches, TCM, wait states, multi-cycle instructions and dual issue are not modelled; "
                 "measure latency on a board")


def port_lock_file(port: str) -> Path:
    """The lock file two edgeviz processes share for one port: a device path by the file it resolves to
    (a /dev/serial/by-id link and /dev/ttyACM0 are one port), a URL as written."""
    key = port if "://" in port else os.path.realpath(port)
    return Path(tempfile.gettempdir()) / f"edgeviz-port-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock"


@contextlib.contextmanager
def session(build_dir, port: str, *, timeout: float = 1.0, retries: int = 3):
    """Yield (build, device, info) with the model id checked; boots and stops QEMU for 'emulator'.
    build_dir may be an already loaded Build."""
    build = build_dir if isinstance(build_dir, Build) else load_build(build_dir)
    if not port:
        raise EdgevizError("no port given: pass a serial device (/dev/ttyACM0), socket://HOST:PORT, or 'emulator'")
    with contextlib.ExitStack() as stack:
        if port == EMULATOR_PORT:
            elf, machine = emulator_image(build)
            emu = stack.enter_context(Emulator(elf, machine=machine))
            dev = Device(open_port(emu.url, timeout), name="emulator", timeout=timeout, retries=retries,
                         alive=emu.dead)
        else:
            # One client per port: pyserial's exclusive open guards a serial device, but a socket:// device
            # (an emulator, a network bridge) takes a second connection and the two clients' frames would
            # interleave. Each `emulator` session boots its own QEMU, so it needs no lock.
            stack.enter_context(held_lock(port_lock_file(port), f"port {port!r} is busy: another edgeviz "
                                                               f"(profile, validate) is talking to it; wait for it "
                                                               f"to finish and try again"))
            dev = Device(open_port(port, timeout), name=f"device on {port}", timeout=timeout, retries=retries)
        stack.callback(dev.close)
        info = dev.info()
        check_model(build, info, dev.name)
        yield build, dev, info


def _input_bytes(build: Build, x) -> bytes:
    a = np.asarray(x)
    if a.size != build.input_bytes:
        raise EdgevizError(f"input has {a.size} values, model {build.path} takes {build.input_bytes} "
                           f"(shape {build.input_shape})")
    if a.dtype != np.int8:
        if not np.issubdtype(a.dtype, np.integer) or a.min() < -128 or a.max() > 127:
            raise EdgevizError("inputs must be int8 (quantize them with the build's input_scale first)")
        a = a.astype(np.int8)
    return np.ascontiguousarray(a).tobytes()


def _stats(values, clock_hz: int | None) -> dict:
    out = {"median": float(statistics.median(values)), "min": int(min(values)), "max": int(max(values))}
    if clock_hz:
        for k in ("median", "min", "max"):
            out[f"{k}_ms"] = out[k] / clock_hz * 1e3
    return out


def profile(build_dir, port: str, n: int = 10, *, input=None, timeout: float = 1.0,
            infer_timeout: float = 30.0, retries: int = 3) -> dict:
    """Run n inferences (after one warm-up) and report end-to-end and per-layer median/min/max.

    Counts are in the device's unit: "cycles" on a board (with ms at its clock), "instructions" on
    the emulator (no ms: they are not cycles).
    """
    if n < 1:
        raise EdgevizError(f"n must be >= 1, got {n}")
    build = load_build(build_dir)
    x = (_input_bytes(build, input) if input is not None else
         np.random.default_rng(0).integers(-128, 128, build.input_bytes, dtype=np.int8).tobytes())
    with session(build, port, timeout=timeout, retries=retries) as (build, dev, info):
        t = time.perf_counter()
        dev.infer(x, timeout=infer_timeout)                       # warm-up; also times one run
        warm = time.perf_counter() - t
        per_call = max(timeout, 3 * warm + 0.5) if warm < infer_timeout else infer_timeout
        totals, layers, wall = [], [[] for _ in build.layers], []
        for _ in range(n):
            t = time.perf_counter()
            _, count = dev.infer(x, timeout=per_call)
            wall.append((time.perf_counter() - t) * 1e3)
            total, per_layer = dev.profile()
            totals.append(count)
            for i, c in enumerate(per_layer):
                layers[i].append(c)
    unit = info["timer_unit"]
    clock = info["clock_hz"] if unit == "cycles" else None
    result = {
        "build_dir": str(build.path), "target": build.target, "board": info["board"], "port": port,
        "model_id": f"0x{build.model_id:08x}", "unit": unit, "clock_hz": info["clock_hz"], "n": n,
        "end_to_end": _stats(totals, clock),
        "layers": [{"name": name, **_stats(vals, clock)} for name, vals in zip(build.layers, layers)],
        "host_roundtrip_ms": {"median": statistics.median(wall), "min": min(wall), "max": max(wall)},
        "retries": dev.stats["retries"],
    }
    result["outside_layers_median"] = result["end_to_end"]["median"] - sum(l["median"] for l in result["layers"])
    if unit == "instructions":
        result["note"] = EMULATOR_NOTE
    return result


def validate(build_dir, port: str, inputs, expected_int8, float_logits=None, *, timeout: float = 1.0,
             infer_timeout: float = 30.0, retries: int = 3) -> dict:
    """Run every input on the device; compare its int8 outputs bit for bit with expected_int8
    (e.g. edgeviz.intmath's reference) and report top-1 agreement (also against float_logits)."""
    inputs = np.asarray(inputs)
    expected = np.asarray(expected_int8)
    if inputs.ndim < 1 or len(inputs) == 0:
        raise EdgevizError("validate needs at least one input")
    if len(expected) != len(inputs):
        raise EdgevizError(f"{len(inputs)} inputs but {len(expected)} expected outputs")
    if float_logits is not None and len(float_logits) != len(inputs):
        raise EdgevizError(f"{len(inputs)} inputs but {len(float_logits)} float logits")
    build = load_build(build_dir)
    if expected[0].size != build.output_bytes:
        raise EdgevizError(f"expected outputs have {expected[0].size} values, the model gives {build.output_bytes}")
    xs = [_input_bytes(build, x) for x in inputs]
    with session(build, port, timeout=timeout, retries=retries) as (build, dev, _info):
        outs, counts = [], []
        for x in xs:
            out, count = dev.infer(x, timeout=infer_timeout)
            outs.append(np.frombuffer(out, dtype=np.int8))
            counts.append(count)
    got = np.stack(outs)
    want = expected.reshape(len(got), -1).astype(np.int64)
    same = np.all(got.astype(np.int64) == want, axis=1)
    diff = np.abs(got.astype(np.int64) - want)
    top1 = got.argmax(axis=1)
    result = {
        "n": len(got), "bit_exact": int(same.sum()), "bit_exact_fraction": float(same.mean()),
        "mismatched": [int(i) for i in np.flatnonzero(~same)[:20]],
        "max_abs_diff": int(diff.max()),
        "top1_agreement": float(np.mean(top1 == want.argmax(axis=1))),
        "outputs": got,
        "counts_median": float(statistics.median(counts)),
    }
    if float_logits is not None:
        fl = np.asarray(float_logits).reshape(len(got), -1)
        result["top1_agreement_float"] = float(np.mean(top1 == fl.argmax(axis=1)))
    return result
