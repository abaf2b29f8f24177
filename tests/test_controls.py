"""Controls (metadata ``role`` "control") are reference points: never in a category's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from norep.paper import ch01_error_correlation
from norep.storage import Store
from norep.study import band_partners, load_study


def _store(tmp_path, base_role=None):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=list("abcd"),
        splits={"calib": y, "test": y},
        info={"base_model": "base", "accuracy_band": [0.0, 1.0]},
    )
    for name, cat, role in [
        ("base", "REINIT", base_role),
        ("r1", "REINIT", None),
        ("logreg", "ARCH", "control"),
        ("a1", "ARCH", None),
        ("untrained", "DATASET", "control"),
    ]:
        lg = np.eye(4)[y] * 2 + rng.normal(size=(400, 4))
        meta = {"category": cat, "method": "toy"}
        if role:
            meta["role"] = role
        st.add_model(name, logits={"calib": lg, "test": lg}, meta=meta)
    return st


def test_controls_leave_the_study_table_and_every_partner_list(tmp_path):
    study = load_study(_store(tmp_path).path)
    assert study.table["name"].tolist() == ["base", "r1", "a1"]
    assert sorted(study.controls["name"]) == ["logreg", "untrained"]
    assert not study.controls["in_band"].any()
    assert set(study.controls["tier"]) <= {"low", "band", "high"}
    assert band_partners(study) == ["r1", "a1"]
    pairs = ch01_error_correlation.tables(study)["pairs"]
    assert "logreg" not in pairs["name"].tolist() and "untrained" not in pairs["name"].tolist()


def test_a_control_cannot_be_the_base(tmp_path):
    with pytest.raises(ValueError, match="is a control"):
        load_study(_store(tmp_path, base_role="control").path)


def test_a_store_without_roles_has_no_controls(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 100)
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=list("abc"),
        splits={"calib": y, "test": y},
        info={"base_model": "base"},
    )
    for name in ("base", "r1"):
        lg = np.eye(3)[y] + rng.normal(size=(100, 3))
        st.add_model(name, logits={"calib": lg, "test": lg}, meta={"category": "REINIT", "method": "toy"})
    study = load_study(st.path)
    assert len(study.controls) == 0 and study.table["name"].tolist() == ["base", "r1"]


def _category_members_are_trained_networks(study) -> list[str]:
    """The models of a study's categories that are non-neural or untrained (should be none)."""
    bad = []
    for name in study.table["name"]:
        m = study.store.meta(str(name))
        if m.get("kind") == "sklearn" or (m.get("kind") == "linear" and not m.get("deps")):
            bad.append(str(name))
    return bad


def test_no_category_holds_an_untrained_or_non_neural_model(tmp_path):
    """Read from the models' metadata: on a store with an untrained readout and a scikit-learn model
    marked as controls, the categories hold neither; unmarked, the check finds them."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 100)
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=list("abc"),
        splits={"calib": y, "test": y},
        info={"base_model": "base"},
    )
    rows = [
        ("base", "REINIT", "supervised", [], None),
        ("lin", "FWORK", "linear", ["enc"], None),
        ("rand", "DATASET", "linear", [], "control"),
        ("forest", "ARCH", "sklearn", [], "control"),
    ]
    for name, cat, kind, deps, role in rows:
        lg = np.eye(3)[y] + rng.normal(size=(100, 3))
        meta = {"category": cat, "method": "toy", "kind": kind, "deps": deps, **({"role": role} if role else {})}
        st.add_model(name, logits={"calib": lg, "test": lg}, meta=meta)
    assert _category_members_are_trained_networks(load_study(st.path)) == []
    for name in ("rand", "forest"):  # the same models without the role: found
        meta = {k: v for k, v in st.meta(name).items() if k in ("category", "method", "kind", "deps")}
        st.add_model(name, logits={s: st.logits(name, s) for s in ("calib", "test")}, meta=meta, overwrite=True)
    assert sorted(_category_members_are_trained_networks(load_study(st.path))) == ["forest", "rand"]


def _default_store():
    from norep.study import DEFAULT_STORE, resolve_store

    path = resolve_store(DEFAULT_STORE)  # $NOREP_STORE, when set, names it
    if not (path / "store.json").exists():
        pytest.skip("the default store is not built")
    return path


def test_default_store_categories_hold_no_control_and_every_dataset_model_a_twin():
    """On the default store (when built): no category member is untrained or non-neural, and every
    Dataset model records a Framework twin that is in the store (metadata only)."""
    study = load_study(_default_store(), verify=False)
    assert _category_members_are_trained_networks(study) == []
    t = study.table.set_index("name")
    for name in t.index[t["category"] == "DATASET"]:
        twin = study.store.meta(str(name)).get("twin")
        assert twin in t.index and t.loc[twin, "category"] == "FWORK", name


def test_train_removes_members_an_earlier_preset_version_had(tmp_path):
    """Left-over members of the embedded zoo (a name the preset no longer has) are removed; models
    from elsewhere and current members stay."""
    from norep.zoo._specs import SOURCE, zoo_specs
    from norep.zoo._trainer import _remove_stale

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 50)
    st = Store.create(tmp_path / "s", dataset="toy", class_names=list("abc"), splits={"calib": y, "test": y})
    for name, source in [("base", SOURCE), ("old-model", SOURCE), ("mine", "import")]:
        lg = np.eye(3)[y] + rng.normal(size=(50, 3))
        st.add_model(
            name, logits={"calib": lg, "test": lg}, meta={"category": "REINIT", "method": "t", "source": source}
        )
    lines = []
    _remove_stale(st, {s.name: s for s in zoo_specs("digits", quick=True)}, lines.append)
    assert sorted(st.model_names()) == ["base", "mine"] and "old-model" in lines[0]
