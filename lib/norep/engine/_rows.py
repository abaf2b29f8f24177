"""Reading logits for the fast engine: row blocks and single rows of memory-mapped store files.

Memory-mapped store files are read with ``preadv`` into reused buffers (:class:`RowReader`), so a
streaming pass maps no page of the file (no page faults, no growth of the resident set); a few rows
are gathered the same way. Each block is turned into calibrated probabilities by
:func:`norep.measures.calibration.softmax`'s own in-place kernel, so every value is the reference's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from norep.measures.calibration import _copy_rows, _release_rows, _softmax_inplace

BLOCK_ELEMS = 1 << 18
"""Elements per row block of a streaming pass (1 MB of float32)."""
THREADED_BLOCK_ELEMS = 1 << 20
"""Elements per row block when several threads stream at once (4 MB of float32). A block's few
dozen small numpy operations hold the GIL; with fewer, larger blocks the threads wait on each other
less, which outweighs the cache misses (20 passes of 10,000 x 1,000 on 2 threads: 0.44 s with 1 MB
blocks, 0.36 s with 4 MB blocks; on 1 thread 1 MB blocks are faster, 0.61 s against 0.72 s)."""
ROWS_PER_BATCH = 2048
"""Full-row fallbacks are evaluated in batches of this many rows."""


def progress_bar(iterable, enabled: bool, **kw):
    """``iterable``, wrapped in a tqdm progress bar on stderr when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


