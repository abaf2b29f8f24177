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
  *not reproduced* (an interval shows the opposite, or an absence within a margin fixed in advance),
  *inconclusive* (the interval contains or touches 0) and *not testable* (the store lacks a category,
  enough models or pairs, or a split; the minimum counts are module constants). The chapters and the
  claims page print the same words (:func:`lead`, :data:`STATUS_MEANING`).
* **A rule that can fail**: each claim function states its verdict rule in its documentation, and a
  store without the paper's effect (every category alike) gets no decision; a part that follows from a
  definition (C2's slope, C1's both-correct and both-wrong shares) is described, not voted.
* **Models as units**: a statement about categories resamples models within categories, then test
  examples (:func:`norep.measures.stats.hierarchical_bootstrap_ci`, widened for few models with
  ``small_sample=True``), with at least :data:`MIN_MODELS_PER_END` models in each category compared
  (fewer: *not testable*); a test simulates the interval's false-positive rate at that minimum. Each
  result says what was resampled.
* **Absence is an equivalence test**: "absent", "without structure" hold only when a whole interval
  lies inside a margin fixed in advance (:func:`equivalence`; the margins are module constants), never
  because an interval includes 0.
* **Selection never on test**: band membership, partners, pools, greedy candidates, mixes, targets
  and best pairs are chosen on the selection split (the store's ``calib``) or on validation splits,
  and reported on test. ``ClaimResult.choices`` records every choice.
* **The whole claim**: the halves ("absent for Reinit", "Architecture pairs without structure",
  "more so for divergent pairs") are tested, not only the Dataset-minus-Reinit contrast.
"""

from __future__ import annotations

from norep.claims._core import (
    MIN_MODELS_PER_END,
    STATUS_MEANING,
    STATUSES,
    ClaimResult,
    band_partners,
    display_partner,
    equivalence,
    fmt_interval,
    lead,
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
    "STATUS_MEANING",
    "equivalence",
    "lead",
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
