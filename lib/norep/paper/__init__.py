"""The paper's chapters: one module per section notebook, each owning the tables its figures draw and the
claims decided from those same tables.

``norep.paper.chNN_*`` belongs to notebook ``notebooks/NN_*.py``. Each has a ``tables(study, ...)``
function returning the data frames the chapter draws and shows, and the chapter's claims, each a function
of a :class:`norep.study.Study` that accepts the chapter's tables (``chapter_tables``; computed by
``tables`` when left out) and returns a :class:`norep.claims.ClaimResult` whose effect and descriptive
numbers are read from them (the intervals resample the per-example data behind them). A claim registers
itself where it is defined (:func:`claim`): :data:`REGISTRY` maps its id to its chapter, title, the
paper's statement and its function; :func:`claims_of` gives a chapter's claims. The shared verdict
machinery (statuses, selection on the calibration split, bootstrap helpers) is :mod:`norep.claims`;
:func:`report_claim` shows a verdict in a notebook.

Examples
--------
>>> import numpy as np, tempfile
>>> from norep.storage import Store
>>> from norep import paper
>>> from norep.study import load_study
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 200)
>>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="toy", class_names=list("abc"),
...                   splits={"calib": y, "test": y}, info={"base_model": "base", "accuracy_band": [0.0, 1.0]})
>>> for name, cat in [("base", "REINIT"), ("r1", "REINIT"), ("d1", "DATASET")]:
...     lg = np.eye(3)[y] * 2 + rng.normal(size=(200, 3))
...     _ = st.add_model(name, logits={"calib": lg, "test": lg}, meta={"category": cat, "method": "toy"})
>>> study = load_study(st.path)
>>> t = paper.ch01_error_correlation.tables(study)
>>> t["pairs"]["name"].tolist()
['r1', 'd1']
>>> res = paper.c1_error_inconsistency(study, n_boot=50, chapter_tables=t)
>>> res.status, res.reason
('not testable', 'only 1 in-band Reinit model(s); at least 4 are needed to treat models as units')
>>> paper.claims_of("01_error_correlation")
('C1',)
"""

from __future__ import annotations

from norep.paper import (
    ch00_zoo,
    ch01_error_correlation,
    ch02_ensembles,
    ch03_specialization,
    ch04_greedy,
    ch05_features,
    ch06_transfer,
)
from norep.paper._registry import CHAPTERS, REGISTRY, Claim, claim, claim_ids, claims_of, run_claims
from norep.paper._report import report_claim
from norep.paper.ch00_zoo import MIN_MODELS_C10, c10_temperature_scaling
from norep.paper.ch01_error_correlation import c1_error_inconsistency
from norep.paper.ch02_ensembles import MIN_PAIRS_C2, c2_ensemble_gain, c3_conversion_rate
from norep.paper.ch03_specialization import (
    ALPHA,
    MIN_CLASSES_C5,
    MIN_PERMUTATIONS_C5,
    c4_specialization_angle,
    c5_class_groups,
)
from norep.paper.ch04_greedy import (
    LOW_ACCURACY_ERROR_RATIO,
    MIN_POOL_C6,
    MIN_STARTS_C6,
    c6_low_accuracy_greedy,
    greedy_runs,
)
from norep.paper.ch05_features import c7_embedding_mixes, c8_compression
from norep.paper.ch06_transfer import c9_transfer, transfer_probes

MODULES = {
    "00_model_zoo": ch00_zoo,
    "01_error_correlation": ch01_error_correlation,
    "02_ensembles": ch02_ensembles,
    "03_specialization": ch03_specialization,
    "04_low_accuracy_greedy": ch04_greedy,
    "05_feature_concatenation": ch05_features,
    "06_voc_transfer": ch06_transfer,
}
"""Chapter (notebook name) -> its module."""

CLAIMS = {cid: REGISTRY[cid].fn for cid in claim_ids()}
"""Claim id -> function, in number order (C1 ... C10)."""

__all__ = [
    "CHAPTERS",
    "MODULES",
    "REGISTRY",
    "CLAIMS",
    "Claim",
    "claim",
    "claim_ids",
    "claims_of",
    "run_claims",
    "report_claim",
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
    "transfer_probes",
    "MIN_MODELS_C10",
    "MIN_PAIRS_C2",
    "ALPHA",
    "MIN_CLASSES_C5",
    "MIN_PERMUTATIONS_C5",
    "LOW_ACCURACY_ERROR_RATIO",
    "MIN_STARTS_C6",
    "MIN_POOL_C6",
]
