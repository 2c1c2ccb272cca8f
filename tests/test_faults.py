"""The machine failing under a command, and two commands at once (issue #16, items 3 and 4).

For each fault: what the user sees (one line on stderr, exit code 2, or 130 for Ctrl-C; never a
traceback) and what is left on disk (the output folder as it was before, or absent; nothing of the
build's own beside it: no `.NAME.*.partial` stage, no `.NAME.*.old` folder).

Faults covered elsewhere, listed here so the README's table has one home: a full disk
(tests/test_cli.py::test_a_full_disk_is_one_line), a file in the way of the output folder
(test_cli.py::test_an_output_path_that_cannot_be_a_folder), g++ missing for the C simulation at the API
(tests/test_hls_templates.py::test_missing_compiler_is_a_clear_error), a damaged serial link
(tests/test_fault_proxy.py), a stalled or garbage-talking device and QEMU killed mid-run
(tests/test_runner_qemu.py::test_stalled_or_garbage_device, ::test_emulator_dying_mid_run).
"""
import errno
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import need
from models import make

import edgeviz.atomic
import edgeviz.backends.mcu
import edgeviz.project
from edgeviz.atomic import remove_stale_temps, staged_dir, torch_save
from edgeviz.cli import main
from edgeviz.model import save_model
from edgeviz.project import build
from edgeviz.runner.builddir import MODEL_ID_SYMBOL, load_build, read_u32_symbol
from edgeviz.runner.firmware import build_firmware
from edgeviz.search.train import CKPT_FORMAT, load_checkpoint

FAKE = Path(__file__).parent / "fixtures" / "fake_model"
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "vit.pt"
    save_model(make("five-tokens"), p)
    return p


def _previous(parent: Path) -> Path:
    """An output folder from an earlier run, which a failed or interrupted build must leave alone."""
    out = parent / "o"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("previous build")
    return out


def _one_line(capsys, rc_expected: int, rc: int) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == rc_expected, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _nothing_beside(out: Path) -> None:
    """No stage or swapped-out folder of the build left next to the output."""
    left = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert left == [], left


def _intact(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "previous build"
    _nothing_beside(out)


# ------------------------------------------------------------------ 1. a folder that cannot be written
@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_read_only_output_folder(model_file, tmp_path, capsys, monkeypatch, code):
    """The output's parent cannot be written: the build stops at its first write (staging beside -o).

    EACCES: as a normal user the parent really is chmod 0o555. As root (CI containers) chmod stops
    nothing, so there, and for EROFS (a read-only mount) always, making the stage folder (os.mkdir) is
    made to fail in that folder the way the kernel would."""
    parent = tmp_path / "ro"
    out = _previous(parent)
    real = os.mkdir
    if code == errno.EACCES and not ROOT:
        parent.chmod(0o555)
    else:
        def refuse(path, *a, **k):
            if Path(path).parent == parent:
                raise OSError(code, os.strerror(code), str(path))
            return real(path, *a, **k)
        monkeypatch.setattr(edgeviz.atomic.os, "mkdir", refuse)
    try:
        line = _one_line(capsys, 2, main(["build", str(model_file), "-o", str(out)]))
    finally:
        parent.chmod(0o755)
    hint = "pick a folder you may write to (-o)" if code == errno.EACCES else "pick a writable folder (-o)"
    assert line == f"edgeviz: error: {os.strerror(code)}: {parent}; {hint}", line
    _intact(out)


def test_swap_that_fails_puts_the_previous_build_back(tmp_path, monkeypatch):
    """The last step, renaming the finished stage onto -o, refused (EROFS after a remount, EXDEV, ...):
    the previous build is renamed back, and neither the stage nor the set-aside copy is left."""
    out = _previous(tmp_path)
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".partial"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real(src, dst)
    monkeypatch.setattr(edgeviz.atomic.os, "replace", replace)
    with pytest.raises(OSError, match="Read-only"):
        with staged_dir(out) as stage:
            (stage / "build.json").write_text("{}")
    _intact(out)


# ------------------------------------------------------------------ 2. a compiler missing
def test_arm_gcc_missing_during_build(model_file, tmp_path, capsys, monkeypatch):
    """arm-none-eabi-gcc absent: refused before the model import (the backend's preflight), saying what
    to install. shutil.which is filtered rather than PATH emptied, so the host gcc is still found."""
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name.startswith("arm-none-eabi") else real(name, *a, **k))
    monkeypatch.setattr(edgeviz.project, "load_graph", _not_imported)
    out = _previous(tmp_path)
    line = _one_line(capsys, 2, main(["build", str(model_file), "-o", str(out)]))
    assert line == ("edgeviz: error: arm-none-eabi-gcc not found; install it (apt-get install make gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi) to build firmware"), line
    _intact(out)


