"""The paper's claims C1-C10, each a tested function of a study that returns its verdict.

Every verdict the book and ``norep zoo report`` show comes from here. A claim function takes a
:class:`norep.study.Study` (a store, its base model, the accuracy band, the evaluation split
``study.split`` and the selection split ``study.calib_split``) and returns a :class:`ClaimResult`:
the effect, its 95 % interval and what was resampled, the number of models and pairs it rests on,
the status and the sentence the book prints.

Rules shared by all claims
--------------------------
* **Statuses**: *reproduced*, *partly reproduced* (one part of a two-part claim holds),
  *not reproduced*, *inconclusive* (the interval contains or touches 0) and *not testable* (the store
  lacks a category, enough models or pairs, or a split; the minimum counts are module constants).
* **Models as units**: a statement about categories resamples models within categories, then test
  examples (:func:`norep.measures.stats.hierarchical_bootstrap_ci`), or permutes labels
  (:func:`norep.measures.stats.permutation_pvalue`); each result says what was resampled.
* **Selection never on test**: band membership, partners, pools, greedy candidates, mixes, targets
  and best pairs are chosen on the selection split (the store's ``calib``) or on validation splits,
  and reported on test. ``ClaimResult.choices`` records every choice.
* **The whole claim**: the halves ("absent for Reinit", "Architecture pairs without structure",
  "more so for divergent pairs") are tested, not only the Dataset-minus-Reinit contrast.

Examples
--------
>>> import numpy as np, tempfile
>>> from norep.store import Store
>>> from norep import claims
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 200)
>>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="toy", class_names=list("abc"),
...                   splits={"calib": y, "test": y}, info={"base_model": "base", "accuracy_band": [0.0, 1.0]})
>>> for name, cat in [("base", "REINIT"), ("r1", "REINIT"), ("d1", "DATASET")]:
...     lg = np.eye(3)[y] * 2 + rng.normal(size=(200, 3))
...     _ = st.add_model(name, logits={"calib": lg, "test": lg}, meta={"category": cat, "method": "toy"})
>>> res = claims.c1_error_inconsistency(claims.open_study(st.path), n_boot=50)
>>> res.status, res.reason
('not testable', 'only 1 in-band Reinit model(s); at least 2 are needed to treat models as units')
"""

from __future__ import annotations

from norep.claims._core import (
    STATUSES,
    ClaimResult,
    band_partners,
    fmt_interval,
    open_study,
    pair_data,
    power_table,
    replicate_table,
    selection_accuracy,
    selection_band,
    sign,
)
from norep.claims._features import (
    MIN_PARTNERS_PER_END,
    MIXED_RATES,
    c7_embedding_mixes,
    c8_compression,
    feature_partners,
    mix_probes,
    probe_splits,
)
from norep.claims._greedy import (
    LOW_ACCURACY_ERROR_RATIO,
    MIN_POOL_C6,
    MIN_STARTS_C6,
    c6_low_accuracy_greedy,
    greedy_runs,
)
from norep.claims._pairs import (
    MIN_MODELS_C10,
    MIN_MODELS_PER_END,
    MIN_PAIRS_C2,
    c1_error_inconsistency,
    c2_ensemble_gain,
    c3_conversion_rate,
    c10_temperature_scaling,
)
from norep.claims._special import (
    ALPHA,
    MIN_CLASSES_C5,
    MIN_PERMUTATIONS_C5,
    c4_specialization_angle,
    c5_class_groups,
)
from norep.claims._transfer import c9_transfer, transfer_probes

CLAIMS = {
    "C1": c1_error_inconsistency,
    "C2": c2_ensemble_gain,
    "C3": c3_conversion_rate,
    "C4": c4_specialization_angle,
    "C5": c5_class_groups,
    "C6": c6_low_accuracy_greedy,
    "C7": c7_embedding_mixes,
    "C8": c8_compression,
    "C9": c9_transfer,
    "C10": c10_temperature_scaling,
}
"""Claim id -> function."""


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


def run_claims(study, ids=None, **kwargs) -> list[ClaimResult]:
    """Run the claims ``ids`` (default: all) with the keyword arguments each accepts.

    ``kwargs`` such as ``n_boot``, ``seed`` or ``probe_Cs`` are passed to every claim function that
    takes them.
    """
    import inspect

    out = []
    for cid in ids or CLAIMS:
        fn = CLAIMS[cid]
        params = inspect.signature(fn).parameters
        out.append(fn(study, **{k: v for k, v in kwargs.items() if k in params}))
    return out


__all__ = [
    "STATUSES",
    "ClaimResult",
    "CLAIMS",
    "power_table",
    "replicate_table",
    "open_study",
    "run_claims",
    "display_partner",
    "band_partners",
    "selection_accuracy",
    "selection_band",
    "pair_data",
    "sign",
    "fmt_interval",
    "c1_error_inconsistency",
    "c2_ensemble_gain",
    "c3_conversion_rate",
    "c4_specialization_angle",
    "c5_class_groups",
    "c6_low_accuracy_greedy",
    "c7_embedding_mixes",
    "c8_compression",
    "c9_transfer",
    "c10_temperature_scaling",
    "greedy_runs",
    "mix_probes",
    "transfer_probes",
    "feature_partners",
    "probe_splits",
    "MIN_MODELS_PER_END",
    "MIN_PAIRS_C2",
    "MIN_MODELS_C10",
    "ALPHA",
    "MIN_CLASSES_C5",
    "MIN_PERMUTATIONS_C5",
    "LOW_ACCURACY_ERROR_RATIO",
    "MIN_STARTS_C6",
    "MIN_POOL_C6",
    "MIN_PARTNERS_PER_END",
    "MIXED_RATES",
]
