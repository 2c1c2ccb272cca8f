"""`edgeviz flash | profile | validate`: the runner's API behind the command line."""
from __future__ import annotations

import hashlib
import html
import json
import pickle
from pathlib import Path

import click
import numpy as np

from .atomic import atomic_path, write_text
from .clikit import handler
from .errors import EdgevizError
from .inputs import builtin_data, random_inputs, read_inputs
from .quantize import dequantize_output, reference_outputs
from .report import put_section, table
from .tflite import litert
from .runner.api import flash, profile, validate
from .runner.builddir import load_build


def _reference(build_dir: Path):
    """The build's int8 reference graph (model.evq), checked against the digest build.json records:
    edgeviz wrote both, and a reference from another build would make validate compare the firmware
    with the wrong model."""
    want = load_build(build_dir).raw.get("model_evq_sha256")      # first: says what is wrong with the folder
    p = Path(build_dir) / "model.evq"
    if not p.is_file():
        raise EdgevizError(f"{build_dir} has no model.evq (the int8 reference); rebuild it with edgeviz build")
    data = p.read_bytes()
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        raise EdgevizError(f"{p} is not the reference of this build (its digest differs from build.json's); "
                           f"rebuild {build_dir} with edgeviz build")
    try:
        return pickle.loads(data)
    except Exception as e:  # noqa: BLE001 - any damage to the file means the same to the user
        raise EdgevizError(f"{p} is damaged ({type(e).__name__}); rebuild {build_dir} with edgeviz build") from None


def cmd_flash(a) -> int:
    r = flash(a.build_dir, a.probe)
    print(json.dumps(r) if getattr(a, "json", False) else f"flashed {a.build_dir}: {r}")
    return 0


LATENCY_HEADING = "Per-layer latency"


def profile_build(build_dir, port: str, n: int, parts: bool = False) -> dict:
    """Profile over serial; the figures also land in the build folder (profile.json, latency.png and
    a section of report.html)."""
    r = profile(build_dir, port, n=n, parts=parts)
    out = Path(build_dir)
    plot_latency(r, out / "latency.png")
    write_text(out / "profile.json", json.dumps(r, indent=1))
    if (out / "report.html").is_file():
        put_section(out / "report.html", LATENCY_HEADING,
                    f"<p>{html.escape(r['board'])}, {r['unit']}, n={r['n']}</p><img src='latency.png'>"
                    + table(profile_rows(r)))
    return r


def profile_rows(r: dict) -> list[dict]:
    """A row per layer: its median count and, with a part profile, the % of it in each part."""
    rows = []
    for l in r["layers"]:
        row = {"layer": l["name"], f"median {r['unit']}": l["median"]}
        if "parts" in l:
            row.update({f"% {k}": 100 * l["parts"][k] / (l["parts"]["total"] or 1) for k in r["parts"]["names"]})
        rows.append(row)
    return rows


def cmd_profile(a) -> int:
    r = profile_build(a.build_dir, a.port, a.n, getattr(a, "parts", False))
    out = Path(a.build_dir)
    if a.json:
        print(json.dumps(r))
        return 0
    from rich.console import Console
    from rich.table import Table
    unit = r["unit"]
    ms = unit == "cycles"
    tab = Table(title=f"edgeviz profile: {r['board']} ({unit}, n={r['n']})")
    for col in ["layer", f"median {unit}", "min", "max"] + (["median ms"] if ms else []):
        tab.add_column(col, justify="left" if col == "layer" else "right")
    for l in r["layers"] + [{"name": "end to end", **r["end_to_end"]}]:
        tab.add_row(l["name"], f"{l['median']:,.0f}", f"{l['min']:,}", f"{l['max']:,}",
                    *([f"{l['median_ms']:.3f}"] if ms else []))
    Console().print(tab)
    if "parts" in r:
        Console().print(parts_table(r))
    if "note" in r:
        print("note:", r["note"])
    if "parts" in r:
        print("parts:", r["parts"]["note"])
    print(f"per-layer chart: {out / 'latency.png'}")
    return 0


def parts_table(r: dict):
    """Each layer's instructions by kind of work, in % of the step's count in the part image, and the
    whole model's shares as the last row."""
    from rich.table import Table
    pr = r["parts"]
    names = pr["names"]
    tab = Table(title=f"parts: % of each layer's {r['unit']} (part image: end to end "
                      f"{pr['end_to_end']:,.0f}, {100 * pr['overhead']:+.1f}% for its counters)")
    for col in ["layer", *names, "+/-"]:
        tab.add_column(col, justify="left" if col == "layer" else "right")
    for l in r["layers"]:
        p = l["parts"]
        tot = p["total"] or 1
        tab.add_row(l["name"], *[f"{100 * p[k] / tot:.1f}" for k in names], f"{100 * p['bound'] / tot:.1f}")
    tab.add_row("whole model", *[f"{100 * pr['share'][k]:.1f}" for k in names], f"{100 * pr['bound_share']:.1f}")
    return tab


PART_COLOURS = {"mac": "#4a7fb0", "softmax": "#e08a3c", "norm": "#5aa55a", "requant": "#c8574f",
                "move": "#9370b8", "other": "#b0b0b0"}


