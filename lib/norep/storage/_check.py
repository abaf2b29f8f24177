"""Checking and cleaning a prediction store: the integrity side of :class:`norep.storage.Store`.

:meth:`_Integrity.verify` checks everything (checksums included) and lists the problems in a
:class:`VerifyError`; :meth:`_Integrity.verify_cached` skips that while the store's
:meth:`_Integrity.fingerprint` is unchanged; :meth:`_Integrity.clean` removes the leftovers of
interrupted or superseded writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from norep.storage._io import StoreError, file_lock, load_npy, sha256_file, write_json_atomic
from norep.storage._schema import _MODEL_META, _STORE_FILE, _VERSION_RE, _argmax_rows, _home_name

_VERIFIED: dict[str, tuple] = {}
"""Files whose SHA-256 this process has checked: real path -> (size, mtime, ctime, inode, sha256)."""


def _stat_key(path: Path, sha: str) -> tuple[str, tuple]:
    s = os.stat(path)
    return os.path.realpath(path), (s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino, sha)


def check_once(path: Path, sha: str, what: str) -> None:
    """Check ``path`` against its recorded SHA-256 ``sha`` unless this process already did so for the
    file as it is now (same size, modification and change times, inode); raise :class:`StoreError` on a
    mismatch. A file rewritten or edited in place gets new times, so it is checked again."""
    try:
        real, key = _stat_key(path, sha)
    except OSError as exc:
        raise StoreError(f"{what}: cannot read {path}: {exc.strerror}") from None
    if _VERIFIED.get(real) == key:
        return
    if sha256_file(path) != sha:
        raise StoreError(
            f"{what}: {path} does not match its checksum (corrupted or changed since it was written); "
            "`norep store verify` lists the damage: re-import or re-extract it (verify=False reads it anyway)"
        )
    _VERIFIED[real] = key


def _mark_verified(path: Path, sha: str) -> None:
    with contextlib.suppress(OSError):
        real, key = _stat_key(path, sha)
        _VERIFIED[real] = key


class VerifyError(StoreError):
    """:meth:`Store.verify` found problems; ``problems`` lists them, the message names the first."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more; `norep store verify {path}` lists them)" if len(problems) > 1 else ""
        super().__init__(f"store {path} failed verification: {problems[0]}{more}")


