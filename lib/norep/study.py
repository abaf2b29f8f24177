"""What a section notebook calls: open and check its store, validate its parameters, set up Colab, show
figures.

A chapter opens its store with :func:`load_study`, which verifies it (:func:`verify_store`) and returns a
:class:`Study`, the one object that crosses layers: the chapters and claims of :mod:`norep.paper` take it
as their input. The study also fixes the accuracy band's members, once, on the selection split
(:func:`band_partners`): what a chapter prints as in or out of the band is the set its claims use. The
helpers here load and present; every measure comes from norep's analysis modules, every table and
verdict from :mod:`norep.paper`. This module imports neither: the runner is :mod:`norep.notebooks`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from norep import CONTROL_ROLE

__all__ = [
    "DEFAULT_STORE",
    "project_root",
    "resolve_store",
    "STATUSES",
    "Study",
    "verify_store",
    "load_study",
    "check_parameters",
    "colab_setup",
    "PROFILES",
    "apply_profile",
    "limit_threads",
    "set_figure_format",
    "glue_figure",
    "fmt_ci",
    "selection_accuracy",
    "selection_band",
    "band_partners",
    "display_partner",
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
    store : norep.storage.Store
    base : str
        The base model (paper: ResNet-50).
    band : tuple of float
        The accuracy band (lo, hi) of the main analyses (paper: 74-78 % on ImageNet).
    table : pandas.DataFrame
        :meth:`Store.models` plus ``tier`` (``"low"``, ``"band"`` or ``"high"``, from the
        selection-split accuracy and :func:`selection_band`) and ``in_band``: the set every claim uses.
    split, calib_split : str
        Evaluation and selection/calibration splits.
    controls : pandas.DataFrame
        The store's controls (models whose ``role`` is ``"control"``: untrained encoders and non-neural
        learners), kept as reference points for tables and figures and never in ``table``, so never in a
        category's statistics.
    """

    store: object
    base: str
    band: tuple[float, float]
    table: object
    split: str
    calib_split: str
    controls: object = None

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
        store order (see :func:`band_partners`); the evaluation split chooses nothing."""
        return ([self.base] if include_base else []) + band_partners(self)

    def pick(self, category: str, *, embeddings_on: Sequence[str] = ()) -> str | None:
        """A partner for the base model from ``category``, chosen on the selection split
        (``calib_split``): the most accurate one in the band, else the one closest in accuracy to
        the base (see :func:`display_partner`).

        Models must have embeddings on every split of ``embeddings_on``. None if there is none.
        """
        return display_partner(self, category, embeddings_on=embeddings_on)

    def category(self, name: str) -> str:
        """Category of model ``name``."""
        return str(self.table.set_index("name").loc[name, "category"])


def verify_store(st) -> dict:
    """Verify store ``st`` before anything is computed from it; raise ``ValueError`` naming the problem.

    Uses :meth:`norep.storage.Store.verify_cached`: every checksum is checked the first time, and again
    only when a file of the store changed (size, times or inode), so a warm run costs a few ``stat``
    calls, not a read of every array.
    """
    from norep.storage import StoreError

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
    table, controls = _split_controls(table, base)
    _check_embeddings(st, base, require_embeddings)
    study = Study(st, base, (lo, hi), table, split, calib_split)
    study.table = _with_tiers(study)
    study.controls = _control_tiers(study, controls)
    return study


def _control_tiers(study, controls):
    """The controls with ``tier`` from their selection-split accuracy and the study's band, ``in_band`` False."""
    lo, hi = selection_band(study)
    controls = controls.copy()
    acc = selection_accuracy(Study(study.store, study.base, study.band, controls, study.split, study.calib_split))
    controls["tier"] = [_tier(acc[str(n)], lo, hi) for n in controls["name"]]
    controls["in_band"] = False
    return controls


