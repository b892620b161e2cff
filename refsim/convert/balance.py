"""Threshold balancing (Sengupta et al. 2019, as coded by Rathi et al. 2020 and used by Yue et al.
2023; docs/semantics.md section 5).

Layer by layer in graph order, the spiking network runs ``T`` steps on a calibration batch with the
thresholds already found for the layers before; the threshold of layer l is the largest input
current ``W_l s_{l-1}[t]`` it receives over all steps and elements, times ``scale`` (0.7 in Rathi's
code), computed in float64 and stored as float32. Weights are not changed. ``T`` is 1000 in the
code; Yue's early stop uses 200.

Deterministic: the calibration samples are put in a canonical order (by the SHA-256 of their bytes)
before they are encoded, and every sample draws its spikes from its own generator (seed, index), so
the same calibration data give the same thresholds whatever their order or the batch size
(``batch``: how many samples are simulated together, for memory).
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..encoding import PoissonEncoder
from ..errors import ValidationError
from ..graph import Graph
from ..simulator import Simulator
from ..traces import Recorder


def _canonical(x):
    x = np.asarray(x, dtype=np.float64)
    keys = [hashlib.sha256(np.ascontiguousarray(s).tobytes()).hexdigest() for s in x]
    order = np.argsort(keys, kind="stable")
    digest = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()
    return x[order], digest


def threshold_balance(graph: Graph, x, T: int = 200, scale: float = 0.7, profile="paper", backend="event",
                      seed: int = 0, encoder=None, batch: int = 16, progress=False, echo=None) -> Graph:
    """A copy of ``graph`` whose neuron thresholds are balanced on calibration inputs ``x`` (B, ...).
    The returned graph's metadata records how (``metadata["conversion"]``)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError("threshold_balance(T)", "a positive number of steps", T)
    if not 0 < scale:
        raise ValidationError("threshold_balance(scale)", "a positive scaling factor", scale)
    xs, digest = _canonical(x)
    enc = encoder if encoder is not None else PoissonEncoder(seed=seed)
    g = graph
    found = {}
    for name in graph.neurons:
        sim = Simulator(g, profile, backend)
        m = -np.inf
        for start in range(0, len(xs), batch):
            tr = sim.run(xs[start:start + batch], T, encoder=enc, sample_offset=start, progress=progress,
                         recorder=Recorder(counts=False, output=False, current_max=[name]))
            m = max(m, float(tr.current_max[name]))
        if not np.isfinite(m) or m <= 0:
            raise ValidationError(f"threshold balancing of layer {name!r}",
                                  "a positive input current on the calibration data", m)
        found[name] = float(np.float32(scale * m))
        g = Graph([g[n].replace(threshold=found[name]) if n == name else g[n] for n in g.order], name=g.name,
                  metadata=g.metadata)
        if echo:
            echo(f"  {name}: max input current {m:.6g} -> threshold {found[name]:.6g}")
    meta = dict(graph.metadata)
    meta["conversion"] = {"method": "threshold-balancing (Sengupta 2019, Rathi 2020 code)", "T": int(T),
                          "scale": float(scale), "profile": profile if isinstance(profile, str) else profile.name,
                          "encoder": enc.describe(), "calibration_samples": int(len(xs)),
                          "calibration_sha256": digest, "thresholds": found}
    return Graph([g[n] for n in g.order], name=graph.name, metadata=meta)
