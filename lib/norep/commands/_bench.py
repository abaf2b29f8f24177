"""Finding the benchmarks: they live in the repository's ``bench/`` folder, not in the package."""

from __future__ import annotations

__all__ = ["bench_module"]


def bench_module(name: str):
    """The benchmark module ``bench.<name>`` of the repository this package runs from.

    Looks for the ``bench/`` folder next to ``lib/`` (a clone, or an editable install) and then in
    the current directory; raises ``FileNotFoundError`` when there is none (an installed wheel).
    """
    import importlib
    import sys
    from pathlib import Path

    here = Path(__file__).resolve()  # ROOT/lib/norep/commands/_bench.py
    for root in (here.parents[3], Path.cwd()):
        if (root / "bench" / "__init__.py").is_file() and (root / "bench" / f"{name}.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module(f"bench.{name}")
    raise FileNotFoundError(
        f"the benchmark bench/{name}.py is not here; `norep bench` runs from a clone of the "
        "repository (its bench/ folder is not installed with the package)"
    )
