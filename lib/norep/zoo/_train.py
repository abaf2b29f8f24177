"""Training loops of the embedded study: supervised (with augmentation, label smoothing, dropout,
distillation), SimCLR-style contrastive and reconstruction pretraining, L-BFGS linear heads, and the
scikit-learn learners. Deterministic for a seed on CPU (single process, fixed thread count).
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from norep.zoo._nets import MEAN, STD, to_tensor


@contextlib.contextmanager
def torch_threads(n: int = 2):
    """Use ``n`` intra-op threads inside training only, restoring the previous setting."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory instead of returning it to the system at once.

    Training allocates and frees the same activation-sized blocks at every step; by default glibc
    gives large blocks back to the kernel (``munmap``, heap trimming) and takes them again on the
    next step, about a million page faults per hundred steps here. Raising the mmap and trim
    thresholds (as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would) removes them: in
    the full zoo on 2 cores, system time fell from 136 s to 9 s and the linear-head models from
    about 12 s to 6 s each. Process-wide, so it is called by the
    ``norep zoo train`` command, not by the library. Returns False (and does nothing) where the C
    library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


PRECISIONS = ("auto", "fp32", "bf16")


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which bfloat16 convolutions are not native.
_ONEDNN_NO_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so that bf16 autocast is faster.

    A CPU capped to older kernels counts as the CPU it emulates: with ``ATEN_CPU_CAPABILITY=avx2`` or
    ``ONEDNN_MAX_CPU_ISA=AVX2`` (how an AVX2-only laptop is emulated here) the answer is ``False``.
    """
    import torch

    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    if isa in _ONEDNN_NO_BF16:
        return False
    cpu = torch.cpu
    return bool(
        getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
    )


def resolve_precision(precision: str = "auto") -> str:
    """The training precision to use: ``fp32``, or ``bf16`` (autocast: bfloat16 convolutions and matrix
    products, float32 weights, optimiser and loss). ``auto`` picks ``bf16`` where the CPU has native
    bfloat16 arithmetic (the small ResNets train about 1.2x faster there) and ``fp32`` elsewhere
    (emulated bf16 would be slower).

    Examples
    --------
    >>> from norep.zoo._train import resolve_precision
    >>> resolve_precision("fp32")
    'fp32'
    >>> resolve_precision("auto") in ("fp32", "bf16")
    True
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def _autocast(precision, device="cpu"):
    import torch

    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16' here, not {precision!r} (see resolve_precision)")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def resolve_device(device: str = "cpu") -> str:
    """The torch device to train on: ``cpu``, ``cuda``, or ``auto`` (``cuda`` when a GPU is visible, else ``cpu``).

    Examples
    --------
    >>> from norep.zoo._train import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    """
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to torch")
    return device


def _norm(x):
    return (x - MEAN) / STD


def _shift_flip(x, gen, shift=2, flip=True):
    """Per-sample random translation by up to ``shift`` pixels (zero fill) and horizontal flip."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    if shift:
        p = F.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        ar = torch.arange(28)
        rows = (dy[:, None] + ar)[:, :, None]
        cols = (dx[:, None] + ar)[:, None, :]
        x = p[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


def _simclr_view(x, gen, flip=True):
    """A strong random view for contrastive learning: shift 4, flip, contrast/brightness, cutout, noise."""
    import torch

    n = x.shape[0]
    x = _shift_flip(x, gen, shift=4, flip=flip)
    c = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen)
    b = 0.2 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    x = (x * c + b).clamp(0, 1)
    cy = torch.randint(0, 28, (n,), generator=gen)
    cx = torch.randint(0, 28, (n,), generator=gen)
    ar = torch.arange(28)
    mask = ((ar[None, :, None] - cy[:, None, None]).abs() < 5) & ((ar[None, None, :] - cx[:, None, None]).abs() < 5)
    use = (torch.rand(n, generator=gen) < 0.5)[:, None, None]
    x = x.masked_fill((mask & use).unsqueeze(1), 0.0)
    return x + 0.05 * torch.randn(x.shape, generator=gen)


def _schedule(step, total, warmup=0.1):
    """Linear warm-up then cosine decay to zero (multiplier of the peak learning rate)."""
    w = max(1, int(warmup * total))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


def _update(opt, loss, lr, progress):
    """One optimisation step at learning rate ``lr``: backward, step, tick the progress bar."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if progress is not None:
        progress.update(1)


