"""Traces: what a run recorded, and the trace file that stores it (one module: the dataclass, the
format constants, :meth:`Traces.save`, :func:`load_traces` and :func:`compare_traces`).

File format ``refsim-traces`` version 1 (``docs/traces.md``): an npz archive (never pickled) with

* ``meta``: JSON text (format, format_version, producer, version, T, batch, profile, backend,
  dtype, encoder, layers);
* ``step_counts/<layer>`` (T, B) int64; ``counts/<layer>`` (B, ...) int64;
* ``spikes/<layer>`` (T, B, ...) int8 (int16 for multi-spike layers, uint8 level masks for
  multithreshold layers); ``membranes/<layer>`` (T, B, ...) float64;
* ``output/<node>`` (T, B, ...) float64; ``final_output/<node>`` (B, ...) float64;
* ``inputs/<input node>`` (T, B, ...) float64: the encoded input of every step (for teacher-forced
  checks, since another library's random stream cannot be reproduced from a seed);
* ``events/<synaptic node>``, ``acs/<synaptic node>``, ``macs/<synaptic node>`` (T, B) int64: the
  events a weighted or pooling layer received each step and the accumulates or multiply-accumulates
  they cost (:mod:`refsim.analysis.synops`);
* ``current_max/<layer>`` 0-d float64: the largest input current of a spiking layer over the run.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .errors import ModelFormatError

TRACE_FORMAT = "refsim-traces"
TRACE_VERSION = 1
#: the array entries of a trace, in file order: ``<kind>/<layer or node>``
KINDS = ("step_counts", "counts", "spikes", "membranes", "output", "final_output", "inputs", "events", "acs", "macs",
         "current_max")


@dataclass
class Recorder:
    """What to keep. Memory is bounded in T unless per-step arrays are asked for.

    spikes : bool or list of layer names
        Per-step spike arrays: int8 counts or signs; int16 counts under ``spikes_per_step="multi"``;
        uint8 level masks for multithreshold.
    membranes : bool or list of layer names
        Per-step membranes (float64), post- or pre-reset as the profile's ``membrane_report``.
    counts : bool
        Total spikes per neuron over the run (int64).
    output : bool
        Output membranes after every step (float64); off by default so that memory stays flat in T
        (the curves of :mod:`refsim.analysis` ask for it); the final value is always kept.
    inputs : bool
        The encoded input of every step (float64), for ``refsim check``.
    synops : bool
        Per synaptic layer and step, the events it received and their ACs or MACs (T, B) int64
        (:mod:`refsim.analysis.synops`; costs a pass over each layer's input every step).
    current_max : bool or list of layer names
        The largest input current a spiking layer received over all steps and elements (float64,
        0-d), as threshold balancing needs (:mod:`refsim.convert`).

    Spike totals per layer per step (T, B) are always kept (they are small).
    """

    spikes: object = False
    membranes: object = False
    counts: bool = True
    output: bool = False
    inputs: bool = False
    synops: bool = False
    current_max: object = False

    def wants(self, what, layer) -> bool:
        sel = getattr(self, what)
        if isinstance(sel, bool):
            return sel
        return layer in sel


@dataclass
class Traces:
    """The result of a run (what the :class:`Recorder` kept) and how it was made."""

    T: int
    batch: int
    profile: str
    backend: str
    encoder: dict
    layers: dict = field(default_factory=dict)        # layer -> {"model", "shape", "neurons"}
    step_counts: dict = field(default_factory=dict)   # layer -> (T, B) int64
    counts: dict = field(default_factory=dict)        # layer -> (B, ...) int64
    spikes: dict = field(default_factory=dict)        # layer -> (T, B, ...) int8 / uint8
    membranes: dict = field(default_factory=dict)     # layer -> (T, B, ...) float64
    output: dict = field(default_factory=dict)        # output node -> (T, B, ...) float64
    final_output: dict = field(default_factory=dict)  # output node -> (B, ...) float64
    inputs: dict = field(default_factory=dict)        # input node -> (T, B, ...) float64
    events: dict = field(default_factory=dict)        # synaptic node -> (T, B) int64 events received
    acs: dict = field(default_factory=dict)           # synaptic node -> (T, B) int64 accumulates
    macs: dict = field(default_factory=dict)          # synaptic node -> (T, B) int64 multiply-accumulates
    current_max: dict = field(default_factory=dict)   # spiking layer -> 0-d float64: largest input current
    dtype: str = "float64"                            # arithmetic of the run (event backend may use float32)

    def firing_rates(self) -> dict:
        """Mean spikes per neuron per step, per layer (over batch, neurons and steps)."""
        return {k: float(v.sum()) / (self.T * self.batch * self.layers[k]["neurons"]) for k, v in self.step_counts.items()}

    def table(self) -> str:
        """Per-layer spike counts and firing rates as a fixed-width text table."""
        rates = self.firing_rates()
        rows = [("layer", "model", "shape", "neurons", "spikes", "rate/step", "active %")]
        for k, info in self.layers.items():
            total = int(self.step_counts[k].sum())
            active = ""
            if k in self.counts:
                active = f"{100.0 * np.count_nonzero(self.counts[k]) / self.counts[k].size:.1f}"
            rows.append((k, info["model"], "x".join(map(str, info["shape"])), str(info["neurons"]), str(total),
                         f"{rates[k]:.4f}", active))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def meta(self) -> dict:
        return {"format": TRACE_FORMAT, "format_version": TRACE_VERSION, "producer": "refsim", "version": __version__,
                "T": self.T, "batch": self.batch, "profile": self.profile, "backend": self.backend,
                "dtype": self.dtype, "encoder": self.encoder,
                "layers": {k: {**v, "shape": list(v["shape"])} for k, v in self.layers.items()}}

    def save(self, path) -> None:
        """Write the trace file (atomically: a failed write leaves no partial file)."""
        arrays = {"meta": np.array(json.dumps(self.meta()))}
        for kind in KINDS:
            for k, v in getattr(self, kind).items():
                arrays[f"{kind}/{k}"] = v
        from ._files import atomic_path
        with atomic_path(path, ".npz") as tmp:
            np.savez_compressed(tmp, **arrays)


#: what reading a damaged npz member can raise (bad CRC, zlib, truncation, unknown compression, a
#: pickled object array, a header that is not .npy, zipfile's RuntimeError for a member flagged as
#: encrypted): turned into ModelFormatError naming the entry
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError,
               UnicodeDecodeError, struct.error, RecursionError, RuntimeError)


def _entry(z, key, path):
    try:
        return z[key]
    except _NPZ_ERRORS as exc:
        raise ModelFormatError(f"entry {key!r}", "a readable .npy array (no pickled objects)",
                               f"{type(exc).__name__}: {str(exc)[:120]}", file=path) from None


def load_traces(path) -> Traces:
    """Read a trace file; malformed files raise :class:`refsim.ModelFormatError` naming the entry."""
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as exc:
        raise ModelFormatError("file", "an npz trace file (refsim.traces)", f"{type(exc).__name__}: {str(exc)[:120]}",
                               file=path) from None
    if not hasattr(z, "files"):
        raise ModelFormatError("file", "an npz trace file (refsim.traces)", "a single .npy array", file=path)
    with z:
        if "meta" not in z.files:
            raise ModelFormatError("entry 'meta'", "the JSON metadata", "nothing", file=path)
        try:
            meta = json.loads(str(_entry(z, "meta", path)))
        except (ValueError, RecursionError) as exc:
            raise ModelFormatError("entry 'meta'", "JSON text", f"{type(exc).__name__}: {str(exc)[:120]}",
                                   file=path) from None
        if not isinstance(meta, dict):
            raise ModelFormatError("entry 'meta'", "a JSON object", type(meta).__name__, file=path)
        if meta.get("format") != TRACE_FORMAT or meta.get("format_version") != TRACE_VERSION:
            raise ModelFormatError("meta 'format'/'format_version'", f"{TRACE_FORMAT!r} version {TRACE_VERSION}",
                                   f"{meta.get('format')!r} version {meta.get('format_version')!r}", file=path)
        for key in ("T", "batch"):
            if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int) or meta[key] < 1:
                raise ModelFormatError(f"meta {key!r}", "a positive integer", repr(meta.get(key)), file=path)
        layers = meta.get("layers", {})
        if not isinstance(layers, dict) or not all(isinstance(v, dict) and isinstance(v.get("shape"), list)
                                                   for v in layers.values()):
            raise ModelFormatError("meta 'layers'", "an object of {model, shape, neurons} per layer", repr(layers)[:80],
                                   file=path)
        tr = Traces(T=meta["T"], batch=meta["batch"], profile=meta.get("profile"), backend=meta.get("backend"),
                    encoder=meta.get("encoder"), dtype=meta.get("dtype", "float64"),
                    layers={k: {**v, "shape": tuple(v["shape"])} for k, v in layers.items()})
        for key in z.files:
            if key == "meta":
                continue
            kind, _, name = key.partition("/")
            if kind not in KINDS or not name:
                raise ModelFormatError(f"entry {key!r}", "<kind>/<layer> with kind in " + ", ".join(KINDS), key, file=path)
            getattr(tr, kind)[name] = _entry(z, key, path)
    return tr


def compare_traces(expected: Traces, actual: Traces, kinds=KINDS) -> list[str]:
    """Bit-for-bit comparison of the entries of ``kinds``; returns human-readable differences
    (empty when identical)."""
    diffs = []
    if expected.T != actual.T or expected.batch != actual.batch:
        diffs.append(f"T/batch: expected {expected.T}/{expected.batch}, found {actual.T}/{actual.batch}")
    for kind in kinds:
        e, a = getattr(expected, kind), getattr(actual, kind)
        for name in sorted(set(e) | set(a)):
            if name not in a:
                diffs.append(f"{kind}/{name}: missing from the run")
                continue
            if name not in e:
                diffs.append(f"{kind}/{name}: not in the expected traces")
                continue
            x, y = e[name], a[name]
            if x.shape != y.shape or x.dtype != y.dtype:
                diffs.append(f"{kind}/{name}: expected {x.dtype}{x.shape}, found {y.dtype}{y.shape}")
                continue
            bad = x != y
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                where = f"step {idx[0]}, " if kind in ("spikes", "membranes", "output", "step_counts") else ""
                diffs.append(f"{kind}/{name}: {int(bad.sum())} of {bad.size} values differ; first at {where}index {idx}: "
                             f"expected {x[idx]!r}, found {y[idx]!r}")
    return diffs


def _as_array(x):
    """A NumPy array from a NumPy array, a list or a torch tensor (without importing torch)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class TraceWriter:
    """Write a trace file from your own simulation loop (any library, any loop), for ``refsim check``.

    >>> w = TraceWriter(model, T=100, batch=4, profile="spikingjelly", producer="my SpikingJelly loop")
    >>> for t in range(100):
    ...     w.add_input("input", t, x[t])            # (B, *input shape): what the network received at step t
    ...     w.add_spikes("conv1_if", t, s1)          # (B, *layer shape): the layer's spikes at step t
    >>> w.save("traces.npz")

    ``model``: the refsim Graph (or model file) the traces belong to. Names are its Input and
    Neuron node names; shapes are ``(batch,) +`` the node's shape; arrays may be NumPy arrays or
    torch tensors. Spikes are counts for ``if`` layers (0/1, or n for several spikes a step), signs
    for ``ternary`` layers (-1, 0, 1), bit masks of the levels that fired for ``multithreshold``
    layers (bit i = level i, highest first). Every value is checked when it is added, and
    :meth:`save` refuses traces with a step missing. ``add_*`` returns the writer.
    """

    def __init__(self, model, T: int, batch: int, profile: str = "paper", producer: str = "TraceWriter"):
        from .errors import ValidationError
        from .graph import Graph
        if not isinstance(model, Graph):
            from .io import load_model
            model = load_model(model)
        for name, v in (("T", T), ("batch", batch)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValidationError(f"TraceWriter({name})", "a positive integer", v)
        self.graph, self.T, self.B = model, int(T), int(batch)
        self.traces = Traces(T=self.T, batch=self.B, profile=str(profile), backend=str(producer),
                             encoder={"type": "replay"})
        self._filled = {}
        for n in model.inputs:
            self.traces.inputs[n] = np.zeros((self.T, self.B) + model.shapes[n])
            self._filled[("inputs", n)] = np.zeros(self.T, bool)
        for n in model.neurons:
            m = model[n].model
            dt = np.uint8 if m == "multithreshold" else (np.int8 if m == "ternary" else np.int16)
            self.traces.spikes[n] = np.zeros((self.T, self.B) + model.shapes[n], dt)
            self.traces.step_counts[n] = np.zeros((self.T, self.B), np.int64)
            self.traces.layers[n] = {"model": m, "shape": model.shapes[n], "neurons": int(np.prod(model.shapes[n]))}
            self._filled[("spikes", n)] = np.zeros(self.T, bool)

    def _check(self, kind, name, t, x):
        from .errors import UnknownNameError, ValidationError
        names = self.graph.inputs if kind == "inputs" else self.graph.neurons
        if name not in names:
            raise UnknownNameError("Input node" if kind == "inputs" else "Neuron node (spiking layer)", name, names)
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.T:
            raise ValidationError(f"TraceWriter {kind} {name!r} step", f"an integer in [0, {self.T})", t)
        a = _as_array(x)
        want = (self.B,) + self.graph.shapes[name]
        if a.shape != want:
            raise ValidationError(f"TraceWriter {kind} {name!r} step {t}", f"shape {want} (batch, *node shape)", a.shape)
        if a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)):
            raise ValidationError(f"TraceWriter {kind} {name!r} step {t}", "finite numbers", f"dtype {a.dtype}")
        return a

    def add_input(self, name: str, t: int, x) -> "TraceWriter":
        """The encoded input node ``name`` received at step ``t`` (spikes, or analog values)."""
        self.traces.inputs[name][t] = self._check("inputs", name, t, x)
        self._filled[("inputs", name)][t] = True
        return self

    def add_spikes(self, layer: str, t: int, s) -> "TraceWriter":
        """The spikes of spiking layer ``layer`` at step ``t``."""
        from .errors import ValidationError
        a = self._check("spikes", layer, t, s)
        model = self.graph[layer].model
        rec = self.traces.spikes[layer]
        lo, hi = {"if": (0, np.iinfo(np.int16).max), "ternary": (-1, 1), "multithreshold": (0, 255)}[model]
        if a.size and (np.any(a != np.round(a)) or a.min() < lo or a.max() > hi):
            raise ValidationError(f"TraceWriter spikes {layer!r} step {t}",
                                  f"integers in [{lo}, {hi}] for a {model!r} layer", f"values in [{a.min()}, {a.max()}]")
        rec[t] = a.astype(rec.dtype)
        counts = np.abs(rec[t].astype(np.int64)) if model != "multithreshold" else \
            np.unpackbits(rec[t][..., None], axis=-1).sum(axis=-1)
        self.traces.step_counts[layer][t] = counts.reshape(self.B, -1).sum(axis=1)
        self._filled[("spikes", layer)][t] = True
        return self

    def step(self, t: int, inputs: dict | None = None, spikes: dict | None = None) -> "TraceWriter":
        """Add one step of several entries: ``inputs`` and ``spikes`` map node names to arrays."""
        for k, v in (inputs or {}).items():
            self.add_input(k, t, v)
        for k, v in (spikes or {}).items():
            self.add_spikes(k, t, v)
        return self

    def finish(self) -> Traces:
        """The traces, once every input and spiking layer has every step."""
        from .errors import ValidationError
        for (kind, name), filled in self._filled.items():
            if not filled.all():
                missing = np.flatnonzero(~filled)
                raise ValidationError(f"TraceWriter {kind} {name!r}", f"all {self.T} steps",
                                      f"{missing.size} missing (first: step {int(missing[0])})")
        return self.traces

    def save(self, path) -> None:
        """Write the trace file (atomically), after :meth:`finish`'s checks."""
        self.finish().save(path)
