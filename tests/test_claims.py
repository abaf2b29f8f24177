"""norep.claims: every claim on stores with a planted effect (reproduced), no effect (inconclusive,
never reproduced), the reverse effect (not reproduced) and too little (not testable); selection never
reads the test split; the statistics against hand-worked references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from claims_stores import build, feature_specs, greedy_specs, group_specs, pair_specs
from norep import claims, paper
from norep.measures.stats import hierarchical_bootstrap_ci, permutation_pvalue
from norep.storage import Store

N_BOOT = 200
FEATURE_KW = {"probe_Cs": (0.1, 10.0), "probe_max_iter": 50, "max_per_category": 1, "categories": ("REINIT", "DATASET")}
EXPECTED = {"planted": "reproduced", "null": "inconclusive", "reverse": "not reproduced"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    from norep.study import limit_threads

    limit_threads(1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    made = {}

    def get(kind, which, **kw):
        key = (kind, which, tuple(sorted(kw.items())))
        if key not in made:
            path = root / f"{which}-{kind}-{len(made)}"
            specs = {"pairs": pair_specs, "groups": group_specs, "greedy": greedy_specs, "features": feature_specs}[
                which
            ](kind)
            extra = {"groups": {"n": 1500}, "features": {"down": True, "band": (0.0, 1.0)}}.get(which, {})
            build(path, specs, **{**extra, **kw})
            made[key] = claims.open_study(path)
        return made[key]

    return get


def _run(cid, study):
    fn = paper.CLAIMS[cid]
    kw = {"n_boot": N_BOOT}
    if cid in ("C7", "C8"):
        kw.update(FEATURE_KW)
    if cid == "C8":
        kw["n_points"] = 6
    if cid == "C9":
        kw.update({k: v for k, v in FEATURE_KW.items() if k != "probe_max_iter"})
    if cid == "C5":
        kw["n_permutations"] = 199
    return fn(study, **kw)


STORE_OF = {
    "C1": "pairs",
    "C3": "pairs",
    "C4": "pairs",
    "C5": "groups",
}
"""The claims decided on these stores; C6-C9 have their own planted, null and reversed stores
(tests/feature_stores.py, tests/test_feature_claims.py)."""


@pytest.mark.parametrize("kind", ["planted", "null", "reverse"])
@pytest.mark.parametrize("cid", sorted(STORE_OF, key=lambda c: int(c[1:])))
def test_claim_follows_the_planted_effect(stores, cid, kind):
    res = _run(cid, stores(kind, STORE_OF[cid]))
    assert res.status == EXPECTED[kind], (res.status, res.sentence, res.checks)
    assert res.claim == cid and res.n_pairs >= 1 and res.n_models >= 2
    assert res.resampled and res.sentence
    assert res.low <= res.effect <= res.high or (cid == "C5" and res.low <= res.high)
    if kind == "null":
        assert res.status != "reproduced"


@pytest.mark.parametrize(
    "kind,expected",
    [("planted", "reproduced"), ("null", "inconclusive"), ("reverse", "not reproduced"), ("anti", "not reproduced")],
)
def test_c2_ensemble_gain(stores, kind, expected):
    """C2 follows the category contrast of ensemble accuracy: reverse (Dataset partners least divergent) and
    anti (divergent partners confidently wrong on test) lose it."""
    res = _run("C2", stores(kind, "pairs"))
    assert res.status == expected, (res.sentence, res.checks)
    assert res.n_pairs == 20 and res.n_models == 21
    assert "models within categories" in res.resampled and "pairs with the base" in res.resampled
    assert "slope" in res.sentence and "conversion rate - 1/2" in res.sentence


def test_halves_are_tested(stores):
    """C1's order and shares, C4's 'absent for Reinit', C5's 'Architecture without structure'."""
    c1 = _run("C1", stores("planted", "pairs"))
    assert c1.checks["ordered"] and c1.checks["trend"] == "interval above 0"
    assert c1.checks["both_correct_falls (implied)"] and c1.checks["both_wrong_falls (implied)"]
    assert "Implied by error inconsistency" in c1.sentence
    c4 = _run("C4", stores("planted", "pairs"))
    assert c4.checks["absent_for_reinit"] is True
    c4_rev = _run("C4", stores("reverse", "pairs"))
    assert c4_rev.checks["absent_for_reinit"] is False
    c5 = _run("C5", stores("planted", "groups"))
    assert c5.details["p_values"]["DATASET"] < paper.ALPHA <= c5.details["p_values"]["ARCH"]
    assert c5.checks["architecture_without_structure"] == "equivalent"
    # both categories structured alike: the Architecture half is shown present and the Dataset pairs are no
    # more structured than the Architecture pairs, so nothing about methodology is decided
    both = _run("C5", stores("both", "groups"))
    assert both.checks["architecture_without_structure"] == "present"
    assert both.checks["dataset_minus_architecture"] == "interval includes 0"
    assert both.status == "inconclusive", both.sentence


