"""Where the analysis engine runs: the numpy path, or the torch backend on a device.

The heavy analysis stages (temperature fitting, all pairs, greedy selection, theta histograms)
take a ``device`` argument:

* ``None`` or ``"numpy"`` (the default): the numpy path of :mod:`norep.allpairs` and
  :mod:`norep.calibration`, exact by construction;
* ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...: the torch backend
  (:mod:`norep.engine.torch_backend`) on that torch device, with identical results;
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

__all__ = ["resolve_device", "DeviceError"]


class DeviceError(ValueError):
    """A torch device was asked for that this machine does not have."""


def resolve_device(device: str | None) -> str | None:
    """The torch device string to use, or ``None`` for the numpy path.

    Parameters
    ----------
    device : str or None
        ``None``/``"numpy"``, ``"auto"``, or a torch device such as ``"cpu"`` or ``"cuda:0"``.

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
            raise DeviceError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA "
                              "device(s)")
    elif d.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError(f"device {device!r} asked for, but MPS is not available on this machine")
    elif d.type != "cpu":
        raise DeviceError(f"device {device!r} is not supported; use 'numpy', 'auto', 'cpu' or 'cuda'")
    return str(d)
