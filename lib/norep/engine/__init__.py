"""The fast engine: exact, fast twins of the reference measures, on numpy or a torch device.

The reference measures (:mod:`norep.metrics`, :mod:`norep.ensembles`, :mod:`norep.specialization`,
:mod:`norep.calibration`) are written plainly, one definition each. This package computes the same
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

from __future__ import annotations

__all__ = ["resolve_device", "DeviceError", "fit_temperatures"]


class DeviceError(ValueError):
    """A torch device was asked for that this machine does not have."""


def resolve_device(device: str | None) -> str | None:
    """The torch device string to use, or ``None`` for the numpy path.

    Parameters
    ----------
    device : str or None
        ``None``/``"numpy"``, ``"auto"``, or a torch device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    str or None

    Raises
    ------
    DeviceError
        For an unknown device, a CUDA device when none is available, or any torch device when
        torch is not installed.
    """
    if device is None:
        return None
    if not isinstance(device, str):
        raise DeviceError(f"device must be a string such as 'numpy', 'auto', 'cpu' or 'cuda', got {device!r}")
    dev = device.strip().lower()
    if dev == "numpy":
        return None
    if dev == "auto":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return None
        import torch

        return "cuda" if torch.cuda.is_available() else None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        raise DeviceError(f"device {device!r} needs torch, which is not installed") from None
    try:
        d = torch.device(dev)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {device!r}; use 'numpy', 'auto', 'cpu' or 'cuda'") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA device on this machine")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
    elif d.type != "cpu":
        raise DeviceError(f"device {device!r} is not supported; use 'numpy', 'auto', 'cpu' or 'cuda'")
    return str(d)


def _read_whole(arr):
    """A read-only memory map of a whole ``.npy`` file read into memory with ``preadv`` (one copy,
    no page faults, nothing left mapped); any other array as it is."""
    import mmap
    import os

    import numpy as np

    if not (
        isinstance(arr, np.memmap)
        and isinstance(arr.base, mmap.mmap)
        and arr.flags.c_contiguous
        and not arr.flags.writeable
        and getattr(arr, "filename", None)
        and hasattr(os, "preadv")
    ):
        return arr
    out = np.empty(arr.shape, dtype=arr.dtype)
    view = memoryview(out).cast("B")
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        got = 0
        while got < view.nbytes:
            r = os.preadv(fd, [view[got:]], arr.offset + got)
            if r <= 0:  # pragma: no cover - truncated file
                raise OSError(f"could not read {arr.filename}")
            got += r
    finally:
        os.close(fd)
    return out


def fit_temperatures(logits, y_true, *, n_jobs: int = 1, device: str | None = None, **kwargs) -> list[float]:
    """Fitted temperatures of several models on one split (:func:`norep.calibration.fit_temperature`).

    On the numpy path each memory-mapped file is read once into memory (no page faults across the
    fit's passes) and models are fitted ``n_jobs`` at a time; on a torch device the fit's
    safeguarded Newton iteration runs there (:func:`norep.engine.torch_backend.fit_temperature_torch`),
    agreeing with the numpy fit to the fit's tolerance (``rtol``, 1e-7 relative by default).

    Parameters
    ----------
    logits : sequence of (N, C) arrays
    y_true : array-like of shape (N,)
    n_jobs : int, default 1
        Models fitted at once (threads; numpy path).
    device : str, optional
        See :func:`resolve_device`.
    **kwargs
        Passed to the fit (``bounds``, ``rtol``, ``max_iter``, ``subsample``).

    Returns
    -------
    list of float

    Examples
    --------
    >>> import numpy as np
    >>> from norep.engine import fit_temperatures
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 10, size=2000)
    >>> z = rng.normal(size=(2000, 10)) + 2.0 * np.eye(10)[y]
    >>> [round(t, 1) for t in fit_temperatures([z, 3 * z], y)]
    [0.5, 1.5]
    """
    from norep.calibration import fit_temperature

    dev = resolve_device(device)
    if dev is not None:
        from norep.engine.torch_backend import fit_temperature_torch

        return [fit_temperature_torch(lg, y_true, device=dev, **kwargs) for lg in logits]

    def fit(lg):
        return fit_temperature(_read_whole(lg), y_true, **kwargs)

    from norep.calibration import torch_one_thread

    logits = list(logits)
    with torch_one_thread():
        if n_jobs and int(n_jobs) > 1 and len(logits) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(int(n_jobs)) as pool:
                return list(pool.map(fit, logits))
        return [fit(lg) for lg in logits]