def plot_latency(r: dict, path: Path) -> None:
    """One bar per layer; with a part profile, stacked by part (the normal image's count split in the
    part image's proportions, so that the bars keep the normal image's lengths)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [l["name"] for l in r["layers"]]
    vals = [l["median"] for l in r["layers"]]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.5))
    if "parts" in r:
        left = [0.0] * len(names)
        for part in r["parts"]["names"]:
            width = [v * max(l["parts"][part], 0) / (l["parts"]["total"] or 1) for v, l in zip(vals, r["layers"])]
            ax.barh(range(len(names)), width, left=left, color=PART_COLOURS.get(part), label=part)
            left = [a + b for a, b in zip(left, width)]
        ax.legend(fontsize=7, loc="lower right", ncol=3)
    else:
        ax.barh(range(len(names)), vals, color="#4a7fb0")
    ax.set_yticks(range(len(names)), [n[:48] for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"median {r['unit']} per inference")
    ax.set_title(f"per-layer latency on {r['board']} (end to end {r['end_to_end']['median']:,.0f} {r['unit']})",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _validation_inputs(g, data: str | None, n: int):
    """n model inputs [n, C, H, W], their labels or None, and a note on where they came from.

    Checking the device against the reference needs no labels. --data is read as everywhere
    (edgeviz.inputs: an .npz x as given, image files through the build's recorded preprocessing);
    with no data, the built-in digits' test split where the model takes them (not for an imported
    int8 file, whose data they are not), else random inputs over the input's int8 range (fixed seed),
    and the result says so."""
    shape = g.input_chw()
    c, h, w = shape
    if data is not None:
        x, y, note = read_inputs(data, shape, getattr(g, "preprocess", None), "validation")
        return x[:n], (None if y is None else y[:n]), note
    if c == 1 and h == w and not g.prequantized:     # an imported file's own data is not the digits
        d = builtin_data(g, "--data")
        return d.images("test", h).numpy()[:n].astype(np.float64), d.y["test"].numpy()[:n], None
    t = g.tensors[g.inputs[0]]
    lo, hi = (-128 - t.zero_point) * t.scale, (127 - t.zero_point) * t.scale
    return random_inputs(g, n), None, f"random inputs (seed 0) over the input's int8 range [{lo:.3g}, {hi:.3g}]"


def validate_build(build_dir, port: str, n: int, data: str | None = None) -> dict:
    """n held-out images on the device against the build's int8 reference (bit-exact) and float."""
    g = _reference(build_dir)
    x, y, note = _validation_inputs(g, data, n)
    xq, want, fl = reference_outputs(g, x)
    oracle = Path(build_dir) / "model.tflite"
    ref = None
    if g.prequantized and oracle.is_file():   # an imported .tflite: its runtime's answer stands in for float
        ref = litert.run_graph(oracle.read_bytes(), g, xq)
        fl = dequantize_output(g, ref)
    r = validate(build_dir, port, xq, want, fl)
    got = r.pop("outputs")
    if ref is not None:
        r["oracle"] = litert.ORACLE
        r["oracle_differing_bytes"] = int((got != ref.reshape(got.shape)).sum())
    if y is not None:
        r["labels_top1_device"] = float((got.argmax(1) == y).mean())
        r["labels_top1_float"] = float((fl.argmax(1) == y).mean())
    if note:
        r["inputs"] = note
    return r


def cmd_validate(a) -> int:
    r = validate_build(a.build_dir, a.port, a.n, a.data)
    if a.json:
        print(json.dumps(r))
    else:
        against = (f"{r['oracle']}: {r['oracle_differing_bytes']} output bytes differ" if "oracle" in r
                   else f"top-1 agreement with float {r['top1_agreement_float']:.3f}")
        print(f"validate {a.build_dir} on {a.port}: {r['bit_exact']}/{r['n']} outputs bit-exact with the host int8 "
              f"reference; {against}"
              + (f"; accuracy device {r['labels_top1_device']:.3f} vs float {r['labels_top1_float']:.3f}"
                 if "labels_top1_device" in r else "") + (f" ({r['inputs']})" if "inputs" in r else ""))
    return 0 if r["bit_exact"] == r["n"] else 1


def add_cli(group) -> None:
    @group.command("flash", help="put a build's firmware on the board (or boot it in QEMU)")
    @click.argument("build_dir")
    @click.option("--probe", default="auto", type=click.Choice(["auto", "pyocd", "openocd", "st-flash"]),
                  help="flashing tool (default: whichever is installed)")
    @click.option("--json", is_flag=True)
    def flash_command(**kw):
        return handler(cmd_flash)(**kw)

    @group.command("profile", help="end-to-end and per-layer latency over serial")
    @click.argument("build_dir")
    @click.option("--port", required=True, help="/dev/ttyACM0, a pyserial URL (socket://host:port), or 'emulator'")
    @click.option("-n", type=int, default=10, help="inferences to time (default 10)")
    @click.option("--parts", is_flag=True, help="also split each layer into MAC loops, softmax, norms, requantisation, "
                                                "data movement and other (an image with part counters, on the emulator)")
    @click.option("--json", is_flag=True)
    def profile_command(**kw):
        return handler(cmd_profile)(**kw)

    @group.command("validate", help="device outputs vs the host int8 reference (bit-exact) and float")
    @click.argument("build_dir")
    @click.option("--port", required=True)
    @click.option("-n", type=int, default=20, help="inputs to run (default 20)")
    @click.option("--data", help=".npz with x (model inputs, as given) and optionally y (labels), or a folder of "
                                 "images (labelled in class subfolders) read with the build's --mean/--std; default: "
                                 "built-in digits where the model takes them, else random inputs")
    @click.option("--json", is_flag=True)
    def validate_command(**kw):
        return handler(cmd_validate)(**kw)
