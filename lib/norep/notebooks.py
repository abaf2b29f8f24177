"""Execute the book's section notebooks with papermill, on fresh kernels, cached by content.

The sources are jupytext py:percent files (``notebooks/NN_name.py``, text only). Each run reads
one with :func:`jupytext.read`, injects parameters with papermill (the source's
``parameters``-tagged cell holds the defaults) and executes it on a fresh kernel of *this*
Python interpreter, writing ``OUT/NN_name.ipynb`` for Jupyter Book (which does not re-execute:
``execute_notebooks: "off"``).

A notebook is skipped when nothing it depends on changed: its source text, the parameters, the
store (``store.json`` and every file's size and modification time) and the ``norep`` package
(version and source files). This is what makes a second ``make book`` fast.

Besides the notebooks, every run writes ``OUT/environment.md`` (package versions, interpreter,
per-notebook execution times, the store's model count) which the book's reproducibility page
includes, ``OUT/about_store.md`` (what the pages were made from) which the introduction includes,
and ``OUT/claims.md``, so the numbers a reader sees come from the run that produced the pages.

One run, one store: every executed notebook records the store and its fingerprint in
``metadata["norep"]`` and every summary page names them; a run first removes from ``OUT`` every
page of another store. Each chapter of the book gets a page from this store: its executed notebook,
or a one-cell page saying why it was not run (:func:`missing_inputs`: the store lacks a split or
embeddings it needs; or it failed; or ``only`` left it out), whose claims the claims page lists as
*not testable*.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NOTEBOOKS",
    "NotebookError",
    "NotebookRun",
    "NotebooksFailed",
    "CHAPTER_CLAIMS",
    "CLAIM_COLUMNS",
    "missing_inputs",
    "describe_store",
    "default_notebook_dir",
    "DEFAULT_STORE",
    "project_root",
    "resolve_store",
    "find_notebooks",
    "parse_parameters",
    "declared_parameters",
    "store_fingerprint",
    "run_notebooks",
    "execute_notebook",
    "STATUSES",
    "Study",
    "load_study",
    "check_parameters",
    "PROFILES",
    "apply_profile",
    "limit_threads",
    "set_figure_format",
    "glue_figure",
    "verdict",
    "fmt_ci",
    "report_claim",
    "collect_claims",
]

NOTEBOOKS = (
    "00_model_zoo",
    "01_error_correlation",
    "02_ensembles",
    "03_specialization",
    "04_low_accuracy_greedy",
    "05_feature_concatenation",
    "06_voc_transfer",
)
"""Names of the section notebooks, in book order (one per paper section; 00 is the zoo)."""

_CACHE_FILE = ".norep-notebooks.json"
_KERNEL_NAME = "python3"
_CACHE_FORMAT = 1


class NotebookError(RuntimeError):
    """A notebook failed: names the notebook and the failing cell.

    Attributes
    ----------
    notebook : str
        Notebook name (e.g. ``"02_ensembles"``).
    cell_index : int or None
        Index of the failing cell in the executed notebook (papermill's injected-parameters
        cell included), or None when the kernel failed before running a cell.
    cell_source : str
        First line of the failing cell.
    ename, evalue : str
        Exception name and message raised inside the notebook.
    """

    def __init__(
        self,
        notebook: str,
        cell_index: int | None,
        cell_source: str,
        ename: str,
        evalue: str,
        failed_path: Path | None = None,
    ):
        self.notebook, self.cell_index, self.cell_source = notebook, cell_index, cell_source
        self.ename, self.evalue, self.failed_path = ename, evalue, failed_path
        where = f"cell {cell_index} ({cell_source!r})" if cell_index is not None else "before any cell ran"
        msg = f"notebook {notebook} failed in {where}: {ename}: {evalue}"
        if failed_path is not None:
            msg += f" (executed copy with the traceback: {failed_path})"
        super().__init__(msg)


@dataclass
class NotebookRun:
    """Outcome of one notebook: where it was written, whether it came from the cache, its time."""

    name: str
    output: Path
    cached: bool
    seconds: float
    key: str
    parameters: dict = field(default_factory=dict)
    reason: str = ""
    """Why it was executed (e.g. ``"store changed"``) or ``"unchanged"`` when cached."""


DEFAULT_STORE = "stores/fashion"
"""The ``store`` parameter's default in every notebook (the embedded study, made by ``make book``)."""


def project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The project folder (holding ``notebooks/`` and ``_toc.yml``) at or above ``start`` (default:
    the current folder), else the checkout ``norep`` is imported from, else None.

    A kernel started in ``notebooks/`` or in ``book/generated/`` (where Binder and JupyterLab start
    it) finds the same root as one started at the top of the project.

    Examples
    --------
    >>> root = project_root()
    >>> root is None or (root / "notebooks").is_dir()
    True
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "_toc.yml").is_file():
            return folder
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "notebooks").is_dir() and (checkout / "_toc.yml").is_file():
        return checkout
    return None


def resolve_store(store: str | os.PathLike) -> Path:
    """The store a notebook's ``store`` parameter names, whatever folder the kernel runs in.

    An absolute path is used as given. ``$NOREP_STORE``, when set, replaces the default
    :data:`DEFAULT_STORE` (``norep notebooks run`` sets it to the store it runs on, so a chapter
    and the runner always read the same store). A relative path is looked up in the current folder,
    then in the project root (:func:`project_root`); if neither holds it, the path in the project
    root is returned, for the error message to name.

    Examples
    --------
    >>> import os
    >>> resolve_store("/data/stores/mine")
    PosixPath('/data/stores/mine')
    """
    env = os.environ.get("NOREP_STORE")
    if env and str(store) == DEFAULT_STORE:
        store = env
    path = Path(store).expanduser()
    if path.is_absolute() or path.exists():
        return path
    root = project_root()
    if root is not None:
        return root / path
    return path


def default_notebook_dir() -> Path:
    """The ``notebooks/`` folder of this checkout (next to ``lib/``), or ``./notebooks``.

    Examples
    --------
    >>> default_notebook_dir().name
    'notebooks'
    """
    here = Path(__file__).resolve().parents[2] / "notebooks"
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


