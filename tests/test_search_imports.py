"""The search package's imports: each module imports first in a fresh interpreter (no import circle),
all of them at module level and only downward, and edgeviz's core never imports the search."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / "edgeviz" / "search"
MODULES = sorted(p.stem for p in SEARCH.glob("*.py") if p.stem != "__init__")
FRONT_ENDS = {"cli.py", "demo.py"}      # edgeviz's commands: they may import the search


def _edgeviz_imports(path: Path, package: str) -> list[tuple[str, bool]]:
    """(imported edgeviz module, imported at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out += [(n, id(node) in top) for n in names if n.split(".")[0] == "edgeviz"]
    return out


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", f"import edgeviz.search.{module}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]


def test_search_imports_are_at_module_level_and_form_no_circle():
    graph = {}
    for m in MODULES:
        deps = set()
        for name, at_top in _edgeviz_imports(SEARCH / f"{m}.py", "edgeviz.search"):
            parts = name.split(".")
            if parts[:2] == ["edgeviz", "search"] and len(parts) > 2 and parts[2] in MODULES:
                assert at_top, f"edgeviz.search.{m} imports {name} inside a function"
                deps.add(parts[2])
        graph[m] = deps
    done: list[str] = []
    while len(done) < len(graph):                       # peel off modules whose imports are all done
        ready = [m for m in graph if m not in done and graph[m] <= set(done)]
        assert ready, f"import circle among {sorted(set(graph) - set(done))}"
        done += sorted(ready)


def test_the_core_never_imports_the_search():
    for path in sorted((REPO / "edgeviz").rglob("*.py")):
        rel = path.relative_to(REPO / "edgeviz")
        if rel.parts[0] == "search" or str(rel) in FRONT_ENDS:
            continue
        package = ".".join(("edgeviz",) + rel.parts[:-1])
        bad = [n for n, _ in _edgeviz_imports(path, package) if n.split(".")[:2] == ["edgeviz", "search"]]
        assert not bad, f"edgeviz/{rel} imports {bad}"
