"""Traces: what a run recorded, and the trace file that stores it (one module: the dataclass, the
format constants, :meth:`Traces.save`, :func:`load_traces` and :func:`compare_traces`).

File format ``refsim-traces`` version 1 (``docs/traces.md``): an npz archive (never pickled) with

* ``meta``: JSON text (format, format_version, producer, version, T, batch, profile, backend,
  dtype, encoder, layers);
* ``step_counts/<layer>`` (T, B) int64; ``counts/<layer>`` (B, ...) int64;
  ``values/<layer>`` (B, ...) float64: the total value each neuron sent over the run;
* ``spikes/<layer>`` (T, B, ...) int8 (int16 for multi-spike layers, uint8 level masks for
  multithreshold layers); ``membranes/<layer>`` (T, B, ...) float64;
* ``output/<node>`` (T, B, ...) float64; ``final_output/<node>`` (B, ...) float64;
* ``inputs/<input node>`` (T, B, ...) float64: the encoded input of every step (for teacher-forced
  checks, since another library's random stream cannot be reproduced from a seed);
* ``events/<synaptic node>``, ``acs/<synaptic node>``, ``macs/<synaptic node>`` (T, B) int64: the
  events a weighted or pooling layer received each step and the accumulates or multiply-accumulates
  they cost (:mod:`refsim.synops`);
* ``current_max/<layer>`` 0-d float64: the largest input current of a spiking layer over the run.

A **trace folder** holds the same entries for runs too long to keep in memory: ``meta.json`` and one
``.npy`` file per entry, ``<kind>/<quoted name>.npy`` (names percent-encoded). A run with
``Recorder(stream_to=FOLDER)`` writes its per-step arrays there in chunks of ``chunk_steps`` steps
while it runs, so peak memory does not grow with T; :func:`load_traces` reads a folder lazily
(memory-mapped, read-only). Plain ``.npy`` files were chosen over Zarr: NumPy alone reads and
memory-maps them, nothing new to install or trust, and the per-step layout needs no compression
codec to be streamed (a chunk is appended as raw bytes after a header that states the final shape).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import tempfile
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import _files, _system
from ._files import atomic_path
from ._version import __version__
from .errors import ModelFormatError, RefsimError, UnknownNameError, ValidationError
from .graph import Graph
from .io import load_model
from .neurons import NEURON_MODELS, get_model
from .semantics import DEFAULT_PROFILE

TRACE_FORMAT = "refsim-traces"
TRACE_VERSION = 1
#: the array entries of a trace, in file order: ``<kind>/<layer or node>``
KINDS = ("step_counts", "counts", "values", "spikes", "membranes", "output", "final_output", "inputs", "events", "acs", "macs",
         "current_max")
#: the per-step entries (T, B, ...) that a streamed run writes to disk as it goes
STEP_KINDS = ("spikes", "membranes", "output", "inputs")


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
    values : bool
        Total value each neuron sent over the run (float64): what its spikes carried to the next
        layer, step by step (``emitted``: 1 per spike, the threshold under ``spike_value="threshold"``,
        +-1 for ternary neurons, the sum of the levels that fired times the threshold scale for
        multithreshold neurons, whose spike count does not measure what they send).
    output : bool
        Output membranes after every step (float64); off by default so that memory stays flat in T
        (the curves of :mod:`refsim.analysis` ask for it); the final value is always kept.
    inputs : bool
        The encoded input of every step (float64), for ``refsim check``.
    synops : bool
        Per synaptic layer and step, the events it received and their ACs or MACs (T, B) int64
        (:mod:`refsim.synops`; costs a pass over each layer's input every step).
    current_max : bool or list of layer names
        The largest input current a spiking layer received over all steps and elements (float64,
        0-d), as threshold balancing needs (:mod:`refsim.convert`).
    stream_to : path, optional
        Write the per-step arrays (spikes, membranes, output, inputs) to this trace folder while the
        run goes, ``chunk_steps`` steps at a time, so memory stays flat in T whatever is recorded.
        The folder appears complete when the run ends (written beside it, then renamed; removed on
        errors); the returned traces read it lazily (memory-mapped). An existing trace folder there
        is replaced; any other existing path is refused.
    chunk_steps : int
        Steps buffered in memory per streamed array before they are written (default 32).

    Spike totals per layer per step (T, B) are always kept (they are small).
    """

    spikes: object = False
    membranes: object = False
    counts: bool = True
    values: bool = False
    output: bool = False
    inputs: bool = False
    synops: bool = False
    current_max: object = False
    stream_to: object = None
    chunk_steps: int = 32

    def __post_init__(self):
        c = self.chunk_steps
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise ValidationError("Recorder(chunk_steps)", "a positive integer", c)
        if self.stream_to is not None:
            check_trace_folder(self.stream_to, "Recorder(stream_to)")

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
    values: dict = field(default_factory=dict)        # layer -> (B, ...) float64: total value sent
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
        """Write the traces atomically (a failed write leaves nothing behind): an npz file when
        ``path`` ends in ``.npz``, else a trace folder (``meta.json`` + one ``.npy`` per entry)."""
        if not os.fspath(path).endswith(".npz"):
            check_trace_folder(path, "Traces.save(path)")
            with _folder_writer(path) as tmp:
                _write_folder_entries(tmp, self, KINDS)
            return
        arrays = {"meta": np.array(json.dumps(self.meta()))}
        for kind in KINDS:
            for k, v in getattr(self, kind).items():
                arrays[f"{kind}/{k}"] = v
        with atomic_path(path, ".npz") as tmp:
            np.savez_compressed(tmp, **arrays)


