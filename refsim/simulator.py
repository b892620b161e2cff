"""The clock-driven simulation loop and what it records.

Per step t: the encoder gives each Input node its value; nodes run in topological order; a
Neuron node advances its model one step (:mod:`refsim.neurons`) and passes on what its spikes
carry; an Output node integrates its input (Yue eq. 3). Layers whose inputs are all static
(direct coding, Li et al. section 3.1) are computed once and reused, which changes no value.

Backend ``"reference"``: dense NumPy, float32 parameters widened to float64, float64 membranes.
It is the oracle other backends and libraries are compared with.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .encoding import Encoder, PoissonEncoder
from .errors import EncodingError, RefsimError, ValidationError
from .graph import Graph
from .graph.nodes import Input, Neuron, Output
from .neurons import get_model
from .semantics import DEFAULT_PROFILE, get_profile

BACKENDS = ("reference", "event")
DTYPES = ("float64", "float32")


@dataclass
class Recorder:
    """What to keep. Memory is bounded in T unless per-step arrays are asked for.

    spikes : bool or list of layer names
        Per-step spike arrays: int8 counts or signs; int16 counts under ``spikes_per_step="multi"``;
        uint8 level masks for multithreshold.
    membranes : bool or list of layer names
        Per-step membranes (float64), post- or pre-reset as the profile's ``membrane_report``.
    counts : bool
        Total spikes per neuron over the run (int64).
    output : bool
        Output membranes after every step (float64); the final value is always kept.
    inputs : bool
        The encoded input of every step (float64), for ``refsim check``.

    Spike totals per layer per step (T, B) are always kept (they are small).
    """

    spikes: object = False
    membranes: object = False
    counts: bool = True
    output: bool = True
    inputs: bool = False

    def wants(self, what, layer) -> bool:
        sel = getattr(self, what)
        if isinstance(sel, bool):
            return sel
        return layer in sel


@dataclass
class Traces:
    """The result of a run (what the :class:`Recorder` kept) and how it was made."""

    T: int
    batch: int
    profile: str
    backend: str
    encoder: dict
    layers: dict = field(default_factory=dict)        # layer -> {"model", "shape", "neurons"}
    step_counts: dict = field(default_factory=dict)   # layer -> (T, B) int64
    counts: dict = field(default_factory=dict)        # layer -> (B, ...) int64
    spikes: dict = field(default_factory=dict)        # layer -> (T, B, ...) int8 / uint8
    membranes: dict = field(default_factory=dict)     # layer -> (T, B, ...) float64
    output: dict = field(default_factory=dict)        # output node -> (T, B, ...) float64
    final_output: dict = field(default_factory=dict)  # output node -> (B, ...) float64
    inputs: dict = field(default_factory=dict)        # input node -> (T, B, ...) float64
    dtype: str = "float64"                            # arithmetic of the run (event backend may use float32)

    def firing_rates(self) -> dict:
        """Mean spikes per neuron per step, per layer (over batch, neurons and steps)."""
        return {k: float(v.sum()) / (self.T * self.batch * self.layers[k]["neurons"]) for k, v in self.step_counts.items()}

    def table(self) -> str:
        """Per-layer spike counts and firing rates as a fixed-width text table."""
        rates = self.firing_rates()
        rows = [("layer", "model", "shape", "neurons", "spikes", "rate/step", "active %")]
        for k, info in self.layers.items():
            total = int(self.step_counts[k].sum())
            active = ""
            if k in self.counts:
                active = f"{100.0 * np.count_nonzero(self.counts[k]) / self.counts[k].size:.1f}"
            rows.append((k, info["model"], "x".join(map(str, info["shape"])), str(info["neurons"]), str(total),
                         f"{rates[k]:.4f}", active))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def save(self, path) -> None:
        """Write an npz (no pickle): arrays under ``<kind>/<layer>``, metadata as JSON text."""
        import json
        import os
        import tempfile
        arrays = {"meta": np.array(json.dumps(self.meta()))}
        for kind in ("step_counts", "counts", "spikes", "membranes", "output", "final_output", "inputs"):
            for k, v in getattr(self, kind).items():
                arrays[f"{kind}/{k}"] = v
        path = os.fspath(path)
        fd, tmp = tempfile.mkstemp(prefix=".refsim-", suffix=".npz", dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def meta(self) -> dict:
        return {"format": "refsim-traces", "format_version": 1, "producer": "refsim", "version": __version__, "T": self.T, "batch": self.batch, "profile": self.profile,
                "backend": self.backend, "dtype": self.dtype, "encoder": self.encoder,
                "layers": {k: {**v, "shape": list(v["shape"])} for k, v in self.layers.items()}}


class _Progress:
    def __init__(self, total, enabled, label="refsim"):
        self.total, self.enabled, self.label = total, enabled, label
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, done):
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last < 0.2:
            return
        self.last = now
        el = now - self.t0
        eta = el / done * (self.total - done) if done else 0.0
        width = 30
        fill = int(width * done / self.total)
        sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] step {done}/{self.total} "
                         f"{el:5.1f}s elapsed, {eta:5.1f}s left")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class Simulator:
    """Run a :class:`~refsim.graph.Graph` under a profile.

    Parameters
    ----------
    graph : Graph
    profile : str or Profile
        Named set of semantic choices (default ``"paper"``); nodes may override choices.
    backend : str
        ``"reference"`` (dense NumPy, float64; the oracle) or ``"event"``: layers whose input is
        spike-valued propagate each step's events with the Numba scatter kernels of
        :mod:`refsim.kernels.scatter` (cost follows the spike count); everything else runs the
        dense reference arithmetic. In float64 the event backend gives the same spikes and
        membranes as the reference, bit for bit, while every sum is exact (see that module).
        IF and ternary layers run a fused Numba pass (:mod:`refsim.kernels.fused`).
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
        if dtype not in DTYPES:
            from .errors import UnknownNameError
            raise UnknownNameError("dtype", dtype, DTYPES)
        if dtype != "float64" and backend != "event":
            raise ValidationError("Simulator(dtype)", "'float64' for the reference backend (it is the float64 oracle)", dtype)
        self.dtype = dtype
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ValidationError("Simulator(threads)", "None (Numba's default) or a positive integer", threads)
        self.threads = None if threads is None else int(threads)
        if not isinstance(graph, Graph):
            raise ValidationError("Simulator(graph)", "a refsim.graph.Graph", type(graph).__name__)
        if backend not in BACKENDS:
            from .errors import UnknownNameError
            raise UnknownNameError("backend", backend, BACKENDS)
        self.graph = graph
        self.profile = get_profile(profile)
        self.backend = backend
        self.params = {n: graph[n].make_params(self.profile) for n in graph.neurons}
        self._prepared = {}
        if backend == "event":
            from .kernels import scatter
            for name in graph.order:
                node = graph[name]
                if node.TYPE == "Conv2d" and _halo_conv(node):
                    self._prepared[name] = scatter.prepare_conv_s1(node.weight)
                elif node.TYPE == "Conv2d":
                    self._prepared[name] = scatter.prepare_conv(node.weight, node.groups)
                elif node.TYPE == "ConvTranspose2d":
                    self._prepared[name] = scatter.prepare_conv_transpose(node.weight)
                elif node.TYPE == "Linear":
                    self._prepared[name] = np.ascontiguousarray(node.weight.astype(np.float64).T)

    def event_plan(self, encoder: Encoder) -> dict:
        """For each layer that could scatter, whether the event backend does and why.

        Returns ``{node: (uses_events, reason, bound)}``. A layer scatters when the sums it makes
        are provably exact in float64, so that the scatter order and the reference's dense order
        give the same bits. Its input values lie on a grid ``k * 2**-s`` with ``|k| < 2**b``
        (spikes, counts, power-of-two thresholds and levels, sums and power-of-two averages of
        those); every float32 weight is an integer multiple of ``2**(e_min - 24)`` (``e_min`` the
        smallest ``frexp`` exponent of a nonzero weight), so every product and partial sum is an
        integer multiple of ``u = 2**(e_min - 24 - s)``, and no partial sum exceeds
        ``L1 * 2**(b - s)`` (``L1`` the largest sum of ``|w|`` into one output). All are exact when
        ``L1 * 2**(b - s) / u <= 2**53``, i.e. ``log2(L1) + b + 24 - e_min <= 53``. ``bound`` is
        the largest input magnitude the proof assumed; a step whose input reaches it (many
        spikes in one step under ``spikes_per_step="multi"``) runs dense.
        """
        if self.backend != "event":
            return {}
        g = self.graph
        grid = {}  # node -> (s, b): values are k * 2**-s with |k| < 2**b
        for name in g.order:
            node = g[name]
            t = node.TYPE
            ins = [grid.get(i) for i in node.inputs]
            if t == "Input":
                if getattr(encoder, "emits_spikes", False):
                    grid[name] = (0, 1)
            elif t == "Neuron":
                grid[name] = _neuron_grid(self.params[name], node.model)
            elif any(v is None for v in ins):
                continue
            elif t in ("Concat", "Flatten", "Dropout", "Upsample"):
                s_ = max(v[0] for v in ins)
                grid[name] = (s_, max(b + (s_ - s0) for s0, b in ins))
            elif t == "SumPool2d":
                area = node.kernel_size[0] * node.kernel_size[1]
                grid[name] = (ins[0][0], ins[0][1] + int(np.ceil(np.log2(area))))
            elif t == "AvgPool2d":
                area = node.kernel_size[0] * node.kernel_size[1]
                if area & (area - 1) == 0:
                    a = area.bit_length() - 1
                    grid[name] = (ins[0][0] + a, ins[0][1] + a)
        plan = {}
        for name in g.order:
            node = g[name]
            t = node.TYPE
            if t not in ("Conv2d", "ConvTranspose2d", "AvgPool2d", "SumPool2d", "Linear"):
                continue
            src = grid.get(node.inputs[0])
            if src is None:
                plan[name] = (False, "input is not spike-valued on an exact grid (analog or static)", None)
                continue
            s_, b = src
            bound = float(2.0 ** (b - s_))
            if t in ("AvgPool2d", "SumPool2d"):
                need = b + np.log2(node.kernel_size[0] * node.kernel_size[1])
                detail = f"input grid 2^-{s_}, {b} bits; window {node.kernel_size[0]}x{node.kernel_size[1]}"
            else:
                need, detail = _sum_bits(node, b, s_)
            if need <= 53.0 - 1e-9:
                plan[name] = (True, f"exact: sums need {need:.1f} of 53 bits ({detail})", bound)
            else:
                plan[name] = (False, f"sums may round: {need:.1f} bits needed > 53 ({detail})", None)
        return plan

    def event_nodes(self, encoder: Encoder) -> set:
        """Names of the layers the event backend scatters (see :meth:`event_plan`)."""
        return {n for n, (use, _, _) in self.event_plan(encoder).items() if use}

    def _event_forward(self, node, x, bound):
        """Event path for the layers the fused engine leaves to dense-in, dense-out kernels:
        strided, dilated or grouped convolutions and linear layers."""
        from .kernels import scatter
        if x.size and np.abs(x).max() >= bound:  # outside the grid the exactness proof assumed
            return node.forward([x])
        if node.TYPE == "Conv2d" and not _halo_conv(node):
            return scatter.conv2d_events(x, node, self._prepared[node.name], self.graph.shapes[node.name])
        if node.TYPE == "Linear":
            return scatter.linear_events(x, node, self._prepared[node.name])
        return node.forward([x])  # not reached: the engine covers the other planned layers

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
        for sel in (recorder.spikes, recorder.membranes):
            if not isinstance(sel, bool):
                unknown = [s for s in sel if s not in g.neurons and s not in g.outputs]
                if unknown:
                    from .errors import UnknownNameError
                    raise UnknownNameError("layer", unknown[0], g.neurons + g.outputs)

        static = set()
        for name in g.order:
            node = g[name]
            if isinstance(node, Input):
                if encoder.is_static:
                    static.add(name)
            elif not isinstance(node, (Neuron, Output)) and all(i in static for i in node.inputs):
                static.add(name)

        tr = Traces(T=int(T), batch=batch, profile=self.profile.name, backend=self.backend, encoder=encoder.describe(),
                    dtype=self.dtype)
        from .neurons._common import MembraneState
        states = {}
        for name in g.neurons + g.outputs:
            shape = (batch,) + g.shapes[name]
            states[name] = MembraneState(np.zeros(shape), np.zeros(shape))
            if name in self.params:
                model = g[name].model
                tr.layers[name] = {"model": model, "shape": g.shapes[name], "neurons": int(np.prod(g.shapes[name]))}
                tr.step_counts[name] = np.zeros((T, batch), dtype=np.int64)
                if recorder.counts:
                    tr.counts[name] = np.zeros(shape, dtype=np.int64)
                if recorder.wants("spikes", name):
                    multi = self.params[name].choices.spikes_per_step == "multi"
                    dt = np.uint8 if model == "multithreshold" else (np.int16 if multi else np.int8)
                    tr.spikes[name] = np.zeros((T,) + shape, dtype=dt)
            if recorder.wants("membranes", name):
                tr.membranes[name] = np.zeros((T,) + shape)
            if name in g.outputs and recorder.output:
                tr.output[name] = np.zeros((T,) + shape)
        cache = {}
        plan = self.event_plan(encoder)
        events = {n: b for n, (use, _, b) in plan.items() if use}
        engine = None
        saved_threads = None
        if self.backend == "event":
            import numba
            from ._event_engine import EventEngine
            if self.threads is not None:
                saved_threads = numba.get_num_threads()
                numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
            engine = EventEngine(self, batch, plan, tr, nbands=numba.get_num_threads())
        try:
            self._loop(T, tr, recorder, streams, states, cache, static, events, engine, progress)
        finally:
            if saved_threads is not None:
                numba.set_num_threads(saved_threads)
        for name in g.outputs:
            tr.final_output[name] = states[name].v.copy()
        return tr

    def _loop(self, T, tr, recorder, streams, states, cache, static, events, engine, progress):
        from .neurons._common import MembraneState
        g = self.graph
        batch = tr.batch
        bar = _Progress(T, progress, f"refsim {g.name}")
        for t in range(T):
            vals = {}
            for name in g.order:
                node = g[name]
                if name in cache:
                    vals[name] = cache[name]
                    continue
                if isinstance(node, Input):
                    vals[name] = next(streams[name])
                    if recorder.inputs:
                        if name not in tr.inputs:
                            tr.inputs[name] = np.zeros((T,) + vals[name].shape)
                        tr.inputs[name][t] = vals[name]
                elif engine is not None and name in engine.fused:
                    vals[name] = engine.neuron(name, vals[node.inputs[0]], t)
                elif isinstance(node, Neuron):
                    p = self.params[name]
                    m = get_model(node.model)
                    s, st = m.step(states[name], _dense(vals[node.inputs[0]]), p)
                    states[name] = st
                    vals[name] = m.emitted(s, p)
                    n_sp = m.spike_count(s)
                    tr.step_counts[name][t] = n_sp.reshape(batch, -1).sum(axis=1)
                    if name in tr.counts:
                        tr.counts[name] += n_sp
                    if name in tr.spikes:
                        if node.model == "multithreshold":
                            tr.spikes[name][t] = s
                        else:
                            lim = np.iinfo(tr.spikes[name].dtype)
                            if s.size and (s.max() > lim.max or s.min() < lim.min):
                                raise RefsimError(f"layer {name!r} step {t}: more than {lim.max} spikes in one step do not "
                                                  f"fit the {lim.dtype} spike record (found {int(s.max())}); record counts only")
                            tr.spikes[name][t] = s
                    if name in tr.membranes:
                        rep = p.choices.membrane_report
                        tr.membranes[name][t] = st.v_pre if rep == "pre-reset" else st.v
                elif isinstance(node, Output):
                    v = states[name].v + _dense(vals[node.inputs[0]])
                    states[name] = MembraneState(v, v)
                    vals[name] = v
                    if name in tr.output:
                        tr.output[name][t] = v
                    if name in tr.membranes:
                        tr.membranes[name][t] = v
                elif name in events:
                    out = engine.forward(node, vals) if engine is not None else None
                    if out is None:
                        out = self._event_forward(node, _dense(vals[node.inputs[0]]), events[name])
                    vals[name] = out
                else:
                    out = engine.concat(node, vals) if engine is not None and node.TYPE == "Concat" else None
                    if out is None:
                        out = node.forward([_dense(vals[i]) for i in node.inputs])
                    vals[name] = out
                if name in static:
                    cache[name] = vals[name]
            bar.update(t + 1)

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
            arr = np.asarray(x[name], dtype=np.float64)
            want = g.shapes[name]
            if arr.shape == want:
                arr = arr[None]
            if arr.shape[1:] != want:
                raise EncodingError(f"input {name!r}: expected shape (B, {', '.join(map(str, want))}) or {want}, "
                                    f"found {arr.shape}")
            out[name] = arr
        batches = {a.shape[0] for a in out.values()}
        if len(batches) != 1:
            raise EncodingError(f"inputs: expected one batch size, found {sorted(batches)}")
        return out