class _Integrity:
    """The methods of :class:`norep.storage.Store` that verify, fingerprint and clean a store."""

    def verify(self) -> dict:
        """Check the whole store; raise :class:`VerifyError` (a ``ValueError``) listing the problems.

        Checked: ``store.json`` (schema, its own checksum, the manifest), every split's labels (shape and
        checksum), every model of the manifest (``meta.json`` present, matching the manifest's checksum
        and the schema, its name and files confined to the store) and every array (present, header,
        shape and dtype, SHA-256), and the accuracies in the metadata against the logits. Half states of
        interrupted writes are leftovers (listed, harmless, removed by :meth:`clean`).

        Returns
        -------
        dict
            ``{"models": n, "arrays": n, "leftovers": [...], "superseded": [...], "notes": [...]}``:
            ``leftovers`` lists every file or directory no reader needs (what :meth:`clean` removes);
            ``superseded``, the part of it that is a model's previous complete version, kept by
            every write for readers that opened the store before it (normal after a rewrite).
        """
        notes: list[str] = []
        try:
            self._stat = None
            self._refresh()
        except StoreError as exc:
            raise VerifyError(self.path, [str(exc)]) from None
        if self._info["schema_version"] < 2:
            notes.append(
                "written by an older norep: no manifest or metadata checksums (deleted models and "
                "edited metadata cannot be detected); any write, or `norep store clean`, adds them"
            )
        real_root = os.path.realpath(self.path)
        problems: list[str] = []
        labels = self._verify_labels(real_root, problems)
        try:
            manifest = self._manifest()
        except StoreError as exc:
            raise VerifyError(self.path, [*problems, str(exc)]) from None
        n_arrays = 0
        for name, entry in manifest.items():
            n_arrays += self._verify_model(name, entry, labels, real_root, problems)
        leftovers = self._leftovers(manifest)
        superseded = [rel for rel in leftovers if _superseded(self.path, rel, manifest)]
        if problems:
            raise VerifyError(self.path, problems)
        return {
            "models": len(manifest),
            "arrays": n_arrays,
            "leftovers": leftovers,
            "superseded": superseded,
            "notes": notes,
        }

    def _verify_labels(self, real_root: str, problems: list[str]) -> dict[str, np.ndarray]:
        """Check every split's labels; append the problems, return the labels that passed."""
        labels: dict[str, np.ndarray] = {}
        for split, rec in self._info["splits"].items():
            p = self.path / "splits" / f"{split}.labels.npy"
            if not p.is_file():
                problems.append(f"labels of split {split!r} missing ({p})")
                continue
            if not os.path.realpath(p).startswith(real_root + os.sep):
                problems.append(f"labels of split {split!r}: {p} points outside the store")
                continue
            try:
                arr = self.labels(split, verify=False)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            if rec.get("sha256") and sha256_file(p) != rec["sha256"]:
                problems.append(f"labels of split {split!r}: {p} checksum mismatch (corrupted)")
                continue
            if rec.get("sha256"):
                _mark_verified(p, rec["sha256"])
            labels[split] = arr
            if not rec["multilabel"] and arr.size and int(arr.max()) >= len(self.class_names):
                problems.append(
                    f"labels of split {split!r} go up to {int(arr.max())} but the store has "
                    f"{len(self.class_names)} classes"
                )
        return labels

    def _verify_model(self, name: str, entry: dict, labels: dict, real_root: str, problems: list[str]) -> int:
        """Check model ``name`` (metadata and arrays); append the problems, return its number of arrays."""
        mdir = self.path / "models" / entry["dir"]
        if not os.path.realpath(mdir).startswith(real_root + os.sep):
            problems.append(f"model {name!r}: {mdir} points outside the store")
            return 0
        try:
            meta = self._load_meta(name, entry)
        except StoreError as exc:
            problems.append(str(exc))
            return 0
        for fname, frec in meta["files"].items():
            problem = self._verify_array(name, meta, mdir / fname, frec, labels, real_root)
            if problem is not None:
                problems.append(problem)
        return len(meta["files"])

    def _verify_array(self, name: str, meta: dict, p: Path, frec: dict, labels: dict, real_root: str) -> str | None:
        """The problem with array ``p`` of model ``name`` (presence, header, SHA-256, accuracy), or None."""
        rel = p.relative_to(self.path).as_posix()
        if not p.is_file():
            return f"model {name!r}: {rel} missing"
        if not os.path.realpath(p).startswith(real_root + os.sep):
            return f"model {name!r}: {rel} points outside the store"
        try:
            arr = load_npy(p, shape=frec["shape"], dtype=frec["dtype"], what=f"model {name!r}")
        except StoreError as exc:
            return str(exc)
        if sha256_file(p) != frec["sha256"]:
            return f"model {name!r}: {rel} checksum mismatch (corrupted)"
        _mark_verified(p, frec["sha256"])
        kind, split, _ = p.name.split(".")
        acc = (meta.get("accuracy") or {}).get(split)
        if kind == "logits" and split in labels and acc is not None:
            real = float(np.mean(_argmax_rows(arr) == labels[split]))
            if abs(real - acc) > 1e-9:
                return (
                    f"model {name!r}: meta.json says {split} accuracy {acc:.6g} but its logits "
                    f"give {real:.6g} (edited metadata or labels)"
                )
        return None

    def _leftovers(self, manifest: dict) -> list[str]:
        """Files and directories of interrupted or superseded writes (relative paths)."""
        found = []
        root = self.path / "models"
        referenced = {e["dir"] for e in manifest.values()}
        homes = {e["dir"].split("/")[0]: e["dir"] for e in manifest.values()}
        if root.is_dir():
            for home in sorted(root.iterdir()):
                if home.name not in homes:
                    found.append(f"models/{home.name}")
                    continue
                ref = homes[home.name]
                for p in sorted(home.iterdir()):
                    rel = f"{home.name}/{p.name}"
                    if ref == home.name:  # version-1 directory: subdirectories are leftovers
                        if p.is_dir() or p.name.endswith(".tmp"):
                            found.append(f"models/{rel}")
                    elif rel not in referenced:
                        found.append(f"models/{rel}")
        for sub in (self.path, self.path / "splits"):
            if sub.is_dir():
                found += [p.relative_to(self.path).as_posix() for p in sorted(sub.glob(".*.tmp"))]
        if (self.path / "splits").is_dir():
            wanted = {f"{s}.labels.npy" for s in self._info["splits"]}
            found += [
                f"splits/{p.name}"
                for p in sorted((self.path / "splits").iterdir())
                if not p.name.startswith(".") and p.name not in wanted
            ]
        return found

    def clean(self, *, dry_run: bool = False) -> list[str]:
        """Remove the leftovers of interrupted or superseded writes; return what was (or would be) removed.

        Safe while other processes write: a model being written (its lock held) is skipped, and nothing
        the manifest references is touched. A version-1 store is first upgraded (manifest added, and a
        model hidden by an interrupted overwrite of an older ``norep`` restored).
        """
        if not dry_run and self._info["schema_version"] < 2:
            with file_lock(self.path / ".lock", what=f"store {self.path}"):
                self._commit(lambda record: None)
        removed: list[str] = []
        self._refresh()
        for rel in self._leftovers(self._manifest()):
            p = self.path / rel
            parts = rel.split("/")
            if parts[0] == "models":
                home = parts[1]
                name = _home_name(home)
                try:
                    ctx = self._model_lock(name, timeout=0) if name is not None else contextlib.nullcontext()
                    with ctx:
                        self._refresh()
                        if rel not in self._leftovers(self._manifest()):
                            continue
                        if not dry_run:
                            _remove(p)
                except StoreError:
                    continue  # being written right now
            else:
                with file_lock(self.path / ".lock", what=f"store {self.path}"):
                    self._refresh()
                    if rel not in self._leftovers(self._manifest()):
                        continue
                    if not dry_run:
                        _remove(p)
            removed.append(rel)
        return removed

    def fingerprint(self) -> str:
        """A cheap identity of the store's current content: ``store.json`` and, for every file it refers
        to, the size, modification and change times and inode (no array is read).

        Any write through the file system changes it (the change time cannot be set back), so a
        verification recorded under a fingerprint still holds while the fingerprint is unchanged.
        """
        self._refresh()
        h = hashlib.sha256((self.path / _STORE_FILE).read_bytes())
        paths = [self.path / "splits" / f"{s}.labels.npy" for s in self._info["splits"]]
        for name, entry in sorted(self._manifest().items()):
            mdir = self.path / "models" / entry["dir"]
            paths.append(mdir / _MODEL_META)
            paths += [p for p, _ in self._model_arrays(name, entry)]
        for p in paths:
            try:
                s = os.stat(p)
                h.update(f"{p}\0{s.st_size}\0{s.st_mtime_ns}\0{s.st_ctime_ns}\0{s.st_ino}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
        return h.hexdigest()

    def _model_arrays(self, name: str, entry: dict) -> list[tuple[Path, str]]:
        mdir = self.path / "models" / entry["dir"]
        files = self._load_meta(name, entry)["files"]
        return [(mdir / f, files[f]["sha256"]) for f in sorted(files)]

    def _mark_all_verified(self, fp: str) -> None:
        """Record every array of the store (as verified under fingerprint ``fp``) as checked in this process."""
        files = [
            (self.path / "splits" / f"{s}.labels.npy", r["sha256"])
            for s, r in self._info["splits"].items()
            if r.get("sha256")
        ]
        for name, entry in self._manifest().items():
            files += self._model_arrays(name, entry)
        keys = []
        for p, sha in files:
            with contextlib.suppress(OSError):
                keys.append(_stat_key(p, sha))
        if self.fingerprint() == fp:  # nothing changed while the keys were taken
            _VERIFIED.update(keys)

    def verify_cached(self) -> dict:
        """:meth:`verify`, skipped when the store's :meth:`fingerprint` matches the last successful one.

        The record lives in ``$XDG_CACHE_HOME/norep/verified/`` (default ``~/.cache``), so read-only
        stores are covered too; a failure to write it only costs a re-verification next time.
        """
        try:
            fp = self.fingerprint()
        except (StoreError, OSError):
            return self.verify()  # raises, naming the problem
        cache = _verify_cache_file(self.path)
        with contextlib.suppress(OSError, ValueError):
            rec = json.loads(cache.read_text())
            if rec.get("fingerprint") == fp:
                self._mark_all_verified(fp)
                return rec["report"]
        report = self.verify()
        if self.fingerprint() == fp:
            with contextlib.suppress(OSError, StoreError):
                cache.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(
                    cache,
                    {"path": str(self.path.resolve()), "fingerprint": fp, "report": report, "verified_at": time.time()},
                )
        return report


def _superseded(root: Path, rel: str, manifest: dict) -> bool:
    """True when leftover ``rel`` is a complete version of a model older than its current one."""
    parts = rel.split("/")
    if len(parts) != 3 or parts[0] != "models" or not _VERSION_RE.match(parts[2]):
        return False
    current = next((e["dir"] for e in manifest.values() if e["dir"].split("/")[0] == parts[1]), None)
    if current is None or "/" not in current:
        return False
    older = int(parts[2][1:]) < int(current.split("/")[1][1:])
    return older and (root / rel / _MODEL_META).is_file()


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _verify_cache_file(path: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
    return base / "norep" / "verified" / f"{key}.json"
