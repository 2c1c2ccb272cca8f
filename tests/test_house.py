"""The shape of the house: ops own every op fact, imports go one way, no circles.

These read the source (no model runs), so they fail the moment a new module dispatches on an op name
or imports upward: the pipeline is frontend -> quantize -> passes -> planner -> lower -> backends,
with project (the jobs) above, search above that and the command line on top.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import edgeviz

PKG = Path(edgeviz.__file__).parent

# a comparison of a node's op (or a variable holding one) with a name, or a lookup of a named op
DISPATCH = re.compile(r"""\.op\s*(==|!=)\s*["']|\.op\s+(not\s+)?in\s*[(\[{]|OPS\[\s*["']|\bop\s*(==|!=|in)\s*[(\["']""")
# torch.fx nodes also have an .op ("call_function"): not an edgeviz op
NOT_OURS = ("call_function",)

# module -> the edgeviz modules it may not import (directly): the layers above it
LAYERS = [
    ("edgeviz.ops", ("edgeviz.passes", "edgeviz.planner", "edgeviz.lower", "edgeviz.backends", "edgeviz.project",
                     "edgeviz.frontend", "edgeviz.search", "edgeviz.cli", "edgeviz.hls", "edgeviz.runner")),
    ("edgeviz.frontend", ("edgeviz.passes", "edgeviz.planner", "edgeviz.lower", "edgeviz.backends",
                          "edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.tflite", ("edgeviz.frontend", "edgeviz.passes", "edgeviz.planner", "edgeviz.lower", "edgeviz.backends",
                        "edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.passes", ("edgeviz.planner", "edgeviz.lower", "edgeviz.backends", "edgeviz.project", "edgeviz.search")),
    ("edgeviz.planner", ("edgeviz.lower", "edgeviz.backends", "edgeviz.project", "edgeviz.search")),
    ("edgeviz.hls", ("edgeviz.lower", "edgeviz.backends", "edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.backends", ("edgeviz.lower", "edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.runner", ("edgeviz.lower", "edgeviz.backends", "edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.lower", ("edgeviz.project", "edgeviz.search", "edgeviz.cli")),
    ("edgeviz.project", ("edgeviz.search", "edgeviz.cli")),
    ("edgeviz.inputs", ("edgeviz.search", "edgeviz.project", "edgeviz.cli")),
    ("edgeviz.data", ("edgeviz.search", "edgeviz.project", "edgeviz.cli")),
    ("edgeviz.search", ("edgeviz.cli", "edgeviz.project")),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, bool, int]]:
    """(imported edgeviz module, at module level?, line) for each import in the file."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    level_of = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            level_of[child] = node
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            cands = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known] or [mod]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        top = isinstance(level_of.get(node), ast.Module)
        out += [(c, top, node.lineno) for c in cands if c in known]
    return out


def test_no_op_name_dispatch_outside_ops():
    hits = []
    for name, path in _modules().items():
        if name.startswith("edgeviz.ops"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if DISPATCH.search(code) and not any(w in code for w in NOT_OURS):
                hits.append(f"{path.relative_to(PKG.parent)}:{i}: {line.strip()}")
    assert not hits, "op facts belong to the op's module (edgeviz/ops/):\n" + "\n".join(hits)


def test_dispatch_scan_catches_what_it_should():
    for line in ('if n.op == "linear":', "if node.op in ('a', 'b'):", 'x = OPS["linear"].macs(n, g)',
                 'elif op == "softmax":'):
        assert DISPATCH.search(line), line
    for line in ("if n.op not in OPS:", "OPS[n.op].macs(n, g)", "reuse.get(n.name, reuse.get(n.op, 1))"):
        assert not DISPATCH.search(line), line


def test_imports_are_module_level_and_go_one_way():
    mods = _modules()
    known = set(mods)
    inner, upward = [], []
    for name, path in mods.items():
        for target, top, line in _imports(name, path, known):
            if not top:
                inner.append(f"{name}:{line} imports {target} inside a function")
            for low, above in LAYERS:
                if (name == low or name.startswith(low + ".")) and any(
                        target == a or target.startswith(a + ".") for a in above):
                    upward.append(f"{name}:{line} imports {target} (a layer above it)")
    assert not inner, "\n".join(inner)
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    mods = _modules()
    known = set(mods)
    edges = {n: {t for t, _, _ in _imports(n, p, known) if t != n and not t.startswith(n + ".")}
             for n, p in mods.items()}
    # a package imports its own submodules from __init__: not a circle through the package
    for n in edges:
        edges[n] = {t for t in edges[n] if not n.startswith(t + ".")}
    seen, stack, circles = {}, [], []

    def visit(n):
        seen[n] = "open"
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if seen.get(t) == "open":
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in seen:
                visit(t)
        stack.pop()
        seen[n] = "done"

    for n in sorted(edges):
        if n not in seen:
            visit(n)
    assert not circles, "\n".join(circles)
