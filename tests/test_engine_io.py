"""Reading logits without mapping the files: the same bytes as the memory map, nothing mapped."""

import numpy as np
import pytest

from norep.engine._rows import RowReader, gather_rows, preadable, read_whole


@pytest.fixture
def memmap(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(1000, 37)) * 4).astype(np.float16)
    np.save(tmp_path / "x.npy", arr)
    return arr, np.load(tmp_path / "x.npy", mmap_mode="r")


def test_row_reader_reads_the_file(memmap):
    arr, mm = memmap
    assert preadable(mm) and not preadable(arr) and not preadable(mm[10:])
    out = np.empty((300, 37), dtype=np.float32)
    with RowReader(mm, np.float32, 300) as reader:
        assert reader.fd is not None
        for a in (0, 300, 700):
            b = min(1000, a + 300)
            reader.read(a, b, out[: b - a])
            np.testing.assert_array_equal(out[: b - a], arr[a:b].astype(np.float32))
    with RowReader(arr, np.float32, 300) as plain:  # not a file: sliced
        assert plain.fd is None
        plain.read(5, 10, out[:5])
        np.testing.assert_array_equal(out[:5], arr[5:10].astype(np.float32))


@pytest.mark.parametrize("n_rows", [0, 1, 5, 8, 9, 400])
def test_gather_rows(memmap, n_rows):
    arr, mm = memmap
    rows = np.random.default_rng(n_rows).integers(0, 1000, size=n_rows)
    np.testing.assert_array_equal(gather_rows(mm, rows), arr[rows])
    np.testing.assert_array_equal(gather_rows(arr, rows), arr[rows])


def testread_whole(memmap):
    arr, mm = memmap
    whole = read_whole(mm)
    assert not isinstance(whole, np.memmap)
    np.testing.assert_array_equal(whole, arr)
    assert read_whole(arr) is arr


def test_torch_runs_on_one_thread_during_the_engine_and_is_restored():
    torch = pytest.importorskip("torch")
    from norep.engine._device import fit_temperatures
    from norep.measures.calibration import torch_one_thread

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch_one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with torch_one_thread(active=False):
            assert torch.get_num_threads() == 2
        rng = np.random.default_rng(0)
        y = rng.integers(0, 5, 300)
        z = (rng.normal(size=(300, 5)) + 2 * np.eye(5)[y]).astype(np.float16)
        seen = []
        import norep.measures.calibration as cal

        orig = cal._moment_pass

        def spy(*a, **k):
            seen.append(torch.get_num_threads())
            return orig(*a, **k)

        cal._moment_pass = spy
        try:
            temps = fit_temperatures([z, z], y, n_jobs=2)
        finally:
            cal._moment_pass = orig
        assert temps[0] == temps[1] and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


def test_summarise_exp_restores_or_leaves_only_scratch():
    """The summary of a block is the same whether the block is restored afterwards or not; when
    restored it is bit for bit what it was; rows with a tie at the top are restored either way."""
    from norep.engine.summary import summarise_exp

    rng = np.random.default_rng(3)
    e = np.exp(rng.integers(-4, 1, size=(64, 9)).astype(np.float32))  # many ties
    s = e.sum(axis=1)
    y = rng.integers(0, 9, 64)
    before = e.copy()
    kept = summarise_exp(e, s, y, 2)
    assert np.array_equal(e, before)
    scratch = e.copy()
    once = summarise_exp(scratch, s, y, 2, restore=False)
    for a, b in zip(kept, once, strict=True):
        assert np.array_equal(a, b)
    # the predictions are the first maximal class of e / s, ties included
    assert np.array_equal(kept[4], (before / s[:, None]).argmax(axis=1))
    with pytest.raises(ValueError, match="C-contiguous"):
        summarise_exp(np.asfortranarray(before), s, y, 2)
