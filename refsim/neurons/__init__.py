"""Neuron models, one module each, and the registry that maps a model name to its functions.

=================  ==========================================  ==============================
name               module                                      spikes
=================  ==========================================  ==============================
``if``             :mod:`refsim.neurons.if_`                   int32 count (0/1, or n multi)
``ternary``        :mod:`refsim.neurons.if_`                   int32 in {-1, 0, 1}
``multithreshold`` :mod:`refsim.neurons.multithreshold`        uint8 bit mask of levels
``lif``            :mod:`refsim.neurons.lif`                   int32 count (0/1, or n multi)
``cubalif``        :mod:`refsim.neurons.lif`                   int32 count (0/1, or n multi)
=================  ==========================================  ==============================

The Output node's non-firing integrator (Yue eq. 3) is :mod:`refsim.neurons.integrator`.

Every model's ``step(state, inputs, params, forced=None)`` composes the update order, decision,
reset and floor through :func:`refsim.neurons._common.ordered_step`; ``forced`` resets with given
spikes instead of the decided ones (teacher forcing in ``refsim check``), so the checker derives
from the models' own steps. ``boundary_distance(v, params, a=None, b=None)`` says how far the decision
membrane is from the decision boundary between two decisions ``a`` and ``b`` (the nearest one when
they are not given): rounding-tie classification.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import UnknownNameError
from . import if_, integrator, lif, multithreshold
from ._common import MembraneState, zero_state


@dataclass(frozen=True)
class NeuronModel:
    name: str
    params_cls: type
    step: Callable
    emitted: Callable
    spike_count: Callable[[np.ndarray], np.ndarray]
    boundary_distance: Callable
    init_state: Callable = zero_state
    #: parameters besides threshold, levels and choices, with their defaults (Neuron node fields)
    extra: tuple = ()


def _abs_count(s):
    return np.abs(s).astype(np.int64)


NEURON_MODELS = {
    "if": NeuronModel("if", if_.IFParams, if_.step, if_.emitted, _abs_count, if_.boundary_distance),
    "ternary": NeuronModel("ternary", if_.TernaryIFParams, if_.ternary_step, if_.ternary_emitted, _abs_count,
                           if_.ternary_boundary_distance),
    "multithreshold": NeuronModel("multithreshold", multithreshold.MultiThresholdParams, multithreshold.step,
                                  multithreshold.emitted, multithreshold.popcount, multithreshold.boundary_distance),
    "lif": NeuronModel("lif", lif.LIFParams, lif.step, lif.emitted, _abs_count, lif.boundary_distance, lif.init_state,
                       (("beta", 1.0), ("bias", 0.0))),
    "cubalif": NeuronModel("cubalif", lif.CubaLIFParams, lif.cuba_step, lif.emitted, _abs_count, lif.boundary_distance,
                           lif.cuba_init_state, (("beta", 1.0), ("bias", 0.0), ("alpha", 0.0), ("gain", 1.0))),
}


def get_model(name: str) -> NeuronModel:
    try:
        return NEURON_MODELS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("neuron model", name, NEURON_MODELS) from None


def make_params(model: str, threshold=1.0, choices=None, levels=None, **extra):
    """Parameters of neuron model ``model`` (validated by the model's own dataclass); ``extra``: the
    model's other parameters (``beta``, ``bias``, ``alpha``, ``gain`` of the leaky models)."""
    m = get_model(model)
    kw = {} if choices is None else {"choices": choices}
    if levels is not None:
        kw["levels"] = tuple(levels)
    allowed = {k for k, _ in m.extra}
    for k, v in extra.items():
        if k not in allowed:
            raise UnknownNameError(f"parameter of a {model!r} neuron", k, allowed or {"(none)"})
        if v is not None:
            kw[k] = v
    return m.params_cls(threshold=threshold, **kw)


__all__ = ["if_", "integrator", "lif", "multithreshold", "MembraneState", "NeuronModel", "NEURON_MODELS", "get_model",
           "make_params"]
