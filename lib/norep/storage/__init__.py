"""The prediction store: the one artifact between producers and analyses.

A store is a directory::

    STORE/
      store.json                          schema version, dataset, class names, splits, extras (base model,
                                          band, ...), the manifest of models and a checksum of itself
      splits/<split>.labels.npy           (N,) int64 class ids, or (N, K) uint8 multi-hot (multi-label splits)
      models/<model-dir>/v<k>/meta.json   metadata, temperature, accuracies, file checksums
      models/<model-dir>/v<k>/logits.<split>.npy       (N, C) float16/float32
      models/<model-dir>/v<k>/embeddings.<split>.npy   (N, D) float16/float32
      .lock, .locks/<model-dir>.lock      inter-process locks of writers (readers take none)

Guarantees (see also the book's store page):

* **One commit point.** A model version is written completely into a new ``v<k>`` directory; it
  becomes visible when ``store.json`` (written to a temporary file, fsynced, renamed) points to it.
  Adding, overwriting, merging into or removing a model is therefore one atomic step: after a crash
  (even ``SIGKILL``) or a full disk a reader sees either the old or the new model, never a mix.
  Unreferenced versions and temporary files are leftovers that :meth:`Store.clean` removes.
* **Writers.** Every read-modify-write holds a per-model lock (different models are written in
  parallel, e.g. a cluster job array) and, for the short commit, a store lock. Merging
  (``merge=True``, used by ``norep import`` and ``norep extract``) keeps every existing array and
  metadata field, checks each kept array's checksum first, and replaces an existing array only with
  ``overwrite=True``.
* **Readers.** ``store.json`` carries a manifest of the models with the SHA-256 of each model's
  ``meta.json`` and a checksum of itself; both files are schema-checked on every read, and a model's
  arrays are checked against their metadata (shape, dtype, size) when opened, memory-mapped.
  :meth:`Store.verify` also checks every array's SHA-256; :meth:`Store.verify_cached` skips that
  when no file changed since the last successful verification.
* arrays are plain ``.npy`` files, never pickles; files follow the umask.

Examples
--------
>>> import numpy as np, tempfile
>>> from norep.storage import Store
>>> d = tempfile.mkdtemp()
>>> st = Store.create(d + "/s", dataset="toy", class_names=["a", "b", "c"],
...                   splits={"calib": np.array([0, 1, 2, 0]), "test": np.array([2, 1, 0])},
...                   info={"base_model": "m1"})
>>> rng = np.random.default_rng(0)
>>> meta = st.add_model("m1", logits={"calib": rng.normal(size=(4, 3)), "test": np.eye(3)[[2, 1, 0]] * 5},
...                     meta={"category": "REINIT", "method": "toy model"})
>>> meta["accuracy"]
{'calib': 0.0, 'test': 1.0}
>>> st.models()[["name", "category", "test_accuracy"]]
  name category  test_accuracy
0   m1   REINIT            1.0
>>> st.base_model
'm1'
>>> _ = st.add_model("m1", embeddings={"test": np.ones((3, 2))}, meta={"category": "REINIT", "method": "toy model"},
...                  merge=True)
>>> sorted(st.meta("m1")["files"]), st.verify()["arrays"]
(['embeddings.test.npy', 'logits.calib.npy', 'logits.test.npy'], 3)
"""

from norep.storage._check import VerifyError
from norep.storage._io import StoreError
from norep.storage._schema import SCHEMA_VERSION
from norep.storage._store import Store

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "VerifyError"]
