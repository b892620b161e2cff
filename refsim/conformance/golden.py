"""Golden cases: a model, an input, how to run it, and the traces it must give, bit for bit.

A case is a folder holding ``case.json`` (profile, T, encoder, what to record), ``model.safetensors``,
``input.npz`` (``x``; ``spikes`` for a replayed spike train), ``expected.npz`` (a trace file) and a
README saying what it pins down. ``verify`` re-runs every case and compares in float64 bit for bit;
``regen`` rewrites ``expected.npz`` and is never run automatically.

A case whose expected traces come from outside refsim names their source in ``case.json``
(``"expected_from"``, e.g. SpikingJelly's recorded spikes) and what of them is compared
(``"compare"``, a list of trace kinds); ``regen`` leaves it alone (its own generator remakes it).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..encoding import PoissonEncoder, ReplayEncoder, StaticEncoder
from ..errors import ModelFormatError, ValidationError
from ..io import load_model
from ..simulator import Recorder, Simulator
from ..traces import KINDS, compare_traces, load_traces

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


def read_spec(folder) -> dict:
    where = os.path.join(os.fspath(folder), "case.json")
    try:
        with open(where) as fh:
            spec = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError("case.json", "readable JSON", str(exc), file=where) from None
    if not isinstance(spec, dict):
        raise ModelFormatError("case.json", "a JSON object", type(spec).__name__, file=where)
    kinds = spec.get("compare", list(KINDS))
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ModelFormatError("case.json field 'compare'", "a list of trace kinds from " + ", ".join(KINDS),
                               repr(kinds), file=where)
    return spec


def run_case(folder, backend="reference"):
    folder = os.fspath(folder)
    where = os.path.join(folder, "case.json")
    spec = read_spec(folder)
    g = load_model(os.path.join(folder, "model.safetensors"))
    with np.load(os.path.join(folder, "input.npz"), allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    rec = spec.get("record", {})
    recorder = Recorder(spikes=rec.get("spikes", True), membranes=rec.get("membranes", True),
                        output=rec.get("output", True))
    sim = Simulator(g, spec.get("profile", "paper"), backend)
    return sim.run(inputs["x"], int(spec["T"]), _encoder(spec.get("encoder", {}), inputs, where), recorder)


def verify_case(folder, backend="reference") -> list:
    """Differences between a case's expected traces and a run (empty when it passes), over the
    trace kinds the case compares."""
    expected = load_traces(os.path.join(os.fspath(folder), "expected.npz"))
    return compare_traces(expected, run_case(folder, backend), read_spec(folder).get("compare", KINDS))


def verify(root, backend="reference", echo=print) -> dict:
    """Run every case; returns {case: [differences]} (empty lists mean the case passes)."""
    results = {}
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        diffs = verify_case(folder, backend)
        results[case] = diffs
        echo(f"{'PASS' if not diffs else 'FAIL'}  {case}" + "".join(f"\n      {d}" for d in diffs[:5]))
    return results


def regen(root, echo=print) -> None:
    """Rewrite every case's expected traces with the float64 reference backend."""
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        source = read_spec(folder).get("expected_from")
        if source:
            echo(f"skipped {case}: its expected traces come from {source} (see its README)")
            continue
        run_case(folder, "reference").save(os.path.join(folder, "expected.npz"))
        echo(f"wrote {case}/expected.npz")
