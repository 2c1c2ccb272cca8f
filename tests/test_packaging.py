"""firmware/, hls/ and targets/ are source trees at the top of the repo; the wheel must carry them,
and edgeviz must find them both in a checkout and in an installed wheel."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeviz.resources import data_dir
from edgeviz.targets import available_targets

REPO = Path(__file__).resolve().parents[1]


def test_data_dirs_are_found():
    for name in ("firmware", "hls", "targets"):
        assert data_dir(name).is_dir()
    assert {"stm32f746", "mps2-an500", "zcu102", "pynq-z2", "ultra96v2", "stm32f103", "stm32f411", "nrf52840",
            "stm32u585", "rp2040", "alif-e3"} <= set(available_targets())


def test_wheel_ships_firmware_hls_targets_and_the_search_space(tmp_path):
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("building a wheel timed out (the build backend could not be fetched)")
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("edgeviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in ("edgeviz/_data/firmware/Makefile", "edgeviz/_data/firmware/kernels/ev_kernels.h",
                 "edgeviz/_data/firmware/kernels/ev_dsp.h", "edgeviz/_data/firmware/kernels/ev_linear_m7.S",
                 "edgeviz/_data/firmware/kernels/ev_attention_m7.S",
                 "edgeviz/_data/firmware/kernels/ev_norm_m7.S", "edgeviz/_data/firmware/kernels/ev_gemm_mve.S",
                 "edgeviz/_data/firmware/kernels/ev_tfl_m7.S",
                 "edgeviz/_data/firmware/kernels/ev_linear_mve.c", "edgeviz/_data/firmware/kernels/ev_attention_mve.c",
                 "edgeviz/_data/firmware/kernels/ev_norm_mve.c", "edgeviz/_data/firmware/kernels/ev_eltwise_mve.c",
                 "edgeviz/_data/firmware/runtime/ev_runtime.c", "edgeviz/_data/firmware/boards/stm32f746/memory.ld",
                 "edgeviz/_data/firmware/boards/qemu_mps.h", "edgeviz/_data/firmware/boards/mps3-an547/memory.ld",
                 "edgeviz/_data/targets/rp2040.toml", "edgeviz/_data/firmware/boards/cortex_m.h",
                 "edgeviz/_data/firmware/boards/rp2040/board.mk", "edgeviz/_data/firmware/boards/rp2040/boot2.S",
                 "edgeviz/_data/firmware/boards/rp2040/boot2_crc.py",
                 "edgeviz/_data/firmware/boards/nrf52840/memory.ld",
                 "edgeviz/_data/hls/ev_lib.h", "edgeviz/_data/targets/stm32f746.toml",
                 "edgeviz/search/spaces/default.toml"):
        assert must in names, must
