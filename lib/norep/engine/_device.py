"""Devices of the fast engine, whole-array reads and the temperature fits of many models."""

from __future__ import annotations

from norep.engine._rows import read_whole

__all__ = ["DeviceError", "fit_temperatures", "read_whole", "resolve_device"]


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


def fit_temperatures(logits, y_true, *, n_jobs: int = 1, device: str | None = None, **kwargs) -> list[float]:
    """Fitted temperatures of several models on one split (:func:`norep.measures.calibration.fit_temperature`).

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
    from norep.measures.calibration import fit_temperature

    dev = resolve_device(device)
    if dev is not None:
        from norep.engine.torch_backend import fit_temperature_torch

        return [fit_temperature_torch(lg, y_true, device=dev, **kwargs) for lg in logits]

    def fit(lg):
        return fit_temperature(read_whole(lg), y_true, **kwargs)

    from norep.measures.calibration import torch_one_thread

    logits = list(logits)
    with torch_one_thread():
        if n_jobs and int(n_jobs) > 1 and len(logits) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(int(n_jobs)) as pool:
                return list(pool.map(fit, logits))
        return [fit(lg) for lg in logits]
