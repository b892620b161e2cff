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

from ..errors import ValidationError
from ..neurons import get_model
from ..neurons._common import broadcast_channels
from .normalize import ann_activations


def rate_model(graph, params, x) -> dict:
    """Predicted per-neuron rates (B, ...) of every neuron layer for analog input ``x`` (B, ...)."""
    rates = {}

    def neuron(name, node, cur):
        p = params[name]
        theta = broadcast_channels(p.threshold, cur.ndim)
        m = get_model(node.model)
        top = m.max_rate(p)
        r = np.clip(cur / theta, -top if m.signed else 0.0, top)
        rates[name] = r
        return r * theta if (p.choices.spike_value == "threshold" or m.bitmask) else r

    graph.propagate(x, neuron)
    return rates


def measured_rate(graph, name, counts, T, values=None):
    """A neuron layer's measured rate per neuron, comparable with :func:`rate_model` and with an
    ANN activation / lambda: spikes per step (``counts / T``), except for a layer firing by levels
    (multithreshold), whose spike count is not what it sends: there, when its ``values`` (the
    total value each neuron sent, ``Recorder(values=True)``) are given, the value sent per step in
    units of its threshold scale, ``values / (T * threshold)``. Returns ``(rate, by_value)``; a
    multithreshold layer without values gives its level-spike rate and ``by_value`` False."""
    if get_model(graph[name].model).bitmask:
        if values is None:
            return np.asarray(counts) / T, False
        v = np.asarray(values, dtype=np.float64)
        return v / (T * broadcast_channels(np.asarray(graph[name].threshold, np.float64), v.ndim)), True
    return np.asarray(counts) / T, True


def conversion_quality(graph, params, x, traces, min_correlation=0.9, slope_range=(0.8, 1.25), max_points=4000):
    """Per neuron layer: Pearson correlation and least-squares slope of the measured SNN rate
    (:func:`measured_rate`: spikes per neuron per step, ``traces.counts / T``; for a multithreshold
    layer the value it sent per step in threshold units, from ``traces.values``) against
    :func:`rate_model`'s prediction, and the first layer (in graph order) where the correlation is
    below ``min_correlation`` or the slope outside ``slope_range`` (a multithreshold layer recorded
    without values has only its correlation judged). ``points`` keeps a sample of (predicted,
    measured) pairs for plots."""
    pred = rate_model(graph, params, x)
    rng = np.random.default_rng(0)
    layers, first = {}, None
    for name in graph.neurons:
        if name not in traces.counts:
            continue
        a = pred[name].reshape(-1)
        r, checked = measured_rate(graph, name, traces.counts[name], traces.T, traces.values.get(name))
        r = r.reshape(-1)
        if get_model(graph[name].model).signed:
            a = np.abs(a)
        if a.std() == 0 or r.std() == 0:
            corr = float("nan")
        else:
            corr = float(np.corrcoef(a, r)[0, 1])
        slope = float(np.dot(a, r) / np.dot(a, a)) if np.dot(a, a) > 0 else float("nan")
        idx = rng.choice(a.size, size=min(max_points, a.size), replace=False)
        bad = not (corr >= min_correlation) or (checked and not (slope_range[0] <= slope <= slope_range[1]))
        layers[name] = {"correlation": corr, "slope": slope, "slope_checked": checked, "below_bound": bad,
                        "points": [a[idx].tolist(), r[idx].tolist()]}
        if bad and first is None:
            first = name
    return {"layers": layers, "first_below_bound": first, "min_correlation": min_correlation,
            "slope_range": list(slope_range)}


def match_layers(ann_graph, snn_graph) -> dict:
    """``{snn layer: ann layer}``: the same names when the SNN was converted from this ANN (refsim
    keeps the importer's names), else the neuron layers in graph order when both have as many."""
    a, s = list(ann_graph.neurons), list(snn_graph.neurons)
    same = lambda pairs: all(ann_graph.shapes[y] == snn_graph.shapes[x] for x, y in pairs.items())
    if set(s) <= set(a) and same({n: n for n in s}):
        return {n: n for n in s}
    if len(a) == len(s) and same(dict(zip(s, a))):
        return dict(zip(s, a))
    raise ValidationError("ANN reference", f"an ANN with the SNN's {len(s)} neuron layers and their shapes (by name "
                          "or in order)", f"{len(a)} ReLU layers ({', '.join(a[:5])}{'...' if len(a) > 5 else ''})")


def compare_with_ann(ann_graph, snn_graph, x, counts, T, percentile=99.9, min_correlation=0.9,
                     slope_range=(0.8, 1.25), max_points=4000, values=None) -> dict:
    """Per neuron layer: Pearson correlation and least-squares slope of the SNN's measured rate
    (:func:`measured_rate`: ``counts / T``, spikes per neuron per step; for a multithreshold layer
    whose ``values`` are given, the value it sent per step in threshold units; without them its
    slope is reported but not judged) against the ANN's activation of the same layer
    (:func:`refsim.convert.ann_activations` of ``ann_graph``: a trained ANN, e.g. imported from
    ONNX) divided by ``lambda``, that activation's ``percentile`` over the data (Li et al. eq. 7's
    scale). Slope 1 and correlation 1 are a perfect conversion (Li Fig. 3); the first layer, in graph
    order, whose correlation is below ``min_correlation`` or slope outside ``slope_range`` is where
    the conversion loses accuracy. For a network converted by threshold balancing, slopes below 1
    mean the layer fires less than its ANN activation range would allow."""
    acts = ann_activations(ann_graph, x)
    pairs = match_layers(ann_graph, snn_graph)
    rng = np.random.default_rng(0)
    layers, first = {}, None
    for name in snn_graph.neurons:
        if name not in counts:
            continue
        a = acts[pairs[name]].reshape(-1)
        lam = float(np.percentile(a, percentile)) if a.size else 0.0
        lam = lam if lam > 0 else 1.0
        a = a / lam
        r, checked = measured_rate(snn_graph, name, counts[name], T, None if values is None else values.get(name))
        r = r.reshape(-1)
        if get_model(snn_graph[name].model).signed:
            a, r = np.abs(a), np.abs(r)
        corr = float(np.corrcoef(a, r)[0, 1]) if a.std() > 0 and r.std() > 0 else float("nan")
        slope = float(np.dot(a, r) / np.dot(a, a)) if np.dot(a, a) > 0 else float("nan")
        idx = rng.choice(a.size, size=min(max_points, a.size), replace=False)
        # a neuron firing by levels sends the sum of the levels that fired, not one unit per spike: its
        # spike count grows with the activation but not in proportion; without its values only the
        # correlation is judged
        bad = not (corr >= min_correlation) or (checked and not (slope_range[0] <= slope <= slope_range[1]))
        layers[name] = {"ann_layer": pairs[name], "ann_lambda": lam, "correlation": corr, "slope": slope,
                        "slope_checked": checked, "below_bound": bad, "points": [a[idx].tolist(), r[idx].tolist()]}
        if bad and first is None:
            first = name
    return {"layers": layers, "first_below_bound": first, "min_correlation": min_correlation,
            "slope_range": list(slope_range), "reference": "ANN activations / their "
            f"{percentile:g}th percentile"}
