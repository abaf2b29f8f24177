"""`norep extract` end to end on synthetic folders with random-initialised models (offline, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from guards import HANG_S
from norep.cli import main
from norep.storage import Store

os.environ["HF_HUB_OFFLINE"] = "1"

TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _folder(root, classes=("a", "b"), per_class=4, size=(40, 48)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    (d / "norep-test-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(d)
    return "norep-test-tiny-clip"


def test_done_when_resnet18_imagefolder(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    store = tmp_path / "S"
    rc = main(
        [
            "extract",
            "--model",
            "timm:resnet18",
            "--random-init",
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(store),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0
    st = Store.open(store)
    assert st.splits() == ["test"]
    assert st.logits("timm:resnet18", "test").shape == (8, 1000)
    emb = st.embeddings("timm:resnet18", "test")
    assert emb.shape == (8, 512) and emb.dtype == np.float16
    assert st.labels("test").tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    meta = st.meta("timm:resnet18")
    assert meta["source"] == "timm" and meta["weights"] == "a1_in1k" and meta["random_init"] is True
    assert meta["recipe"]["preprocessing"]["input_size"] == [3, 224, 224]
    assert len(meta["extraction"]["manifests"]["test"]) == 64

    # an unchanged rerun is skipped: the stored model is untouched
    rc = main(
        [
            "extract",
            "--model",
            "timm:resnet18",
            "--random-init",
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(store),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0 and "up to date" in capsys.readouterr().err
    assert Store.open(store).meta("timm:resnet18")["added_at"] == meta["added_at"]


def test_logits_match_the_timm_model(tmp_path):
    """The stored logits/embeddings equal a direct timm forward pass over the same transform."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    from norep.extract import extract

    data = _folder(tmp_path / "data", per_class=2)
    extract(
        "timm:resnet18",
        f"imagefolder:{data}",
        tmp_path / "S",
        random_init=True,
        device="cpu",
        progress=False,
        batch_size=3,
        chunk_size=3,
    )
    torch.manual_seed(0)
    ref = timm.create_model("resnet18.a1_in1k", pretrained=False).eval()
    tf = create_transform(**resolve_data_config({}, model=ref))
    files = sorted((data / "a").iterdir()) + sorted((data / "b").iterdir())
    x = torch.stack([tf(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        feats = ref.forward_head(ref.forward_features(x), pre_logits=True)
        logits = ref.fc(feats)
    st = Store.open(tmp_path / "S")
    np.testing.assert_allclose(st.logits("timm:resnet18", "test"), logits.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(st.embeddings("timm:resnet18", "test"), feats.numpy(), rtol=2e-3, atol=2e-3)


def test_missing_weights_offline_fails_fast_with_one_line(tmp_path):
    data = _folder(tmp_path / "data", per_class=1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "th")}
    # What the failing command costs anyway: starting Python and importing the model libraries.
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import norep.cli, norep.extract, timm, open_clip"], env=env, check=True, timeout=HANG_S
    )
    imports = time.monotonic() - t0
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "norep.cli",
            "extract",
            "--model",
            "timm:resnet50.a1_in1k",
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(tmp_path / "S"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_S,
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    # Asking an unreachable hub costs about 46 s of DNS retries; offline, the command fails right after its
    # imports. Measured against the imports on this machine, so a slow or busy machine does not fail it.
    assert elapsed < imports + 20, (elapsed, imports)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("norep: ") and "resnet50" in lines[0] and "a1_in1k" in lines[0]
    assert "HF_HUB_OFFLINE" in lines[0]


def test_zero_shot_tiny_open_clip_matches_reference(tmp_path, tiny_clip):
    import open_clip
    import torch

    data = _folder(tmp_path / "data", classes=("cat", "dog"), per_class=3)
    rc = main(
        [
            "extract",
            "--model",
            f"open_clip:{tiny_clip}",
            "--random-init",
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(tmp_path / "S"),
            "--device",
            "cpu",
            "--zero-shot-templates",
            "simple",
            "--no-progress",
        ]
    )
    assert rc == 0
    st = Store.open(tmp_path / "S")
    name = f"open_clip:{tiny_clip}"
    logits = st.logits(name, "test")
    assert logits.shape == (6, 2) and st.embeddings(name, "test").shape == (6, 64)
    assert st.meta(name)["head"] == "zero-shot"
    assert list((tmp_path / "S" / "_cache").glob("text-*.npy"))  # text embeddings cached

    # independent reference: open_clip's own API, the CLIP zero-shot recipe by hand
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip, pretrained=None)
    model.eval()
    tok = open_clip.get_tokenizer(tiny_clip)
    files = sorted((data / "cat").iterdir()) + sorted((data / "dog").iterdir())
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.open(f)) for f in files]))
        txt = model.encode_text(tok(["a photo of a cat.", "a photo of a dog."]))
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        ref = model.logit_scale.exp() * img @ txt.T
    np.testing.assert_allclose(logits, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_zero_shot_openai80_averages_templates(tmp_path, tiny_clip):
    import torch

    from norep.zoo import zeroshot
    from norep.zoo.loading import load

    torch.manual_seed(0)
    model, _ = load(f"open_clip:{tiny_clip}", random_init=True)
    W = zeroshot.text_classifier(model, ["cat", "dog", "bird"], template_set="openai80", cache_dir=tmp_path)
    assert W.shape == (64, 3)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1.0, rtol=1e-5)
    with torch.no_grad():
        t = model.encode_text([s.format("dog") for s in zeroshot.templates("openai80")]).numpy()
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    ref = t.mean(0) / np.linalg.norm(t.mean(0))
    np.testing.assert_allclose(W[:, 1], ref, rtol=1e-4, atol=1e-5)
    # cached: a second call reads the file (same values, no text tower needed)
    assert len(list(tmp_path.glob("text-*.npy"))) == 1
    np.testing.assert_array_equal(zeroshot.text_classifier(model, ["cat", "dog", "bird"], cache_dir=tmp_path), W)