# -- trace folders (streamed recording) ------------------------------------------------------

def _entry_file(folder, kind, name):
    return os.path.join(folder, kind, urllib.parse.quote(name, safe="") + ".npy")


def is_trace_folder(path) -> bool:
    """Whether ``path`` is a folder with a refsim trace ``meta.json``."""
    meta = os.path.join(os.fspath(path), "meta.json")
    if not os.path.isfile(meta):
        return False
    try:
        with open(meta, encoding="utf-8") as fh:
            m = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(m, dict) and m.get("format") == TRACE_FORMAT


def check_trace_folder(path, option: str) -> str:
    """Check, before any work, that a trace folder can be written at ``path``: its parent exists and
    is writable, and ``path`` is new, an empty folder, or a trace folder (which is replaced)."""
    path = os.fspath(path)
    full = os.path.abspath(path)
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise ValidationError(option, "a path in an existing folder", f"{path} (no folder {parent})")
    if not os.access(parent, os.W_OK):
        raise ValidationError(option, "a path in a writable folder", f"{path} (cannot write to {parent})")
    if os.path.exists(full):
        if not os.path.isdir(full):
            raise ValidationError(option, "a new folder, an empty folder or a trace folder (or a .npz file name)",
                                  f"{path} is an existing file")
        if os.listdir(full) and not is_trace_folder(full):
            raise ValidationError(option, "a new folder, an empty folder or a trace folder to replace",
                                  f"{path} is a folder with other files in it")
    return path


def check_trace_output(path, option: str, inputs=()) -> bool:
    """Check, before any work, where traces will go: a name ending in .npz is one file (checked by
    :func:`refsim._files.check_output` against the ``inputs`` it must not overwrite), any other name a
    trace folder (:func:`check_trace_folder`). Returns True for a folder (the run streams into it)."""
    if os.fspath(path).lower().endswith(".npz"):
        _files.check_output(path, option, inputs)
        return False
    check_trace_folder(path, option)
    return True


class _folder_writer:
    """Context manager: a temporary folder beside ``path``; on success it is fsynced and renamed onto
    ``path`` (replacing an earlier trace folder); on errors or SIGTERM it is removed."""

    def __init__(self, path):
        _files._install()
        self.path = os.path.abspath(os.fspath(path))
        self.tmp = tempfile.mkdtemp(prefix=".refsim-traces-", dir=os.path.dirname(self.path))
        os.chmod(self.tmp, 0o755)
        _files._PENDING.add(self.tmp)

    def __enter__(self):
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.commit()
        finally:
            _files._PENDING.discard(self.tmp)
            if os.path.exists(self.tmp):
                shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def commit(self):
        for root, _, files in os.walk(self.tmp):
            for f in files:
                with open(os.path.join(root, f), "rb+") as fh:
                    os.fsync(fh.fileno())
        old = None
        if os.path.exists(self.path):
            old = self.path + f".old-{os.getpid()}"
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _write_folder_entries(folder, tr, kinds):
    for kind in kinds:
        for name, v in getattr(tr, kind).items():
            os.makedirs(os.path.join(folder, kind), exist_ok=True)
            dest = _entry_file(folder, kind, name)
            if isinstance(v, StepFile):
                continue
            a = np.asarray(v)
            with open(dest, "wb") as fh:
                np.lib.format.write_array(fh, a, allow_pickle=False)
            os.chmod(dest, 0o644)
    with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as fh:
        json.dump(tr.meta(), fh, indent=1)
    os.chmod(os.path.join(folder, "meta.json"), 0o644)


