"""`edgeviz build` / `analyze` end to end, and one clear line for every kind of bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import need
from models import make

from edgeviz.cli import main
from edgeviz.model import ViT, ViTConfig, save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "vit.pt"
    save_model(make("cls-lowrank"), p)
    return p


def _fails(capsys, argv, pattern):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("edgeviz: error: "), err
    assert pattern in err[0], err[0]
    return err[0]


def test_build_writes_a_linked_project(model_file, tmp_path, capsys):
    need("arm-none-eabi-gcc")
    out = tmp_path / "b"
    assert main(["build", str(model_file), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    meta = json.loads((out / "build.json").read_text())
    # the arena the ELF reserves is the planned peak, byte for byte
    assert meta["elf_arena_bytes"] == meta["arena_bytes"] == summary["peak_sram"]
    assert sum(summary["peak_sram_banks"].values()) == summary["peak_sram"]
    for f in ("firmware/fw.elf", "firmware/fw-mps2-an500.elf", "firmware/Makefile", "model/model.c", "plan.json",
              "memory.png", "report.html"):
        assert (out / f).is_file(), f
    assert 0.0 <= meta["accuracy"]["int8_top1"] <= 1.0


def test_missing_model(tmp_path, capsys):
    _fails(capsys, ["build", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "o")], "does not exist")
    assert not (tmp_path / "o").exists()


def test_garbage_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    _fails(capsys, ["build", str(bad), "-o", str(tmp_path / "o")], "cannot read model")
    assert not (tmp_path / "o").exists()


def test_unknown_target(model_file, tmp_path, capsys):
    line = _fails(capsys, ["build", str(model_file), "--target", "esp32", "-o", str(tmp_path / "o")], "unknown target 'esp32'")
    assert "stm32f746" in line


def test_calib_of_the_wrong_shape(model_file, tmp_path, capsys):
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3, 8, 8), np.float32))
    _fails(capsys, ["build", str(model_file), "--calib", str(tmp_path / "c.npz"), "-o", str(tmp_path / "o")],
           "calibration array x has shape [4, 3, 8, 8]")
    assert not (tmp_path / "o").exists()


def test_model_that_does_not_fit(tmp_path, capsys):
    torch.manual_seed(0)
    p = tmp_path / "big.pt"
    save_model(ViT(ViTConfig(img_size=64, patch=2, embed=128, heads=2, depth=1)), p)
    line = _fails(capsys, ["build", str(p), "-o", str(tmp_path / "o")], "does not fit stm32f746")
    assert "overflows SRAM2 by" in line and "largest live tensors" in line
    assert not (tmp_path / "o").exists()


def test_failed_rebuild_keeps_the_previous_output(model_file, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    _fails(capsys, ["build", str(tmp_path / "missing.pt"), "-o", str(out)], "does not exist")
    assert (out / "keep.txt").read_text() == "old"


def test_analyze_json(model_file, capsys):
    assert main(["analyze", str(model_file), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["fits"] and r["peak_sram"] >= r["lower_bound_bytes"] > 0
    assert sum(l["macs"] for l in r["layers"]) == r["executed_macs"] >= r["macs"]
    # the model's parameters whatever the schedule (the qkv split's slices and copies counted once)
    assert main(["analyze", str(model_file), "--json", "--no-fuse"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == r["params"]


def test_no_traceback_from_the_real_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "edgeviz.cli", "build", str(tmp_path / "x.onnx")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("edgeviz: error:")


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_optimize_time_flag(model_file, capsys):
    """--optimize time: the schedule the latency model estimates fastest among those that fit (more arena,
    the reason in the schedule note); ram is the default; an unknown goal is one line and exit 2."""
    base = ["analyze", str(model_file), "--json"]
    ram, fast = _json(capsys, base), _json(capsys, base + ["--optimize", "time"])
    assert ram == _json(capsys, base + ["--optimize", "ram"])
    assert fast["fits"] and fast["peak_sram"] >= ram["peak_sram"] and fast["macs"] == ram["macs"]
    assert fast["switches"] != ram["switches"] and "optimize time" in fast["schedule_note"]
    _fails(capsys, base + ["--optimize", "fast"], "--optimize")


def test_optimize_time_build_links_its_arena(model_file, tmp_path, capsys):
    """A build with --optimize time links the arena its schedule planned, byte for byte, records the
    schedule and why, and its outputs stay the int8 reference's (the host check of every build)."""
    need("arm-none-eabi-gcc")
    out = tmp_path / "t"
    s = _json(capsys, ["build", str(model_file), "-o", str(out), "--json", "--optimize", "time"])
    meta = json.loads((out / "build.json").read_text())
    fast = _json(capsys, ["analyze", str(model_file), "--json", "--optimize", "time"])
    assert meta["elf_arena_bytes"] == s["peak_sram"] == fast["peak_sram"]
    assert meta["switches"] == fast["switches"] and "optimize time" in meta["schedule_note"]


