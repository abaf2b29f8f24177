"""The machinery the paper's claims share: the verdict type and rule, the selection helpers, the
per-example data of pairs with the base and the linear probes of the feature claims.

The claims C1-C10 themselves live with their chapters in :mod:`norep.paper`. A claim function takes a
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
"""

from __future__ import annotations

from norep.claims._core import (
    MIN_MODELS_PER_END,
    STATUSES,
    ClaimResult,
    band_partners,
    display_partner,
    fmt_interval,
    open_study,
    pair_data,
    power_table,
    replicate_table,
    require_ends,
    selection_accuracy,
    selection_band,
    sign,
    verdict,
)
from norep.claims._features import (
    MIN_PARTNERS_PER_END,
    MIXED_RATES,
    TARGET_FRACTION,
    feature_partners,
    mix_probes,
    probe_splits,
)

__all__ = [
    "STATUSES",
    "ClaimResult",
    "power_table",
    "replicate_table",
    "open_study",
    "display_partner",
    "band_partners",
    "selection_accuracy",
    "selection_band",
    "pair_data",
    "require_ends",
    "sign",
    "verdict",
    "fmt_interval",
    "mix_probes",
    "feature_partners",
    "probe_splits",
    "MIN_MODELS_PER_END",
    "MIN_PARTNERS_PER_END",
    "MIXED_RATES",
    "TARGET_FRACTION",
]
