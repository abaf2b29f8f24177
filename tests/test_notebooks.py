"""The section notebooks and their papermill runner.

Every notebook is executed once per session on a small store (the embedded zoo's ``digits``
preset when ``norep zoo train`` is available, else a synthetic store with planted structure) and
the executed copies are checked: they ran without error, honoured their parameters and produced
their figures. ``test_book.py`` builds the book from the same executed notebooks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from guards import HANG_S
from norep import CATEGORIES
from norep import notebooks as nbrun
from norep.study import STATUSES

ROOT = Path(__file__).resolve().parents[1]

# Parameters that keep every notebook fast on the small store (they are also what the tests
# check the notebooks honour).
FAST = {
    "n_boot": 60,
    "seed": 3,
    "probe_Cs": [0.1, 10.0],
    "probe_max_iter": 50,
    "compression_points": 3,
    "rates": [1.0, 0.5, 0.0],
    "top_k": 3,
}

_MEMO: dict[str, object] = {}


def make_synthetic_store(path: Path, *, seed: int = 0, reverse: bool = False):
    """A small store with planted structure: errors decorrelate as the category diverges.

    Ten classes, two groups of classes; each model's logits mix a noise shared by all models
    (weight falling from Reinit to Dataset) with its own noise, and the Dataset models are
    better on the second group of classes. Embeddings are noisy linear maps of the logits, so
    linear probes and the multi-label downstream task work. ``reverse=True`` plants the opposite
    structure (Reinit models share the least noise with the base, Dataset models the most).
    """
    from norep.storage import Store

    rng = np.random.default_rng(seed)
    C, D, K = 10, 24, 4
    sizes = {"train": 700, "calib": 500, "test": 600, "down_train": 300, "down_val": 200, "down_test": 300}
    y = {s: rng.integers(0, C, n) for s, n in sizes.items()}
    labels = {s: y[s] for s in ("train", "calib", "test")}
    group_of_label = np.array(
        [
            [1, 0, 0, 1],
            [1, 0, 1, 0],
            [0, 1, 0, 1],
            [0, 1, 1, 0],
            [1, 1, 0, 0],
            [0, 0, 1, 1],
            [1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
        ]
    )
    for s in ("down_train", "down_val", "down_test"):
        labels[s] = group_of_label[y[s]].astype(np.uint8)
    shared = {s: rng.normal(size=(n, C)) for s, n in sizes.items()}
    st = Store.create(
        path,
        dataset="synthetic",
        class_names=[f"class{i}" for i in range(C)],
        splits=labels,
        split_class_names={s: [f"attr{k}" for k in range(K)] for s in ("down_train", "down_val", "down_test")},
        info={
            "base_model": "base",
            "accuracy_band": [0.44, 0.58],
            "preset": "synthetic",
            "class_groups": {"nature": [0, 1, 2, 3, 4], "anthropogenic": [5, 6, 7, 8, 9]},
        },
    )
    share = {"REINIT": 0.85, "HPARAM": 0.75, "ARCH": 0.55, "FWORK": 0.45, "DATASET": 0.25}
    if reverse:
        share = dict(zip(share, reversed(list(share.values())), strict=True))
    specs = [("base", "REINIT", 2.35)]
    for cat in CATEGORIES:
        specs += [(f"{cat.lower()}_{i}", cat, 2.35 + 0.05 * i) for i in range(4)]
    specs += [("high_a", "ARCH", 3.4), ("high_b", "HPARAM", 3.2)]
    specs += [("low_reinit", "REINIT", 1.5), ("low_dataset", "DATASET", 1.5), ("low_fwork", "FWORK", 1.4)]
    proj = rng.normal(size=(C, D))
    for name, cat, strength in specs:
        w = share[cat]
        logits, emb = {}, {}
        for s, n in sizes.items():
            own = rng.normal(size=(n, C))
            noise = np.sqrt(w) * shared[s] + np.sqrt(1 - w) * own
            boost = np.where(y[s] >= 5, 0.5, -0.3) if cat == "DATASET" else np.zeros(n)
            z = noise * 1.6 + (strength + boost)[:, None] * np.eye(C)[y[s]]
            if s in ("train", "calib", "test"):
                logits[s] = z * (0.7 if cat == "FWORK" else 1.0)
            own_proj = proj + (1 - w) * rng.normal(size=(C, D))
            emb[s] = z @ own_proj + 0.5 * rng.normal(size=(n, D))
        st.add_model(
            name,
            logits=logits,
            embeddings=emb,
            meta={
                "category": cat,
                "method": f"synthetic {cat.lower()}",
                "data": "synthetic",
                "head": "trained",
                "source": "tests",
                "seed": 0,
            },
        )
    return st


def _build_store(tmp: Path) -> Path:
    """The digits preset of the embedded zoo if it is available, else the synthetic store."""
    store = tmp / "store"
    try:
        import norep.zoo.embedded  # noqa: F401

        have_zoo = os.environ.get("NOREP_TEST_SYNTHETIC") != "1"
    except ImportError:
        have_zoo = False
    if have_zoo:
        proc = subprocess.run(
            [sys.executable, "-m", "norep.cli", "zoo", "train", "--preset", "digits", "--out", str(store)],
            capture_output=True,
            text=True,
            timeout=HANG_S,
        )
        if proc.returncode == 0:
            return store
        print("digits preset failed, using the synthetic store:", proc.stderr[-2000:], file=sys.stderr)
    make_synthetic_store(store)
    return store


def executed_notebooks(tmp_path_factory) -> dict:
    """Build the small store once and execute every notebook once per session (memoised)."""
    if "runs" not in _MEMO:
        tmp = tmp_path_factory.mktemp("nbrun")
        store = _build_store(tmp)
        out = tmp / "generated"
        # with every exercise solution run after its notebook (test_every_exercise_solution_runs)
        runs = nbrun.run_notebooks(store, out=out, parameters=FAST, progress=False, solutions=True)
        _MEMO["runs"] = {"store": store, "out": out, "runs": runs}
    return _MEMO["runs"]


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    return executed_notebooks(tmp_path_factory)


def _outputs(nb):
    for cell in nb.cells:
        yield from cell.get("outputs", [])


# ------------------------------------------------------------------------------------ fast tests


def test_every_section_has_a_source_with_the_skeleton():
    import jupytext

    sources = nbrun.find_notebooks()
    assert [p.stem for p in sources] == list(nbrun.NOTEBOOKS)
    for src in sources:
        nb = jupytext.read(src)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        params = [i for i, t in enumerate(tags) if "parameters" in t]
        assert len(params) == 1, f"{src.name}: exactly one parameters cell"
        code = nb.cells[params[0]].source
        for name in ("store", "base_model", "accuracy_band", "n_boot", "seed", "fig_format"):
            assert f"{name} =" in code, f"{src.name}: parameter {name} missing"
        assert 'store = "stores/fashion"' in code
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "Try it" in text, f"{src.name}: no 'Try it' section"
        assert "dropdown" in text or "<details>" in text or any("hide-input" in t for t in tags), (
            f"{src.name}: no folded solution"
        )
        assert "{glue:figure}" in text, f"{src.name}: no captioned figure"
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_chapters_have_exercises_whose_solutions_are_code_folded_in_details():
    """Chapters 01-06: every exercise has a solution folded in <details> (folds in Jupyter, Colab and the
    book alike, unlike a MyST dropdown) holding code that produces numbers (run by the slow test below)."""
    import jupytext

    for src in nbrun.find_notebooks():
        if src.stem < "01":
            continue
        text = "\n".join(c.source for c in jupytext.read(src).cells if c.cell_type == "markdown")
        assert ":class: dropdown" not in text, src.name
        exercises = re.findall(r"\*\*Exercise[^*]*\*\*", text)
        solutions = nbrun.exercise_solutions(src)
        assert exercises and len(re.findall(r"<details>", text)) == len(exercises), src.name
        assert sorted({label for label, _ in solutions}) == sorted(e.strip("*").rstrip(".") for e in exercises), (
            src.name
        )
        assert all("print(" in code for _, code in solutions), src.name


def test_a_failing_solution_fails_its_notebook(tmp_path):
    """The exercise check can fail: a solution that raises fails the notebook, naming the cell."""
    src = tmp_path / "09_tiny.py"
    src.write_text(
        "# %% tags=['parameters']\nx = 1\n\n# %% [markdown]\n# **Exercise.** What is x?\n#\n# <details>\n"
        "# <summary>Solution</summary>\n#\n# ```python\n# print(x + undefined_name)\n# ```\n#\n# </details>\n"
    )
    assert nbrun.exercise_solutions(src) == [("Exercise", "print(x + undefined_name)\n")]
    nbrun.execute_notebook(src, tmp_path / "ok.ipynb", timeout=120)  # without the solutions it runs
    with pytest.raises(nbrun.NotebookError, match="NameError"):
        nbrun.execute_notebook(src, tmp_path / "bad.ipynb", timeout=120, solutions=True)


def test_claims_page_shows_stability_over_replicates(tmp_path):
    """With replicate folders the claims page gains a stability column and every store's verdicts."""
    import nbformat

    from norep.claims import ClaimResult
    from norep.notebooks._pages import _write_claims

    def folder(name, statuses):
        d = tmp_path / name
        d.mkdir()
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("")
        for cid, st in statuses.items():
            rec = ClaimResult(cid, "t", st, effect=0.02, low=0.01, high=0.03).record()
            cell.outputs.append(
                nbformat.v4.new_output("display_data", data={"text/plain": ""}, metadata={"norep_claim": rec})
            )
        nb.cells.append(cell)
        nb.metadata["norep"] = {"store": f"stores/{name}"}
        nbformat.write(nb, str(d / "01_error_correlation.ipynb"))
        return d

    main = folder("main", {"C1": "reproduced", "C2": "inconclusive"})
    reps = [folder("seed1", {"C1": "reproduced", "C2": "reproduced"}), folder("seed2", {"C1": "reproduced"})]
    page = _write_claims(main, {"store": "stores/main", "store_fingerprint": "f"}, replicates=reps).read_text()
    header = next(ln for ln in page.splitlines() if ln.startswith("| claim |"))
    assert "stability" in header
    assert re.search(r"^\| C1 \|.*\| 3 of 3 stores \|", page, re.M)
    assert re.search(r"^\| C2 \|.*\| 1 of 3 stores \|", page, re.M)
    assert "| claim | main | seed1 | seed2 | same verdict |" in page
    # without replicates: no stability column
    assert "stability" not in _write_claims(main, {"store": "stores/main", "store_fingerprint": "f"}).read_text()