class StepFile:
    """A (T, *shape) array filled step by step and written to an ``.npy`` file in chunks: the header
    (with the final shape) first, then each chunk of ``chunk`` steps as raw bytes. ``f[t]`` is step
    ``t``'s slot (zeros until written; a view the backends write into), ``f[t] = x`` sets it. Steps
    must come in order: a step before the buffered chunk is an error."""

    def __init__(self, path, T, shape, dtype, chunk):
        self.path, self.T, self.chunk = path, int(T), int(min(chunk, T))
        self.dtype = np.dtype(dtype)
        self.shape = (self.T,) + tuple(shape)
        self._fh = open(path, "wb")
        np.lib.format.write_array_header_2_0(self._fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                        "fortran_order": False, "shape": self.shape})
        self._buf = np.zeros((self.chunk,) + tuple(shape), self.dtype)
        self._t0 = 0

    def _slot(self, t):
        t = int(t)
        if not self._t0 <= t < self.T:
            raise RefsimError(f"streamed trace {self.path}: step {t} asked after steps up to {self._t0} were written")
        while t >= self._t0 + self.chunk:
            self._fh.write(self._buf.tobytes())
            self._buf[...] = 0
            self._t0 += self.chunk
        return t - self._t0

    def __getitem__(self, t):
        return self._buf[self._slot(t)]

    def __setitem__(self, t, value):
        self._buf[self._slot(t)] = value

    def close(self):
        """Write what is buffered (the last ``T - t0`` steps) and close the file."""
        if self._fh.closed:
            return
        while self._t0 < self.T:  # steps never visited stay zero, as in an in-memory record
            n = min(self.chunk, self.T - self._t0)
            self._fh.write(self._buf[:n].tobytes())
            self._buf[...] = 0
            self._t0 += n
        self._fh.close()
        os.chmod(self.path, 0o644)

    def abort(self):
        if not self._fh.closed:
            self._fh.close()


class TraceStream:
    """The on-disk side of a streamed run (:class:`Recorder` ``stream_to``): makes the per-step
    :class:`StepFile` arrays in a temporary folder, and at the end writes the small entries and
    ``meta.json``, renames the folder into place and reopens the traces lazily."""

    def __init__(self, path, chunk_steps):
        self.path, self.chunk = os.fspath(path), int(chunk_steps)
        self._writer = _folder_writer(self.path)
        self.files = []

    def array(self, kind, name, T, shape, dtype):
        os.makedirs(os.path.join(self._writer.tmp, kind), exist_ok=True)
        f = StepFile(_entry_file(self._writer.tmp, kind, name), T, shape, dtype, self.chunk)
        self.files.append(f)
        return f

    def finish(self, tr) -> "Traces":
        try:
            for f in self.files:
                f.close()
            _write_folder_entries(self._writer.tmp, tr, KINDS)
        except BaseException:
            self.abort()
            raise
        self._writer.__exit__(None, None, None)
        return load_traces(self.path)

    def abort(self):
        for f in self.files:
            f.abort()
        self._writer.__exit__(RuntimeError, None, None)


#: what reading a damaged npz member can raise (bad CRC, zlib, truncation, unknown compression, a
#: pickled object array, a header that is not .npy, zipfile's RuntimeError for a member flagged as
#: encrypted): turned into ModelFormatError naming the entry
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, KeyError,
               UnicodeDecodeError, struct.error, RecursionError, RuntimeError)


