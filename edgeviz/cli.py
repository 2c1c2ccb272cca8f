"""The `edgeviz` command. Every user error is one line on stderr and exit code 2."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sys

import click
from rich.console import Console
from rich.table import Table

from . import demo, device_cli
from .clikit import handler
from .errors import EdgevizError
from .frontend import ModelFile
from .inputs import parse_floats, search_record
from .lower import OPTIMIZE
from .passes import Switches
from .project import analyze, build, default_switches
from .search import cli as search_cli
from .targets import Target, available_targets, load_target

__version__ = "0.1.0"


def _switches(a) -> Switches:
    """The flags over the target's default switches (the qkv split: on for an MCU, off for an FPGA). The
    qkv split is part of operator integration: with --no-fuse it is off (and asking for it is an error),
    so build.json records the schedule that ran."""
    if a.no_fuse and a.qkv_split:
        raise EdgevizError("--qkv-split is part of operator integration; it cannot be combined with --no-fuse")
    default = default_switches(a.target)
    split = default.split_qkv if a.qkv_split is None else a.qkv_split
    split = split and not a.no_fuse
    if a.kv_per_head and not split:
        raise EdgevizError("--kv-per-head is part of the qkv split; it cannot be combined with --no-qkv-split or "
                           "--no-fuse" + (" (off by default on FPGA targets)" if a.qkv_split is None and not a.no_fuse
                                          else ""))
    fpga = load_target(a.target).kind == "fpga"
    if a.kv_per_head and fpga:
        raise EdgevizError(f"--kv-per-head: {a.target} builds without it (the FPGA attention templates stream every "
                           "head's K and V from one bank and have no per-head form)")
    if a.kv_per_head is None and not fpga:
        # a search's folder: build as its judge planned, so the arena equals the searched peak
        a.kv_per_head = bool(search_record(a.model).get("switches", {}).get("kv_per_head")) or None
    per_head = (default.kv_per_head if a.kv_per_head is None else a.kv_per_head) and split
    return Switches(fuse=not a.no_fuse, patch_decompose=not a.no_patch_decompose,
                    token_overwrite=not a.no_token_overwrite, split_qkv=split, pad_rank=default.pad_rank,
                    kv_per_head=per_head, stream_scores=default.stream_scores and not a.no_fuse)


def _switch_line(r: dict) -> str:
    """The switches a build or analysis ran with, and why they differ from the flags if they do."""
    names = {"split_qkv": "qkv-split"}
    line = "switches: " + ", ".join(f"{names.get(k, k.replace('_', '-'))} {'on' if v else 'off'}"
                                    for k, v in r["switches"].items())
    return line + (f" ({r['schedule_note']})" if r.get("schedule_note") else "")


@contextlib.contextmanager
def _status(enabled: bool = True):
    """A transient spinner on a terminal (nothing when piped): yields a callback taking the stage."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda msg: None
        return
    with console.status("edgeviz") as st:
        yield lambda msg: st.update(f"edgeviz: {msg}")


def _model(a):
    return ModelFile(a.model, a.trust_pickle)


def cmd_build(a) -> int:
    fpga = {k: getattr(a, k) for k in ("reuse", "reuse_file", "csim") if getattr(a, k)}
    with _status(not a.json) as say:
        s = build(_model(a), a.target, a.out, a.calib, _switches(a), progress=say, mean=parse_floats(a.mean),
                  std=parse_floats(a.std), optimize=a.optimize, **fpga)
    if s.get("kind") == "fpga":
        e = s["estimate"]
        if a.json:
            print(json.dumps(s))
        else:
            t = e["totals"]
            print(f"built HLS project {a.out} for {e['board']} ({e['part']}): BRAM18K {t['bram18k']}, DSP {t['dsp']}, "
                  f"LUT {t['lut']}, FF {t['ff']}, latency {e['latency_cycles']:,} cycles = {e['latency_s'] * 1e3:.3f} ms "
                  f"[{e['source']}]" + (f"; C simulation bit-exact on {s['csim']['vectors']} vectors" if "csim" in s else ""))
        return 0
    if a.json:
        print(json.dumps({k: s.get(k) for k in ("target", "core", "model_id", "peak_sram", "peak_sram_banks",
                                                "lower_bound_bytes", "flash_estimate", "elf_flash_bytes", "macs",
                                                "accuracy", "elf", "board", "emulator", "emulator_elf", "switches",
                                                "schedule_note", "build_seconds")}
                         | {"plan": os.path.join(a.out, "plan.json")}))
    else:
        acc = s.get("accuracy")
        print(f"built {a.out}: peak SRAM {s['peak_sram']:,} B "
              f"({', '.join(f'{b} {n:,}' for b, n in s['peak_sram_banks'].items() if n)}), "
              f"flash {s.get('elf_flash_bytes', s['flash_estimate']):,} B, {s['macs']:,} MACs"
              + (f", top-1 float {acc['float_top1']:.3f} / int8 {acc['int8_top1']:.3f}" if acc else "")
              + f", {s['build_seconds']} s")
        print(_switch_line(s))
        if not s.get("board") and s.get("emulator_elf"):
            print(f"note: {s['target']} has no board layer yet; the build holds the {s['core']} image for the emulator "
                  f"({s['emulator_elf']}): run it with --port emulator")
    return 0


