"""C6 and C8 on stores where the paper's effect is absent but the categories differ otherwise (accuracy, embedding
noise), built with the public Store API independently of the other synthetic stores. Greedy pools: every model's
logits are a signal on the label plus noise, a share of which is common to every model (so the starts, the pool
and the base err alike whatever their category), divided by a random temperature. Embedding stores: see
:func:`build_embeddings`."""

from __future__ import annotations

import numpy as np
import pytest

from norep import claims, paper

C = 10


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    from norep.study import limit_threads

    limit_threads(1)


def _signal(acc: float) -> float:
    """The signal on the label that gives accuracy ``acc`` with unit Gaussian noise (bisection on a sample)."""
    r = np.random.default_rng(1)
    y = r.integers(0, C, 20000)
    z = r.normal(size=(20000, C))
    z[np.arange(y.size), y] -= z.max(1)  # margin of the label over the largest noise
    lo, hi = 0.0, 8.0
    for _ in range(30):
        s = (lo + hi) / 2
        lo, hi = (s, hi) if np.mean(z[np.arange(y.size), y] + s > 0) < acc else (lo, s)
    return (lo + hi) / 2


def build_pool(path, models, *, share=0.45, n=1500, seed=0):
    """A store of ``models`` (``(name, category, accuracy)`` each, the base first), every model's noise ``share``
    common to all; band 0.6-0.75, so models above 0.75 are C6's starts."""
    from norep.storage import Store

    rng = np.random.default_rng(seed)
    y = {s: rng.integers(0, C, n) for s in ("calib", "test")}
    z0 = {s: rng.normal(size=(n, C)) for s in y}
    st = Store.create(
        path,
        dataset="synthetic-pool",
        class_names=[f"c{i}" for i in range(C)],
        splits=y,
        info={"base_model": models[0][0], "accuracy_band": [0.6, 0.75]},
    )
    for name, cat, acc in models:
        temp = float(np.exp(rng.uniform(np.log(0.7), np.log(1.5))))
        logits = {}
        for s in y:
            noise = np.sqrt(share) * z0[s] + np.sqrt(1 - share) * rng.normal(size=(n, C))
            logits[s] = (noise + _signal(acc) * np.eye(C)[y[s]]) / temp
        st.add_model(name, logits=logits, meta={"category": cat, "method": f"synthetic {cat}"})
    return st


def accuracy_biased_pool():
    """Architecture starts; the pool's Architecture candidates are the least accurate, the Framework and
    Dataset candidates more accurate; every model errs alike (no methodology effect)."""
    models = [("base", "REINIT", 0.68)]
    models += [(f"start_{i}", "ARCH", 0.86 + 0.01 * i) for i in range(3)]
    models += [(f"low_arch_{i}", "ARCH", 0.55 + 0.005 * i) for i in range(4)]
    models += [(f"low_{c.lower()}_{i}", c, 0.65 + 0.005 * i) for c in ("FWORK", "DATASET") for i in range(4)]
    return models


def test_c6_more_accurate_other_categories_are_not_complementarity(tmp_path):
    """The best other-category first addition beats the best same-category one by accuracy alone (every model
    errs alike): compared at a common candidate accuracy, with the labels permuted among candidates of similar
    accuracy, C6 stays undecided."""
    study = claims.open_study(build_pool(tmp_path / "s", accuracy_biased_pool(), seed=0).path)
    res = paper.c6_low_accuracy_greedy(study, n_boot=50, n_permutations=199)
    assert res.status == "inconclusive", (res.sentence, res.checks)
    fa = paper.ch04_greedy.tables(study)["first_additions"]
    raw, _ = paper.ch04_greedy.methodology_contrast(fa, slope=0.0)
    assert raw > 0 and paper.ch04_greedy._permutation_p(fa, raw, n_permutations=199, seed=0)[0] < 0.05  # the trap


