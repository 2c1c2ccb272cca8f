"""C simulation of HLS code with plain g++ (no vendor tool): compile, run, read the outputs.

A generated project (edgeviz.hls.generate) is a folder holding
    project.json      {"top": ..., "sources": ["ev_top.cpp", ...], "input_bytes": I, "output_bytes": O}
    ev_tb_config.h    EV_TB_INPUT_BYTES / EV_TB_OUTPUT_BYTES and ev_tb_top(), for the generic testbench
    *.cpp, *.h        the top function and its weight ROM headers
    tb_data/          input.bin and reference.bin (int8 vectors back to back)
It is compiled together with hls/testbench/ev_tb_main.cpp against the template library in hls/ (the
project's own copy, PROJECT/hls/, when it has one).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeviz.errors import EdgevizError
from edgeviz.resources import data_dir

CXXFLAGS = ["-O2", "-std=c++17", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-label",
            "-Wno-unused-variable", "-Wno-unused-but-set-variable"]


def find_gxx() -> str:
    """Path of the C++ compiler for C simulation ($CXX if set, else g++)."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise EdgevizError(f"C simulation needs a C++17 compiler but '{name}' is not on PATH: "
                           "install g++ (e.g. apt-get install g++) or set CXX")
    return path


def hls_dir() -> Path:
    """The shipped template library (ev_*.h) and testbench folder."""
    return data_dir("hls")


def compile_sources(sources, exe: Path, include_dirs=(), flags=(), timeout: float = 600) -> Path:
    """g++ -O2 -std=c++17 SOURCES -I INCLUDE_DIRS -I hls -o EXE; EdgevizError with the compiler's
    first error lines when it fails."""
    gxx = find_gxx()
    exe = Path(exe)
    exe.parent.mkdir(parents=True, exist_ok=True)
    cmd = [gxx, *CXXFLAGS, *flags]
    cmd += [f"-I{d}" for d in include_dirs] + [f"-I{hls_dir()}"]     # a project's own copy wins
    cmd += [str(s) for s in sources] + ["-o", str(exe)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgevizError(f"g++ took more than {timeout:.0f} s compiling the C simulation") from None
    if r.returncode != 0:
        errs = [ln for ln in r.stderr.splitlines()
                if any(w in ln for w in ("error", "undefined", "cannot", "multiple definition"))]
        errs = errs or r.stderr.splitlines()
        raise EdgevizError("C simulation failed to compile: " + " | ".join(errs[:3])[:600])
    return exe


def load_project(project_dir) -> dict:
    p = Path(project_dir) / "project.json"
    if not p.is_file():
        raise EdgevizError(f"{project_dir} is not an edgeviz HLS project (no project.json)")
    return json.loads(p.read_text())


def compile_project(project_dir, exe: Path | None = None) -> Path:
    """Build the project's C simulation executable (default: PROJECT/csim/ev_csim)."""
    project_dir = Path(project_dir)
    meta = load_project(project_dir)
    sources = [project_dir / s for s in meta.get("sources", ["ev_top.cpp"])]
    lib = project_dir / "hls" if (project_dir / "hls" / "ev_lib.h").is_file() else hls_dir()
    sources.append(lib / "testbench" / "ev_tb_main.cpp")
    if exe is None:
        (project_dir / "csim").mkdir(exist_ok=True)
        exe = project_dir / "csim" / "ev_csim"
    return compile_sources(sources, exe, include_dirs=[project_dir, lib])


def _newest_source(project_dir: Path) -> float:
    files = [p for pat in ("*.cpp", "*.h", "*.json", "weights/*.h", "hls/*.h", "hls/testbench/*.cpp")
             for p in project_dir.glob(pat)]
    return max((p.stat().st_mtime for p in files), default=0.0)


def run_csim(project_dir, inputs=None, exe: Path | None = None, timeout: float = 600) -> np.ndarray:
    """Run the project's C simulation on int8 inputs [B, input_bytes] (default: tb_data/input.bin) and
    return the int8 outputs [B, output_bytes]. Compiles first if the executable is missing."""
    project_dir = Path(project_dir)
    meta = load_project(project_dir)
    n_in, n_out = int(meta["input_bytes"]), int(meta["output_bytes"])
    if exe is None:
        exe = project_dir / "csim" / "ev_csim"
        if not exe.is_file() or exe.stat().st_mtime < _newest_source(project_dir):
            compile_project(project_dir, exe)
    with tempfile.TemporaryDirectory(prefix="ev_csim_") as tmp:
        if inputs is None:
            in_path = project_dir / "tb_data" / "input.bin"
        else:
            arr = np.asarray(inputs).astype(np.int8).reshape(-1, n_in)
            in_path = Path(tmp) / "input.bin"
            arr.tofile(in_path)
        out_path = Path(tmp) / "output.bin"
        try:
            r = subprocess.run([str(exe), str(in_path), str(out_path)], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EdgevizError(f"C simulation ran longer than {timeout:.0f} s") from None
        if r.returncode != 0:
            raise EdgevizError(f"C simulation exited with status {r.returncode}: "
                               f"{(r.stderr or r.stdout).strip()[:400]}")
        return np.fromfile(out_path, dtype=np.int8).reshape(-1, n_out)


def check_reference(project_dir) -> tuple[int, int]:
    """Run on tb_data/input.bin and compare with tb_data/reference.bin: (vectors, mismatching bytes)."""
    project_dir = Path(project_dir)
    out = run_csim(project_dir)
    ref = np.fromfile(project_dir / "tb_data" / "reference.bin", dtype=np.int8).reshape(out.shape)
    return out.shape[0], int((out != ref).sum())