def cmd_analyze(a) -> int:
    r = analyze(_model(a), a.target, _switches(a), a.reuse, a.optimize)
    if a.json:
        print(json.dumps({k: v for k, v in r.items() if k != "report"}))
        return 0
    if r.get("kind") == "fpga":
        print(r["report"])
        print(_switch_line(r))
        return 0
    tab = Table(title=f"edgeviz analyze ({r['target']})")
    for col in ("layer", "MACs", "params", "flash B", "live SRAM B", "overwrites"):
        tab.add_column(col, justify="left" if col in ("layer", "overwrites") else "right")
    for l in r["layers"]:
        tab.add_row(l["layer"], f"{l['macs']:,}", f"{l['params']:,}", f"{l['flash']:,}", f"{l['sram_live']:,}",
                    l["overwrites"] or "")
    Console().print(tab)
    extra = r["executed_macs"] - r["macs"]
    print(f"total: {r['macs']:,} MACs" + (f" (the steps run {extra:,} more: recomputed rows, padded ranks)" if extra else "")
          + f", {r['params']:,} params, flash {r['flash']:,} B, peak SRAM {r['peak_sram']:,} B "
          f"(lower bound {r['lower_bound_bytes']:,} B) -> {'fits' if r['fits'] else 'does NOT fit: ' + r['why']}")
    print(_switch_line(r))
    return 0


def target_facts(t: Target) -> dict:
    """What `edgeviz targets` shows of a target: an MCU's core, memory, clock and the QEMU machine that
    stands in for it; an FPGA's part, clock and resources."""
    d = {"name": t.name, "kind": t.kind, "description": t.description}
    if t.kind == "mcu":
        d.update(core=t.core, ram_bytes=t.ram_bytes,
                 ram_banks=[{"name": b.name, "origin": b.origin, "size": b.size} for b in t.ram],
                 flash_bytes=t.flash_bytes, clock_hz=t.clock_hz, emulator=t.emulator, board=t.board,
                 cflags=t.cflags)
    else:
        d.update(part=t.part, clock_hz=t.clock_hz, bram18k=t.bram18k, dsp=t.dsp, lut=t.lut, ff=t.ff)
    return d


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KB" if n < 1 << 20 else f"{n / (1 << 20):,.4g} MB"


def cmd_targets(a) -> int:
    facts = [target_facts(load_target(n)) for n in available_targets()]
    if a.json:
        print(json.dumps(facts))
        return 0
    tab = Table(title="edgeviz targets (targets/*.toml)")
    for col in ("name", "kind", "core / part", "RAM", "flash", "clock", "emulator", "board layer"):
        tab.add_column(col, justify="right" if col in ("RAM", "flash", "clock") else "left")
    for d in facts:
        if d["kind"] == "mcu":
            ram = _kib(d["ram_bytes"]) + (f" ({len(d['ram_banks'])} banks)" if len(d["ram_banks"]) > 1 else "")
            tab.add_row(d["name"], d["kind"], d["core"], ram, _kib(d["flash_bytes"]), f"{d['clock_hz'] / 1e6:g} MHz",
                        d["emulator"], d["board"] or "none yet")
        else:
            tab.add_row(d["name"], d["kind"], d["part"], f"{d['bram18k']:,} BRAM18K", "-", f"{d['clock_hz'] / 1e6:g} MHz",
                        "-", "HLS project")
    Console(width=max(120, Console().width)).print(tab)
    if any(d["kind"] == "mcu" and not d["board"] for d in facts):
        print("board layer 'none yet': builds for the target carry only the emulator image (firmware/fw-<emulator>.elf), "
              "run with --port emulator")
    return 0


