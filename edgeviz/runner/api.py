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
from ..targets import load_target
from . import protocol as P
from .builddir import Build, check_model, load_build
from .client import Device, open_port
from .firmware import build_firmware
from .flash import emulator_image, emulator_machine, flash  # noqa: F401  (re-exported: edgeviz.runner.api.flash)
from .qemu import EMULATOR_PORT, Emulator

__all__ = ["flash", "profile", "validate", "session", "check_model"]

EMULATOR_NOTE = ("instruction counts from QEMU -icount (1 per executed instruction), not core cycles: "
                 "caches, TCM, wait states, multi-cycle instructions and dual issue are not modelled; "
                 "measure latency on a board")


PARTS_NOTE = ("parts are counted by the part-profile image, whose kernels bracket their MAC loops, softmax, "
              "norms, requantisation passes and data movement (firmware/kernels/ev_parts.h); a layer's 'total' "
              "is its count in that image and 'other' the total minus the parts (model.c's loops and calls); "
              "'mac' includes the requantisation the matrix kernels fuse into each output; 'bound' is the most "
              "the parts can be off by (one counter tick per switch between parts)")
PARTS_CFLAGS = "-DEV_PROFILE_PARTS"


def port_lock_file(port: str) -> Path:
    """The lock file two edgeviz processes share for one port: a device path by the file it resolves to
    (a /dev/serial/by-id link and /dev/ttyACM0 are one port), a URL as written, except that its
    scheme and host are case-blind and localhost is 127.0.0.1."""
    if "://" in port:
        scheme, _, rest = port.partition("://")
        host, sep, tail = rest.partition(":")
        host = "127.0.0.1" if host.lower() == "localhost" else host.lower()
        key = f"{scheme.lower()}://{host}{sep}{tail}"
    else:
        key = os.path.realpath(port)
    return Path(tempfile.gettempdir()) / f"edgeviz-port-{hashlib.sha256(key.encode()).hexdigest()[:16]}.lock"


@contextlib.contextmanager
def session(build_dir, port: str, *, timeout: float = 1.0, retries: int = 3, image: tuple[Path, str] | None = None):
    """Yield (build, device, info) with the model id checked; boots and stops QEMU for 'emulator'
    (image: the (ELF, machine) to boot instead of the build's emulator image).
    build_dir may be an already loaded Build."""
    build = build_dir if isinstance(build_dir, Build) else load_build(build_dir)
    if not port:
        raise EdgevizError("no port given: pass a serial device (/dev/ttyACM0), socket://HOST:PORT, or 'emulator'")
    with contextlib.ExitStack() as stack:
        if port == EMULATOR_PORT:
            elf, machine = image or emulator_image(build)
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
        info = _first_info(dev, emu if port == EMULATOR_PORT else None)
        check_model(build, info, dev.name)
        yield build, dev, info


# A booting emulator on a busy machine (a megabyte image, other jobs on every core) may take several
# seconds to answer; while QEMU is alive, the first INFO is asked again up to this long.
EMULATOR_BOOT_SECONDS = 30.0


def _first_info(dev: Device, emu: Emulator | None):
    deadline = time.monotonic() + EMULATOR_BOOT_SECONDS
    while True:
        try:
            return dev.info()
        except EdgevizError as e:
            if emu is None or emu.dead() or time.monotonic() > deadline or "no reply within" not in str(e):
                raise


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


def parts_image(build: Build) -> tuple[Path, str]:
    """(ELF, QEMU machine) of the build's part-profile image: the emulator image compiled with
    EV_PROFILE_PARTS from the build's own firmware tree and model sources, into
    firmware/parts-<machine>/ (make redoes only what changed)."""
    machine = emulator_machine(build)
    fw, model = build.path / "firmware", build.path / "model"
    if not (fw / "Makefile").is_file() or not (model / "model.h").is_file():
        raise EdgevizError(f"{build.path} holds no firmware tree and model sources (firmware/, model/) to build "
                           f"the part-profile image from; rebuild it with edgeviz build")
    if not (fw / "kernels" / "ev_parts.h").is_file():
        raise EdgevizError(f"{build.path}'s firmware tree predates the part profile; rebuild it with this edgeviz")
    tgt = load_target(build.target)
    elf = build_firmware(model, machine, fw / f"parts-{machine}", fw_dir=fw, arch_flags=tgt.cflags,
                         flash_bytes=tgt.flash_bytes, ram_bytes=tgt.ram_bytes, extra_cflags=PARTS_CFLAGS)
    return elf, machine


