"""What a section notebook calls: open and check its store, validate its parameters, show figures
and claim verdicts.

A chapter opens its store with :func:`load_study`, which verifies it (:func:`verify_store`) and returns a
:class:`Study`, the one object that crosses layers: the claims of :mod:`norep.claims` take it as their
input. The helpers here load and present; every measure comes from norep's analysis modules and every
verdict from :mod:`norep.claims`. The runner that executes the notebooks is :mod:`norep.notebooks`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_STORE",
    "project_root",
    "resolve_store",
    "STATUSES",
    "Study",
    "verify_store",
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
]

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
    st = _open_store(store, verify)
    needed = _needed_splits(st, split, calib_split, needs)
    table = st.models()
    if table.empty:
        raise ValueError(
            f"store {store} holds no models; add some with `norep zoo train`, `norep extract` or `norep import`"
        )
    base = _base_model(table["name"].tolist(), base_model, st.base_model)
    lo, hi = _accuracy_band(accuracy_band, st.accuracy_band)
    table = _drop_lacking(st, table, base, needed)
    _check_embeddings(st, base, require_embeddings)
    table = _with_tiers(table, base, split, lo, hi)
    return Study(st, base, (lo, hi), table, split, calib_split)


def _open_store(store, verify: bool):
    """The store the ``store`` parameter names, opened (and verified unless ``verify`` is False)."""
    from norep.store import Store

    try:
        st = Store.open(resolve_store(store))
    except FileNotFoundError as exc:
        raise ValueError(f"parameter store={str(store)!r}: {exc}") from None
    if verify:
        verify_store(st)
    return st


def _needed_splits(st, split: str, calib_split: str, needs: Sequence[str]) -> list[str]:
    """Check the evaluation and calibration splits; the splits a model needs logits on, in order."""
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
    return needed


def _base_model(names: list[str], base_model: str | None, store_base: str | None) -> str:
    """The base model: the parameter, else the store's; it must be one of ``names``."""
    base = base_model if base_model is not None else store_base
    if base is None:
        raise ValueError("the store names no base model: set the parameter base_model to one of " + ", ".join(names))
    if base not in names:
        raise ValueError(f"parameter base_model={base!r} is not in the store; models: {', '.join(names)}")
    return base


def _accuracy_band(accuracy_band, store_band) -> tuple[float, float]:
    """The accuracy band (lo, hi): the parameter, else the store's, else (0, 1) with a note."""
    band = accuracy_band if accuracy_band is not None else store_band
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
    return lo, hi


def _drop_lacking(st, table, base: str, needed: list[str]):
    """``table`` without the models that lack logits on a split of ``needed``, each printed with the reason."""
    names = table["name"].tolist()
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
    return table


def _check_embeddings(st, base: str, require_embeddings: Sequence[str]) -> None:
    """Check that the base model has embeddings on every split of ``require_embeddings``."""
    splits = st.splits()
    for s in require_embeddings:
        if s not in splits:
            raise ValueError(f"this notebook needs split {s!r}; the store has {splits}")
        if not st.has_embeddings(base, s):
            raise ValueError(f"base model {base!r} has no embeddings on split {s!r}; this notebook needs them")


def _with_tiers(table, base: str, split: str, lo: float, hi: float):
    """``table`` with ``tier`` and ``in_band`` from the accuracy on ``split``; prints the models outside the band."""
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
    return table


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
    >>> from norep.measures.stats import BootstrapCI
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
