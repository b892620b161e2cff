"""One run configuration for every entry point (``refsim run``, ``analyze``, ``convert``,
``segment``, ``demo`` and the library functions behind them).

Each setting is resolved once, in this order: the value given explicitly (an option or a keyword),
then what the model file declares in its metadata (``profile``, ``encoding``, ``normalize``,
``readout``, ``axis``; docs/model-format.md), then the default written here, in :data:`DEFAULTS`.
Every value is validated against the library's own list of names, so an option's choices and the
library never disagree (the command line builds its ``choices`` from the same lists).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .backends import BACKENDS
from .encoding import ENCODERS, make_encoder
from .errors import UnknownNameError, ValidationError
from .io.nifti import NORMALIZATIONS
from .readout import READOUTS
from .semantics import DEFAULT_PROFILE, get_profile
from .simulator import DTYPES, Simulator

#: every setting's default, written once
DEFAULTS = {"profile": DEFAULT_PROFILE, "backend": "event", "dtype": "float64", "threads": None,
            "encoding": "poisson", "seed": 0, "readout": "sigmoid-mean", "axis": 0}

#: the settings a model file may declare in its metadata
FROM_METADATA = ("profile", "encoding", "normalize", "readout", "axis")


@dataclass(frozen=True)
class RunConfig:
    """Resolved run settings (see the module docstring); build with :meth:`resolve`."""

    profile: str
    backend: str
    dtype: str
    threads: int | None
    encoding: str
    seed: int
    normalize: str
    readout: str
    axis: int

    @classmethod
    def resolve(cls, graph=None, **given) -> "RunConfig":
        """Settings from ``given`` (None means "not given"), then ``graph``'s metadata, then
        :data:`DEFAULTS`; ``normalize`` defaults to ``"zero-mean"`` for ternary Poisson input
        (Yue et al. 2023 section 3.3) and ``"unit"`` otherwise."""
        unknown = set(given) - set(cls.__dataclass_fields__)
        if unknown:
            raise UnknownNameError("run setting", sorted(unknown)[0], tuple(cls.__dataclass_fields__))
        meta = dict(getattr(graph, "metadata", None) or {})
        out = {}
        for key in cls.__dataclass_fields__:
            v = given.get(key)
            if v is None and key in FROM_METADATA:
                v = meta.get(key)
            if v is None and key != "normalize":
                v = DEFAULTS[key]
            out[key] = v
        if out["normalize"] is None:
            out["normalize"] = "zero-mean" if out["encoding"] == "poisson-ternary" else "unit"
        cfg = cls(**out)
        cfg._validate(meta)
        return cfg

    def _validate(self, meta):
        def where(key):
            return f"{key} (model metadata)" if key in meta and key in FROM_METADATA else key
        get_profile(self.profile)
        for key, names in (("backend", BACKENDS), ("dtype", DTYPES), ("encoding", tuple(ENCODERS)),
                           ("normalize", NORMALIZATIONS), ("readout", READOUTS)):
            if getattr(self, key) not in names:
                raise UnknownNameError(where(key), getattr(self, key), names)
        if isinstance(self.axis, bool) or not isinstance(self.axis, (int, np.integer)) or self.axis not in (0, 1, 2):
            raise ValidationError(where("axis"), "0, 1 or 2 (the slicing axis of a volume)", repr(self.axis))
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, (int, np.integer))
                                         or self.threads < 1):
            raise ValidationError("threads", "a positive integer or None (Numba's default)", self.threads)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValidationError("seed", "a non-negative integer", self.seed)

    def simulator(self, graph):
        """A :class:`~refsim.simulator.Simulator` of ``graph`` with these settings."""
        return Simulator(graph, self.profile, self.backend, threads=self.threads, dtype=self.dtype)

    def encoder(self):
        """The input encoder these settings name, seeded."""
        return make_encoder(self.encoding, seed=self.seed)

    def as_dict(self) -> dict:
        return asdict(self)


__all__ = ["RunConfig", "DEFAULTS", "DTYPES", "FROM_METADATA"]
