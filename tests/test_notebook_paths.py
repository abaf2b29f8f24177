"""Notebooks that work wherever they are opened: the store path from any start folder, the
documented papermill one-liner, the jupytext configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from guards import HANG_S
from norep import notebooks as nbrun
from norep.storage import Store
from norep.study import DEFAULT_STORE, load_study, project_root, resolve_store

ROOT = Path(__file__).resolve().parents[1]
ONE_LINER = (
    "jupytext --to ipynb notebooks/01_error_correlation.py -o - | papermill - 01_error_correlation.ipynb -p n_boot 200"
)


def _tiny_store(path: Path) -> Path:
    y = np.array([0, 1, 1, 0])
    st = Store.create(
        path, dataset="toy", class_names=["a", "b"], splits={"test": y, "calib": y}, info={"base_model": "m"}
    )
    st.add_model("m", logits={"test": np.eye(2)[y], "calib": np.eye(2)[y]}, meta={"category": "REINIT", "method": "x"})
    return path


@pytest.fixture()
def project(tmp_path):
    """A project tree: _toc.yml, notebooks/, book/generated/ and the default store."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "generated").mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    _tiny_store(tmp_path / "stores" / "fashion")
    return tmp_path


@pytest.mark.parametrize("start", [".", "notebooks", "book/generated"])
def test_default_store_is_found_from_every_start_folder(project, monkeypatch, start):
    monkeypatch.delenv("NOREP_STORE", raising=False)
    monkeypatch.chdir(project / start)
    assert project_root() == project.resolve()
    assert resolve_store(DEFAULT_STORE).resolve() == (project / "stores" / "fashion").resolve()
    study = load_study(DEFAULT_STORE, verify=False)
    assert Path(study.store.path).resolve() == (project / "stores" / "fashion").resolve()


def test_norep_store_replaces_only_the_default(project, tmp_path_factory, monkeypatch):
    other = _tiny_store(tmp_path_factory.mktemp("env") / "mine")
    monkeypatch.setenv("NOREP_STORE", str(other))
    monkeypatch.chdir(project / "notebooks")
    assert resolve_store(DEFAULT_STORE) == other
    assert resolve_store("stores/fashion-other").resolve() == (project / "stores" / "fashion-other").resolve()
    assert resolve_store(str(project / "stores" / "fashion")) == project / "stores" / "fashion"
    with pytest.raises(ValueError, match="stores/nosuch"):
        load_study("stores/nosuch")


def test_jupytext_config_reads_the_sources_as_percent_notebooks():
    import jupytext
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    cfg = find_jupytext_configuration_file(str(ROOT / "notebooks"))
    assert cfg and Path(cfg).resolve() == (ROOT / "jupytext.toml").resolve()
    assert load_jupytext_configuration_file(cfg).formats in ("py:percent", ["py:percent"])
    for src in nbrun.find_notebooks():
        nb = jupytext.read(src)
        assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"


@pytest.mark.slow
def test_documented_papermill_one_liner_runs_a_section(tmp_path):
    """The one-liner of the book's introduction, run from the project root and from notebooks/."""
    from test_notebooks import make_synthetic_store

    assert ONE_LINER in (ROOT / "book" / "intro.md").read_text()
    store = make_synthetic_store(tmp_path / "store").path
    env = dict(
        os.environ,
        NOREP_STORE=str(store),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")]),
    )
    for start, cmd in ((ROOT, ONE_LINER), (ROOT / "notebooks", ONE_LINER.replace("notebooks/", ""))):
        out = tmp_path / start.name
        out.mkdir()
        cmd = cmd.replace(" 01_error_correlation.ipynb", f" {out / '01_error_correlation.ipynb'}")
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd], cwd=start, env=env, capture_output=True, text=True, timeout=HANG_S
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        text = (out / "01_error_correlation.ipynb").read_text()
        assert "n_boot=200" in text and "reinit_0" in text  # the parameter, and a model of the synthetic store