def store_fingerprint(path: str | os.PathLike) -> str:
    """A hash of a store's state: the content of its JSON files, every array's name, size and mtime.

    Cheap (no array is read) and changes whenever a model is added, removed or rewritten, but not
    when a producer rewrites unchanged metadata (e.g. a cached ``norep zoo train``). Producer
    caches (``_cache/``) and lock or temporary files are ignored.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "store.json").write_text("{}"); (d / "models").mkdir()
    >>> a = store_fingerprint(d); _ = (d / "models" / "x.npy").write_bytes(b"1"); a == store_fingerprint(d)
    False
    >>> b = store_fingerprint(d); _ = (d / "store.json").write_text("{}"); b == store_fingerprint(d)
    True
    """
    root = Path(path)
    h = hashlib.sha256()
    info = root / "store.json"
    h.update(info.read_bytes() if info.exists() else b"")
    for top in ("splits", "models"):
        for p in sorted((root / top).rglob("*")):
            rel = p.relative_to(root).as_posix()
            if not p.is_file() or any(part.startswith(".") for part in rel.split("/")):
                continue  # locks, temporary and trashed model directories
            if p.suffix == ".json":  # metadata may be rewritten unchanged: hash its content
                h.update(f"{rel}\0".encode() + hashlib.sha256(p.read_bytes()).digest())
            else:  # arrays are written once, atomically: size and mtime identify them
                st = p.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _package_fingerprint() -> str:
    """A hash of the installed ``norep`` package's source: every ``.py`` file under it, so that any
    change to a measure, a claim, the store or the engine re-runs the notebooks (a hand-kept list of
    modules would miss a new one)."""
    import norep

    h = hashlib.sha256(norep.__version__.encode())
    root = Path(norep.__file__).resolve().parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _cache_key(source_text: str, parameters: Mapping, store_fp: str, package_fp: str) -> str:
    h = hashlib.sha256()
    for part in (
        str(_CACHE_FORMAT),
        source_text,
        json.dumps(parameters, sort_keys=True, default=repr),
        store_fp,
        package_fp,
        sys.executable,
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@contextlib.contextmanager
def _this_interpreter_kernel():
    """Make kernel ``python3`` resolve to this interpreter, whatever kernelspecs the user has.

    A user-level ``python3`` kernelspec (e.g. in ``~/.local/share/jupyter``) may point to another
    Python without ``norep``; ``JUPYTER_PATH`` is searched first, so a private spec placed there
    wins for the duration of the run.
    """
    with tempfile.TemporaryDirectory(prefix="norep-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / _KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--log-level=CRITICAL"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "env": {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([saved] if saved else []))
        try:
            yield _KERNEL_NAME
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved


def _error_outputs(nb) -> list[tuple[int, str]]:
    bad = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                bad.append((i, f"{out.get('ename')}: {out.get('evalue')}"))
    return bad


def execute_notebook(
    source: str | os.PathLike,
    output: str | os.PathLike,
    parameters: Mapping | None = None,
    *,
    cwd: str | os.PathLike | None = None,
    timeout: int | None = 1800,
    metadata: Mapping | None = None,
) -> Path:
    """Execute one py:percent notebook on a fresh kernel and write the executed ``.ipynb``.

    Parameters
    ----------
    source : path-like
        The jupytext py:percent file.
    output : path-like
        Where to write the executed notebook. Written only on success (atomically); on failure
        the executed copy with the traceback goes to ``<output stem>.failed.ipynb``.
    parameters : mapping, optional
        Values injected after the ``parameters``-tagged cell.
    cwd : path-like, optional
        Working directory of the kernel (default: the current one).
    timeout : int or None
        Seconds allowed per cell.
    metadata : mapping, optional
        Recorded as the notebook's ``metadata["norep"]`` (the runner records the store and its
        fingerprint there).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    NotebookError
        Naming the notebook and the failing cell.
    """
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source, output = Path(source), Path(output)
    name = source.stem
    nb = jupytext.read(source)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise NotebookError(name, None, "", "ValueError", "the notebook has no cell tagged 'parameters'")
    nb.metadata["kernelspec"] = {"name": _KERNEL_NAME, "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata.pop("jupytext", None)
    if metadata:
        nb.metadata["norep"] = dict(metadata)
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.ipynb")
    with _this_interpreter_kernel() as kernel:
        try:
            executed = papermill.execute_notebook(
                nb,
                str(tmp),
                parameters=dict(parameters or {}),
                kernel_name=kernel,
                progress_bar=False,
                log_output=False,
                cwd=str(cwd or Path.cwd()),
                execution_timeout=timeout,
            )
        except PapermillExecutionError as exc:
            if tmp.exists():
                os.replace(tmp, failed)
            first = (exc.source or "").strip().splitlines()
            raise NotebookError(
                name,
                exc.cell_index,
                first[0] if first else "",
                exc.ename,
                exc.evalue,
                failed if failed.exists() else None,
            ) from None
        except Exception as exc:  # kernel died, timeout, bad parameters...
            if tmp.exists():
                os.replace(tmp, failed)
            raise NotebookError(
                name,
                None,
                "",
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                failed if failed.exists() else None,
            ) from None
    errors = _error_outputs(executed)
    if errors:
        os.replace(tmp, failed)
        idx, msg = errors[0]
        raise NotebookError(name, idx, "", *msg.split(": ", 1), failed)
    os.replace(tmp, output)
    failed.unlink(missing_ok=True)
    return output


def _plain(value):
    """Tuples to lists, recursively: papermill writes parameters as Python literals and would
    inject a tuple as its string."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _load_cache(out: Path) -> dict:
    try:
        data = json.loads((out / _CACHE_FILE).read_text())
        return data if data.get("format") == _CACHE_FORMAT else {"format": _CACHE_FORMAT, "notebooks": {}}
    except (FileNotFoundError, json.JSONDecodeError):
        return {"format": _CACHE_FORMAT, "notebooks": {}}


def _save_cache(out: Path, cache: dict) -> None:
    tmp = out / f"{_CACHE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    os.replace(tmp, out / _CACHE_FILE)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHAPTER_CLAIMS = {
    "00_model_zoo": ("C10",),
    "01_error_correlation": ("C1",),
    "02_ensembles": ("C2", "C3"),
    "03_specialization": ("C4", "C5"),
    "04_low_accuracy_greedy": ("C6",),
    "05_feature_concatenation": ("C7", "C8"),
    "06_voc_transfer": ("C9",),
}
"""The paper claims each chapter decides (a chapter not run on a store leaves them *not testable*)."""


class NotebooksFailed(RuntimeError):
    """One or more notebooks failed; ``errors`` holds one :class:`NotebookError` per failed notebook
    and ``runs`` the notebooks that ran or came from the cache."""

    def __init__(self, errors: Sequence[NotebookError], runs: Sequence[NotebookRun] = ()):
        self.errors, self.runs = list(errors), list(runs)
        lines = [f"{len(self.errors)} notebook(s) failed:"] + [f"  {e}" for e in self.errors]
        super().__init__("\n".join(lines))


def _how_to_add_split(store: str, split: str, multilabel: bool) -> str:
    labels = "multi-hot rows (N, K) of 0/1" if multilabel else "class ids (N,)"
    extra = " --class-names attributes.txt" if multilabel else ""
    return (
        f"add it with `norep import --store {store} --split {split} --labels {split}_labels.npy{extra} "
        f"--name MODEL --category CAT --method METHOD --logits ... --embeddings ...` ({split}_labels.npy: "
        f"{labels})"
    )


def missing_inputs(store, name: str, parameters: Mapping | None = None) -> list[str]:
    """What chapter ``name`` needs that ``store`` lacks, one Markdown sentence each (empty: it can run).

    Checks the inputs a chapter cannot do without: the evaluation and calibration splits, a base
    model with logits on both, embeddings of the base model on the splits chapters 05 and 06 probe,
    and the multi-label downstream splits of chapter 06. Too few models for a claim is not a missing
    input: the chapter runs and its claim says *not testable*.

    Parameters
    ----------
    store : norep.store.Store or path-like
    name : str
        Notebook name, e.g. ``"06_voc_transfer"``.
    parameters : mapping, optional
        The run's parameters (``split``, ``calib_split``, ``base_model``, ``down_splits``).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from norep.store import Store
    >>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="toy", class_names=["a", "b"],
    ...                   splits={"test": np.array([0, 1]), "calib": np.array([1, 0])}, info={"base_model": "m"})
    >>> meta = {"category": "REINIT", "method": "x"}
    >>> _ = st.add_model("m", logits={"test": np.eye(2), "calib": np.eye(2)}, meta=meta)
    >>> missing_inputs(st, "01_error_correlation")
    []
    >>> missing_inputs(st, "06_voc_transfer")[0][:37]
    'split `down_train` (multi-label): add'
    """
    from norep.store import Store

    st = store if hasattr(store, "splits") else Store.open(store)
    p = dict(parameters or {})
    where = str(p.get("store") or st.path)
    split, calib = p.get("split", "test"), p.get("calib_split", "calib")
    splits = st.splits()
    missing = [f"split `{s}`: {_how_to_add_split(where, s, False)}" for s in (split, calib) if s not in splits]
    base = p.get("base_model") or st.base_model
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
        missing += [f"split `{s}` (multi-label): {_how_to_add_split(where, s, True)}" for s in down if s not in splits]
        emb_on = [s for s in down if s in splits]
    if base is not None and base in st:
        missing += [
            f"embeddings of the base model `{base}` on split `{s}` (add them with `norep import "
            f"--store {where} --name {base} --split {s} --embeddings FILE.npy` and its category and method)"
            for s in emb_on
            if s in splits and not st.has_embeddings(base, s)
        ]
    return missing


def _nb_origin(path: Path) -> dict:
    """The ``norep`` metadata of an executed notebook or page ({} when absent or unreadable)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("norep") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def _clear_foreign(out: Path, store_fp: str) -> list[str]:
    """Remove from ``out`` every notebook and summary page not written from the store ``store_fp``.

    Executed notebooks (and failed copies) record the fingerprint of their store; any without it,
    or with another, is removed. The summary pages are removed too: the run writes them again.
    Returns the names removed.
    """
    removed = []
    for p in sorted(out.glob("*.ipynb")):
        if _nb_origin(p).get("store_fingerprint") != store_fp:
            p.unlink(missing_ok=True)
            removed.append(p.name)
    for name in _SUMMARY_PAGES:
        if (out / name).exists() and f"store fingerprint {store_fp}" not in (out / name).read_text(errors="replace"):
            (out / name).unlink()
            removed.append(name)
    return removed


_SUMMARY_PAGES = ("claims.md", "environment.md", "about_store.md")


def _chapter_title(source: Path) -> str:
    for line in source.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#\s+#\s+(.+)", line)
        if m:
            return m.group(1).strip()
    return source.stem


def _write_placeholder(source: Path, target: Path, origin: dict, why: str, body: str) -> Path:
    """Write a one-cell notebook in place of a chapter that was not executed on this store."""
    import nbformat

    name = source.stem
    claim_ids = CHAPTER_CLAIMS.get(name, ())
    claims_txt = (
        f"Its claim(s) {', '.join(claim_ids)} are *not testable* on this store (see the claims page)."
        if claim_ids
        else ""
    )
    text = f"# {_chapter_title(source)}\n\n**{why}**\n\n{body}\n\n{claims_txt}\n"
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(text.strip() + "\n"))
    nb.metadata["kernelspec"] = {"name": _KERNEL_NAME, "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["norep"] = {**origin, "not_run": why, "claims": list(claim_ids)}
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.ipynb")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, target)
    return target


def _placeholder_for(source: Path, target: Path, origin: dict, state: str, detail) -> Path:
    """The page of a chapter that has no executed notebook from this store, by ``state``."""
    store = origin.get("store", "STORE")
    if state == "missing":
        items = "\n".join(f"- {m}" for m in detail)
        return _write_placeholder(
            source,
            target,
            origin,
            "Not run on this store.",
            f"This chapter needs what store `{store}` does not have:\n\n{items}\n\n"
            f"`norep store info {store}` shows what each chapter can run.",
        )
    if state == "failed":
        return _write_placeholder(
            source,
            target,
            origin,
            "This chapter failed on this store.",
            f"`norep notebooks run` stopped in it with `{detail}`. Fix the cause and "
            f"run `norep notebooks run --store {store} --only {source.stem[:2]}` again.",
        )
    return _write_placeholder(
        source,
        target,
        origin,
        "Not run on this store yet.",
        f"This run did not execute this chapter ({detail}). Run `norep notebooks run "
        f"--store {store} --only {source.stem[:2]}` to add it.",
    )


def run_notebooks(
    store: str | os.PathLike,
    *,
    out: str | os.PathLike = "book/generated",
    parameters: Mapping | None = None,
    only: Sequence[str] | None = None,
    notebook_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: int | None = 1800,
    keep_going: bool = False,
) -> list[NotebookRun]:
    """Execute the section notebooks on ``store`` into ``out``, skipping unchanged ones.

    One run, one store: every executed notebook records the fingerprint of its store
    (``metadata["norep"]``), and a run first removes from ``out`` every notebook and summary page
    that came from another store (or another state of this one). Each chapter of the book then
    has a page from this store: its executed notebook, or a short page saying why it was not run
    (the store lacks an input it needs, it failed, or ``only`` left it out), whose claims the
    claims page marks *not testable*. The summary pages are written even when a notebook fails.

    Parameters
    ----------
    store : path-like
        The prediction store; passed to every notebook as its ``store`` parameter.
    out : path-like
        Folder for the executed ``NN_name.ipynb`` (git-ignored; ``_toc.yml`` points there).
    parameters : mapping, optional
        Extra parameters for every notebook (e.g. ``{"n_boot": 200}``); a notebook that does
        not declare one simply ignores it (papermill warns).
    only : sequence of str, optional
        Run only these notebooks (see :func:`find_notebooks`).
    notebook_dir : path-like, optional
        Folder of the sources (default: the checkout's ``notebooks/``).
    force : bool
        Execute even when the cache says nothing changed.
    progress : bool
        Print one progress line per notebook to stderr.
    timeout : int or None
        Seconds allowed per cell.
    keep_going : bool
        Run every notebook even after one fails, and raise :class:`NotebooksFailed` with all the
        failures at the end (default: stop at the first).

    Returns
    -------
    list of NotebookRun

    Raises
    ------
    FileNotFoundError
        If ``store`` holds no store.
    ValueError
        If the store fails verification (:func:`verify_store`) or ``out`` is a file.
    NotebookError
        On the first failing notebook (later ones are not run), unless ``keep_going``.
    NotebooksFailed
        With ``keep_going``, when any notebook failed.
    """
    from norep.store import Store

    store_path = Path(store)
    st = Store.open(store_path)
    verify_store(st)  # fails early, naming the damaged file and the problem
    out = _output_folder(out)
    sources = find_notebooks(notebook_dir, only)
    all_sources = find_notebooks(notebook_dir)
    extra = {k: _plain(v) for k, v in dict(parameters or {}).items()}
    declared = {src.stem: declared_parameters(src) for src in all_sources}
    unknown = sorted(set(extra) - set().union(*declared.values()))
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} are declared by none of the notebooks; "
            "see the parameters cell of each notebook"
        )
    store_fp, package_fp = store_fingerprint(store_path), _package_fingerprint()
    origin = {"store": str(store), "store_fingerprint": store_fp}
    removed = _clear_foreign(out, store_fp)
    if removed and progress:
        print(f"norep: removed from {out} (not from this store): {', '.join(removed)}", file=sys.stderr)
    cache = _load_cache(out)
    runs: list[NotebookRun] = []
    errors: list[NotebookError] = []
    states: dict[str, tuple[str, object]] = {}
    saved_env = os.environ.get("NOREP_STORE")
    os.environ["NOREP_STORE"] = str(store_path.resolve())  # the kernels read this store, whatever their folder
    try:
        for src in sources:
            name = src.stem
            params = {"store": str(store), **{k: v for k, v in extra.items() if k in declared[name]}}
            lacking = missing_inputs(st, name, params)
            if lacking:
                states[name] = ("missing", lacking)
                if progress:
                    print(
                        f"norep: {name}: not run on this store (it needs {re.split(r': | [(]add', lacking[0])[0]})",
                        file=sys.stderr,
                    )
                continue
            try:
                runs.append(
                    _run_one(
                        src,
                        out,
                        params,
                        cache,
                        store_fp,
                        package_fp,
                        origin,
                        force=force,
                        progress=progress,
                        timeout=timeout,
                    )
                )
            except NotebookError as exc:
                errors.append(exc)
                states[name] = ("failed", f"{exc.ename}: {exc.evalue}")
                if progress:
                    print(f"norep: {exc}", file=sys.stderr)
                if not keep_going:
                    break
    finally:
        if saved_env is None:
            os.environ.pop("NOREP_STORE", None)
        else:
            os.environ["NOREP_STORE"] = saved_env
        _fill_chapters(out, all_sources, sources, states, origin, errors)
        _write_summaries(out, store_path, cache, origin)
    if errors and (keep_going or len(errors) > 1):
        raise NotebooksFailed(errors, runs)
    if errors:
        raise errors[0]
    return runs