def _runs(dev: Device, x: bytes, n: int, n_layers: int, timeout: float, infer_timeout: float,
          parts: bool) -> dict:
    """n timed inferences after one warm-up: their totals, per-layer counts, host round trips and,
    with parts, each run's part profile."""
    t = time.perf_counter()
    dev.infer(x, timeout=infer_timeout)                       # warm-up; also times one run
    warm = time.perf_counter() - t
    per_call = max(timeout, 3 * warm + 0.5) if warm < infer_timeout else infer_timeout
    runs = {"totals": [], "layers": [[] for _ in range(n_layers)], "wall": [], "parts": []}
    for _ in range(n):
        t = time.perf_counter()
        _, count = dev.infer(x, timeout=per_call)
        runs["wall"].append((time.perf_counter() - t) * 1e3)
        _total, per_layer = dev.profile()
        runs["totals"].append(count)
        for i, c in enumerate(per_layer):
            runs["layers"][i].append(c)
        if parts:
            split = dev.parts()
            if split is None:
                raise EdgevizError(f"{dev.name} runs an image without the part profile (no PARTS command)")
            for layer, c in zip(split, per_layer):
                layer["total"] = c
            runs["parts"].append(split)
    return runs


def _parts_result(runs: dict, layer_names: list[str], normal_total: float, elf: Path) -> tuple[dict, list[dict]]:
    """The part profile's summary and each layer's median parts (over the runs, key by key)."""
    per_layer = []
    for i in range(len(layer_names)):
        med = {k: float(statistics.median(run[i][k] for run in runs["parts"])) for k in P.PARTS + ("total", "bound")}
        # of the medians, so that a step's parts and other add up to its total exactly
        med["other"] = med["total"] - sum(med[k] for k in P.PARTS)
        per_layer.append(med)
    e2e = float(statistics.median(runs["totals"]))
    steps = sum(l["total"] for l in per_layer)
    summary = {
        "names": list(P.PARTS) + ["other"], "image": str(elf), "end_to_end": e2e,
        # the counters' own cost: the part image against the normal one, end to end
        "overhead": e2e / normal_total - 1 if normal_total else None,
        "share": {k: (sum(l[k] for l in per_layer) / steps if steps else 0.0) for k in list(P.PARTS) + ["other"]},
        "bound_share": sum(l["bound"] for l in per_layer) / steps if steps else 0.0,
        "note": PARTS_NOTE,
    }
    return summary, per_layer


def profile(build_dir, port: str, n: int = 10, *, input=None, timeout: float = 1.0,
            infer_timeout: float = 30.0, retries: int = 3, parts: bool = False) -> dict:
    """Run n inferences (after one warm-up) and report end-to-end and per-layer median/min/max.

    Counts are in the device's unit: "cycles" on a board (with ms at its clock), "instructions" on
    the emulator (no ms: they are not cycles). parts: also split each layer into the kinds of work
    its instructions do (MAC loops, softmax, norms, requantisation, data movement, other), from a
    part-profile image of the build run on the emulator (the normal image's counts stay as they are).
    """
    if n < 1:
        raise EdgevizError(f"n must be >= 1, got {n}")
    if parts and port != EMULATOR_PORT:
        raise EdgevizError("the part profile runs on the emulator (edgeviz builds the image with the part counters "
                           "for it): pass --port emulator")
    build = load_build(build_dir)
    x = (_input_bytes(build, input) if input is not None else
         np.random.default_rng(0).integers(-128, 128, build.input_bytes, dtype=np.int8).tobytes())
    with session(build, port, timeout=timeout, retries=retries) as (build, dev, info):
        runs = _runs(dev, x, n, len(build.layers), timeout, infer_timeout, parts=False)
        retries_used = dev.stats["retries"]
    unit = info["timer_unit"]
    clock = info["clock_hz"] if unit == "cycles" else None
    result = {
        "build_dir": str(build.path), "target": build.target, "board": info["board"], "port": port,
        "model_id": f"0x{build.model_id:08x}", "unit": unit, "clock_hz": info["clock_hz"], "n": n,
        "end_to_end": _stats(runs["totals"], clock),
        "layers": [{"name": name, **_stats(vals, clock)} for name, vals in zip(build.layers, runs["layers"])],
        "host_roundtrip_ms": {"median": statistics.median(runs["wall"]), "min": min(runs["wall"]),
                              "max": max(runs["wall"])},
        "retries": retries_used,
    }
    result["outside_layers_median"] = result["end_to_end"]["median"] - sum(l["median"] for l in result["layers"])
    if unit == "instructions":
        result["note"] = EMULATOR_NOTE
    if parts:
        image = parts_image(build)
        with session(build, port, timeout=timeout, retries=retries, image=image) as (build, dev, _info):
            split = _runs(dev, x, n, len(build.layers), timeout, infer_timeout, parts=True)
            result["retries"] += dev.stats["retries"]
        elf = image[0].resolve().relative_to(build.path.resolve())       # where in the build folder
        result["parts"], per_layer = _parts_result(split, build.layers, result["end_to_end"]["median"], elf)
        for layer, p in zip(result["layers"], per_layer):
            layer["parts"] = p
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
