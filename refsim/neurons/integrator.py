r"""Non-firing output integrator, Yue et al. 2023 eq. (3).

.. math:: u_i[t] = u_i[t-1] + \sum_j w_{ij} o_j[t]

Symbols: :math:`u` output membrane (never reset), :math:`w_{ij} o_j[t]` the input current of
step t. The readout (sigmoid, argmax, division by T) is applied to the recorded membrane, not
inside the dynamics (docs/semantics.md section 2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import MembraneState, zero_state


@dataclass(frozen=True)
class IntegratorParams:
    """The integrator has no parameters; the class exists so every model has the same shape."""


def init_state(shape) -> MembraneState:
    return zero_state(shape)


def step(state: MembraneState, inputs: np.ndarray, params: IntegratorParams | None = None):
    """Returns ``(None, new_state)``: the integrator never spikes."""
    v = state.v + np.asarray(inputs, dtype=np.float64)
    return None, MembraneState(v, v)
