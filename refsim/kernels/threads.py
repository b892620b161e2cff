"""Numba's thread count, set for the duration of a run (the only place outside the kernels that
touches Numba's global state)."""
from __future__ import annotations

import contextlib

import numba


def current() -> int:
    """Threads the parallel kernels use now."""
    return numba.get_num_threads()


def available() -> int:
    """The most threads Numba was started with (``NUMBA_NUM_THREADS``)."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def using(threads: int | None):
    """Run the parallel kernels on ``threads`` threads (at most :func:`available`) inside the block;
    ``None`` keeps Numba's setting. Yields the count in force."""
    if threads is None:
        yield numba.get_num_threads()
        return
    saved = numba.get_num_threads()
    numba.set_num_threads(min(int(threads), available()))
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(saved)