def test_c10_method_check(tmp_path):
    def store(name, scale=None):
        specs = pair_specs("planted", per_cat=1)
        if scale is not None:
            for sp in specs:
                sp.scale = scale(sp)
        build(tmp_path / name, specs)
        return claims.open_study(tmp_path / name)

    res = paper.c10_temperature_scaling(store("under"), n_boot=N_BOOT)
    assert res.status == "reproduced" and res.kind == "method check" and res.sentence.startswith("Method check")
    temps = {n: s.store.temperature(n) for s in [store("ref")] for n in s.store.model_names()}
    null = paper.c10_temperature_scaling(
        store("calibrated", lambda sp: dict.fromkeys(("calib", "test"), 1 / temps[sp.name])), n_boot=N_BOOT
    )
    assert null.status == "inconclusive", null.sentence
    rev = paper.c10_temperature_scaling(store("shifted", lambda sp: {"calib": 3.0, "test": 0.3}), n_boot=N_BOOT)
    assert rev.status == "not reproduced", rev.sentence


# ------------------------------------------------------------------------------- not testable


def _subset(tmp_path, specs, keep, **kw):
    build(tmp_path / "s", [s for s in specs if keep(s)], **kw)
    return claims.open_study(tmp_path / "s")


def test_c1_without_dataset_model_is_not_testable(tmp_path):
    study = _subset(tmp_path, pair_specs("planted"), lambda s: s.category != "DATASET")
    for cid in ("C1", "C2", "C3", "C4"):
        res = _run(cid, study)
        assert res.status == "not testable" and "Dataset" in res.reason
        assert math.isnan(res.effect) and res.sentence.startswith("Not testable")


def test_one_model_fewer_than_the_minimum_is_not_testable(tmp_path):
    """Three in-band Reinit partners (one fewer than MIN_MODELS_PER_END) make C1-C4 not testable; the fourth
    makes them testable again."""
    assert claims.MIN_MODELS_PER_END == 4
    specs = pair_specs("planted")
    study = _subset(tmp_path, specs, lambda s: s.name != "reinit_3")
    for cid in ("C1", "C2", "C3", "C4"):
        res = _run(cid, study)
        assert res.status == "not testable" and f"at least {claims.MIN_MODELS_PER_END}" in res.reason, cid
    assert _run("C1", claims.open_study(build(tmp_path / "all", specs).path)).status != "not testable"


def test_c5_needs_four_partners_per_category(tmp_path):
    study = _subset(tmp_path, group_specs("planted"), lambda s: s.name != "dataset_3", n=400)
    res = paper.c5_class_groups(study, n_boot=20, n_permutations=19)
    assert res.status == "not testable" and f"at least {claims.MIN_MODELS_PER_END}" in res.reason


def test_c5_needs_an_architecture_partner_and_groups(tmp_path):
    study = _subset(tmp_path, group_specs("planted"), lambda s: s.category != "ARCH")
    assert _run("C5", study).status == "not testable"
    full = claims.open_study(build(tmp_path / "g", group_specs("planted"), n=400).path)
    res = paper.c5_class_groups(full, class_groups={"a": [0, 1], "b": [2]}, n_boot=20, n_permutations=19)
    assert res.status == "not testable" and "classes" in res.reason


def test_c6_with_one_start_is_not_testable(tmp_path):
    study = claims.open_study(build(tmp_path / "g", greedy_specs("planted"), band=(0.6, 0.75)).path)
    res = paper.c6_low_accuracy_greedy(study, starts=["start_0"], n_boot=N_BOOT)
    assert res.status == "not testable" and str(paper.MIN_STARTS_C6) in res.reason


def test_features_without_dataset_embeddings_are_not_testable(tmp_path):
    specs = feature_specs("planted")
    for sp in specs:
        if sp.category == "DATASET":
            sp.emb = None
    build(tmp_path / "f", specs, down=True, band=(0.0, 1.0))
    study = claims.open_study(tmp_path / "f")
    for cid in ("C7", "C8", "C9"):
        res = _run(cid, study)
        assert res.status == "not testable" and "Dataset" in res.reason, (cid, res.reason)


def test_c9_without_downstream_splits_is_not_testable(stores):
    res = paper.c9_transfer(stores("planted", "pairs"), n_boot=20)
    assert res.status == "not testable" and "downstream" in res.reason


