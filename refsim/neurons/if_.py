r"""Integrate-and-fire neurons with binary (or counted) spikes and with ternary spikes.

Binary IF, Yue et al. 2023 eqs. (1)-(2) (also Li et al. eqs. (1)-(3)):

.. math::
    u_i[t] = u_i[t-1] + \sum_j w_{ij} o_j[t] - \vartheta\, o_i[t-1], \qquad
    o_i[t] = \Theta(u_i[t] - \vartheta)

Symbols: :math:`u` membrane before the reset of step t, :math:`w_{ij}` synaptic weight,
:math:`o_j[t]` presynaptic spike, :math:`\vartheta` threshold (``threshold``, per layer or per
channel), :math:`\Theta` the step function whose value at 0 is the ``comparison`` choice
(Yue writes ``>``). The reset term is the spike of step t subtracted once (soft reset);
``reset``, ``order``, ``spikes_per_step``, ``v_min`` and ``spike_value`` name the other
behaviours of docs/semantics.md section 1.

Ternary IF (SpikingJelly ``TernaryIFNode``; Yue et al. 2023 section 3.3 for ternary spikes):
``s = +1`` when ``v >= theta``, ``-1`` when ``v <= -theta`` (the comparison choice applies to both
signs), reset subtracts ``s * theta``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ValidationError
from ..semantics import DEFAULT_PROFILE, NeuronChoices, get_profile
from ._common import (MembraneState, as_threshold, broadcast_channels, check_choices, decision_rule,
                      exceeds, ordered_step, reset_rule, zero_state)

__all__ = ["IFParams", "TernaryIFParams", "step", "ternary_step", "emitted", "ternary_emitted", "init_state",
           "boundary_distance", "ternary_boundary_distance"]


@dataclass(frozen=True, eq=False)
class IFParams:
    """Parameters of a binary IF layer.

    threshold : float or 1-D array (one per channel), > 0, stored as float32 values.
    choices : the spike-changing choices (:class:`refsim.semantics.NeuronChoices`).
    """

    threshold: object = 1.0
    choices: NeuronChoices = field(default_factory=NeuronChoices)

    def __post_init__(self):
        object.__setattr__(self, "threshold", as_threshold(self.threshold, "IFParams.threshold"))
        check_choices(self.choices, "IFParams.choices")

    @classmethod
    def from_profile(cls, profile=DEFAULT_PROFILE, threshold=1.0, **overrides):
        return cls(threshold, get_profile(profile).choices("if").replace(**overrides))


@dataclass(frozen=True, eq=False)
class TernaryIFParams:
    """Parameters of a ternary IF layer (spikes in {-1, 0, +1}); one spike per step only."""

    threshold: object = 1.0
    choices: NeuronChoices = field(default_factory=lambda: NeuronChoices(comparison=">="))

    def __post_init__(self):
        object.__setattr__(self, "threshold", as_threshold(self.threshold, "TernaryIFParams.threshold"))
        check_choices(self.choices, "TernaryIFParams.choices")
        if self.choices.spikes_per_step != "one":
            raise ValidationError("TernaryIFParams.choices.spikes_per_step", "'one' (ternary neurons emit at most one signed spike a step)",
                                  self.choices.spikes_per_step)

    @classmethod
    def from_profile(cls, profile=DEFAULT_PROFILE, threshold=1.0, **overrides):
        return cls(threshold, get_profile(profile).choices("ternary").replace(**overrides))


def init_state(shape) -> MembraneState:
    """All membranes at 0 (every model starts there)."""
    return zero_state(shape)




def step(state: MembraneState, inputs: np.ndarray, params: IFParams, forced=None):
    """Advance one time step. Returns ``(spikes, new_state)``; ``spikes`` is an int32 count per neuron.
    ``forced``: reset with these spikes instead (teacher forcing, :func:`ordered_step`)."""
    c = params.choices
    theta = broadcast_channels(params.threshold, np.ndim(inputs))
    return ordered_step(state.v, np.asarray(inputs, dtype=np.float64), c, decision_rule(c, theta),
                        reset_rule(c, theta), forced)


def emitted(spikes: np.ndarray, params) -> np.ndarray:
    """What a layer's spikes carry to the next layer: the count, or count * threshold."""
    if params.choices.spike_value == "threshold":
        return spikes * broadcast_channels(params.threshold, spikes.ndim)
    return spikes.astype(np.float64)


def boundary_distance(v: np.ndarray, params, a=None, b=None) -> np.ndarray:
    """Distance of the membrane ``v`` a decision is taken on from the decision boundary a rounding
    error would have to cross (``refsim check``): the threshold; for several spikes a step, the
    multiple of it between the two counts ``a`` and ``b`` (max(a, b) * theta) when they are given,
    else the nearest multiple."""
    theta = broadcast_channels(params.threshold, v.ndim)
    if params.choices.spikes_per_step == "multi":
        if a is not None:
            k = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1).astype(np.float64)
        else:
            k = np.maximum(np.round(v / theta), 1.0)
        return np.abs(v - k * theta)
    return np.abs(v - theta)


def ternary_step(state: MembraneState, inputs: np.ndarray, params: TernaryIFParams, forced=None):
    """Advance one step of a ternary layer; ``spikes`` is int32 in {-1, 0, +1}."""
    c = params.choices
    theta = broadcast_channels(params.threshold, np.ndim(inputs))

    def decide(v):
        return exceeds(v, theta, c.comparison).astype(np.int32) - exceeds(-v, theta, c.comparison).astype(np.int32)

    return ordered_step(state.v, np.asarray(inputs, dtype=np.float64), c, decide, reset_rule(c, theta), forced)


ternary_emitted = emitted


def ternary_boundary_distance(v: np.ndarray, params, a=None, b=None) -> np.ndarray:
    """Distance of ``v`` from the boundary between the two signs ``a`` and ``b`` when they are given
    (+theta between 0 and +1, -theta between 0 and -1; a flip between +1 and -1 crosses both, so
    the farther one), else from the nearer of +theta and -theta. A 0 -> +1 flip next to -theta is
    no rounding tie."""
    theta = broadcast_channels(params.threshold, v.ndim)
    up, down = np.abs(v - theta), np.abs(v + theta)
    if a is None:
        return np.minimum(up, down)
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    return np.where((hi > 0) & (lo < 0), np.maximum(up, down), np.where(hi > 0, up, down))
