"""Trace files: versioned npz (never pickled), written by :meth:`refsim.Traces.save`.

Format ``refsim-traces`` version 1 (see ``docs/traces.md``): an npz archive with

* ``meta``: JSON text (format, format_version, producer, version, T, batch, profile, backend,
  dtype, encoder, layers);
* ``step_counts/<layer>`` (T, B) int64; ``counts/<layer>`` (B, ...) int64;
* ``spikes/<layer>`` (T, B, ...) int8 (int16 for multi-spike layers, uint8 level masks for
  multithreshold layers); ``membranes/<layer>`` (T, B, ...) float64;
* ``output/<node>`` (T, B, ...) float64; ``final_output/<node>`` (B, ...) float64;
* ``inputs/<input node>`` (T, B, ...) float64: the encoded input of every step (for teacher-forced
  checks, since another library's random stream cannot be reproduced from a seed).
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..errors import ModelFormatError

TRACE_FORMAT = "refsim-traces"
TRACE_VERSION = 1
KINDS = ("step_counts", "counts", "spikes", "membranes", "output", "final_output", "inputs")


def load_traces(path):
    """Read a trace file into a :class:`refsim.Traces`; malformed files raise ModelFormatError."""
    from ..simulator import Traces
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFormatError("file", "an npz trace file", str(exc), file=path) from None
    with z:
        if "meta" not in z.files:
            raise ModelFormatError("entry 'meta'", "the JSON metadata", "nothing", file=path)
        try:
            meta = json.loads(str(z["meta"]))
        except (json.JSONDecodeError, ValueError) as exc:
            raise ModelFormatError("entry 'meta'", "JSON text", str(exc), file=path) from None
        if meta.get("format") != TRACE_FORMAT or meta.get("format_version") != TRACE_VERSION:
            raise ModelFormatError("meta 'format'/'format_version'", f"{TRACE_FORMAT!r} version {TRACE_VERSION}",
                                   f"{meta.get('format')!r} version {meta.get('format_version')!r}", file=path)
        tr = Traces(T=int(meta["T"]), batch=int(meta["batch"]), profile=meta["profile"], backend=meta["backend"],
                    encoder=meta["encoder"],
                    layers={k: {**v, "shape": tuple(v["shape"])} for k, v in meta.get("layers", {}).items()})
        for key in z.files:
            if key == "meta":
                continue
            kind, _, name = key.partition("/")
            if kind not in KINDS or not name:
                raise ModelFormatError(f"entry {key!r}", "<kind>/<layer> with kind in " + ", ".join(KINDS), key, file=path)
            getattr(tr, kind)[name] = z[key]
    return tr


def compare_traces(expected, actual) -> list[str]:
    """Bit-for-bit comparison; returns human-readable differences (empty when identical)."""
    diffs = []
    if expected.T != actual.T or expected.batch != actual.batch:
        diffs.append(f"T/batch: expected {expected.T}/{expected.batch}, found {actual.T}/{actual.batch}")
    for kind in KINDS:
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
