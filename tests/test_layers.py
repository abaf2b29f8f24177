"""The layers of lib/norep hold: the import-linter contracts, no import cycle, few top-level modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(LIB) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _lint_imports():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return exe


def test_import_linter_contracts_are_kept():
    proc = subprocess.run(
        [str(_lint_imports()), "--no-cache"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_layer_contract_can_fail(tmp_path):
    """The same contract on a copy of the package with one upward import (the store importing the claims) breaks."""
    import shutil

    _lint_imports()
    copy = tmp_path / "lib"
    shutil.copytree(LIB / "norep", copy / "norep", ignore=shutil.ignore_patterns("__pycache__", "resources"))
    with open(copy / "norep" / "storage" / "_io.py", "a") as f:
        f.write("\nfrom norep import claims  # noqa: E402,F401\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = dict(os.environ, PYTHONPATH=str(copy))
    proc = subprocess.run(
        [str(_lint_imports()), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "norep.storage._io -> norep.claims" in proc.stdout


def _import_graph():
    grimp = pytest.importorskip("grimp")
    sys.path.insert(0, str(LIB))
    try:
        return grimp.build_graph("norep", cache_dir=None)
    finally:
        sys.path.remove(str(LIB))


def _cycles(adj: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in adj:
        if root in index:
            continue
        work = [(root, iter(adj[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(adj[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []


def test_no_import_cycle_in_the_package():
    graph = _import_graph()
    modules = sorted(m for m in graph.modules if m == "norep" or m.startswith("norep."))
    adj = {m: sorted(t for t in graph.find_modules_directly_imported_by(m) if t in modules) for m in modules}
    assert _cycles(adj) == []


def test_few_modules_directly_in_the_package():
    top = sorted(p.name for p in (LIB / "norep").glob("*.py"))
    assert len(top) <= 8, top
