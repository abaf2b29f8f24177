"""Every reference measure and its fast twin (norep.engine.twins.TWINS) agree exactly on random
stores: float16 and float32 logits, fitted temperatures, ties between classes and between models."""

import importlib

import numpy as np
import pytest

from norep.engine.twins import TWINS, Case
from norep.storage import Store
from random_logits import random_store

STORES = {
    "float16-ties": dict(m=4, n=240, c=9, dtype=np.float16, quantum=0.5, copies=1, flat=0.05),
    "float32": dict(m=4, n=300, c=23, dtype=np.float32),
}


def _resolve(dotted: str):
    """The object a dotted name points to (a function, or a class attribute)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.fixture(scope="module", params=sorted(STORES))
def store(request, tmp_path_factory):
    """A store of random models with temperatures fitted by the store, read back memory-mapped."""
    kw = dict(STORES[request.param])
    rng = np.random.default_rng(len(request.param))
    y_cal, cal = random_store(rng, **kw)
    y_test, test = random_store(rng, **kw)
    c = kw["c"]
    st = Store.create(
        tmp_path_factory.mktemp("twins") / "s",
        dataset="random",
        class_names=[str(i) for i in range(c)],
        splits={"calib": y_cal, "test": y_test},
    )
    for i in range(len(cal)):
        st.add_model(f"m{i}", logits={"calib": cal[i], "test": test[i]}, meta={"category": "ARCH", "method": "r"})
    return st


def _case(st, device):
    names = st.model_names()
    return Case(
        st.labels("calib"),
        [st.logits(m, "calib") for m in names],
        [st.meta(m)["temperature"] for m in names],
        eval_y=st.labels("test"),
        eval_logits=[st.logits(m, "test") for m in names],
        device=device,
        names=list(names),
    )


@pytest.mark.parametrize("device", ["numpy", "cpu", "cuda"])
@pytest.mark.parametrize("reference", sorted(TWINS))
def test_fast_twin_equals_reference(store, reference, device):
    twin = TWINS[reference]
    if device not in twin.devices:
        pytest.skip(f"{twin.fast} is not bit-identical on {device}")
    if device != "numpy":
        torch = pytest.importorskip("torch")
        if device == "cuda" and not torch.cuda.is_available():
            pytest.skip("no CUDA device")
    ref, fast = twin.compare(_case(store, None if device == "numpy" else device))
    if twin.rtol:
        np.testing.assert_allclose(fast, ref, rtol=twin.rtol, atol=0)
    else:
        np.testing.assert_equal(fast, ref)


def test_twins_name_real_functions_and_cover_the_fast_api():
    import norep.allpairs

    for reference, twin in TWINS.items():
        assert reference == twin.reference
        assert callable(_resolve(reference)), reference
        assert callable(_resolve(twin.fast)), twin.fast
    fast = {twin.fast.rsplit(".", 1)[-1] for twin in TWINS.values()}
    for name in norep.allpairs.__all__:
        obj = getattr(norep.allpairs, name)
        if callable(obj) and not isinstance(obj, type) and not name.startswith("store_"):
            assert name in fast, f"{name} has no reference twin in norep.engine.twins.TWINS"


def test_a_wrong_twin_is_caught(store):
    """The comparison can fail: a result off by one example is not accepted."""
    ref, fast = TWINS["norep.measures.ensembles.pairwise_ensemble_accuracy"].compare(_case(store, None))
    with pytest.raises(AssertionError):
        np.testing.assert_equal(fast + 1.0 / store.n_examples("calib"), ref)