def test_c6_accuracy_slope_against_least_squares():
    """:func:`accuracy_slope` is the slope of an ordinary least-squares fit with one intercept per start and
    category (numpy's lstsq on the dummy-coded design)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    fa = pd.DataFrame(
        {
            "start": np.repeat(["s", "t"], 6),
            "category": np.tile(list("AABBBC"), 2),
            "candidate_calib_accuracy": rng.random(12),
            "calib_accuracy": rng.random(12),
        }
    )
    groups = pd.factorize(fa["start"] + "/" + fa["category"])[0]
    X = np.column_stack([fa["candidate_calib_accuracy"], np.eye(groups.max() + 1)[groups]])
    ref = np.linalg.lstsq(X, fa["calib_accuracy"].to_numpy(), rcond=None)[0][0]
    assert paper.ch04_greedy.accuracy_slope(fa) == pytest.approx(ref, abs=1e-12)


DOWN = np.array(
    [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    + [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]]
)
"""Downstream labels of each upstream class (labels 2-3 only tell classes 5-9 apart)."""


def build_embeddings(path, models, *, n=600, seed=0):
    """A store of ``models`` (``(name, category, accuracy, signal, width, noise)``, the base first): embeddings are
    class means (``signal``: per-class scale of 16 random directions, mapped to ``width`` dimensions by an
    orthonormal basis) plus Gaussian noise of scale ``noise``, on the upstream and the multi-label downstream
    splits; upstream logits are the label with the model's accuracy, else a random wrong class."""
    from norep.storage import Store

    rng = np.random.default_rng(seed)
    sizes = {"calib": n, "test": n, "down_train": 400, "down_val": 300, "down_test": 500}
    y = {s: rng.integers(0, C, k) for s, k in sizes.items()}
    labels = {s: (DOWN[y[s]].astype(np.uint8) if s.startswith("down") else y[s]) for s in sizes}
    st = Store.create(
        path,
        dataset="synthetic-embeddings",
        class_names=[f"c{i}" for i in range(C)],
        splits=labels,
        info={"base_model": models[0][0], "accuracy_band": [0.6, 0.75]},
    )
    class_means = rng.normal(size=(C, 16))
    for name, cat, acc, signal, width, noise in models:
        basis = np.linalg.qr(rng.normal(size=(max(width, 16),) * 2))[0][:16, :width]
        means = (class_means * signal[:, None]) @ basis
        emb, logits = {}, {}
        for s, k in sizes.items():
            emb[s] = means[y[s]] + noise * rng.normal(size=(k, width))
            if not s.startswith("down"):
                pred = np.where(rng.random(k) < acc, y[s], (y[s] + 1 + rng.integers(0, C - 1, k)) % C)
                lg = 0.3 * rng.normal(size=(k, C))
                lg[np.arange(k), pred] += 3.0
                logits[s] = lg
        st.add_model(name, logits=logits, embeddings=emb, meta={"category": cat, "method": f"synthetic {cat}"})
    return st


def cleaner_dataset_partners():
    """Every partner carries the base's information (classes 0-4 well separated); the Dataset partners' copies are
    less noisy than the Reinit partners'. No partner is more diverse than another."""
    same = np.where(np.arange(C) < 5, 2.0, 0.25)
    models = [("base", "REINIT", 0.7, same, 16, 1.0)]
    models += [(f"reinit_{i}", "REINIT", 0.62 + 0.02 * i, same, 16, 1.3) for i in range(5)]
    models += [(f"dataset_{i}", "DATASET", 0.62 + 0.02 * i, same, 16, 0.7) for i in range(5)]
    models += [(f"arch_{i}", "ARCH", 0.63 + 0.02 * i, same, 16, 1.0) for i in range(2)]
    return models + [("arch_top", "ARCH", 0.78, same, 16, 1.0)]


def test_c8_cleaner_copies_of_the_base_are_not_divergence(tmp_path):
    """Less noisy copies of the base reach the target sooner (the concordance alone would call it) but gain no
    more from the concatenation over their better member than the Reinit pairs."""
    study = claims.open_study(build_embeddings(tmp_path / "s", cleaner_dataset_partners()).path)
    res = paper.c8_compression(study, n_boot=50)
    assert res.status == "inconclusive", (res.sentence, res.checks)
