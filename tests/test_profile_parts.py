"""The part profile (`edgeviz profile --parts`): a firmware image whose kernels bracket their MAC
loops, softmax, norms, requantisation and data movement (firmware/kernels/ev_parts.h).

Without the flag the kernels compile to the same code as without the brackets; with it, on the
emulated Cortex-M7, every step's parts add up to its count within what the counter's granularity
allows, the attention step has MAC and softmax parts, and the normal image's counts stay as they were."""
import json
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import need
from models import inputs, make

from edgeviz.backends.mcu import write_project
from edgeviz.frontend import graph_from_vit
from edgeviz.project import compile_graph
from edgeviz.resources import data_dir
from edgeviz.runner import api
from edgeviz.runner import protocol as P
from edgeviz.runner.client import Device, open_port
from edgeviz.runner.qemu import Emulator
from edgeviz.targets import load_target

FW = data_dir("firmware")
# the three kernel paths: DSP (Cortex-M7), Helium (Cortex-M55), portable C (Cortex-M0+)
CORES = {t: load_target(t).cflags for t in ("mps2-an500", "alif-e3", "rp2040")}


# ------------------------------------------------------------------ protocol

def test_parts_reply_round_trip():
    layers = [dict(zip(P.PARTS + ("bound",), range(10 * i, 10 * i + len(P.PARTS) + 1))) for i in range(3)]
    payload = P.PARTS_REPLY.pack(7, 3, len(P.PARTS)) + b"".join(
        struct.pack(f"<{len(P.PARTS) + 1}Q", *(l[k] for k in P.PARTS + ("bound",))) for l in layers)
    assert P.parse_parts_reply(payload) == (7, layers)
    with pytest.raises(ValueError, match="bytes for 3 layers"):
        P.parse_parts_reply(payload[:-1])
    with pytest.raises(ValueError, match="parts"):       # firmware with another set of parts
        P.parse_parts_reply(P.PARTS_REPLY.pack(7, 0, len(P.PARTS) + 1))


def test_header_names_every_part():
    header = P.render_c_header()
    for i, name in enumerate(P.PARTS):
        assert f"#define EV_PART_{name.upper()} {i}u" in header
    assert f"#define EV_NUM_PARTS {len(P.PARTS)}u" in header
    assert f"#define EV_CMD_PARTS 0x{P.CMD_PARTS:02X}u" in header


# ------------------------------------------------------------------ the normal image is unchanged

def _code(src: Path, out: Path, flags: list[str], defines: list[str]) -> str:
    """The disassembled code of one kernel source compiled as the firmware compiles it."""
    obj = out.with_suffix(".o")
    subprocess.run(["arm-none-eabi-gcc", *flags, "-O2", "-std=c11", "-ffunction-sections", "-fdata-sections",
                    f"-I{FW / 'kernels'}", f"-I{FW / 'runtime'}", *defines, "-c", str(src), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-r", str(obj)], check=True, capture_output=True,
                         text=True).stdout
    return dis.split("\n", 2)[2]     # drop the line naming the object file


@pytest.mark.parametrize("core", sorted(CORES))
@pytest.mark.parametrize("name", sorted(p.name for p in FW.glob("kernels/*.c")))
def test_kernels_without_the_flag_compile_as_without_the_brackets(name, core, tmp_path):
    need("arm-none-eabi-gcc")
    flags = CORES[core]
    src = FW / "kernels" / name
    text = src.read_text()
    bare = "\n".join(ln for ln in text.split("\n") if "EV_PART_" not in ln and '"ev_parts.h"' not in ln)
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / name).write_text(bare)
    normal = _code(src, tmp_path / "with", flags, [])
    assert normal == _code(tmp_path / "bare" / name, tmp_path / "bare" / "o", flags, [])
    if "EV_PART_ENTER" in text and normal.strip():     # the flag does change it: the brackets are there
        assert normal != _code(src, tmp_path / "parts", flags, ["-DEV_PROFILE_PARTS"])


# ------------------------------------------------------------------ on the emulator

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        need(tool)
    m = make("cls-lowrank", seed=5)
    x = inputs(m.cfg, 6, seed=7)
    c = compile_graph(graph_from_vit(m), x, "mps2-an500")
    out = tmp_path_factory.mktemp("parts") / "build"
    write_project(c, out, "cls-lowrank", x)
    model_c = (out / "model" / "model.c").read_text()
    plain = api.profile(out, "emulator", n=2)
    split = api.profile(out, "emulator", n=2, parts=True)
    return {"dir": out, "schedule": c.schedule, "model_c": model_c, "plain": plain, "split": split}


