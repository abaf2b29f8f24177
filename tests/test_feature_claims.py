"""C6-C9 on synthetic stores with several models per end: the planted effects are found, and realistic nulls
(no effect of the training method, partners of different widths, a wide non-divergent transfer model, a greedy
pool whose categories carry nothing) never give a decided verdict."""

import numpy as np
import pytest

from feature_stores import build_features, build_greedy, feature_models
from norep import claims, paper

N_BOOT = 200
DECIDED = ("reproduced", "partly reproduced", "not reproduced")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    from norep.study import limit_threads

    limit_threads(1)


@pytest.fixture(scope="module")
def feature_study(tmp_path_factory):
    made = {}

    def get(kind, **kw):
        key = (kind, tuple(sorted(kw.items())))
        if key not in made:
            path = tmp_path_factory.mktemp("features") / kind
            made[key] = claims.open_study(build_features(path, feature_models(kind, **kw)).path)
        return made[key]

    return get


@pytest.mark.parametrize("cid", ["C7", "C8", "C9"])
def test_planted_feature_effects_are_found(feature_study, cid):
    res = paper.CLAIMS[cid](feature_study("planted"), n_boot=N_BOOT)
    assert res.status == "reproduced", (res.sentence, res.checks)
    assert res.n_pairs >= 2 * claims.MIN_PARTNERS_PER_END


@pytest.mark.parametrize("cid", ["C7", "C8", "C9"])
def test_no_methodology_effect_with_narrower_dataset_partners_is_undecided(feature_study, cid):
    """Reinit and Dataset partners repeat the base's information; the Dataset partners are narrower."""
    res = paper.CLAIMS[cid](feature_study("null"), n_boot=N_BOOT)
    assert res.status == "inconclusive", (res.sentence, res.checks)


@pytest.mark.parametrize("cid", ["C7", "C8"])
def test_partners_complementing_the_base_in_both_categories_are_undecided(feature_study, cid):
    """Every pair gains from a mix (two complementary embeddings), whatever the training method."""
    res = paper.CLAIMS[cid](feature_study("alike"), n_boot=N_BOOT)
    assert res.status == "inconclusive", (res.sentence, res.checks)
    if cid == "C7":
        assert res.low > 0  # the mixes do beat the full embeddings: that alone decides nothing


def test_a_wide_non_divergent_transfer_model_does_not_pass_c9(feature_study):
    study = feature_study("null", wide=True, dataset_width=16)
    res = paper.c9_transfer(study, n_boot=N_BOOT)
    assert res.status == "inconclusive", (res.sentence, res.checks)
    # the trap is there: the wide Architecture model transfers better than the best upstream model
    best = paper.ch06_transfer.tables(study)["best"]
    assert (best["upstream"], best["downstream"]) == ("arch_top", "arch_wide") and best["map_gain"] > 0.02


def test_c9_pairs_have_the_same_width(feature_study):
    t = paper.ch06_transfer.tables(feature_study("null"))
    ends = t["pairs"][t["pairs"]["category"].isin(["REINIT", "DATASET"])]
    assert ends["pair_dims"].nunique() == 1 and int(ends["pair_dims"].iloc[0]) == 16 + 12
    res = paper.c9_transfer(feature_study("null"), chapter_tables=t, n_boot=20)
    assert "not matched" not in res.sentence and "same width" in res.sentence


def test_feature_claims_need_three_partners_per_end(feature_study):
    assert claims.MIN_PARTNERS_PER_END == 3
    study = feature_study("planted", per_end=2)
    for cid in ("C7", "C8", "C9"):
        res = paper.CLAIMS[cid](study, n_boot=20)
        assert res.status == "not testable" and f"at least {claims.MIN_PARTNERS_PER_END}" in res.reason, cid


# ------------------------------------------------------------------------------- C8's statistic


def _c8_tables(curves, totals, member_accuracy=None):
    """C8's tables for handmade test curves: ``curves`` name -> (category, accuracy per fraction); each pair's
    better member has ``member_accuracy[category]`` (default 0.5) on test."""
    import pandas as pd

    fr = np.geomspace(1 / 64, 1.0, 5)
    n = 400
    reach_rows, parts = [], {}
    for (name, (cat, accs)), total in zip(curves.items(), totals, strict=True):
        # per-example correctness with exactly these accuracies, one row per prefix
        P = np.array([np.arange(n) < round(a * n) for a in accs], dtype=np.float64)
        reach_rows.append((name, fr, P, total))
        parts.setdefault(cat, []).append(name)
    names = [n for c in ("REINIT", "DATASET") for n in parts[c]]
    reach_rows = [r for n in names for r in reach_rows if r[0] == n]
    lf = paper.ch05_features._log_fraction_to_target(reach_rows, 0.8, np.ones(n))
    reach = pd.DataFrame(
        {
            "partner": names,
            "category": [c for c in ("REINIT", "DATASET") for _ in parts[c]],
            "dims": [None] * len(names),
            "log2_fraction": lf,
            "censored": ~np.isfinite(lf),
        }
    )
    return {
        "partners": parts,
        "probes": {"y": {"test": np.zeros(n)}},
        "target": 0.8,
        "saturated": [False] * len(names),
        "reach_rows": reach_rows,
        "reach": reach,
        "compression": pd.DataFrame(),
        "member_correct": [
            np.arange(n) < round((member_accuracy or {}).get(c, 0.5) * n)
            for c in ("REINIT", "DATASET")
            for _ in parts[c]
        ],
    }