def _optimizer(net, name, lr, wd):
    import torch

    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def fit_supervised(
    net,
    X,
    y,
    *,
    epochs,
    lr=0.1,
    batch_size=128,
    weight_decay=5e-4,
    label_smoothing=0.0,
    optimizer="sgd",
    shift=2,
    flip=True,
    seed=0,
    teacher=None,
    kd_weight=0.0,
    kd_temperature=4.0,
    precision="fp32",
    progress=None,
    device="cpu",
):
    """Train ``net`` on images ``X`` (uint8) and labels ``y`` with cross-entropy (paper Sec. 3.1 recipes).

    With ``teacher`` the loss is ``(1 - kd_weight) * CE + kd_weight * T^2 * KL(teacher_T || net_T)``
    (Hinton et al. 2015), the teacher seeing the same augmented batch. ``precision="bf16"`` runs the
    forward passes under bfloat16 autocast (see :func:`resolve_precision`); the loss is float32.
    """
    import torch
    import torch.nn.functional as F

    Xt = to_tensor(X)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    n = len(yt)
    gen = torch.Generator().manual_seed(seed)  # augmentation and order: drawn on the CPU on every device
    net.to(device)
    opt = _optimizer(net, optimizer, lr, weight_decay)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    step = 0
    if teacher is not None:
        teacher.to(device).eval()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for k in range(steps_per_epoch):
            idx = perm[k * batch_size : (k + 1) * batch_size]
            xb = _norm(_shift_flip(Xt[idx], gen, shift, flip)).to(device)
            with _autocast(precision, device):
                out = net(xb).float()
            loss = F.cross_entropy(out, yt[idx].to(device), label_smoothing=label_smoothing)
            if teacher is not None:
                with torch.no_grad(), _autocast(precision, device):
                    soft = F.log_softmax(teacher(xb).float() / kd_temperature, 1)
                kd = (
                    F.kl_div(F.log_softmax(out / kd_temperature, 1), soft, log_target=True, reduction="batchmean")
                    * kd_temperature**2
                )
                loss = (1 - kd_weight) * loss + kd_weight * kd
            _update(opt, loss, lr * _schedule(step, total), progress)
            step += 1
    net.eval()
    return net


