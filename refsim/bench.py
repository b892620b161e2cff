"""Benchmark harness behind ``refsim bench`` (issue 3). Measures; never asserts timings.

Per layer (3x3 stride-1 convolutions at the shapes of issue 3, input spike densities 1-25 %):
the event scatter kernel alone and with its per-step wrapper, the same convolution done densely by
NumPy (float32 im2col + BLAS, the best dense NumPy formulation we have) and, when torch is
installed, by torch CPU (float32, channels-last, same thread count), plus the machine's in-cache
add rate (a Numba loop adding a 2 KiB vector into another) so the kernel is reported as a
fraction of it. Whole network: the hippocampus-style U-Net (2 levels, 32/64 channels, 56x48) on
the reference and event backends. JIT: cold compile and warm (cached) start in subprocesses.
Memory: peak RSS of a run at T=200 and T=1000 in subprocesses.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

SHAPES = [(32, 56, 48), (64, 28, 24), (64, 128, 128), (128, 64, 64)]
DENSITIES = [0.01, 0.05, 0.10, 0.25]


def _best(fn, min_time):
    fn()
    best, total, n = float("inf"), 0.0, 0
    while total < min_time or n < 3:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, total, n = min(best, dt), total + dt, n + 1
    return best


def l1_add_rate(min_time):
    from numba import njit

    @njit(cache=False)
    def adds(a, b, reps):
        for _ in range(reps):
            for j in range(a.shape[0]):
                a[j] += 0.5 * b[j]

    a, b = np.zeros(256), np.ones(256)
    reps = 20000
    t = _best(lambda: adds(a, b, reps), min_time)
    return 256 * reps / t


def _dense_numpy32(x, w):
    from numpy.lib.stride_tricks import sliding_window_view
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(1, 2))  # C, H, W, 3, 3
    return np.tensordot(w, win, axes=([1, 2, 3], [0, 3, 4]))


def layer_benchmarks(quick, min_time):
    from .conformance.adapters.torch_peer import dense_conv3x3
    from .graph import Conv2d
    from .kernels import scatter as k
    rng = np.random.default_rng(0)
    rows = []
    shapes = SHAPES[:2] if quick else SHAPES
    for c, h, w in shapes:
        W = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
        node = Conv2d("c", ["x"], W, None, padding=1)
        wF = k.prepare_conv_s1(W)
        for d in DENSITIES:
            x = (rng.random((1, c, h, w)) < d).astype(np.float64)
            ys, xs, cs, vs = k.events_hwc(x[0])
            buf = np.zeros((h + 3, (w + 3) * c))
            t_kernel = _best(lambda: k._conv_scatter_s1(buf, ys, xs, cs, vs, wF, 1, 1, c), min_time)
            t_wrap = _best(lambda: k.conv2d_events_s1(x, node, wF, (c, h, w)), min_time)
            x32 = x[0].astype(np.float32)
            t_np = _best(lambda: _dense_numpy32(x32, W), min_time)
            peer = dense_conv3x3(W, x, threads=1)
            t_torch = None if peer is None else _best(peer, min_time)
            synops = len(ys) * 9 * c
            rows.append({"shape": f"{c}->{c} {h}x{w}", "density": d, "events": int(len(ys)), "synops": int(synops),
                         "kernel_ms": t_kernel * 1e3, "event_step_ms": t_wrap * 1e3, "numpy_dense_ms": t_np * 1e3,
                         "torch_dense_ms": None if t_torch is None else t_torch * 1e3,
                         "kernel_gsynops": synops / t_kernel / 1e9})
    return rows


def network_benchmark(quick):
    from . import models
    from .encoding import PoissonEncoder
    from .simulator import Recorder, Simulator
    g = models.hippocampus_unet(in_shape=(1, 56, 48), channels=(32, 64), seed=0)
    T = 20 if quick else 200
    out = []
    for label, scale in (("low activity", 0.02), ("high activity", 0.5)):
        x = np.random.default_rng(0).random((1, 1, 56, 48)) * scale
        res = {"activity": label, "T": T}
        for be in ("reference", "event"):
            sim = Simulator(g, "paper", be)
            sim.run(x, 2, PoissonEncoder(seed=0), Recorder(counts=False, output=False))  # warm-up / JIT
            t0 = time.perf_counter()
            tr = sim.run(x, T, PoissonEncoder(seed=0), Recorder(counts=False, output=False))
            res[f"{be}_ms_per_step"] = (time.perf_counter() - t0) / T * 1e3
            rates = tr.firing_rates()
            res["mean_rate"] = float(np.mean(list(rates.values())))
        res["speedup_event_vs_reference"] = res["reference_ms_per_step"] / res["event_ms_per_step"]
        out.append(res)
    return out


_JIT_SNIPPET = ("import time; t=time.perf_counter(); import numpy as np; from refsim.kernels import scatter as k; "
                "from refsim.graph import Conv2d; W=np.ones((2,2,3,3),np.float32); n=Conv2d('c',['x'],W,None,padding=1); "
                "x=np.ones((1,2,4,4)); k.conv2d_events_s1(x,n,k.prepare_conv_s1(W),(2,4,4)); "
                "k.conv2d_events(x,n,k.prepare_conv(W,1),(2,4,4)); print(time.perf_counter()-t)")


def jit_cost():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        run = lambda: float(subprocess.run([sys.executable, "-c", _JIT_SNIPPET], env=env, capture_output=True,
                                           text=True, check=True).stdout.strip())
        cold = run()
        warm = run()
    return {"cold_s": cold, "warm_s": warm}


_MEM_SNIPPET = ("import resource, numpy as np; from refsim import models; from refsim.simulator import Simulator, Recorder; "
                "from refsim.encoding import PoissonEncoder; g=models.hippocampus_unet(in_shape=(1,56,48), channels=(32,64)); "
                "Simulator(g,'paper','event').run(np.full((1,1,56,48),0.05), {T}, PoissonEncoder(seed=0), Recorder()); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def peak_memory(quick):
    out = {}
    for T in ((50, 200) if quick else (200, 1000)):
        r = subprocess.run([sys.executable, "-c", _MEM_SNIPPET.format(T=T)], capture_output=True, text=True, check=True)
        out[f"T={T}"] = int(r.stdout.strip()) / 1024.0
    return out


def run(quick=False, out_dir=None, echo=print):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    min_time = 0.05 if quick else 0.5
    t0 = time.perf_counter()
    res = {"machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
           "quick": quick, "threads": 1}
    from .conformance.adapters.torch_peer import torch_version
    res["machine"]["torch"] = torch_version()
    res["l1_add_rate_gadds"] = l1_add_rate(min_time) / 1e9
    echo(f"L1 add rate: {res['l1_add_rate_gadds']:.2f} G adds/s (one core)")
    res["layers"] = layer_benchmarks(quick, min_time)
    for r in res["layers"]:
        r["kernel_fraction_of_l1"] = r["kernel_gsynops"] / res["l1_add_rate_gadds"]
    res["network"] = network_benchmark(quick)
    res["jit"] = jit_cost()
    res["peak_rss_mib"] = peak_memory(quick)
    res["elapsed_s"] = time.perf_counter() - t0
    md = to_markdown(res)
    echo(md)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        name = "quick" if quick else "full"
        with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
            json.dump(res, fh, indent=1)
        with open(os.path.join(out_dir, f"{name}.md"), "w") as fh:
            fh.write(md + "\n")
        echo(f"written to {out_dir}/{name}.json and {name}.md")
    return res


def to_markdown(res):
    L = ["| layer | density | kernel G synops/s | % of L1 add rate | event step ms | numpy dense ms | torch dense ms | event vs torch |",
         "|---|---|---|---|---|---|---|---|"]
    for r in res["layers"]:
        td = r["torch_dense_ms"]
        ratio = f"{td / r['event_step_ms']:.2f}x" if td else "n/a"
        L.append(f"| {r['shape']} | {100 * r['density']:.0f} % | {r['kernel_gsynops']:.2f} | {100 * r['kernel_fraction_of_l1']:.0f} % "
                 f"| {r['event_step_ms']:.3f} | {r['numpy_dense_ms']:.3f} | {'n/a' if td is None else f'{td:.3f}'} | {ratio} |")
    L += ["", "| U-Net 32/64 56x48 | mean rate/step | reference ms/step | event ms/step | speed-up |", "|---|---|---|---|---|"]
    for n in res["network"]:
        L.append(f"| {n['activity']} (T={n['T']}) | {n['mean_rate']:.3f} | {n['reference_ms_per_step']:.2f} | "
                 f"{n['event_ms_per_step']:.2f} | {n['speedup_event_vs_reference']:.2f}x |")
    L += ["", f"L1 add rate {res['l1_add_rate_gadds']:.2f} G adds/s; JIT cold {res['jit']['cold_s']:.2f} s, warm "
          f"{res['jit']['warm_s']:.2f} s; peak RSS " + ", ".join(f"{k} {v:.0f} MiB" for k, v in res["peak_rss_mib"].items())
          + f"; torch {res['machine']['torch']}; 1 thread; total {res['elapsed_s']:.0f} s."]
    return "\n".join(L)
