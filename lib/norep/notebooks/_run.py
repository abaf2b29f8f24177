"""``run_notebooks``: every section notebook on one store, and a page for each chapter that was not run."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from norep.notebooks._execute import (
    _KERNEL_NAME,
    NotebookError,
    NotebookRun,
    _load_cache,
    _package_fingerprint,
    _plain,
    _run_one,
    store_fingerprint,
)
from norep.notebooks._pages import _SUMMARY_PAGES, _nb_origin, _write_claims, _write_summaries
from norep.notebooks._sources import _chapter_title, declared_parameters, find_notebooks, missing_inputs
from norep.paper import claims_of
from norep.study import verify_store


class NotebooksFailed(RuntimeError):
    """One or more notebooks failed; ``errors`` holds one :class:`NotebookError` per failed notebook
    and ``runs`` the notebooks that ran or came from the cache."""

    def __init__(self, errors: Sequence[NotebookError], runs: Sequence[NotebookRun] = ()):
        self.errors, self.runs = list(errors), list(runs)
        lines = [f"{len(self.errors)} notebook(s) failed:"] + [f"  {e}" for e in self.errors]
        super().__init__("\n".join(lines))


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
    solutions: bool = False,
    replicates: Sequence[str | os.PathLike] = (),
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
    solutions : bool
        Also run every exercise solution's code after its notebook, in the notebook's kernel (see
        :func:`norep.notebooks.execute_notebook`): a failing solution fails its chapter.
    replicates : sequence of path-like
        Replicate stores of the same study (e.g. the zoo trained with other seeds). The same notebooks
        run on each, with the same parameters, into ``out/replicates/NN-<store folder>/`` (cached like
        ``out``), and the claims page gains a *stability* column (in how many of the stores each claim
        has the verdict it has here) and a table of every store's verdicts. A run without replicates
        removes ``out/replicates``: the page shows the replicates of the latest run only.

    Returns
    -------
    list of NotebookRun

    Raises
    ------
    FileNotFoundError
        If ``store`` holds no store.
    ValueError
        If the store fails verification (:func:`norep.study.verify_store`) or ``out`` is a file.
    NotebookError
        On the first failing notebook (later ones are not run), unless ``keep_going``.
    NotebooksFailed
        With ``keep_going``, when any notebook failed.
    """
    from norep.storage import Store

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
                        solutions=solutions,
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
    _run_replicates(store_path, replicates, out, extra, only, notebook_dir, force, progress, timeout, origin)
    return runs


REPLICATES_DIR = "replicates"
"""Sub-folder of the output folder holding the executed notebooks of each replicate store."""


def _run_replicates(store_path, replicates, out, extra, only, notebook_dir, force, progress, timeout, origin) -> None:
    """Run the notebooks on every replicate store into ``out/replicates/``, then rewrite the claims page
    with their verdicts (or, with no replicates, remove that folder)."""
    import shutil

    root = out / REPLICATES_DIR
    if not replicates:
        shutil.rmtree(root, ignore_errors=True)
        return
    folders = []
    for i, rep in enumerate(replicates, 1):
        rep = Path(rep)
        if rep.resolve() == store_path.resolve():
            raise ValueError(f"replicate store {rep} is the main store; give other stores of the same study")
        folder = root / f"{i:02d}-{rep.resolve().name}"
        if progress:
            print(f"norep: replicate {i} of {len(replicates)}: {rep}", file=sys.stderr)
        run_notebooks(
            rep,
            out=folder,
            parameters=extra,
            only=only,
            notebook_dir=notebook_dir,
            force=force,
            progress=progress,
            timeout=timeout,
        )
        folders.append(folder)
    keep = {f.name for f in folders}
    for old in root.iterdir():
        if old.is_dir() and old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    _write_claims(out, origin, replicates=folders)


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


def _write_placeholder(source: Path, target: Path, origin: dict, why: str, body: str) -> Path:
    """Write a one-cell notebook in place of a chapter that was not executed on this store."""
    import nbformat

    name = source.stem
    claim_ids = claims_of(name)
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
