"""The fast engine: exact, fast twins of the reference measures, on numpy or a torch device.

The reference measures (:mod:`norep.measures.metrics`, :mod:`norep.measures.ensembles`,
:mod:`norep.measures.specialization`, :mod:`norep.measures.calibration`) are written plainly,
one definition each. This package computes the same
numbers for paper-scale stores (dozens of models, 50,000 x 1,000 logits) by streaming over examples:

* :mod:`norep.engine.summary`: per-model summaries of calibrated probabilities (one softmax pass);
* :mod:`norep.engine.pairs` and :mod:`norep.engine.result`: every pair's outcomes, ensemble
  accuracy, conversion rate and theta histogram (:class:`~norep.engine.result.AllPairsResult`);
* :mod:`norep.engine.greedy`: greedy ensemble selection;
* :mod:`norep.engine.torch_backend`: the same on a torch device;
* :mod:`norep.engine.twins`: which fast function is the twin of which reference measure (the
  common test checks every pair agrees on random stores).

:mod:`norep.allpairs` re-exports the public functions. The heavy stages take a ``device`` argument:

* ``None`` or ``"numpy"`` (the default): the numpy path, exact by construction;
* ``"cpu"``, ``"cuda"``, ``"cuda:1"``: the torch backend on that torch device, with identical results;
* ``"auto"``: ``"cuda"`` when torch is installed and sees a CUDA device, else the numpy path
  (on a CPU the numpy path is the faster one).

torch is imported only when a torch device is asked for (or ``"auto"`` looks for one).

Examples
--------
>>> from norep.engine import resolve_device
>>> resolve_device(None) is None and resolve_device("numpy") is None
True
"""

from norep.engine._device import DeviceError, fit_temperatures, read_whole, resolve_device

__all__ = ["DeviceError", "fit_temperatures", "read_whole", "resolve_device"]
