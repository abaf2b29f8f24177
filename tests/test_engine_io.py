"""Reading logits without mapping the files: the same bytes as the memory map, nothing mapped."""

import numpy as np
import pytest

from norep.engine import _read_whole
from norep.engine._rows import RowReader, gather_rows, preadable


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


def test_read_whole(memmap):
    arr, mm = memmap
    whole = _read_whole(mm)
    assert not isinstance(whole, np.memmap)
    np.testing.assert_array_equal(whole, arr)
    assert _read_whole(arr) is arr
