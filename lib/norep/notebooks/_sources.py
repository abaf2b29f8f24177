"""The section notebooks of the book: which there are (:data:`NOTEBOOKS`, the chapters of
:mod:`norep.paper`), their parameters, and what each needs from a store."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from norep.paper import CHAPTERS as NOTEBOOKS  # noqa: F401 (re-exported: the chapters, in book order)

_CHECKOUT = Path(__file__).resolve().parents[3]
"""The folder holding ``lib/`` (the checkout ``norep`` is imported from, when it is one)."""


def default_notebook_dir() -> Path:
    """The ``notebooks/`` folder of this checkout (next to ``lib/``), or ``./notebooks``.

    Examples
    --------
    >>> default_notebook_dir().name
    'notebooks'
    """
    here = _CHECKOUT / "notebooks"
    if here.is_dir():
        return here
    return Path.cwd() / "notebooks"


def find_notebooks(directory: str | os.PathLike | None = None, only: Sequence[str] | None = None) -> list[Path]:
    """The section notebook sources to run, in book order.

    Parameters
    ----------
    directory : path-like, optional
        Folder of the ``NN_name.py`` sources (default: :func:`default_notebook_dir`).
    only : sequence of str, optional
        Names to keep; each may be the full name (``02_ensembles``), its number (``02``) or a
        unique part of its name (``ensembles``).

    Returns
    -------
    list of Path

    Raises
    ------
    ValueError
        When the folder has no notebooks or a name in ``only`` matches none or several.

    Examples
    --------
    >>> [p.stem for p in find_notebooks(only=["02", "transfer"])]
    ['02_ensembles', '06_voc_transfer']
    """
    folder = Path(directory) if directory is not None else default_notebook_dir()
    sources = sorted(p for p in folder.glob("[0-9][0-9]_*.py") if p.is_file())
    if not sources:
        raise ValueError(f"no section notebooks (NN_name.py) in {folder}")
    if not only:
        return sources
    chosen: list[Path] = []
    for want in only:
        hits = [p for p in sources if p.stem == want] or [
            p for p in sources if p.stem.split("_", 1)[0] == want or want in p.stem
        ]
        if len(hits) != 1:
            names = ", ".join(p.stem for p in sources)
            what = "matches no notebook" if not hits else f"is ambiguous ({', '.join(p.stem for p in hits)})"
            raise ValueError(f"--only {want!r} {what}; notebooks: {names}")
        if hits[0] not in chosen:
            chosen.append(hits[0])
    return sorted(chosen)


def parse_parameters(pairs: Iterable[str]) -> dict:
    """Parse ``key=value`` strings; values are Python literals when they parse, else strings.

    Examples
    --------
    >>> parse_parameters(["n_boot=200", "base_model=base", "band=(0.8, 0.9)", "x=None"])
    {'n_boot': 200, 'base_model': 'base', 'band': (0.8, 0.9), 'x': None}
    """
    params: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"parameter {pair!r} is not of the form key=value (key a Python name)")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        params[key] = value
    return params


def declared_parameters(source: str | os.PathLike) -> dict[str, str]:
    """Names and default source text of the parameters a notebook's ``parameters`` cell declares.

    Examples
    --------
    >>> sorted(declared_parameters(find_notebooks(only=["00"])[0]))[:3]
    ['accuracy_band', 'base_model', 'calib_split']
    """
    import jupytext

    nb = jupytext.read(Path(source))
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    found = {}
    for node in ast.parse(cells[0].source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for t in targets:
            if isinstance(t, ast.Name):
                found[t.id] = ast.get_source_segment(cells[0].source, node.value) if node.value is not None else ""
    return found


def _how_to_add_split(store: str, split: str, multilabel: bool, st=None, base: str | None = None) -> str:
    import shlex

    labels = "multi-hot rows (N, K) of 0/1" if multilabel else "class ids (N,)"
    extra = " --class-names attributes.txt" if multilabel else ""
    model = "--name MODEL --category CAT --method METHOD"
    if st is not None and base is not None and base in st:
        meta = st.meta(base)
        model = f"--name {shlex.quote(base)} --category {meta['category']} --method {shlex.quote(meta['method'])}"
    arrays = f"--embeddings {split}_embeddings.npy"
    if not multilabel:
        arrays = f"--logits {split}_logits.npy " + arrays
    what = (
        f"{split}_labels.npy: {labels}"
        + ("; attributes.txt: one label name a line" if multilabel else "")
        + f"; the arrays: one row per example{'; multi-label splits take embeddings only' if multilabel else ''}"
    )
    return (
        f"add it with `norep import --store {shlex.quote(store)} --split {split} --labels {split}_labels.npy{extra} "
        f"{model} {arrays}` ({what})"
    )


def missing_inputs(store, name: str, parameters: Mapping | None = None) -> list[str]:
    """What chapter ``name`` needs that ``store`` lacks, one Markdown sentence each (empty: it can run).

    Checks the inputs a chapter cannot do without: the evaluation and calibration splits, a base
    model with logits on both, embeddings of the base model on the splits chapters 05 and 06 probe,
    and the multi-label downstream splits of chapter 06. Too few models for a claim is not a missing
    input: the chapter runs and its claim says *not testable*.

    Parameters
    ----------
    store : norep.storage.Store or path-like
    name : str
        Notebook name, e.g. ``"06_voc_transfer"``.
    parameters : mapping, optional
        The run's parameters (``split``, ``calib_split``, ``base_model``, ``down_splits``).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from norep.storage import Store
    >>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="toy", class_names=["a", "b"],
    ...                   splits={"test": np.array([0, 1]), "calib": np.array([1, 0])}, info={"base_model": "m"})
    >>> meta = {"category": "REINIT", "method": "x"}
    >>> _ = st.add_model("m", logits={"test": np.eye(2), "calib": np.eye(2)}, meta=meta)
    >>> missing_inputs(st, "01_error_correlation")
    []
    >>> missing_inputs(st, "06_voc_transfer")[0][:37]
    'split `down_train` (multi-label): add'
    """
    from norep.storage import Store

    st = store if hasattr(store, "splits") else Store.open(store)
    p = dict(parameters or {})
    where = str(p.get("store") or st.path)
    split, calib = p.get("split", "test"), p.get("calib_split", "calib")
    splits = st.splits()
    base = p.get("base_model") or st.base_model
    missing = [
        f"split `{s}`: {_how_to_add_split(where, s, False, st, base)}" for s in (split, calib) if s not in splits
    ]
    if base is None:
        missing.append(
            f"a base model: set it with `norep store set {where} --base-model NAME` "
            f"(models: {', '.join(st.model_names()) or 'none yet'})"
        )
    elif base not in st:
        if not p.get("base_model"):  # a base_model parameter not in the store is the notebook's error to report
            missing.append(
                f"the base model `{base}` named by the store, which holds no such model "
                f"(`norep store set {where} --base-model NAME`)"
            )
    else:
        lack = [s for s in (split, calib) if s in splits and not st.has_logits(base, s)]
        missing += [f"logits of the base model `{base}` on split `{s}`" for s in lack]
    emb_on: list[str] = []
    if name.startswith("05"):
        emb_on = [split, calib]
    elif name.startswith("06"):
        down = list(p.get("down_splits") or ["down_train", "down_val", "down_test"])
        missing += [
            f"split `{s}` (multi-label): {_how_to_add_split(where, s, True, st, base)}" for s in down if s not in splits
        ]
        emb_on = [s for s in down if s in splits]
    if base is not None and base in st:
        import shlex

        meta = st.meta(base)
        who = f"--name {shlex.quote(base)} --category {meta['category']} --method {shlex.quote(meta['method'])}"
        missing += [
            f"embeddings of the base model `{base}` on split `{s}` (add them with `norep import "
            f"--store {shlex.quote(where)} {who} --split {s} --embeddings {s}_embeddings.npy`, one row per example)"
            for s in emb_on
            if s in splits and not st.has_embeddings(base, s)
        ]
    return missing


def _chapter_title(source: Path) -> str:
    for line in source.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#\s+#\s+(.+)", line)
        if m:
            return m.group(1).strip()
    return source.stem


_DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
_FENCE = re.compile(r"^```(?:python|py|ipython3?)\s*\n(.*?)^```\s*$", re.S | re.M)
_EXERCISE = re.compile(r"\*\*(Exercise[^*]*?)\.?\*\*")


def exercise_solutions(source: str | os.PathLike) -> list[tuple[str, str]]:
    """The code of every exercise solution of a notebook source: ``(exercise, code)`` pairs, in order.

    A solution is the Markdown folded in ``<details>`` after an exercise (``**Exercise 2.**``); its
    code is every fenced Python block inside (```` ```python ````), which a reader runs after the
    notebook, in its namespace. ``norep notebooks run --solutions`` runs them the same way.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "09_x.py"
    >>> _ = src.write_text('# %% [markdown]\\n# **Exercise 1.** How many?\\n#\\n# <details>\\n'
    ...                    '# <summary>Solution</summary>\\n#\\n# ```python\\n# print(1 + 1)\\n# ```\\n#\\n'
    ...                    '# </details>\\n')
    >>> exercise_solutions(src)
    [('Exercise 1', 'print(1 + 1)\\n')]
    """
    import jupytext

    nb = jupytext.read(Path(source))
    found = []
    label = "Exercise"
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        pos = 0
        for block in _DETAILS.finditer(text):
            before = _EXERCISE.findall(text[pos : block.start()])
            if before:
                label = before[-1].strip()
            pos = block.end()
            for code in _FENCE.findall(block.group(1)):
                found.append((label, code))
    return found