def test_parse_parameters_and_only():
    assert nbrun.parse_parameters(["a=1", "b=x", "c=[1, 2]"]) == {"a": 1, "b": "x", "c": [1, 2]}
    with pytest.raises(ValueError, match="key=value"):
        nbrun.parse_parameters(["novalue"])
    with pytest.raises(ValueError, match="matches no notebook"):
        nbrun.find_notebooks(only=["99"])


def test_study_api_is_still_importable_from_the_runner():
    from norep import study

    older = ["DEFAULT_STORE", "project_root", "resolve_store", "STATUSES", "Study", "load_study", "check_parameters"]
    older += ["PROFILES", "apply_profile", "limit_threads", "set_figure_format", "glue_figure", "fmt_ci"]
    for name in [*older, "verify_store"]:
        assert getattr(nbrun, name) is getattr(study, name), name
    from norep import claims, paper

    assert nbrun.report_claim is paper.report_claim and nbrun.verdict is claims.verdict


def test_package_fingerprint_covers_every_module(tmp_path, monkeypatch):
    import shutil

    import norep
    from norep.notebooks._execute import _package_fingerprint

    copy = tmp_path / "norep"
    shutil.copytree(Path(norep.__file__).resolve().parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(norep, "__file__", str(copy / "__init__.py"))
    modules = sorted(copy.rglob("*.py"))
    assert {"study.py", "_execute.py", "_pages.py", "_run.py", "_sources.py"} <= {p.name for p in modules}
    seen = {_package_fingerprint()}
    for p in modules:
        p.write_bytes(p.read_bytes() + b"\n")
        seen.add(_package_fingerprint())
    assert len(seen) == len(modules) + 1


def test_cli_errors_are_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "norep.cli", "notebooks", "run", "--store", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("norep: ") and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------ slow tests


@pytest.mark.slow
def test_notebooks_ran_without_errors_and_made_figures(executed):
    import nbformat

    runs = executed["runs"]
    assert [r.name for r in runs] == list(nbrun.NOTEBOOKS)
    for r in runs:
        nb = nbformat.read(str(r.output), as_version=4)
        outs = list(_outputs(nb))
        assert not [o for o in outs if o.get("output_type") == "error"], r.name
        # figures are glued (myst_nb.glue: mime type application/papermill.record/image/png) for
        # numbered captions; count those and any figure shown directly
        pngs = [o for o in outs if any(k.endswith("image/png") for k in o.get("data", {}))]
        assert pngs, f"{r.name}: no figure"
        glued = {o.get("metadata", {}).get("scrapbook", {}).get("name") for o in pngs}
        wanted = set(re.findall(r"\{glue:figure\} (\w+)", "\n".join(c.source for c in nb.cells)))
        assert wanted and wanted <= glued, f"{r.name}: captioned figures {sorted(wanted - glued)} were not produced"
        for o in pngs:
            data = next(v for k, v in o["data"].items() if k.endswith("image/png"))
            assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n", f"{r.name}: not a PNG"
        text = json.dumps([o.get("data", {}).get("text/plain", "") for o in outs]) + json.dumps(
            [o.get("text", "") for o in outs]
        )
        assert "Traceback" not in text, r.name


@pytest.mark.slow
def test_notebooks_honour_parameters(executed):
    import nbformat

    for r in executed["runs"]:
        nb = nbformat.read(str(r.output), as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected, r.name
        assert "n_boot = 60" in injected[0].source
        outs = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in _outputs(nb))
        # every notebook prints the parameters it used, after validation
        assert "n_boot=60" in outs, f"{r.name}: n_boot not visible in the output"
        assert "seed=3" in outs, f"{r.name}: seed not visible in the output"
        if r.name == "05_feature_concatenation":
            assert "rates=[1.0, 0.5, 0.0]" in outs


@pytest.mark.slow
def test_claims_are_reported_with_generated_verdicts(executed):
    claims = nbrun.collect_claims(r.output for r in executed["runs"])
    ids = {c["id"] for c in claims}
    assert {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"} <= ids
    assert all(c["status"] in STATUSES for c in claims)
    assert (executed["out"] / "claims.md").exists()
    page = (executed["out"] / "claims.md").read_text()
    assert "| models | pairs | resampled |" in page
    power = page[page.index("## Power") :].splitlines()
    rows = [line for line in power if line.startswith("| C")]
    assert len(rows) == len({c["id"] for c in claims})
    tested = [c for c in claims if c["status"] != "not testable" and c.get("detectable") is not None]
    for c in tested:  # the detectable effect printed is the record's, 2.8 standard errors of its interval
        assert f"| {c['detectable']:.3g} |" in next(r for r in rows if r.startswith(f"| {c['id']} |"))
    assert all(isinstance(c.get("n_models"), int) and "resampled" in c for c in claims)
    assert (executed["out"] / "environment.md").exists()


@pytest.mark.slow
def test_every_exercise_solution_runs(executed):
    """Every exercise solution of every notebook (00 included) ran after its notebook on the small store,
    without error, and printed numbers."""
    import nbformat

    ran = 0
    for r in executed["runs"]:
        wanted = [code for _, code in nbrun.exercise_solutions(ROOT / "notebooks" / f"{r.name}.py")]
        nb = nbformat.read(str(r.output), as_version=4)
        cells = [c for c in nb.cells if "exercise-solution" in c.metadata.get("tags", [])]
        assert [c.source.strip() for c in cells] == [w.strip() for w in wanted], r.name
        for c in cells:
            assert not [o for o in c.outputs if o.get("output_type") == "error"], (r.name, c.source)
            text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in c.outputs)
            assert re.search(r"\d", text), (r.name, c.metadata["norep_exercise"], "printed no number")
        ran += len(cells)
    assert ran >= 6


@pytest.mark.slow
def test_replicate_stores_give_a_stability_column(tmp_path):
    """End to end: `--replicates` runs the chapter on each replicate store and the claims page counts the
    stores that agree with this one (a reversed replicate disagrees)."""
    for name, reverse in (("main", False), ("same", False), ("reversed", True)):
        make_synthetic_store(tmp_path / name, seed=0, reverse=reverse)
    stores = [tmp_path / "same", tmp_path / "reversed"]
    out = tmp_path / "out"
    nbrun.run_notebooks(
        tmp_path / "main", out=out, parameters={"n_boot": 60}, only=["01"], progress=False, replicates=stores
    )
    page = (out / "claims.md").read_text()
    assert re.search(r"^\| C1 \|.*\| 2 of 3 stores \|", page, re.M), page
    assert sorted(p.name for p in (out / "replicates").iterdir()) == ["01-same", "02-reversed"]
    nbrun.run_notebooks(tmp_path / "main", out=out, parameters={"n_boot": 60}, only=["01"], progress=False)
    assert not (out / "replicates").exists() and "stability" not in (out / "claims.md").read_text()


@pytest.mark.slow
def test_rerun_is_cached_and_parameter_change_reruns(executed, tmp_path):
    out = executed["out"]
    runs = nbrun.run_notebooks(executed["store"], out=out, parameters=FAST, progress=False, solutions=True)
    assert all(r.cached for r in runs), [(r.name, r.reason) for r in runs]
    # a changed parameter re-executes (only one notebook, to stay fast) and is visible
    runs = nbrun.run_notebooks(
        executed["store"], out=tmp_path, parameters={**FAST, "accuracy_band": (0.0, 1.0)}, only=["00"], progress=False
    )
    assert not runs[0].cached
    import nbformat

    nb = nbformat.read(str(runs[0].output), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "accuracy_band = [0.0, 1.0]" in injected[0].source
    outs = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in _outputs(nb))
    assert "0.000-1.000" in outs  # the band the chapter's claim uses


@pytest.mark.slow
@pytest.mark.parametrize("reverse", [False, True], ids=["planted", "reversed"])
def test_verdict_follows_the_data(tmp_path, reverse):
    """The same notebook says **reproduced** or **not reproduced** depending only on the store."""
    import nbformat

    make_synthetic_store(tmp_path / "store", reverse=reverse)
    runs = nbrun.run_notebooks(
        tmp_path / "store", out=tmp_path / "out", parameters={"n_boot": 100}, only=["01"], progress=False
    )
    (claim,) = [c for c in nbrun.collect_claims([runs[0].output]) if c["id"] == "C1"]
    assert claim["status"] == ("not reproduced" if reverse else "reproduced")
    nb = nbformat.read(str(runs[0].output), as_version=4)
    shown = "\n".join(str(o.get("data", {}).get("text/markdown", "")) for o in _outputs(nb))
    assert ("**not reproduced**" in shown) == reverse
    assert ("**reproduced**" in shown) != reverse


@pytest.mark.slow
def test_failing_notebook_is_named_with_its_cell(executed, tmp_path):
    """A chapter that fails inside a cell (here a bad fig_format) is named with the cell and the error;
    a missing base model is refused before any chapter runs (tests/test_store_inputs.py)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "norep.cli",
            "notebooks",
            "run",
            "--store",
            str(executed["store"]),
            "--out",
            str(tmp_path),
            "--only",
            "01",
            "-p",
            "fig_format='bogus'",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode == 1
    assert "01_error_correlation" in proc.stderr and "cell" in proc.stderr
    assert "bogus" in proc.stderr
    # the chapter's page says it failed on this store (no executed notebook, nor an older one, stands in)
    page = json.loads((tmp_path / "01_error_correlation.ipynb").read_text())
    assert page["metadata"]["norep"]["not_run"] == "This chapter failed on this store."
    assert "bogus" in "".join(page["cells"][0]["source"]) and len(page["cells"]) == 1
    assert (tmp_path / "01_error_correlation.failed.ipynb").exists()