class RowReader:
    """Row blocks of a 2-D logits array converted to the compute dtype, without mapping files.

    A read-only memory map of a whole ``.npy`` file (what :class:`norep.storage.Store` hands out) is
    read with ``os.preadv`` straight from the file into a reused buffer: no page of the file is
    mapped into the process, so there are no page faults, nothing to release and no growth of the
    resident set; float16 is then widened by torch's vectorised conversion, float32 lands directly
    in the compute buffer. Any other array is sliced.
    """

    def __init__(self, arr: np.ndarray, dtype, step: int):
        import mmap
        import os

        self.arr, self.dtype = arr, np.dtype(dtype)
        self.fd = None
        if (
            isinstance(arr, np.memmap)
            and isinstance(arr.base, mmap.mmap)
            and arr.flags.c_contiguous
            and not arr.flags.writeable
            and getattr(arr, "filename", None)
            and hasattr(os, "preadv")
        ):
            try:
                self.fd = os.open(arr.filename, os.O_RDONLY)
            except OSError:  # pragma: no cover - the file vanished: fall back to the map
                self.fd = None
        self.row_bytes = arr.shape[1] * arr.dtype.itemsize if arr.ndim == 2 else arr.dtype.itemsize
        self.scratch = None
        if self.fd is not None and arr.dtype != self.dtype:
            self.scratch = np.empty((step, arr.shape[1]), dtype=arr.dtype)

    def read(self, a: int, b: int, out: np.ndarray) -> None:
        """``out[...] = arr[a:b]`` (converted); ``out`` has ``b - a`` rows."""
        import os

        if self.fd is None:
            _copy_rows(out, self.arr[a:b])
            _release_rows(self.arr, a, b)
            return
        dst = out if self.scratch is None else self.scratch[: b - a]
        view = memoryview(dst).cast("B")
        want, pos = view.nbytes, self.arr.offset + a * self.row_bytes
        got = 0
        while got < want:
            r = os.preadv(self.fd, [view[got:]], pos + got)
            if r <= 0:  # pragma: no cover - truncated file
                raise OSError(f"could not read {self.arr.filename}")
            got += r
        if self.scratch is not None:
            _copy_rows(out, dst)

    def close(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def softmax_checked(z: np.ndarray, temperature: float, what: str = "logits", *, normalize: bool = True):
    """:func:`norep.measures.calibration.softmax` of the block ``z`` in place; returns its row stats.

    NaN and +inf propagate into the row max, so checking the (n,) maxima replaces a full pass.
    """
    z, m, s = _softmax_inplace(z, temperature, stats=True, normalize=normalize)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{what} contain NaN or Inf")
    return m, s


def preadable(arr) -> bool:
    import mmap
    import os

    return (
        isinstance(arr, np.memmap)
        and isinstance(arr.base, mmap.mmap)
        and arr.flags.c_contiguous
        and not arr.flags.writeable
        and bool(getattr(arr, "filename", None))
        and hasattr(os, "preadv")
        and arr.ndim == 2
    )


def gather_rows(arr: np.ndarray, rows) -> np.ndarray:
    """``arr[rows]`` for an index array. From a read-only memory-mapped file: a few rows are read
    with ``preadv`` (nothing mapped); more go through the map (one page fault per 64 KB or so) and
    the pages touched are released at once, so the resident set does not grow."""
    rows = np.asarray(rows, dtype=np.int64)
    if not preadable(arr) or len(rows) > 8:
        out = np.asarray(arr[rows])
        if len(rows):
            _release_rows(arr, int(rows.min()), int(rows.max()) + 2)
        return out
    import os

    c = arr.shape[1]
    row_bytes = c * arr.dtype.itemsize
    out = np.empty((len(rows), c), dtype=arr.dtype)
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        for i, r in enumerate(rows.tolist()):
            pread_into(fd, out[i], arr.offset + r * row_bytes)
    finally:
        os.close(fd)
    return out


def pread_into(fd: int, dst: np.ndarray, pos: int) -> None:
    import os

    view = memoryview(dst).cast("B")
    got = 0
    while got < view.nbytes:
        r = os.preadv(fd, [view[got:]], pos + got)
        if r <= 0:  # pragma: no cover - truncated file
            raise OSError("could not read the logits file (truncated?)")
        got += r


def softmax_row_blocks(logits: np.ndarray, rows, temperature: float, dtype):
    """Yield ``(a, b, p)``: ``p`` the exact calibrated probabilities of ``rows[a:b]`` (an index
    array), in cache-sized blocks of a reused buffer, so that no pass of the softmax streams a
    large array from memory and nothing large is allocated (fresh pages cost a fault each). Rows of
    a memory map are gathered through the map and its pages released once at the end."""
    rows = np.asarray(rows, dtype=np.int64)
    n, c = len(rows), logits.shape[1]
    if n == 0:
        return
    step = max(1, BLOCK_ELEMS // c)
    buf = np.empty((min(step, n), c), dtype=dtype)
    few = n <= 8 and preadable(logits)
    try:
        for a in range(0, n, step):
            b = min(n, a + step)
            z = buf[: b - a]
            src = gather_rows(logits, rows[a:b]) if few else np.asarray(logits[rows[a:b]])
            _copy_rows(z, np.ascontiguousarray(src))
            _softmax_inplace(z, temperature)
            yield a, b, z
    finally:
        if not few and isinstance(logits, np.memmap):
            _release_rows(logits, int(rows.min()), int(rows.max()) + 2)


def softmax_rows(logits: np.ndarray, rows, temperature: float, dtype) -> np.ndarray:
    """Exact calibrated probabilities of the given rows (an index array)."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), logits.shape[1]), dtype=dtype)
    for a, b, p in softmax_row_blocks(logits, rows, temperature, dtype):
        out[a:b] = p
    return out


def add_softmax_rows(logits: np.ndarray, rows, temperature: float, dtype, dst: np.ndarray) -> None:
    """``dst += softmax_rows(logits, rows, ...)`` block by block (the same sums, element for element)."""
    for a, b, p in softmax_row_blocks(logits, rows, temperature, dtype):
        dst[a:b] += p


def read_whole(arr):
    """A read-only memory map of a whole ``.npy`` file read into memory with ``preadv`` (one copy,
    no page faults, nothing left mapped); any other array as it is."""
    import mmap
    import os

    import numpy as np

    if not (
        isinstance(arr, np.memmap)
        and isinstance(arr.base, mmap.mmap)
        and arr.flags.c_contiguous
        and not arr.flags.writeable
        and getattr(arr, "filename", None)
        and hasattr(os, "preadv")
    ):
        return arr
    out = np.empty(arr.shape, dtype=arr.dtype)
    view = memoryview(out).cast("B")
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        got = 0
        while got < view.nbytes:
            r = os.preadv(fd, [view[got:]], arr.offset + got)
            if r <= 0:  # pragma: no cover - truncated file
                raise OSError(f"could not read {arr.filename}")
            got += r
    finally:
        os.close(fd)
    return out