def _output_folder(out) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file; give a folder for the executed notebooks")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {out}: {exc.strerror}") from None
    return out


def _fill_chapters(out: Path, all_sources, sources, states: dict, origin: dict, errors) -> None:
    """Give every chapter without an executed notebook from this store its placeholder page."""
    chosen = {s.stem for s in sources}
    for src in all_sources:
        name, target = src.stem, out / f"{src.stem}.ipynb"
        if name in states:
            _placeholder_for(src, target, origin, *states[name])
        elif not target.exists():
            why = (
                "an earlier chapter failed and the run stopped" if errors and name in chosen else "`--only` left it out"
            )
            _placeholder_for(src, target, origin, "skipped", why)


def _write_summaries(out: Path, store_path: Path, cache: dict, origin: dict) -> None:
    _write_environment(out, store_path, cache, origin)
    _write_about_store(out, store_path, origin)
    _write_claims(out, origin)


def _run_one(
    src: Path,
    out: Path,
    params: dict,
    cache: dict,
    store_fp: str,
    package_fp: str,
    origin: dict,
    *,
    force: bool,
    progress: bool,
    timeout,
) -> NotebookRun:
    """Execute one notebook, or take it from the cache when nothing it depends on changed."""
    name = src.stem
    parts = {
        "source": hashlib.sha256(src.read_bytes()).hexdigest(),
        "parameters": json.dumps(params, sort_keys=True, default=repr),
        "store": store_fp,
        "norep": package_fp,
        "python": sys.executable,
    }
    key = _cache_key(src.read_text(encoding="utf-8"), params, store_fp, package_fp)
    target = out / f"{name}.ipynb"
    entry = cache["notebooks"].get(name, {})
    if force:
        reason = "forced"
    elif not entry:
        reason = "no previous run"
    elif not target.exists() or entry.get("output_sha256") != _file_sha(target):
        reason = "executed notebook missing or modified"
    elif entry.get("key") != key and "parts" not in entry:
        reason = "cache format changed"
    elif entry.get("key") != key:
        old = entry["parts"]
        reason = ", ".join(f"{k} changed" for k in parts if old.get(k) != parts[k]) or "cache format changed"
    else:
        reason = "unchanged"
    if reason == "unchanged":
        if progress:
            print(f"norep: {name}: unchanged, cached ({entry.get('seconds', 0):.1f} s when run)", file=sys.stderr)
        return NotebookRun(name, target, True, float(entry.get("seconds", 0.0)), key, params, reason)
    if progress:
        print(f"norep: {name}: executing ({reason})", file=sys.stderr)
    t0 = time.perf_counter()
    execute_notebook(src, target, params, timeout=timeout, metadata=origin)
    seconds = time.perf_counter() - t0
    if progress:
        print(f"norep: {name}: executed in {seconds:.1f} s", file=sys.stderr)
    cache["notebooks"][name] = {
        "key": key,
        "parts": parts,
        "seconds": round(seconds, 2),
        "output_sha256": _file_sha(target),
        "executed_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "parameters": json.loads(json.dumps(params, default=repr)),
    }
    _save_cache(out, cache)
    return NotebookRun(name, target, False, seconds, key, params, reason)


