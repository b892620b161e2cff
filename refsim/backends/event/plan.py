"""The event backend's plan: for every computing node, how it runs and why. The one place that
decides whether a layer runs fused, scattered or dense.

* A **neuron layer** of (C, H, W) maps runs one fused Numba pass (update, reset, emit events,
  count, record), unless it is 1-D (after a Linear), a multi-spike layer whose per-step spikes
  are recorded (their int16 range is checked in NumPy), or leaky (``lif``, ``cubalif``: a decayed
  membrane is not a sum of exact terms, so it runs dense in the reference's order, and the
  backends agree because they compute it the same way, not because any order would do).
* A **weighted or pooling layer** scatters its input's events when its float64 sums are provably
  exact (:func:`refsim.exactness.layer_exactness`), so the scatter order gives the reference's
  bits; otherwise it runs dense. Stride-1, undilated, ungrouped convolutions scatter into halo
  buffers the next neuron pass reads in place; other convolutions and linear layers use the
  dense-in, dense-out scatter kernels. A halo or transposed convolution whose only consumer is an IF
  or ternary layer on the fused pass runs in that layer's pass instead (``conv_neuron_rows``,
  ``convt_neuron_rows``): each output row's current is scattered into a small row buffer and
  consumed at once.
* A **concatenation** of event-valued inputs stays as events; everything else runs dense.
"""
from __future__ import annotations

from ...exactness import POOLS, WEIGHTED, layer_exactness, value_grids
from ...neurons import get_model
from ..base import LayerPlan


def halo_conv(node) -> bool:
    """Convolutions the halo-buffer kernel handles: stride 1, dilation 1, one group."""
    return node.TYPE == "Conv2d" and node.stride == (1, 1) and node.dilation == (1, 1) and node.groups == 1


_SCATTER_KERNEL = {"ConvTranspose2d": "conv_transpose_rows", "AvgPool2d": "pool_rows", "SumPool2d": "pool_rows",
                   "Linear": "linear_events"}


def plan(graph, params, encoder, recorder=None) -> dict:
    """``{node: LayerPlan}`` for every node but Input and Output nodes (see the module docstring)."""
    grid = value_grids(graph, params, spiking_input=bool(getattr(encoder, "emits_spikes", False)))
    out, events = {}, set()
    for name in graph.order:
        node = graph[name]
        t = node.TYPE
        if t in ("Input", "Output"):
            continue
        if t == "Neuron":
            c = params[name].choices
            if get_model(node.model).leaks:
                out[name] = LayerPlan("dense", f"a leaky layer ({node.model}): its float64 membrane is not a sum of "
                                      "exact terms, so it runs in the reference's order (no fused kernel)")
            elif len(graph.shapes[name]) != 3:
                out[name] = LayerPlan("dense", "a 1-D layer: the fused pass runs (C, H, W) maps")
            elif c.spikes_per_step == "multi" and recorder is not None and recorder.wants("spikes", name):
                out[name] = LayerPlan("dense", "multi-spike layer with recorded spikes (their range is checked in NumPy)")
            else:
                kernel = "mt_rows" if get_model(node.model).bitmask else "neuron_rows"
                out[name] = LayerPlan("fused", "fused update, reset and event emission", kernel)
                events.add(name)
        elif t in WEIGHTED or t in POOLS:
            ex = layer_exactness(node, grid)
            if not ex.exact:
                out[name] = LayerPlan("dense", ex.reason)
                continue
            if t == "Conv2d":
                kernel = "conv_s1_rows" if halo_conv(node) else "conv2d_events"
            else:
                kernel = _SCATTER_KERNEL[t]
            out[name] = LayerPlan("scatter", ex.reason, kernel, ex.bound)
            if t in POOLS:
                events.add(name)
        elif t == "Concat" and all(i in events for i in node.inputs):
            out[name] = LayerPlan("events", "every input is events: kept as events")
            events.add(name)
        else:
            out[name] = LayerPlan("dense", f"no event kernel for a {t}" if t != "Concat" else "some inputs are dense")
    for name, p in list(out.items()):
        fed = fused_neuron(graph, name, out, recorder)
        if p.kernel in _FUSED_KERNEL and fed is not None:
            out[name] = LayerPlan("scatter", f"{p.reason}; fused with {fed}'s update, row by row (the current stays "
                                  "in a row buffer in cache)", _FUSED_KERNEL[p.kernel], p.bound)
    return out


# scatter kernel -> its form fused with the neuron layer it feeds
_FUSED_KERNEL = {"conv_s1_rows": "conv_neuron_rows", "conv_transpose_rows": "convt_neuron_rows"}


def fused_neuron(graph, name, plans, recorder=None):
    """The neuron layer a halo or transposed convolution ``name`` can run fused with (its only consumer, an IF or
    ternary layer on the fused pass whose input current is not recorded), or None."""
    cons = graph.consumers[name]
    if len(cons) != 1 or getattr(plans.get(cons[0]), "kernel", None) != "neuron_rows":
        return None
    if recorder is not None and recorder.wants("current_max", cons[0]):
        return None  # the recorded current needs the layer's whole map
    return cons[0]
