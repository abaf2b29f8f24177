"""The result type, the verdict rule and the data every claim shares (see :mod:`norep.claims`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep import CATEGORIES, CATEGORY_LABELS
from norep.study import (  # noqa: F401 (the selection helpers, re-exported for the claims)
    band_partners,
    display_partner,
    load_study,
    selection_accuracy,
    selection_band,
)

STATUSES = ("reproduced", "partly reproduced", "not reproduced", "inconclusive", "not testable")
"""The verdicts a claim can get."""


MODELS_AND_EXAMPLES = "models within categories, then test examples (hierarchical bootstrap)"
EXAMPLES_ONLY = "test examples only"
Z_95 = 1.959964
"""Two-sided 5 % normal quantile."""
Z_80 = 0.841621
"""One-sided 20 % normal quantile (80 % power)."""


@dataclass
class ClaimResult:
    """The verdict on one of the paper's claims, with what it rests on.

    Attributes
    ----------
    claim : str
        ``"C1"`` ... ``"C10"``.
    title : str
        The claim in a few words.
    status : str
        One of :data:`STATUSES`.
    effect : float
        The tested effect (``nan`` when not testable).
    low, high : float
        Its 95 % interval (``nan`` when none was computed).
    effect_name : str
        What ``effect`` measures, in words.
    resampled : str
        What the interval resamples (e.g. models within categories, then test examples).
    n_models : int
        Models the effect rests on (the base model included where it takes part).
    n_pairs : int
        Pairs of models (or probes of pairs) the effect rests on.
    sentence : str
        The sentence the book prints.
    paper : str
        What the paper reports.
    reason : str
        Why the claim is not testable (empty otherwise).
    kind : str
        ``"finding"``, or ``"method check"`` for a step of the paper's method (C10).
    checks : dict
        The claim's halves and their outcomes (name -> short text).
    choices : dict
        Everything chosen on the selection split (partners, pools, mixes, targets, ...), so that a
        test can assert that the test split never influences them.
    details : dict
        Tables and arrays the chapters plot (not part of the verdict).
    """

    claim: str
    title: str
    status: str
    effect: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    effect_name: str = ""
    resampled: str = ""
    n_models: int = 0
    n_pairs: int = 0
    sentence: str = ""
    paper: str = ""
    reason: str = ""
    kind: str = "finding"
    checks: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)

    @property
    def standard_error(self) -> float:
        """The bootstrap standard error read off the 95 % interval: its width / (2 x 1.96)."""
        return (self.high - self.low) / (2 * Z_95)

    @property
    def detectable(self) -> float:
        """The smallest effect this study would detect with 80 % power at the 5 % level:
        (1.96 + 0.84) standard errors (normal approximation; ``nan`` without an interval).

        Examples
        --------
        >>> r = ClaimResult("C1", "t", "inconclusive", effect=0.01, low=-0.0196, high=0.0196)
        >>> round(r.standard_error, 4), round(r.detectable, 4)
        (0.01, 0.028)
        """
        return (Z_95 + Z_80) * self.standard_error

    def record(self) -> dict:
        """A JSON-friendly summary (what the claims page and ``norep zoo report`` show)."""

        def num(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        return {
            "id": self.claim,
            "title": self.title,
            "status": self.status,
            "kind": self.kind,
            "effect": num(self.effect),
            "low": num(self.low),
            "high": num(self.high),
            "effect_name": self.effect_name,
            "resampled": self.resampled,
            "n_models": int(self.n_models),
            "n_pairs": int(self.n_pairs),
            "detectable": num(self.detectable),
            "sentence": self.sentence,
            "paper": self.paper,
            "reason": self.reason,
            "checks": {k: str(v) for k, v in self.checks.items()},
        }


def power_table(records: Sequence[dict]) -> list[str]:
    """The claims' power as Markdown table lines: for each claim, the models and pairs it rests on, the
    effect, and the smallest effect the study could detect (:attr:`ClaimResult.detectable`), so that a
    reader can tell "no effect" from "too small to see here".

    ``records`` are :meth:`ClaimResult.record` dictionaries.

    Examples
    --------
    >>> r = ClaimResult("C3", "t", "inconclusive", effect=0.002, low=-0.0176, high=0.0216, n_models=9, n_pairs=8)
    >>> print("\\n".join(power_table([r.record()])[2:]))
    | C3 | 9 | 8 | 0.002 | 0.028 | inconclusive: an effect of 0.028 or more would have been seen (80 % power) |
    """
    lines = ["| claim | models | pairs | effect | smallest detectable effect | reading |", "|---|---|---|---|---|---|"]
    for r in records:
        eff, det = r.get("effect"), r.get("detectable")
        if r["status"] == "not testable" or eff is None or det is None:
            reading = "not testable: " + (r.get("reason") or "no interval")
            eff_s = det_s = "-"
        else:
            eff_s, det_s = f"{eff:.3g}", f"{det:.3g}"
            if r["status"] == "inconclusive":
                reading = f"inconclusive: an effect of {det:.3g} or more would have been seen (80 % power)"
            else:
                reading = r["status"]
        reading = reading.replace("|", "/")
        lines.append(
            f"| {r['id']} | {r.get('n_models', '')} | {r.get('n_pairs', '')} | {eff_s} | {det_s} | {reading} |"
        )
    return lines


def replicate_table(results: dict[str, Sequence[dict]]) -> list[str]:
    """Verdicts of the same claims on several stores (replicates of one study) as Markdown table lines.

    ``results`` maps a store's name to its :meth:`ClaimResult.record` dictionaries. One store gives
    its verdicts with effects and detectable effects; several add a column per store and one saying
    in how many stores the first store's verdict holds.

    Examples
    --------
    >>> a = ClaimResult("C1", "t", "reproduced", effect=0.02, low=0.01, high=0.03).record()
    >>> b = ClaimResult("C1", "t", "inconclusive", effect=0.01, low=-0.01, high=0.03).record()
    >>> print("\\n".join(replicate_table({"s0": [a], "s1": [b]})))
    | claim | s0 | s1 | same verdict |
    |---|---|---|---|
    | C1 | reproduced, 0.02 [0.01, 0.03] | inconclusive, 0.01 [-0.01, 0.03] | 1 of 2 |
    """
    names = list(results)
    ids = list(dict.fromkeys(r["id"] for recs in results.values() for r in recs))
    by = {n: {r["id"]: r for r in results[n]} for n in names}

    def cell(r):
        if r is None:
            return "-"
        if r.get("effect") is None or r.get("low") is None:
            return r["status"]
        return f"{r['status']}, {r['effect']:.3g} [{r['low']:.3g}, {r['high']:.3g}]"

    if len(names) == 1:
        n = names[0]
        lines = [
            "| claim | verdict | effect [95 % interval] | models | pairs | smallest detectable effect |",
            "|---|---|---|---|---|---|",
        ]
        for cid in ids:
            r = by[n][cid]
            det = "-" if r.get("detectable") is None else f"{r['detectable']:.3g}"
            lines.append(
                f"| {cid} | {r['status']} | {cell(r).partition(', ')[2] or '-'} | {r['n_models']} | "
                f"{r['n_pairs']} | {det} |"
            )
        return lines
    lines = ["| claim | " + " | ".join(names) + " | same verdict |", "|---" * (len(names) + 2) + "|"]
    for cid in ids:
        rows = [by[n].get(cid) for n in names]
        first = rows[0]["status"] if rows[0] else None
        same = sum(1 for r in rows if r is not None and r["status"] == first)
        lines.append(f"| {cid} | " + " | ".join(cell(r) for r in rows) + f" | {same} of {len(names)} |")
    return lines


def sign(low: float, high: float) -> int:
    """+1 when the interval lies above 0, -1 when below, 0 when it contains or touches 0 (or is nan).

    Examples
    --------
    >>> sign(0.01, 0.2), sign(-0.2, -0.01), sign(-0.1, 0.1), sign(-0.1, 0.0), sign(float("nan"), 1.0)
    (1, -1, 0, 0, 0)
    """
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return 0
    if low > 0:
        return 1
    if high < 0:
        return -1
    return 0


def verdict(low: float, high: float, *, expect: str = "positive", ordered: bool = True) -> str:
    """Verdict for an effect that should be positive (or negative) given its 95 % interval.

    ``"reproduced"`` when the whole interval has the expected sign, ``"not reproduced"`` when the
    whole interval has the opposite sign, else ``"inconclusive"`` (the interval contains or touches
    zero, or is nan). ``ordered=False`` lowers "reproduced" to ``"partly reproduced"``. The claims
    themselves apply this rule part by part.

    Examples
    --------
    >>> verdict(0.01, 0.05), verdict(-0.02, 0.03), verdict(-0.05, -0.01), verdict(-0.05, 0.0)
    ('reproduced', 'inconclusive', 'not reproduced', 'inconclusive')
    >>> verdict(-0.05, -0.01, expect="negative")
    'reproduced'
    >>> verdict(0.01, 0.05, ordered=False), verdict(-0.02, 0.03, ordered=False)
    ('partly reproduced', 'inconclusive')
    """
    if expect not in ("positive", "negative"):
        raise ValueError(f"expect must be 'positive' or 'negative', got {expect!r}")
    s = sign(low, high)
    if expect == "negative":
        s = -s
    if s > 0:
        return "reproduced" if ordered else "partly reproduced"
    return "not reproduced" if s < 0 else "inconclusive"


def two_part_status(main: int, second: int) -> str:
    """The verdict of a two-part claim from the signs (:func:`sign`) of its two intervals: the main
    effect and the second part (e.g. "more so for divergent pairs").

    Both above 0: *reproduced*; the main effect below 0, or it inconclusive and the second below 0:
    *not reproduced*; one of them above 0: *partly reproduced*; else *inconclusive*.

    Examples
    --------
    >>> [two_part_status(a, b) for a, b in [(1, 1), (-1, 1), (0, -1), (1, 0), (0, 1), (0, 0)]]
    ['reproduced', 'not reproduced', 'not reproduced', 'partly reproduced', 'partly reproduced', 'inconclusive']
    """
    if main > 0 and second > 0:
        return "reproduced"
    if main < 0 or (main == 0 and second < 0):
        return "not reproduced"
    if main > 0 or second > 0:
        return "partly reproduced"
    return "inconclusive"


def end_groups(parts: dict) -> tuple[list[str], list[np.ndarray], int, int]:
    """Category groups of models laid out category by category in ``parts`` (category -> names).

    Returns the categories present (in the paper's order), each one's index array into the
    concatenated list, and the positions of the Reinit and Dataset groups (the two ends compared).
    """
    cats = [c for c in CATEGORIES if c in parts]
    pos, groups = 0, []
    for c in cats:
        groups.append(np.arange(pos, pos + len(parts[c])))
        pos += len(parts[c])
    return cats, groups, cats.index("REINIT"), cats.index("DATASET")


def fmt_band(band) -> str:
    """A band as ``lo-hi`` with three decimals."""
    return f"{band[0]:.3f}-{band[1]:.3f}"


def fmt_interval(effect: float, low: float, high: float, *, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """``'0.123 (95 % CI 0.100 to 0.150)'``.

    Examples
    --------
    >>> fmt_interval(0.1234, 0.1, 0.15)
    '0.123 (95 % CI 0.100 to 0.150)'
    >>> fmt_interval(0.02, 0.01, 0.03, digits=1, scale=100, unit=" points")
    '2.0 points (95 % CI 1.0 to 3.0)'
    """
    k = scale
    return f"{k * effect:.{digits}f}{unit} (95 % CI {k * low:.{digits}f} to {k * high:.{digits}f})"


def not_testable(
    claim: str,
    title: str,
    reason: str,
    *,
    paper: str = "",
    n_models: int = 0,
    n_pairs: int = 0,
    kind: str = "finding",
    choices: dict | None = None,
) -> ClaimResult:
    """A :class:`ClaimResult` saying what the store lacks."""
    return ClaimResult(
        claim,
        title,
        "not testable",
        reason=reason,
        paper=paper,
        n_models=n_models,
        n_pairs=n_pairs,
        kind=kind,
        choices=choices or {},
        sentence=f"Not testable on this store: {reason}.",
    )


STATUS_MEANING = {
    "reproduced": "every part of the claim holds (each interval on the claim's side)",
    "partly reproduced": "one part of the claim holds, another does not or is undecided",
    "not reproduced": "an interval shows the opposite of the claim, or an absence within a margin fixed in advance",
    "inconclusive": "the intervals include no effect, so this scale can neither confirm nor refute the claim",
    "not testable": "the store lacks what the claim needs",
}
"""What each verdict means, in the words the chapters print after the status itself."""


def lead(status: str) -> str:
    """The opening words of a verdict sentence: the status itself, capitalised (the chapters and the
    claims page print the same words; *inconclusive* never reads as "does not reproduce").

    Examples
    --------
    >>> lead("inconclusive"), lead("not reproduced")
    ('Inconclusive', 'Not reproduced')
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    return status[0].upper() + status[1:]


def equivalence(low: float, high: float, margin: float) -> str:
    """An equivalence test ("absent", "without structure") on a 95 % interval with a margin fixed in
    advance: ``"equivalent"`` when the whole interval lies inside ``(-margin, margin)`` (two one-sided
    tests at 2.5 % each), ``"present"`` when it lies wholly above or below 0, else ``"undecided"``. A
    wide interval is never read as absence.

    Examples
    --------
    >>> equivalence(-0.1, 0.2, 0.25), equivalence(0.1, 0.4, 0.25), equivalence(-0.1, 0.4, 0.25)
    ('equivalent', 'present', 'undecided')
    >>> equivalence(float("nan"), 0.1, 0.25)
    'undecided'
    """
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "undecided"
    if -margin < low and high < margin:
        return "equivalent"
    return "present" if sign(low, high) != 0 else "undecided"


def side(low: float, high: float) -> str:
    """``"above 0"``, ``"below 0"`` or ``"includes 0"`` for an interval (see :func:`sign`)."""
    return {1: "above 0", -1: "below 0", 0: "includes 0"}[sign(low, high)]


def cat_label(cat: str) -> str:
    return CATEGORY_LABELS.get(cat, cat)


# ------------------------------------------------------------------------------------------------
# studies


def open_study(
    store,
    *,
    base_model: str | None = None,
    accuracy_band=None,
    split: str = "test",
    selection_split: str = "calib",
    require_embeddings: Sequence[str] = (),
):
    """Open a store as a :class:`norep.study.Study` for the claims.

    The study's ``calib_split`` is the selection split: every choice a claim makes (partners,
    pools, mixes, targets) reads it, and effects are reported on ``split``.
    """
    return load_study(
        store,
        base_model=base_model,
        accuracy_band=accuracy_band,
        split=split,
        calib_split=selection_split,
        require_embeddings=require_embeddings,
    )


def categories_of(study, names: Sequence[str]) -> list[str]:
    cat = dict(zip(study.table["name"].astype(str), study.table["category"].astype(str), strict=True))
    return [cat[n] for n in names]


def by_category(study, names: Sequence[str]) -> dict[str, list[int]]:
    """Indices into ``names`` per category, in category order (absent categories left out)."""
    cats = categories_of(study, names)
    return {c: [i for i, k in enumerate(cats) if k == c] for c in CATEGORIES if c in cats}


def _cache(study) -> dict:
    c = getattr(study, "_claims_cache", None)
    if c is None:
        c = {}
        try:
            object.__setattr__(study, "_claims_cache", c)
        except (AttributeError, TypeError):  # pragma: no cover - a frozen study
            pass
    return c


@dataclass
class PairData:
    """Per-example outcomes of the base model paired with each partner on one split.

    ``correct`` (M, N) partners' correctness, ``base_correct`` (N,), ``ensemble_correct`` (M, N)
    correctness of the equal-weight mean of calibrated probabilities
    (:func:`norep.measures.ensembles.ensemble_probs`), ``conf`` (M, N) and ``base_conf`` (N,) top-1
    calibrated confidences, ``y`` the labels.
    """

    names: list[str]
    y: np.ndarray
    correct: np.ndarray
    base_correct: np.ndarray
    ensemble_correct: np.ndarray
    conf: np.ndarray
    base_conf: np.ndarray

    def weighted(self, arr: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        """Per-model mean of ``arr`` (M, N) with example weights ``w``."""
        a = np.asarray(arr, dtype=np.float64)
        return a.mean(axis=-1) if w is None else a @ w / w.sum()


def pair_data(study, names: Sequence[str], split: str) -> PairData:
    """:class:`PairData` of the base with ``names`` on ``split`` (cached on the study)."""
    from norep.measures.ensembles import ensemble_probs

    key = ("pairs", tuple(names), split)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    y = np.asarray(study.labels(split))
    pb = study.probs(study.base, split)
    base_pred = pb.argmax(1)
    rows_c, rows_e, rows_conf = [], [], []
    for n in names:
        p = study.probs(n, split)
        rows_c.append(p.argmax(1) == y)
        rows_e.append(ensemble_probs([pb, p]).argmax(1) == y)
        rows_conf.append(p.max(1).astype(np.float64))
    m, n_ex = len(names), y.shape[0]
    data = PairData(
        list(names),
        y,
        np.array(rows_c, dtype=bool).reshape(m, n_ex),
        base_pred == y,
        np.array(rows_e, dtype=bool).reshape(m, n_ex),
        np.array(rows_conf).reshape(m, n_ex),
        pb.max(1).astype(np.float64),
    )
    cache[key] = data
    return data


def count_models(study, names: Sequence[str], *, with_base: bool = True) -> int:
    return len(set(names) | ({study.base} if with_base else set()))


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


MIN_MODELS_PER_END = 4
"""C1-C5: in-band models needed in each category a contrast compares (Reinit and Dataset; Architecture
and Dataset for C5), so that models can be resampled within categories. With fewer, the two-level
bootstrap calls a null contrast far more often than its nominal rate; at this minimum the widened
interval (:func:`norep.measures.stats.hierarchical_bootstrap_ci` with ``small_sample=True``) keeps
its one-sided false-positive rate near the nominal 2.5 % (a test simulates it)."""


def require_ends(study, partners, claim: str, title: str, paper: str):
    """Category groups of the partners (:func:`by_category`), or a *not testable* result naming the end
    category (Reinit or Dataset) with fewer than :data:`MIN_MODELS_PER_END` in-band models."""
    groups = by_category(study, partners)
    for end in ("REINIT", "DATASET"):
        if end not in groups:
            return None, not_testable(
                claim,
                title,
                f"no model of the {cat_label(end)} category lies in the "
                f"accuracy band {fmt_band(selection_band(study))} on the selection split",
                paper=paper,
                n_models=count_models(study, partners),
                n_pairs=len(partners),
            )
        if len(groups[end]) < MIN_MODELS_PER_END:
            return None, not_testable(
                claim,
                title,
                f"only {len(groups[end])} in-band {cat_label(end)} model(s); "
                f"at least {MIN_MODELS_PER_END} are needed to treat models as units",
                paper=paper,
                n_models=count_models(study, partners),
                n_pairs=len(partners),
            )
    return groups, None


def accuracy_adjusted_means(values, accuracy, members) -> np.ndarray:
    """Per-group means of a per-model measure at a common partner accuracy (analysis of covariance).

    A band on accuracy leaves categories free to sit at different places inside it, and a measure of a
    pair with the base (ensemble accuracy, error inconsistency) moves with the partner's accuracy even
    when nothing about methodology differs. Each group's mean of ``values`` is moved along the pooled
    within-group slope ``beta`` of ``values`` on ``accuracy`` to the mean accuracy of all the groups'
    models: ``mean_g(values) - beta * (mean_g(accuracy) - mean(accuracy))``. ``beta`` is estimated
    within groups only, so a difference between the groups never enters it. ``nan`` for every group
    when no group's accuracies vary (the slope is then unknown and nothing is compared).

    ``values`` and ``accuracy`` are (M,) arrays, ``members`` a list of index arrays (one per group,
    repeats allowed, as a bootstrap resample draws them).

    Examples
    --------
    >>> acc = np.array([0.60, 0.62, 0.70, 0.72])
    >>> val = 0.5 * acc  # a measure driven by accuracy alone
    >>> m = accuracy_adjusted_means(val, acc, [np.array([0, 1]), np.array([2, 3])])
    >>> round(float(m[1] - m[0]), 12)
    0.0
    >>> m = accuracy_adjusted_means(val + np.array([0, 0, 0.1, 0.1]), acc, [np.array([0, 1]), np.array([2, 3])])
    >>> round(float(m[1] - m[0]), 12)
    0.1
    """
    values, accuracy = np.asarray(values, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    idx = [np.asarray(m, dtype=int) for m in members]
    sxx = sum(float(((accuracy[m] - accuracy[m].mean()) ** 2).sum()) for m in idx)
    if not sxx > 1e-12:
        return np.full(len(idx), np.nan)
    sxy = sum(float(((accuracy[m] - accuracy[m].mean()) * (values[m] - values[m].mean())).sum()) for m in idx)
    beta = sxy / sxx
    a_all = float(np.concatenate([accuracy[m] for m in idx]).mean())
    return np.array([values[m].mean() - beta * (accuracy[m].mean() - a_all) for m in idx])
