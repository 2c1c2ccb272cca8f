"""Ctrl-C (a real SIGINT to a real `edgeviz` process) inside each stage of a search, then the same
command again: it goes on from where it stopped and ends where a run never stopped ends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edgeviz.search.train import load_checkpoint, run_train
from test_search_doubles import write_tiny_space

REPO = Path(__file__).resolve().parents[1]
# what a resumed run cannot share with an uninterrupted one: timings, and the planner calls made by this process
PER_PROCESS = {"planned", "judged", "wall_seconds", "cpu_seconds", "total_seconds", "finetune_seconds", "seconds",
               "train_seconds", "search_seconds", "planner_seconds", "accuracy_seconds", "candidates_per_second",
               "planned_per_second", "evaluated_per_second"}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"        # one thread in every run: the same floating-point sums each time
    return env


def _ctrl_c_reaches_it() -> None:
    """In the child before exec: SIGINT unblocked and at its default, as in a shell. A child inherits
    its parent thread's signal mask and ignored signals; one full-suite run saw two searches run to
    the end through a Ctrl-C (exit 0) that reached them in isolation and in -n 2 runs of this file."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _edgeviz(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeviz.cli", *args]


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in PER_PROCESS}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def _interrupt_when(cmd: list[str], ready, timeout: float = 60) -> subprocess.CompletedProcess:
    """Start cmd, send SIGINT (a Ctrl-C) once ready() is true, and return how it ended."""
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_ctrl_c_reaches_it)
    deadline = time.time() + timeout
    while not ready() and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, f"finished before the interrupt: {p.communicate()[1][-2000:]}"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def _assert_interrupted(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 130, r.stderr[-3000:]
    assert r.stderr.strip() == "edgeviz: interrupted" and "Traceback" not in r.stderr


def _log_has(path: Path, text: str, then: float = 0.0):
    """True once the log holds text and ``then`` seconds have passed since it was first seen."""
    seen: list[float] = []

    def ready() -> bool:
        if not seen and path.exists() and text in path.read_text():
            seen.append(time.time())
        return bool(seen) and time.time() >= seen[0] + then
    return ready


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny space, a supernet trained on 64 images, and the result of a search never interrupted."""
    tmp = tmp_path_factory.mktemp("resume")
    space = write_tiny_space(tmp)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    run_train(space=space, epochs=1, output=tmp / "sn.pt", subset=64, progress=False, log=lambda m: None)
    torch.set_num_threads(n)

    def command(out: Path, *extra: str) -> list[str]:
        return _edgeviz("search", "--budget", "8KB", "--space", str(space), "--supernet", str(tmp / "sn.pt"),
                        "--population", "4", "--generations", "3", "--finalists", "3", "--finetune-steps", "60",
                        "-o", str(out), "--json", "--no-progress", *extra)

    r = subprocess.run(command(tmp / "ref"), env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return command, tmp, json.loads(r.stdout)


def _same_result(out: Path, ref_out: Path, got: dict, ref: dict) -> None:
    assert _without_timings(got) | {"files": None} == _without_timings(ref) | {"files": None}
    a, b = torch.load(out / "model.pt", weights_only=False), torch.load(ref_out / "model.pt", weights_only=False)
    sa, sb = a["state_dict"], b["state_dict"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.progress.pt"))


def test_ctrl_c_inside_the_fine_tuning_stage(setup, tmp_path):
    command, tmp, ref = setup
    out = tmp_path / "o"
    # 0.1 s a step: each first-rung run takes 2 s, so 0.6 s after the first finalist's line the interrupt
    # lands inside the second one's run
    r = _interrupt_when(command(out, "--step-delay", "0.1"),
                        _log_has(out / "search.log", "fine-tune: rung 1/2, finalist 1/3", then=0.6))
    _assert_interrupted(r)
    assert list((out / "finalists").glob("*.progress.pt"))          # the run in flight saved its step
    assert not (out / "subnet.json").exists()
    r = subprocess.run(command(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "search.log").read_text().split("---- resumed ----")[-1]
    assert log.count("finished before the restart") == 1                            # finalist 1: not trained again
    assert "rung 1/2, finalist 2/3: continuing at step" in log                     # finalist 2: from its step on
    assert "resuming the search" in log and "generation 1/3" not in log            # evolution: not redone
    _same_result(out, tmp / "ref", json.loads(r.stdout), ref)


def test_ctrl_c_inside_evolution(setup, tmp_path):
    command, tmp, ref = setup
    out = tmp_path / "o"
    # 0.3 s an evaluation: once the first generation is saved, the second one's new candidates are being
    # rated when the interrupt comes
    r = _interrupt_when(command(out, "--step-delay", "0.3"), (out / "search_state.json").exists)
    _assert_interrupted(r)
    state = json.loads((out / "search_state.json").read_text())
    assert 1 <= state["generation"] < 3 and "finetune" not in state
    r = subprocess.run(command(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "search.log").read_text().split("---- resumed ----")[-1]
    assert f"at generation {state['generation']}/3" in log and "generation 1/3:" not in log
    _same_result(out, tmp / "ref", json.loads(r.stdout), ref)


def test_ctrl_c_inside_a_supernet_epoch(tmp_path):
    """`edgeviz train` stopped in the middle of an epoch saves that epoch's steps and goes on from the next
    one: the weights equal a run never stopped (the reference and the resumed run in this process, one
    thread like the interrupted one, to keep the test short)."""
    space = write_tiny_space(tmp_path)
    ckpt = tmp_path / "ck.pt"
    # 4 steps an epoch, 0.4 s each: the interrupt comes inside epoch 2, once epoch 1 is saved
    r = _interrupt_when(_edgeviz("train", "--space", str(space), "--epochs", "2", "-o", str(ckpt), "--subset", "64",
                                 "--no-progress", "--step-delay", "0.4"), ckpt.exists)
    assert r.returncode == 130 and r.stderr.strip().endswith("edgeviz: interrupted"), r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "interrupted: saved epoch 2 up to step" in r.stderr
    blob = load_checkpoint(ckpt)
    assert blob["epochs_done"] == 1 and 1 <= blob["epoch_progress"]["step"] <= 4
    n, lines = torch.get_num_threads(), []
    torch.set_num_threads(1)
    try:
        for out in (ckpt, tmp_path / "ref.pt"):
            run_train(space=space, epochs=2, output=out, subset=64, progress=False, log=lines.append)
    finally:
        torch.set_num_threads(n)
    assert any(f"after epoch 1, step {blob['epoch_progress']['step']}" in m for m in lines), lines
    a, b = load_checkpoint(ckpt), load_checkpoint(tmp_path / "ref.pt")
    assert a["epochs_done"] == 2 and a["epoch_progress"] is None
    sa, sb = a["supernet"]["state_dict"], b["supernet"]["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not list(tmp_path.glob(".ck.pt.*"))


def test_a_build_or_a_second_search_while_a_search_runs(setup, tmp_path, capsys):
    """`edgeviz build FOLDER` on a search still running there, and a second search into it: one line each,
    exit 2, nothing read half-made or overwritten; the lock goes with the search (here: its Ctrl-C)."""
    from edgeviz.atomic import SEARCH_LOCK, lock_is_held
    from edgeviz.cli import main

    command, tmp, _ = setup
    out = tmp_path / "o"
    p = subprocess.Popen(command(out, "--step-delay", "0.3"), env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_reaches_it)
    try:
        deadline = time.time() + 60
        while not _log_has(out / "search.log", "supernet: loaded")() and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert p.poll() is None and lock_is_held(out / SEARCH_LOCK)
        assert main(["build", str(out), "-o", str(tmp_path / "fw")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "a search is in progress in" in err, err
        assert not (tmp_path / "fw").exists()
        assert main(["search", "--budget", "8KB", "-o", str(out), "--json"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "a search is already running in" in err, err
        assert p.poll() is None                                   # the running search goes on undisturbed
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    assert p.returncode == 130 and not lock_is_held(out / SEARCH_LOCK)


def test_kill_inside_a_fine_tuning_run(setup, tmp_path):
    """SIGKILL (no chance to save) in the last rung's 60-step run: it saved at step SAVE_EVERY_STEPS,
    and the restart goes on from there to the uninterrupted result."""
    from edgeviz.search.standalone import SAVE_EVERY_STEPS

    assert 20 < SAVE_EVERY_STEPS < 60            # a save in the last rung's run only (rung 1: 20 steps)
    command, tmp, ref = setup
    out = tmp_path / "o"
    p = subprocess.Popen(command(out, "--step-delay", "0.05"), env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while not list(out.glob("finalists/*.progress.pt")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, p.communicate()[1][-2000:]
    p.kill()
    p.communicate()
    r = subprocess.run(command(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "search.log").read_text().split("---- resumed ----")[-1]
    assert log.count("finished before the restart") == 3
    assert f"rung 2/2, finalist 1/1: continuing at step {SAVE_EVERY_STEPS}/60" in log
    _same_result(out, tmp / "ref", json.loads(r.stdout), ref)


def test_ctrl_c_inside_the_baselines(setup, tmp_path):
    """--baselines: Ctrl-C while a uniform ViT trains from scratch; the restart continues that training
    from its step and ends with the uninterrupted run's baselines."""
    command, _, _ = setup
    baselines = ("--baselines", "--generations", "2", "--finalists", "2", "--finetune-steps", "9")  # the last wins
    r = subprocess.run(command(tmp_path / "ref", *baselines), env=_env(), capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = json.loads(r.stdout)
    out = tmp_path / "o"
    # 87 steps from scratch (the supernet's 78 and 9 fine-tuning) at 0.05 s a step: 4 s to land in
    r = _interrupt_when(command(out, *baselines, "--step-delay", "0.05"),
                        _log_has(out / "search.log", "uniform baseline (largest that fits)", then=1.0))
    _assert_interrupted(r)
    assert (out / "baselines" / "uniform_vit.progress.pt").exists()
    r = subprocess.run(command(out, *baselines), env=_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "search.log").read_text().split("---- resumed ----")[-1]
    assert "uniform baseline (largest that fits): continuing at step" in log
    _same_result(out, tmp_path / "ref", json.loads(r.stdout), ref)