def _not_imported(*a, **k):
    raise AssertionError("the model was imported before the missing tool was noticed")


def test_gxx_missing_during_fpga_csim_build(model_file, tmp_path, capsys, monkeypatch):
    """`build --target zcu102 --csim` without a C++ compiler: refused before the model import, one
    line, the previous project kept. (The API-level refusal, csim.find_gxx / run_csim, is
    tests/test_hls_templates.py::test_missing_compiler_is_a_clear_error.)"""
    monkeypatch.setenv("CXX", "no-such-compiler-edgeviz")
    monkeypatch.setattr(edgeviz.project, "load_graph", _not_imported)
    out = _previous(tmp_path)
    line = _one_line(capsys, 2, main(["build", str(model_file), "--target", "zcu102", "--csim", "--reuse", "16",
                                      "-o", str(out)]))
    assert line.startswith("edgeviz: error: C simulation needs a C++17 compiler but 'no-such-compiler-edgeviz' "
                           "is not on PATH"), line
    _intact(out)


# ------------------------------------------------------------------ 3. Ctrl-C
def test_ctrl_c_during_build(model_file, tmp_path, capsys, monkeypatch):
    """KeyboardInterrupt from inside write_project (while the stage is half written): exit 130, one line
    (after click's newline that ends the terminal's ^C line), the previous build untouched."""
    seen = []

    def interrupted(model_c, model_h, model_dir):
        seen.append(model_dir)
        (model_dir).mkdir(parents=True)
        (model_dir / "model.c").write_text(model_c[:100])       # half written when the ^C lands
        raise KeyboardInterrupt
    monkeypatch.setattr(edgeviz.backends.mcu, "write_model_sources", interrupted)
    out = _previous(tmp_path)
    rc = main(["build", str(model_file), "-o", str(out)])
    assert _one_line(capsys, 130, rc) == "edgeviz: interrupted"
    assert seen and not seen[0].exists()              # the stage it was writing into is gone
    _intact(out)


def test_ctrl_c_between_the_two_renames(tmp_path, monkeypatch):
    """The one moment -o is briefly absent (old set aside, stage not yet in place): Ctrl-C there puts
    the previous build back."""
    out = _previous(tmp_path)
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".partial"):
            raise KeyboardInterrupt
        return real(src, dst)
    monkeypatch.setattr(edgeviz.atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out) as stage:
            (stage / "build.json").write_text("{}")
    _intact(out)


# ------------------------------------------------------------------ 4. two builds into one folder
def test_concurrent_stagings_into_one_folder(tmp_path, monkeypatch):
    """Eight threads finish staging at once into one -o (the swaps forced to interleave by a sleep
    between the two renames). Outcome: every one succeeds, the folder holds exactly one of them whole
    (its two files agree), nothing is left beside it. Before the swap lock this raised
    FileNotFoundError / 'Directory not empty' in most threads."""
    out = _previous(tmp_path)
    real = os.replace

    def slow_replace(src, dst):
        real(src, dst)
        if str(dst).endswith(".old"):
            time.sleep(0.02)            # widen the window between set-aside and swap-in
    monkeypatch.setattr(edgeviz.atomic.os, "replace", slow_replace)
    n, go, errors = 8, threading.Barrier(8), []

    def one(i):
        try:
            with staged_dir(out) as stage:
                (stage / "id").write_text(str(i))
                go.wait(5)
                (stage / "build.json").write_text(json.dumps({"id": i}))
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "id"]
    assert json.loads((out / "build.json").read_text())["id"] == int((out / "id").read_text())
    _nothing_beside(out)