def test_c8_identical_curves_at_different_widths_are_undecided():
    curve = [0.5, 0.7, 0.79, 0.85, 0.9]
    curves = {f"r{i}": ("REINIT", curve) for i in range(3)} | {f"d{i}": ("DATASET", curve) for i in range(3)}
    t = _c8_tables(curves, [576] * 3 + [416] * 3)
    res = paper.c8_compression(None, chapter_tables=t, n_boot=N_BOOT)
    assert res.status == "inconclusive" and res.effect == 0.0
    # counted in absolute dimensions the same curves would favour the narrower Dataset pairs
    dims = {r[0]: np.log2(r[3]) + lf for r, lf in zip(t["reach_rows"], t["reach"]["log2_fraction"], strict=True)}
    assert np.mean([dims[f"r{i}"] for i in range(3)]) - np.mean([dims[f"d{i}"] for i in range(3)]) > 0.4


def test_c8_planted_and_censored_curves():
    early, late, never = [0.5, 0.85, 0.9, 0.9, 0.9], [0.5, 0.6, 0.7, 0.85, 0.9], [0.5, 0.6, 0.7, 0.75, 0.78]
    planted = {f"r{i}": ("REINIT", late) for i in range(3)} | {f"d{i}": ("DATASET", early) for i in range(3)}
    gains_more = {"REINIT": 0.85, "DATASET": 0.6}  # the Dataset pairs gain more over their better member
    res = paper.c8_compression(None, chapter_tables=_c8_tables(planted, [576] * 6, gains_more), n_boot=N_BOOT)
    assert res.status == "reproduced" and res.effect == 0.5
    # the same curves, every pair gaining as much over its better member: a better partner, not diversity
    res = paper.c8_compression(None, chapter_tables=_c8_tables(planted, [576] * 6), n_boot=N_BOOT)
    assert res.status == "inconclusive" and res.effect == 0.5
    # Dataset pairs that never reach the target count as needing more than everything, never dropped
    censored = {f"r{i}": ("REINIT", late) for i in range(3)} | {
        "d0": ("DATASET", early),
        "d1": ("DATASET", never),
        "d2": ("DATASET", never),
    }
    res = paper.c8_compression(None, chapter_tables=_c8_tables(censored, [576] * 6), n_boot=N_BOOT)
    # d0 needs less than each Reinit pair, d1 and d2 more: P = 3/9 (dropping them would give 1, effect +1/2)
    assert res.checks["censored_pairs"] == 2 and res.effect == pytest.approx(3 / 9 - 0.5)
    assert res.status != "reproduced"
    # ... and Reinit pairs that never reach it count against the Reinit pairs
    rev = {f"r{i}": ("REINIT", never) for i in range(3)} | {f"d{i}": ("DATASET", late) for i in range(3)}
    res = paper.c8_compression(None, chapter_tables=_c8_tables(rev, [576] * 6), n_boot=N_BOOT)
    assert res.effect == 0.5 and res.checks["censored_pairs"] == 3


# ------------------------------------------------------------------------------- C6


@pytest.fixture(scope="module")
def greedy_study(tmp_path_factory):
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = claims.open_study(build_greedy(tmp_path_factory.mktemp("greedy") / kind, kind).path)
        return made[kind]

    return get


def test_c6_planted_methodology_effect_is_found(greedy_study):
    res = paper.c6_low_accuracy_greedy(greedy_study("planted"), n_boot=N_BOOT)
    assert res.status == "reproduced", (res.sentence, res.checks)
    assert res.details["p_value"] < paper.ch04_greedy.ALPHA_C6


def test_c6_pool_without_methodology_effect_is_undecided(greedy_study):
    """Every candidate alike: ensembles still gain, and the other categories outnumber the start's own."""
    res = paper.c6_low_accuracy_greedy(greedy_study("null"), n_boot=N_BOOT)
    assert res.low > 0  # the gain is real ...
    assert res.status == "inconclusive", (res.sentence, res.checks)  # ... but says nothing about methods


def test_c6_starts_only_above_the_band(greedy_study):
    study = greedy_study("planted")
    runs = paper.ch04_greedy.greedy_runs(study)
    hi = claims.selection_band(study)[1]
    acc = claims.selection_accuracy(study)
    assert runs and all(acc[s] > hi for s in runs)
    inside = [n for n in study.band_models() if n in acc][:3]
    res = paper.c6_low_accuracy_greedy(study, starts=inside, n_boot=20)
    assert res.status == "not testable" and "above the band" in res.reason


