"""What each spiking layer did: rates, silent and saturated neurons, activity over time.

Definitions (also in every report):

* **rate**: spikes per neuron per step (a multi-threshold neuron counts each level that fired; a
  ternary neuron each +1 and each -1), averaged over neurons, samples and steps;
* **silent**: the fraction of neurons (per sample) that never fired during the run;
* **saturated**: the fraction of neurons that fired on every step (at least one spike each step),
  the most a one-spike-a-step neuron can do;
* **spikes per step**: the layer's spikes at each step, summed over the batch;
* **input density**: the fraction of a synaptic layer's input elements that carried an event,
  per step on average (:mod:`refsim.synops`).
"""
from __future__ import annotations

import math

import numpy as np

from ..neurons import get_model


def _levels_fired(mask, n_levels):
    return np.stack([(mask >> np.uint8(i)) & 1 for i in range(n_levels)])


def layer_activity(traces, graph, params=None) -> dict:
    """Per spiking layer: rate, per-channel rates, silent and saturated fractions, spikes per step
    (and rates per level for multi-threshold layers, + and - apart for ternary layers, when the
    layer's spikes were recorded)."""
    T, B = traces.T, traces.batch
    out = {}
    for name, info in traces.layers.items():
        n = info["neurons"]
        shape = tuple(info["shape"])
        sc = traces.step_counts[name]
        row = {"model": info["model"], "shape": list(shape), "neurons": n,
               "spikes": int(sc.sum()), "rate": float(sc.sum()) / (T * B * n),
               "spikes_per_step": sc.sum(axis=1).tolist()}
        m = get_model(info["model"])
        one_a_step = params is None or (not m.bitmask and params[name].choices.spikes_per_step == "one")
        if name in traces.counts:
            c = traces.counts[name]
            row["silent_fraction"] = float(np.mean(c == 0))
            if one_a_step:  # at most one spike a step: T spikes means a spike on every step
                row["saturated_fraction"] = float(np.mean(np.abs(c) >= T))
            if len(shape) == 3:
                row["channel_rates"] = (c.sum(axis=(0, 2, 3)) / (T * B * shape[1] * shape[2])).tolist()
            row["rate_histogram"] = np.histogram(c.reshape(-1) / T, bins=20, range=(0, max(1.0, float(c.max()) / T)))[0].tolist()
        s = traces.spikes.get(name)
        if s is not None:
            fired = s != 0
            row["saturated_fraction"] = float(np.mean(fired.all(axis=0)))
            if m.signed:
                row["rate_positive"] = float((s > 0).sum()) / (T * B * n)
                row["rate_negative"] = float((s < 0).sum()) / (T * B * n)
            if m.bitmask and params is not None:
                nl = len(params[name].levels)
                row["levels"] = list(params[name].levels)
                row["rate_per_level"] = (_levels_fired(s, nl).reshape(nl, -1).sum(axis=1) / (T * B * n)).tolist()
        out[name] = row
    return out


def input_density(traces, graph) -> dict:
    """Per synaptic layer: the mean fraction of its input elements that carried an event per step
    (needs a run recorded with ``Recorder(synops=True)``)."""
    out = {}
    for name, ev in traces.events.items():
        size = math.prod(graph.shapes[graph[name].inputs[0]])
        out[name] = float(ev.sum()) / (traces.T * traces.batch * size)
    return out
