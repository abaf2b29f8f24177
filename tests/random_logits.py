"""Random stores of correlated logits for the engine tests, with ties built in on request."""

import numpy as np


def random_store(rng, m, n, c, *, dtype=np.float16, quantum=None, scale=3.0, copies=0, flat=0.0, copy_from=0):
    """Labels and ``m`` models' correlated random logits.

    ``quantum`` rounds them to a grid (exact ties between classes); ``copies`` appends exact copies of
    earlier models, cycling from model ``copy_from`` on (ties between candidates); ``flat`` sets that
    share of rows to all-equal logits (every class tied).
    """
    y = rng.integers(0, c, size=n)
    shared = rng.normal(size=(n, c))
    out = []
    for _ in range(m):
        z = 0.6 * shared + 0.8 * rng.normal(size=(n, c)) + rng.uniform(0.3, 2.0) * np.eye(c)[y]
        z *= scale
        if quantum:
            z = np.round(z / quantum) * quantum
        if flat:
            z[rng.random(n) < flat] = 1.0
        out.append(z.astype(dtype))
    for i in range(copies):
        out.append(out[copy_from + i % (m - copy_from)].copy())
    return y, out
