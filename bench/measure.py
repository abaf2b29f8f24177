"""What a benchmark records besides its timings: peak memory, the machine, the load average."""

from __future__ import annotations


class Peak:
    """Peak resident set size of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self):
        import threading

        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, self._proc.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return False


def machine_lines() -> list[str]:
    """What the figures were measured on: CPU model and SIMD flags, the SIMD level numpy and torch
    dispatch to, OpenBLAS's core type, thread counts (threadpoolctl)."""
    import os
    import platform

    lines = []
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("unknown", "", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16") if f in flags]
    lines.append(f"# cpu: {model}; {os.cpu_count()} logical CPUs; flags: {' '.join(simd) or 'no AVX'}")
    try:
        import numpy as np
        from numpy._core._multiarray_umath import (
            __cpu_baseline__,
            __cpu_dispatch__,
            __cpu_features__,
        )

        found = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
        lines.append(
            f"# numpy {np.__version__}: SIMD baseline {' '.join(__cpu_baseline__[-1:])}, dispatch to "
            f"{' '.join(found) or 'none'}"
        )
    except Exception:  # noqa: BLE001 - informative only
        pass
    try:
        import torch

        lines.append(
            f"# torch {torch.__version__}: CPU capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads, CUDA {'available' if torch.cuda.is_available() else 'absent'}"
        )
    except Exception:  # noqa: BLE001
        pass
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(
                    f"# BLAS {info.get('internal_api')} {info.get('version')}: core type "
                    f"{info.get('architecture')}, {info.get('num_threads')} threads"
                )
    except Exception:  # noqa: BLE001
        pass
    env = {
        k: os.environ[k]
        for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE")
        if k in os.environ
    }
    if env:
        lines.append("# environment: " + " ".join(f"{k}={v!r}" for k, v in env.items()))
    return lines


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        import os

        return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def timed(fn, *a, **kw):
    import time

    with Peak() as pk:
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        dt = time.perf_counter() - t0
    return out, dt, pk.peak
