"""A store of your own, from the command line alone, to a built book: the worked example of
``book/store.md`` run as written.

Small scikit-learn models are trained here on scikit-learn's digits; their logits on ``test`` and
``calib`` are saved as ``.npy`` files (no embeddings, no downstream splits). The shell block of the
worked example builds the store with ``norep import`` and ``norep store set``. The output folder is
first filled from a *different* store; ``norep notebooks run --keep-going`` must then replace every
page of it, execute the chapters this store can feed, write "not run on this store" pages for the
others (05: no embeddings, 06: no downstream splits) and mark their claims *not testable*; the book
must build with ``-W`` and show nothing from the other store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from guards import HANG_S
from norep import notebooks as nbrun
from norep.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-p", "n_boot=60", "-p", "seed=3", "-p", "probe_Cs=[0.1, 10.0]", "-p", "top_k=3"]
MODELS = [  # name, category, method (the base model is imported first, by hand)
    ("sgd-a", "REINIT", "SGD / digits"),
    ("sgd-b", "REINIT", "SGD / digits"),
    ("lr-c005", "HPARAM", "LR C=0.05 / digits"),
    ("mlp", "ARCH", "MLP / digits"),
    ("lda", "FWORK", "LDA / digits"),
    ("nb", "DATASET", "NB / digits"),
    ("lr-half", "DATASET", "LR / half of digits"),
]


def write_npy(folder: Path) -> dict[str, float]:
    """Train the models and save labels, class names, logits and ``models.txt``; return test accuracies."""
    from sklearn.datasets import load_digits
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neural_network import MLPClassifier

    folder.mkdir(parents=True, exist_ok=True)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.default_rng(0).permutation(len(y))
    tr, ca, te = idx[:800], idx[800:1300], idx[1300:]
    np.save(folder / "y_calib.npy", y[ca])
    np.save(folder / "y_test.npy", y[te])
    (folder / "classes.txt").write_text("".join(f"{d}\n" for d in range(10)))
    fits = {
        "base": LogisticRegression(C=1.0, max_iter=500),
        "sgd-a": SGDClassifier(loss="log_loss", random_state=1, max_iter=50, tol=None),
        "sgd-b": SGDClassifier(loss="log_loss", random_state=2, max_iter=50, tol=None),
        "lr-c005": LogisticRegression(C=0.05, max_iter=500),
        "mlp": MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0),
        "lda": LinearDiscriminantAnalysis(),
        "nb": GaussianNB(),
        "lr-half": LogisticRegression(C=1.0, max_iter=500),
    }
    acc = {}
    import warnings

    for name, model in fits.items():
        rows = tr[: len(tr) // 2] if name == "lr-half" else tr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[rows], y[rows])
        for split, ids in (("calib", ca), ("test", te)):
            z = np.maximum(model.predict_log_proba(X[ids]), -50.0).astype(np.float32)
            np.save(folder / f"{name}_{split}.npy", z)
        acc[name] = float((model.predict(X[te]) == y[te]).mean())
    (folder / "models.txt").write_text("".join(f"{n} {c} {m}\n" for n, c, m in MODELS))
    return acc


def worked_example() -> str:
    """The shell block of the worked example in ``book/store.md``."""
    text = (ROOT / "book" / "store.md").read_text()
    m = re.search(r"<!-- worked example: begin -->\s*```bash\n(.*?)```\s*<!-- worked example: end -->", text, re.S)
    assert m, "book/store.md lost its worked example"
    return m.group(1)


def _norep_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_worked_example(workdir: Path) -> subprocess.CompletedProcess:
    """Run the block with ``norep`` bound to this interpreter's CLI, in ``workdir`` (which holds ``npy/``)."""
    script = f'set -euo pipefail\nnorep() {{ "{sys.executable}" -m norep.cli "$@"; }}\n' + worked_example()
    return subprocess.run(
        ["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=HANG_S, env=_norep_env()
    )


def build_book(out: Path, root: Path) -> subprocess.CompletedProcess:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated", "_build"))
    shutil.copytree(out, root / "book" / "generated")
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run(
        [str(jb), "build", str(root), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=root,
    )


def test_first_import_names_every_flag_a_new_store_needs(tmp_path, capsys):
    np.save(tmp_path / "l.npy", np.zeros((3, 2)))
    assert (
        main(
            [
                "import",
                "--store",
                str(tmp_path / "new"),
                "--name",
                "m",
                "--category",
                "REINIT",
                "--method",
                "x",
                "--split",
                "test",
                "--logits",
                str(tmp_path / "l.npy"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    for flag in ("--labels", "--class-names", "--dataset", "calib", "norep store set"):
        assert flag in err, flag


def test_store_set_and_info(tmp_path, capsys):
    write_npy(tmp_path / "npy")
    proc = run_worked_example(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from norep.storage import Store

    st = Store.open(tmp_path / "stores" / "mine")
    assert st.splits() == ["test", "calib"] and st.base_model == "base" and st.accuracy_band == (0.94, 0.99)
    assert sorted(st.model_names()) == sorted(["base"] + [n for n, _, _ in MODELS])
    assert all(st.has_logits(n, s) for n in st.model_names() for s in ("test", "calib"))
    info = proc.stdout
    assert "05_feature_concatenation: cannot run" in info and "06_voc_transfer: cannot run" in info
    assert "01_error_correlation: can run" in info and "split `down_train`" in info
    assert re.search(r"DATASET\s+low\s+nb", info), info  # tier from the calib accuracy and the band
    store = str(tmp_path / "stores" / "mine")
    assert main(["store", "set", store, "--band", "74", "78"]) == 1
    assert "fractions" in capsys.readouterr().err
    assert main(["store", "set", store, "--base-model", "nosuch"]) == 1
    assert "sgd-a" in capsys.readouterr().err
    assert main(["store", "set", store, "--base-model", "mlp"]) == 0
    assert Store.open(store).base_model == "mlp" and Store.open(store).accuracy_band == (0.94, 0.99)


def _origin(path: Path) -> dict:
    return json.loads(path.read_text())["metadata"].get("norep", {})


@pytest.mark.slow
def test_store_from_npy_to_book_with_no_page_from_another_store(tmp_path):
    from test_notebooks import make_synthetic_store

    other = tmp_path / "other"
    make_synthetic_store(other)
    out = tmp_path / "generated"
    # the output folder first holds pages of another store (two chapters executed, the rest placeholders)
    assert (
        main(
            ["notebooks", "run", "--store", str(other), "--out", str(out), "--only", "01", "--only", "06", "-q", *FAST]
        )
        == 0
    )
    other_fp = _origin(out / "06_voc_transfer.ipynb")["store_fingerprint"]
    assert "not_run" not in _origin(out / "06_voc_transfer.ipynb")

    write_npy(tmp_path / "npy")
    proc = run_worked_example(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = tmp_path / "stores" / "mine"
    assert main(["notebooks", "run", "--store", str(store), "--out", str(out), "--keep-going", "-q", *FAST]) == 0

    fp = nbrun.store_fingerprint(store)
    assert fp != other_fp
    for name in nbrun.NOTEBOOKS:
        meta = _origin(out / f"{name}.ipynb")
        assert meta.get("store_fingerprint") == fp, name
        assert bool(meta.get("not_run")) == name.startswith(("05", "06")), name
    page06 = "".join(json.loads((out / "06_voc_transfer.ipynb").read_text())["cells"][0]["source"])
    assert "Not run on this store" in page06 and "down_train" in page06 and "norep import" in page06
    for page in ("claims.md", "environment.md", "about_store.md"):
        text = (out / page).read_text()
        assert fp in text and other_fp not in text, page
    claims = (out / "claims.md").read_text()
    for cid in ("C7", "C8", "C9"):
        assert re.search(rf"\| {cid} \| \*\*not testable\*\*", claims), cid
    assert "your store" in (out / "about_store.md").read_text()
    assert "Benchmarks" not in (out / "environment.md").read_text()  # the project's diary is not about this store

    proc = build_book(out, tmp_path / "book")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "WARNING:" not in proc.stdout + proc.stderr, proc.stdout[-3000:]
    html = tmp_path / "book" / "_build" / "html"
    pages = list((html / "book").rglob("*.html"))
    assert len(pages) >= len(nbrun.NOTEBOOKS) + 4
    for page in pages:
        text = page.read_text()
        assert "synthetic" not in text and other_fp[:12] not in text, page  # the other store's data set / fingerprint
    assert "Not run on this store" in (html / "book" / "generated" / "05_feature_concatenation.html").read_text()
    # exercise solutions fold in the book as in Jupyter (<details>), with their Markdown rendered
    chapter01 = (html / "book" / "generated" / "01_error_correlation.html").read_text()
    assert re.search(r"<details>\s*<summary>Solution</summary>\s*<(p>|div class=\"highlight)", chapter01)
    assert "```" not in chapter01  # the solution's code block is rendered, not shown as Markdown source
    intro = (html / "book" / "intro.html").read_text()
    assert "your store" in intro and fp[:12] in intro
