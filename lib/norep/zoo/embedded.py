"""The embedded default study: a CPU-trained model zoo on Fashion-MNIST spanning the paper's five
categories (paper Sec. 3.1, Table 1), written into a prediction store.

The paper compares ImageNet models to a ResNet-50 base, grouped by how far their training diverges
from it: REINIT (another seed) -> HPARAM (other hyper-parameters) -> ARCH (other architecture) ->
FWORK (other objective on the same images) -> DATASET (representation learned on other data). Here
the base is a two-convolution CNN trained 3 epochs on 10,000 Fashion-MNIST training images, and each
category changes one thing:

* REINIT: the base recipe with other seeds;
* HPARAM: the base network and recipe with one training setting changed (learning rate, weight
  decay, label smoothing, dropout, batch size, optimiser, epochs); the longer-trained runs are
  high-accuracy models, a tiny learning rate and a huge batch low ones;
* ARCH: the base recipe with another network (MLPs, LeNet, wider / deeper / 5x5 / globally pooled
  CNNs, a VGG-style CNN);
* FWORK: the same images and labels, another objective: knowledge distillation from the long-trained
  model and from the VGG (as DeiT was distilled from a CNN), and encoders learned without labels by
  SimCLR-style contrast, denoising reconstruction, masked-patch reconstruction or rotation
  prediction, frozen and read by an L-BFGS linear head (the paper's SimCLR and linear-probe rows);
* DATASET: the FWORK encoders' recipes on other data: each DATASET model has a FWORK *twin* (its
  metadata's ``twin``) with the same encoder, objective, initial weights, linear head and number of
  optimiser steps, learned instead on a corpus of procedural shapes, letters rendered with Pillow's
  font or crops of scikit-learn's two sample photographs, seen once each and three times as many
  images as the 10,000 training images; so a DATASET model differs from its twin by its data only, as
  CLIP, ALIGN and BiT differ from the base by their data (and their head).

*Controls* are in the store beside them but in no category's statistics: an untrained random
encoder read by the same linear head, and scikit-learn learners (logistic regression, kNN, random
forest, naive Bayes) whose log-probabilities are logits. They are no training method of the paper's;
their metadata says ``role: "control"`` (:func:`norep.zoo._specs.is_control`) and their ``category``
is only where they would otherwise sit (the store requires one); every analysis leaves them out
(:class:`norep.study.Study` keeps them in ``controls``, out of ``table``).

Globally pooled readouts of some frozen encoders are the low-accuracy models of FWORK and DATASET.
The accuracy band (the paper's 74-78%) is the base's test accuracy +- ``band_halfwidth`` (fixed in
the preset); each model's ``tier`` is ``band``, ``high`` or ``low``. Training is incremental (a model
whose recipe and data are unchanged is skipped), resumable (the store writes each model atomically),
and deterministic for a seed on one machine. Pretrained encoders and teacher weights are cached under
``STORE/_cache``.

The zoo's specification lives in :mod:`norep.zoo._specs` and its training in
:mod:`norep.zoo._trainer`; every name is importable from here.
"""

from __future__ import annotations

from norep.zoo._specs import BF16_ARCHS as BF16_ARCHS
from norep.zoo._specs import PRESETS, ZooSpec, zoo_specs
from norep.zoo._specs import SEED_STRIDE as SEED_STRIDE
from norep.zoo._specs import SOURCE as SOURCE
from norep.zoo._specs import ZOO_VERSION as ZOO_VERSION
from norep.zoo._trainer import train_zoo

__all__ = ["ZooSpec", "PRESETS", "zoo_specs", "train_zoo", "format_timing_table"]


def format_timing_table(table) -> str:
    """The per-model timing table as text (what ``norep zoo train`` prints at the end).

    Examples
    --------
    >>> import pandas as pd
    >>> from norep.zoo.embedded import format_timing_table
    >>> t = pd.DataFrame([dict(name="base", category="REINIT", tier="band", test_accuracy=0.9,
    ...                        seconds=1.0, status="trained")])
    >>> print(format_timing_table(t).splitlines()[-1])
    total: 1.0 s (1 trained, 0 skipped)
    """
    cpu = "cpu_seconds" in table.columns
    lines = [
        f"{'model':24s} {'category':10s} {'tier':5s} {'test acc':>8s} {'seconds':>8s}"
        + (f" {'cpu s':>8s}" if cpu else "")
        + "  status"
    ]
    for r in table.itertuples():
        acc = "" if r.test_accuracy is None or r.test_accuracy != r.test_accuracy else f"{r.test_accuracy:.4f}"
        lines.append(
            f"{r.name:24s} {r.category:10s} {(r.tier if isinstance(r.tier, str) else ''):5s} {acc:>8s} {r.seconds:8.1f}"
            + (f" {r.cpu_seconds:8.1f}" if cpu else "")
            + f"  {r.status}"
        )
    trained = int((table["status"] == "trained").sum())
    lines.append(
        f"total: {table['seconds'].sum():.1f} s ({trained} trained, {len(table) - trained} skipped)"
        + (f"; CPU time {table['cpu_seconds'].sum():.1f} s" if cpu else "")
    )
    return "\n".join(lines)
