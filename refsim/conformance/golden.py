"""Golden cases: a model, an input, how to run it, and the traces it must give, bit for bit.

A case is a folder holding ``case.json`` (profile, T, encoder, what to record), ``model.safetensors``,
``input.npz`` (``x``; ``spikes`` for a replayed spike train), ``expected.npz`` (a trace file) and a
README saying what it pins down. ``verify`` re-runs every case and compares in float64 bit for bit;
``regen`` rewrites ``expected.npz`` and is never run automatically.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..encoding import PoissonEncoder, ReplayEncoder, StaticEncoder
from ..errors import ModelFormatError, ValidationError
from ..io import load_model
from ..simulator import Recorder, Simulator
from ..traces import compare_traces, load_traces

CASE_FILES = ("case.json", "model.safetensors", "input.npz")


def find_cases(root) -> list[str]:
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValidationError("golden directory", "an existing directory", root)
    cases = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "case.json")))
    if not cases:
        raise ValidationError("golden directory", "folders holding case.json", f"none in {root}")
    return cases


def _encoder(spec, inputs, where):
    t = spec.get("type")
    if t == "poisson":
        return PoissonEncoder(seed=int(spec.get("seed", 0)), ternary=bool(spec.get("ternary", False)),
                              comparison=spec.get("comparison", "<"))
    if t == "static":
        return StaticEncoder()
    if t == "replay":
        return ReplayEncoder(inputs["spikes"])
    raise ModelFormatError(f"{where} field 'encoder.type'", "poisson, static or replay", repr(t))


def run_case(folder, backend="reference"):
    folder = os.fspath(folder)
    where = os.path.join(folder, "case.json")
    try:
        with open(where) as fh:
            spec = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError("case.json", "readable JSON", str(exc), file=where) from None
    g = load_model(os.path.join(folder, "model.safetensors"))
    with np.load(os.path.join(folder, "input.npz"), allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    rec = spec.get("record", {})
    recorder = Recorder(spikes=rec.get("spikes", True), membranes=rec.get("membranes", True))
    sim = Simulator(g, spec.get("profile", "paper"), backend)
    return sim.run(inputs["x"], int(spec["T"]), _encoder(spec.get("encoder", {}), inputs, where), recorder)


def verify(root, backend="reference", echo=print) -> dict:
    """Run every case; returns {case: [differences]} (empty lists mean the case passes)."""
    results = {}
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        expected = load_traces(os.path.join(folder, "expected.npz"))
        diffs = compare_traces(expected, run_case(folder, backend))
        results[case] = diffs
        echo(f"{'PASS' if not diffs else 'FAIL'}  {case}" + "".join(f"\n      {d}" for d in diffs[:5]))
    return results


def regen(root, echo=print) -> None:
    """Rewrite every case's expected traces with the float64 reference backend."""
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        run_case(folder, "reference").save(os.path.join(folder, "expected.npz"))
        echo(f"wrote {case}/expected.npz")