def _entry(z, key, path, budget):
    """Read npz member ``key`` with every claimed size checked first: the .npy header's shape and
    dtype must account for exactly the member's uncompressed size in the zip directory (which also
    bounds how much zipfile will inflate), and that size must fit the remaining ``budget[0]`` bytes.
    Nothing is allocated from a size the file claims before these checks."""
    zf = z.zip
    names = set(zf.namelist())
    member = key + ".npy" if key + ".npy" in names else key
    try:
        info = zf.getinfo(member)
        with zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version} (1.0 or 2.0 expected)")
            if dtype.hasobject:
                raise ValueError("an object array (refused: nothing is unpickled)")
            n = 1
            for d in shape:
                n *= int(d)
            nbytes = n * dtype.itemsize
            stored = info.file_size - fh.tell()
            if nbytes != stored:
                raise ValueError(f"the header's shape {shape} x {dtype} is {nbytes} bytes but the member holds {stored}")
            if nbytes > budget[0]:
                raise ValueError(f"{nbytes} bytes uncompressed exceed the memory budget ({budget[0]} bytes left); "
                                 "pass load_traces(max_bytes=...) or record to a trace folder")
            budget[0] -= nbytes
            arr = np.empty(n, dtype)
            view = memoryview(arr.view(np.uint8)) if nbytes else None
            got = fh.readinto(view) if nbytes else 0
            if got != nbytes or fh.read(1):
                raise ValueError(f"member holds {got} data bytes, {nbytes} expected")
    except _NPZ_ERRORS as exc:
        raise ModelFormatError(f"entry {key!r}", "a readable .npy array (no pickled objects)",
                               f"{type(exc).__name__}: {str(exc)[:160]}", file=path) from None
    if fortran:
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


def _traces_from_meta(meta, path) -> Traces:
    """Empty :class:`Traces` from a validated ``meta`` object (npz entry or folder ``meta.json``)."""
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
    return Traces(T=meta["T"], batch=meta["batch"], profile=meta.get("profile"), backend=meta.get("backend"),
                  encoder=meta.get("encoder"), dtype=meta.get("dtype", "float64"),
                  layers={k: {**v, "shape": tuple(v["shape"])} for k, v in layers.items()})