def test_c6_permutation_null_keeps_category_sizes():
    """Under random labels the statistic's permutation p-value is not small; a planted contrast gives a small one."""
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for s in ("s0", "s1"):
        for i in range(12):
            cat = "A" if i < 4 else "B"
            rows.append(
                {"start": s, "start_category": "A", "candidate": f"m{i}", "category": cat,
                 "calib_accuracy": rng.normal(), "accuracy": rng.normal()}
            )  # fmt: skip
    fa = pd.DataFrame(rows)
    t, k = paper.ch04_greedy.methodology_contrast(fa)
    p_hi, _ = paper.ch04_greedy._permutation_p(fa, t, n_permutations=199, seed=0)
    assert k == 2 and p_hi > 0.05
    fa.loc[fa["category"] == "B", ["calib_accuracy", "accuracy"]] += 5.0
    t, _ = paper.ch04_greedy.methodology_contrast(fa)
    assert paper.ch04_greedy._permutation_p(fa, t, n_permutations=199, seed=0)[0] < 0.05


# ------------------------------------------------------------------------------- verdicts read the tables


def test_c7_c8_c9_state_the_numbers_of_their_chapter_tables(feature_study):
    from norep.paper.ch05_features import concordance

    study = feature_study("planted")
    t5 = paper.ch05_features.tables(study)
    c7 = paper.c7_embedding_mixes(study, n_boot=20, chapter_tables=t5)
    g = t5["gains"]
    assert c7.effect == pytest.approx(g.loc[g["category"] == "DATASET", "gain"].mean(), abs=1e-12)
    mix = t5["mix"].set_index(["partner", "rate"])["accuracy"]
    for r in g.itertuples():
        assert r.gain == pytest.approx(mix[(r.partner, r.mix_rate)] - mix[(r.partner, r.full_rate)])
    c8 = paper.c8_compression(study, n_boot=20, chapter_tables=t5)
    reach = t5["reach"].set_index("partner")
    lf = {c: reach.loc[reach["category"] == c, "log2_fraction"] for c in ("DATASET", "REINIT")}
    assert c8.effect == pytest.approx(concordance(lf["DATASET"], lf["REINIT"]), abs=1e-12)
    assert c8.details["curves"] is t5["compression"]
    t6 = paper.ch06_transfer.tables(study)
    c9 = paper.c9_transfer(study, n_boot=20, chapter_tables=t6)
    by = t6["pairs"].groupby("category")["pair_gain"].mean()
    assert c9.effect == pytest.approx(by["DATASET"] - by["REINIT"], abs=1e-12)
    best = t6["best"]
    for k in ("divergent", "reinit"):
        assert best[f"{k}_map_gain"] == pytest.approx(np.mean(list(best[f"{k}_gains"].values())))
        assert f"{100 * best[f'{k}_map_gain']:.1f} points" in c9.sentence
    assert best["divergent_contrast"] == pytest.approx(best["divergent_map_gain"] - best["reinit_map_gain"])
    assert f"Dataset minus Reinit {100 * best['divergent_contrast']:.1f} points (95 % CI" in c9.sentence
    assert f"{100 * best['pair_vs_single']:.1f} points" in c9.sentence


def test_c6_states_the_numbers_of_its_chapter_tables(greedy_study):
    study = greedy_study("planted")
    t = paper.ch04_greedy.tables(study)
    res = paper.c6_low_accuracy_greedy(study, n_boot=20, n_permutations=99, chapter_tables=t)
    assert res.effect == pytest.approx(t["summary"]["gain"].mean(), abs=1e-12)
    contrast, k = paper.ch04_greedy.methodology_contrast(t["first_additions"])
    assert res.details["methodology_contrast"] == contrast and f"{100 * contrast:+.1f} points" in res.sentence
    fa = t["first_additions"]
    row = fa.iloc[0]
    from norep.measures.ensembles import ensemble_accuracy

    ref = ensemble_accuracy(study.labels(), [study.probs(row["start"]), study.probs(row["candidate"])])
    assert row["accuracy"] == pytest.approx(ref, abs=1e-12)


def test_shuffled_test_labels_change_no_choice_of_c6_to_c9(tmp_path):
    """Partners, pools, greedy additions, mixes, targets, best pairs and models: all read validation splits."""
    out = {}
    for shuffled in (False, True):
        f = claims.open_study(
            build_features(tmp_path / f"f{shuffled}", feature_models("planted"), shuffle_test=shuffled).path
        )
        g = claims.open_study(build_greedy(tmp_path / f"g{shuffled}", "planted", n=600, shuffle_test=shuffled).path)
        res = [paper.CLAIMS[c](f, n_boot=20) for c in ("C7", "C8", "C9")]
        res.append(paper.c6_low_accuracy_greedy(g, n_boot=20, n_permutations=19))
        out[shuffled] = res
    for a, b in zip(out[False], out[True], strict=True):
        assert a.choices == b.choices and a.choices, a.claim
        assert a.effect != b.effect, a.claim  # the test labels do reach the effects


def test_partners_complementing_the_base_in_both_categories_leave_c9_undecided(feature_study):
    """Every partner carries the information the downstream task needs most, whatever its training method."""
    res = paper.c9_transfer(feature_study("alike"), n_boot=N_BOOT)
    assert res.status == "inconclusive", (res.sentence, res.checks)
