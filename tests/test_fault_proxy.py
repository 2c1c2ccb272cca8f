"""The runner over a damaged link: a TCP proxy between pyserial and QEMU drops, truncates, flips,
duplicates and stalls bytes. No wrong result may be accepted; every failure is one clear
EdgevizError line, and no request outlives its retry budget. (bench/bench_faults.py runs 1000+.)"""
import shutil
import time

import numpy as np
import pytest

from edgeviz.errors import EdgevizError
from edgeviz.runner.client import Device, open_port
from edgeviz.runner.faultproxy import FaultConfig, FaultProxy, run_campaign
from edgeviz.runner.firmware import build_firmware
from edgeviz.runner.qemu import Emulator
from pathlib import Path

FAKE = Path(__file__).parent / "fixtures" / "fake_model"
TIMEOUT, RETRIES = 0.15, 4   # generous: CI machines are shared and QEMU can lag

pytestmark = pytest.mark.skipif(not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")


def fake_expected(x: bytes) -> bytes:
    s = int(np.frombuffer(x, dtype=np.int8).astype(np.int64).sum())
    return bytes((s + i) & 0xFF for i in range(10))


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    return build_firmware(FAKE, "mps2-an500", tmp_path_factory.mktemp("fault_fw"), kernels=False)


def check(r: dict, bound: float) -> None:
    assert r["wrong"] == 0, r                      # never accept a wrong result
    assert r["ok"] + r["errors"] == r["n"]
    assert r.get("multiline_errors", 0) == 0, r
    assert r["slowest_s"] <= bound, r              # every request ends (ok or error) within its budget


def test_light_faults_all_recovered(elf):
    r = run_campaign(elf, 200, FaultConfig.uniform(0.02, stall_s=0.25), fake_expected, input_bytes=64,
                     seed=11, timeout=TIMEOUT, retries=RETRIES)
    check(r, (RETRIES + 1) * TIMEOUT + 0.5)
    assert sum(r["faults"].values()) >= 15, r      # the proxy really did damage the link
    assert r["ok"] >= 0.9 * r["n"], r              # retries recover nearly all of it


def test_heavy_faults_fail_cleanly(elf):
    r = run_campaign(elf, 30, FaultConfig.uniform(0.15, stall_s=0.25), fake_expected, input_bytes=64,
                     seed=5, timeout=TIMEOUT, retries=1)
    check(r, 2 * TIMEOUT + 0.5)
    assert r["errors"] > 0 and r["ok"] > 0, r
    assert all("failed after 2 attempts" in m for m in r["error_messages"]), r


def test_link_that_stalls_forever(elf):
    # every device -> host chunk is held far longer than the retry budget: a clear error, in time
    cfg = FaultConfig(p_stall=1.0, stall_s=30.0, directions=("down",))
    with Emulator(elf) as emu, FaultProxy(emu.port, cfg) as proxy:
        dev = Device(open_port(proxy.url, TIMEOUT), name="device via fault proxy", timeout=TIMEOUT, retries=2)
        t = time.monotonic()
        with pytest.raises(EdgevizError) as e:
            dev.info()
        assert time.monotonic() - t < 3 * TIMEOUT + 0.5
        assert "INFO failed after 3 attempts (no reply within" in str(e.value) and "\n" not in str(e.value)
        dev.close()