@pytest.mark.qemu
def test_normal_image_has_no_part_counters(built):
    out = built["dir"]
    syms = subprocess.run(["arm-none-eabi-nm", str(out / "firmware" / "fw.elf")], capture_output=True, text=True,
                          check=True).stdout
    assert not re.search(r"\bev_part|ev_prof_parts|board_ticks_to_counter", syms)
    parts_syms = subprocess.run(["arm-none-eabi-nm", str(out / "firmware" / "parts-mps2-an500" / "fw.elf")],
                                capture_output=True, text=True, check=True).stdout
    assert re.search(r"\bev_part_ticks\b", parts_syms)
    # one model.c for both images: the part profile is a compiler flag, not other code
    assert (out / "model" / "model.c").read_text() == built["model_c"]
    with Emulator(out / "firmware" / "fw.elf") as emu:
        with Device(open_port(emu.url), name="emulator", alive=emu.dead) as dev:
            dev.infer(bytes(dev.info()["input_bytes"]))
            assert dev.parts() is None          # PARTS is unknown to it: no part profile, no error


@pytest.mark.qemu
def test_part_image_computes_the_same_outputs(built):
    out = built["dir"]
    rng = np.random.default_rng(3)
    outputs = []
    for elf in (out / "firmware" / "fw.elf", out / "firmware" / "parts-mps2-an500" / "fw.elf"):
        with Emulator(elf) as emu:
            with Device(open_port(emu.url), name="emulator", alive=emu.dead) as dev:
                n = dev.info()["input_bytes"]
                outputs.append([dev.infer(rng.integers(-128, 128, n, dtype=np.int8).tobytes())[0]
                                for _ in range(3)])
        rng = np.random.default_rng(3)
    assert outputs[0] == outputs[1]


@pytest.mark.qemu
def test_parts_add_up_to_each_step(built):
    split, plain = built["split"], built["plain"]
    assert "parts" not in plain and all("parts" not in l for l in plain["layers"])
    # the normal image's figures do not depend on asking for parts (QEMU: to a counter tick or two)
    for a, b in zip(plain["layers"], split["layers"]):
        assert abs(a["median"] - b["median"]) <= 80
    names = split["parts"]["names"]
    assert names == list(P.PARTS) + ["other"]
    for layer in split["layers"]:
        p = layer["parts"]
        assert set(p) == set(names) | {"total", "bound"}
        assert all(p[k] >= 0 for k in P.PARTS)
        # parts + other is the step total by construction; the parts' own sum must not exceed the
        # step beyond the granularity bound, and what no kernel brackets (calls, loops in model.c)
        # stays a few % of a step that does real work
        assert sum(p[k] for k in P.PARTS) + p["other"] == p["total"]
        assert p["other"] >= -p["bound"]
        if p["total"] > 10_000:
            assert p["other"] <= 0.05 * p["total"], layer
            # (the bound is switches x one tick: faster kernels with the same switches raise its share;
            # cls-lowrank's attention step is at 6.0% since the DSP residual add)
            assert p["bound"] <= 0.08 * p["total"], layer
    # the counters' price, end to end
    assert 0 <= split["parts"]["overhead"] < 0.04
    assert abs(sum(split["parts"]["share"].values()) - 1) < 1e-9


@pytest.mark.qemu
def test_parts_are_where_the_work_is(built):
    steps, layers = built["schedule"].steps, built["split"]["layers"]
    softmax_ops = {"attention", "attention_split", "softmax"}
    seen = set()
    for st, layer in zip(steps, layers):
        ops = {n.op for n in st.nodes}
        p = layer["parts"]
        if ops & {"attention", "attention_split"}:     # q.k, softmax and p.v fused into one step
            assert p["mac"] > 0.3 * p["total"] and p["softmax"] > 0.03 * p["total"], layer
            seen.add("attention")
        if "layernorm" in ops:
            assert p["norm"] > 0, layer
            seen.add("layernorm")
        if "add" in ops:
            assert p["requant"] > 0, layer
        if not ops & softmax_ops:
            assert p["softmax"] == 0, layer
        if "layernorm" not in ops:
            assert p["norm"] == 0, layer
    assert seen == {"attention", "layernorm"}


@pytest.mark.qemu
def test_cli_profile_parts_json_and_plot(built, capsys):
    from edgeviz.cli import main
    out = built["dir"]
    assert main(["profile", str(out), "--port", "emulator", "-n", "1", "--parts", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["parts"]["names"] == list(P.PARTS) + ["other"]
    assert all(set(l["parts"]) >= set(r["parts"]["names"]) for l in r["layers"])
    assert json.loads((out / "profile.json").read_text())["parts"]["names"] == r["parts"]["names"]
    assert (out / "latency.png").stat().st_size > 0
    assert main(["profile", str(out), "--port", "emulator", "-n", "1", "--parts"]) == 0
    text = capsys.readouterr().out
    assert "whole model" in text and "softmax" in text
    # the build's report gains the plot and the parts once, however often the build is profiled
    page = (out / "report.html").read_text()
    assert page.count("<h2>Per-layer latency</h2>") == 1 and "latency.png" in page and "% softmax" in page
    assert page.rstrip().endswith("</html>")


def test_parts_need_the_emulator(tmp_path):
    with pytest.raises(Exception, match="--port emulator"):
        api.profile(tmp_path, "/dev/ttyACM0", parts=True)
