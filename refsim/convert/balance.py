"""Threshold balancing (Sengupta et al. 2019, as coded by Rathi et al. 2020 and used by Yue et al.
2023; docs/semantics.md section 5).

Layer by layer in graph order, the spiking network runs ``T`` steps on a calibration batch and
layer l's largest input current ``W_l s_{l-1}[t]`` over all steps and elements is found. The
order of the scaling is a named choice (``order``):

* ``"rathi"`` (default): as Rathi et al.'s code does it (``nitin-rathi/hybrid-snn-conversion``,
  ``snn.py``, ``find_threshold``): while layer l is calibrated, the layers before it use their
  *unscaled* maxima as thresholds (``threshold_update(scaling_factor=1.0, ...)``); once every layer
  is found, all thresholds are multiplied by ``scale`` (0.7 in the code) at once. The maxima are
  kept as float32 (the code's ``.item()`` of a float32 tensor), the product is taken in float64
  and stored as float32.
* ``"scaled-as-it-goes"``: the layers before l already carry their scaled thresholds while l is
  calibrated (refsim before version 0.2; kept to reproduce earlier conversions). Lower upstream
  thresholds mean more upstream spikes, so deeper layers see larger currents and get larger
  thresholds, and activity collapses with depth.

Weights are not changed. ``T`` is 1000 in the code; Yue's early stop uses 200. The code calibrates
on its first batch only: pass that many samples. Its neurons fire before they integrate: profile
``"rathi2020"``.

Deterministic: the calibration samples are put in a canonical order (by the SHA-256 of their bytes)
before they are encoded, and every sample draws its spikes from its own generator (seed, index), so
the same calibration data give the same thresholds whatever their order or the batch size
(``batch``: how many samples are simulated together, for memory).
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..encoding import PoissonEncoder
from ..errors import UnknownNameError, ValidationError
from ..graph import Graph
from ..semantics import DEFAULT_PROFILE
from ..simulator import Simulator
from ..traces import Recorder


def _canonical(x):
    x = np.asarray(x, dtype=np.float64)
    keys = [hashlib.sha256(np.ascontiguousarray(s).tobytes()).hexdigest() for s in x]
    order = np.argsort(keys, kind="stable")
    digest = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()
    return x[order], digest


#: when the scale is applied (see the module docstring)
BALANCE_ORDERS = ("rathi", "scaled-as-it-goes")


def threshold_balance(graph: Graph, x, T: int = 200, scale: float = 0.7, profile=DEFAULT_PROFILE, backend="event",
                      seed: int = 0, encoder=None, batch: int = 16, progress=False, echo=None,
                      order: str = "rathi") -> Graph:
    """A copy of ``graph`` whose neuron thresholds are balanced on calibration inputs ``x`` (B, ...)
    in ``order`` (:data:`BALANCE_ORDERS`). The returned graph's metadata records how
    (``metadata["conversion"]``)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError("threshold_balance(T)", "a positive number of steps", T)
    if not 0 < scale:
        raise ValidationError("threshold_balance(scale)", "a positive scaling factor", scale)
    if order not in BALANCE_ORDERS:
        raise UnknownNameError("threshold balancing order", order, BALANCE_ORDERS)
    xs, digest = _canonical(x)
    enc = encoder if encoder is not None else PoissonEncoder(seed=seed)
    g = graph
    found, maxima = {}, {}
    for name in graph.neurons:
        sim = Simulator(g, profile, backend)
        m = -np.inf
        for _, tr in sim.run_batches(xs, T, batch, encoder=enc, progress=progress,
                                     recorder=Recorder(counts=False, output=False, current_max=[name])):
            m = max(m, float(tr.current_max[name]))
        if not np.isfinite(m) or m <= 0:
            raise ValidationError(f"threshold balancing of layer {name!r}",
                                  "a positive input current on the calibration data", m)
        if order == "rathi":
            maxima[name] = float(np.float32(m))
            found[name] = float(np.float32(scale * maxima[name]))
            now = maxima[name]  # unscaled while the layers after it are calibrated
        else:
            found[name] = now = float(np.float32(scale * m))
        g = Graph([g[n].replace(threshold=now) if n == name else g[n] for n in g.order], name=g.name,
                  metadata=g.metadata)
        if echo:
            echo(f"  {name}: max input current {m:.6g} -> threshold {found[name]:.6g}")
    meta = dict(graph.metadata)
    meta["conversion"] = {"method": "threshold-balancing (Sengupta 2019, Rathi 2020 code)", "T": int(T),
                          "scale": float(scale), "order": order,
                          "profile": profile if isinstance(profile, str) else profile.name,
                          "encoder": enc.describe(), "calibration_samples": int(len(xs)),
                          "calibration_sha256": digest, "thresholds": found}
    if order == "rathi":
        meta["conversion"]["maxima"] = maxima  # the scale is a final multiply: rescale() reuses them
    return Graph([g[n].replace(threshold=found[n]) if n in found else g[n] for n in g.order], name=graph.name,
                 metadata=meta)


def rescale(graph: Graph, scale: float) -> Graph:
    """The balanced ``graph`` at another ``scale``, without calibrating again: in Rathi's order the
    maxima do not depend on the scale (the earlier layers stay unscaled while later ones are
    calibrated), so ``threshold = float32(scale * maximum)`` is what :func:`threshold_balance` with
    that scale returns, bit for bit. Yue et al.'s Fig. 6A sweeps the scale this way. Refused for a
    graph balanced in another order (there each maximum depends on the scales upstream)."""
    conv = graph.metadata.get("conversion", {})
    maxima = conv.get("maxima") or (conv.get("thresholds") if conv.get("scale") == 1.0 else None)
    if conv.get("order") != "rathi" or not maxima:
        raise ValidationError("rescale(graph)", "a graph balanced in Rathi's order (metadata.conversion with order "
                              "'rathi' and the layers' maxima)",
                              f"conversion order {conv.get('order')!r}" if conv else "no conversion record")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < np.inf:
        raise ValidationError("rescale(scale)", "a positive scaling factor", scale)
    found = {n: float(np.float32(scale * m)) for n, m in maxima.items()}
    meta = dict(graph.metadata)
    meta["conversion"] = dict(conv, scale=float(scale), thresholds=found)
    return Graph([graph[n].replace(threshold=found[n]) if n in found else graph[n] for n in graph.order],
                 name=graph.name, metadata=meta)
