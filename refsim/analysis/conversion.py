"""Where does the spiking network depart from its rate model? Per layer, the SNN's measured firing
rate against the rate the ANN with the same graph predicts (Li et al. Fig. 3).

The ANN reference (:func:`rate_model`) runs the graph densely in float64 with each neuron layer
replaced by the rate an ideal integrate-and-fire neuron reaches on a constant input: the ReLU of
its input current divided by its threshold, clipped at the most it can emit a step (1 for one spike
a step), and passing on ``rate x spike value`` as the spikes would. For a network converted by
threshold balancing or normalisation, the measured SNN rates approach these as T grows; a layer
whose correlation or slope falls away is where conversion loses accuracy.
"""
from __future__ import annotations

import numpy as np

from ..graph.nodes import Input, Neuron, Output
from ..neurons._common import broadcast_channels


def _max_rate(p, model):
    if model == "multithreshold":
        return float(sum(p.levels))
    return 1.0 if p.choices.spikes_per_step == "one" else np.inf


def rate_model(graph, params, x) -> dict:
    """Predicted per-neuron rates (B, ...) of every neuron layer for analog input ``x`` (B, ...)."""
    vals, rates = {}, {}
    for name in graph.order:
        node = graph[name]
        if isinstance(node, Input):
            vals[name] = np.asarray(x, dtype=np.float64)
        elif isinstance(node, Neuron):
            p = params[name]
            cur = vals[node.inputs[0]]
            theta = broadcast_channels(p.threshold, cur.ndim)
            lo = -_max_rate(p, node.model) if node.model == "ternary" else 0.0
            r = np.clip(cur / theta, lo, _max_rate(p, node.model))
            rates[name] = r
            vals[name] = r * theta if (p.choices.spike_value == "threshold" or node.model == "multithreshold") else r
        elif isinstance(node, Output):
            vals[name] = vals[node.inputs[0]]
        else:
            vals[name] = node.forward([vals[i] for i in node.inputs])
    return rates


def conversion_quality(graph, params, x, traces, min_correlation=0.9, slope_range=(0.8, 1.25), max_points=4000):
    """Per neuron layer: Pearson correlation and least-squares slope of the measured SNN rate
    (spikes per neuron per step, ``traces.counts / T``) against :func:`rate_model`'s prediction,
    and the first layer (in graph order) where the correlation is below ``min_correlation`` or the
    slope outside ``slope_range``. ``points`` keeps a sample of (predicted, measured) pairs for plots."""
    pred = rate_model(graph, params, x)
    rng = np.random.default_rng(0)
    layers, first = {}, None
    for name in graph.neurons:
        if name not in traces.counts:
            continue
        a = pred[name].reshape(-1)
        r = (traces.counts[name] / traces.T).reshape(-1)
        if graph[name].model == "ternary":
            a = np.abs(a)
        if a.std() == 0 or r.std() == 0:
            corr = float("nan")
        else:
            corr = float(np.corrcoef(a, r)[0, 1])
        slope = float(np.dot(a, r) / np.dot(a, a)) if np.dot(a, a) > 0 else float("nan")
        idx = rng.choice(a.size, size=min(max_points, a.size), replace=False)
        bad = not (corr >= min_correlation) or not (slope_range[0] <= slope <= slope_range[1])
        layers[name] = {"correlation": corr, "slope": slope, "below_bound": bad,
                        "points": [a[idx].tolist(), r[idx].tolist()]}
        if bad and first is None:
            first = name
    return {"layers": layers, "first_below_bound": first, "min_correlation": min_correlation,
            "slope_range": list(slope_range)}
