r"""Leaky integrate-and-fire neurons, discrete time: ``lif`` (one state) and ``cubalif`` (a current-
based synapse in front, NIR's ``CubaLIF``).

LIF:

.. math::
    v^{pre}[t] = \beta\, v[t-1] + I[t] + b, \qquad s[t] = \Theta(v^{pre}[t] - \vartheta), \qquad
    v[t] = \mathrm{reset}(v^{pre}[t], s[t])

CubaLIF:

.. math::
    i[t] = \alpha\, i[t-1] + I[t], \qquad
    v^{pre}[t] = \beta\, v[t-1] + g\, i[t] + b, \quad \text{then as LIF}

Symbols: :math:`v` membrane (post-reset), :math:`v^{pre}` the membrane the decision is taken on,
:math:`I` the input current of step t (weights and any input gain already applied: a ``Scale``
node or the weights carry gains such as NIR's ``r dt / tau``), :math:`\beta` the membrane decay
per step (``beta`` in [0, 1]; 1 is the IF neuron), :math:`b` a constant input per step (``bias``,
e.g. ``(1 - beta) v_leak`` for a leak voltage), :math:`\vartheta` the threshold, :math:`i` the
synaptic current, :math:`\alpha` its decay per step (``alpha``), :math:`g` the current's gain into
the membrane (``gain``). Both update the current before the membrane (snnTorch ``Synaptic``, Norse's
NIR import of ``CubaLIF``).

Every choice of the IF model applies (comparison, order, reset, several spikes a step, floor, spike
value, reported membrane): the leak acts at the start of each step on the carried membrane, so
with ``order="fire-then-integrate"`` the decision is taken on ``beta v[t-1]`` and the input added
after the reset. ``reset_timing="next-step"`` (snnTorch ``Leaky`` with ``reset_delay=True``) applies a
subtractive reset after the next step's leak, undecayed: ``v^{pre}[t] = beta v^{pre}[t-1] + I[t] -
theta s[t-1]`` (a zero reset is the same either way). Parameters are per layer (scalars) or per
channel (1-D arrays), stored as float32 values and computed in float64.

Unlike an IF layer, a leaky layer's float64 membrane is not a sum of exact terms, so neither
backend can promise that a different summation order gives the same bits; both run leaky layers
densely in the same order (:mod:`refsim.backends.event.plan` says so).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import ValidationError
from ..semantics import DEFAULT_PROFILE, NeuronChoices, get_profile
from . import if_
from ._common import (MembraneState, as_threshold, broadcast_channels, check_choices, decision_rule, ordered_step,
                      reset_rule, zero_state)

__all__ = ["LIFParams", "CubaLIFParams", "CubaState", "step", "cuba_step", "emitted", "init_state", "cuba_init_state",
           "boundary_distance"]


def _per_channel(value, where, lo, hi, allow_hi=True):
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim > 1 or arr.size == 0:
        raise ValidationError(where, "a number or a 1-D array (one per channel)",
                              value if arr.size < 8 else f"array of shape {arr.shape}")
    a32 = arr.astype(np.float32)
    ok = np.isfinite(a32) & (a32 >= lo) & ((a32 <= hi) if allow_hi else True)
    if not np.all(ok):
        raise ValidationError(where, f"finite values in [{lo}, {hi}]" if allow_hi else f"finite values >= {lo}",
                              arr.tolist() if arr.size < 8 else "entries out of range")
    out = a32.astype(np.float64)
    out.setflags(write=False)
    return out


def _bias(value, where):
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr.astype(np.float32))):
        raise ValidationError(where, "a finite number or a 1-D array (one per channel)", value)
    out = arr.astype(np.float32).astype(np.float64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class LIFParams:
    """threshold > 0; beta in [0, 1] (membrane decay per step); bias (constant input per step,
    default 0); choices. Each a number or one value per channel."""

    threshold: object = 1.0
    beta: object = 1.0
    bias: object = 0.0
    choices: NeuronChoices = field(default_factory=NeuronChoices)

    def __post_init__(self):
        object.__setattr__(self, "threshold", as_threshold(self.threshold, "LIFParams.threshold"))
        object.__setattr__(self, "beta", _per_channel(self.beta, "LIFParams.beta", 0.0, 1.0))
        object.__setattr__(self, "bias", _bias(self.bias, "LIFParams.bias"))
        check_choices(self.choices, "LIFParams.choices")

    @classmethod
    def from_profile(cls, profile=DEFAULT_PROFILE, threshold=1.0, beta=1.0, bias=0.0, **overrides):
        return cls(threshold, beta, bias, get_profile(profile).choices("lif").replace(**overrides))


@dataclass(frozen=True, eq=False)
class CubaLIFParams(LIFParams):
    """LIFParams plus alpha in [0, 1] (synaptic current decay per step) and gain (the current's
    weight into the membrane, default 1)."""

    alpha: object = 0.0
    gain: object = 1.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "alpha", _per_channel(self.alpha, "CubaLIFParams.alpha", 0.0, 1.0))
        object.__setattr__(self, "gain", _bias(self.gain, "CubaLIFParams.gain"))

    @classmethod
    def from_profile(cls, profile=DEFAULT_PROFILE, threshold=1.0, beta=1.0, bias=0.0, alpha=0.0, gain=1.0, **overrides):
        return cls(threshold, beta, bias, get_profile(profile).choices("cubalif").replace(**overrides), alpha, gain)


class CubaState(NamedTuple):
    """State of a CubaLIF layer: the membrane (post-reset), the decision membrane, the current."""

    v: np.ndarray
    v_pre: np.ndarray
    i: np.ndarray


def init_state(shape) -> MembraneState:
    return zero_state(shape)


def cuba_init_state(shape) -> CubaState:
    z = zero_state(shape)
    return CubaState(z.v, z.v_pre, np.zeros(shape))




def _carried(state, params, ndim):
    """The membrane after this step's leak, before its input (with a pending next-step reset)."""
    beta = broadcast_channels(params.beta, ndim)
    c = params.choices
    if c.reset_timing == "next-step" and c.reset == "subtract":
        return beta * state.v_pre - (state.v_pre - state.v)
    return beta * state.v


def _advance(state, current, params, forced):
    c = params.choices
    nd = np.ndim(current)
    theta = broadcast_channels(params.threshold, nd)
    inputs = current + broadcast_channels(params.bias, nd)
    return ordered_step(_carried(state, params, nd), inputs, c, decision_rule(c, theta), reset_rule(c, theta), forced)


def step(state: MembraneState, inputs: np.ndarray, params: LIFParams, forced=None):
    """Advance one step of a LIF layer. Returns ``(spikes, new_state)`` (int32 counts)."""
    return _advance(state, np.asarray(inputs, dtype=np.float64), params, forced)


def cuba_step(state: CubaState, inputs: np.ndarray, params: CubaLIFParams, forced=None):
    """Advance one step of a CubaLIF layer: the current first, then the membrane."""
    x = np.asarray(inputs, dtype=np.float64)
    nd = np.ndim(x)
    i = broadcast_channels(params.alpha, nd) * state.i + x
    s, st = _advance(state, broadcast_channels(params.gain, nd) * i, params, forced)
    return s, CubaState(st.v, st.v_pre, i)


# what the spikes carry and how far a decision is from its boundary: as for the IF model
emitted = if_.emitted
boundary_distance = if_.boundary_distance