def test_qkv_split_flag_in_help(capsys):
    for cmd in ("build", "analyze"):
        assert main([cmd, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--qkv-split / --no-qkv-split" in text
        assert "on for MCU targets" in text and "off for FPGA targets" in text


def test_qkv_split_flag_mcu_analyze(model_file, capsys):
    """MCU default: the split on (it saves arena); --no-qkv-split reaches the plan (a larger peak)."""
    base = ["analyze", str(model_file), "--json"]
    default = _json(capsys, base)
    on = _json(capsys, base + ["--qkv-split"])
    off = _json(capsys, base + ["--no-qkv-split"])
    assert default["switches"]["split_qkv"] is True and off["switches"]["split_qkv"] is False
    assert default["peak_sram"] == on["peak_sram"] < off["peak_sram"]
    assert any("_kv" in l["output"] for l in on["layers"])
    assert not any("_kv" in l["output"] for l in off["layers"])
    # the qkv split is part of operator integration: off with --no-fuse, an error if asked for there
    assert _json(capsys, base + ["--no-fuse"])["switches"]["split_qkv"] is False
    _fails(capsys, base + ["--no-fuse", "--qkv-split"], "cannot be combined with --no-fuse")
    assert main(["analyze", str(model_file), "--no-qkv-split"]) == 0
    assert "qkv-split off" in capsys.readouterr().out


def test_kv_per_head_flag(capsys, tmp_path):
    """MCU: K/V per head off by default (it costs instructions); --kv-per-head tries it and keeps it
    where it plans a smaller arena (3 heads: it does); asking for it without the qkv split or on an
    FPGA is one line."""
    p = tmp_path / "vit3.pt"
    save_model(make("mean-3heads"), p)
    base = ["analyze", str(p), "--json"]
    default = _json(capsys, base)
    on = _json(capsys, base + ["--kv-per-head"])
    assert default["switches"]["kv_per_head"] is False and on["switches"]["kv_per_head"] is True
    assert default == _json(capsys, base + ["--no-kv-per-head"])
    assert on["peak_sram"] < default["peak_sram"] and on["lower_bound_bytes"] < default["lower_bound_bytes"]
    assert any(l["output"].endswith("_kv2") for l in on["layers"]) and not default["schedule_note"]
    _fails(capsys, base + ["--no-qkv-split", "--kv-per-head"], "part of the qkv split")
    _fails(capsys, base + ["--target", "zcu102", "--qkv-split", "--kv-per-head"], "builds without it")
    assert main(["analyze", str(p)]) == 0
    assert "kv-per-head off" in capsys.readouterr().out


def test_qkv_split_flag_fpga_analyze(model_file, capsys):
    """FPGA default: the split off (the fused [N, 3E] qkv); --qkv-split adds the per-row LayerNorm / q copies."""
    base = ["analyze", str(model_file), "--target", "zcu102", "--json", "--reuse", "16"]
    default = _json(capsys, base)
    on = _json(capsys, base + ["--qkv-split"])
    assert default["switches"] == {"fuse": True, "patch_decompose": True, "token_overwrite": True,
                                   "split_qkv": False, "pad_rank": False, "kv_per_head": False, "keep_rank": False,
                                   "stream_scores": False, "merge_tail": False, "widen_weights": False}
    assert on["switches"]["split_qkv"] is True
    rows = lambda r: [l["name"] for l in r["estimate"]["layers"] if l["name"].endswith(" (q row)")]  # noqa: E731
    assert rows(on) and not rows(default)
    assert on["estimate"]["totals"]["dsp"] > default["estimate"]["totals"]["dsp"]
    assert default == _json(capsys, base + ["--no-qkv-split"])


def test_qkv_split_flag_fpga_build(model_file, tmp_path, capsys):
    """The switch reaches the generated HLS code and build.json / --json record it."""
    for flag, split, template in (([], False, "ev_attention_row<"), (["--qkv-split"], True, "ev_attention_kv_row<")):
        out = tmp_path / f"h{int(split)}"
        s = _json(capsys, ["build", str(model_file), "--target", "zcu102", "-o", str(out), "--json", *flag])
        assert s["switches"]["split_qkv"] is split
        assert json.loads((out / "build.json").read_text())["switches"] == s["switches"]
        assert json.loads((out / "project.json").read_text())["switches"]["split_qkv"] is split
        top = (out / "ev_top.cpp").read_text()
        assert template in top
        assert ("ev_attention_row<" in top) is not split


def test_qkv_split_flag_mcu_build(model_file, tmp_path, capsys):
    need("arm-none-eabi-gcc")
    out = tmp_path / "b"
    s = _json(capsys, ["build", str(model_file), "-o", str(out), "--json", "--no-qkv-split"])
    meta = json.loads((out / "build.json").read_text())
    assert s["switches"]["split_qkv"] is False and meta["switches"] == s["switches"]
    plan = json.loads((out / "plan.json").read_text())
    assert not any(t.endswith("_kv") for b in plan["buffers"] for t in b["tensors"])
    off = _json(capsys, ["analyze", str(model_file), "--json", "--no-qkv-split"])
    on = _json(capsys, ["analyze", str(model_file), "--json"])
    assert meta["elf_arena_bytes"] == s["peak_sram"] == off["peak_sram"] > on["peak_sram"]


def test_click_cli_version_typos_and_shell_completion(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "edgeviz 0.1.0"
    _fails(capsys, ["buidl", "x"], "No such command 'buidl'. Did you mean 'build'?")
    _fails(capsys, ["profile", "b", "--port", "emulator", "-n", "many"], "'many' is not a valid integer")
    r = subprocess.run([sys.executable, "-c", "import sys; from edgeviz.cli import main; sys.exit(main())"],
                       env={**os.environ, "_EDGEVIZ_COMPLETE": "bash_source"}, capture_output=True, text=True)
    assert r.returncode == 0 and "_edgeviz_completion" in r.stdout


def test_an_output_path_that_cannot_be_a_folder(model_file, tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    line = _fails(capsys, ["build", str(model_file), "-o", str(tmp_path / "file" / "out")], str(tmp_path / "file"))
    assert "pick another path (-o)" in line


def test_a_full_disk_is_one_line(model_file, tmp_path, capsys, monkeypatch):
    import errno

    import edgeviz.backends.mcu

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "model.c"))
    monkeypatch.setattr(edgeviz.backends.mcu, "write_model_sources", full)
    line = _fails(capsys, ["build", str(model_file), "-o", str(tmp_path / "o")], "No space left on device")
    assert "model.c" in line and "free some space" in line
    assert not (tmp_path / "o").exists()
