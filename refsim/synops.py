"""Exact synaptic operations: which node's sums are accumulates (ACs), which are multiply-accumulates
(MACs), and how many, counted from the events a run actually propagated.

Definitions (the report states them too):

* **Synapse**: one (input element, output element) connection of a weighted or pooling layer that
  lies inside the output map: borders, padding, stride, dilation, groups, transposed convolutions
  and pooling windows are counted as they are (:func:`fanout`, the number of synapses leaving each
  input element).
* **Event**: a nonzero element of a synaptic layer's input at one step, whatever its value, when that
  input is *spike-derived*: the spikes of a spiking layer or a spiking encoder (a binary spike, a
  ternary -1 or +1, a multi-threshold value, a count of several spikes, a threshold-valued spike),
  possibly concatenated, flattened, up-sampled or pooled (a pooled value is a small sum of spikes,
  divided by the window area for an average). Each event reaching a synapse is one **accumulate**
  (AC): the event's value scales the weight by a sign, a level or a small integer, and a pooling
  divisor is a constant of the next layer, all of which hardware folds into the weight.
* An **analog** input (direct coding's image, or values off the spike grid) costs one **MAC** per
  synapse, every element counted, at every step the layer is computed: once for a static (direct)
  input, which refsim computes once and reuses (Li et al. section 3.1), every step otherwise.
* The **dense network's MACs** (:func:`dense_macs`): every synapse of every synaptic layer, once per
  sample: what the ANN with the same graph computes for one input.

Peers differ here (issue 12): counters that recognise spikes only as tensors of 0 and 1 count
ternary, multi-threshold and threshold-valued spikes as MACs; counters that ignore borders and
stride overcount; refsim counts the events it propagated, synapse by synapse.
"""
from __future__ import annotations

import numpy as np

from .exactness import POOLS

SYNAPTIC = ("Conv2d", "ConvTranspose2d", "Linear", "AvgPool2d", "SumPool2d")


def _taps_forward(n_in, n_out, k, stride, pad, dil):
    """r[i] = #{(o, j): 0 <= o < n_out, 0 <= j < k, o*stride - pad + j*dil == i} for each input index i."""
    r = np.zeros(n_in, np.int64)
    o = np.arange(n_out)
    for j in range(k):
        i = o * stride - pad + j * dil
        i = i[(i >= 0) & (i < n_in)]
        np.add.at(r, i, 1)
    return r


def _taps_transpose(n_in, n_out, k, stride, pad, dil):
    """r[i] = #{j: 0 <= i*stride - pad + j*dil < n_out}: output positions each input reaches."""
    i = np.arange(n_in)
    r = np.zeros(n_in, np.int64)
    for j in range(k):
        o = i * stride - pad + j * dil
        r += (o >= 0) & (o < n_out)
    return r


def fanout(node, in_shape, out_shape) -> np.ndarray:
    """Synapses leaving each input element of ``node`` (an int64 array of the input's shape)."""
    t = node.TYPE
    if t == "Linear":
        return np.full(in_shape, out_shape[0], np.int64)
    C, H, W = in_shape
    _, Ho, Wo = out_shape
    if t == "Conv2d":
        kh, kw = node.weight.shape[2:]
        ry = _taps_forward(H, Ho, kh, node.stride[0], node.pads[0], node.dilation[0])
        rx = _taps_forward(W, Wo, kw, node.stride[1], node.pads[2], node.dilation[1])
        per_channel = node.weight.shape[0] // node.groups
    elif t == "ConvTranspose2d":
        kh, kw = node.weight.shape[2:]
        ry = _taps_transpose(H, Ho, kh, node.stride[0], node.padding[0], node.dilation[0])
        rx = _taps_transpose(W, Wo, kw, node.stride[1], node.padding[1], node.dilation[1])
        per_channel = node.weight.shape[1]
    elif t in POOLS:
        ry = _taps_forward(H, Ho, node.kernel_size[0], node.stride[0], node.padding[0], 1)
        rx = _taps_forward(W, Wo, node.kernel_size[1], node.stride[1], node.padding[1], 1)
        per_channel = 1
    else:
        raise ValueError(f"no synapses in a {t}")
    return np.broadcast_to((ry[:, None] * rx[None, :] * per_channel)[None], (C, H, W)).copy()


def spike_derived(graph, spiking_input: bool) -> set:
    """Nodes whose values are spike-derived (see the module docstring): spiking layers, a spiking
    encoder's inputs, and concatenations, reshapes, up-sampling and pooling of those."""
    out = set()
    for name in graph.order:
        node = graph[name]
        t = node.TYPE
        if (t == "Input" and spiking_input) or t == "Neuron":
            out.add(name)
        elif t in ("Concat", "Add", "Flatten", "Dropout", "Upsample") + POOLS and all(i in out for i in node.inputs):
            out.add(name)
    return out


def dense_macs(graph) -> dict:
    """MACs per synaptic layer of the ANN with the same graph, for one sample (every synapse once)."""
    out = {}
    for name in graph.order:
        node = graph[name]
        if node.TYPE in SYNAPTIC:
            out[name] = int(fanout(node, graph.shapes[node.inputs[0]], graph.shapes[name]).sum())
    return out


class SynopsCounter:
    """Counts, during a run, the events each synaptic layer received and the ACs or MACs they cost
    (used by :class:`refsim.simulator.Simulator` when the Recorder asks for ``synops``)."""

    def __init__(self, graph, encoder, static: set, T: int, batch: int):
        spiking = spike_derived(graph, bool(getattr(encoder, "emits_spikes", False)))
        self.layers = {}
        for name in graph.order:
            node = graph[name]
            if node.TYPE not in SYNAPTIC:
                continue
            src = node.inputs[0]
            kind = "AC" if src in spiking else "MAC"
            fo = fanout(node, graph.shapes[src], graph.shapes[name])
            self.layers[name] = (src, kind, name in static, fo.reshape(-1), fo if fo.ndim == 3 else None)
        self.events = {n: np.zeros((T, batch), np.int64) for n in self.layers}
        self.acs = {n: np.zeros((T, batch), np.int64) for n in self.layers}
        self.macs = {n: np.zeros((T, batch), np.int64) for n in self.layers}

    def step(self, t, vals, dense):
        for name, (src, kind, static, fo, fo_chw) in self.layers.items():
            if static and t > 0:  # computed once and reused: the same input, no operation
                self.events[name][t] = self.events[name][0]
                continue
            v = vals[src]
            if kind == "AC" and fo_chw is not None and hasattr(v, "fanout_sums"):
                # a backend's event value counts itself (the event backend: from its event arrays)
                self.events[name][t], self.acs[name][t] = v.fanout_sums(fo_chw)
                continue
            x = dense(v)
            nz = (x.reshape(x.shape[0], -1) != 0)
            self.events[name][t] = nz.sum(axis=1)
            if kind == "AC":
                self.acs[name][t] = nz.astype(np.int64) @ fo
            else:
                self.macs[name][t] = int(fo.sum())
