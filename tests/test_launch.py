"""Launch buttons: the Binder environment and the Colab setup cell, checked offline."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from norep import notebooks as nbrun
from norep.study import DEFAULT_STORE, resolve_store

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
TOOLING = {"jupyterlab"}  # notebook tooling Binder adds; not needed to build the book, so not pinned
HEAVY = ("pytest", "hypothesis", "ruff", "selenium", "transformers", "nvidia", "cuda", "triton")


def _name(line: str) -> str:
    return re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements() -> list[str]:
    lines = [ln.split("#", 1)[0].strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("-")]


def test_binder_requirements_resolve_against_the_constraints():
    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in _requirements()]
    text = (BINDER / "requirements.txt").read_text()
    assert "-c ../constraints.txt" in text and "download.pytorch.org/whl/cpu" in text
    pins = {}
    for ln in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in ln and not ln.startswith("#"):
            name, version = ln.split("==", 1)
            pins[_name(name)] = version.strip()
    names = {_name(r.name) for r in reqs}
    for r in reqs:
        n = _name(r.name)
        assert n in pins or n in TOOLING, f"{n} is neither pinned in constraints.txt nor notebook tooling"
        if n in pins:
            assert r.specifier.contains(pins[n], prereleases=True), f"{r} excludes the pinned {pins[n]}"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = {_name(Requirement(d).name) for d in deps} - names
    assert not missing, f"the library's dependencies missing from binder/requirements.txt: {sorted(missing)}"
    assert not [n for n in names if n.startswith(HEAVY)], "test, browser or CUDA packages in the Binder environment"
    assert {"jupyterlab", "jupytext", "papermill", "ipykernel"} <= names


def test_binder_scripts_install_the_library_and_point_at_the_quick_store():
    post, start = (BINDER / "postBuild").read_text(), (BINDER / "start").read_text()
    for script in (post, start):
        assert script.startswith("#!/bin/bash")
    assert "pip install --no-deps -e ." in post and "zoo train --preset fashion --quick --out stores/quick" in post
    assert "Jupytext Notebook" in post
    assert 'export NOREP_STORE="${REPO_DIR:-${HOME}}/stores/quick"' in start and start.rstrip().endswith('exec "$@"')
    assert (BINDER / "postBuild").stat().st_mode & 0o111 and (BINDER / "start").stat().st_mode & 0o111


def _setup_cell(src: Path) -> str:
    import jupytext

    cells = [c for c in jupytext.read(src).cells if "remove-cell" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{src.name}: one hidden setup cell"
    return cells[0].source


def test_colab_setup_cell_is_the_same_in_every_chapter_and_precedes_the_parameters():
    import jupytext

    first = _setup_cell(nbrun.find_notebooks()[0])
    for src in nbrun.find_notebooks():
        assert _setup_cell(src) == first, src.name
        tags = [c.metadata.get("tags", []) for c in jupytext.read(src).cells]
        assert tags.index(["remove-cell"]) < tags.index(["parameters"])
    cfg = (ROOT / "_config.yml").read_text()
    assert re.search(r"colab_url: https://colab\.research\.google\.com", cfg)


@pytest.mark.parametrize(
    "in_colab, installed, present",
    [(False, True, False), (True, False, False), (True, True, False), (True, True, True)],
)
def test_colab_setup_cell_logic(tmp_path, monkeypatch, in_colab, installed, present):
    """Outside Colab the cell does nothing; on Colab it clones and installs only when `import norep` fails
    (so a retry after a failed install tries again), trains the quick study once, then runs from the
    project folder with $NOREP_STORE on the quick store."""
    import subprocess

    import norep

    root = tmp_path / "content" / "norep"
    if installed:
        root.mkdir(parents=True)  # installed on Colab: the project was cloned there
    if present:
        (root / "stores" / "quick").mkdir(parents=True, exist_ok=True)
        (root / "stores" / "quick" / "store.json").write_text("{}")
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            root.mkdir(parents=True, exist_ok=True)
        if "pip" in cmd:
            sys.modules["norep"] = norep  # the install makes `norep` importable
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("NOREP_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if not installed:
        monkeypatch.setitem(sys.modules, "norep", None)  # `import norep` fails
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", object())
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = _setup_cell(nbrun.find_notebooks()[0]).replace('"/content/norep', '"' + str(root))
    exec(compile(code, "setup-cell", "exec"), {})
    import os

    if not in_colab:
        assert calls == [] and "NOREP_STORE" not in os.environ and Path.cwd() == tmp_path
        return
    kinds = [" ".join(map(str, c)) for c in calls]
    if not installed:
        assert kinds[0].startswith("git clone") and "pip install" in kinds[1]
        assert kinds[1].endswith(f"{root}[book,zoo]")  # the notebooks glue figures (book) and train (zoo)
        kinds = kinds[2:]
    if present:
        assert kinds == []
    else:
        assert "download_fashion_mnist" in kinds[0] and "zoo train" in kinds[1] and len(kinds) == 2
    assert os.environ["NOREP_STORE"] == f"{root}/stores/quick"
    assert Path.cwd() == root and sys.path[0] == f"{root}/lib"
    assert resolve_store(DEFAULT_STORE) == Path(f"{root}/stores/quick")


def test_colab_setup_cell_is_short():
    cell = _setup_cell(nbrun.find_notebooks()[0])
    code = [ln for ln in cell.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) <= 12, cell


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pip's vendored pkg_resources
def test_pip_reads_the_binder_requirements_with_the_constraints_beside_them(tmp_path, monkeypatch):
    """pip itself parses binder/requirements.txt from another folder (repo2docker's may differ) and
    finds ../constraints.txt relative to the file, as the build will."""
    try:
        from pip._internal.network.session import PipSession
        from pip._internal.req.req_file import parse_requirements
    except ImportError:  # pragma: no cover - pip's internals moved
        pytest.skip("pip's requirement parser is not importable")
    monkeypatch.chdir(tmp_path)
    parsed = list(parse_requirements(str(BINDER / "requirements.txt"), session=PipSession()))
    constraints = [r for r in parsed if r.constraint]
    pinned = sum(1 for ln in (ROOT / "constraints.txt").read_text().splitlines() if "==" in ln)
    assert len(constraints) == pinned
    assert len(parsed) - len(constraints) == len(_requirements())


def _pins() -> dict[str, str]:
    pins = {}
    for ln in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in ln and not ln.startswith("#"):
            name, version = ln.split("==", 1)
            pins[_name(name)] = version.strip()
    return pins


def test_binder_pins_a_python_that_every_pinned_package_supports():
    """repo2docker's default Python may be older than the pinned numpy, pandas, scipy and scikit-learn
    accept: runtime.txt names one that each installed pinned package's Requires-Python allows."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    text = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(3\.\d+)", text)
    assert m, f"binder/runtime.txt should read python-3.X, not {text!r}"
    python = m.group(1)
    pins, checked = _pins(), []
    for name in ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "torch", "jupyter-book"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != pins.get(name):
            continue  # not the pinned version: its metadata says nothing about the pin
        spec = dist.metadata.get("Requires-Python")
        if spec:
            assert SpecifierSet(spec).contains(f"{python}.0"), f"{name}=={dist.version} requires Python {spec}"
            checked.append(name)
    assert {"numpy", "pandas"} <= set(checked), checked
    assert f"python={python}" in (ROOT / "environment.yml").read_text()  # conda's environment agrees


def test_the_lab_extra_installs_jupyterlab_with_jupytext_and_the_book_tooling():
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    lab = {_name(Requirement(r).name) for r in extras["lab"]}
    assert "jupyterlab" in lab and "norep" in lab  # norep[book] brings jupytext, papermill, ipykernel
    book = {_name(Requirement(r).name) for r in extras["book"]}
    assert {"jupytext", "ipykernel", "sphinxcontrib-katex", "plotly"} <= book
    pins = _pins()
    for r in extras["lab"] + extras["book"]:
        req = Requirement(r)
        n = _name(req.name)
        if n != "norep":
            assert n in pins and req.specifier.contains(pins[n], prereleases=True), f"{r} vs constraints.txt"


def test_store_page_points_online_readers_at_the_quick_store_binder_uses():
    text = (ROOT / "book" / "store.md").read_text()
    online = text[text.index("## Running a chapter online") :]
    assert "--out stores/fashion" not in online
    assert "stores/quick" in online and "NOREP_STORE" in online
    start = (BINDER / "start").read_text()
    assert "stores/quick" in start  # the store the page names is the one Binder's start script uses
