"""The summary pages every run writes beside the notebooks: ``claims.md``, ``environment.md`` and
``about_store.md``, each naming the store (path and fingerprint) it came from."""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from norep.notebooks._sources import _CHECKOUT, NOTEBOOKS

_SUMMARY_PAGES = ("claims.md", "environment.md", "about_store.md")


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
    bench = sorted((_CHECKOUT / "bench" / "results").glob("*.md"))
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