def test_two_builds_into_one_folder(tmp_path):
    """Two builds of two different models into one -o at once (two threads: the same code path as two
    processes, without paying the model import twice): both finish, and the folder is one complete build:
    load_build accepts it and build.json's model_id is the one the ELF carries."""
    need("arm-none-eabi-gcc")
    models = []
    for seed in (1, 2):
        p = tmp_path / f"vit{seed}.pt"
        save_model(make("five-tokens", seed=seed), p)
        models.append(p)
    out = tmp_path / "o"
    results, errors = {}, []

    def one(m):
        try:
            # mps2-an500: the board is the emulator, so one ELF per build (half the firmware work)
            results[m] = build(m, "mps2-an500", out)["model_id"]
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(e))
    threads = [threading.Thread(target=one, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == [] and len(set(results.values())) == 2      # two different models raced
    b = load_build(out)
    assert json.loads((out / "build.json").read_text())["model_id"] in results.values()
    assert read_u32_symbol(b.elf, MODEL_ID_SYMBOL) == b.model_id
    _nothing_beside(out)


# ------------------------------------------------------------------ 5. a device that stops answering, from the CLI
def test_stalled_device_from_the_command_line(tmp_path, capsys):
    """What `edgeviz profile` prints when the device accepts the connection and never answers (the
    API-level cases, and QEMU killed mid-run, are in tests/test_runner_qemu.py)."""
    need("arm-none-eabi-gcc")
    root = tmp_path / "b"
    build_firmware(FAKE, "mps2-an500", root / "firmware", kernels=False)
    (root / "build.json").write_text(json.dumps({
        "target": "mps2-an500", "model_id": "0xfa4e0001", "input_shape": [1, 1, 8, 8], "input_scale": 0.0078125,
        "output_shape": [1, 10], "output_scale": 0.25, "arena_bytes": 256, "layers": ["sum", "spin", "write"]}))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        t = time.monotonic()
        rc = main(["profile", str(root), "--port", f"socket://127.0.0.1:{srv.getsockname()[1]}", "-n", "1"])
        line = _one_line(capsys, 2, rc)
        assert line.startswith("edgeviz: error: ") and "no reply within" in line, line
        assert time.monotonic() - t < 15
    finally:
        srv.close()


def test_two_clients_on_one_port(tmp_path, capsys):
    """Two `edgeviz profile` processes on one socket:// device: the second stops at once with "busy"
    while the first talks to it (a TCP device takes a second connection, and the two clients' frames
    would interleave); once the first has finished, the port is free again."""
    need("arm-none-eabi-gcc")
    root = tmp_path / "b"
    build_firmware(FAKE, "mps2-an500", root / "firmware", kernels=False)
    (root / "build.json").write_text(json.dumps({
        "target": "mps2-an500", "model_id": "0xfa4e0001", "input_shape": [1, 1, 8, 8], "input_scale": 0.0078125,
        "output_shape": [1, 10], "output_scale": 0.25, "arena_bytes": 256, "layers": ["sum", "spin", "write"]}))
    srv = socket.socket()                   # a device that accepts and never answers: the first client waits
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    first = subprocess.Popen([sys.executable, "-m", "edgeviz.cli", "profile", str(root), "--port", url, "-n", "1"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        srv.settimeout(60)
        conn, _ = srv.accept()              # the first client holds the port now
        t = time.monotonic()
        same = url.replace("127.0.0.1", "LocalHost")      # the same port under another name of the host
        line = _one_line(capsys, 2, main(["profile", str(root), "--port", same, "-n", "1"]))
        assert line.startswith("edgeviz: error: ") and "is busy" in line, line
        assert time.monotonic() - t < 2     # at once, not after the first client's retries
        _, err = first.communicate(timeout=60)
        assert first.returncode == 2 and "no reply within" in err     # the first one's own outcome, undisturbed
        conn.close()
        line = _one_line(capsys, 2, main(["profile", str(root), "--port", url, "-n", "1"]))
        assert "is busy" not in line        # free again: this one reaches the (silent) device itself
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        srv.close()


# ------------------------------------------------------------------ 6. a checkpoint read while it is written
def test_checkpoint_read_while_written_is_never_truncated(tmp_path, monkeypatch):
    """`edgeviz train` (or a search training its supernet) saves supernet.pt every epoch while another
    process (`edgeviz search --supernet`) may load it. torch.save is slowed to write in small chunks;
    a reader looping meanwhile sees the previous epoch's file or the new one, whole, never a torn one."""
    ckpt = tmp_path / "supernet.pt"
    blob = lambda epoch: {"format": CKPT_FORMAT, "epochs_done": epoch, "w": torch.full((20000,), float(epoch))}  # noqa: E731
    torch_save(blob(1), ckpt)
    real = torch.save

    def slow_save(obj, f, *a, **k):
        buf = io.BytesIO()
        real(obj, buf, *a, **k)
        data = buf.getvalue()
        with open(f, "wb") as fh:
            for i in range(0, len(data), 4096):
                fh.write(data[i:i + 4096])
                fh.flush()
                time.sleep(0.001)
    monkeypatch.setattr(torch, "save", slow_save)
    done, seen, bad = threading.Event(), set(), []

    def reader():
        while not done.is_set():
            try:
                b = load_checkpoint(ckpt)
                seen.add(b["epochs_done"])
                assert float(b["w"][-1]) == b["epochs_done"]
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                bad.append(repr(e))
    th = threading.Thread(target=reader)
    th.start()
    try:
        for epoch in (2, 3):
            torch_save(blob(epoch), ckpt)
    finally:
        done.set()
        th.join(30)
    assert bad == [] and seen <= {1, 2, 3} and seen
    assert load_checkpoint(ckpt)["epochs_done"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["supernet.pt"]     # no temp file left


def test_stale_temp_cleanup_spares_a_live_writer(tmp_path, monkeypatch):
    """A training that starts (or resumes) on supernet.pt clears the temp files a killed save left. It
    used to delete every `.supernet.pt.*.tmp`, a live writer's too (a second train or search on the same
    checkpoint), whose rename then failed with 'No such file or directory'. Now a writer holds an flock
    on its temp file and only unlocked ones go."""
    ckpt = tmp_path / "supernet.pt"
    dead = tmp_path / ".supernet.pt.killed.tmp"
    dead.write_bytes(b"half a checkpoint")            # what a kill -9 during torch.save leaves
    writing, release = threading.Event(), threading.Event()
    real = torch.save

    def held_save(obj, f, *a, **k):
        real(obj, f, *a, **k)
        writing.set()
        release.wait(10)                            # still writing while the other run starts
    monkeypatch.setattr(torch, "save", held_save)
    errors = []

    def writer():
        try:
            torch_save({"format": CKPT_FORMAT, "epochs_done": 1}, ckpt)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(e))
    th = threading.Thread(target=writer)
    th.start()
    try:
        assert writing.wait(10)
        remove_stale_temps(ckpt)
    finally:
        release.set()
        th.join(10)
    assert errors == [] and load_checkpoint(ckpt)["epochs_done"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["supernet.pt"]       # the killed one's temp is gone


def test_a_build_folder_has_the_permissions_of_any_folder_the_user_makes(tmp_path):
    """The stage is made with os.mkdir (the umask decides), not mkdtemp's 0700: after the swap the
    build folder is readable by whoever may read the user's other folders."""
    from edgeviz.atomic import staged_dir
    (tmp_path / "plain").mkdir()
    with staged_dir(tmp_path / "out") as stage:
        (stage / "f").write_text("x")
    assert (tmp_path / "out").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    assert not list(tmp_path.glob(".out.*"))
