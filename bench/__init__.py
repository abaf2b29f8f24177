"""Benchmarks of the norep library, kept beside it and not installed with it.

Each module is one benchmark, run by its command (``norep bench analyses`` runs
:mod:`bench.analyses`) from a clone of the repository; results go to ``bench/results/`` with the
machine, its load and the command.
"""
