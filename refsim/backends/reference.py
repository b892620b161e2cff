"""The reference backend: dense NumPy, float32 parameters widened to float64, float64 membranes.

Every node runs the dense arithmetic of :mod:`refsim.graph.ops` and :mod:`refsim.neurons`
(:class:`refsim.backends.base.Run`). For binary, ternary and power-of-two multi-threshold spikes its
sums are exact (:mod:`refsim.exactness`), so its traces are the equations' own answer: the oracle
other backends and libraries are compared with.
"""
from __future__ import annotations

from .base import Backend


class ReferenceBackend(Backend):
    name = "reference"
    DTYPES = ("float64",)
    DTYPE_REASON = " (it is the float64 oracle)"
