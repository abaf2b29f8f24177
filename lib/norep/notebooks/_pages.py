"""The summary pages every run writes beside the notebooks: ``claims.md``, ``environment.md`` and
``about_store.md``, each naming the store (path and fingerprint) it came from."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from norep.notebooks._sources import _CHECKOUT, NOTEBOOKS
from norep.plots._overview import STATUS_WORDS, effect_text, status_words

STATUSES = tuple(STATUS_WORDS)

_SUMMARY_PAGES = ("claims.md", "environment.md", "about_store.md", "overview.md")


def _nb_origin(path: Path) -> dict:
    """The ``norep`` metadata of an executed notebook or page ({} when absent or unreadable)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("norep") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def _write_summaries(out: Path, store_path: Path, cache: dict, origin: dict) -> None:
    _write_environment(out, store_path, cache, origin)
    _write_about_store(out, store_path, origin)
    _write_claims(out, origin)
    _write_overview(out, origin)


def _cell(v) -> str:
    return str(v).replace("|", "/").replace("\n", " ")


CLAIM_COLUMNS: list[tuple[str, object]] = [
    ("claim", lambda c: c["id"] + (" (method check)" if c.get("kind") == "method check" else "")),
    ("verdict", lambda c: f"**{c['status']}**"),
    ("effect [95 % interval]", lambda c: _cell(effect_text(c))),
    ("in words", lambda c: _cell(c.get("title") or "-")),
    ("models", lambda c: c.get("n_models", "")),
    ("pairs", lambda c: c.get("n_pairs", "")),
    ("resampled", lambda c: _cell(c.get("resampled") or "-")),
    ("chapter", lambda c: f"{{doc}}`/book/generated/{c['notebook']}`"),
]
"""Columns of the claims page's table: (header, function of a claim record -> cell text). A new
column is one more entry."""


def _claim_texts() -> dict[str, dict]:
    """Title and paper sentence of each claim, from the registry (for a claim whose chapter was not run,
    so no result records them)."""
    from norep.paper import REGISTRY

    return {cid: {"title": c.title, "paper": c.paper, "kind": c.kind} for cid, c in REGISTRY.items()}


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
                    "kind": t.get("kind", "finding"),
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


def _all_claims(out: Path) -> list[dict]:
    """Every claim record of the chapters in ``out``: the executed ones' and, for the chapters not run
    on this store, *not testable* records."""
    paths = [out / f"{n}.ipynb" for n in NOTEBOOKS if (out / f"{n}.ipynb").exists()]
    return collect_claims(paths) + _untested_claims(paths)


def _claim_order(c: dict) -> int:
    return int(c["id"][1:]) if c["id"][1:].isdigit() else 99


def stability(claims: Sequence[dict], replicates: Mapping[str, Sequence[dict]]) -> dict[str, str]:
    """Per claim id, in how many stores (this one and each replicate) the claim has this store's verdict.

    Examples
    --------
    >>> here = [{"id": "C1", "status": "reproduced"}, {"id": "C2", "status": "inconclusive"}]
    >>> reps = {"r1": [{"id": "C1", "status": "reproduced"}, {"id": "C2", "status": "reproduced"}],
    ...         "r2": [{"id": "C1", "status": "not reproduced"}]}
    >>> stability(here, reps)
    {'C1': '2 of 3 stores', 'C2': '1 of 3 stores'}
    """
    n = 1 + len(replicates)
    by = [{r["id"]: r["status"] for r in recs} for recs in replicates.values()]
    agree = {c["id"]: 1 + sum(b.get(c["id"]) == c["status"] for b in by) for c in claims}
    return {cid: f"{k} of {n} stores" for cid, k in agree.items()}


def _replicate_claims(folders: Sequence[Path]) -> dict[str, list[dict]]:
    """The claim records of each replicate folder (its executed chapters' and *not testable* ones), by
    the replicate's store folder name."""
    found = {}
    for folder in folders:
        name = _nb_origin(next(iter(sorted(folder.glob("*.ipynb"))), folder)).get("store") or folder.name
        found[Path(str(name)).name] = _all_claims(folder)
    return found


def _write_claims(out: Path, origin: dict | None = None, replicates: Sequence[Path] = ()) -> Path:
    """Write ``claims.md``: the verdict of every paper claim in the executed notebooks, with the
    models and pairs it rests on and what its interval resampled; the claims of chapters not run
    on this store are *not testable*. The table's columns are :data:`CLAIM_COLUMNS`; with replicate
    folders (see :func:`norep.notebooks.run_notebooks`), a *stability* column and a table of every
    store's verdicts (:func:`norep.claims.replicate_table`) follow."""
    claims = _all_claims(out)
    lines = _generated_header(origin)
    if not claims:
        lines.append("No claim verdicts were found in the executed notebooks.")
    else:
        ordered = sorted(claims, key=_claim_order)
        columns = list(CLAIM_COLUMNS)
        reps = _replicate_claims(replicates) if replicates else {}
        if reps:
            stable = stability(ordered, reps)
            columns.insert(3, ("stability", lambda c: stable.get(c["id"], "-")))
        lines += ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(str(f(c)) for _, f in columns) + " |" for c in ordered]
        if reps:
            from norep.claims import replicate_table

            here = Path(str((origin or {}).get("store", "this store"))).name
            lines += [
                "",
                "## Replicates",
                "",
                f"The same chapters, with the same parameters, on {len(reps)} replicate store(s) of the study. "
                "*Stability* above counts the stores (this one included) where a claim has the verdict it has "
                "here; below, every store's verdict, effect and 95 % interval.",
                "",
            ]
            lines += replicate_table({here: ordered, **{k: sorted(v, key=_claim_order) for k, v in reps.items()}})
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


