"""The command line: every command has a working --help, and importing norep has no side effects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from norep.cli import COMMANDS, main


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for group in ("zoo", "notebooks", "extract", "import", "bench", "store"):
        assert group in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: norep" in capsys.readouterr().out


@pytest.mark.parametrize("key", list(COMMANDS), ids=lambda k: " ".join(k))
def test_every_command_is_implemented_with_help(key, capsys):
    module, _ = COMMANDS[key]
    mod = importlib.import_module(module)
    assert mod.HELP and callable(mod.configure) and callable(mod.run)
    with pytest.raises(SystemExit) as exc:
        main([*key, "--help"])
    assert exc.value.code == 0
    assert "usage: norep " + " ".join(key) in capsys.readouterr().out


def test_store_verify_command(tmp_path, capsys):
    import numpy as np

    from norep.storage import Store

    st = Store.create(tmp_path / "s", dataset="t", class_names=["a", "b"], splits={"test": [0, 1, 1]})
    st.add_model("m", logits={"test": np.eye(3, 2)}, meta={"category": "ARCH", "method": "x"})
    assert main(["store", "verify", str(st.path)]) == 0
    assert "ok: 1 models, 1 arrays verified" in capsys.readouterr().out
    assert main(["store", "verify", str(tmp_path / "nope")]) == 1
    assert "norep: no norep store" in capsys.readouterr().err


def test_import_norep_has_no_side_effects():
    code = (
        "import sys, norep, norep.storage, norep.cli, norep.zoo\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'sklearn', 'seaborn', 'timm') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_store_clean_command(tmp_path, capsys):
    import numpy as np

    from norep.storage import Store

    st = Store.create(tmp_path / "s", dataset="t", class_names=["a", "b"], splits={"test": [0, 1, 1]})
    st.add_model("m", logits={"test": np.eye(3, 2)}, meta={"category": "ARCH", "method": "x"})
    st.add_model("m", logits={"test": np.eye(3, 2)[::-1]}, meta={"category": "ARCH", "method": "x"}, overwrite=True)
    (st.path / "models" / "m" / "v9").mkdir()  # an interrupted write
    assert main(["store", "verify", str(st.path)]) == 0
    out = capsys.readouterr().out
    assert "1 previous version(s) of rewritten models" in out and "normal and harmless" in out
    assert "1 leftover(s) of interrupted writes" in out and "models/m/v9" in out
    assert main(["store", "clean", "--dry-run", str(st.path)]) == 0
    assert "would remove models/m/v1" in capsys.readouterr().out and (st.path / "models" / "m" / "v1").exists()
    assert main(["store", "clean", str(st.path)]) == 0
    assert sorted(p.name for p in (st.path / "models" / "m").iterdir()) == ["v2"]
    np.testing.assert_array_equal(Store.open(st.path).logits("m", "test"), np.eye(3, 2)[::-1])


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    import norep.commands.store_verify as sv

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(sv, "run", boom)
    assert main(["store", "verify", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("norep: unexpected KeyError") and "Traceback" not in err


def test_claims_command_on_replicates(tmp_path, capsys):
    """Two replicates of a planted study: one column each, and how many agree with the first."""
    from claims_stores import build, pair_specs

    paths = []
    for k, kind in enumerate(("planted", "reverse")):
        paths.append(str(tmp_path / f"s{k}"))
        build(paths[-1], pair_specs(kind), seed=k)
    md = tmp_path / "rep.md"
    assert main(["claims", *paths, "--ids", "c1,C10", "--resamples", "100", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| C")}
    assert set(rows) == {"C1", "C10"}
    assert rows["C1"].startswith("| C1 | reproduced") and "not reproduced" in rows["C1"]
    assert rows["C1"].endswith("| 1 of 2 |")
    assert md.read_text().strip() == out.strip()
    assert main(["claims", paths[0], "--ids", "C11"]) == 1
    assert "unknown claim id(s) C11" in capsys.readouterr().err


BLOCK_EXTRAS = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _Block())
"""


def test_analysis_library_needs_no_extras(tmp_path):
    """Without the book, zoo and extract extras the store, the measures and the claims still work, and a
    command that needs an extra says which one to install."""
    blocked = {
        "papermill",
        "jupytext",
        "jupyter_book",
        "nbformat",
        "nbclient",
        "timm",
        "open_clip",
        "torchvision",
        "PIL",
        "transformers",
    }
    code = (
        BLOCK_EXTRAS.format(BLOCKED=blocked)
        + f"""
import numpy as np
import norep.storage, norep.measures.metrics, norep.measures.ensembles, norep.measures.calibration
import norep.allpairs, norep.measures.stats
import norep.measures.specialization, norep.measures.features, norep.measures.transfer, norep.plots
from norep import claims, paper
from norep.cli import main
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 300)
st = norep.storage.Store.create({str(tmp_path / "s")!r}, dataset="toy", class_names=list("abc"),
                              splits={{"calib": y, "test": y}}, info={{"base_model": "m0"}})
for k in range(3):
    lg = np.eye(3)[y] * 2 + rng.normal(size=(300, 3))
    st.add_model(f"m{{k}}", logits={{"calib": lg, "test": lg}}, meta={{"category": "ARCH", "method": "toy"}})
print(paper.c10_temperature_scaling(claims.open_study(st.path), n_boot=20).status)
print("rc", main(["notebooks", "run", "--store", str(st.path), "--out", {str(tmp_path / "out")!r}]))
"""
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-3:] in (["reproduced", "rc", "1"], ["inconclusive", "rc", "1"]), res.stdout
    assert "which the 'book' extra installs: pip install 'norep[book]'" in res.stderr, res.stderr
