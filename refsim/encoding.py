"""Input encoders: Poisson (binary and ternary), static (direct) coding, replay of recorded spikes.

Random state is explicit and per sample: sample ``i`` of a run with seed ``s`` draws from
``numpy.random.Generator(PCG64(SeedSequence([s, i])))``, one fresh uniform draw per pixel per
step. The same seed therefore gives the same spikes for a sample whatever the batch size, the
batch position (``sample_offset`` says where a batch starts) or the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EncodingError, UnknownNameError

POISSON_COMPARISONS = ("<", "<=")


def _rngs(seed, n, offset):
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(offset) + i]))) for i in range(n)]


class Encoder:
    """Base class: ``stream(x, T, sample_offset=0)`` yields one float64 array (B, ...) a step."""

    is_static = False
    emits_spikes = False  # True when every value is a spike (0, +-1): the event backend may scatter it

    def stream(self, x, T, sample_offset=0):
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class PoissonEncoder(Encoder):
    """Rate coding (Yue et al. 2023 section 3.3).

    Each step draws ``r ~ U[0, 1)`` per pixel. Binary: emit 1 where ``r < x`` (``comparison="<"``,
    Yue's text) or ``r <= x`` (``"<="``, Rathi's code), ``x`` in [0, 1]. Ternary: emit ``sign(x)``
    where ``r`` compares with ``|x|``, ``x`` in [-1, 1].
    """

    seed: int = 0
    ternary: bool = False
    comparison: str = "<"
    emits_spikes = True

    def __post_init__(self):
        if self.comparison not in POISSON_COMPARISONS:
            raise EncodingError(f"PoissonEncoder.comparison: expected one of '<', '<=', found {self.comparison!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise EncodingError(f"PoissonEncoder.seed: expected a non-negative integer, found {self.seed!r}")

    def stream(self, x, T, sample_offset=0):
        x = np.asarray(x, dtype=np.float64)
        lo = -1.0 if self.ternary else 0.0
        if x.size and not np.all(np.isfinite(x)):
            raise EncodingError(f"PoissonEncoder input: expected values in [{lo:g}, 1], found "
                                f"{int(np.count_nonzero(~np.isfinite(x)))} NaN or inf entries")
        if x.size and (x.min() < lo or x.max() > 1.0):
            raise EncodingError(f"PoissonEncoder input: expected values in [{lo:g}, 1] "
                                f"({'ternary' if self.ternary else 'binary'}), found range [{x.min():g}, {x.max():g}]")
        rngs = _rngs(self.seed, x.shape[0], sample_offset)
        mag = np.abs(x)
        sign = np.sign(x)
        for _ in range(T):
            r = np.stack([g.random(x.shape[1:]) for g in rngs])
            fire = r < mag if self.comparison == "<" else r <= mag
            yield (fire * sign) if self.ternary else fire.astype(np.float64)

    def describe(self):
        return {"type": "poisson", "seed": int(self.seed), "ternary": bool(self.ternary), "comparison": self.comparison}


@dataclass(frozen=True)
class StaticEncoder(Encoder):
    """Static (direct) coding (Li et al. section 3.1): the analog input every step."""

    is_static = True

    def stream(self, x, T, sample_offset=0):
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise EncodingError("StaticEncoder input: expected finite values, found NaN or inf")
        for _ in range(T):
            yield x

    def describe(self):
        return {"type": "static"}


@dataclass(frozen=True, eq=False)
class ReplayEncoder(Encoder):
    """Replay a recorded input spike train ``spikes`` of shape (T, B, ...) (values in {-1, 0, 1}
    or any finite values). The ``x`` given to :meth:`stream` only fixes the expected shape."""

    spikes: np.ndarray = None

    def __post_init__(self):
        s = np.asarray(self.spikes)
        if s.ndim < 2 or s.dtype.kind not in "biuf" or not np.all(np.isfinite(s)):
            raise EncodingError(f"ReplayEncoder.spikes: expected a finite numeric array (T, B, ...), found shape {s.shape}, dtype {s.dtype}")
        object.__setattr__(self, "spikes", s)
        object.__setattr__(self, "emits_spikes", bool(np.all((s == 0) | (s == 1) | (s == -1))))

    def stream(self, x, T, sample_offset=0):
        s = self.spikes
        if T > s.shape[0]:
            raise EncodingError(f"ReplayEncoder: expected at least T={T} recorded steps, found {s.shape[0]}")
        if x is not None and tuple(s.shape[1:]) != tuple(np.shape(x)):
            raise EncodingError(f"ReplayEncoder: expected recorded steps of shape {tuple(np.shape(x))}, found {tuple(s.shape[1:])}")
        for t in range(T):
            yield s[t].astype(np.float64)

    def describe(self):
        return {"type": "replay", "steps": int(self.spikes.shape[0])}


ENCODERS = {"poisson": lambda seed=0, **kw: PoissonEncoder(seed=seed, **kw),
            "poisson-ternary": lambda seed=0, **kw: PoissonEncoder(seed=seed, ternary=True, **kw),
            "static": lambda seed=0, **kw: StaticEncoder()}


def make_encoder(name: str, seed: int = 0, **kw) -> Encoder:
    try:
        factory = ENCODERS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("encoder", name, ENCODERS) from None
    return factory(seed=seed, **kw)