def fit_simclr(
    net,
    X,
    *,
    epochs,
    lr=2e-3,
    batch_size=256,
    temperature=0.2,
    weight_decay=1e-4,
    flip=True,
    seed=0,
    precision="fp32",
    progress=None,
    device="cpu",
):
    """SimCLR-style contrastive pretraining of ``net.features`` (Chen et al. 2020): NT-Xent over two views."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    proj = nn.Sequential(nn.Linear(net.dim, 128), nn.ReLU(), nn.Linear(128, 64))
    params = nn.ModuleList([net, proj]).to(device)
    Xt = to_tensor(X)
    n = Xt.shape[0]
    gen = torch.Generator().manual_seed(seed)
    opt = _optimizer(params, "adamw", lr, weight_decay)
    steps_per_epoch = max(1, n // batch_size)
    total, step = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        params.train()
        perm = torch.randperm(n, generator=gen)
        for k in range(steps_per_epoch):
            xb = Xt[perm[k * batch_size : (k + 1) * batch_size]]
            v = torch.cat([_simclr_view(xb, gen, flip), _simclr_view(xb, gen, flip)]).to(device)
            with _autocast(precision, device):
                h = proj(net.features(_norm(v)))
            z = F.normalize(h.float(), dim=1)
            b = xb.shape[0]
            sim = z @ z.T / temperature
            sim.fill_diagonal_(-1e9)
            target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(device)
            loss = F.cross_entropy(sim, target)
            _update(opt, loss, lr * _schedule(step, total), progress)
            step += 1
    net.eval()
    return net


def _decoder(dim):
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(dim, 32 * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1),
    )


def _pretext_loss(task, net, extra, xb, gen, device, precision):
    """Loss of one batch ``xb`` (CPU, in [0, 1]) for a pretext ``task`` (see :func:`fit_pretext`)."""
    import torch
    import torch.nn.functional as F

    n = xb.shape[0]
    if task == "rotation":
        k = torch.randint(0, 4, (n,), generator=gen)
        x = torch.stack([torch.rot90(xi, int(ki), dims=(1, 2)) for xi, ki in zip(xb, k, strict=True)])
        with _autocast(precision, device):
            out = extra(net.features(_norm(x).to(device))).float()
        return F.cross_entropy(out, k.to(device))
    if task == "autoencoder":
        x = xb + 0.2 * torch.randn(xb.shape, generator=gen)
    elif task == "inpaint":  # half of the 16 7x7 patches hidden, as masked autoencoders do
        keep = (torch.rand(n, 1, 4, 4, generator=gen) < 0.5).float()
        x = xb * keep.repeat_interleave(7, 2).repeat_interleave(7, 3)
    else:
        raise ValueError(f"unknown pretext task {task!r}")
    with _autocast(precision, device):
        rec = extra(net.features(_norm(x).to(device))).float()
    return F.mse_loss(rec, _norm(xb).to(device))


def fit_pretext(
    net,
    X,
    *,
    task,
    epochs,
    lr=2e-3,
    batch_size=128,
    weight_decay=1e-4,
    seed=0,
    precision="fp32",
    progress=None,
    device="cpu",
):
    """Self-supervised pretraining of ``net.features`` on images ``X`` (no labels) with a pretext ``task``.

    ``autoencoder``: denoising reconstruction (Gaussian noise 0.2, MSE on pixels, Vincent et al. 2008);
    ``inpaint``: reconstruction of images with half of their 7x7 patches hidden (masked autoencoding,
    He et al. 2022); ``rotation``: which of 0/90/180/270 degrees an image was rotated by (Gidaris et al.
    2018). The decoder or rotation head is discarded afterwards.
    """
    import torch
    import torch.nn as nn

    Xt = to_tensor(X)
    n = Xt.shape[0]
    gen = torch.Generator().manual_seed(seed)
    extra = nn.Linear(net.dim, 4) if task == "rotation" else _decoder(net.dim)
    params = nn.ModuleList([net, extra]).to(device)
    opt = _optimizer(params, "adamw", lr, weight_decay)
    steps_per_epoch = max(1, n // batch_size)
    total, step = epochs * steps_per_epoch, 0
    for _ in range(epochs):
        params.train()
        perm = torch.randperm(n, generator=gen)
        for k in range(steps_per_epoch):
            xb = Xt[perm[k * batch_size : (k + 1) * batch_size]]
            loss = _pretext_loss(task, net, extra, xb, gen, device, precision)
            _update(opt, loss, lr * _schedule(step, total), progress)
            step += 1
    net.eval()
    return net


def predict(net, X, *, batch_size=2000):
    """(logits, embeddings) of ``net`` on uint8 images ``X``, float32 numpy arrays (on the net's device)."""
    import torch

    net.eval()
    device = next(net.parameters()).device
    Xt = to_tensor(X)
    logits, emb = [], []
    with torch.no_grad():
        for i in range(0, Xt.shape[0], batch_size):
            f = net.features(_norm(Xt[i : i + batch_size]).to(device))
            emb.append(f.cpu())
            logits.append(net.head(f).cpu())
    return torch.cat(logits).numpy().astype(np.float32), torch.cat(emb).numpy().astype(np.float32)


def fit_linear_head(net, X, y, *, l2=1e-4, max_iter=200, seed=0):
    """Fit ``net.head`` on frozen features by full-batch L-BFGS (multinomial logistic regression).

    This is the "linear head" of the paper's frozen-representation models (e.g. CLIP-S with L-BFGS).
    Features are standardised into the head (the mean/scale are folded into its weights).
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    _, feats = predict(net, X)
    f = torch.from_numpy(feats)
    mu, sd = f.mean(0), f.std(0) + 1e-6
    z = (f - mu) / sd
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    c = net.head.out_features
    W = torch.zeros(c, z.shape[1], requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ W.T + b, yt) + l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        net.head.weight.copy_(W / sd)
        net.head.bias.copy_(b - (W / sd) @ mu)
    return net


def sklearn_logits(kind, X_train, y_train, X_eval: dict, *, n_classes, seed=0, trees=60):
    """Fit a scikit-learn learner on pixels (``logreg``) or PCA-50 features (``knn``, ``forest`` with
    ``trees`` trees, ``bayes``: Gaussian naive Bayes) and return
    its log-probabilities as logits for each array of ``X_eval``.

    Probabilities are floored at 1e-4 (and renormalised) so that the log is finite for learners such as
    kNN and random forests that assign exact zeros.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    def flat(a):
        return np.asarray(a, dtype=np.float32).reshape(len(a), -1) / 255.0

    Xtr = flat(X_train)
    evals = {k: flat(v) for k, v in X_eval.items()}
    if kind == "logreg":
        model = LogisticRegression(C=0.05, max_iter=100, tol=1e-3)
    else:
        pca = PCA(50, random_state=seed).fit(Xtr)
        Xtr = pca.transform(Xtr)
        evals = {k: pca.transform(v) for k, v in evals.items()}
        if kind == "knn":
            model = KNeighborsClassifier(n_neighbors=10, weights="distance")
        elif kind == "forest":
            model = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, n_jobs=2, random_state=seed)
        elif kind == "bayes":
            model = GaussianNB()
        else:
            raise ValueError(f"unknown scikit-learn learner {kind!r}")
    model.fit(Xtr, y_train)
    out = {}
    for k, v in evals.items():
        p = np.zeros((len(v), n_classes))
        p[:, model.classes_] = model.predict_proba(v)
        p = np.maximum(p, 1e-4)
        out[k] = np.log(p / p.sum(1, keepdims=True)).astype(np.float32)
    return out