def _split_controls(table, base: str):
    """(the models of the five categories, the controls): a control's metadata has ``role`` "control"."""
    if "role" not in table.columns:
        return table, table.iloc[:0]
    is_control = (table["role"] == CONTROL_ROLE).to_numpy()
    if is_control[(table["name"] == base).to_numpy()].any():
        raise ValueError(f"the base model {base!r} is a control (role 'control'); choose another with base_model=")
    return table[~is_control].reset_index(drop=True), table[is_control].reset_index(drop=True)


def _open_store(store, verify: bool):
    """The store the ``store`` parameter names, opened (and verified unless ``verify`` is False)."""
    from norep.storage import Store

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


def _with_tiers(study) -> object:
    """``study.table`` with ``tier`` (``"low"``, ``"band"``, ``"high"``; ``"none"`` for a model without
    logits on the selection split, on a page that needs none) and ``in_band`` from the accuracy
    on the selection split and :func:`selection_band`: the set every claim uses. Prints the models
    outside the band."""
    lo, hi = selection_band(study)
    acc = selection_accuracy(study)
    table = study.table.copy()
    table["tier"] = [_tier(acc[str(n)], lo, hi) for n in table["name"]]
    table["in_band"] = table["tier"] == "band"
    table.loc[table["name"] == study.base, "in_band"] = True
    outside = {
        t: table.loc[(table["tier"] == t) & (table["name"] != study.base), "name"].tolist()
        for t in ("low", "high", "none")
    }
    if outside["low"] or outside["high"] or outside["none"]:
        parts = [
            f"below: {', '.join(outside['low'])}" if outside["low"] else "",
            f"above: {', '.join(outside['high'])}" if outside["high"] else "",
            f"no logits on it: {', '.join(outside['none'])}" if outside["none"] else "",
        ]
        print(
            f"Outside the accuracy band {lo:.3f}-{hi:.3f} on the selection split {study.calib_split!r} "
            "(left out of the band's analyses): " + "; ".join(p for p in parts if p) + "."
        )
    return table


def _tier(acc: float, lo: float, hi: float) -> str:
    """``"low"``, ``"band"`` or ``"high"`` for a selection-split accuracy; ``"none"`` without one (NaN)."""
    if acc != acc:
        return "none"
    return "low" if acc < lo else ("high" if acc > hi else "band")


def selection_accuracy(study) -> dict[str, float]:
    """Every model's accuracy on the selection split (``study.calib_split``)."""
    import numpy as np

    col = f"{study.calib_split}_accuracy"
    t = study.table
    if col in t.columns and t[col].notna().all():
        return {str(n): float(a) for n, a in zip(t["name"], t[col], strict=True)}
    y = study.labels(study.calib_split)
    return {  # a model without logits on the selection split (a page that needs none) is never in the band
        str(n): float(np.mean(study.store.predictions(n, study.calib_split) == y))
        if study.store.has_logits(str(n), study.calib_split)
        else float("nan")
        for n in t["name"]
    }


def selection_band(study) -> tuple[float, float]:
    """The accuracy band on the selection split, fixed without reading the evaluation split.

    Where the store defines its band as the base's accuracy +- a half-width (``info["band_halfwidth"]``,
    as the embedded study does) and the study uses that band, the band is re-centred on the base's
    *selection-split* accuracy: a split whose accuracies differ from the evaluation split's for every
    model alike then moves the band with them. Otherwise (an explicit ``accuracy_band``, or a store
    with an absolute band) the band is applied to selection-split accuracies as it stands.
    """
    lo, hi = (float(v) for v in study.band)
    st = study.store
    hw = st.info.get("band_halfwidth") if hasattr(st, "info") else None
    stored = st.accuracy_band
    if hw is None or stored is None or (lo, hi) != tuple(float(v) for v in stored):
        return lo, hi
    centre = selection_accuracy(study)[study.base]
    return max(0.0, centre - float(hw)), min(1.0, centre + float(hw))


