"""``refsim check``: compare another implementation's recorded traces with the equations, layer by layer.

**Teacher-forced** (default): every spiking layer is driven by the *recorded* spikes of the layers
before it (and the recorded input train), and each neuron's reset follows its own recorded spikes
(the neuron model's own step with ``forced`` spikes, :func:`refsim.neurons._common.ordered_step`),
so one disagreement cascades neither through the layers nor in time and every faulty layer is
found. At each step refsim recomputes the membrane in float64 and takes its own decision.

**Free-running**: refsim runs the whole network from the recorded input train alone, every layer
driven by refsim's own spikes and keeping its own membranes. Where a decision differs by a
rounding tie, the tie is counted and that neuron is re-synchronised to the recorded decision (its
reset and what it sends on follow the recorded spike), so a tie never makes a later layer or step
"diverge". The first real divergence is reported at its (step, layer, neuron); the other layers of
that step are still compared (driven by the recorded spikes of the diverging neurons, so only
independent divergences count), and the pass stops after that step, since the two runs
legitimately separate from there.

**Rounding ties**: where the decisions differ, the difference is a rounding tie when the exact
membrane lies within a rigorous bound of the decision boundary (the other side's float32
accumulation could have landed on the other side), and a divergence otherwise. The bound is per
neuron. It grows each step by ``gamma_n * sum|terms| + u * (|v_prev| + |I| + |v_new|)`` (u = 2^-24,
n = fan-in + 1; Higham's bound for recursive summation in any order), *except* on steps where every
term is a multiple of a granularity g and every magnitude stays below 2^24 g: then every float32
partial sum in any order is exact and nothing is added. It **restarts** where the other side's
membrane is known exactly: after a hard reset (both sides set the membrane to 0; with
fire-then-integrate only this step's input rounding remains) and where both sides clamp to the
membrane floor ``v_min``. The detection floor this gives is measured in ``docs/check.md``.

**Leaky layers** (``lif``, ``cubalif``) get a bound that decays with the leak and adds a few
roundings of the step's magnitudes (:func:`_leaky_bound`; derived in docs/check.md, "Leaky layers and
recurrent edges"). **Recurrent** ``Delay`` nodes give their input's value of the previous step.

**Explanations**: each diverging layer is re-run teacher-forced with every single alternative
choice (:data:`ALTERNATIVES`) at once: the layer's input current is computed once per step from
the recorded spikes of the layers feeding it, each alternative advances its own membranes on it,
and an alternative is dropped at its first divergence. The choices left at the end reproduce the
layer and explain the divergence. (Up to a free-running pass's first divergence, every layer's
input equals the teacher-forced one, so the same search explains both modes.)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ModelFormatError, RefsimError, UnknownNameError
from .._progress import Progress
from ..backends.event import kernels as EK
from ..backends.event.plan import halo_conv
from ..exactness import POOLS, U32, WEIGHTED, abs_node, fan_in, granularity, layer_exactness, param_granularity, \
    value_grids
from ..graph.nodes import Input, Neuron, Output
from ..neurons import get_model
from ..neurons._common import broadcast_channels
from ..semantics import DEFAULT_PROFILE, RESET_TIMINGS, SPIKE_TRAIN_CHOICES, get_profile
from ..traces import first_bad_spike

#: every single-choice change a divergence may be explained by (from :data:`refsim.semantics.SPIKE_TRAIN_CHOICES`)
ALTERNATIVES = [(f, v) for f, values in SPIKE_TRAIN_CHOICES.items() for v in values]
MODES = ("teacher-forced", "free-running")


@dataclasses.dataclass
class LayerReport:
    layer: str
    model: str
    compared: int = 0
    ties: int = 0
    divergences: int = 0
    first: dict | None = None
    explained_by: list = dataclasses.field(default_factory=list)
    explanation_searched: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)


def _params(graph, prof, overrides=None):
    params = {}
    for n in graph.neurons:
        node = graph[n]
        if overrides and n in overrides:
            node = node.replace(choices={**node.choices, **overrides[n]})
        params[n] = node.make_params(prof)
    return params


def _require(graph, traces):
    """Every entry check reads is there, with the model's names, layouts, T and batch, before any work.
    Any graph refsim runs can be checked (a Delay's shape is its input's: the graph checks that)."""
    T, B = traces.T, traces.batch
    for key, v in (("T", T), ("batch", B)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ModelFormatError(f"meta {key!r}", "a positive integer", repr(v), file="traces")
    for kind, names, what in (("spikes", graph.neurons, "per-step spikes of every spiking layer"),
                              ("inputs", graph.inputs, "the recorded input train of every Input node")):
        entries = getattr(traces, kind)
        for n in names:
            if n not in entries:
                others = sorted(set(entries) - set(names))
                hint = f" (the file has {kind}/{', '.join(others)}: traces of another model?)" if others else ""
                raise ModelFormatError(f"{kind}/{n}", what, "nothing" + hint, file="traces")
            a = entries[n]
            want = (T, B) + tuple(graph.shapes[n])
            if not isinstance(a, np.ndarray) or a.shape != want:
                raise ModelFormatError(f"{kind}/{n}", f"shape {want} (T, batch, *node shape; meta T={T}, batch={B})",
                                       f"shape {getattr(a, 'shape', type(a).__name__)}", file="traces")
            if kind == "spikes":
                if a.dtype.kind not in "biuf":
                    raise ModelFormatError(f"{kind}/{n}", "spikes as integers or integral floats (counts, signs or "
                                           "level masks)", f"dtype {a.dtype}", file="traces")
                bad = first_bad_spike(a, graph[n].model)
                if bad is not None:
                    idx, value, want = bad
                    raise ModelFormatError(f"{kind}/{n}", want, f"{value!r} at (step, sample, neuron) {idx}",
                                           file="traces")
            if kind == "inputs" and (a.dtype.kind not in "biuf" or not np.all(np.isfinite(a))):
                raise ModelFormatError(f"{kind}/{n}", "finite numbers", f"dtype {a.dtype} with non-finite values"
                                       if a.dtype.kind == "f" else f"dtype {a.dtype}", file="traces")


def _recorded(traces, name, model, t):
    return traces.spikes[name][t].astype(np.uint8 if get_model(model).bitmask else np.int32)


def _event_forwards(node, shape):
    """``f(x, ax)``: ``(node's value of x, the |weights| node's value of ax)`` for dense inputs, through
    the event backend's kernels (events in, dense out; one event conversion when ``ax is x``), or
    None when the node has no such kernel."""
    t = node.TYPE
    if t == "Conv2d" and halo_conv(node):
        w, aw, an = EK.prepare_conv_s1(node.weight), EK.prepare_conv_s1(np.abs(node.weight)), abs_node(node)
        return lambda x, ax: _pair(x, ax, lambda a, e: EK.conv2d_events_s1(a, node, w, shape, events=e),
                                   lambda a, e: EK.conv2d_events_s1(a, an, aw, shape, events=e))
    if t == "ConvTranspose2d":
        w, aw, an = EK.prepare_conv_transpose(node.weight), EK.prepare_conv_transpose(np.abs(node.weight)), abs_node(node)
        return lambda x, ax: _pair(x, ax, lambda a, e: EK.conv_transpose2d_events(a, node, w, shape, events=e),
                                   lambda a, e: EK.conv_transpose2d_events(a, an, aw, shape, events=e))
    if t in POOLS:
        f = lambda a, e: EK.pool_events(a, node, shape, t == "AvgPool2d", events=e)
        return lambda x, ax: _pair(x, ax, f, f)
    if t == "Conv2d":
        w, aw, an = EK.prepare_conv(node.weight, node.groups), EK.prepare_conv(np.abs(node.weight), node.groups), abs_node(node)
        return lambda x, ax: (EK.conv2d_events(x, node, w, shape), EK.conv2d_events(ax, an, aw, shape))
    if t == "Linear":
        w = np.ascontiguousarray(node.weight.astype(np.float64).T)
        aw, an = np.abs(w), abs_node(node)
        return lambda x, ax: (EK.linear_events(x, node, w), EK.linear_events(ax, an, aw))
    return None


def _pair(x, ax, f, af):
    """``(f(x), af(ax))`` on the row events of ``x``, converted once when ``ax is x``."""
    e = EK.dense_events(x)
    return f(x, e), af(ax, e if ax is x else EK.dense_events(ax))


def _spiking_inputs(graph, traces) -> bool:
    """Whether every recorded input value is a spike (-1, 0 or 1): then the inputs lie on the
    grid the exactness analysis assumes for an encoder that emits spikes."""
    for name in graph.inputs:
        rec = traces.inputs[name]
        for t in range(traces.T):
            a = np.asarray(rec[t])
            if not np.all((a == 0) | (np.abs(a) == 1)):
                return False
    return True


class _Values:
    """Per step, the value of every node computed from recorded spikes (or, free-running, from
    refsim's own), with what the rounding bound needs: |terms| sums, granularity and fan-in.

    Weighted and pooling layers whose float64 sums are provably exact on spike-valued inputs
    (:func:`refsim.exactness.layer_exactness`, the event plan's own test) run the event backend's
    kernels for both the values and the |terms| sums (the same node with |weights| on |inputs|):
    the recorded spikes are events, so the cost follows the spike count, and exact sums give the
    dense arithmetic's bits in any order. A step whose input exceeds the magnitude the proof
    assumed, and every other layer, runs the dense reference arithmetic. Only the nodes that feed
    a neuron layer are computed (an Output's value is not checked)."""

    def __init__(self, graph, params=None, spiking_input=False, needed=None):
        self.g = graph
        self.gparam = {n: param_granularity(graph[n]) for n in graph.order}
        self.abs_nodes = {}  # weighted node -> the same node with |weights| (built once)
        self.vals, self.absv, self.gran, self.fan = {}, {}, {}, {}
        self.needed = needed
        #: Delay node -> (value, |value|, granularity, fan-in) of its input on the previous step
        self.delayed = {n: None for n in graph.order if graph[n].TYPE == "Delay"}
        self.fast = {}  # node -> (input bound, f(x, |x|) -> (value, |terms| sum))
        if params is not None:
            grid = value_grids(graph, params, spiking_input=spiking_input)
            for name in graph.order:
                node = graph[name]
                if node.TYPE not in WEIGHTED + POOLS or (needed is not None and name not in needed):
                    continue
                ex = layer_exactness(node, grid)
                fwd = _event_forwards(node, graph.shapes[name]) if ex.exact else None
                if fwd is not None:
                    self.fast[name] = (ex.bound, fwd)

    def start(self):
        self.vals, self.absv, self.gran, self.fan = {}, {}, {}, {}

    def end_step(self):
        """Keep what each Delay node gives on the next step: its input's value of this step."""
        for name in self.delayed:
            i = self.g[name].inputs[0]
            if i in self.vals:
                self.delayed[name] = (self.vals[i], self.absv[i], self.gran[i], self.fan[i])

    def put(self, name, value):
        absv = value if (value.size == 0 or value.min() >= 0) else np.abs(value)  # spikes: |x| is x
        self.vals[name], self.absv[name], self.gran[name], self.fan[name] = value, absv, granularity(value), 0

    def compute(self, name):
        node = self.g[name]
        if isinstance(node, Output) or (self.needed is not None and name not in self.needed):
            return
        if name in self.delayed:  # a recurrent edge: the input's value of the previous step (zeros at 0)
            prev = self.delayed[name]
            if prev is None:
                z = np.zeros(self.vals[next(iter(self.vals))].shape[:1] + self.g.shapes[name])
                prev = (z, z, np.inf, 0)
            self.vals[name], self.absv[name], self.gran[name], self.fan[name] = prev
            return
        fast = self.fast.get(name)
        ax = self.absv[node.inputs[0]]
        if fast is not None and (ax.size == 0 or float(ax.max()) < fast[0]):  # within the exactness proof
            self.vals[name], self.absv[name] = fast[1](self.vals[node.inputs[0]], ax)
        else:
            self.vals[name] = node.forward([self.vals[i] for i in node.inputs])
            if name not in self.abs_nodes:
                self.abs_nodes[name] = abs_node(node)
            self.absv[name] = self.abs_nodes[name].forward([self.absv[i] for i in node.inputs])
        gi = min(self.gran[i] for i in node.inputs)
        gp = self.gparam[name]
        self.gran[name] = gi * gp if np.isfinite(gp) and np.isfinite(gi) else min(gi, gp)
        # errors of chained roundings add: gamma_a + gamma_b <= gamma_(a+b)
        self.fan[name] = fan_in(node) + max(self.fan[i] for i in node.inputs)

    def input_of(self, node):
        i = node.inputs[0]
        return self.vals[i], self.absv[i], self.gran[i], self.fan[i]


def _theta_granularity(p, model):
    return granularity(np.outer(p.levels, np.atleast_1d(p.threshold))) if get_model(model).bitmask \
        else granularity(p.threshold)


def _absmax(a) -> float:
    """max |a| (0 for an empty array), without an |a| temporary."""
    return max(float(a.max()), -float(a.min()), 0.0) if a.size else 0.0


def _gamma(n):
    return n * U32 / (1 - n * U32)


#: roundings a float32 peer may make on a leaky membrane in one step beyond the input's sum: the
#: decay multiply, the input, bias and reset additions, and one more that covers refsim's own
#: float64 roundings (each 2^-29 of a float32 one) and a peer's extra operation (SpikingJelly's
#: ``v + (x - v) / tau`` takes three; the sum of magnitudes below bounds each of its partial results)
LEAK_ROUNDINGS = 5


def _advance(model, p, state, bound_prev, x, ax, g_in, n_terms, forced=None):
    """One step of a checked neuron layer: refsim's own decision on the float64 membrane, the
    state after the reset of the ``forced`` spikes (own spikes when None), the rounding bound of
    the decision membrane and the bound carried to the next step (restarted where both sides'
    membranes are known to be equal). ``state``: the model's own state; ``bound_prev``: the carried
    bound (for a cubalif layer, a pair: membrane and synaptic current).
    Returns ``(s_ours, state, decision_bound, carried_bound)``."""
    m = get_model(model)
    c = p.choices
    s_ours, st = m.step(state, x, p, forced=forced)
    used = s_ours if forced is None else forced
    pre, v_new = st.v_pre, st.v
    if m.leaks:
        decision, step_err, carried_i = _leaky_bound(m, p, state, st, bound_prev, x, ax, n_terms)
    else:
        v_prev = state.v
        g = min(g_in, granularity(v_prev), _theta_granularity(p, model))
        big = max(_absmax(pre), _absmax(ax), _absmax(v_prev), _absmax(v_new),
                  float(np.max(p.threshold)) * (sum(p.levels) if m.bitmask else 1.0))
        if (not np.isfinite(g)) or big < 2.0 ** 24 * g:  # every float32 partial sum exact this step
            step_err, decision = 0.0, bound_prev
        else:
            step_err = _gamma(n_terms) * ax + U32 * (np.abs(x) + np.abs(v_new))
            decision = bound_prev + U32 * np.abs(v_prev) + step_err
    carried = decision
    if c.reset == "zero":  # a hard reset sets both sides' membranes to 0
        carried = np.where(used != 0, step_err if c.order == "fire-then-integrate" else 0.0, carried)
    if c.v_min is not None:  # both sides clamp to the floor where even the other side's value is below it
        unclamped = m.step(state, x, dataclasses.replace(p, choices=c.replace(v_min=None)), forced=used)[1].v
        carried = np.where(unclamped + carried < c.v_min, 0.0, carried)
    shape = v_new.shape
    carried = np.broadcast_to(carried, shape)
    if m.current:
        carried = (carried, np.broadcast_to(carried_i, shape))
    return s_ours, st, np.broadcast_to(decision, shape), carried


def _leaky_bound(m, p, state, st, bound_prev, x, ax, n_terms):
    """Rounding bound of a leaky layer's decision membrane (docs/check.md, "Leaky layers"): the
    carried error decays with the leak, and each step adds the input sum's error and a few roundings
    of magnitudes no larger than those of the step's terms. Returns ``(decision bound, the part
    this step added, the synaptic current's carried bound or None)``."""
    nd = np.ndim(x)
    beta = broadcast_channels(p.beta, nd)
    bias = np.abs(broadcast_channels(p.bias, nd))
    b_v, b_i = bound_prev if isinstance(bound_prev, tuple) else (bound_prev, 0.0)
    sum_err = _gamma(n_terms) * ax
    carried_i = None
    if m.current:  # i = alpha i_prev + x, then gain * i into the membrane
        alpha = broadcast_channels(p.alpha, nd)
        carried_i = alpha * b_i + sum_err + _gamma(2) * (alpha * np.abs(state.i) + np.abs(x) + np.abs(st.i))
        gain = np.abs(broadcast_channels(p.gain, nd))
        into, into_err = gain * np.abs(st.i), gain * carried_i
    else:
        into, into_err = np.abs(x), sum_err
    mags = beta * (np.abs(state.v) + np.abs(state.v_pre)) + into + bias + np.abs(st.v_pre) + np.abs(st.v)
    step_err = into_err + _gamma(LEAK_ROUNDINGS) * mags
    return beta * b_v * (1 + _gamma(LEAK_ROUNDINGS)) + step_err, step_err, carried_i


def _zero_bound(model, shape):
    """The carried rounding bound at step 0: zero; a pair (membrane, current) for a model whose
    state carries a synaptic current."""
    z = np.zeros(shape)
    return (z, z.copy()) if get_model(model).current else z


def _classify(model, p, s_ours, s_rec, pre, bound):
    """(ties, divergences) masks where the decisions differ."""
    diff = s_ours != s_rec
    if not diff.any():
        return diff, diff
    dist = get_model(model).boundary_distance(pre, p, s_ours, s_rec)
    # bound 0: the other side's float32 value is exactly ours, so a different decision diverges
    tie = diff & (bound > 0) & (dist <= bound)
    if not get_model(model).bitmask:  # a rounding error moves a count or sign by one, never more
        tie &= np.abs(s_ours.astype(np.int64) - s_rec.astype(np.int64)) == 1
    return tie, diff & ~tie


def _first(t, idx, p, s_ours, s_rec, pre, bound):
    th_all = np.atleast_1d(p.threshold)
    return {"step": t, "neuron": list(idx), "refsim_spikes": int(s_ours[idx]), "recorded_spikes": int(s_rec[idx]),
            "membrane": float(pre[idx]), "threshold": float(th_all[idx[1]] if th_all.size > 1 else th_all[0]),
            "rounding_bound": float(bound[idx])}


def _check_layers(graph, traces, prof, mode="teacher-forced", progress=False):
    """The main pass over all steps; returns ``{layer: LayerReport}``."""
    free = mode == "free-running"
    params = _params(graph, prof)
    T, B = traces.T, traces.batch
    reports = {n: LayerReport(n, graph[n].model) for n in graph.neurons}
    state = {n: get_model(graph[n].model).init_state((B,) + graph.shapes[n]) for n in graph.neurons}
    bound = {n: _zero_bound(graph[n].model, (B,) + graph.shapes[n]) for n in graph.neurons}
    needed = set()
    for n in graph.neurons:
        needed.update(_ancestors(graph, n))
    vals = _Values(graph, params, _spiking_inputs(graph, traces), needed)
    bar = Progress(f"refsim check ({mode})", T, progress, delay=2.0)
    for t in range(T):
        vals.start()
        diverged = False
        for name in graph.order:
            node = graph[name]
            if isinstance(node, Input):
                vals.put(name, np.asarray(traces.inputs[name][t], dtype=np.float64))
                continue
            if not isinstance(node, Neuron):
                vals.compute(name)
                continue
            p, model = params[name], node.model
            m = get_model(model)
            rep = reports[name]
            x, ax, g_in, n_terms = vals.input_of(node)
            s_rec = _recorded(traces, name, model, t)
            if free:  # own decision and own reset; ties (and, for this step, divergences) re-synchronised
                s_ours, st, dec, carry = _advance(model, p, state[name], bound[name], x, ax, g_in, n_terms)
                tie, div = _classify(model, p, s_ours, s_rec, st.v_pre, dec)
                used = s_ours
                if tie.any() or div.any():
                    used = np.where(tie | div, s_rec, s_ours)
                    _, st, dec, carry = _advance(model, p, state[name], bound[name], x, ax, g_in, n_terms, used)
            else:
                used = s_rec
                s_ours, st, dec, carry = _advance(model, p, state[name], bound[name], x, ax, g_in, n_terms, used)
                tie, div = _classify(model, p, s_ours, s_rec, st.v_pre, dec)
            state[name], bound[name] = st, carry
            rep.compared += int(s_rec.size)
            rep.ties += int(tie.sum())
            rep.divergences += int(div.sum())
            if div.any():
                diverged = True
                if rep.first is None:
                    idx = tuple(int(i) for i in np.argwhere(div)[0])
                    rep.first = _first(t, idx, p, s_ours, s_rec, st.v_pre, dec)
            vals.put(name, m.emitted(used, p))
        vals.end_step()
        bar.update(t + 1)
        if free and diverged:
            break
    bar.close()
    return reports


def _ancestors(graph, layer):
    """The nodes between ``layer`` and the neuron layers and inputs that feed it (whose values come
    from the recorded traces), in topological order."""
    need, stack = set(), list(graph[layer].inputs)
    while stack:
        n = stack.pop()
        if n in need:
            continue
        need.add(n)
        if not isinstance(graph[n], (Input, Neuron)):
            stack.extend(graph[n].inputs)
    return [n for n in graph.order if n in need]


def _alternatives(node, prof) -> dict:
    """``{label: params}`` of every single change a divergence of neuron ``node`` may be explained
    by: each alternative choice (:data:`ALTERNATIVES`) and, for a leaky layer, the reset timing,
    no leak at all (beta = 1), and the other discretisation of the same time constant (forward
    Euler's beta = 1 - dt/tau read as the exact exp(-dt/tau), and the reverse; NIR's two mappings,
    docs/import.md)."""
    current = prof.choices(node.model).replace(**node.choices)
    changes = [(f"{f}={v}", {"choices": {**node.choices, f: v}}) for f, v in ALTERNATIVES if getattr(current, f) != v]
    if get_model(node.model).leaks:
        changes += [(f"reset_timing={v}", {"choices": {**node.choices, "reset_timing": v}})
                    for v in RESET_TIMINGS if v != current.reset_timing]
        beta = np.asarray(node.make_params(prof).beta, dtype=np.float64)
        if np.any(beta != 1):
            changes.append(("beta=1 (no leak)", {"beta": 1.0}))
        if np.all(beta > 0):
            changes.append(("beta as exp(-dt/tau) of Euler's 1 - dt/tau", {"beta": np.exp(beta - 1.0).tolist()}))
            changes.append(("beta as Euler's 1 - dt/tau of exp(-dt/tau)", {"beta": np.clip(1.0 + np.log(beta), 0, 1).tolist()}))
    out = {}
    for label, change in changes:
        try:
            out[label] = node.replace(**change).make_params(prof)
        except RefsimError:  # not valid for this model (e.g. several spikes a step for ternary)
            continue
    return out


#: the fit of a leaky layer's beta: candidates per round, rounds of zooming in, and the width of
#: the bracket at which it stops
BETA_FIT_POINTS, BETA_FIT_ROUNDS, BETA_FIT_WIDTH = 64, 8, 1e-4


def explain_layer(graph, traces, prof, layer, progress=False) -> list:
    """Single choices that make ``layer`` reproduce the recorded spikes, teacher-forced (see the
    module docstring): all alternatives advance together on one computation of the layer's input.
    A leaky layer that none of them explains gets a fit of its leak (:func:`_fit_beta`), named
    ``beta in [a, b] (fitted; the model has c)`` when some beta reproduces every recorded spike."""
    node = graph[layer]
    life = _lifetimes(graph, traces, prof, layer, _alternatives(node, prof), progress, "explaining")
    found = sorted(k for k, v in life.items() if v == traces.T)
    if found or not get_model(node.model).leaks:
        return found
    fit = _fit_beta(graph, traces, prof, layer, progress)
    if fit is None:
        return []
    have = np.unique(np.asarray(node.make_params(prof).beta, dtype=np.float64))
    has = f"{float(have[0]):.6g}" if have.size == 1 else "per-channel " + ", ".join(f"{float(v):.4g}" for v in have)
    lo, hi = fit
    return [f"beta in [{lo:.6g}, {hi:.6g}] (fitted; the model has {has})"]


def _fit_beta(graph, traces, prof, layer, progress=False):
    """The leak factors (one for all channels) under which ``layer`` reproduces every recorded
    spike, as an interval ``(a, b)`` bracketing every candidate that did (its ends are the nearest
    candidates that failed, or the search's ends), or None. Each round tries :data:`BETA_FIT_POINTS`
    evenly spaced betas in (lo, hi], all advancing together, teacher-forced through every step; a
    candidate's score is how many decisions it gets wrong. Until some candidate gets none wrong, the
    next round zooms in on the interval around the best-scoring ones (the further a leak is off, the
    more decisions it changes); once some do, the next rounds narrow the bracket down to
    :data:`BETA_FIT_WIDTH`."""
    node = graph[layer]
    lo, hi, found = 0.0, 1.0, None
    for _ in range(BETA_FIT_ROUNDS):
        grid = np.linspace(lo, hi, BETA_FIT_POINTS + 1)[1:]
        alts = {}
        for b in grid:
            try:
                alts[float(b)] = node.replace(beta=float(b)).make_params(prof)
            except RefsimError:
                continue
        if not alts:
            break
        wrong = _lifetimes(graph, traces, prof, layer, alts, progress, "fitting beta of", drop=False)
        ok = sorted(b for b, v in wrong.items() if v == 0)
        if ok:  # bracketed by the nearest candidates that failed (or the ends of the search); narrow it
            below = [b for b in alts if b < ok[0] and wrong[b]]
            above = [b for b in alts if b > ok[-1] and wrong[b]]
            found = lo, hi = (max(below) if below else lo), (min(above) if above else hi)
            if hi - lo < BETA_FIT_WIDTH:
                break
            continue
        if found is not None:  # no candidate inside the bracket reproduced them all: keep the bracket
            break
        best = min(wrong.values())
        top = [b for b, v in wrong.items() if v == best]
        step = (hi - lo) / BETA_FIT_POINTS
        lo, hi = max(0.0, min(top) - step), min(1.0, max(top) + step)
    return found


def _lifetimes(graph, traces, prof, layer, alts, progress, what, drop=True) -> dict:
    """For each key of ``alts`` (``{key: params of layer}``), teacher-forced: with ``drop``, the
    number of steps ``layer`` reproduces the recorded spikes with those parameters (``traces.T``:
    every step; an alternative is dropped at its first divergence, so the cost falls as they fail);
    without, the number of wrong decisions over all steps (0: every step reproduced)."""
    node = graph[layer]
    model = node.model
    params = {n: graph[n].make_params(prof) for n in graph.neurons}
    order = _ancestors(graph, layer)
    shape = (traces.batch,) + graph.shapes[layer]
    state = {k: (get_model(model).init_state(shape), _zero_bound(model, shape)) for k in alts}
    life = {k: traces.T if drop else 0 for k in alts}
    vals = _Values(graph, params, _spiking_inputs(graph, traces), set(order))
    bar = Progress(f"refsim check: {what} {layer}", traces.T, progress, delay=2.0)
    for t in range(traces.T):
        if not state:
            break
        vals.start()
        for name in order:
            n = graph[name]
            if isinstance(n, Input):
                vals.put(name, np.asarray(traces.inputs[name][t], dtype=np.float64))
            elif isinstance(n, Neuron):
                vals.put(name, get_model(n.model).emitted(_recorded(traces, name, n.model, t), params[name]))
            else:
                vals.compute(name)
        x, ax, g_in, n_terms = vals.input_of(node)
        s_rec = _recorded(traces, layer, model, t)
        for key in list(state):
            p = alts[key]
            st0, b = state[key]
            s_ours, st, dec, carry = _advance(model, p, st0, b, x, ax, g_in, n_terms, s_rec)
            bad = _classify(model, p, s_ours, s_rec, st.v_pre, dec)[1]
            if not drop:
                life[key] += int(bad.sum())
                state[key] = (st, carry)
            elif bad.any():
                del state[key]
                life[key] = t
            else:
                state[key] = (st, carry)
        vals.end_step()
        bar.update(t + 1)
    bar.close()
    return life


def check(graph, traces, profile=DEFAULT_PROFILE, explain_divergences=True, mode="teacher-forced", progress=False,
          explain=None) -> dict:
    """Compare recorded traces with the equations. Returns a JSON-serialisable report with ``conforms``.

    ``mode``: ``"teacher-forced"`` (default; every faulty layer is found) or ``"free-running"``
    (refsim runs the whole network on the recorded input train; rounding ties are re-synchronised
    and the first real divergence is reported). ``explain_divergences``: search the single choices
    that explain each diverging layer. ``progress``: report progress on stderr for long passes.
    """
    if explain is not None:  # the keyword's former name
        explain_divergences = explain
    if mode not in MODES:
        raise UnknownNameError("check mode", mode, MODES)
    prof = get_profile(profile)
    _require(graph, traces)
    reports = _check_layers(graph, traces, prof, mode=mode, progress=progress)
    for name, rep in reports.items():
        if rep.divergences and explain_divergences:
            rep.explained_by = explain_layer(graph, traces, prof, name, progress=progress)
            rep.explanation_searched = True
    return {"profile": prof.name, "mode": mode, "T": traces.T, "batch": traces.batch,
            "conforms": all(r.divergences == 0 for r in reports.values()),
            "layers": [r.as_dict() for r in reports.values()]}


def format_report(rep) -> str:
    lines = [f"refsim check: profile {rep['profile']}, {rep['mode']}, T={rep['T']}, batch {rep['batch']}"]
    for r in rep["layers"]:
        status = "ok" if r["divergences"] == 0 else "DIVERGES"
        lines.append(f"  {r['layer']:<16} {r['model']:<14} {status:<9} {r['divergences']} divergences, "
                     f"{r['ties']} rounding ties, {r['compared']} decisions")
        if r["first"]:
            f = r["first"]
            lines.append(f"      first at step {f['step']}, neuron {tuple(f['neuron'])}: refsim {f['refsim_spikes']}, "
                         f"recorded {f['recorded_spikes']}; membrane {f['membrane']!r}, threshold {f['threshold']!r}, "
                         f"rounding bound {f['rounding_bound']:.3g}")
        if r["explained_by"]:
            lines.append("      explained by: " + ", ".join(r["explained_by"]))
        elif r["divergences"] and r.get("explanation_searched"):
            lines.append("      no single semantic choice explains it")
        elif r["divergences"]:
            lines.append("      explanation not searched (explain_divergences=False)")
    lines.append("CONFORMS" if rep["conforms"] else "DIVERGES")
    return "\n".join(lines)
