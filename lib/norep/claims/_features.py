"""The linear probes, partners and checks that the feature claims C7, C8 (:mod:`norep.paper.ch05_features`)
and C9 (:mod:`norep.paper.ch06_transfer`) share."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    _cache,
    band_partners,
    cat_label,
    categories_of,
    not_testable,
    selection_accuracy,
)

MIN_PARTNERS_PER_END = 3
"""C7, C8, C9: in-band partners with embeddings needed in each end category (Reinit and Dataset), fixed
in advance; fewer make the claim *not testable*. The partners are resampled within their category (models
as units), which needs several of them."""

END_CATEGORIES = ("REINIT", "DATASET")
"""The two categories the feature claims compare; :func:`feature_partners` never caps them."""

PROBES = ("ridge", "logistic")
"""The probes the feature chapters can fit: ``"ridge"`` (default: :func:`norep.measures.features.ridge_probe`,
closed form, the penalty chosen on validation) or ``"logistic"`` (:func:`norep.measures.features.linear_probe`,
multinomial logistic regression by L-BFGS)."""

MIXED_RATES = (0.75, 0.5, 0.25)
"""C7: the base model's shares of the fixed dimension budget (the paper's 75/25, 50/50, 25/75)."""

TARGET_FRACTION = 0.98
"""C8: the target is this fraction of the validation accuracy of the base's full embedding (fixed on the
validation split; the paper's 76 % is just under its ResNet-50's accuracy). Slightly below 1 so that
the full concatenation, which holds the base's embedding, reaches it on test despite sampling noise."""

FEATURES_RESAMPLED = "partners within categories (where a category has several), then test examples"


def feature_partners(study, *, splits, max_per_category=None, categories=None) -> dict[str, list[str]]:
    """Per category (default: all), the in-band partners with embeddings on ``splits``, the most accurate on the
    *selection* split first. ``max_per_category`` (None: no cap) caps the categories the claims do not compare;
    the end categories (:data:`END_CATEGORIES`) keep every partner, since the claims resample them."""
    acc = selection_accuracy(study)
    partners = band_partners(study, embeddings_on=splits)
    out = {}
    for c in categories or CATEGORIES:
        names = [n for n, k in zip(partners, categories_of(study, partners), strict=True) if k == c]
        if names:
            cap = None if c in END_CATEGORIES or max_per_category is None else int(max_per_category)
            out[c] = sorted(names, key=lambda n: -acc[n])[:cap]
    return out


