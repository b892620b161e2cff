"""Pieces shared by the neuron models: threshold validation, exact comparisons, update order."""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..errors import ValidationError
from ..semantics import NeuronChoices


class MembraneState(NamedTuple):
    """State of a one-compartment neuron layer.

    v : membrane after the step (post-reset), float64, the value the dynamics carry on.
    v_pre : membrane the spike decision was taken on (pre-reset), for recorders that ask for it.
    """

    v: np.ndarray
    v_pre: np.ndarray


def as_threshold(value, where: str) -> np.ndarray:
    """Validate a threshold (scalar per layer, or 1-D per channel) and return it as float64.

    Thresholds are parameters, so they are rounded to float32 first, as every trainer stores
    them, then widened to float64 for the reference arithmetic (docs/architecture.md).
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim > 1 or arr.size == 0:
        raise ValidationError(where, "a positive number or a 1-D array of positive numbers (one per channel)",
                              value if arr.size < 8 else f"array of shape {arr.shape}, dtype {arr.dtype}")
    arr32 = arr.astype(np.float32)
    if not np.all(np.isfinite(arr32)) or not np.all(arr32 > 0):
        raise ValidationError(where, "finite thresholds > 0 (in float32)", arr.tolist() if arr.size < 8 else "non-positive or non-finite entries")
    out = arr32.astype(np.float64)
    out.setflags(write=False)
    return out


def broadcast_channels(theta: np.ndarray, ndim: int) -> np.ndarray:
    """Shape a per-channel vector to broadcast against (batch, channels, ...) of rank ``ndim``."""
    if theta.ndim == 0:
        return theta
    return theta.reshape((1, -1) + (1,) * (ndim - 2))


def exceeds(v: np.ndarray, theta, comparison: str) -> np.ndarray:
    """``v > theta`` or ``v >= theta``, elementwise."""
    return v > theta if comparison == ">" else v >= theta


def count_multi(v: np.ndarray, theta, comparison: str) -> np.ndarray:
    """Number of spikes when as many as fit are emitted in one step.

    With ``>=`` this is the largest n >= 0 with n*theta <= v (Sinabs ``MultiSpike``,
    floor(v/theta)); with ``>`` the largest n with n*theta < v. The quotient v/theta is
    rounded, so it is corrected with products n*theta, which are exact in float64 for
    float32 thresholds and counts below 2**29; beyond that (a tiny threshold) the products round
    and a count may be off by a few, the same on both backends. Counts are int64 (such thresholds
    give counts far beyond int32).
    """
    q = v / theta
    if comparison == ">=":
        n = np.floor(q)
        n = np.where(n * theta > v, n - 1, n)
        n = np.where((n + 1) * theta <= v, n + 1, n)
    else:
        n = np.ceil(q) - 1
        n = np.where(n * theta >= v, n - 1, n)
        n = np.where((n + 1) * theta < v, n + 1, n)
    return np.maximum(n, 0).astype(np.int64)


def decision_rule(c: NeuronChoices, theta):
    """The spike decision of ``c`` as ``decide(v)``: one spike where ``v`` passes ``theta`` (by
    ``c.comparison``), or as many as fit (``spikes_per_step="multi"``, :func:`count_multi`)."""
    if c.spikes_per_step == "one":
        return lambda v: exceeds(v, theta, c.comparison).astype(np.int32)
    return lambda v: count_multi(v, theta, c.comparison)


def reset_rule(c: NeuronChoices, theta):
    """The reset of ``c.reset`` as ``reset(v, n)`` for ``n`` spikes of charge ``theta`` (signed for
    ternary): subtract the charge, set to 0 where a spike was emitted, or leave ``v``."""
    if c.reset == "subtract":
        return lambda v, n: v - n * theta
    if c.reset == "zero":
        return lambda v, n: np.where(n != 0, 0.0, v)
    return lambda v, n: v


def ordered_step(v_prev: np.ndarray, inputs: np.ndarray, choices: NeuronChoices,
                 decide: Callable[[np.ndarray], np.ndarray], reset: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 forced: np.ndarray | None = None) -> tuple:
    """The update order, the decision, the reset and the membrane floor: the one place they are composed.

    ``decide(v) -> spikes`` takes the spike decision on the membrane ``v``; ``reset(v, spikes) -> v``
    applies the reset rule for those spikes. Integrate-then-fire adds the input before the decision
    (Yue eq. 1); fire-then-integrate decides on the previous membrane and adds the input after the
    reset (Rathi et al. 2020 code). The floor ``v_min`` is applied last (Sinabs ``min_v_mem``).

    ``forced``: spikes to reset with instead of the decided ones (teacher forcing in
    ``refsim check``: the neuron follows another implementation's spikes, while its own decision
    is still returned). Returns ``(decided spikes, MembraneState(v after the step, v decided on))``.
    """
    fire_first = choices.order == "fire-then-integrate"
    v_pre = v_prev if fire_first else v_prev + inputs
    spikes = decide(v_pre)
    v = reset(v_pre, spikes if forced is None else forced)
    if fire_first:
        v = v + inputs
    if choices.v_min is not None:
        v = np.maximum(v, choices.v_min)
    return spikes, MembraneState(v, v_pre)


def check_choices(choices, where: str) -> NeuronChoices:
    if not isinstance(choices, NeuronChoices):
        raise ValidationError(where, "a refsim.semantics.NeuronChoices", type(choices).__name__)
    return choices


def zero_state(shape, dtype=np.float64) -> MembraneState:
    z = np.zeros(shape, dtype=dtype)
    return MembraneState(z, z.copy())
