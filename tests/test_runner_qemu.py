"""The whole serial path on the emulator: the fake model (tests/fixtures/fake_model) built for
mps2-an500, QEMU booted, INFO / INFER / PROFILE / RESET, and every user-facing failure as one line."""
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeviz.errors import EdgevizError
from edgeviz.runner import flash, profile, validate
from edgeviz.runner import protocol as P
from edgeviz.runner.client import Device, open_port
from edgeviz.runner.firmware import build_firmware
from edgeviz.runner.qemu import Emulator

FAKE = Path(__file__).parent / "fixtures" / "fake_model"
FAKE_ID = 0xFA4E0001

pytestmark = pytest.mark.skipif(not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")


def fake_expected(x: bytes) -> bytes:
    s = int(np.frombuffer(x, dtype=np.int8).astype(np.int64).sum())
    return bytes((s + i) & 0xFF for i in range(10))


def make_build(root: Path, board: str = "mps2-an500", model_dir: Path = FAKE, model_id: int = FAKE_ID,
               kernels: bool = False, extra_cflags: str = "") -> Path:
    build_firmware(model_dir, board, root / "firmware", kernels=kernels, extra_cflags=extra_cflags)
    (root / "build.json").write_text(json.dumps({
        "target": board, "model_id": f"0x{model_id:08x}", "input_shape": [1, 1, 8, 8],
        "input_scale": 0.0078125, "output_shape": [1, 10], "output_scale": 0.25, "arena_bytes": 256,
        "layers": ["sum", "spin", "write"]}))
    return root


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    # the one build that also compiles firmware/kernels, as a real model build does
    return make_build(tmp_path_factory.mktemp("fake_build"), kernels=True)


@pytest.fixture()
def device(build):
    with Emulator(build / "firmware" / "fw.elf") as emu:
        with Device(open_port(emu.url), name="emulator", timeout=1.0, retries=2, alive=emu.dead) as dev:
            yield dev


def test_info(device):
    info = device.info()
    assert info["model_id"] == FAKE_ID
    assert (info["input_bytes"], info["output_bytes"], info["num_layers"]) == (64, 10, 3)
    assert info["input_shape"] == [1, 1, 8, 8] and info["output_shape"] == [1, 1, 1, 10]
    assert info["input_scale"] == 0.0078125 and info["output_scale"] == 0.25
    assert info["arena_bytes"] == 256 and info["timer_unit"] == "instructions"
    assert info["board"] == "mps2-an500" and info["clock_hz"] == 25_000_000


def test_infer_profile_reset(device):
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.integers(-128, 128, 64, dtype=np.int8).tobytes()
        out, count = device.infer(x)
        assert out == fake_expected(x)
        assert 10_000 < count < 20_000 and count % 40 == 0      # SysTick ticks x 40 instructions
    total, layers = device.profile()
    assert total == count and len(layers) == 3
    assert layers[1] > 10 * layers[0] > 0 and layers[2] > 0     # the busy loop dominates
    assert sum(layers) <= total
    info = device.reset()
    assert info["model_id"] == FAKE_ID
    with pytest.raises(EdgevizError, match="no inference since it booted"):
        device.profile()
    x = bytes(64)
    assert device.infer(x)[0] == fake_expected(x)


def test_reset_mid_run_is_detected(device):
    device.infer(bytes(64))
    device.infer(bytes(64))
    device.request(P.CMD_RESET)          # behind the client's back, like a brown-out
    time.sleep(0.3)
    with pytest.raises(EdgevizError, match="reset during the run"):
        device.infer(bytes(64))


def test_profile_api(build):
    r = profile(build, "emulator", n=5)
    assert r["unit"] == "instructions" and "note" in r and "median_ms" not in r["end_to_end"]
    assert [l["name"] for l in r["layers"]] == ["sum", "spin", "write"]
    e = r["end_to_end"]
    assert e["min"] <= e["median"] <= e["max"]
    assert e["max"] - e["min"] <= 80                      # -icount is deterministic to a tick or two
    assert 0 <= r["outside_layers_median"] < 1000


def test_validate_api(build):
    rng = np.random.default_rng(2)
    xs = rng.integers(-128, 128, (6, 1, 8, 8), dtype=np.int8)
    want = np.stack([np.frombuffer(fake_expected(x.tobytes()), dtype=np.int8) for x in xs])
    bad = want.copy()
    bad[2, 3] ^= 1
    r = validate(build, "emulator", xs, bad, float_logits=want.astype(np.float32))
    assert r["n"] == 6 and r["bit_exact"] == 5 and r["mismatched"] == [2] and r["max_abs_diff"] == 1
    assert r["top1_agreement_float"] == 1.0
    assert np.array_equal(r["outputs"], want)


def test_flash_emulator(build):
    r = flash(build)
    assert r["tool"] == "qemu" and r["model_id"] == f"0x{FAKE_ID:08x}"


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_model_id_mismatch(build, tmp_path):
    other = tmp_path / "other_model"
    shutil.copytree(FAKE, other)
    h = other / "model.h"
    h.write_text(h.read_text().replace("0xFA4E0001u", "0xFA4E0002u"))
    other_build = make_build(tmp_path / "other_build", model_dir=other, model_id=0xFA4E0002)
    with Emulator(other_build / "firmware" / "fw.elf") as emu:          # device runs model ...02
        with pytest.raises(EdgevizError) as e:
            profile(build, emu.url, n=1)                                 # user passes build ...01
    assert "runs model 0xfa4e0002" in one_line(e) and "flash this build" in one_line(e)


def test_dead_port(build):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    with pytest.raises(EdgevizError) as e:
        profile(build, f"socket://127.0.0.1:{port}", n=1)
    assert "cannot open port" in one_line(e) and time.monotonic() - t < 5
    with pytest.raises(EdgevizError) as e:
        profile(build, "/dev/ttyEDGEVIZ_NOPE", n=1)
    assert "cannot open port" in one_line(e)


def test_busy_port(build):
    import os

    import serial
    master, slave = os.openpty()
    name = os.ttyname(slave)
    held = serial.serial_for_url(name, exclusive=True, timeout=1)
    try:
        with pytest.raises(EdgevizError) as e:
            profile(build, name, n=1)
        assert "is busy" in one_line(e)
    finally:
        held.close()
        os.close(master)
        os.close(slave)


def _server(behaviour):
    """A TCP 'device' that accepts one client and then stalls or sends garbage."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def run():
        srv.settimeout(5)
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        rng = np.random.default_rng(0)
        while not stop.is_set():
            if behaviour == "garbage":
                try:
                    conn.sendall(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
                except OSError:
                    break
            time.sleep(0.02)
        conn.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return srv, stop, th


@pytest.mark.parametrize("behaviour,expect", [("stall", "no reply within"), ("garbage", "not edgeviz frames")])
def test_stalled_or_garbage_device(build, behaviour, expect):
    srv, stop, th = _server(behaviour)
    try:
        t = time.monotonic()
        with pytest.raises(EdgevizError) as e:
            profile(build, f"socket://127.0.0.1:{srv.getsockname()[1]}", n=1, timeout=0.3, retries=2)
        assert expect in one_line(e)
        assert time.monotonic() - t < 3 * 0.3 + 2
    finally:
        stop.set()
        srv.close()
        th.join(5)


def test_emulator_dying_mid_run(build):
    with Emulator(build / "firmware" / "fw.elf") as emu:
        dev = Device(open_port(emu.url), name="emulator", timeout=0.5, retries=1, alive=emu.dead)
        dev.infer(bytes(64))
        emu.proc.kill()
        emu.proc.wait(5)
        with pytest.raises(EdgevizError) as e:
            dev.infer(bytes(64))
        assert re.search("emulator stopped|connection lost|write failed|no reply", one_line(e))
        dev.close()


def test_firmware_crash_mid_run(tmp_path):
    b = make_build(tmp_path / "crashy", extra_cflags="-DEV_FAKE_CRASH")
    x = np.zeros(64, np.int8)
    x[0] = 127
    t = time.monotonic()
    with pytest.raises(EdgevizError) as e:
        profile(b, "emulator", n=1, input=x, timeout=0.5)
    assert "the firmware crashed (fault handler)" in one_line(e) and time.monotonic() - t < 10


def test_bad_build_dirs(build, tmp_path):
    with pytest.raises(EdgevizError, match="does not exist"):
        profile(tmp_path / "nope", "emulator")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgevizError, match="no build.json"):
        profile(tmp_path / "empty", "emulator")
    stale = tmp_path / "stale"
    shutil.copytree(build, stale)
    meta = json.loads((stale / "build.json").read_text())
    (stale / "build.json").write_text(json.dumps({**meta, "model_id": "0x12345678"}))
    with pytest.raises(EdgevizError) as e:
        profile(stale, "emulator")
    assert "stale" in one_line(e)
    (stale / "build.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "layers"}))
    with pytest.raises(EdgevizError, match="lacks layers"):
        profile(stale, "emulator")
    (stale / "build.json").write_text(json.dumps(meta))
    (stale / "firmware" / "fw.elf").unlink()
    with pytest.raises(EdgevizError, match="no firmware"):
        profile(stale, "emulator")


def test_user_input_errors(build):
    with pytest.raises(EdgevizError, match="takes 64"):
        profile(build, "emulator", n=1, input=np.zeros(63, np.int8))
    with pytest.raises(EdgevizError, match="must be int8"):
        validate(build, "emulator", np.full((1, 64), 300), np.zeros((1, 10), np.int8))


def test_f746_build_is_single_precision_and_flash_explains(tmp_path):
    b = make_build(tmp_path / "f746", board="stm32f746")
    elf = b / "firmware" / "fw.elf"
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True).stdout
    assert not re.search(r"\bv\w+\.f64\b", dis), "double-precision FP op in the F746 firmware"
    assert "Reset_Handler" in subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    with pytest.raises(EdgevizError) as e:
        profile(b, "emulator")
    assert "holds no emulator image" in one_line(e)
    if not any(shutil.which(t) for t in ("pyocd", "openocd", "st-flash")):
        with pytest.raises(EdgevizError) as e:
            flash(b)
        assert "openocd -f board/stm32f746g-disco.cfg -c" in one_line(e) or "pyocd flash" in one_line(e)


def test_ram_overflow_is_a_readable_link_error(tmp_path):
    big = tmp_path / "big"
    shutil.copytree(FAKE, big)
    h = big / "model.h"
    h.write_text(h.read_text().replace("EV_ARENA_BYTES     256", "EV_ARENA_BYTES     400000"))
    with pytest.raises(EdgevizError) as e:
        build_firmware(big, "mps2-an500", tmp_path / "out", kernels=False)
    assert "RAM overflow" in one_line(e)
