"""The paper's model registry (norep.zoo.registry) against the paper's Tables 1-3."""

from __future__ import annotations

from pathlib import Path

import pytest

from norep import CATEGORIES
from norep.cli import main
from norep.zoo.loading import parse_model_name
from norep.zoo.registry import (
    HEADS,
    HPARAM_SUBSTITUTES,
    PAPER_BASE,
    STATUSES,
    paper_registry,
    registry_entry,
)

# (table, model, category, head type, ImageNet top-1 %) transcribed from the paper's Tables 1-3
PAPER_ROWS = [
    (1, "ResNet-50", "REINIT", "Trained", 76.2),
    (1, "ResNet-101x0.5", "HPARAM", "Trained", 74.27),
    (1, "ResNet-50 (Dropout 0.1)", "HPARAM", "Trained", 76.9),
    (1, "ResNet-50 (Dropout 0.2)", "HPARAM", "Trained", 75.85),
    (1, "ResNet-50 (Dropout 0.3)", "HPARAM", "Trained", 75.43),
    (1, "ResNet-50 (Dropout 0.4)", "HPARAM", "Trained", 75.37),
    (1, "ResNet-50 (Dropout 0.5)", "HPARAM", "Trained", 75.03),
    (1, "ResNet-50 (Dropout 0.6)", "HPARAM", "Trained", 74.72),
    (1, "ResNet-50 (Dropout 0.7)", "HPARAM", "Trained", 74.48),
    (1, "ResNet-50 (Label Smoothing 0.1)", "HPARAM", "Trained", 76.22),
    (1, "ResNet-50 (Label Smoothing 0.2)", "HPARAM", "Trained", 76.24),
    (1, "ResNet-50 (Label Smoothing 0.3)", "HPARAM", "Trained", 75.74),
    (1, "ResNet-50 (Label Smoothing 0.4)", "HPARAM", "Trained", 75.7),
    (1, "ResNet-50 (Label Smoothing 0.5)", "HPARAM", "Trained", 75.51),
    (1, "ResNet-50 (Label Smoothing 0.6)", "HPARAM", "Trained", 75.03),
    (1, "ResNet-50 (Label Smoothing 0.7)", "HPARAM", "Trained", 74.54),
    (1, "ResNet-50 (Label Smoothing 0.8)", "HPARAM", "Trained", 74.28),
    (1, "ResNet-50 (DropBlock 34, 0.9)", "HPARAM", "Trained", 74.98),
    (1, "ResNet-50 (DropBlock 1234, 0.9)", "HPARAM", "Trained", 74.87),
    (1, "ResNet-50 (Learning Rate 0.05)", "HPARAM", "Trained", 75.56),
    (1, "ResNet-50 (Learning Rate 0.2)", "HPARAM", "Trained", 76.07),
    (1, "ResNet-50 (Weight Decay 0.00001)", "HPARAM", "Trained", 74.13),
    (1, "ResNet-50 (Weight Decay 0.00005)", "HPARAM", "Trained", 75.87),
    (1, "ResNet-50 (Weight Decay 0.0002)", "HPARAM", "Trained", 75.79),
    (1, "ResNet-50 (LR 0.05, WD 0.0002)", "HPARAM", "Trained", 75.58),
    (1, "ResNet-50 (LR 0.2, WD 0.00005)", "HPARAM", "Trained", 76.36),
    (1, "ResNet-50 (LR 1.0, WD 0.00001)", "HPARAM", "Trained", 75.71),
    (1, "EfficientNet-B0", "ARCH", "Trained", 76.88),
    (1, "SK-ResNet-34", "ARCH", "Trained", 76.91),
    (1, "MobileNet-V2", "ARCH", "Trained", 77.29),
    (1, "VGG19 BatchNorm", "ARCH", "Trained", 74.22),
    (1, "Legacy-SEResNet-34", "ARCH", "Trained", 74.81),
    (1, "Legacy-SEResNet-50", "ARCH", "Trained", 77.64),
    (1, "SEResNeXt-26d", "ARCH", "Trained", 77.6),
    (1, "DenseNet-Blur-121d", "ARCH", "Trained", 76.58),
    (1, "DenseNet-121", "ARCH", "Trained", 75.57),
    (1, "Inception-V3", "ARCH", "Trained", 77.44),
    (1, "TF-Inception-V3", "ARCH", "Trained", 77.86),
    (1, "Adv Inception-V3", "ARCH", "Trained", 77.58),
    (1, "HRNet-W18-Small", "ARCH", "Trained", 75.13),
    (1, "DPN-68", "ARCH", "Trained", 76.31),
    (1, "DLA-60", "ARCH", "Trained", 77.02),
    (1, "ESE-VoVNet", "ARCH", "Trained", 76.8),
    (1, "ViT-B/16", "ARCH", "Trained", 74.55),
    (1, "SimCLR", "FWORK", "Fine Tuned", 75.6),
    (1, "ViT-DeiT-Tiny", "FWORK", "Distilled", 74.5),
    (1, "ViT-S/16", "DATASET", "Trained", 77.86),
    (1, "ALIGN-ZS", "DATASET", "Zero Shot", 75.5),
    (1, "CLIP-S", "DATASET", "L-BFGS", 75.67),
    (1, "CLIP-L-ZS", "DATASET", "Zero Shot", 76.57),
    (2, "EfficientNet-B3", "ARCH", "Trained", 80.89),
    (2, "ALIGN", "DATASET", "L-BFGS", 84.71),
    (2, "ViT-H/14", "DATASET", "Trained", 88.31),
    (2, "ViT-G/14", "DATASET", "Trained", 88.93),
    (2, "MPL", "DATASET", "Trained", 90.24),
    (2, "CLIP-L", "DATASET", "L-BFGS", 85.04),
    (2, "BiT-1k", "DATASET", "Fine Tuned", 82.85),
    (3, "CLIP-S-ZS", "DATASET", "Zero Shot", 63.25),
    (3, "BiT-JFT", "DATASET", "Class Mapping", 65.63),
]
SHARED_CSV = Path("/work/shared/paper/paper_models.csv")  # the team's transcription, when present


