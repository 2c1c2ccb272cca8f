"""Atomic writes: files and whole output folders appear complete or not at all; and the locks that
make a second writer (or a reader of a folder still being written) stop with one line."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from edgeviz.errors import EdgevizError

# The lock a running search holds in its output folder: a second search into the folder refuses to
# start, and `edgeviz build FOLDER` refuses to read a model the search has not finished.
SEARCH_LOCK = ".search.lock"


@contextlib.contextmanager
def held_lock(path: str | Path, busy: str):
    """An exclusive flock on the file ``path`` (made if missing) for the with-block; while another
    process holds it, EdgevizError(busy) at once instead of waiting. The kernel drops the lock when its
    holder exits, killed or not, so no stale lock ever blocks; the empty file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgevizError(busy) from None
        yield
    finally:
        os.close(fd)                       # releases the lock


def lock_is_held(path: str | Path) -> bool:
    """Whether a live process holds ``held_lock(path)`` now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path in the same folder; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # held until the rename: marks the temp file as being written, so remove_stale_temps (a resumed
    # training clearing what a killed one left) never deletes one that another process is writing
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temps(path: str | Path) -> None:
    """Remove the temp files atomic_path left beside `path` when a writer was killed mid-write; a temp
    file whose writer is alive holds its flock and stays."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except FileNotFoundError:
            continue                          # renamed into place meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            stale.unlink(missing_ok=True)
        except BlockingIOError:
            pass                              # being written by a live process
        finally:
            os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_save(obj, path: str | Path) -> None:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


@contextlib.contextmanager
def _swap_lock(parent: Path):
    """An exclusive flock on the output's parent folder while one build swaps its folder in.

    Two builds into one -o (two terminals, a Makefile with -j) each stage their own folder, but the
    swap is two renames (final -> old, stage -> final): interleaved, the second build's rename found
    `final` gone (FileNotFoundError) or a fresh non-empty `final` in its way (ENOTEMPTY), and the two
    used the same `.old-<pid>` name when they ran as threads of one process. Under the lock the swaps
    run one after the other, so both builds finish and the folder holds the later one whole. The lock
    is on the folder itself, not a lock file, so nothing is left beside the output; it is held only for
    the renames, never while compiling."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                       # closing the last descriptor releases the lock


@contextlib.contextmanager
def staged_dir(final: str | Path):
    """Yield a fresh temporary folder beside `final`; on success it replaces `final` whole.

    A failure (an error, Ctrl-C) leaves `final` as it was (or absent) and removes the half-written
    folder. Concurrent stagings into one `final` are serialised at the swap (_swap_lock): the last to
    finish wins, whole.
    """
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        # os.mkdir under a unique name rather than mkdtemp: the build folder gets the permissions any
        # folder the user makes gets (the umask), not mkdtemp's 0700
        stage = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.partial"
        os.mkdir(stage)
    except OSError as e:
        # name the folder the user chose (-o), not the temporary name nobody asked for
        raise OSError(e.errno, e.strerror, str(final.parent)) from None
    old = None
    try:
        yield stage
        with _swap_lock(final.parent):
            try:
                if final.exists():
                    # a unique empty folder to rename the previous build onto (rename may replace an
                    # empty folder): unique per call, so threads of one process do not collide
                    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
                    os.replace(final, old)
                os.replace(stage, final)
            except BaseException:
                # the previous build goes back if the new one could not take its place (or Ctrl-C
                # came between the two renames): never an absent folder where a build stood
                if old is not None and not final.exists():
                    try:
                        os.replace(old, final)
                    except OSError:
                        pass               # then it stays as .NAME.*.old beside the output, not deleted
                    old = None
                raise
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)
