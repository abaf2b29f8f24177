"""Test-wide settings (applies to tests/ and to the doctests under lib/norep)."""

import os

# Never wait ~46 s for DNS retries when something asks a model hub for weights: fail fast, offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