def test_one_row_per_paper_model_with_matching_columns():
    reg = paper_registry()
    assert len(reg) == 59 == len(PAPER_ROWS)
    got = list(zip(reg.table, reg.model, reg.category, reg.head_type, reg.paper_top1, strict=True))
    assert got == [tuple(r) for r in PAPER_ROWS]
    assert set(reg.category) <= set(CATEGORIES)
    assert reg.model.is_unique


@pytest.mark.skipif(not SHARED_CSV.is_file(), reason="team transcription of the paper's tables not present")
def test_matches_shared_transcription():
    import pandas as pd

    paper = pd.read_csv(SHARED_CSV)
    reg = paper_registry()
    for col_p, col_r in (
        ("model", "model"),
        ("category", "category"),
        ("method", "method"),
        ("head_type", "head_type"),
        ("imagenet_top1", "paper_top1"),
        ("temperature", "paper_temperature"),
    ):
        assert paper[col_p].tolist() == reg[col_r].tolist(), col_p


def test_status_and_load_columns_are_consistent():
    import open_clip
    import timm

    reg = paper_registry()
    assert set(reg.status) <= set(STATUSES) and set(reg["head"]) <= set(HEADS)
    clip_tags = set(open_clip.list_pretrained())
    for row in reg.itertuples():
        assert row.differs.strip(), row.model
        if row.status == "not public":
            assert row.load == "", row.model
            continue
        mn = parse_model_name(row.load)
        if mn.source == "timm":
            assert f"{mn.arch}.{mn.tag}" in timm.list_pretrained(f"{mn.arch}.{mn.tag}"), row.load
        elif mn.source == "open_clip":
            assert (mn.arch, mn.tag) in clip_tags, row.load
        else:
            assert mn.source == "hf" and "/" in mn.arch
        # heads follow the paper's head type
        expected = {"Zero Shot": "zero-shot", "L-BFGS": "l-bfgs", "Class Mapping": "class-mapping"}
        assert row.head == expected.get(row.head_type, "trained"), row.model
    for name in (PAPER_BASE, *HPARAM_SUBSTITUTES):
        mn = parse_model_name(name)
        assert f"{mn.arch}.{mn.tag}" in timm.list_pretrained(f"{mn.arch}.{mn.tag}")


def test_not_public_models_named_in_the_brief():
    reg = paper_registry().set_index("model")
    for m in ("MPL", "ViT-H/14", "ViT-G/14"):
        assert reg.loc[m, "status"] == "not public"
    assert (reg[reg.category == "HPARAM"].status == "not public").all()
    assert reg.loc["ALIGN-ZS", "load"].startswith("hf:")
    assert reg.loc["CLIP-L-ZS", "load"].startswith("open_clip:")


def test_class_mapping_row_has_a_21k_head():
    from timm.models import get_pretrained_cfg

    row = registry_entry("BiT-JFT")
    mn = parse_model_name(row["load"])
    assert get_pretrained_cfg(f"{mn.arch}.{mn.tag}").num_classes == 21843


def test_zoo_list_paper_prints_every_model(capsys):
    assert main(["zoo", "list", "--paper"]) == 0
    out = capsys.readouterr().out
    for _, model, *_ in PAPER_ROWS:
        assert model in out
    assert main(["zoo", "list", "--paper", "--status", "exact", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 13 and all(",exact," in ln for ln in lines[1:])


def test_zoo_list_store(tmp_path, capsys):
    import numpy as np

    from norep.storage import Store

    st = Store.create(tmp_path / "s", dataset="toy", class_names=["a", "b"], splits={"test": np.array([0, 1])})
    st.add_model("m1", logits={"test": np.eye(2)}, meta={"category": "ARCH", "method": "toy"})
    assert main(["zoo", "list", str(tmp_path / "s")]) == 0
    assert "m1" in capsys.readouterr().out
    assert main(["zoo", "list", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("norep: ")
    assert main(["zoo", "list"]) == 1
