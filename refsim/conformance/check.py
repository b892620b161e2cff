"""``refsim check``: compare another implementation's recorded traces with the equations, layer by layer.

Teacher-forced mode: every spiking layer is driven by the *recorded* spikes of the layers before it
(and the recorded input spike train), and each neuron's reset follows its own recorded spikes, so
one disagreement cascades neither through the layers nor in time and every faulty layer is found.
At each step refsim recomputes the membrane in float64 and takes its own decision.

Where the decisions differ, the difference is a **rounding tie** when the exact membrane lies
within a rigorous bound of the decision boundary (the other side's float32 accumulation could
have landed on the other side), and a **divergence** otherwise. The bound per neuron grows each
step by ``gamma_n * sum|terms| + u * (|v_prev| + |I| + |v_new|)`` (u = 2^-24, n = fan-in + 1;
Higham's bound for recursive summation in any order), *except* on steps where every term is a
multiple of a granularity g and every magnitude stays below 2^24 g: then every float32 partial
sum in any order is exact, nothing is added, and an exact tie is a real divergence.

Each diverging layer is re-checked with each single alternative choice (comparison, order, reset,
spikes per step, membrane floor); the choices that remove every divergence explain it.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ModelFormatError, RefsimError, UnknownNameError
from ..exactness import U32, abs_forward, fan_in, granularity, param_granularity
from ..graph.nodes import Input, Neuron, Output
from ..neurons import get_model
from ..neurons._common import MembraneState
from ..semantics import SPIKE_TRAIN_CHOICES, get_profile


@dataclasses.dataclass
class LayerReport:
    layer: str
    model: str
    compared: int = 0
    ties: int = 0
    divergences: int = 0
    first: dict | None = None
    explained_by: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return dataclasses.asdict(self)


MODES = ("teacher-forced", "free-running")


def _check_layers(graph, traces, profile, only=None, overrides=None, mode="teacher-forced"):
    """Pass over all steps; returns {layer: LayerReport}.

    ``mode="free-running"``: every layer is driven by refsim's own spikes (only the input train is
    the recorded one) and keeps its own membranes; the pass stops after the first step on which any
    layer's decisions differ, since the two runs legitimately separate after that.
    """
    free = mode == "free-running"
    prof = get_profile(profile)
    params = {}
    for n in graph.neurons:
        node = graph[n]
        if overrides and n in overrides:
            node = node.replace(choices={**node.choices, **overrides[n]})
        params[n] = node.make_params(prof)
    for n in graph.neurons:
        if n not in traces.spikes:
            raise ModelFormatError(f"spikes/{n}", "per-step spikes of every spiking layer", "nothing", file="traces")
    for n in graph.inputs:
        if n not in traces.inputs:
            raise ModelFormatError(f"inputs/{n}", "the recorded input train of every Input node", "nothing", file="traces")
    T, B = traces.T, traces.batch
    layers = [n for n in graph.neurons if only is None or n in only]
    reports = {n: LayerReport(n, graph[n].model) for n in layers}
    v = {n: np.zeros((B,) + graph.shapes[n]) for n in layers}
    bound = {n: np.zeros((B,) + graph.shapes[n]) for n in layers}
    gparam = {n: param_granularity(graph[n]) for n in graph.order}
    stop, v_free = False, {}
    for t in range(T):
        if stop:
            break
        vals, absv, gran, fan = {}, {}, {}, {}
        for name in graph.order:
            node = graph[name]
            if isinstance(node, Input):
                x = np.asarray(traces.inputs[name][t], dtype=np.float64)
                vals[name], absv[name], gran[name], fan[name] = x, np.abs(x), granularity(x), 0
            elif isinstance(node, Neuron):
                p = params[name]
                m = get_model(node.model)
                s_rec = traces.spikes[name][t].astype(np.int32 if node.model != "multithreshold" else np.uint8)
                out = m.emitted(s_rec, p)
                s_ours = None
                if name in reports:
                    x, ax = vals[node.inputs[0]], absv[node.inputs[0]]
                    rep = reports[name]
                    v_prev = v[name]
                    # the model's own step; teacher-forced, its reset follows the recorded spikes
                    s_ours, st = m.step(MembraneState(v_prev, v_prev), x, p, forced=None if free else s_rec)
                    pre, v_new = st.v_pre, st.v
                    theta_g = (granularity(np.outer(p.levels, np.atleast_1d(p.threshold)))
                               if node.model == "multithreshold" else granularity(p.threshold))
                    g = min(gran[node.inputs[0]], granularity(v_prev), theta_g)
                    big = max(float(np.max(np.abs(pre), initial=0.0)), float(np.max(ax, initial=0.0)),
                              float(np.max(np.abs(v_prev), initial=0.0)), float(np.max(np.abs(v_new), initial=0.0)),
                              float(np.max(p.threshold)) * (sum(p.levels) if hasattr(p, "levels") else 1.0))
                    exact = (not np.isfinite(g)) or big < 2.0 ** 24 * g  # every float32 partial sum exact
                    if not exact:
                        n_terms = fan[node.inputs[0]]
                        gamma = n_terms * U32 / (1 - n_terms * U32)
                        bound[name] = bound[name] + gamma * ax + U32 * (np.abs(v_prev) + np.abs(x) + np.abs(v_new))
                    diff = s_ours != s_rec
                    rep.compared += int(s_rec.size)
                    if diff.any():
                        dist = m.boundary_distance(pre, p)
                        # bound 0: the other side's float32 value is exactly ours, so a different decision diverges
                        tie = diff & (bound[name] > 0) & (dist <= bound[name])
                        div = diff & ~tie
                        rep.ties += int(tie.sum())
                        rep.divergences += int(div.sum())
                        if div.any() and rep.first is None:
                            idx = tuple(int(i) for i in np.argwhere(div)[0])
                            th_all = np.atleast_1d(p.threshold)
                            rep.first = {"step": t, "neuron": list(idx), "refsim_spikes": int(s_ours[idx]),
                                         "recorded_spikes": int(s_rec[idx]), "membrane": float(pre[idx]),
                                         "threshold": float(th_all[idx[1]] if th_all.size > 1 else th_all[0]),
                                         "rounding_bound": float(bound[name][idx])}
                    v[name] = v_new
                    if free:
                        out = m.emitted(s_ours, p)
                        stop = stop or bool(diff.any())
                elif free:  # not checked, but its own spikes drive what follows
                    z = np.zeros((B,) + graph.shapes[name])
                    s_ours, st = m.step(v_free.get(name, MembraneState(z, z)), vals[node.inputs[0]], p)
                    v_free[name] = st
                    out = m.emitted(s_ours, p)
                vals[name], absv[name], fan[name] = out, np.abs(out), 0
                gran[name] = granularity(out)
            elif isinstance(node, Output):
                vals[name] = vals[node.inputs[0]]
            else:
                xs = [vals[i] for i in node.inputs]
                vals[name] = node.forward(xs)
                absv[name] = abs_forward(node, [absv[i] for i in node.inputs])
                gi = min(gran[i] for i in node.inputs)
                gran[name] = gi * gparam[name] if np.isfinite(gparam[name]) and np.isfinite(gi) else min(gi, gparam[name])
                # errors of chained roundings add: gamma_a + gamma_b <= gamma_(a+b)
                fan[name] = fan_in(node) + max(fan[i] for i in node.inputs)
    return reports


#: every single-choice change a divergence may be explained by (from :data:`refsim.semantics.SPIKE_TRAIN_CHOICES`)
ALTERNATIVES = [(f, v) for f, values in SPIKE_TRAIN_CHOICES.items() for v in values]


def check(graph, traces, profile="paper", explain=True, mode="teacher-forced") -> dict:
    """Compare recorded traces with the equations. Returns a JSON-serialisable report with ``conforms``.

    ``mode``: ``"teacher-forced"`` (default; every faulty layer is found) or ``"free-running"``
    (refsim runs the whole network on the recorded input train and the first step where any
    layer's spikes differ is reported, as a rounding tie or a divergence).
    """
    if mode not in MODES:
        raise UnknownNameError("check mode", mode, MODES)
    prof = get_profile(profile)
    reports = _check_layers(graph, traces, prof, mode=mode)
    for name, rep in reports.items():
        if rep.divergences and explain:
            current = prof.choices(graph[name].model).replace(**graph[name].choices)
            for field, value in ALTERNATIVES:
                if getattr(current, field) == value:
                    continue
                try:
                    alt = _check_layers(graph, traces, prof, only=None if mode == "free-running" else {name},
                                        overrides={name: {field: value}}, mode=mode)[name]
                except RefsimError:  # an alternative invalid for this model (e.g. multi for ternary)
                    continue
                if alt.divergences == 0:
                    rep.explained_by.append(f"{field}={value}")
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
        elif r["divergences"]:
            lines.append("      no single semantic choice explains it")
    lines.append("CONFORMS" if rep["conforms"] else "DIVERGES")
    return "\n".join(lines)
