"""`norep bench analyses` end to end on a tiny synthetic store."""

import re

import numpy as np
import pytest

from norep.cli import main


def _final_line(out: str) -> dict:
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"speedup=(\S+) identical=(true|false) peak_rss_gb=(\S+)", last)
    assert m, last
    return {"speedup": float(m.group(1)), "identical": m.group(2) == "true", "rss": float(m.group(3))}


def test_bench_tiny_is_identical(capsys, tmp_path):
    rc = main(
        [
            "bench",
            "analyses",
            "--models",
            "6",
            "--examples",
            "500",
            "--classes",
            "20",
            "--workdir",
            str(tmp_path),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    res = _final_line(out)
    assert res["identical"] and res["speedup"] > 0 and 0 < res["rss"] < 6
    for stage in ("temperature", "all_pairs", "greedy", "theta", "total"):
        assert re.search(rf"^{stage}\s", out, re.M), stage
    # without --keep the store in --workdir is kept for reuse only when asked; the temp dir is cleaned
    assert (tmp_path / "store").exists()


def test_bench_sampled_reference_and_probe(capsys, tmp_path):
    rc = main(
        [
            "bench",
            "analyses",
            "--models",
            "5",
            "--examples",
            "300",
            "--classes",
            "12",
            "--calib-examples",
            "400",
            "--workdir",
            str(tmp_path),
            "--reference-pairs",
            "3",
            "--probe",
            "--probe-examples",
            "400",
            "--probe-dim",
            "8",
            "--probe-classes",
            "4",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert _final_line(out)["identical"]
    assert "extrapolated from 3 pairs" in out
    assert "extrapolated from 3 models" in out
    m = re.search(r"accuracy difference ([+-][0-9.]+) points", out)
    assert m and abs(float(m.group(1))) <= 5.0


def test_synthetic_store_structure(tmp_path):
    from norep.commands._bench import bench_module

    synthetic = bench_module("synthetic")
    spec = synthetic.synthetic_spec(12, 2000, 50, seed=1)
    st = synthetic.make_synthetic_store(tmp_path / "s", spec)
    df = st.models().set_index("name")
    assert len(df) == 12 and st.base_model == "base"
    assert set(df["category"]) == {"ARCH", "DATASET", "FWORK", "HPARAM", "REINIT"}
    assert st.logits("base", "test").dtype == np.float16
    # accuracies near their targets, errors correlated more within the base's lineage
    acc = df["test_accuracy"]
    targets = {n: st.meta(n)["recipe"]["target_accuracy"] for n in df.index}
    assert max(abs(acc[n] - targets[n]) for n in df.index) < 0.06
    y = st.labels("test")
    wrong = {n: st.logits(n, "test").argmax(1) != y for n in df.index}

    def corr(a, b):
        return np.corrcoef(wrong[a], wrong[b])[0, 1]

    reinit = [n for n in df.index if df.loc[n, "category"] == "REINIT"]
    dataset = [n for n in df.index if df.loc[n, "category"] == "DATASET"]
    assert np.mean([corr("base", n) for n in reinit]) > np.mean([corr("base", n) for n in dataset])


def test_bench_rejects_bad_sizes(capsys):
    assert main(["bench", "analyses", "--models", "1", "--quiet"]) == 2
    assert "norep: --models" in capsys.readouterr().err
    assert main(["bench", "analyses", "--dtype", "int8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("norep: bench analyses: argument --dtype: invalid choice"), err


def test_bench_on_the_torch_cpu_device_is_identical(capsys, tmp_path):
    pytest.importorskip("torch")
    rc = main(
        [
            "bench",
            "analyses",
            "--models",
            "4",
            "--examples",
            "300",
            "--classes",
            "15",
            "--workdir",
            str(tmp_path),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert _final_line(out)["identical"]
    assert "device=cpu" in out and "# load average before:" in out and "# cpu:" in out


def test_bench_device_cuda_fails_with_one_line_without_cuda(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert (
        main(
            [
                "bench",
                "analyses",
                "--models",
                "3",
                "--examples",
                "50",
                "--classes",
                "5",
                "--workdir",
                str(tmp_path),
                "--device",
                "cuda",
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("norep: ") and "CUDA" in err[0]


def test_a_missing_benchmark_is_one_clear_error():
    from norep.commands._bench import bench_module

    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        bench_module("no_such_benchmark")