def _dense(val):
    """A node's value as a dense (B, ...) array (event-backend values convert themselves)."""
    return val if isinstance(val, np.ndarray) else val.dense()


def _halo_conv(node) -> bool:
    """Convolutions the fast halo-layout kernel handles: stride 1, dilation 1, one group."""
    return node.stride == (1, 1) and node.dilation == (1, 1) and node.groups == 1


def _sum_bits(node, b, s_):
    """Bits the exact sums of a weighted layer need (see :meth:`Simulator.event_plan`) and a detail text."""
    w = np.asarray(node.weight, dtype=np.float64)
    nz = np.abs(w[w != 0])
    if nz.size == 0:
        return 0.0, "all weights zero"
    e_min = int(np.frexp(nz)[1].min())
    a = np.abs(w)
    if node.TYPE == "Conv2d":
        l1 = a.sum(axis=(1, 2, 3)).max()
    elif node.TYPE == "ConvTranspose2d":  # (Cin, Cout/g, kh, kw): an output sums over Cin/g, kh, kw at most
        g = node.groups
        cin_g = w.shape[0] // g
        l1 = max(a[k * cin_g:(k + 1) * cin_g].sum(axis=(0, 2, 3)).max() for k in range(g))
    else:
        l1 = a.sum(axis=1).max()
    l1 *= 1.0 + 2.0 ** -40  # the float64 sum of |w| may round down by a few ulps
    need = float(np.log2(l1)) + b + 24 - e_min
    return need, f"input grid 2^-{s_}, {b} bits; smallest weight exponent {e_min}; largest L1 into one output {l1:.4g}"


def _neuron_grid(params, model):
    """(s, b) of a neuron layer's emitted values, or None when they are not on a narrow dyadic grid."""
    c = params.choices
    th = np.atleast_1d(params.threshold)
    count_bits = 8 if c.spikes_per_step == "multi" else 1  # multi: counts < 256 assumed, checked each step
    if model == "multithreshold":
        lv = np.concatenate([lvl * th for lvl in params.levels])
    elif c.spike_value == "threshold":
        lv = th
    else:
        return (0, count_bits)
    m, e = np.frexp(lv)
    if not np.all(m == 0.5):  # not all powers of two
        return None
    kmin, kmax = int(e.min()) - 1, int(e.max()) - 1  # values 2**k
    if model == "multithreshold":
        return (-kmin, kmax - kmin + 1 + (len(params.levels) > 1))
    return (-kmin, kmax - kmin + count_bits)


def simulate(graph, x, T, profile=DEFAULT_PROFILE, **kw) -> Traces:
    """Shorthand for ``Simulator(graph, profile).run(x, T, **kw)``."""
    return Simulator(graph, profile).run(x, T, **kw)
