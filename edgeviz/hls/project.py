"""`edgeviz build|analyze --target <fpga board>`: the same import, int8 and planner as the MCU path,
then the HLS generator, the estimator and (with --csim) the g++ C simulation."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..atomic import staged_dir
from ..errors import EdgevizError
from ..passes import Switches, schedule
from ..planner import plan
from ..quantize import quantize, quantize_image


def _reuse(reuse, reuse_file):
    if reuse_file:
        try:
            return {str(k): int(v) for k, v in json.loads(Path(reuse_file).read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise EdgevizError(f"cannot read reuse file {reuse_file}: it must be JSON {{\"layer or op\": factor}} ({e})") from None
    return "auto" if reuse is None else int(reuse)


def _check_switches(switches: Switches | None) -> Switches:
    """The switches the FPGA backend schedules with (None: the FPGA default, the qkv split off; see
    generate.fpga_switches): every combination has HLS templates (operator integration, patch-embedding
    decomposition, token overwriting and the qkv split on or off)."""
    from .generate import check_switches, fpga_switches
    sw = fpga_switches(switches)
    check_switches(sw)
    return sw


def build(model, tgt, out, calib=None, switches: Switches | None = None, reuse=None, reuse_file=None,
          csim: bool = False, progress=None, mean=None, std=None) -> dict:
    from ..project import Phases, calibration_data, load_graph, record_preprocessing
    from .csim import check_reference
    from .generate import generate
    switches = _check_switches(switches)
    say = Phases(progress)
    say("importing the model through TVM")
    g, _ = load_graph(model)
    record_preprocessing(g, model, calib, mean, std)
    x_cal, _ = calibration_data(g, calib)
    say("quantizing and planning")
    quantize(g, x_cal)
    s = schedule(g, switches)
    p = plan(s)
    out = Path(out or "build")
    with staged_dir(out) as stage:
        say("generating the HLS project")
        xs = np.stack([quantize_image(g, x) for x in x_cal[:4]])
        proj = generate(s, p, stage, tgt.name, _reuse(reuse, reuse_file), tb_inputs=xs, ref_graph=g)
        summary = {"model": str(model), "target": tgt.name, "kind": "fpga", "estimate": proj.estimate.to_dict(),
                   "reuse": proj.reuse, "buffers_bytes": p.peak, "switches": dataclasses.asdict(switches),
                   "project": str(out.resolve()), "preprocess": g.preprocess}
        if csim:
            say("C simulation with g++")
            vectors, bad = check_reference(stage)
            summary["csim"] = {"vectors": vectors, "mismatching_bytes": bad}
            if bad:
                raise EdgevizError(f"internal error: C simulation differs from the int8 reference in {bad} bytes")
        say("done")
        summary["build_seconds"] = say.total()
        (stage / "build.json").write_text(json.dumps(summary, indent=1))
    return summary


def analyze(model, tgt, switches: Switches | None = None, reuse=None) -> dict:
    from ..project import load_graph
    from .estimate import load_board
    from .generate import assign_banks, choose_reuse, reuse_for, schedule_estimate
    switches = _check_switches(switches)
    board = load_board(tgt.name)
    g, _ = load_graph(model)
    quantize(g, None)
    s = schedule(g, switches)
    banks, _ = assign_banks(plan(s))
    if reuse is None:
        _, _, e = choose_reuse(s, banks, board)
    else:
        e = schedule_estimate(s, banks, reuse_for(s, int(reuse)), board, check=False)
    return {"target": tgt.name, "kind": "fpga", "switches": dataclasses.asdict(switches), "estimate": e.to_dict(),
            "report": e.report()}
