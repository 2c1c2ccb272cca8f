"""`edgeviz demo`: the whole product on the built-in default, with no board.

search (supernet training + evolutionary search at the budget) -> build for the STM32F746 ->
profile and validate on the emulated Cortex-M7 -> one HTML report.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from .atomic import write_text
from .clikit import handler
from .device_cli import profile_build, profile_rows, validate_build
from .project import build
from .report import page, table
from .search.run import run_search
from .search.settings import SearchSettings


def run_demo(out: str | Path = "runs/demo", budget: str = "320KB", target: str = "stm32f746",
             epochs: int | None = None, population: int | None = None, generations: int | None = None,
             n_validate: int = 50, say=print) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {k: v for k, v in (("epochs", epochs), ("population", population), ("generations", generations)) if v}
    say(f"[1/4] search at {budget} (trains the supernet first; resumes if interrupted) -> {out / 'search'}")
    chosen = run_search(SearchSettings(budget, target, out=out / "search", **kw))
    say(f"[2/4] build {target} -> {out / 'build'}")
    b = build(out / "search", target, out / "build")
    say(f"[3/4] profile on the emulated {b['core']} (QEMU {b['emulator']})")
    prof = profile_build(out / "build", "emulator", 5, parts=True)
    say(f"[4/4] validate {n_validate} held-out images on the emulator against the int8 reference")
    val = validate_build(out / "build", "emulator", n_validate)
    result = {"budget": budget, "subnet": chosen, "build": {k: b.get(k) for k in (
        "peak_sram", "peak_sram_banks", "elf_arena_bytes", "elf_flash_bytes", "macs", "accuracy", "build_seconds")},
        "profile": {"unit": prof["unit"], "end_to_end": prof["end_to_end"]}, "validate": val}
    write_text(out / "demo.json", json.dumps(result, indent=1, default=str))
    _report(out, result, prof)
    return result


def _report(out: Path, r: dict, prof: dict) -> None:
    for src, dst in ((out / "search" / "pareto.png", "pareto.png"), (out / "build" / "memory.png", "memory.png"),
                     (out / "build" / "latency.png", "latency.png")):
        if src.exists():
            shutil.copy2(src, out / dst)
    b, v = r["build"], r["validate"]
    acc = b.get("accuracy") or {}
    overview = [
        {"quantity": "SRAM budget", "value": r["budget"]},
        {"quantity": "searched subnet", "value": json.dumps(r["subnet"].get("config", {}))},
        {"quantity": "planned peak SRAM (B)", "value": b["peak_sram"]},
        {"quantity": "arena in the linked ELF (B)", "value": b["elf_arena_bytes"]},
        {"quantity": "flash in the linked ELF (B)", "value": b["elf_flash_bytes"]},
        {"quantity": "MACs", "value": b["macs"]},
        {"quantity": "top-1 float / int8 (held-out)", "value": f"{acc.get('float_top1', 0):.3f} / {acc.get('int8_top1', 0):.3f}"},
        {"quantity": f"end to end ({prof['unit']}, emulator)", "value": prof["end_to_end"]["median"]},
        {"quantity": "emulator outputs bit-exact", "value": f"{v['bit_exact']}/{v['n']}"},
    ]
    layers = profile_rows(prof)     # each layer's count and the % of it in each part (stacked in latency.png)
    html = page("edgeviz demo", [("Overview", table(overview)),
                                 ("Pareto front (accuracy vs planned peak SRAM)", "<img src='pareto.png'>"),
                                 ("Memory timeline of the built subnet", "<img src='memory.png'>"),
                                 ("Per-layer latency on the emulator, by part", "<img src='latency.png'>" + table(layers))])
    write_text(out / "report.html", html)


def cmd_demo(a) -> int:
    r = run_demo(a.out, a.budget, epochs=a.epochs, population=a.population, generations=a.generations)
    b, v = r["build"], r["validate"]
    print(f"demo done: subnet at {r['budget']} -> peak SRAM {b['peak_sram']:,} B (ELF arena {b['elf_arena_bytes']:,} B), "
          f"int8 top-1 {b['accuracy']['int8_top1']:.3f}, {v['bit_exact']}/{v['n']} emulator outputs bit-exact; "
          f"report: {Path(a.out) / 'report.html'}")
    return 0 if v["bit_exact"] == v["n"] else 1


def add_cli(group) -> None:
    @group.command("demo", help="search -> build -> profile and validate on the emulator, on the built-in data")
    @click.option("-o", "--out", default="runs/demo")
    @click.option("--budget", default="320KB", help="SRAM budget (1 KB = 1024 B), default 320KB")
    @click.option("--epochs", type=int, help="supernet epochs (default: the search's default)")
    @click.option("--population", type=int)
    @click.option("--generations", type=int)
    def demo_command(**kw):
        return handler(cmd_demo)(**kw)