def test_c10_without_fitted_temperatures_is_not_testable(tmp_path):
    from norep.storage import Store

    y = np.arange(60) % 3
    st = Store.create(
        tmp_path / "t", dataset="t", class_names=list("abc"), splits={"calib": y, "test": y}, info={"base_model": "a"}
    )
    for n in ("a", "b"):
        st.add_model(
            n,
            logits={"calib": np.eye(3)[y], "test": np.eye(3)[y]},
            meta={"category": "REINIT", "method": "t", "temperature": 1.0},
        )
    res = paper.c10_temperature_scaling(claims.open_study(st.path), n_boot=20)
    assert res.status == "not testable" and res.kind == "method check"


# ------------------------------------------------------------------------------- selection


def _choices(study):
    out = {}
    for cid in paper.CLAIMS:
        if cid in ("C7", "C8", "C9") and not study.store.has_embeddings(study.base, study.split):
            continue
        out[cid] = _run(cid, study).choices
    return out


@pytest.mark.parametrize("which", ["pairs", pytest.param("features", marks=pytest.mark.slow), "greedy"])
def test_shuffled_test_labels_change_no_choice(tmp_path, which):
    """Every choice (band, partners, pools, greedy additions, mixes, targets, best pairs) reads the
    selection split only: shuffling the test labels changes the effects, never the choices."""
    specs = {"pairs": pair_specs, "features": feature_specs, "greedy": greedy_specs}[which]
    extra = {"features": {"down": True, "band": (0.0, 1.0)}}.get(which, {})
    a = claims.open_study(build(tmp_path / "a", specs("planted"), **extra).path)
    b = claims.open_study(build(tmp_path / "b", specs("planted"), shuffle_test=True, **extra).path)
    assert not np.array_equal(a.labels(), b.labels())
    ca, cb = _choices(a), _choices(b)
    assert ca == cb
    assert any(v for v in ca.values())
    # ... while the effects do change
    assert _run("C1", a).status != _run("C1", b).status or which != "pairs"


# ------------------------------------------------------------------------------- statistics


def test_sign_and_verdict_touching_zero_is_inconclusive():
    from norep.claims import verdict

    assert claims.sign(-0.2, 0.0) == 0 and claims.sign(0.0, 0.3) == 0
    assert verdict(-0.2, 0.0) == "inconclusive" and verdict(-0.2, -0.01) == "not reproduced"
    with pytest.raises(ValueError, match="status"):
        claims.ClaimResult("C1", "x", "maybe")


def test_hierarchical_bootstrap_resamples_models():
    """Two models per group that differ a lot: examples alone give a narrow interval, models as units a
    wide one; the estimate is the plain difference of group means."""
    rng = np.random.default_rng(1)
    p = np.array([0.1, 0.3, 0.2, 0.4])
    x = (rng.random((4, 4000)) < p[:, None]).astype(float)

    def gap(members, w):
        per = x @ w / w.sum()
        return per[members[1]].mean() - per[members[0]].mean()

    both = hierarchical_bootstrap_ci(gap, [[0, 1], [2, 3]], 4000, n_resamples=400, seed=0)
    ex = hierarchical_bootstrap_ci(gap, [[0, 1], [2, 3]], 4000, n_resamples=400, seed=0, resample_models=False)
    assert both.estimate == pytest.approx(x[2:].mean() - x[:2].mean())
    assert ex.low > 0 and both.low < ex.low and both.high > ex.high
    # with one model per group, resampling models changes nothing but the draws
    one = hierarchical_bootstrap_ci(gap, [[0], [2]], 4000, n_resamples=200, seed=0)
    assert one.low > 0


def test_c1_trend_is_the_least_squares_slope_on_the_rank():
    """C1's linear contrast against numpy's least-squares fit of the category means on their rank."""
    from norep import CATEGORIES
    from norep.paper.ch01_error_correlation import trend_weights

    rng = np.random.default_rng(0)
    for cats in (list(CATEGORIES), ["REINIT", "ARCH", "DATASET"], ["REINIT", "DATASET"]):
        means = rng.random(len(cats))
        ranks = [CATEGORIES.index(c) for c in cats]
        assert trend_weights(cats) @ means == pytest.approx(np.polyfit(ranks, means, 1)[0], abs=1e-12)
    assert trend_weights(list(CATEGORIES)) @ np.ones(5) == pytest.approx(0.0, abs=1e-12)


def test_permutation_pvalue_matches_exact_enumeration():
    x = np.array([0.9, 0.7, 0.8, 0.2, 0.1, 0.4, 0.5])
    lab = np.array([1, 1, 1, 0, 0, 0, 0])

    def stat(g):
        return x[g == 1].mean() - x[g == 0].mean()

    obs, p, null = permutation_pvalue(stat, lab, n_permutations=4000, seed=0)
    exact = [stat(np.isin(np.arange(7), c).astype(int)) for c in itertools.combinations(range(7), 3)]
    p_exact = np.mean(np.array(exact) >= obs - 1e-12)
    assert obs == pytest.approx(stat(lab)) and p == pytest.approx(p_exact, abs=0.01)
    assert null.shape == (4000,)


