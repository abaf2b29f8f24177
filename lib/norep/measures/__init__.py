"""The reference measures: arrays in, numbers out, one plain definition each.

* :mod:`norep.measures.metrics`: accuracy, error inconsistency, agreement, kappa, outcome fractions;
* :mod:`norep.measures.calibration`: softmax, temperature scaling, expected calibration error;
* :mod:`norep.measures.ensembles`: ensemble probabilities, accuracy, gain, conversion rate, greedy selection;
* :mod:`norep.measures.specialization`: the specialisation angle and per-class views;
* :mod:`norep.measures.features`: linear probes on (concatenated) embeddings, compression curves;
* :mod:`norep.measures.transfer`: multi-label probes and VOC 11-point mAP;
* :mod:`norep.measures.stats`: bootstrap intervals (models as units) and permutation tests.

Nothing here knows of stores, claims or notebooks; every argument check comes from
:mod:`norep.measures._validation`. The fast engine (:mod:`norep.engine`) computes the same numbers
for paper-scale stores and is tested equal to these definitions.
"""
