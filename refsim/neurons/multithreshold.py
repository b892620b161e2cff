r"""Multi-threshold IF neuron, Li et al. (Spiking-UNet) eqs. (4)-(6) and Theorem 3.1.

.. math::
    V(t) = V(t-1) + I(t) - \sum_i \vartheta_i s_i(t), \qquad o(t) = \sum_i \vartheta_i s_i(t)

Symbols: :math:`V` membrane, :math:`I` input current, :math:`\vartheta_i` the i-th level
(``levels`` times the per-layer or per-channel ``threshold`` scale), :math:`s_i \in \{0,1\}` the
spike of level i, :math:`o` the value sent on.

The levels are visited from high to low; at each one the *remaining* membrane is compared with
the level and, if it passes, that level fires once and is subtracted (the greedy form the
authors code and Theorem 3.1 analyses; docs/semantics.md section 3). The printed eq. (5), where every
level is compared with the same V, is not what the code does and is not offered. Output per step
is at most ``sum(levels) * threshold``. With levels 1/2, ..., 1/2^N and ``>=`` the truncation error
is in [0, 2^-N) for every V in [0, 1); with ``>`` it is in [0, 2^-N].

Spikes are reported as a bit mask per neuron: bit i set when level i (0 = highest) fired.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ValidationError
from ..semantics import DEFAULT_PROFILE, NeuronChoices, get_profile
from ._common import MembraneState, as_threshold, broadcast_channels, check_choices, exceeds, ordered_step, zero_state

DEFAULT_LEVELS = (2.0, 1.0, 0.5, 0.25)
MAX_LEVELS = 8  # bit mask fits in uint8

__all__ = ["MultiThresholdParams", "step", "emitted", "init_state", "DEFAULT_LEVELS", "popcount", "boundary_distance"]


@dataclass(frozen=True, eq=False)
class MultiThresholdParams:
    """levels : strictly descending positive levels (default 2, 1, 0.5, 0.25), at most 8.
    threshold : scale of all levels, per layer (scalar) or per channel (1-D), default 1.
    choices : comparison, order, reset ('subtract' subtracts what fired), v_min."""

    levels: tuple = DEFAULT_LEVELS
    threshold: object = 1.0
    choices: NeuronChoices = field(default_factory=NeuronChoices)

    def __post_init__(self):
        lv = np.asarray(self.levels)
        if lv.ndim != 1 or lv.size == 0 or lv.size > MAX_LEVELS or lv.dtype.kind not in "fiu":
            raise ValidationError("MultiThresholdParams.levels", f"1 to {MAX_LEVELS} numbers", self.levels)
        lv32 = lv.astype(np.float32)
        if not np.all(np.isfinite(lv32)) or not np.all(lv32 > 0) or not np.all(np.diff(lv32) < 0):
            raise ValidationError("MultiThresholdParams.levels", "strictly descending positive finite levels", tuple(lv.tolist()))
        object.__setattr__(self, "levels", tuple(float(x) for x in lv32))
        object.__setattr__(self, "threshold", as_threshold(self.threshold, "MultiThresholdParams.threshold"))
        check_choices(self.choices, "MultiThresholdParams.choices")
        if self.choices.spikes_per_step != "one":
            raise ValidationError("MultiThresholdParams.choices.spikes_per_step", "'one' (one spike per level per step)",
                                  self.choices.spikes_per_step)

    @classmethod
    def from_profile(cls, profile=DEFAULT_PROFILE, levels=DEFAULT_LEVELS, threshold=1.0, **overrides):
        return cls(levels, threshold, get_profile(profile).choices("multithreshold").replace(**overrides))


def init_state(shape) -> MembraneState:
    return zero_state(shape)


def _scaled_levels(params, ndim):
    theta = broadcast_channels(params.threshold, ndim)
    # float32 level * float32 scale is exact in float64 (24 + 24 significant bits).
    return [lvl * theta for lvl in params.levels]


def step(state: MembraneState, inputs: np.ndarray, params: MultiThresholdParams, forced=None):
    """Advance one step. Returns ``(mask, new_state)``: uint8 bit mask of the levels that fired.
    ``forced``: reset with this mask instead (teacher forcing, :func:`ordered_step`)."""
    c = params.choices
    x = np.asarray(inputs, dtype=np.float64)
    levels = _scaled_levels(params, x.ndim)

    def decide(v):
        rest = v
        mask = np.zeros(np.shape(v), dtype=np.uint8)
        for i, lvl in enumerate(levels):
            hit = exceeds(rest, lvl, c.comparison)
            rest = np.where(hit, rest - lvl, rest)
            mask |= hit.astype(np.uint8) << np.uint8(i)
        return mask

    def reset(v, mask):
        if c.reset == "subtract":  # the levels that fired, subtracted high to low as the greedy pass does
            for i, lvl in enumerate(levels):
                v = np.where((mask >> np.uint8(i)) & 1, v - lvl, v)
            return v
        if c.reset == "zero":
            return np.where(mask > 0, 0.0, v)
        return v

    return ordered_step(state.v, x, c, decide, reset, forced)


def boundary_distance(v: np.ndarray, params: MultiThresholdParams, a=None, b=None) -> np.ndarray:
    """Distance of ``v`` from the nearest level boundary the greedy pass compares against (the two
    level masks ``a``, ``b`` are not needed: any level a rounding error moves is one of these)."""
    d = np.full(np.shape(v), np.inf)
    rest = v
    for lvl in _scaled_levels(params, np.ndim(v)):
        d = np.minimum(d, np.abs(rest - lvl))
        rest = np.where(exceeds(rest, lvl, params.choices.comparison), rest - lvl, rest)
    return d


def emitted(mask: np.ndarray, params: MultiThresholdParams) -> np.ndarray:
    """o = sum of the levels that fired (Li eq. 6)."""
    levels = _scaled_levels(params, mask.ndim)
    out = np.zeros(mask.shape, dtype=np.float64)
    for i, lvl in enumerate(levels):
        out = out + ((mask >> np.uint8(i)) & 1) * lvl
    return out


def popcount(mask: np.ndarray) -> np.ndarray:
    """Number of spikes (levels fired) per neuron."""
    m = mask.astype(np.uint8)
    n = np.zeros(m.shape, dtype=np.int32)
    for i in range(MAX_LEVELS):
        n += (m >> np.uint8(i)) & 1
    return n
