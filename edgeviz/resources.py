"""Where the shipped data lives: targets/, firmware/ and hls/.

In a built wheel they are copied into edgeviz/_data/; in a source checkout (editable install, or
tests run from the repo) they are the top-level folders beside the package.
"""
from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Path of a shipped data folder: 'targets', 'firmware' or 'hls'."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"edgeviz data folder '{name}' is missing from the installation")
