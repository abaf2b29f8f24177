"""One run, one store: the runner's output folder holds pages of the store it ran on only, every
chapter has a page, and ``keep_going`` runs every chapter before reporting the failures."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from norep import notebooks as nbrun
from norep.storage import Store

HEADER = (
    "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
    "#     name: python3\n# ---\n\n"
)


def _store(path: Path, base="m") -> Path:
    y = np.array([0, 1, 1, 0, 1])
    st = Store.create(
        path, dataset="toy", class_names=["a", "b"], splits={"test": y, "calib": y}, info={"base_model": base}
    )
    st.add_model("m", logits={"test": np.eye(2)[y], "calib": np.eye(2)[y]}, meta={"category": "REINIT", "method": "x"})
    return path


def _sources(folder: Path, failing: str | None = None) -> Path:
    """Two tiny chapters under the real names of chapters 00 and 01; ``failing`` raises."""
    folder.mkdir()
    for name, title in (("00_model_zoo", "The zoo"), ("01_error_correlation", "Errors")):
        body = 'raise RuntimeError("planted failure")' if name == failing else 'print("ran on", store)'
        (folder / f"{name}.py").write_text(
            f'{HEADER}# %% [markdown]\n# # {title}\n\n# %% tags=["parameters"]\n'
            f'store = "stores/fashion"\n\n# %%\n{body}\n'
        )
    return folder


def _meta(path: Path) -> dict:
    return json.loads(path.read_text())["metadata"].get("norep", {})


def test_keep_going_runs_every_chapter_and_reports_all_failures(tmp_path):
    store, out = _store(tmp_path / "s"), tmp_path / "out"
    src = _sources(tmp_path / "nb", failing="00_model_zoo")
    with pytest.raises(nbrun.NotebooksFailed) as info:
        nbrun.run_notebooks(store, out=out, notebook_dir=src, keep_going=True, progress=False)
    assert [e.notebook for e in info.value.errors] == ["00_model_zoo"]
    assert [r.name for r in info.value.runs] == ["01_error_correlation"]
    fp = nbrun.store_fingerprint(store)
    assert _meta(out / "01_error_correlation.ipynb") == {"store": str(store), "store_fingerprint": fp}
    failed = _meta(out / "00_model_zoo.ipynb")
    assert failed["not_run"] == "This chapter failed on this store." and failed["store_fingerprint"] == fp
    claims = (out / "claims.md").read_text()
    assert fp in claims and "| C10 | **not testable** |" not in claims  # the registry knows C10's kind
    assert "| C10 (method check) | **not testable** |" in claims and "planted failure" not in claims


def test_without_keep_going_the_run_stops_but_every_chapter_has_a_page(tmp_path):
    store, out = _store(tmp_path / "s"), tmp_path / "out"
    src = _sources(tmp_path / "nb", failing="00_model_zoo")
    with pytest.raises(nbrun.NotebookError, match="planted failure"):
        nbrun.run_notebooks(store, out=out, notebook_dir=src, progress=False)
    assert "earlier chapter failed" in "".join(
        nbformat.read(str(out / "01_error_correlation.ipynb"), 4).cells[0].source
    )
    assert (out / "environment.md").exists() and (out / "about_store.md").exists()


def test_pages_of_another_store_are_replaced_even_by_a_partial_run(tmp_path):
    a, b, out = _store(tmp_path / "a"), _store(tmp_path / "b"), tmp_path / "out"
    src = _sources(tmp_path / "nb")
    nbrun.run_notebooks(a, out=out, notebook_dir=src, progress=False)
    fp_a = nbrun.store_fingerprint(a)
    assert _meta(out / "00_model_zoo.ipynb")["store_fingerprint"] == fp_a
    nbformat.write(nbformat.v4.new_notebook(), str(out / "02_ensembles.ipynb"))  # an old page, no store recorded
    (out / "03_specialization.failed.ipynb").write_text((out / "00_model_zoo.ipynb").read_text())
    runs = nbrun.run_notebooks(b, out=out, notebook_dir=src, only=["01"], progress=False)
    fp_b = nbrun.store_fingerprint(b)
    assert fp_a != fp_b and [r.name for r in runs] == ["01_error_correlation"]
    assert not (out / "02_ensembles.ipynb").exists() and not (out / "03_specialization.failed.ipynb").exists()
    for page in out.glob("*.ipynb"):
        assert _meta(page)["store_fingerprint"] == fp_b, page.name
    assert _meta(out / "00_model_zoo.ipynb")["not_run"] == "Not run on this store yet."
    for page in ("claims.md", "environment.md", "about_store.md"):
        text = (out / page).read_text()
        assert fp_b in text and fp_a not in text
    # a store that lacks what a chapter needs: a page saying what and how to add it, not a failure
    c = tmp_path / "c"
    _store(c, base=None)
    runs = nbrun.run_notebooks(c, out=out, notebook_dir=src, progress=False)
    assert runs == []
    page = "".join(nbformat.read(str(out / "01_error_correlation.ipynb"), 4).cells[0].source)
    assert "Not run on this store." in page and f"norep store set {c} --base-model NAME" in page


def test_missing_inputs_name_what_each_chapter_lacks(tmp_path):
    st = Store.open(_store(tmp_path / "s"))
    assert nbrun.missing_inputs(st, "00_model_zoo") == []
    assert nbrun.missing_inputs(st, "00_model_zoo", {"base_model": "nosuch"}) == []  # the notebook reports it
    lack05 = nbrun.missing_inputs(st, "05_feature_concatenation")
    assert len(lack05) == 2 and all("embeddings of the base model `m`" in m for m in lack05)
    lack06 = nbrun.missing_inputs(st, "06_voc_transfer", {"down_splits": ["dt", "dv", "dte"]})
    assert [m.split(" (")[0] for m in lack06] == ["split `dt`", "split `dv`", "split `dte`"]
    assert nbrun.missing_inputs(st, "01_error_correlation", {"calib_split": "val"})[0].startswith("split `val`")


def test_claims_page_columns_are_one_list():
    headers = [h for h, _ in nbrun.CLAIM_COLUMNS]
    assert headers[:3] == ["claim", "verdict", "effect [95 % interval]"] and "chapter" in headers
