"""Controls (metadata ``role`` "control") are reference points: never in a category's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from norep.paper import ch01_error_correlation
from norep.store import Store
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
