"""A Numba loop that measures the machine's in-cache add rate, the yardstick ``refsim bench``
reports the scatter kernels against. ``cache=False``: it is compiled where it is timed."""
from __future__ import annotations

from numba import njit


@njit(cache=False)
def _l1_adds(a, b, s, reps):
    """``a += s * b`` ``reps`` times over vectors small enough to stay in L1."""
    for _ in range(reps):
        for j in range(a.shape[0]):
            a[j] += s * b[j]