def test_voc_embeddings_only_and_lbfgs_head(tmp_path, tiny_clip):
    from norep.extract import extract
    from test_imagedata import _voc

    objs = [("dog", 0)], [("cat", 0), ("person", 0)]
    voc = _voc(
        tmp_path,
        {
            "train": {f"{i:06d}": objs[i % 2] for i in range(1, 5)},
            "val": {f"{i:06d}": objs[i % 2] for i in range(5, 7)},
            "test": {f"{i:06d}": objs[i % 2] for i in range(7, 10)},
        },
    )
    name = f"open_clip:{tiny_clip}"
    extract(name, f"voc2007:{voc}", tmp_path / "S", random_init=True, device="cpu", progress=False)
    st = Store.open(tmp_path / "S")
    assert set(st.splits()) == {"down_train", "down_val", "down_test"}
    assert st.is_multilabel("down_train") and st.labels("down_train").shape == (4, 20)
    assert st.embeddings(name, "down_test").shape == (3, 64)
    assert not st.has_logits(name, "down_test")
    assert len(st.class_names) == 1000  # ready for the ImageNet splits of the paper-scale study

    # the same store then gets ImageNet-head logits on another data set; the VOC splits are kept
    conv = "timm:test_convnext.r160_in1k"
    extract(conv, f"voc2007:{voc}", tmp_path / "S", random_init=True, device="cpu", progress=False)
    data = _folder(tmp_path / "data", per_class=1, size=(16, 16))
    extract(conv, f"imagefolder:{data}", tmp_path / "S", random_init=True, device="cpu", progress=False)
    st = Store.open(tmp_path / "S")
    assert st.logits(conv, "test").shape == (2, 1000) and st.embeddings(conv, "down_train").shape == (4, 64)
    assert extract(conv, f"voc2007:{voc}", tmp_path / "S", random_init=True, device="cpu", progress=False).get(
        "skipped"
    )

    # L-BFGS head fitted on a training folder, evaluated on another folder
    train = _folder(tmp_path / "train", classes=("cat", "dog"), per_class=5)
    test = _folder(tmp_path / "test", classes=("cat", "dog"), per_class=2)
    meta = extract(
        name,
        f"imagefolder:{test}",
        tmp_path / "S2",
        random_init=True,
        device="cpu",
        progress=False,
        head="l-bfgs",
        train_data=f"imagefolder:{train}",
        probe_Cs=[1.0],
    )
    assert meta["recipe"]["head"] == "l-bfgs" and meta["recipe"]["n_train"] == 8
    assert Store.open(tmp_path / "S2").logits(name, "test").shape == (4, 2)