OVERVIEW_FIGURE = "overview.svg"
"""The verdict forest plot :func:`_write_overview` writes beside ``overview.md``."""


def _write_overview(out: Path, origin: dict | None = None) -> Path:
    """Write ``overview.md`` (which the book's first page includes) and its figure: the verdicts at a
    glance (:func:`norep.plots.verdict_forest`) and, per claim, the paper's statement beside this
    run's result, linking to its chapter."""
    claims = sorted(_all_claims(out), key=_claim_order)
    lines = [_generated_header(origin)[0], ""]
    if not claims:
        lines.append("No claim verdicts were found in the executed notebooks.")
        (out / OVERVIEW_FIGURE).unlink(missing_ok=True)
        return _write_if_changed(out / "overview.md", lines)
    _write_figure(out / OVERVIEW_FIGURE, claims)
    counts = {s: sum(c["status"] == s for c in claims) for s in STATUSES}
    tally = ", ".join(f"{n} {status_words(s)}" for s, n in counts.items() if n)
    lines += [
        f"```{{figure}} /book/generated/{OVERVIEW_FIGURE}",
        ":name: fig-verdict-overview",
        ":figclass: norep-overview",
        ":width: 100%",
        f":alt: Forest plot of the {len(claims)} claims' verdicts: {tally}.",
        "```",
        "",
        f"**The {len(claims)} claims at a glance** ({tally}). One row per claim of the paper: the dot is "
        "this run's effect and the bar its 95 % interval, both divided by the smallest effect this study "
        "would detect (80 % power at the 5 % level); inside the grey band an effect is too small for this "
        "study to see. The effect in its own units is printed above each bar; the colour is the verdict.",
        "",
        "| claim | the paper | this study | chapter |",
        "|---|---|---|---|",
    ]
    for c in claims:
        title = _cell(c.get("title") or "")
        result = f"**{status_words(c['status'])}**: {_cell(effect_text(c))}"
        if c["status"] == "not testable" and c.get("reason"):
            result = f"**{status_words(c['status'])}**: {_cell(c['reason'])}"
        chapter = f"{{doc}}`{c['notebook'][:2]} </book/generated/{c['notebook']}>`"
        lines.append(f"| **{c['id']}** {title} | {_cell(c.get('paper') or '-')} | {result} | {chapter} |")
    return _write_if_changed(out / "overview.md", lines)


def _write_figure(path: Path, claims: Sequence[dict]) -> None:
    """Save the verdict forest plot as SVG, rewriting the file only when its content changed."""
    import io

    import matplotlib
    import matplotlib.pyplot as plt

    from norep.plots import verdict_forest

    with matplotlib.rc_context({"svg.hashsalt": "norep", "svg.fonttype": "path"}):
        fig = verdict_forest(claims)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
    data = buf.getvalue()
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


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
    >>> from norep.storage import Store
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
    from norep.storage import Store

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


_VERSIONED = (
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
    "plotly",
    "papermill",
    "jupytext",
    "jupyter-book",
    "sphinx",
    "myst-nb",
)
"""The packages whose versions the reproducibility page lists (``constraints.txt`` pins them all)."""


def _checkout_commit() -> str | None:
    """The commit of the checkout ``norep`` is imported from (``+ local changes`` when the work tree
    differs from it), or None outside a git checkout."""
    import subprocess

    if not (_CHECKOUT / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(_CHECKOUT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=30
        )
        dirty = subprocess.run(
            ["git", "-C", str(_CHECKOUT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0 or not head.stdout.strip():
        return None
    return head.stdout.strip() + (" + local changes" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _write_environment(out: Path, store_path: Path, cache: dict, origin: dict | None = None) -> Path:
    """Write ``environment.md``, included by the book's reproducibility page: the commit, the store
    (with its fingerprint), the versions, and the execution time and parameters of this store's
    notebooks."""
    from norep.storage import Store

    st = Store.open(store_path)
    info = st.info
    commit = _checkout_commit()
    versions = ", ".join(f"{k} {v}" for k, v in _versions(_VERSIONED).items())
    lines = _generated_header(origin) + [
        f"- **Commit**: `{commit}`." if commit else "- **Commit**: not run from a git checkout.",
        f"- **Store**: `{store_path}` (dataset `{info.get('dataset')}`, {len(st)} models, "
        f"preset `{info.get('preset', 'n/a')}`, base model `{info.get('base_model')}`)"
        + (f"; fingerprint `{origin['store_fingerprint']}`." if origin else "."),
        f"- **Python** {platform.python_version()} ({platform.python_implementation()}); {versions}.",
        f"- **Platform**: `{platform.platform()}`, {os.cpu_count()} logical CPUs.",
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
    return _write_if_changed(out / "environment.md", lines)


def collect_claims(notebooks: Iterable[str | os.PathLike]) -> list[dict]:
    """Claim verdicts recorded by :func:`norep.paper.report_claim` in executed notebooks, in order.

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
