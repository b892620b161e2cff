"""The clock-driven simulation loop.

Per step t: the encoder gives each Input node its value; nodes run in topological order; a
Neuron node advances its model one step (:mod:`refsim.neurons`) and passes on what its spikes
carry; an Output node integrates its input (Yue eq. 3). Layers whose inputs are all static
(direct coding, Li et al. section 3.1) are computed once and reused, which changes no value.

The Simulator owns the clock, the encoders, that caching and the recorder; the arithmetic is the
backend's (:mod:`refsim.backends`): ``"reference"`` (dense NumPy, float64; the oracle) or
``"event"`` (Numba kernels over each step's spikes). What it records is a :class:`refsim.traces.Traces`.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import replace

import numpy as np

from . import _system
from ._progress import Progress
from .backends import BACKENDS, dense, get_backend
from .encoding import Encoder, PoissonEncoder
from .errors import EncodingError, UnknownNameError, ValidationError
from .graph import Graph
from .graph.nodes import Input, Neuron, Output
from .neurons import get_model
from .semantics import DEFAULT_PROFILE, get_profile
from .synops import SynopsCounter
from .traces import Recorder, TraceStream, Traces, check_trace_folder

DTYPES = ("float64", "float32")


#: what a run allocates beside refsim's arrays, counted once in every memory estimate: the BLAS
#: library's per-thread buffers, Numba's runtime, the allocator's own overhead (64 MiB; measured
#: well below that here, tests/unit/test_memory_estimates.py)
RUNTIME_BYTES = 64 << 20


class Simulator:
    """Run a :class:`~refsim.graph.Graph` under a profile.

    Parameters
    ----------
    graph : Graph
    profile : str or Profile
        Named set of semantic choices (default ``"paper"``); nodes may override choices.
    backend : str
        ``"reference"`` (dense NumPy, float64; the oracle) or ``"event"``: layers whose input is
        spike-valued propagate each step's events with Numba kernels (cost follows the spike
        count) where their sums are provably exact, fused passes advance the neuron layers, and
        everything else runs the dense reference arithmetic. :meth:`plan` says which node runs how
        and why. In float64 the event backend gives the reference's spikes and membranes bit for bit.
    dtype : ``"float64"`` (default) or ``"float32"``
        Event backend only. ``"float32"`` keeps the fused path (scattered currents, IF/ternary
        membranes, thresholds, weights, biases) in float32, for speed: half the memory traffic.
        Its sums round in the scatter's order, so membranes differ from the reference in the last
        float32 bits and a membrane within those bits of a threshold can fire one step early or
        late; everything after such a spike can differ. See ``docs/architecture.md``.
    threads : int, optional
        Numba threads for the event backend's parallel kernels during :meth:`run` (default:
        Numba's setting, ``NUMBA_NUM_THREADS``). Results do not depend on it, bit for bit.
    """

    def __init__(self, graph: Graph, profile=DEFAULT_PROFILE, backend: str = "reference", threads: int | None = None,
                 dtype: str = "float64"):
        if not isinstance(graph, Graph):
            raise ValidationError("Simulator(graph)", "a refsim.graph.Graph", type(graph).__name__)
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS)
        self.graph = graph
        self.profile = get_profile(profile)
        self.params = {n: graph[n].make_params(self.profile) for n in graph.neurons}
        self.engine = get_backend(backend)(graph, self.params, dtype=dtype, threads=threads)
        self.backend, self.dtype, self.threads = backend, dtype, self.engine.threads

    def plan(self, encoder: Encoder, recorder: Recorder | None = None) -> dict:
        """``{node: LayerPlan}``: how the backend runs each computing node, and why."""
        return self.engine.plan(encoder, recorder)

    def event_plan(self, encoder: Encoder) -> dict:
        """For each weighted or pooling layer, whether the event backend scatters it, why, and the
        input bound its exactness proof assumed: ``{node: (uses_events, reason, bound)}``
        (``{}`` on the reference backend). See :mod:`refsim.exactness`."""
        if self.backend != "event":
            return {}
        return {n: (p.how == "scatter", p.reason, p.bound) for n, p in self.plan(encoder).items()
                if self.graph[n].TYPE in ("Conv2d", "ConvTranspose2d", "AvgPool2d", "SumPool2d", "Linear")}

    def run(self, x, T: int, encoder: Encoder | None = None, recorder: Recorder | None = None,
            progress: bool = False, sample_offset: int = 0) -> Traces:
        """Simulate ``T`` steps.

        x : array (B, *input shape) or (input shape) for one sample, or a dict by Input node name.
        encoder : default Poisson binary with seed 0.
        """
        g = self.graph
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValidationError("run(T)", "a positive integer number of steps", T)
        encoder = encoder if encoder is not None else PoissonEncoder(seed=0)
        recorder = recorder if recorder is not None else Recorder()
        xs = self._inputs(x)
        batch = next(iter(xs.values())).shape[0]
        streams = {k: iter(encoder.stream(v, T, sample_offset)) for k, v in xs.items()}
        for sel in (recorder.spikes, recorder.membranes, recorder.current_max):
            if not isinstance(sel, bool):
                unknown = [s for s in sel if s not in g.neurons and s not in g.outputs]
                if unknown:
                    raise UnknownNameError("layer", unknown[0], g.neurons + g.outputs)

        static = set()
        for name in g.order:
            node = g[name]
            if isinstance(node, Input):
                if encoder.is_static:
                    static.add(name)
            elif not isinstance(node, (Neuron, Output)) and all(i in static for i in node.inputs):
                static.add(name)

        self._check_sizes(T, batch, recorder, xs)
        stream = None
        if recorder.stream_to is not None:
            check_trace_folder(recorder.stream_to, "Recorder(stream_to)")
            stream = TraceStream(recorder.stream_to, recorder.chunk_steps)
        try:
            tr = self._traces(T, batch, encoder, recorder, stream)
            tr = self._run(tr, T, batch, encoder, recorder, streams, static, progress)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
        return stream.finish(tr) if stream is not None else tr

    def record_bytes(self, T, batch, recorder) -> tuple[int, int]:
        """Bytes the recorder's arrays take for ``T`` steps and ``batch`` samples: ``(in memory, on
        disk)``; per-step arrays go to disk when the recorder streams."""
        g = self.graph
        mem = per_step = 0
        for name in g.neurons + g.outputs:
            n = batch * math.prod(g.shapes[name])
            if name in self.params:
                mem += 8 * T * batch + (8 * n if recorder.counts else 0) + (8 * n if recorder.values else 0)
                if recorder.wants("spikes", name):
                    multi = self.params[name].choices.spikes_per_step == "multi"
                    per_step += get_model(g[name].model).spike_dtype(multi).itemsize * T * n
            if recorder.wants("membranes", name):
                per_step += 8 * T * n
            if name in g.outputs and recorder.output:
                per_step += 8 * T * n
        if recorder.inputs:
            per_step += sum(8 * T * batch * math.prod(g.shapes[n]) for n in g.inputs)
        if recorder.synops:
            mem += 3 * 8 * T * batch * sum(1 for n in g.order if g[n].TYPE in ("Conv2d", "ConvTranspose2d", "AvgPool2d",
                                                                               "SumPool2d", "Linear"))
        if recorder.stream_to is not None:
            return mem, per_step
        return mem + per_step, 0

    def _dense_temporary_bytes(self, name, batch) -> int:
        """The largest temporary :mod:`refsim.graph.ops` allocates for node ``name`` (float64; Python
        integers, no wrap-around): a convolution's window matrix (the sliding-window view copied for
        the product, per group), a transposed convolution's uncropped output, both with the padded
        input and the result."""
        g = self.graph
        node = g[name]
        t = node.TYPE
        if t not in ("Conv2d", "ConvTranspose2d"):
            return 0
        cin, h, w = (int(v) for v in g.shapes[node.inputs[0]])
        cout, ho, wo = (int(v) for v in g.shapes[name])
        kh, kw = (int(v) for v in node.weight.shape[2:])
        groups = int(node.groups)
        if t == "Conv2d":
            pt, pb, pl, pr = (int(v) for v in node.pads)
            return 8 * batch * ((cin // groups) * kh * kw * ho * wo + cin * (h + pt + pb) * (w + pl + pr) + cout * ho * wo)
        full_h = (h - 1) * node.stride[0] + node.dilation[0] * (kh - 1) + 1 + node.output_padding[0]
        full_w = (w - 1) * node.stride[1] + node.dilation[1] * (kw - 1) + 1 + node.output_padding[1]
        return 8 * batch * (cout * full_h * full_w + 2 * (cout // groups) * h * w)

    def memory_estimate(self, T, batch, recorder) -> dict:
        """What a run of ``T`` steps on ``batch`` samples with ``recorder`` takes, in bytes, as the
        size checks count it before anything is allocated (Python integers, no wrap-around):

        * ``work``: per node, float64 arrays of its size for its value, for a neuron layer's
          membrane and pre-reset membrane (and synaptic current), and on the event backend its
          event arrays (two int32 indices and a value per possible event) and its scatter buffer;
          per input, the Poisson encoder's copies (|x|, sign(x), the draws, the comparison and the
          spikes); three float64 copies of the weights (the event backend's kernel layout, its run's
          copy, a dense product's passing cast); the largest temporary of the dense layer
          arithmetic, which every backend may run; and :data:`RUNTIME_BYTES` for what the
          libraries underneath allocate on their own;
        * ``records``: the recorder's arrays kept in memory;
        * ``disk``: what a streaming recorder writes.

        An upper bound of the run's peak, checked against the resident memory runs really add
        (tests/unit/test_memory_estimates.py, ``python -m validation.fuzz_memory``)."""
        g = self.graph
        mem, disk = self.record_bytes(T, batch, recorder)
        # value; event backend: its events (2 x int32 + value) and scatter buffer; reference: two
        # temporaries of the dense op (an Upsample repeats along each axis in turn)
        per_value = 4 if self.backend == "event" else 3
        words = 0
        for n in g.order:
            k = per_value
            if n in self.params:
                k += 3 if get_model(g[n].model).current else 2
            if g[n].TYPE == "Input":
                k += 6
            words += k * batch * math.prod(g.shapes[n])
        weights = sum(g[n].weight.size for n in g.order if getattr(g[n], "weight", None) is not None)
        work = 8 * (words + 3 * weights) + RUNTIME_BYTES
        work += max((self._dense_temporary_bytes(n, batch) for n in g.order), default=0)
        return {"work": work, "records": mem, "disk": disk}

    def _check_sizes(self, T, batch, recorder, xs):
        """Refuse, before anything is allocated, a run whose records cannot fit in memory (half the
        physical memory) or, when streamed, on the disk."""
        est = self.memory_estimate(T, batch, recorder)
        work, mem, disk = est["work"], est["records"], est["disk"]
        budget = _system.memory_budget()
        gib = lambda b: f"{b / 2**30:.3g} GiB"
        if work > budget:
            raise ValidationError("batch", f"a batch whose working memory fits: {batch} samples need about {gib(work)} "
                                  f"for this network's layers, the budget is {gib(budget)} (half the physical "
                                  "memory); simulate fewer samples at a time (refsim segment runs a volume in batches of slices)", batch)
        if work + mem > budget:  # the records live beside the working memory
            base = self.record_bytes(T, batch, replace(recorder, spikes=False, membranes=False, output=False,
                                                       inputs=False, stream_to=None))[0]
            hint = ("record fewer layers, or stream them to a trace folder (Recorder(stream_to=FOLDER); "
                    "refsim run streams when its traces output is a folder)" if work + base <= budget
                    else "use fewer steps or a smaller batch")
            raise ValidationError("T (steps)", f"a number of steps whose records fit in memory: T={T} x batch {batch} "
                                  f"needs {gib(mem)} beside {gib(work)} of working memory, the budget is {gib(budget)} "
                                  f"(half the physical memory); {hint}", T)
        if disk:
            parent = os.path.dirname(os.path.abspath(os.fspath(recorder.stream_to)))
            free = _system.disk_free(parent)
            if disk > free:
                raise ValidationError("T (steps)", f"a streamed recording that fits on the disk: T={T} x batch {batch} "
                                      f"needs {gib(disk)} in {parent}, {gib(free)} are free", T)

    def _run(self, tr, T, batch, encoder, recorder, streams, static, progress):
        g = self.graph
        synops = None
        if recorder.synops:
            synops = SynopsCounter(g, encoder, static, T, batch)
            tr.events, tr.acs, tr.macs = synops.events, synops.acs, synops.macs
        if progress and self.backend == "event" and not type(self.engine).warm:
            sys.stderr.write("refsim: event backend: loading the Numba kernels (compiled on first use, several "
                             "seconds; cached afterwards)\n")
            sys.stderr.flush()
        run = self.engine.start(batch, tr, self.plan(encoder, recorder))
        try:
            self._loop(T, tr, recorder, streams, static, run, progress, synops)
            for name in g.outputs:
                tr.final_output[name] = run.final_output(name)
        finally:
            run.close()
        return tr

    def _traces(self, T, batch, encoder, recorder, stream=None) -> Traces:
        """Empty traces with every array the recorder asked for (per-step arrays on disk when the
        run streams)."""
        g = self.graph

        def per_step(kind, name, shape, dt=np.float64):
            if stream is not None:
                return stream.array(kind, name, T, shape, dt)
            return np.zeros((T,) + shape, dtype=dt)

        tr = Traces(T=int(T), batch=batch, profile=self.profile.name, backend=self.backend, encoder=encoder.describe(),
                    dtype=self.dtype)
        for name in g.neurons + g.outputs:
            shape = (batch,) + g.shapes[name]
            if name in self.params:
                model = g[name].model
                tr.layers[name] = {"model": model, "shape": g.shapes[name], "neurons": math.prod(g.shapes[name])}
                tr.step_counts[name] = np.zeros((T, batch), dtype=np.int64)
                if recorder.counts:
                    tr.counts[name] = np.zeros(shape, dtype=np.int64)
                if recorder.values:
                    tr.values[name] = np.zeros(shape)
                if recorder.wants("spikes", name):
                    multi = self.params[name].choices.spikes_per_step == "multi"
                    tr.spikes[name] = per_step("spikes", name, shape, get_model(model).spike_dtype(multi))
            if recorder.wants("membranes", name):
                tr.membranes[name] = per_step("membranes", name, shape)
            if name in self.params and recorder.wants("current_max", name):
                tr.current_max[name] = np.array(-np.inf)
            if name in g.outputs and recorder.output:
                tr.output[name] = per_step("output", name, shape)
        if recorder.inputs:
            for name in g.inputs:
                tr.inputs[name] = per_step("inputs", name, (batch,) + g.shapes[name])
        return tr

    def _loop(self, T, tr, recorder, streams, static, run, progress, synops=None):
        g = self.graph
        bar = Progress(f"refsim {g.name}", T, progress)
        cache = {}
        B = tr.batch
        delays = {n: np.zeros((B,) + g.shapes[n]) for n in g.order if g[n].TYPE == "Delay"}
        for t in range(T):
            vals = {}
            for name in g.order:
                node = g[name]
                if name in cache:
                    vals[name] = cache[name]
                elif name in delays:  # a recurrent edge: its input's value of the previous step
                    vals[name] = delays[name]
                elif isinstance(node, Input):
                    vals[name] = next(streams[name])
                elif isinstance(node, Neuron):
                    if name in tr.current_max:
                        cur = dense(vals[node.inputs[0]])
                        if cur.size:
                            tr.current_max[name] = np.maximum(tr.current_max[name], cur.max())
                    vals[name] = run.neuron(name, vals[node.inputs[0]], t)
                elif isinstance(node, Output):
                    vals[name] = run.output(name, vals[node.inputs[0]], t)
                else:
                    vals[name] = run.node(node, vals)
                if name in static:
                    cache[name] = vals[name]
                if name in tr.inputs:  # every step, static (direct) inputs too
                    tr.inputs[name][t] = dense(vals[name])
            for name in delays:
                delays[name] = np.array(dense(vals[g[name].inputs[0]]), dtype=np.float64)
            if synops is not None:
                synops.step(t, vals, dense)
            bar.update(t + 1)

    def run_batches(self, x, T: int, batch: int, encoder: Encoder | None = None, recorder: Recorder | None = None,
                    progress: bool = False, echo=None):
        """Simulate the samples of ``x`` ``batch`` at a time: yields ``(start, traces)`` for each
        slice ``x[start:start + batch]`` in order. Each slice runs with ``sample_offset=start``, so
        every sample's encoded input, and every spike, is the same as in one run of all of ``x``
        (and the same whatever ``batch`` is). Memory holds one batch's records at a time.

        ``echo``: a function called with a line naming each batch when there are several (for
        example ``print``); ``progress``: each batch's step progress on stderr."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValidationError("run_batches(batch)", "a positive number of samples per run", batch)
        xs = self._inputs(x)
        n = next(iter(xs.values())).shape[0]
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            if echo is not None and n > batch:
                echo(f"    samples {start + 1}-{stop} of {n}")
            part = {k: v[start:stop] for k, v in xs.items()}
            yield start, self.run(part if isinstance(x, dict) else part[self.graph.inputs[0]], T, encoder=encoder,
                                  recorder=recorder, progress=progress, sample_offset=start)

    def _inputs(self, x):
        g = self.graph
        names = g.inputs
        if not isinstance(x, dict):
            if len(names) != 1:
                raise EncodingError(f"the graph has inputs {names}; pass a dict of arrays by input name")
            x = {names[0]: x}
        out = {}
        for name in names:
            if name not in x:
                raise EncodingError(f"input {name!r}: expected an array, found nothing (given: {list(x)})")
            raw = np.asarray(x[name])
            if raw.dtype.kind not in "biuf":
                raise EncodingError(f"input {name!r}: expected numbers (an integer or float array), found dtype "
                                    f"{raw.dtype}")
            arr = raw.astype(np.float64, copy=False)
            want = g.shapes[name]
            if arr.shape == want:
                arr = arr[None]
            if arr.shape[1:] != want:
                raise EncodingError(f"input {name!r}: expected shape (B, {', '.join(map(str, want))}) or {want}, "
                                    f"found {arr.shape}")
            if arr.shape[0] < 1:
                raise EncodingError(f"input {name!r}: expected at least one sample, found a batch of 0 (shape "
                                    f"{arr.shape})")
            out[name] = arr
        batches = {a.shape[0] for a in out.values()}
        if len(batches) != 1:
            raise EncodingError(f"inputs: expected one batch size, found {sorted(batches)}")
        return out


def simulate(graph, x, T, profile=DEFAULT_PROFILE, **kw) -> Traces:
    """Shorthand for ``Simulator(graph, profile).run(x, T, **kw)``."""
    return Simulator(graph, profile).run(x, T, **kw)


__all__ = ["Simulator", "simulate", "Recorder", "Traces", "BACKENDS", "DTYPES"]