def switch_options(f):
    """The schedule switches (and --trust-pickle) that build and analyze share."""
    for opt in reversed([
        click.option("--trust-pickle", is_flag=True,
                     help="read a pickled nn.Module (.pt saved with torch.save(model)); loading it runs code from "
                          "the file, so only for files you trust. Prefer torch.export.save (.pt2) or ONNX"),
        click.option("--no-fuse", is_flag=True, help="switch off operator integration (ablation)"),
        click.option("--no-patch-decompose", is_flag=True, help="materialise the im2col patch matrix (ablation)"),
        click.option("--no-token-overwrite", is_flag=True, help="never write outputs over dying inputs (ablation)"),
        click.option("--qkv-split/--no-qkv-split", default=None,
                     help="keep only K and V for all tokens and compute each query row inside the attention, so "
                          "the [N, 3E] qkv tensor never exists. Default: on for MCU targets (up to 20% less arena "
                          "for 5-12% more instructions), off for FPGA targets (less activation BRAM, but a second "
                          "LayerNorm / q datapath per block: no lower total BRAM, 1.1-3.4x the latency)"),
        click.option("--optimize", type=click.Choice(OPTIMIZE), default="ram", show_default=True,
                     help="ram: the schedule with the smallest arena; time: of the schedules that fit the target, "
                          "the one the latency model estimates fastest (the whole [N, 3E] qkv, a low-rank factor "
                          "kept whole, on DSP cores the chains' last blocks merged: more arena, fewer instructions)"),
        click.option("--kv-per-head/--no-kv-per-head", default=None,
                     help="with the qkv split: make K and V one head at a time and run that head's attention for "
                          "every query row before the next head's (x + out + 2NE/H bytes live at the attention "
                          "instead of 3NE; the LayerNorm recomputed per head: 11-30% less arena on models with 3+ heads "
                          "for 12-42% more instructions). Off by default; asked for on an MCU target it is kept "
                          "where it plans a smaller arena; FPGA targets build without it"),
    ]):
        f = opt(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeviz", message="%(prog)s %(version)s")
def cli():
    """Vision transformers on microcontrollers and FPGAs."""


@cli.command("build", help="compile a model to an int8 firmware project (or an HLS project for an FPGA)")
@click.argument("model")
@click.option("--target", default="stm32f746", show_default=True, help="board (targets/*.toml)")
@click.option("-o", "--out", default="build", show_default=True, help="output folder (replaced atomically)")
@click.option("--calib", help=".npz with an array x of model inputs (used as given), or a folder of images "
                              "(read with --mean/--std); default: built-in digits")
@click.option("--mean", help="per-channel mean subtracted from image pixels in [0, 1], e.g. 0.485,0.456,0.406; "
                             "recorded in the build for --calib, validate and profile image folders")
@click.option("--std", help="per-channel std the pixels are divided by after --mean, e.g. 0.229,0.224,0.225")
@click.option("--json", is_flag=True, help="print a machine-readable summary")
@click.option("--csim", is_flag=True, help="FPGA: compile and run the C simulation with g++")
@click.option("--reuse", type=int, help="FPGA: one reuse factor for every layer (default: smallest that fits)")
@click.option("--reuse-file", help="FPGA: JSON {layer or op: reuse factor}")
@switch_options
def build_command(**kw):
    if kw["reuse"] is not None and kw["reuse_file"]:
        raise click.UsageError("--reuse and --reuse-file exclude each other")
    return handler(cmd_build)(**kw)


@cli.command("analyze", help="MACs, params, flash and peak SRAM per layer, without building")
@click.argument("model")
@click.option("--target", default="stm32f746", show_default=True)
@click.option("--json", is_flag=True)
@click.option("--reuse", type=int, help="FPGA: reuse factor to estimate (default: smallest that fits)")
@switch_options
def analyze_command(**kw):
    return handler(cmd_analyze)(**kw)


@cli.command("targets", help="the boards edgeviz builds for: core, RAM, flash, clock and the emulator that stands in")
@click.option("--json", is_flag=True, help="print the facts as JSON (RAM banks and compiler flags included)")
def targets_command(**kw):
    return handler(cmd_targets)(**kw)


for _part in (search_cli, device_cli, demo):
    # subcommands that live with their part: search/train, flash/profile/validate, demo
    _part.add_cli(cli)


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="edgeviz", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.UsageError as e:            # a wrong flag or value: one line, like every user error
        print(f"edgeviz: error: {e.format_message()}" + (f" (see edgeviz {e.ctx.info_name} --help)"
                                                        if e.ctx is not None and e.ctx.parent is not None else ""),
              file=sys.stderr)
        return 2
    except click.ClickException as e:
        print(f"edgeviz: error: {e.format_message()}", file=sys.stderr)
        return 2
    except click.Abort:
        print("edgeviz: interrupted", file=sys.stderr)
        return 130
    except EdgevizError as e:
        print(f"edgeviz: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                     # the machine, not edgeviz: a full disk, a path that cannot be
        hint = {errno.ENOSPC: "free some space or write the output elsewhere (-o)",
                errno.EACCES: "pick a folder you may write to (-o)", errno.EROFS: "pick a writable folder (-o)",
                errno.EEXIST: "a file is in the way of a folder; pick another path (-o)",
                errno.ENOTDIR: "a file is in the way of a folder; pick another path (-o)"}.get(e.errno, "check the path")
        where = f" {e.filename}" if e.filename else ""
        print(f"edgeviz: error: {e.strerror or type(e).__name__}:{where}; {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeviz: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if os.environ.get("EDGEVIZ_DEBUG"):
            raise
        print(f"edgeviz: internal error: {type(e).__name__}: {e} (set EDGEVIZ_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
