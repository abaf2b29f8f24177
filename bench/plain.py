"""The plain reference of the analysis benchmark: deliberately straightforward numpy/scipy.

These are not the library's measures and must not become them: the benchmark times the fast path
against the obvious way to compute the same numbers (a whole softmax per model, one argmax per pair,
``numpy.histogram`` per outcome, every greedy candidate in full), and checks it against an
independent computation (the temperature by a bounded Brent search on the float64 NLL, where the
library runs a Newton iteration). The library's reference measures and their fast twins are checked
against each other by the test suite (``norep.engine.twins``).
"""

from __future__ import annotations


def reference_fit_temperature(logits, y) -> float:
    """Plain temperature fit: bounded Brent in log T on the float64 NLL of the whole matrix."""
    import math

    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    zy = z[np.arange(len(y)), y]

    def nll(u):
        t = math.exp(u)
        return float(np.mean(logsumexp(z / t, axis=1) - zy / t))

    res = minimize_scalar(
        nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-10, "maxiter": 500}
    )
    return math.exp(res.x)


def reference_probs(st, name, split, temperature):
    """Calibrated probabilities as the library defines them (the definition both paths share)."""
    from norep.measures.calibration import softmax

    return softmax(st.logits(name, split), temperature)


def reference_pair(y, pa, pb):
    """Counts of one pair, plainly: member argmaxes, the float64 mean ensemble's argmax."""
    import numpy as np

    ca = pa.argmax(axis=1) == y
    cb = pb.argmax(axis=1) == y
    ens = pa.astype(np.float64) + pb
    ens /= 2.0
    ce = ens.argmax(axis=1) == y
    return {
        "both_correct": int(np.sum(ca & cb)),
        "only_a": int(np.sum(ca & ~cb)),
        "only_b": int(np.sum(~ca & cb)),
        "both_wrong": int(np.sum(~ca & ~cb)),
        "ensemble_correct": int(np.sum(ce)),
        "converted": int(np.sum(ce & (ca != cb))),
    }


def reference_theta(y, pa, pb, edges):
    """Theta histogram counts of one pair, plainly (np.histogram per outcome)."""
    import numpy as np

    th = np.degrees(np.arctan2(pa.max(axis=1).astype(np.float64), pb.max(axis=1).astype(np.float64)))
    ca = pa.argmax(axis=1) == y
    cb = pb.argmax(axis=1) == y
    out = []
    for mask in (ca & cb, ca & ~cb, ~ca & cb, ~ca & ~cb):
        out.append(np.histogram(th[mask], bins=edges)[0])
    return np.stack(out)


def reference_greedy(y, get_probs, base, candidates, steps, ey, get_eval_probs):
    """Plain greedy selection: every candidate, every step, (sum + p) / K and an argmax.

    Returns (selected, accuracies, eval_accuracies, n_evaluations).
    """
    import numpy as np

    total = np.zeros(get_probs(base).shape, dtype=np.float64)
    total += get_probs(base)
    members = 1
    accs = [float(np.mean(total.argmax(axis=1) == y))]
    selected, available, evals = [], list(candidates), 0
    for _ in range(steps):
        best, best_acc = None, -1.0
        for name in available:
            trial = total + get_probs(name)
            trial /= members + 1
            acc = float(np.mean(trial.argmax(axis=1) == y))
            evals += 1
            if acc > best_acc:
                best, best_acc = name, acc
        total += get_probs(best)
        members += 1
        selected.append(best)
        accs.append(best_acc)
        available.remove(best)
    etotal = np.zeros(get_eval_probs(base).shape, dtype=np.float64)
    etotal += get_eval_probs(base)
    eaccs = [float(np.mean(etotal.argmax(axis=1) == ey))]
    for kk, name in enumerate(selected, start=2):
        etotal += get_eval_probs(name)
        eaccs.append(float(np.mean((etotal / kk).argmax(axis=1) == ey)))
    return selected, accs, eaccs, evals