def _cell(v) -> str:
    return str(v).replace("|", "/").replace("\n", " ")


def _interval(c: dict) -> str:
    if c.get("effect") is None or c.get("low") is None:
        return "none"
    return f"{c['effect']:.3g} [{c['low']:.3g}, {c['high']:.3g}]"


CLAIM_COLUMNS: list[tuple[str, object]] = [
    ("claim", lambda c: c["id"] + (" (method check)" if c.get("kind") == "method check" else "")),
    ("verdict", lambda c: f"**{c['status']}**"),
    ("effect [95 % interval]", _interval),
    ("models", lambda c: c.get("n_models", "")),
    ("pairs", lambda c: c.get("n_pairs", "")),
    ("resampled", lambda c: _cell(c.get("resampled") or "-")),
    ("chapter", lambda c: f"{{doc}}`/book/generated/{c['notebook']}`"),
]
"""Columns of the claims page's table: (header, function of a claim record -> cell text). A new
column is one more entry."""


def _claim_texts() -> dict[str, dict]:
    """Title and paper sentence of each claim, read from its function's source (for a claim whose
    chapter was not run, so no result records them)."""
    import inspect

    from norep.claims import CLAIMS

    texts = {}
    for cid, fn in CLAIMS.items():
        found = {}
        try:
            tree = ast.parse(inspect.getsource(fn).strip())
        except (OSError, TypeError, SyntaxError):
            tree = None
        for node in ast.walk(tree) if tree is not None else ():
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("title", "paper")
                and node.targets[0].id not in found
            ):
                try:
                    found[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        texts[cid] = found
    return texts


def _untested_claims(paths: Sequence[Path]) -> list[dict]:
    """*Not testable* records for the claims of chapters that were not run on this store."""
    found, texts = [], None
    for path in paths:
        meta = _nb_origin(path)
        if not meta.get("not_run"):
            continue
        texts = texts if texts is not None else _claim_texts()
        for cid in meta.get("claims", ()):
            t = texts.get(cid, {})
            reason = f"chapter {path.stem} was not run on this store ({meta['not_run'].rstrip('.').lower()})"
            found.append(
                {
                    "id": cid,
                    "title": t.get("title", ""),
                    "status": "not testable",
                    "kind": "finding",
                    "effect": None,
                    "low": None,
                    "high": None,
                    "effect_name": "",
                    "resampled": "",
                    "n_models": 0,
                    "n_pairs": 0,
                    "paper": t.get("paper", ""),
                    "reason": reason,
                    "this_run": f"Not testable on this store: {reason}.",
                    "notebook": path.stem,
                }
            )
    return found


def _claim_order(c: dict) -> int:
    return int(c["id"][1:]) if c["id"][1:].isdigit() else 99


def _write_claims(out: Path, origin: dict | None = None) -> Path:
    """Write ``claims.md``: the verdict of every paper claim in the executed notebooks, with the
    models and pairs it rests on and what its interval resampled; the claims of chapters not run
    on this store are *not testable*. The table's columns are :data:`CLAIM_COLUMNS`."""
    paths = [out / f"{n}.ipynb" for n in NOTEBOOKS if (out / f"{n}.ipynb").exists()]
    claims = collect_claims(paths) + _untested_claims(paths)
    lines = _generated_header(origin)
    if not claims:
        lines.append("No claim verdicts were found in the executed notebooks.")
    else:
        ordered = sorted(claims, key=_claim_order)
        lines += ["| " + " | ".join(h for h, _ in CLAIM_COLUMNS) + " |", "|" + "---|" * len(CLAIM_COLUMNS)]
        lines += ["| " + " | ".join(str(f(c)) for _, f in CLAIM_COLUMNS) + " |" for c in ordered]
        from norep.claims import power_table

        lines += [
            "",
            "## Power: what this study could see",
            "",
            "For each claim, the models and pairs its interval rests on, and the smallest effect the study "
            "would detect with 80 % power at the 5 % level (2.8 bootstrap standard errors, the standard "
            "error read off the 95 % interval). An *inconclusive* claim whose detectable effect is large "
            "says little about the paper: the study is too small to see it, not evidence of no effect.",
            "",
        ]
        lines += power_table(ordered)
        lines += ["", "Paper and this run, claim by claim:", ""]
        for c in ordered:
            clean = {k: _cell(c.get(k, "")) for k in ("paper", "this_run", "effect_name", "reason")}
            what = f" Effect: {clean['effect_name']}." if clean["effect_name"] else ""
            why = (
                f" Not testable: {clean['reason']}."
                if clean["reason"] and clean["reason"] not in clean["this_run"]
                else ""
            )
            lines.append(
                f"- **{c['id']}, {c['status']}.** Paper: {clean['paper']}. This run: {clean['this_run']}{what}{why}"
            )
    return _write_if_changed(out / "claims.md", lines)


def _generated_header(origin: dict | None) -> list[str]:
    """The first lines of a summary page: what wrote it, and the store (path and fingerprint) it came from."""
    if not origin:
        return ["<!-- generated by `norep notebooks run`; do not edit -->", ""]
    fp = origin["store_fingerprint"]
    return [
        f"<!-- generated by `norep notebooks run` from store {origin['store']}, "
        f"store fingerprint {fp}; do not edit -->",
        "",
        f"From store `{origin['store']}` (fingerprint `{fp[:12]}`).",
        "",
    ]


def _write_if_changed(path: Path, lines: Sequence[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def _zoo_preset(info: Mapping) -> str | None:
    """The embedded zoo's preset (``fashion`` or ``digits``) when ``norep zoo train`` made the store, else None."""
    preset = info.get("preset")
    return preset if preset in ("fashion", "digits") else None


def describe_store(st) -> str:
    """One Markdown paragraph on a store: where its models come from, how many of each category,
    its base model and accuracy band.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from norep.store import Store
    >>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="mine", class_names=["a", "b"],
    ...                   splits={"test": np.array([0, 1])})
    >>> describe_store(st)[:60]
    'Store `...'
    """
    from norep import CATEGORIES

    table = st.models()
    counts = table["category"].value_counts().to_dict() if len(table) else {}
    cats = ", ".join(f"{counts[c]} {c}" for c in CATEGORIES if c in counts) or "no models yet"
    band = st.accuracy_band
    band_txt = (
        f"accuracy band {100 * band[0]:.1f}-{100 * band[1]:.1f} %"
        if band
        else "no accuracy band set (every model counts as in the band; set one with `norep store set --band LO HI`)"
    )
    base = f"base model `{st.base_model}`" if st.base_model else "no base model set"
    return (
        f"Store `{Path(st.path).name}`: data set `{st.dataset}`, splits {', '.join(f'`{s}`' for s in st.splits())}; "
        f"{len(table)} models ({cats}); {base}; {band_txt}."
    )


def _write_about_store(out: Path, store_path: Path, origin: dict) -> Path:
    """Write ``about_store.md``, which the book's introduction includes: what the pages were made from."""
    from norep.store import Store

    st = Store.open(store_path)
    info = st.info
    preset = _zoo_preset(info)
    lines = [_generated_header(origin)[0], ""]
    if preset:
        data = (
            "Fashion-MNIST {cite}`xiao2017fashion`" if preset == "fashion" else "scikit-learn's 8x8 handwritten digits"
        )
        quick = " (its quick version: fewer, shorter models)" if info.get("quick") else ""
        lines.append(
            f"The pages you are reading were produced from the **embedded study**{quick}: a small model "
            f"zoo trained on {data} on a laptop CPU by `norep zoo train`, spanning the paper's five "
            "categories. It is a small-scale analogue of the paper's 82 ImageNet models, not a "
            "replication of its numbers."
        )
    else:
        lines.append(
            f"The pages you are reading were produced from **your store** `{origin['store']}`, not from "
            "the embedded study; its models and their numbers are the ones the chapters analyse."
        )
    lines += [
        "",
        describe_store(st),
        "",
        f"Store fingerprint `{origin['store_fingerprint'][:12]}`: every executed chapter records it.",
    ]
    return _write_if_changed(out / "about_store.md", lines)


def _versions(names: Sequence[str]) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for n in names:
        try:
            found[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            found[n] = "not installed"
    return found


def _write_environment(out: Path, store_path: Path, cache: dict, origin: dict | None = None) -> Path:
    """Write ``environment.md``, included by the book's reproducibility page: the versions, the store
    (with its fingerprint), the execution times of this store's notebooks and, for the embedded
    study only, the project's benchmark results."""
    from norep.store import Store

    st = Store.open(store_path)
    pkgs = [
        "norep",
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "torch",
        "torchvision",
        "timm",
        "open_clip_torch",
        "matplotlib",
        "seaborn",
        "papermill",
        "jupytext",
        "jupyter-book",
        "sphinx",
        "myst-nb",
    ]
    lines = _generated_header(origin) + [
        "| package | version |",
        "|---|---|",
        f"| Python | {platform.python_version()} ({platform.python_implementation()}) |",
    ]
    lines += [f"| {k} | {v} |" for k, v in _versions(pkgs).items()]
    info = st.info
    lines += [
        "",
        f"Platform: `{platform.platform()}`, {os.cpu_count()} logical CPUs.",
        "",
        f"Store: `{store_path}` (dataset `{info.get('dataset')}`, {len(st)} models, "
        f"preset `{info.get('preset', 'n/a')}`, base model `{info.get('base_model')}`"
        + (f", fingerprint `{origin['store_fingerprint']}`" if origin else "")
        + ").",
        "",
        "| notebook | execution time (s) | executed at | parameters |",
        "|---|---|---|---|",
    ]
    fp = (origin or {}).get("store_fingerprint")
    for name in NOTEBOOKS:
        e = cache["notebooks"].get(name)
        if e and (fp is None or e.get("parts", {}).get("store") == fp):
            ps = ", ".join(f"`{k}={v!r}`" for k, v in sorted(e.get("parameters", {}).items()))
            lines.append(f"| {name} | {e.get('seconds', 0):.1f} | {e.get('executed_at', '')} | {ps} |")
    timing_keys = [k for k in info if "time" in k.lower() or "seconds" in k.lower()]
    if timing_keys:
        lines += ["", "Store build timings recorded by its producer:", ""]
        lines += [f"- `{k}`: {info[k]}" for k in sorted(timing_keys)]
    lines += _benchmark_lines(info)
    return _write_if_changed(out / "environment.md", lines)


def _benchmark_lines(info: Mapping) -> list[str]:
    """The project's benchmark results, for a store of the embedded study only (they measure it)."""
    if not _zoo_preset(info):
        return []
    lines = ["", "### Benchmarks of the embedded study", ""]
    bench = sorted((Path(__file__).resolve().parents[2] / "bench" / "results").glob("*.md"))
    if bench:
        for b in bench:
            body = re.sub(
                r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + 3) + " ", b.read_text().strip(), flags=re.M
            )
            lines += [f"From `bench/results/{b.name}`:", "", body, ""]
    else:
        lines.append(
            "No benchmark results in `bench/results/` of this checkout "
            "(`norep bench analyses` and `norep bench extract` print and save them)."
        )
    return lines


# ------------------------------------------------------------------------------------------------
# Helpers the section notebooks share: parameter validation, loading, figures, claim verdicts.
# They load and present; every measure comes from norep's analysis modules.

STATUSES = ("reproduced", "partly reproduced", "not reproduced", "inconclusive", "not testable")
"""Verdicts a paper claim may get (decided by :mod:`norep.claims`)."""


@dataclass
class Study:
    """A store opened for one section notebook, with its parameters validated.

    Attributes
    ----------
    store : norep.store.Store
    base : str
        The base model (paper: ResNet-50).
    band : tuple of float
        The accuracy band (lo, hi) of the main analyses (paper: 74-78 % on ImageNet).
    table : pandas.DataFrame
        :meth:`Store.models` plus ``tier`` (``"low"``, ``"band"`` or ``"high"``, from the
        evaluation accuracy and ``band``) and ``in_band``.
    split, calib_split : str
        Evaluation and selection/calibration splits.
    """

    store: object
    base: str
    band: tuple[float, float]
    table: object
    split: str
    calib_split: str

    def labels(self, split: str | None = None):
        """Labels of ``split`` (default: the evaluation split)."""
        return self.store.labels(split or self.split)

    def predictions(self, names: Sequence[str], split: str | None = None):
        """(M, N) top-1 predictions of ``names`` on ``split``."""
        import numpy as np

        return np.stack([self.store.predictions(n, split or self.split) for n in names])

    def probs(self, name: str, split: str | None = None, *, calibrated: bool = True):
        """Temperature-scaled probabilities of ``name`` on ``split``."""
        return self.store.probs(name, split or self.split, calibrated=calibrated)

    def band_models(self, *, include_base: bool = False) -> list[str]:
        """Models whose accuracy on the selection split (``calib_split``) lies in the band, in
        category order (see :func:`norep.claims.band_partners`); the evaluation split chooses nothing."""
        from norep.claims import band_partners

        return ([self.base] if include_base else []) + band_partners(self)

    def pick(self, category: str, *, embeddings_on: Sequence[str] = ()) -> str | None:
        """A partner for the base model from ``category``, chosen on the selection split
        (``calib_split``): the most accurate one in the band, else the one closest in accuracy to
        the base (see :func:`norep.claims.display_partner`).

        Models must have embeddings on every split of ``embeddings_on``. None if there is none.
        """
        from norep.claims import display_partner

        return display_partner(self, category, embeddings_on=embeddings_on)

    def category(self, name: str) -> str:
        """Category of model ``name``."""
        return str(self.table.set_index("name").loc[name, "category"])


def verify_store(st) -> dict:
    """Verify store ``st`` before anything is computed from it; raise ``ValueError`` naming the problem.

    Uses :meth:`norep.store.Store.verify_cached`: every checksum is checked the first time, and again
    only when a file of the store changed (size, times or inode), so a warm run costs a few ``stat``
    calls, not a read of every array.
    """
    from norep.store import StoreError

    try:
        return st.verify_cached()
    except StoreError as exc:
        raise ValueError(f"refusing to analyse a damaged store: {exc}") from None


def load_study(
    store,
    *,
    base_model: str | None = None,
    accuracy_band=None,
    split: str = "test",
    calib_split: str = "calib",
    require_embeddings: Sequence[str] = (),
    needs: Sequence[str] = ("calib",),
    verify: bool = True,
) -> Study:
    """Open ``store`` and validate a notebook's common parameters, with clear errors.

    The store is verified first (:func:`verify_store`). Models that lack logits the page needs are
    left out of the returned table, and every model left out is printed with the reason.

    Parameters
    ----------
    store : path-like
        The prediction store, resolved by :func:`resolve_store` (a relative path from the project
        root when the kernel runs elsewhere; ``$NOREP_STORE`` replaces the default).
    base_model : str, optional
        Base model name (default: the store's ``base_model``).
    accuracy_band : (lo, hi), optional
        Accuracy band as fractions (default: the store's; else every model is in the band).
    split, calib_split : str
        Evaluation and calibration splits; both must be single-label splits of the store.
    require_embeddings : sequence of str
        Splits on which the base model must have embeddings.
    needs : sequence of str, default ("calib",)
        Splits, besides ``split``, on which a model must have logits to be on this page; ``"calib"``
        stands for ``calib_split``. Pass ``()`` for a page that uses the evaluation split only.
    verify : bool, default True
        Verify the store first (cached by its fingerprint).

    Returns
    -------
    Study

    Raises
    ------
    ValueError
        Naming the bad parameter and what would be valid, or the damaged file of the store.
    """
    from norep.store import Store

    try:
        st = Store.open(resolve_store(store))
    except FileNotFoundError as exc:
        raise ValueError(f"parameter store={str(store)!r}: {exc}") from None
    if verify:
        verify_store(st)
    splits = st.splits()
    for label, s in (("split", split), ("calib_split", calib_split)):
        if s not in splits:
            raise ValueError(f"parameter {label}={s!r}: the store has splits {splits}")
        if st.is_multilabel(s):
            raise ValueError(f"parameter {label}={s!r} is a multi-label split; give a single-label one")
    needed = [split] + [calib_split if n == "calib" else n for n in needs]
    needed = list(dict.fromkeys(needed))
    for s in needed:
        if s not in splits:
            raise ValueError(f"this page needs logits on split {s!r}; the store has {splits}")
    table = st.models()
    if table.empty:
        raise ValueError(
            f"store {store} holds no models; add some with `norep zoo train`, `norep extract` or `norep import`"
        )
    names = table["name"].tolist()
    base = base_model if base_model is not None else st.base_model
    if base is None:
        raise ValueError("the store names no base model: set the parameter base_model to one of " + ", ".join(names))
    if base not in names:
        raise ValueError(f"parameter base_model={base!r} is not in the store; models: {', '.join(names)}")
    band = accuracy_band if accuracy_band is not None else st.accuracy_band
    if band is None:
        band = (0.0, 1.0)
        print(
            "The store sets no accuracy band: every model counts as in the band (set one with "
            "`norep store set STORE --band LO HI`, or the parameter accuracy_band)."
        )
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"parameter accuracy_band={band!r} must be a pair (lo, hi) of fractions") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"parameter accuracy_band={band!r} must satisfy 0 <= lo < hi <= 1 (fractions, not percent)")
    lacking = {n: [s for s in needed if not st.has_logits(n, s)] for n in names}
    lacking = {n: miss for n, miss in lacking.items() if miss}
    if base in lacking:
        raise ValueError(
            f"base model {base!r} has no logits on {' and '.join(repr(s) for s in lacking[base])}, "
            "which this page needs"
        )
    if lacking:
        table = table[~table["name"].isin(list(lacking))].reset_index(drop=True)
        by_reason: dict[tuple, list[str]] = {}
        for n, miss in lacking.items():
            by_reason.setdefault(tuple(miss), []).append(n)
        for miss, ns in by_reason.items():
            print(
                f"Left out of this page: {', '.join(ns)} (no logits on {' and '.join(repr(s) for s in miss)}, "
                "which this page needs)."
            )
    for s in require_embeddings:
        if s not in splits:
            raise ValueError(f"this notebook needs split {s!r}; the store has {splits}")
        if not st.has_embeddings(base, s):
            raise ValueError(f"base model {base!r} has no embeddings on split {s!r}; this notebook needs them")
    acc = table[f"{split}_accuracy"].astype(float)
    table = table.copy()
    table["tier"] = ["low" if a < lo else ("high" if a > hi else "band") for a in acc]
    table["in_band"] = table["tier"] == "band"
    table.loc[table["name"] == base, "in_band"] = True
    outside = {t: table.loc[(table["tier"] == t) & (table["name"] != base), "name"].tolist() for t in ("low", "high")}
    if outside["low"] or outside["high"]:
        parts = [
            f"below: {', '.join(outside['low'])}" if outside["low"] else "",
            f"above: {', '.join(outside['high'])}" if outside["high"] else "",
        ]
        print(
            f"Outside the accuracy band {lo:.3f}-{hi:.3f} on {split!r} (left out of the band's analyses): "
            + "; ".join(p for p in parts if p)
            + "."
        )
    return Study(st, base, (lo, hi), table, split, calib_split)


PROFILES: dict[str, dict] = {
    "full": {},
    "student": {
        "n_boot": 200,
        "probe_Cs": ("middle", 2),
        "probe_max_iter": 100,
        "compression_points": 4,
        "rates": ("ends", 3),
        "top_k": 3,
    },
}
"""The ``profile`` parameter's settings. ``"full"`` changes nothing; ``"student"`` makes every chapter
finish in under a minute on the quick store on 2 CPU cores. A number is an upper bound (at most 200
bootstrap resamples); a sweep keeps at most that many values, either spread over its middle
(``"middle"``: the regularisation sweep) or with both ends kept (``"ends"``: the rates, whose ends are
the full embeddings)."""


def apply_profile(profile: str, **values):
    """The parameters ``values`` lowered to the bounds of ``profile`` (see :data:`PROFILES`), in order.

    Returns the single value for one parameter, else a tuple in the order given.

    Examples
    --------
    >>> apply_profile("student", n_boot=1000)
    200
    >>> apply_profile("student", n_boot=50, probe_Cs=[0.01, 0.1, 1.0, 10.0, 100.0])
    (50, [0.1, 10.0])
    >>> apply_profile("student", rates=[1.0, 0.75, 0.5, 0.25, 0.0])
    [1.0, 0.5, 0.0]
    >>> apply_profile("full", n_boot=1000)
    1000
    >>> apply_profile("fast", n_boot=1)
    Traceback (most recent call last):
    ...
    ValueError: parameter profile='fast' must be one of 'full', 'student'
    """
    if profile not in PROFILES:
        raise ValueError(f"parameter profile={profile!r} must be one of {', '.join(repr(p) for p in PROFILES)}")
    bounds = PROFILES[profile]
    out = []
    for key, value in values.items():
        bound = bounds.get(key)
        if bound is None or value is None:
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out.append(_thin(list(value), *bound))
        else:
            out.append(min(value, bound))
    return out[0] if len(out) == 1 else tuple(out)


def _thin(values: list, mode: str, keep: int) -> list:
    """At most ``keep`` values of a sweep: evenly spread over its middle, or with both ends."""
    n = len(values)
    if n <= keep:
        return values
    if mode == "ends" and keep >= 2:
        idx = sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})
    else:
        idx = sorted({int((i + 0.5) * n / keep) for i in range(keep)})
    return [values[i] for i in idx]


