"""Backends: who does the arithmetic of a run (:mod:`.base` defines the interface).

=============  =====================================================================
name           what
=============  =====================================================================
``reference``  dense NumPy in float64: the oracle (:mod:`.reference`)
``event``      Numba kernels over each step's spikes; bit-equal to the reference in
               float64 where sums are provably exact, float32 mode for speed
               (:mod:`.event`)
=============  =====================================================================
"""
from __future__ import annotations

from .base import Backend, LayerPlan, Run, UnsupportedError, dense
from .event import EventBackend
from .reference import ReferenceBackend
from ..errors import UnknownNameError

BACKENDS = ("reference", "event")


def get_backend(name: str) -> type:
    """The backend class registered under ``name`` (the event backend's Numba is imported here, lazily)."""
    if name == "reference":
        return ReferenceBackend
    if name == "event":
        return EventBackend
    raise UnknownNameError("backend", name, BACKENDS)


__all__ = ["BACKENDS", "Backend", "LayerPlan", "Run", "UnsupportedError", "dense", "get_backend"]
