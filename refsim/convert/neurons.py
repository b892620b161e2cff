"""The spiking neuron a converted network fires with. Conversion (balancing or normalisation)
finds each layer's threshold for integrate-and-fire neurons; :func:`with_neuron_model` then swaps
every IF layer for another model with the same threshold:

* ``"if"``: unchanged (one binary spike per step at most; Yue et al. 2023 eqs. 1-2);
* ``"multithreshold"``: Li et al.'s multi-threshold neuron (Spiking-UNet eqs. 4-6;
  :mod:`refsim.neurons.multithreshold`) with ``levels`` times the layer's threshold; with the
  default levels 2, 1, 0.5, 0.25 a neuron sends up to 3.75 thresholds a step, in quarters, so a
  normalised activation (about 1 at the layer's 99.9th percentile) is carried in one step to within
  a quarter and the rest stays in the membrane for the next (Li Theorem 3.1);
* ``"ternary"``: the ternary IF neuron (Yue et al. 2023 section 4.5), which also fires -1 below
  minus the threshold.

Only IF layers are swapped; other models (leaky layers of an imported network) are left as they are.
The record of the swap goes to the graph's metadata (``conversion.neuron``)."""
from __future__ import annotations

from ..errors import UnknownNameError, ValidationError
from ..graph import Graph
from ..graph.nodes import Neuron
from ..neurons import get_model
from ..neurons.multithreshold import DEFAULT_LEVELS, MultiThresholdParams

#: the models a converted network can fire with
CONVERSION_NEURONS = ("if", "multithreshold", "ternary")


def conversion_levels(model: str, levels=None):
    """``model`` and ``levels`` checked as :func:`with_neuron_model` takes them (so that a conversion can
    refuse them before its simulations); returns the levels the model fires with (a tuple of floats,
    Li's default for ``"multithreshold"``) or None."""
    if model not in CONVERSION_NEURONS:
        raise UnknownNameError("conversion neuron model", model, CONVERSION_NEURONS)
    if not get_model(model).bitmask:
        if levels is not None:
            raise ValidationError("levels", "no levels unless the neuron fires by levels (" +
                                  ", ".join(m for m in CONVERSION_NEURONS if get_model(m).bitmask) + ")",
                                  f"{model!r} with levels")
        return None
    return MultiThresholdParams(levels=DEFAULT_LEVELS if levels is None else levels).levels


def with_neuron_model(graph: Graph, model: str = "if", levels=None) -> Graph:
    """A copy of ``graph`` whose IF layers fire as ``model`` (:data:`CONVERSION_NEURONS`), with the same
    thresholds; ``levels`` for ``"multithreshold"`` (default 2, 1, 0.5, 0.25, Li et al.)."""
    levels = conversion_levels(model, levels)
    if model == "if":
        return graph
    nodes = [Neuron(node.name, node.inputs, model=model, threshold=node.threshold, levels=levels,
                    choices=node.choices or None) if isinstance(node, Neuron) and node.model == "if" else node
             for node in (graph[n] for n in graph.order)]
    meta = dict(graph.metadata)
    meta["conversion"] = dict(meta.get("conversion", {}),
                              neuron={"model": model, **({"levels": list(levels)} if levels is not None else {})})
    return Graph(nodes, name=graph.name, metadata=meta)