_EXTRACT_SCRIPT = """
import json, sys, time
import norep.extract._chunks as chunks
import norep.extract as ex
mode, model, spec, store = sys.argv[1:5]
if mode == "slow":  # slow enough to kill midway
    get = chunks._Images.__getitem__
    chunks._Images.__getitem__ = lambda self, i: (time.sleep(0.15), get(self, i))[1]
written = []
save = chunks._save_npz_atomic
chunks._save_npz_atomic = lambda p, **a: (written.append(p.name), save(p, **a))[1]
ex.extract(model, spec, store, random_init=True, device="cpu", batch_size=2, chunk_size=2, progress=False)
print(json.dumps(written))
"""
MODEL = "timm:test_resnet.r160_in1k"
# The resume guarantee holds for the same threads and CPU kernels, so every run of the test below is a
# subprocess with this one environment (the kernels, e.g. ATEN_CPU_CAPABILITY, are inherited as they are).
_SAME_THREADS = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _extract_argv(mode, spec, store):
    return [sys.executable, "-c", _EXTRACT_SCRIPT, mode, MODEL, spec, str(store)]


def _extract_run(mode, spec, store) -> list[str]:
    """Run one extraction in a fresh process; return the names of the chunks it wrote."""
    proc = subprocess.run(
        _extract_argv(mode, spec, store),
        env={**os.environ, **_SAME_THREADS},
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_resume_after_sigkill_gives_same_arrays(tmp_path):
    """A run killed midway and resumed gives the arrays of an uninterrupted run, bit for bit, when both
    run with the same threads and CPU kernels (the guarantee the extraction docs state)."""
    data = _folder(tmp_path / "data", per_class=10, size=(24, 24))
    spec = f"imagefolder:{data}"
    store = tmp_path / "S"
    proc = subprocess.Popen(
        _extract_argv("slow", spec, store),
        env={**os.environ, **_SAME_THREADS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(store.glob("_partial/*/*/test/chunk_*.npz"))) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "extraction finished before it could be killed"
    finished = {p.name for p in store.glob("_partial/*/*/test/chunk_*.npz")}
    assert 3 <= len(finished) < 10
    assert not Store.open(store).model_names()  # nothing half-written in the store

    written = set(_extract_run("resume", spec, store))
    assert not written & finished  # finished chunks were not redone
    assert written | finished == {f"chunk_{i:05d}.npz" for i in range(10)}
    assert not (store / "_partial").exists()

    assert len(_extract_run("clean", spec, tmp_path / "clean")) == 10
    a, b = Store.open(store), Store.open(tmp_path / "clean")
    assert a.logits(MODEL, "test").shape == (20, 1000)
    np.testing.assert_array_equal(a.logits(MODEL, "test"), b.logits(MODEL, "test"))
    np.testing.assert_array_equal(a.embeddings(MODEL, "test"), b.embeddings(MODEL, "test"))


def test_user_errors_are_one_line(tmp_path, capsys):
    data = _folder(tmp_path / "data", per_class=1)
    cases = [
        (["--model", "resnet18"], "SOURCE:NAME"),
        (["--model", "timm:no_such_net_xyz"], "no model"),
        (["--model", "timm:resnet18", "--data", f"imagenet:{data}"], "WordNet id"),
        (["--model", "timm:resnet18", "--head", "zero-shot"], "text tower"),
        (["--model", "timm:resnet18", "--precision", "fp16"], "CUDA"),
        (["--model", "paper:MPL"], "no public weights"),
        (["--model", "paper:No Such Net"], "not in the paper's registry"),
    ]
    for extra, match in cases:
        argv = [
            "extract",
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(tmp_path / "S"),
            "--device",
            "cpu",
            "--random-init",
            "--no-progress",
            *extra,
        ]
        # later --data/--model flags override earlier ones (argparse keeps the last)
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("norep: ") and match in err[0], (extra, err)


@pytest.mark.slow
def test_concurrent_extractions_into_one_new_store(tmp_path):
    """Two processes create and fill the same (absent) store with different models at once."""
    data = _folder(tmp_path / "data", per_class=2, size=(24, 24))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    models = ["timm:test_resnet.r160_in1k", "timm:test_convnext.r160_in1k"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "norep.cli",
                "extract",
                "--model",
                m,
                "--random-init",
                "--data",
                f"imagefolder:{data}",
                "--store",
                str(tmp_path / "S"),
                "--device",
                "cpu",
                "--no-progress",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in models
    ]
    for p in procs:
        _, err = p.communicate(timeout=HANG_S)
        assert p.returncode == 0, err
    st = Store.open(tmp_path / "S")
    assert sorted(st.model_names()) == sorted(models)
    st.verify()
    assert [st.embeddings(m, "test").shape for m in models] == [(4, 96), (4, 64)]


def test_bench_extract_cpu_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "extract",
                "--models",
                "timm:test_resnet.r160_in1k",
                "--device",
                "cpu",
                "--batch-size",
                "8",
                "--iters",
                "2",
                "--warmup",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert "images/s" in capsys.readouterr().out
    (res,) = json.loads(out.read_text())
    assert res["images_per_s"] > 0 and res["batch_size"] == 8 and res["input_size"] == [3, 160, 160]
    assert main(["bench", "extract", "--device", "cpu", "--precision", "fp16"]) == 1


def _tiny_align(d):
    """A tiny ALIGN (EfficientNet + BERT) saved like a Hugging Face checkpoint, with its processor."""
    import torch
    import transformers as T

    vision = T.AlignVisionConfig(image_size=32, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=64)
    text = T.AlignTextConfig(
        vocab_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    cfg = T.AlignConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=32)
    torch.manual_seed(1)
    model = T.AlignModel(cfg)
    with torch.no_grad():
        model.temperature.fill_(0.05)
        for mod in model.vision_model.modules():  # the tiny EfficientNet's default init vanishes
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(mod.weight)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                torch.nn.init.ones_(mod.weight)
    d.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cat", "dog", "."]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = T.BertTokenizer(str(d / "vocab.txt"), model_max_length=16)
    size = {"height": 32, "width": 32}
    proc = T.AlignProcessor(image_processor=T.EfficientNetImageProcessor(size=size, crop_size=size), tokenizer=tok)
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return model, proc


@pytest.mark.slow
def test_hf_align_zero_shot_matches_the_model_forward(tmp_path):
    pytest.importorskip("transformers")
    import torch

    model, proc = _tiny_align(tmp_path / "align")
    data = _folder(tmp_path / "data", classes=("cat", "dog"), per_class=2)
    name = f"hf:{tmp_path / 'align'}"
    rc = main(
        [
            "extract",
            "--model",
            name,
            "--data",
            f"imagefolder:{data}",
            "--store",
            str(tmp_path / "S"),
            "--device",
            "cpu",
            "--zero-shot-templates",
            "simple",
            "--no-progress",
        ]
    )
    assert rc == 0
    st = Store.open(tmp_path / "S")
    files = sorted((data / "cat").iterdir()) + sorted((data / "dog").iterdir())
    batch = proc(
        text=["a photo of a cat.", "a photo of a dog."],
        images=[Image.open(f).convert("RGB") for f in files],
        return_tensors="pt",
        padding="max_length",
        truncation=True,
    )
    with torch.no_grad():
        ref = model.eval()(**batch).logits_per_image  # ALIGN: cosine / temperature
    np.testing.assert_allclose(st.logits(name, "test"), ref.numpy(), rtol=1e-4, atol=1e-3)
    assert st.embeddings(name, "test").shape == (4, 32)
    assert st.meta(name)["recipe"]["logit_scale"] == pytest.approx(20.0)


def test_paper_name_uses_the_registry_row(tmp_path):
    from norep.extract import extract

    data = _folder(tmp_path / "data", per_class=1, size=(16, 16))
    meta = extract(
        "paper:ViT-DeiT-Tiny", f"imagefolder:{data}", tmp_path / "S", random_init=True, device="cpu", progress=False
    )
    assert meta["name"] == "ViT-DeiT-Tiny" and meta["category"] == "FWORK" and meta["method"] == "Sup. / IN"
    assert meta["load"] == "timm:deit_tiny_distilled_patch16_224.fb_in1k" and meta["head"] == "trained"
    assert meta["paper_top1"] == 74.5 and meta["registry_status"] == "exact"
    st = Store.open(tmp_path / "S")
    assert st.embeddings("ViT-DeiT-Tiny", "test").shape == (2, 192)


def test_hf_without_transformers_says_how_to_install(monkeypatch):
    from norep.zoo.loading import UnknownModelError, load

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(UnknownModelError, match="pip install transformers"):
        load("hf:kakaobrain/align-base")


def test_extract_into_a_store_with_other_classes_changes_nothing(tmp_path, capsys):
    """A store whose classes contradict the data or the model is refused before a split is added."""
    import hashlib

    data = _folder(tmp_path / "data", classes=("a", "b", "c"), per_class=1)
    st = Store.create(tmp_path / "S", dataset="d", class_names=["x", "y", "z"], splits={"calib": np.array([0, 1, 2])})
    (st.path / ".lock").unlink(missing_ok=True)

    def snap():
        return {
            p.relative_to(st.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(st.path.rglob("*"))
        }

    before = snap()
    argv = ["extract", "--model", "timm:resnet18", "--data", f"imagefolder:{data}", "--store", str(st.path)]
    assert main([*argv, "--device", "cpu", "--random-init", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 3 classes but timm:resnet18" in err[0], err
    assert snap() == before and Store.open(st.path).splits() == ["calib"]
