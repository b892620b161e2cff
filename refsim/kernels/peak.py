"""A yardstick for the benchmark: how fast this CPU adds float64 vectors in L1 cache, measured with
the same compiler (Numba/LLVM, no ``fastmath``) as the event kernels.

* :func:`_add_into`: ``o[j] += w[j]``: the scatter's inner operation for one event (two loads, an
  add and a store per element);
* :func:`_add4_into`: ``o[j] += (w1[j] + w2[j]) + (w3[j] + w4[j])``: four events of one pixel at
  once, as the scatter groups them (four adds per store).

The benchmark times them on arrays that fit in L1 and divides the adds by the time
(:func:`refsim.bench.add_rates`); ``tests/unit/test_kernels.py`` checks their results against NumPy.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def _add_into(o, w, reps):
    """``o += w``, ``reps`` times."""
    n = o.shape[0]
    for _ in range(reps):
        for j in range(n):
            o[j] += w[j]


@njit(cache=True)
def _add4_into(o, w1, w2, w3, w4, reps):
    """``o += (w1 + w2) + (w3 + w4)``, ``reps`` times."""
    n = o.shape[0]
    for _ in range(reps):
        for j in range(n):
            o[j] += (w1[j] + w2[j]) + (w3[j] + w4[j])
