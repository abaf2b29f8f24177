"""Execute the book's section notebooks with papermill, on fresh kernels, cached by content.

The sources are jupytext py:percent files (``notebooks/NN_name.py``, text only). Each run reads
one with :func:`jupytext.read`, injects parameters with papermill (the source's
``parameters``-tagged cell holds the defaults) and executes it on a fresh kernel of *this*
Python interpreter, writing ``OUT/NN_name.ipynb`` for Jupyter Book (which does not re-execute:
``execute_notebooks: "off"``).

A notebook is skipped when nothing it depends on changed: its source text, the parameters, the
store (``store.json`` and every file's size and modification time) and the ``norep`` package
(version and source files). This is what makes a second ``make book`` fast.

Besides the notebooks, every run writes ``OUT/environment.md`` (the commit, the store and its
fingerprint, package versions, per-notebook execution times) which the book's reproducibility page
includes, ``OUT/about_store.md`` (what the pages were made from) and ``OUT/overview.md`` with its
figure ``OUT/overview.svg`` (the verdicts at a glance) which the introduction includes, and
``OUT/claims.md``, so the numbers a reader sees come from the run that produced the pages.

One run, one store: every executed notebook records the store and its fingerprint in
``metadata["norep"]`` and every summary page names them; a run first removes from ``OUT`` every
page of another store. Each chapter of the book gets a page from this store: its executed notebook,
or a one-cell page saying why it was not run (:func:`missing_inputs`: the store lacks a split or
embeddings it needs; or it failed; or ``only`` left it out), whose claims the claims page lists as
*not testable*.

The runner is split by job: :mod:`norep.notebooks._sources` (which notebooks there are, their
parameters, what each needs from a store), :mod:`norep.notebooks._execute` (one notebook on a fresh
kernel, fingerprints and the cache), :mod:`norep.notebooks._run` (:func:`run_notebooks` and the pages of
chapters not run) and :mod:`norep.notebooks._pages` (the summary pages).
"""

from __future__ import annotations

from norep.claims import verdict  # (re-exported, see below)
from norep.notebooks._execute import NotebookError, NotebookRun, execute_notebook, store_fingerprint
from norep.notebooks._pages import CLAIM_COLUMNS, collect_claims, describe_store
from norep.notebooks._run import NotebooksFailed, run_notebooks
from norep.notebooks._sources import (
    NOTEBOOKS,
    declared_parameters,
    default_notebook_dir,
    exercise_solutions,
    find_notebooks,
    missing_inputs,
    parse_parameters,
)

# What the section notebooks call moved to norep.study (report_claim to norep.paper, verdict to
# norep.claims); re-exported here so that older code importing it from norep.notebooks keeps working.
from norep.paper import report_claim
from norep.study import (
    DEFAULT_STORE,
    PROFILES,
    STATUSES,
    Study,
    apply_profile,
    check_parameters,
    fmt_ci,
    glue_figure,
    limit_threads,
    load_study,
    project_root,
    resolve_store,
    set_figure_format,
    verify_store,  # noqa: F401 (public before the move; not in __all__ then either)
)

__all__ = [
    "NOTEBOOKS",
    "NotebookError",
    "NotebookRun",
    "NotebooksFailed",
    "CLAIM_COLUMNS",
    "missing_inputs",
    "describe_store",
    "default_notebook_dir",
    "DEFAULT_STORE",
    "project_root",
    "resolve_store",
    "exercise_solutions",
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
    "fmt_ci",
    "verdict",
    "report_claim",
    "collect_claims",
]