def _load_folder(path) -> Traces:
    """A trace folder, memory-mapped read-only (nothing is read until used)."""
    mpath = os.path.join(path, "meta.json")
    if not os.path.isfile(mpath):
        raise ModelFormatError("meta.json", "a trace folder's JSON metadata", "no meta.json", file=path)
    try:
        if os.path.getsize(mpath) > 64 << 20:
            raise ValueError("meta.json larger than 64 MiB")
        with open(mpath, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFormatError("meta.json", "JSON text", f"{type(exc).__name__}: {str(exc)[:120]}", file=path) from None
    tr = _traces_from_meta(meta, path)
    for kind in sorted(os.listdir(path)):
        full = os.path.join(path, kind)
        if kind == "meta.json":
            continue
        if kind not in KINDS or not os.path.isdir(full):
            raise ModelFormatError(f"entry {kind!r}", "meta.json and folders named " + ", ".join(KINDS), kind, file=path)
        for fname in sorted(os.listdir(full)):
            key = f"{kind}/{fname}"
            if not fname.endswith(".npy") or len(fname) == 4:
                raise ModelFormatError(f"entry {key!r}", "<name>.npy files", fname, file=path)
            fpath = os.path.join(full, fname)
            if not os.path.isfile(fpath):  # a FIFO or a folder would block or fail inside np.load
                raise ModelFormatError(f"entry {key!r}", "a regular .npy file", "not a regular file", file=path)
            try:  # small entries (counts, 0-d maxima) are read; large ones memory-mapped
                small = os.path.getsize(fpath) < (1 << 20)
                arr = np.load(fpath, mmap_mode=None if small else "r", allow_pickle=False)
                if small:
                    arr.setflags(write=False)
            except _NPZ_ERRORS as exc:
                raise ModelFormatError(f"entry {key!r}", "a readable .npy array (no pickled objects)",
                                       f"{type(exc).__name__}: {str(exc)[:120]}", file=path) from None
            getattr(tr, kind)[urllib.parse.unquote(fname[:-4])] = arr
    return tr


def load_traces(path, max_bytes: int | None = None) -> Traces:
    """Read a trace file (npz) or trace folder; malformed input raises :class:`refsim.ModelFormatError`
    naming the entry. A folder's arrays are memory-mapped read-only. An npz file's entries are
    inflated only after their claimed sizes are checked against the zip directory and against
    ``max_bytes`` in total (default :func:`refsim._system.memory_budget`, half the physical memory)."""
    path = os.fspath(path)
    budget = [_system.memory_budget() if max_bytes is None else int(max_bytes)]
    if os.path.isdir(path):
        return _load_folder(path)
    _files.require_regular_file(path, "trace file")  # a FIFO would block np.load forever
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
            meta = json.loads(str(_entry(z, "meta", path, budget)))
        except (ValueError, RecursionError) as exc:
            raise ModelFormatError("entry 'meta'", "JSON text", f"{type(exc).__name__}: {str(exc)[:120]}",
                                   file=path) from None
        tr = _traces_from_meta(meta, path)
        for key in z.files:
            if key == "meta":
                continue
            kind, _, name = key.partition("/")
            if kind not in KINDS or not name:
                raise ModelFormatError(f"entry {key!r}", "<kind>/<layer> with kind in " + ", ".join(KINDS), key, file=path)
            getattr(tr, kind)[name] = _entry(z, key, path, budget)
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
            if kind == "spikes" and x.shape == y.shape and x.dtype.kind in "biu" and y.dtype.kind in "biu":
                x, y = x.astype(np.int64), y.astype(np.int64)  # spike values, whatever integer width stored them
            if x.shape != y.shape or x.dtype != y.dtype:
                diffs.append(f"{kind}/{name}: expected {x.dtype}{x.shape}, found {y.dtype}{y.shape}")
                continue
            bad = x != y
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                where = f"step {idx[0]}, " if kind in ("spikes", "membranes", "output", "step_counts") else ""
                diffs.append(f"{kind}/{name}: {int(bad.sum())} of {bad.size} values differ; first at {where}index {idx}: "
                             f"expected {x[idx].item()!r}, found {y[idx].item()!r}")
    return diffs


def _as_array(x):
    """A NumPy array from a NumPy array, a list or a torch tensor (without importing torch)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


#: the values a per-step spike record may hold, by neuron model: spike counts (int16, as the
#: simulator records several spikes per step), signs, multi-threshold level masks (uint8)
#: (lowest, highest) value a per-step spike record may hold, per neuron model (from the registry)
SPIKE_RANGE = {name: m.spike_range for name, m in NEURON_MODELS.items()}


def first_bad_spike(a, model):
    """``None`` if every value of the per-step spike record ``a`` (any integer or float dtype) is an
    integer in :data:`SPIKE_RANGE` for ``model``; else ``(index, value, what was expected)`` of the
    first one that is not. Float records (torch stores spikes as float 0/1) are accepted when their
    values are exact integers; values outside the range would wrap when cast, so they are refused
    rather than compared."""
    lo, hi = SPIKE_RANGE[model]
    want = f"integers in [{lo}, {hi}] for a {model!r} layer"
    for t in range(a.shape[0]):
        x = np.asarray(a[t])
        if x.size == 0:
            continue
        bad = (x < lo) | (x > hi)
        if x.dtype.kind == "f":
            bad |= ~np.isfinite(x) | (x != np.floor(x))
        if bad.any():
            idx = (t,) + tuple(int(i) for i in np.argwhere(bad)[0])
            return idx, x[idx[1:]].item(), want
    return None


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

    def __init__(self, model, T: int, batch: int, profile: str = DEFAULT_PROFILE, producer: str = "TraceWriter"):
        if not isinstance(model, Graph):
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
            self.traces.spikes[n] = np.zeros((self.T, self.B) + model.shapes[n], get_model(m).record_dtype)
            self.traces.step_counts[n] = np.zeros((self.T, self.B), np.int64)
            self.traces.layers[n] = {"model": m, "shape": model.shapes[n], "neurons": math.prod(model.shapes[n])}
            self._filled[("spikes", n)] = np.zeros(self.T, bool)

    def _check(self, kind, name, t, x):
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
        a = self._check("spikes", layer, t, s)
        model = self.graph[layer].model
        rec = self.traces.spikes[layer]
        lo, hi = SPIKE_RANGE[model]
        if a.size and (np.any(a != np.round(a)) or a.min() < lo or a.max() > hi):
            raise ValidationError(f"TraceWriter spikes {layer!r} step {t}",
                                  f"integers in [{lo}, {hi}] for a {model!r} layer", f"values in [{a.min()}, {a.max()}]")
        rec[t] = a.astype(rec.dtype)
        counts = get_model(model).spike_count(rec[t])
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
        for (kind, name), filled in self._filled.items():
            if not filled.all():
                missing = np.flatnonzero(~filled)
                raise ValidationError(f"TraceWriter {kind} {name!r}", f"all {self.T} steps",
                                      f"{missing.size} missing (first: step {int(missing[0])})")
        return self.traces

    def save(self, path) -> None:
        """Write the trace file (atomically), after :meth:`finish`'s checks."""
        self.finish().save(path)