def test_run_claims_and_records(stores):
    res = paper.run_claims(stores("planted", "pairs"), ["C1", "C3"], n_boot=50, probe_Cs=(1.0,))
    assert [r.claim for r in res] == ["C1", "C3"]
    rec = res[0].record()
    assert rec["id"] == "C1" and rec["n_models"] == 21 and rec["n_pairs"] == 20 and "hierarchical" in rec["resampled"]
    assert claims.display_partner(stores("planted", "pairs"), "DATASET") == "dataset_2"


def test_c10_ensemble_effect_matches_sklearn_log_loss(stores):
    """C10's second part against scikit-learn: the mean over in-band partners of the log loss of the base's
    ensemble with raw probabilities minus with the fitted temperatures, and the accuracy change."""
    from sklearn.metrics import log_loss

    study = stores("planted", "pairs")
    res = paper.c10_temperature_scaling(study, n_boot=50)
    y, labels = study.labels(), list(range(10))
    nll, acc = [], []
    for n in res.choices["ensemble_partners"]:
        raw = (study.probs(study.base, calibrated=False) + study.probs(n, calibrated=False)) / 2
        cal = (study.probs(study.base) + study.probs(n)) / 2
        nll.append(log_loss(y, raw, labels=labels) - log_loss(y, cal, labels=labels))
        acc.append(np.mean(cal.argmax(1) == y) - np.mean(raw.argmax(1) == y))
    assert res.choices["ensemble_partners"] == claims.band_partners(study)
    assert res.details["ensemble_nll_reduction"][0] == pytest.approx(np.mean(nll), rel=1e-6)
    assert res.details["ensemble_accuracy_change"][0] == pytest.approx(np.mean(acc), abs=1e-12)
    lo, hi = res.details["ensemble_nll_reduction"][1:]
    assert lo <= np.mean(nll) <= hi and res.checks["ensemble_nll_lowered"].startswith("interval")


def test_weighted_ece_matches_repeated_rows():
    """C10's example weights (bootstrap counts) give the ECE of the data with rows repeated that often."""
    from norep.measures.calibration import expected_calibration_error
    from norep.paper.ch00_zoo import _ece_terms, _weighted_ece

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    probs = rng.dirichlet(np.ones(4), 300)
    terms = _ece_terms(y, probs)
    assert _weighted_ece(*terms, np.ones(300)) == pytest.approx(expected_calibration_error(y, probs), abs=1e-12)
    w = rng.integers(0, 4, 300).astype(float)
    rows = np.repeat(np.arange(300), w.astype(int))
    assert _weighted_ece(*terms, w) == pytest.approx(expected_calibration_error(y[rows], probs[rows]), abs=1e-12)


def test_c10_interval_resamples_models_and_examples(tmp_path):
    """The interval says it resamples test examples as well as models, and over-confident models give one above 0."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 2000)
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=list("abc"),
        splits={"calib": y, "test": y},
        info={"base_model": "m0"},
    )
    for k in range(3):
        lg = (np.eye(3)[y] * 1.0 + rng.normal(size=(2000, 3))) * 4.0  # over-confident: scaling helps
        st.add_model(f"m{k}", logits={"calib": lg, "test": lg}, meta={"category": "ARCH", "method": "toy"})
    res = paper.c10_temperature_scaling(claims.open_study(st.path), n_boot=200)
    assert "test examples" in res.resampled
    assert res.low > 0 and res.high > res.low


def test_power_table_reads_detectable_effects():
    """The smallest detectable effect is 2.8 standard errors, the SE being the 95 % interval's width / 3.92."""
    ok = claims.ClaimResult("C1", "t", "reproduced", effect=0.05, low=0.01, high=0.09, n_models=7, n_pairs=6)
    inc = claims.ClaimResult("C3", "t", "inconclusive", effect=0.0, low=-0.0392, high=0.0392, n_models=7, n_pairs=6)
    nt = claims.ClaimResult("C5", "t", "not testable", reason="no class groups")
    assert inc.standard_error == pytest.approx(0.02, rel=1e-4)
    assert inc.detectable == pytest.approx(0.02 * 2.801585, rel=1e-4)
    lines = claims.power_table([ok.record(), inc.record(), nt.record()])
    assert len(lines) == 5
    assert "| C1 | 7 | 6 | 0.05 | 0.0572 | reproduced |" == lines[2]
    assert "0.056 or more would have been seen" in lines[3]
    assert lines[4].startswith("| C5 |") and "not testable: no class groups" in lines[4]
