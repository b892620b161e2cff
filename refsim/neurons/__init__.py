"""Neuron models, one module each, and the registry that maps a model name to its functions.

=================  ====================================  ====================================
name               module                                properties (:class:`NeuronModel`)
=================  ====================================  ====================================
``if``             :mod:`refsim.neurons.if_`             spikes: a count (0/1, or n multi)
``ternary``        :mod:`refsim.neurons.if_`             ``signed``: spikes in {-1, 0, 1}
``multithreshold`` :mod:`refsim.neurons.multithreshold`  ``bitmask``: a uint8 mask of levels
``lif``            :mod:`refsim.neurons.lif`             ``leaks`` (``beta``, ``bias``)
``cubalif``        :mod:`refsim.neurons.lif`             ``leaks`` (``beta``, ``bias``, ``alpha``, ``gain``)
=================  ====================================  ====================================

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


#: per-step spike records: a multi-spike count fits int16 (a count above 32767 in one step is refused)
_COUNT_MAX = int(np.iinfo(np.int16).max)


@dataclass(frozen=True)
class NeuronModel:
    """Everything the rest of refsim needs to know about a neuron model; modules ask this instead of
    branching on model names.

    ``signed``: spikes carry a sign (ternary: -1, 0, +1). ``leaks``: the membrane decays between
    steps (its bounds under ``refsim check`` need the decay). ``bitmask``: a step's spike record is a
    bit mask of the levels that fired (multi-threshold), and the emitted value is level x threshold
    whatever the profile's ``spike_value``; otherwise the record is a count (or a sign).
    ``current``: the state carries a synaptic current ``i`` beside the membrane (CubaLIF)."""
    name: str
    params_cls: type
    step: Callable
    emitted: Callable
    spike_count: Callable[[np.ndarray], np.ndarray]
    boundary_distance: Callable
    init_state: Callable = zero_state
    #: parameters besides threshold, levels and choices, with their defaults (Neuron node fields)
    extra: tuple = ()
    signed: bool = False
    leaks: bool = False
    bitmask: bool = False
    current: bool = False

    def spike_dtype(self, multi: bool = False) -> np.dtype:
        """dtype of a per-step spike record: uint8 masks, int16 multi-spike counts, int8 otherwise
        (0/1 or a sign)."""
        return np.dtype(np.uint8 if self.bitmask else (np.int16 if multi else np.int8))

    @property
    def record_dtype(self) -> np.dtype:
        """The smallest dtype holding every value of :attr:`spike_range` (a record whose producer
        did not say whether several spikes a step are allowed: trace files written by hand)."""
        return np.dtype(np.uint8 if self.bitmask else (np.int8 if self.signed else np.int16))

    @property
    def spike_range(self) -> tuple[int, int]:
        """(lowest, highest) value a per-step spike record may hold."""
        if self.bitmask:
            return (0, 255)
        return (-1, 1) if self.signed else (0, _COUNT_MAX)

    def max_rate(self, params) -> float:
        """Largest number of spikes (in units of the threshold) a neuron emits in one step under
        ``params``: the sum of the levels for a bit mask, 1 for one spike a step, unbounded for
        several."""
        if self.bitmask:
            return float(sum(params.levels))
        return 1.0 if params.choices.spikes_per_step == "one" else np.inf


def _abs_count(s):
    return np.abs(s).astype(np.int64)


NEURON_MODELS = {
    "if": NeuronModel("if", if_.IFParams, if_.step, if_.emitted, _abs_count, if_.boundary_distance),
    "ternary": NeuronModel("ternary", if_.TernaryIFParams, if_.ternary_step, if_.ternary_emitted, _abs_count,
                           if_.ternary_boundary_distance, signed=True),
    "multithreshold": NeuronModel("multithreshold", multithreshold.MultiThresholdParams, multithreshold.step,
                                  multithreshold.emitted, multithreshold.popcount, multithreshold.boundary_distance,
                                  bitmask=True),
    "lif": NeuronModel("lif", lif.LIFParams, lif.step, lif.emitted, _abs_count, lif.boundary_distance, lif.init_state,
                       (("beta", 1.0), ("bias", 0.0)), leaks=True),
    "cubalif": NeuronModel("cubalif", lif.CubaLIFParams, lif.cuba_step, lif.emitted, _abs_count, lif.boundary_distance,
                           lif.cuba_init_state, (("beta", 1.0), ("bias", 0.0), ("alpha", 0.0), ("gain", 1.0)),
                           leaks=True, current=True),
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
