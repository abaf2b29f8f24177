"""The repository stands alone and says one thing once: licence, citation and version agree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml

import norep

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"] == norep.__version__


def test_licence_matches_the_package_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_no_pointers_outside_the_repository():
    """Docs and code speak in the project's own words: no notes kept elsewhere, issue numbers or people."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    people = "engineer [A-Z]\\b|engineer" + "s' jobs"  # split so that this file does not match itself
    pattern = r"DESIGN\.md|STYLE\.md|\bissue [0-9]+|" + people
    proc = subprocess.run(
        ["git", "grep", "-nIE", pattern, "--", ".", ":!*.bib", ":!tests/test_repository.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout  # git grep exits 1 when nothing matches


def test_no_tracked_file_is_ignored():
    """What git tracks is source: no tracked file matches an ignore pattern (a pattern such as ``data/``
    meant for generated data at the root would otherwise also cover the package ``lib/norep/data``)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(
        ["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout == "", f"tracked files that .gitignore matches:\n{proc.stdout}"