def band_partners(study, *, embeddings_on: Sequence[str] = ()) -> list[str]:
    """Models other than the base whose *selection-split* accuracy lies in the band, in store order.

    Band membership is decided on the selection split (with :func:`selection_band`) so that the
    evaluation split chooses nothing; it is the ``in_band`` column of the study's table.
    """
    lo, hi = selection_band(study)
    acc = selection_accuracy(study)
    out = []
    for n in study.table["name"]:
        n = str(n)
        if n == study.base or not lo <= acc[n] <= hi:
            continue
        if embeddings_on and not all(study.store.has_embeddings(n, s) for s in embeddings_on):
            continue
        out.append(n)
    return out


def display_partner(study, category: str, *, embeddings_on=()) -> str | None:
    """The partner a chapter shows for ``category``: the in-band model (band on the selection split) most
    accurate on the selection split, else the one closest to the base in selection-split accuracy.
    None when the category has no model besides the base."""
    acc = selection_accuracy(study)
    t = study.table
    names = [str(n) for n, c in zip(t["name"], t["category"], strict=True) if c == category and n != study.base]
    names = [n for n in names if all(study.store.has_embeddings(n, s) for s in embeddings_on)]
    if not names:
        return None
    lo, hi = selection_band(study)
    inside = [n for n in names if lo <= acc[n] <= hi]
    if inside:
        return max(inside, key=lambda n: acc[n])
    return min(names, key=lambda n: abs(acc[n] - acc[study.base]))


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


def check_parameters(*, n_boot, seed, fig_format, profile: str = "full", **sweeps):
    """Validate the parameters every section notebook shares, lower them to ``profile`` (see
    :func:`apply_profile`), set the figure format and print the values the chapter uses.

    Returns ``n_boot`` lowered to the profile's bound, or ``(n_boot, *sweeps)`` in the order given when
    sweeps (``probe_Cs``, ``rates``, ...) are passed.

    Examples
    --------
    >>> check_parameters(n_boot=0, seed=0, fig_format="png")
    Traceback (most recent call last):
    ...
    ValueError: parameter n_boot=0 must be an integer >= 10 (bootstrap resamples)
    >>> check_parameters(n_boot=1000, seed=0, fig_format="png", profile="student", top_k=4)
    Parameters: n_boot=200, top_k=3, seed=0, profile='student', fig_format='png'
    (200, 3)
    """
    import numbers

    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 10:
        raise ValueError(f"parameter n_boot={n_boot!r} must be an integer >= 10 (bootstrap resamples)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"parameter seed={seed!r} must be a non-negative integer")
    set_figure_format(fig_format)
    out = apply_profile(profile, n_boot=n_boot, **sweeps)
    values = dict(zip(["n_boot", *sweeps], out if sweeps else [out], strict=True))
    shown = ", ".join(f"{k}={v!r}" for k, v in {**values, "seed": seed, "profile": profile}.items())
    print(f"Parameters: {shown}, fig_format={fig_format!r}")
    return out


def colab_setup(root: str = "/content/norep") -> None:
    """Set up a Google Colab session in which the project is installed at ``root``: train the quick
    embedded study once (a few minutes), point ``$NOREP_STORE`` at it and run from the project's folder.

    The notebooks' hidden first cell installs the project when ``import norep`` fails, then calls this.
    """
    import subprocess
    import sys

    quick = f"{root}/stores/quick"
    os.environ.setdefault("NOREP_STORE", quick)
    if not os.path.isfile(f"{quick}/store.json"):
        subprocess.run(
            [sys.executable, "-c", "import norep.data as d; d.download_fashion_mnist()"], check=True, cwd=root
        )
        train = ["zoo", "train", "--preset", "fashion", "--quick", "--out", quick, "--no-progress"]
        subprocess.run([sys.executable, "-m", "norep.cli", *train], check=True, cwd=root)
    if sys.path[:1] != [f"{root}/lib"]:
        sys.path.insert(0, f"{root}/lib")
    os.chdir(root)


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