def check_parameters(*, n_boot, seed, fig_format) -> None:
    """Validate the parameters every section notebook shares and set the figure format.

    Examples
    --------
    >>> check_parameters(n_boot=0, seed=0, fig_format="png")
    Traceback (most recent call last):
    ...
    ValueError: parameter n_boot=0 must be an integer >= 10 (bootstrap resamples)
    """
    import numbers

    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 10:
        raise ValueError(f"parameter n_boot={n_boot!r} must be an integer >= 10 (bootstrap resamples)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"parameter seed={seed!r} must be a non-negative integer")
    set_figure_format(fig_format)


def limit_threads(threads: int | None) -> None:
    """Limit the CPU threads of torch and of the BLAS/OpenMP pools for the rest of the kernel.

    Small linear probes run several times faster on one thread than on a contended many-core
    pool. ``None`` leaves the libraries' defaults.

    Examples
    --------
    >>> limit_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: parameter threads=0 must be None or a positive integer
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"parameter threads={threads!r} must be None or a positive integer")
    from threadpoolctl import threadpool_limits

    threadpool_limits(int(threads))
    import torch

    torch.set_num_threads(int(threads))


def set_figure_format(fig_format: str) -> None:
    """Make the notebook's inline figures ``png``, ``svg`` or ``retina`` (validated)."""
    allowed = ("png", "svg", "retina", "jpeg", "pdf")
    if fig_format not in allowed:
        raise ValueError(f"parameter fig_format={fig_format!r} must be one of {allowed}")
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats(fig_format)


def glue_figure(key: str, fig) -> None:
    """Glue a matplotlib figure for a numbered ``{glue:figure}`` caption and close it."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(key, fig, display=False)
    plt.close(fig)


def verdict(low: float, high: float, *, expect: str = "positive", ordered: bool = True) -> str:
    """Verdict for an effect that should be positive (or negative) given its 95 % interval.

    ``"reproduced"`` when the whole interval has the expected sign, ``"not reproduced"`` when the
    whole interval has the opposite sign, else ``"inconclusive"`` (the interval contains or touches
    zero, or is nan). ``ordered=False`` lowers "reproduced" to ``"partly reproduced"``. The claims
    themselves are decided by :mod:`norep.claims`, which applies this rule part by part.

    Examples
    --------
    >>> verdict(0.01, 0.05), verdict(-0.02, 0.03), verdict(-0.05, -0.01), verdict(-0.05, 0.0)
    ('reproduced', 'inconclusive', 'not reproduced', 'inconclusive')
    >>> verdict(-0.05, -0.01, expect="negative")
    'reproduced'
    >>> verdict(0.01, 0.05, ordered=False), verdict(-0.02, 0.03, ordered=False)
    ('partly reproduced', 'inconclusive')
    """
    from norep.claims import sign

    if expect not in ("positive", "negative"):
        raise ValueError(f"expect must be 'positive' or 'negative', got {expect!r}")
    s = sign(low, high)
    if expect == "negative":
        s = -s
    if s > 0:
        return "reproduced" if ordered else "partly reproduced"
    return "not reproduced" if s < 0 else "inconclusive"


def fmt_ci(ci, *, percent: bool = False, digits: int = 3, unit: str | None = None) -> str:
    """``estimate [low, high]`` of a bootstrap interval, as a fraction or in percent.

    Examples
    --------
    >>> from norep.stats import BootstrapCI
    >>> fmt_ci(BootstrapCI(0.1234, 0.1, 0.15))
    '0.123 (95 % CI 0.100 to 0.150)'
    >>> fmt_ci(BootstrapCI(0.1234, 0.1, 0.15), percent=True, digits=1)
    '12.3 % (95 % CI 10.0 to 15.0)'
    >>> fmt_ci(BootstrapCI(0.02, 0.01, 0.03), percent=True, digits=1, unit=" points")
    '2.0 points (95 % CI 1.0 to 3.0)'
    """
    k = 100.0 if percent else 1.0
    if unit is None:
        unit = " %" if percent else ""
    return f"{k * ci.estimate:.{digits}f}{unit} (95 % CI {k * ci.low:.{digits}f} to {k * ci.high:.{digits}f})"


def report_claim(result) -> None:
    """Show a claim's verdict (a :class:`norep.claims.ClaimResult`) as Markdown and tag it for the
    book's claims page.

    The verdict, its interval, what was resampled and the models and pairs it rests on all come
    from :mod:`norep.claims`; nothing here decides anything.
    """
    from norep.claims import ClaimResult

    if not isinstance(result, ClaimResult):
        raise ValueError("report_claim takes the ClaimResult of a norep.claims function")
    from IPython.display import Markdown, display

    lead = {
        "reproduced": "This run **reproduces** the claim.",
        "partly reproduced": "This run **partly reproduces** the claim: one part holds, another does not.",
        "not reproduced": "This run **does not reproduce** the claim.",
        "inconclusive": "This run **does not reproduce** the claim at this scale: "
        "the confidence interval includes no effect.",
        "not testable": "This store **cannot test** the claim.",
    }[result.status]
    if result.kind == "method check":
        lead = f"*Method check.* {lead}"
    rests = (
        f"{result.n_models} models, {result.n_pairs} pairs; resampled: {result.resampled}"
        if result.status != "not testable"
        else f"{result.n_models} models, {result.n_pairs} pairs"
    )
    text = (
        f"**Claim {result.claim}.** {lead}\n\n- Paper: {result.paper}\n- This run: {result.sentence}\n"
        f"- Rests on: {rests}\n"
    )
    display(Markdown(text), metadata={"norep_claim": {**result.record(), "this_run": result.sentence}})


def collect_claims(notebooks: Iterable[str | os.PathLike]) -> list[dict]:
    """Claim verdicts recorded by :func:`report_claim` in executed notebooks, in order.

    Examples
    --------
    >>> collect_claims([])
    []
    """
    import nbformat

    found = []
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                rec = out.get("metadata", {}).get("norep_claim")
                if rec:
                    found.append({**rec, "notebook": Path(path).stem})
    return found