def probe_splits(study, *, seed: int = 0):
    """Train / validation / test rows for the linear probes: the store's ``train`` split (when every model
    has embeddings there) / the selection split / the evaluation split; else the selection split is
    halved (seeded) into train and validation."""
    st = study.store
    names = [str(n) for n in study.table["name"]]
    if (
        "train" in st.splits()
        and not st.is_multilabel("train")
        and all(st.has_embeddings(n, "train") for n in names if st.has_embeddings(n, study.split))
    ):
        return {
            "train": ("train", slice(None)),
            "val": (study.calib_split, slice(None)),
            "test": (study.split, slice(None)),
        }
    n_cal = st.n_examples(study.calib_split)
    perm = np.random.default_rng(seed).permutation(n_cal)
    return {
        "train": (study.calib_split, np.sort(perm[: n_cal // 2])),
        "val": (study.calib_split, np.sort(perm[n_cal // 2 :])),
        "test": (study.split, slice(None)),
    }


def matched_columns(n_columns: int, width, seed: int = 0) -> np.ndarray:
    """The columns that cut an embedding of ``n_columns`` dimensions to ``width``: a seeded random subset, sorted
    (all of them when ``width`` is None or not smaller), so that pairs built from partners of different widths
    have the same width.

    Examples
    --------
    >>> matched_columns(5, 3, seed=0).size, matched_columns(5, None).tolist(), matched_columns(2, 3).tolist()
    (3, [0, 1, 2, 3, 4], [0, 1])
    """
    if width is None or n_columns <= int(width):
        return np.arange(n_columns)
    return np.sort(np.random.default_rng(seed).permutation(n_columns)[: int(width)])


def end_width(widths: dict, parts: dict):
    """The narrowest width among the end categories' partners (``widths``: name -> dimensions), None without any."""
    return min((widths[n] for c in END_CATEGORIES for n in parts.get(c, [])), default=None)


def _emb(study, name, take):
    return {k: np.asarray(study.store.embeddings(name, s))[i].astype(np.float32) for k, (s, i) in take.items()}


def _labels(study, take):
    return {k: np.asarray(study.store.labels(s))[i] for k, (s, i) in take.items()}


def ends_check(claim, title, paper, parts):
    """A *not testable* result when an end category has fewer than :data:`MIN_PARTNERS_PER_END` partners, else
    None."""
    counts = {end: len(parts.get(end, [])) for end in END_CATEGORIES}
    if min(counts.values()) >= MIN_PARTNERS_PER_END:
        return None
    have = " and ".join(f"{k} {cat_label(end)}" for end, k in counts.items())
    return not_testable(
        claim,
        title,
        f"{have} in-band partner(s) with embeddings on the selection split; at least {MIN_PARTNERS_PER_END} of "
        "each are needed to resample them",
        paper=paper,
        n_models=1 + sum(map(len, parts.values())),
        n_pairs=sum(map(len, parts.values())),
    )


def mix_probes(
    study,
    *,
    max_per_category=None,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter=200,
    device="cpu",
    seed=0,
    rates=MIXED_RATES,
    categories=None,
    probe="ridge",
):
    """Linear probes of the base's and each partner's full embedding and of their mixes (cached).

    Returns a dict with ``partners`` (category -> names), ``rows`` (one per probe: partner, category,
    rate, dims, val and test accuracy), ``correct`` ((partner, rate) -> test correctness; rate 1.0
    is the base's full embedding, 0.0 the partner's full embedding), ``y`` and ``take``.
    """
    splits = [study.split, study.calib_split]
    categories = tuple(c for c in CATEGORIES if c in (categories or CATEGORIES))
    rates = tuple(float(r) for r in rates)
    if not rates or any(not 0.0 < r < 1.0 for r in rates):
        raise ValueError(
            f"rates={rates!r} must be shares strictly between 0 and 1 (the full embeddings are always probed)"
        )
    key = ("mix", max_per_category, tuple(probe_Cs), probe_max_iter, seed, rates, categories, probe)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    parts = feature_partners(study, splits=splits, max_per_category=max_per_category, categories=categories)
    if not study.store.has_embeddings(study.base, study.split) or not study.store.has_embeddings(
        study.base, study.calib_split
    ):
        parts = {}
    take = probe_splits(study, seed=seed)
    y = _labels(study, take)
    probe = probe_fn(y, probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device, probe=probe)
    rows, correct = [], {}
    out = {"partners": parts, "rows": rows, "correct": correct, "y": y, "take": take}
    if not parts:
        cache[key] = out
        return out
    E = {study.base: _emb(study, study.base, take)}
    res = probe(E[study.base])
    base_row = _probe_row(study.base, "base", 1.0, E[study.base], res)
    base_correct = _test_predictions(res, E[study.base]["test"]) == y["test"]
    for cat, names in parts.items():
        for other in names:
            E[other] = _emb(study, other, take)
            rows.append({**base_row, "partner": other, "category": cat})
            correct[(other, 1.0)] = base_correct
            for r, X, pr in _partner_probes(E[study.base], E[other], probe, rates=rates, seed=seed):
                correct[(other, r)] = _test_predictions(pr, X["test"]) == y["test"]
                rows.append(_probe_row(other, cat, r, X, pr))
    out["E"] = E
    out["base_val_accuracy"] = base_row["val_accuracy"]
    cache[key] = out
    return out


def probe_fn(y, *, probe_Cs, probe_max_iter, device, probe="ridge"):
    """A linear probe of embeddings ``X`` (split -> rows) on the labels ``y`` (the same splits): the closed-form
    ridge classifier (``probe="ridge"``; ``probe_max_iter`` and ``device`` unused) or the L-BFGS logistic
    regression (``"logistic"``), the penalty chosen on the ``val`` rows from ``probe_Cs`` either way."""
    from norep.measures.features import linear_probe, ridge_probe

    if probe not in PROBES:
        raise ValueError(f"parameter probe={probe!r} must be one of {PROBES}")

    def fit(X):
        args = (X["train"], y["train"], X["val"], y["val"], X["test"], y["test"])
        if probe == "ridge":
            return ridge_probe(*args, Cs=list(probe_Cs))
        return linear_probe(*args, Cs=list(probe_Cs), device=device, max_iter=probe_max_iter)

    return fit


def _partner_probes(E_base, E_other, probe, *, rates, seed):
    """Probes of the base's and a partner's embeddings mixed at each of ``rates``, then of the partner's full
    embedding (rate 0.0), in that order: ``(rate, embeddings, probe result)`` each."""
    from norep.measures.features import concat_at_rate

    for r in rates:
        X = {k: concat_at_rate(E_base[k], E_other[k], float(r), seed=seed)[0] for k in E_other}
        yield float(r), X, probe(X)
    yield 0.0, E_other, probe(E_other)  # 0/100: the partner's full embedding


def _test_predictions(res, X_test) -> np.ndarray:
    """A probe's predicted classes on the test rows (kept by the probe when it kept them)."""
    return res.test_predictions if res.test_predictions is not None else res.predict(X_test)


def _probe_row(partner, category, rate, X, res) -> dict:
    """One row of :func:`mix_probes`' table."""
    return {
        "partner": partner,
        "category": category,
        "rate": rate,
        "dims": X["train"].shape[1],
        "val_accuracy": res.val_accuracy,
        "accuracy": res.test_accuracy,
    }


__all__ = [
    "MIN_PARTNERS_PER_END",
    "END_CATEGORIES",
    "PROBES",
    "MIXED_RATES",
    "TARGET_FRACTION",
    "FEATURES_RESAMPLED",
    "feature_partners",
    "matched_columns",
    "end_width",
    "probe_splits",
    "mix_probes",
    "probe_fn",
    "ends_check",
]
