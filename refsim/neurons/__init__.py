"""Neuron models, one module each, and the registry that maps a model name to its functions.

=================  ==========================================  ==============================
name               module                                      spikes
=================  ==========================================  ==============================
``if``             :mod:`refsim.neurons.if_`                   int32 count (0/1, or n multi)
``ternary``        :mod:`refsim.neurons.if_`                   int32 in {-1, 0, 1}
``multithreshold`` :mod:`refsim.neurons.multithreshold`        uint8 bit mask of levels
=================  ==========================================  ==============================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import UnknownNameError
from . import if_, integrator, multithreshold
from ._common import MembraneState


@dataclass(frozen=True)
class NeuronModel:
    name: str
    params_cls: type
    step: Callable
    emitted: Callable
    spike_count: Callable[[np.ndarray], np.ndarray]


def _abs_count(s):
    return np.abs(s).astype(np.int64)


NEURON_MODELS = {
    "if": NeuronModel("if", if_.IFParams, if_.step, if_.emitted, _abs_count),
    "ternary": NeuronModel("ternary", if_.TernaryIFParams, if_.ternary_step, if_.ternary_emitted, _abs_count),
    "multithreshold": NeuronModel("multithreshold", multithreshold.MultiThresholdParams, multithreshold.step,
                                  multithreshold.emitted, multithreshold.popcount),
}


def get_model(name: str) -> NeuronModel:
    try:
        return NEURON_MODELS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("neuron model", name, NEURON_MODELS) from None


__all__ = ["if_", "integrator", "multithreshold", "MembraneState", "NeuronModel", "NEURON_MODELS", "get_model"]
