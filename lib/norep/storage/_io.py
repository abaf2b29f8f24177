"""Low-level file handling of the prediction store: atomic writes, checked ``.npy`` reads, locks.

Everything here either finishes or leaves the previous state in place, and reports failures as
:class:`StoreError` (a ``ValueError``) with one line that names the file and the cause, e.g.
``cannot write /s/store.json: no space left on device``.

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> sha = save_npy(d / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
>>> sha == sha256_file(d / "a.npy")
True
>>> load_npy(d / "a.npy").tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
>>> _ = (d / "b.npy").write_bytes((d / "a.npy").read_bytes()[:-4])
>>> load_npy(d / "b.npy")
Traceback (most recent call last):
...
norep.storage._io.StoreError: .../b.npy: truncated .npy file: its header promises shape (2, 3) float32 (24 bytes ...
>>> dumps_json({"t": float("nan"), "x": np.float32(1.5)})
'{\\n "t": null,\\n "x": 1.5\\n}'
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class StoreError(ValueError):
    """A damaged store, a bad input or a failed write, described in one line naming the file."""


# ------------------------------------------------------------------------------------------ errors

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "already exists",
    errno.EIO: "input/output error",
}


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an ``OSError`` (``"no space left on device"``)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def write_error(path: os.PathLike | str, exc: OSError) -> StoreError:
    return StoreError(f"cannot write {path}: {os_reason(exc)}")


def read_error(path: os.PathLike | str, exc: OSError) -> StoreError:
    return StoreError(f"cannot read {path}: {os_reason(exc)}")


# ------------------------------------------------------------------------------------------ permissions


def _read_umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # not thread-safe, but done once at import time
    os.umask(old)
    return old


_UMASK = _read_umask()
FILE_MODE = 0o666 & ~_UMASK
"""Mode of the files the store writes: what ``open()`` would give (``mkstemp`` gives 0600)."""
DIR_MODE = 0o777 & ~_UMASK


def fsync_dir(path: os.PathLike | str) -> None:
    """Flush a directory entry (after a rename) to disk; ignored where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------ JSON


