"""Execute one notebook on a fresh kernel of this interpreter, and the content cache that skips it.

The cache key of a notebook hashes its source text, the parameters, the store's fingerprint
(:func:`store_fingerprint`), the ``norep`` package's source (every ``.py`` file of the installed
package, this one included) and the interpreter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    solutions: bool = False,
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
    solutions : bool
        Also run the code of every exercise solution (:func:`norep.notebooks.exercise_solutions`),
        each as a cell after the notebook's own, tagged ``exercise-solution`` and ``remove-cell`` (the
        book does not show them twice); a failing solution fails the notebook like any cell.

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
    if solutions:
        import nbformat

        from norep.notebooks._sources import exercise_solutions

        for label, code in exercise_solutions(source):
            cell = nbformat.v4.new_code_cell(code)
            cell.metadata["tags"] = ["exercise-solution", "remove-cell"]
            cell.metadata["norep_exercise"] = label
            nb.cells.append(cell)
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
    _hide_injected_parameters(tmp)
    errors = _error_outputs(executed)
    if errors:
        os.replace(tmp, failed)
        idx, msg = errors[0]
        raise NotebookError(name, idx, "", *msg.split(": ", 1), failed)
    os.replace(tmp, output)
    failed.unlink(missing_ok=True)
    return output


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected parameters cell ``remove-cell`` in the executed notebook at ``path``, so
    that the book does not show it (the chapter's own parameters cell stays, with its defaults)."""
    import nbformat

    if not path.exists():
        return
    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.setdefault("metadata", {})["tags"] = [*tags, "remove-cell"]
            changed = True
    if changed:
        nbformat.write(nb, str(path))


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
    solutions: bool = False,
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
    if solutions:  # a run with the exercise solutions is another notebook (without: the key is unchanged)
        parts["solutions"] = "run"
        key = hashlib.sha256(f"{key}\0solutions".encode()).hexdigest()
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
    execute_notebook(src, target, params, timeout=timeout, metadata=origin, solutions=solutions)
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
