"""Benchmark harness behind ``refsim bench``. Measures; never asserts timings. The torch, SpikingJelly
and snnTorch peers it measures against are in :mod:`.peers`.

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

import math
import json
import os
import platform
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import models
from ..backends.event import kernels as K
from ..conformance.check import check
from ..data import DEMO_MODEL, DEMO_VOLUMES
from ..encoding import PoissonEncoder, ReplayEncoder
from ..io import load_model
from ..io.nifti import prepare_slices, read_volume
from ..kernels import peak, threads
from ..kernels.threads import using
from ..semantics import NeuronChoices, get_profile
from ..simulator import Recorder, Simulator
from ..synops import dense_macs
from .peers import NETWORK_PEERS, dense_conv3x3, network_peer, onednn_implementations, torch_version

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


def _dense_numpy32(x, w):
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(1, 2))  # C, H, W, 3, 3
    return np.tensordot(w, win, axes=([1, 2, 3], [0, 3, 4]))


def layer_benchmarks(quick, min_time):
    """Per layer, one thread: the event backend's stride-1 scatter kernel alone (``kernel``) and one
    whole pipeline step of the layer (scatter + the fused IF pass that consumes the current), against
    the same convolution done densely by NumPy and torch."""
    rng = np.random.default_rng(0)
    rows = []
    shapes = SHAPES[:2] if quick else SHAPES
    flags = K.choice_flags("if", get_profile("paper").choices("if"))
    with threads.using(1):
        for c, h, w in shapes:
            W = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
            wF = K.prepare_conv_s1(W)
            v = np.zeros((1, h, w, c))
            th = np.full(c, 1e30)  # no spikes out: the pass costs the same, the layer stays comparable
            out = K.row_events(1, (c, h, w))
            rsum = np.zeros((1, h), np.int64)
            scratch = np.zeros((h, w, c + 1), np.uint8)
            for d in DENSITIES:
                x = (rng.random((1, c, h, w)) < d).astype(np.float64)
                ev = K.row_events(1, (c, h, w))
                K.rows_from_nchw(a=x, events=ev)
                buf = np.zeros((1, h + 3, w + 3, c))
                scatter = lambda: K.conv_s1_rows(buf=buf, events=ev, weights=wF, pad_top=1, pad_left=1, unit=True)
                t_kernel = _best(scatter, min_time)
                ev32 = ev[:2] + (ev[2].astype(np.float32),) + ev[3:]
                buf32, wF32 = buf.astype(np.float32), wF.astype(np.float32)
                t_kernel32 = _best(lambda: K.conv_s1_rows(buf=buf32, events=ev32, weights=wF32, pad_top=1, pad_left=1, unit=True),
                                   min_time)

                def step():
                    scatter()
                    K.neuron_rows(cur=buf, r0=2, c0=2, zero_cur=True, v=v, th=th, flags=flags, events=out, rsum=rsum,
                                  scratch=scratch)
                t_step = _best(step, min_time)
                x32 = x[0].astype(np.float32)
                t_np = _best(lambda: _dense_numpy32(x32, W), min_time)
                peer = dense_conv3x3(W, x, threads=1)
                t_torch = None if peer is None else _best(peer, min_time)
                events = int(ev[3].sum())
                synops = events * 9 * c
                rows.append({"shape": f"{c}->{c} {h}x{w}", "density": d, "events": events, "synops": int(synops),
                             "kernel_ms": t_kernel * 1e3, "event_step_ms": t_step * 1e3, "numpy_dense_ms": t_np * 1e3,
                             "torch_dense_ms": None if t_torch is None else t_torch * 1e3,
                             "kernel_gsynops": synops / t_kernel / 1e9, "kernel32_ms": t_kernel32 * 1e3,
                             "kernel32_gsynops": synops / t_kernel32 / 1e9})
    return rows


def _spike_train(x, T, seed=0):
    return np.stack(list(PoissonEncoder(seed=seed).stream(x, T)))


def _time_peer(res, graph, peer, threads, train, T):
    """Step ``peer`` (torch, SpikingJelly or snnTorch) through ``train`` (2 warm-up steps, then T timed)
    and store ``<peer>_<threads>t_ms_per_step`` in ``res``; nothing when the peer is not installed."""
    made = network_peer(graph, peer, threads=threads)
    if made is None:
        return
    step, reset = made
    for t in range(2):
        step(train[t])
    reset()
    t0 = time.perf_counter()
    for t in range(T):
        step(train[2 + t])
    res[f"{peer}_{threads}t_ms_per_step"] = (time.perf_counter() - t0) / T * 1e3


def network_benchmark(quick, threads=(1,)):
    """The hippocampus-style U-Net at low and high activity: refsim reference and event backends
    (per thread count), and the same network stepped by dense torch, SpikingJelly and snnTorch on
    the CPU with the same thread count, all driven by the same input spike train."""
    g = models.hippocampus_unet(in_shape=(1, 56, 48), channels=(32, 64), seed=0)
    T = 20 if quick else 200
    out = []
    for label, scale in (("low activity", 0.02), ("high activity", 0.5)):
        x = np.random.default_rng(0).random((1, 1, 56, 48)) * scale
        train = _spike_train(x, T + 2)
        res = {"activity": label, "T": T, "input_density": float(train.mean())}
        runs = [("reference", 1, "float64")] + [("event", n, dt) for n in threads for dt in ("float64", "float32")]
        for be, n, dt in runs:
            sim = Simulator(g, "paper", be, threads=n if be == "event" else None, dtype=dt)
            sim.run(x, 2, ReplayEncoder(train[:2]), Recorder(counts=False, output=False))  # warm-up / JIT
            t0 = time.perf_counter()
            tr = sim.run(x, T, ReplayEncoder(train[2:]), Recorder(counts=False, output=False))
            key = "reference" if be == "reference" else f"event{'32' if dt == 'float32' else ''}_{n}t"
            res[f"{key}_ms_per_step"] = (time.perf_counter() - t0) / T * 1e3
            res["mean_rate"] = float(np.mean(list(tr.firing_rates().values())))
        for peer in NETWORK_PEERS:
            for n in threads:
                _time_peer(res, g, peer, n, train, T)
        for n in threads:
            if f"torch_{n}t_ms_per_step" in res:  # without torch: "not measured", not nan
                res[f"speedup_float32_vs_torch_{n}t"] = res[f"torch_{n}t_ms_per_step"] / res[f"event32_{n}t_ms_per_step"]
            ev = res[f"event_{n}t_ms_per_step"]
            for peer in NETWORK_PEERS:
                if f"{peer}_{n}t_ms_per_step" in res:
                    res[f"speedup_vs_{peer}_{n}t"] = res[f"{peer}_{n}t_ms_per_step"] / ev
            libs = [res[k] for k in (f"spikingjelly_{n}t_ms_per_step", f"snntorch_{n}t_ms_per_step") if k in res]
            if libs:
                res[f"speedup_vs_faster_library_{n}t"] = min(libs) / ev
        res["speedup_event_vs_reference"] = res["reference_ms_per_step"] / res[f"event_{threads[0]}t_ms_per_step"]
        out.append(res)
    return out


def real_model_benchmark(quick, threads=(1,)):
    """The shipped trained spiking U-Net (refsim.data.DEMO_MODEL) at its real activity: a held-out MSD
    volume (all its slices as one batch) encoded by Poisson spikes, T=200 (20 with ``quick``); the
    event backend (each thread count, float64 and float32) against dense torch, SpikingJelly and
    snnTorch stepping the same network on the same input spikes; ms per step and s per volume."""
    g = load_model(DEMO_MODEL)
    x, _ = prepare_slices(read_volume(DEMO_VOLUMES[0][0]), g.shapes[g.inputs[0]][1:], 0, g.metadata.get("normalize", "unit"))
    T = 20 if quick else 200
    train = _spike_train(x, T + 2)
    res = {"model": os.path.basename(DEMO_MODEL), "volume": os.path.basename(DEMO_VOLUMES[0][0]), "slices": int(len(x)),
           "T": T, "input_density": float(train.mean())}
    for n in threads:
        for dt in ("float64", "float32"):
            sim = Simulator(g, "paper", "event", threads=n, dtype=dt)
            sim.run(x, 2, ReplayEncoder(train[:2]), Recorder(counts=False, output=False))
            t0 = time.perf_counter()
            tr = sim.run(x, T, ReplayEncoder(train[2:]), Recorder(counts=False, output=False))
            res[f"event{'32' if dt == 'float32' else ''}_{n}t_ms_per_step"] = (time.perf_counter() - t0) / T * 1e3
            res["mean_rate"] = float(np.mean(list(tr.firing_rates().values())))
        for peer in NETWORK_PEERS:
            _time_peer(res, g, peer, n, train, T)
    for k in [k for k in res if k.endswith("_ms_per_step")]:
        res[k.replace("_ms_per_step", "_s_per_volume")] = res[k] * T / 1e3
    return res


def add_rates(repeats=7):
    """The yardstick: float64 adds per second into an L1-resident array (``o[j] += w[j]``, and four
    terms per store as the scatter groups a pixel's events), Numba-compiled like the kernels, one
    thread; the median of ``repeats`` timings each."""
    n, reps = 256, 100_000
    rng = np.random.default_rng(0)
    o, ws = np.zeros(n), [rng.random(n) for _ in range(4)]
    peak._add_into(o, ws[0], 1)
    peak._add4_into(o, *ws, 1)

    def median(fn):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))
    return {"add_into_gadds": n * reps / median(lambda: peak._add_into(o, ws[0], reps)) / 1e9,
            "add4_into_gadds": 4 * n * reps / median(lambda: peak._add4_into(o, *ws, reps)) / 1e9}


class _NodeTimer:
    """Wraps an engine's run so that each node's calls are timed (the benchmark's per-layer table):
    ``calls[node]`` lists seconds per call (one call a step), ``stamps`` the clock at the end of
    each step's output; everything else passes through."""

    def __init__(self, run):
        self._run = run
        self.calls = {}
        self.stamps = []

    def __getattr__(self, name):
        return getattr(self._run, name)

    def _timed(self, name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.calls.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    def neuron(self, name, val, t):
        return self._timed(name, self._run.neuron, name, val, t)

    def node(self, node, vals):
        return self._timed(node.name, self._run.node, node, vals)

    def output(self, name, val, t):
        out = self._timed(name, self._run.output, name, val, t)
        self.stamps.append(time.perf_counter())
        return out


def _torch_layer(node, x, with_if, threads=1):
    """torch's float32 channels-last forward of one synaptic node on ``x`` (B, C, H, W), alone and
    (``with_if``) followed by an IF update of its output (v += I; s = v > 1; v -= s), as the dense
    peers step it: two callables, or None without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    cl = dict(memory_format=torch.channels_last)
    tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous(**cl)
    t = node.TYPE
    if t in ("Conv2d", "ConvTranspose2d"):
        w = torch.from_numpy(np.array(node.weight, dtype=np.float32)).contiguous(**cl)  # a copy: torch wants it writable
        b = None if node.bias is None else torch.from_numpy(np.asarray(node.bias, np.float32))
    if t == "Conv2d":
        pt, pb, pl, pr = node.pads
        op = lambda: F.conv2d(F.pad(tx, (pl, pr, pt, pb)) if (pt, pl) != (pb, pr) else tx, w, b, node.stride,
                              0 if (pt, pl) != (pb, pr) else (pt, pl), node.dilation, node.groups)
    elif t == "ConvTranspose2d":
        op = lambda: F.conv_transpose2d(tx, w, b, node.stride, node.padding, node.output_padding, node.groups,
                                        node.dilation)
    else:
        op = lambda: F.avg_pool2d(tx, node.kernel_size, node.stride, node.padding)
    with torch.no_grad():
        out = op()
    v = torch.zeros_like(out)

    def alone():
        with torch.no_grad():
            op()

    def step():
        with torch.no_grad():
            cur = op()
            if with_if:
                v.add_(cur)
                v.sub_((v > 1.0).to(v.dtype))
    return alone, step


def real_model_layers(quick):
    """Where a steady step of the shipped model goes, layer by layer (event backend, float64, 1
    thread, the demo volume's slices as one batch at their real activity, after a warm-up long
    enough for the deep layers to fire): each synaptic layer with the neuron layer it feeds, the
    path the plan chose, its input density, its share of the step, its synaptic operations per
    second, and torch's dense float32 time for the same layer and IF update."""
    g = load_model(DEMO_MODEL)
    x, _ = prepare_slices(read_volume(DEMO_VOLUMES[0][0]), g.shapes[g.inputs[0]][1:], 0, g.metadata.get("normalize", "unit"))
    warm, T = (10, 5) if quick else (60, 30)
    train = _spike_train(x, warm + T)
    sim = Simulator(g, "paper", "event", threads=1)
    start, timers = sim.engine.start, []

    def timed_start(*args, **kw):
        timers.append(_NodeTimer(start(*args, **kw)))
        return timers[-1]
    sim.engine.start = timed_start
    try:
        sim.run(x, warm + T, ReplayEncoder(train), Recorder(counts=False, output=False))
    finally:
        del sim.engine.start
    tm = timers[0]
    step_s = (tm.stamps[-1] - tm.stamps[warm - 1]) / T
    sec = {k: sum(v[-T:]) / T for k, v in tm.calls.items()}
    tr = sim.run(x, warm + T, ReplayEncoder(train), Recorder(counts=False, output=False, synops=True))
    plan = sim.plan(ReplayEncoder(train))
    B = len(x)
    macs = dense_macs(g)
    rows, convs = [], []  # convs: (row, what onednn_implementations needs for that convolution)
    for name in g.order:
        node = g[name]
        if node.TYPE not in ("Conv2d", "ConvTranspose2d", "AvgPool2d", "SumPool2d", "Linear"):
            continue
        cons = g.consumers[name]
        fed = cons[0] if len(cons) == 1 and g[cons[0]].TYPE == "Neuron" else None
        s = sec.get(name, 0.0) + (sec.get(fed, 0.0) if fed else 0.0)
        src = node.inputs[0]
        n_in = B * math.prod(g.shapes[src])
        synops = float(tr.acs[name][warm:].sum()) / T
        row = {"layer": name + (f" + {fed}" if fed else ""), "shape": f"{g.shapes[src][0]}->{g.shapes[name][0]} "
               f"{g.shapes[name][1]}x{g.shapes[name][2]}", "path": plan[name].kernel or plan[name].how,
               "input_density": float(tr.events[name][warm:].sum()) / T / n_in, "ms": s * 1e3, "share": s / step_s,
               "gsynops": synops / s / 1e9 if s else 0.0}
        dense_in = (np.random.default_rng(0).random((B,) + g.shapes[src]) < row["input_density"]).astype(np.float32)
        made = _torch_layer(node, dense_in, fed is not None)
        if made is not None:
            alone, step = made
            step()
            row["torch_ms"] = _best(step, 0.05 if quick else 0.3) * 1e3
            row["torch_op_ms"] = _best(alone, 0.05 if quick else 0.3) * 1e3
            if macs.get(name):
                row["torch_gmacs"] = macs[name] * B / row["torch_op_ms"] / 1e6
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                alone()
            row["torch_cpu_per_wall"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        rows.append(row)
        if node.TYPE in ("Conv2d", "ConvTranspose2d"):
            convs.append((row, _onednn_spec(node, (B,) + g.shapes[src])))
    impls = onednn_implementations([spec for _, spec in convs]) if convs else None
    for (row, _), impl in zip(convs, impls or []):
        row["torch_impl"] = impl
    return {"warm_up": warm, "T": T, "slices": B, "ms_per_step": step_s * 1e3, "rows": rows,
            "other_ms": step_s * 1e3 - sum(r["ms"] for r in rows)}


def _onednn_spec(node, shape):
    """The convolution ``node`` on an input of ``shape`` as :func:`.peers.onednn_implementations`
    takes it (padded as :func:`_torch_layer` pads it)."""
    spec = {"type": node.TYPE, "weight": list(node.weight.shape), "stride": list(node.stride),
            "dilation": list(node.dilation), "groups": node.groups}
    if node.TYPE == "Conv2d":
        pt, pb, pl, pr = node.pads
        if (pt, pl) != (pb, pr):
            shape = shape[:2] + (shape[2] + pt + pb, shape[3] + pl + pr)
            spec.update(padding=[0, 0], output_padding=[0, 0])
        else:
            spec.update(padding=[pt, pl], output_padding=[0, 0])
    else:
        spec.update(padding=list(node.padding), output_padding=list(node.output_padding))
    spec["shape"] = [int(v) for v in shape]
    return spec


def check_cost(quick):
    """``refsim check`` against the run that recorded its traces: the shipped model on the demo volume
    (every spiking layer's spikes and the input train recorded), event backend, 1 thread; seconds of
    the recording run and of the teacher-forced and free-running checks, and their ratios."""
    g = load_model(DEMO_MODEL)
    x, _ = prepare_slices(read_volume(DEMO_VOLUMES[0][0]), g.shapes[g.inputs[0]][1:], 0, g.metadata.get("normalize", "unit"))
    T = 10 if quick else 60
    rec = Recorder(spikes=True, inputs=True, counts=False, output=False)
    res = {"model": os.path.basename(DEMO_MODEL), "slices": int(len(x)), "T": T}
    with using(1):
        sim = Simulator(g, "paper", "event", threads=1)
        sim.run(x[:2], 2, PoissonEncoder(seed=0), rec)  # warm-up / JIT
        t0 = time.perf_counter()
        tr = sim.run(x, T, PoissonEncoder(seed=0), rec)
        res["run_s"] = time.perf_counter() - t0
        for mode in ("teacher-forced", "free-running"):
            t0 = time.perf_counter()
            rep = check(g, tr, "paper", mode=mode)
            res[f"{mode}_s"] = time.perf_counter() - t0
            res[f"{mode}_ratio"] = res[f"{mode}_s"] / res["run_s"]
            res[f"{mode}_conforms"] = bool(rep["conforms"])
    return res


def neuron_pass(min_time):
    """ns per neuron per step of the fused IF pass (32 x 56 x 48 layer, on 1 and on all threads), for the
    paper's choice set (its branch-free loop) and a general one (fire-then-integrate, zero reset)."""
    B, C, H, W = 1, 32, 56, 48
    rng = np.random.default_rng(0)
    cur = np.zeros((B, H + 2, W + 2, C))
    v = rng.random((B, H, W, C)) * 0.9
    th = np.ones(C)
    events = K.row_events(B, (C, H, W))
    rsum = np.zeros((B, H), np.int64)
    scratch = np.zeros((B * H, W, C + 1), np.uint8)
    out = {}
    choice_sets = (("paper", NeuronChoices()), ("general", NeuronChoices(order="fire-then-integrate", reset="zero")))
    for n in sorted({1, threads.available()}):
        with threads.using(n):
            for label, choices in choice_sets:
                flags = K.choice_flags("if", choices)
                t = _best(lambda: K.neuron_rows(cur=cur, r0=1, c0=1, zero_cur=True, v=v, th=th, flags=flags,
                                                events=events, rsum=rsum, scratch=scratch), min_time)
                out[f"{label}_ns_per_neuron_{n}t"] = t / (B * C * H * W) * 1e9
    return out


def event_profile(T=50):
    """Where the event backend's step goes (U-Net, low activity, one thread): seconds per step by
    function, from cProfile (so the Python glue shows as well as the kernels)."""
    g = models.hippocampus_unet(in_shape=(1, 56, 48), channels=(32, 64), seed=0)
    x = np.random.default_rng(0).random((1, 1, 56, 48)) * 0.02
    train = _spike_train(x, T + 2)
    sim = Simulator(g, "paper", "event", threads=1)
    sim.run(x, 2, ReplayEncoder(train[:2]), Recorder(counts=False, output=False))
    prof = cProfile.Profile()
    prof.enable()
    t0 = time.perf_counter()
    sim.run(x, T, ReplayEncoder(train[2:]), Recorder(counts=False, output=False))
    total = time.perf_counter() - t0
    prof.disable()
    st = pstats.Stats(prof).stats
    rows = {}
    for (fn, _, func), (_, _, tt, _, _) in st.items():
        key = func if ("/refsim/kernels/" in fn.replace(os.sep, "/") and not fn.endswith("threads.py")) else "NumPy calls" if fn.startswith("~") else "Python glue"
        rows[key] = rows.get(key, 0.0) + tt
    prof_ms = {k: v / T * 1e3 for k, v in sorted(rows.items(), key=lambda kv: -kv[1])}
    return {"ms_per_step": total / T * 1e3, "by_function_ms_per_step": prof_ms}


_JIT_SNIPPET = ("import time; t=time.perf_counter(); import numpy as np; from refsim import models; "
                "from refsim.simulator import Simulator; from refsim.encoding import PoissonEncoder; "
                "g=models.hippocampus_unet(in_shape=(1,8,8), channels=(2,4)); "
                "Simulator(g,'paper','event').run(np.full((1,1,8,8),0.5), 2, PoissonEncoder(seed=0)); "
                "print(time.perf_counter()-t)")


def jit_cost():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        run = lambda: float(subprocess.run([sys.executable, "-c", _JIT_SNIPPET], env=env, capture_output=True,
                                           text=True, check=True).stdout.strip())
        cold = run()
        warm = run()
    return {"cold_s": cold, "warm_s": warm}


_MEM_SNIPPET = ("import resource, sys, tempfile, os, numpy as np; from refsim import models; "
                "from refsim.simulator import Simulator, Recorder; from refsim.encoding import PoissonEncoder; "
                "g=models.hippocampus_unet(in_shape=(1,56,48), channels=({c})); d=tempfile.mkdtemp(); "
                "rec={rec}; Simulator(g,'paper','event').run(np.full((1,1,56,48),0.2), {T}, PoissonEncoder(seed=0), rec); "
                "import shutil; shutil.rmtree(d); st=open('/proc/self/status').read() if os.path.exists('/proc/self/status') else ''; "
                "hwm=[l.split()[1] for l in st.splitlines() if l.startswith('VmHWM:')]; "
                "print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")

#: (label, U-Net channels, Recorder expression) of the peak-memory rows
MEMORY_CASES = (
    ("U-Net 32/64, counts only", "32,64", "Recorder()"),
    ("U-Net 8/16, spikes + membranes of every layer streamed to a trace folder", "8,16",
     "Recorder(spikes=True, membranes=True, output=True, stream_to=os.path.join(d, 'tr'))"),
    ("U-Net 8/16, spikes + membranes of every layer in memory", "8,16",
     "Recorder(spikes=True, membranes=True, output=True)"),
)


def peak_memory(quick):
    """Peak resident memory (MiB) of a fresh process per case and T (``VmHWM`` on Linux, which
    starts afresh at exec, unlike ``ru_maxrss``, inherited from the parent). In-memory
    recording is measured at the shorter T only (it grows linearly: about 8.5 bytes per neuron and
    step)."""
    Ts = (50, 500) if quick else (200, 5000)
    out = {}
    for label, ch, rec in MEMORY_CASES:
        for T in Ts:
            if "in memory" in label and T != Ts[0]:
                continue
            r = subprocess.run([sys.executable, "-c", _MEM_SNIPPET.format(T=T, c=ch, rec=rec)], capture_output=True,
                               text=True, check=True)
            out[f"{label}; T={T}"] = int(r.stdout.strip()) / 1024.0
    return out


def run(quick=False, out_dir=None, echo=print):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    min_time = 0.05 if quick else 0.5
    t0 = time.perf_counter()
    res = {"machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
           "quick": quick, "threads": 1}
    res["machine"]["torch"] = torch_version()
    res["add_rates"] = add_rates()
    echo("yardstick, float64 adds/s into L1: {:.1f} G (one term per store), {:.1f} G (four)".format(
        res["add_rates"]["add_into_gadds"], res["add_rates"]["add4_into_gadds"]))
    res["layers"] = layer_benchmarks(quick, min_time)
    res["neuron_pass"] = neuron_pass(min_time)
    echo("fused IF pass, ns/neuron: " + ", ".join(f"{k} {v:.2f}" for k, v in res["neuron_pass"].items()))
    res["network"] = network_benchmark(quick, threads=(1,) if quick else (1, 2))
    res["real_model"] = real_model_benchmark(quick, threads=(1,) if quick else (1, 2))
    res["real_model_layers"] = real_model_layers(quick)
    res["check"] = check_cost(quick)
    echo("refsim check / recording run: teacher-forced {:.2f}x, free-running {:.2f}x".format(
        res["check"]["teacher-forced_ratio"], res["check"]["free-running_ratio"]))
    res["event_profile"] = event_profile(20 if quick else 100)
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
    thr = sorted({int(k.split("_")[1][:-1]) for n in res["network"] for k in n if k.startswith("event_") and k.endswith("_ms_per_step")})
    L = []
    rm = res.get("real_model")
    if rm:
        L += [f"The shipped trained model ({rm['model']}) on held-out volume {rm['volume']} ({rm['slices']} slices as one "
              f"batch, T={rm['T']}, Poisson input density {100 * rm['input_density']:.1f} %, mean rate "
              f"{rm.get('mean_rate', float('nan')):.4f} spikes/neuron/step): ms per step (s per volume).", "",
              "| threads | event | event float32 | torch dense | SpikingJelly | snnTorch | event vs torch | event vs faster library |",
              "|---|---|---|---|---|---|---|---|"]
        for t in thr:
            c = lambda k: (f"{rm[k + '_ms_per_step']:.2f} ({rm[k + '_s_per_volume']:.2f})" if k + "_ms_per_step" in rm
                           else "n/a")
            ev = rm.get(f"event_{t}t_ms_per_step")
            tor = rm.get(f"torch_{t}t_ms_per_step")
            libs = [rm[k] for k in (f"spikingjelly_{t}t_ms_per_step", f"snntorch_{t}t_ms_per_step") if k in rm]
            L.append(f"| {t} | {c(f'event_{t}t')} | {c(f'event32_{t}t')} | {c(f'torch_{t}t')} | {c(f'spikingjelly_{t}t')} | "
                     f"{c(f'snntorch_{t}t')} | {f'{tor / ev:.2f}x' if tor and ev else 'not measured'} | "
                     f"{f'{min(libs) / ev:.2f}x' if libs and ev else 'not measured'} |")
    lay = res.get("real_model_layers")
    if lay:
        L += ["", f"Where a step of the shipped model goes (event backend, float64, 1 thread, {lay['slices']} slices, "
              f"steps {lay['warm_up'] + 1}-{lay['warm_up'] + lay['T']}, {lay['ms_per_step']:.1f} ms per step): each synaptic layer with the neuron layer it feeds. "
              "torch: the same layer dense in float32 channels-last on 1 thread, with the IF update when a neuron layer "
              "follows; torch G MAC/s counts the layer's synapses (borders excluded) over its time alone; "
              "CPU/wall above 1 would mean torch used more than one thread; torch kernel: the implementation oneDNN "
              "names for that convolution in its verbose log (a Winograd kernel would say so).", "",
              "| layer | shape | path | input density | ms | share of step | G synops/s | torch ms | event vs torch "
              "| torch G MAC/s | torch CPU/wall | torch kernel |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in lay["rows"]:
            tm = r.get("torch_ms")
            num = lambda key, fmt: format(r[key], fmt) if key in r else "n/a"
            vs = "n/a" if tm is None else format(tm / r["ms"], ".2f") + "x"
            L.append(f"| {r['layer']} | {r['shape']} | {r['path']} | {100 * r['input_density']:.1f} % | {r['ms']:.2f} | "
                     f"{100 * r['share']:.0f} % | {r['gsynops']:.2f} | {num('torch_ms', '.2f')} | {vs} | "
                     f"{num('torch_gmacs', '.1f')} | {num('torch_cpu_per_wall', '.2f')} | {r.get('torch_impl', 'n/a')} |")
        L.append(f"| everything else (concatenations, the encoder, glue) | | | | {lay['other_ms']:.2f} | "
                 f"{100 * lay['other_ms'] / lay['ms_per_step']:.0f} % | | | | | | |")
    ar = res.get("add_rates")
    if ar:
        L += ["", f"Yardstick (this CPU, Numba, one thread, median of 7): {ar['add_into_gadds']:.1f} G float64 adds/s for "
              f"`o[j] += w[j]` in L1 (the scatter's operation for one event), {ar['add4_into_gadds']:.1f} G adds/s with "
              "four terms per store (four events of one pixel)."]
    L += ["", "Per layer, one thread. kernel: the scatter alone, float64 (the exact mode) and float32 (the float32 mode); "
         "event step: float64 scatter + the fused IF pass over the layer; event vs torch: torch conv time / float64 "
         "scatter time (the same convolution).", "",
         "| layer | density | kernel G synops/s | float32 kernel G synops/s "
         "| scatter ms | event step ms | numpy dense ms | torch dense ms | event vs torch | float32 vs torch |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["layers"]:
        td = r["torch_dense_ms"]
        ratio = f"{td / r['kernel_ms']:.2f}x" if td else "n/a"
        ratio32 = f"{td / r['kernel32_ms']:.2f}x" if td else "n/a"
        L.append(f"| {r['shape']} | {100 * r['density']:.0f} % | {r['kernel_gsynops']:.2f} "
                 f"| {r['kernel32_gsynops']:.2f} "
                 f"| {r['kernel_ms']:.3f} | {r['event_step_ms']:.3f} | {r['numpy_dense_ms']:.3f} | {'n/a' if td is None else f'{td:.3f}'} | {ratio} | {ratio32} |")
    L += ["", "| U-Net 32/64 56x48 | threads | input density | mean rate/step | reference | event | event float32 | torch dense "
          "| SpikingJelly | snnTorch | event vs torch | event vs faster library | float32 vs torch |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda d, k: f"{d[k]:.2f}" if k in d else "not measured"
    fx = lambda d, k: f"{d[k]:.2f}x" if k in d else "not measured"
    for n in res["network"]:
        for t in thr:
            L.append(f"| {n['activity']} (T={n['T']}) | {t} | {100 * n['input_density']:.1f} % | {n['mean_rate']:.4f} | "
                     f"{f(n, 'reference_ms_per_step') if t == 1 else '-'} | {f(n, f'event_{t}t_ms_per_step')} | "
                     f"{f(n, f'event32_{t}t_ms_per_step')} | "
                     f"{f(n, f'torch_{t}t_ms_per_step')} | {f(n, f'spikingjelly_{t}t_ms_per_step')} | "
                     f"{f(n, f'snntorch_{t}t_ms_per_step')} | {fx(n, f'speedup_vs_torch_{t}t')} | "
                     f"{fx(n, f'speedup_vs_faster_library_{t}t')} | {fx(n, f'speedup_float32_vs_torch_{t}t')} |")
    L.append("")
    L.append("(ms per step; reference backend on one thread; peers are float32 torch on the CPU, same input spikes.)")
    ck = res.get("check")
    if ck:
        L += ["", f"refsim check of the shipped model's traces ({ck['slices']} slices, T={ck['T']}, every spiking layer "
              f"recorded, event backend, 1 thread): recording run {ck['run_s']:.1f} s; teacher-forced check "
              f"{ck['teacher-forced_s']:.1f} s ({ck['teacher-forced_ratio']:.2f}x the run), free-running "
              f"{ck['free-running_s']:.1f} s ({ck['free-running_ratio']:.2f}x); both conform: "
              f"{ck['teacher-forced_conforms'] and ck['free-running_conforms']}."]
    if "neuron_pass" in res:
        np_ = res["neuron_pass"]
        L += ["", "Fused IF pass, ns per neuron per step (32x56x48 layer): " + "; ".join(
            f"{k.split('_ns')[0]} choices {k.rsplit('_', 1)[1].replace('t', ' thread(s)')}: {v:.2f}" for k, v in np_.items()) + "."]
    if "event_profile" in res:
        ep = res["event_profile"]
        L += ["", f"Where an event step goes (U-Net, low activity, 1 thread, cProfile, {ep['ms_per_step']:.2f} ms/step):", "",
              "| function | ms/step |", "|---|---|"]
        L += [f"| {k} | {v:.3f} |" for k, v in ep["by_function_ms_per_step"].items()]
    L += ["", f"JIT cold {res['jit']['cold_s']:.2f} s, warm {res['jit']['warm_s']:.2f} s; torch {res['machine']['torch']}; "
          f"per-layer rows on 1 thread; total {res['elapsed_s']:.0f} s.", "",
          "Peak resident memory of a fresh process (event backend, one 56x48 input, Poisson density 0.2):", "",
          "| run | peak RSS MiB |", "|---|---|"]
    L += [f"| {k} | {v:.0f} |" for k, v in res["peak_rss_mib"].items()]
    return "\n".join(L)