def _plain(obj: Any) -> Any:
    """JSON-ready copy of ``obj``: numpy scalars/arrays, paths, sets, tuples converted; NaN/Inf -> None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise StoreError(f"metadata value of type {type(obj).__name__} is not JSON-serialisable")


def dumps_json(obj: Any) -> str:
    """Strict JSON text of ``obj`` (NaN and Inf become ``null``: JSON has no such numbers)."""
    return json.dumps(_plain(obj), indent=1, allow_nan=False)


def canonical_sha(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_json(path: Path, what: str = "") -> tuple[Any, bytes]:
    """Parse ``path``; return (object, raw bytes). Errors name the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path} is missing{what}") from None
    except IsADirectoryError:
        raise StoreError(f"{path} is a directory, not a JSON file") from None
    except OSError as exc:
        raise read_error(path, exc) from None
    try:
        return json.loads(raw), raw
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is not valid JSON ({exc})") from None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename, fsync folder."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_dir(path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_json_atomic(path: Path, obj: Any) -> bytes:
    """Write ``obj`` as strict JSON atomically; return the bytes written."""
    data = (dumps_json(obj) + "\n").encode()
    write_bytes_atomic(path, data)
    return data


# ------------------------------------------------------------------------------------------ .npy files


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    except OSError as exc:
        raise read_error(path, exc) from None
    return h.hexdigest()


_WRITE_BLOCK = 1 << 24


def save_npy(path: Path, arr: np.ndarray, *, shown: Path | None = None) -> str:
    """Write ``arr`` as ``.npy`` to ``path`` (a new file), fsync it, and return its SHA-256.

    Written block by block with plain ``write`` so that a full disk is reported as such
    (``numpy.save`` reports "N requested and M written"); the file is removed on failure.
    Errors name ``shown`` (the final name of a temporary file) if given.
    """
    arr = np.ascontiguousarray(arr)
    if arr.dtype.hasobject:
        raise StoreError(f"{path}: object arrays are not allowed")
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(arr))
    h = hashlib.sha256(head.getvalue())
    flat = arr.reshape(-1).view(np.uint8) if arr.size else np.empty(0, np.uint8)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb", buffering=0) as f:
            _write_all(f, head.getvalue())
            for start in range(0, flat.size, _WRITE_BLOCK):
                block = memoryview(flat[start : start + _WRITE_BLOCK])
                h.update(block)
                _write_all(f, block)
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise write_error(shown or path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return h.hexdigest()


def _write_all(f, data) -> None:
    view = memoryview(data).cast("B")
    while view.nbytes:
        n = f.write(view)
        if not n:
            raise OSError(errno.EIO, "short write")
        view = view[n:]


def read_npy_header(path: Path, f=None, size: int | None = None) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, data offset) of a ``.npy`` file, checked against its size.

    Nothing is allocated before the header's promise (``prod(shape) * itemsize`` bytes) is
    compared with the bytes the file holds.
    """
    own = f is None
    try:
        if own:
            f = open(path, "rb")
        try:
            if size is None:
                size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise StoreError(f"{path}: empty file (0 bytes), not a .npy array")
            try:
                version = np.lib.format.read_magic(f)
                reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(
                    version
                )
                if reader is None:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, fortran, dtype = reader(f, max_header_size=1 << 16)
            except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StoreError(f"{path}: not a valid .npy file ({msg})") from None
            offset = f.tell()
        finally:
            if own:
                f.close()
    except OSError as exc:
        raise read_error(path, exc) from None
    if dtype.hasobject:
        raise StoreError(f"{path}: holds Python objects (pickled); only numeric arrays are accepted")
    if any(int(d) < 0 for d in shape):
        raise StoreError(f"{path}: invalid shape {shape} in its header")
    need = math.prod(int(d) for d in shape) * dtype.itemsize
    have = size - offset
    if have < need:
        raise StoreError(
            f"{path}: truncated .npy file: its header promises shape {tuple(shape)} {dtype} "
            f"({need} bytes of data) but the file holds {have}"
        )
    if have > need:
        raise StoreError(
            f"{path}: damaged .npy file: {have - need} bytes more than its header's shape {tuple(shape)} {dtype} needs"
        )
    return tuple(int(d) for d in shape), dtype, bool(fortran), offset


def load_npy(
    path: Path,
    *,
    mmap: bool = True,
    shape: tuple | list | None = None,
    dtype: str | None = None,
    what: str | None = None,
) -> np.ndarray:
    """Read a ``.npy`` file after checking its header against its size (and ``shape``/``dtype`` if given).

    Memory-mapped (read-only) when ``mmap``; never unpickles.
    """
    shp, dt, fortran, offset = read_npy_header(path)
    label = what or str(path)
    if shape is not None and list(shp) != list(shape):
        raise StoreError(f"{label}: {path} has shape {list(shp)}, the metadata says {list(shape)}")
    if dtype is not None and str(dt) != str(dtype):
        raise StoreError(f"{label}: {path} has dtype {dt}, the metadata says {dtype}")
    order = "F" if fortran else "C"
    try:
        if math.prod(shp) == 0:
            return np.empty(shp, dtype=dt, order=order)
        if mmap:
            return np.memmap(path, dtype=dt, mode="r", offset=offset, shape=shp, order=order)
        with open(path, "rb") as f:
            f.seek(offset)
            arr = np.fromfile(f, dtype=dt, count=math.prod(shp))
        return arr.reshape(shp, order=order)
    except OSError as exc:
        raise read_error(path, exc) from None


def load_npz_member(path: Path, kinds: tuple[str, ...]) -> np.ndarray:
    """Read one array of an ``.npz`` (the only one, or the first of ``kinds`` present), header-checked."""
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise StoreError(f"{path}: not a valid .npz file ({exc})") from None
    with zf:
        members = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
        if not members:
            raise StoreError(f"{path}: the .npz holds no arrays")
        if len(members) == 1:
            key = next(iter(members))
        else:
            key = next((k for k in kinds if k in members), None)
            if key is None:
                raise StoreError(
                    f"{path} holds arrays {sorted(members)}; name one of them {' or '.join(repr(k) for k in kinds)}"
                )
        info = zf.getinfo(members[key])
        try:
            with zf.open(info) as f:
                shp, dt, fortran, offset = read_npy_header(Path(f"{path}[{key}]"), f, size=info.file_size)
                data = f.read(math.prod(shp) * dt.itemsize)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise StoreError(f"{path}: damaged .npz member {key!r} ({exc})") from None
    arr = np.frombuffer(data, dtype=dt).copy()
    return arr.reshape(shp, order="F" if fortran else "C")


# ------------------------------------------------------------------------------------------ renames


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ------------------------------------------------------------------------------------------ locks


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = -1, what: str = "the store") -> Iterator[None]:
    """An inter-process lock (``filelock``, ``flock`` underneath) held while the block runs.

    Raises :class:`StoreError` when the lock file cannot be created (e.g. a read-only store is
    being written) or, with ``timeout >= 0``, when another process holds it that long.
    """
    import filelock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock = filelock.FileLock(str(path), timeout=timeout, mode=FILE_MODE, fallback_to_soft=False)
        except TypeError:  # filelock < 4: flock only, no soft fallback to turn off
            lock = filelock.FileLock(str(path), timeout=timeout, mode=FILE_MODE)
        lock.acquire()
    except filelock.Timeout:
        raise StoreError(f"{what} is being written by another process (lock {path} is held)") from None
    except OSError as exc:
        raise StoreError(f"cannot lock {path} to write {what}: {os_reason(exc)}") from None
    try:
        yield
    finally:
        lock.release()
