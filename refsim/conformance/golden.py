"""Golden cases: a model, an input, how to run it, and the traces it must give, bit for bit.

A case is a folder holding ``case.json`` (profile, T, encoder, what to record), ``model.safetensors``,
``input.npz`` (``x``; ``spikes`` for a replayed spike train), ``expected.npz`` (a trace file) and a
README saying what it pins down. ``verify`` re-runs every case and compares in float64 bit for bit;
``regen`` recomputes ``expected.npz`` and is never run automatically: it refuses to overwrite an
expected file whose values would move unless told to (``force``), and says which moved.

For a user's own model, :func:`init` makes a case (model, inputs, settings, expected traces from
the float64 reference backend, a README) in any folder, :func:`verify` returns a
:class:`GoldenResult` whose truth value is "every case passed", and
:func:`refsim.testing.assert_golden` fails a test with the first differing layer, step and neuron.

A case whose expected traces come from outside refsim names their source in ``case.json``
(``"expected_from"``, e.g. SpikingJelly's recorded spikes) and what of them is compared
(``"compare"``, a list of trace kinds); ``regen`` leaves it alone (its own generator remakes it).
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np

from .._files import atomic_path
from ..encoding import PoissonEncoder, ReplayEncoder, StaticEncoder
from ..errors import ModelFormatError, ValidationError
from ..graph import Graph
from ..io import load_model, save_model
from ..io.inputs import load_array
from ..semantics import DEFAULT_PROFILE, profile_for
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
    if os.path.exists(where) and not os.path.isfile(where):  # a FIFO would block
        raise ModelFormatError("case.json", "a regular JSON file", "not a regular file", file=where)
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
    sim = Simulator(g, spec.get("profile", DEFAULT_PROFILE), backend)
    return sim.run(inputs["x"], int(spec["T"]), _encoder(spec.get("encoder", {}), inputs, where), recorder)


def first_spike_difference(expected, actual, order) -> str | None:
    """The earliest step at which a spiking layer's spikes differ (the first such layer in graph
    ``order``), with the sample and neuron, as one line; None if every spike agrees."""
    best = None
    for rank, name in enumerate(order):
        if name not in expected.spikes or name not in actual.spikes:
            continue
        x, y = expected.spikes[name], actual.spikes[name]
        if x.shape != y.shape:
            continue
        bad = np.argwhere(x != y)
        if bad.size and (best is None or (int(bad[0][0]), rank) < best[:2]):
            best = (int(bad[0][0]), rank, name, tuple(int(i) for i in bad[0]))
    if best is None:
        return None
    t, _, name, idx = best
    return (f"first difference: layer {name} at step {t}, sample {idx[1]}, neuron {idx[2:]}: expected "
            f"{expected.spikes[name][idx].item()} spike(s), found {actual.spikes[name][idx].item()}")


#: what ``refsim golden`` does with a folder of cases
ACTIONS = ("init", "verify", "regen")


def verify_case(folder, backend="reference") -> list:
    """Differences between a case's expected traces and a run (empty when it passes), over the
    trace kinds the case compares; the first line names the earliest spike difference."""
    expected = load_traces(os.path.join(os.fspath(folder), "expected.npz"))
    actual = run_case(folder, backend)
    diffs = compare_traces(expected, actual, read_spec(folder).get("compare", KINDS))
    if not diffs:
        return diffs
    order = load_model(os.path.join(os.fspath(folder), "model.safetensors")).order
    first = first_spike_difference(expected, actual, order)
    return ([first] if first else []) + diffs


class GoldenResult(dict):
    """``{case: [differences]}`` of :func:`verify`; true only when every case passed (an empty list
    each), so ``assert golden.verify(...)`` fails on a failing case."""

    @property
    def failed(self) -> list:
        return [k for k, v in self.items() if v]

    @property
    def passed(self) -> list:
        return [k for k, v in self.items() if not v]

    def __bool__(self) -> bool:
        return len(self) > 0 and not self.failed

    def report(self) -> str:
        """One line per case, the first differences of each failing one, and the totals."""
        lines = []
        for case, diffs in self.items():
            lines.append(f"{'PASS' if not diffs else 'FAIL'}  {case}" + "".join(f"\n      {d}" for d in diffs[:5]))
        lines.append(f"{len(self.passed)} passed, {len(self.failed)} failed")
        return "\n".join(lines)


def verify(root, backend="reference", echo=print) -> GoldenResult:
    """Run every case of folder ``root``; returns a :class:`GoldenResult`."""
    results = GoldenResult()
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        diffs = verify_case(folder, backend)
        results[case] = diffs
        echo(f"{'PASS' if not diffs else 'FAIL'}  {case}" + "".join(f"\n      {d}" for d in diffs[:5]))
    return results


def regen(root, echo=print, force=False) -> dict:
    """Recompute every refsim-made case's expected traces with the float64 reference backend.
    A case whose values would move is rewritten only with ``force``; otherwise it is left alone and
    reported. Returns ``{case: [what moved]}`` for the cases whose values moved."""
    moved = {}
    for case in find_cases(root):
        folder = os.path.join(os.fspath(root), case)
        source = read_spec(folder).get("expected_from")
        if source:
            echo(f"skipped {case}: its expected traces come from {source} (see its README)")
            continue
        path = os.path.join(folder, "expected.npz")
        new = run_case(folder, "reference")
        diffs = compare_traces(load_traces(path), new) if os.path.exists(path) else ["no expected traces yet"]
        if not diffs:
            echo(f"unchanged {case}")
            continue
        moved[case] = diffs
        if force or not os.path.exists(path):
            new.save(path)
            echo(f"wrote {case}/expected.npz; moved: " + "; ".join(diffs[:3]))
        else:
            echo(f"REFUSED {case}: its expected values would move (regenerating with force rewrites them):"
                 + "".join(f"\n      {d}" for d in diffs[:5]))
    return moved


def write_recorded_case(folder, graph, rates, train, traces, profile, source) -> dict:
    """Write a case whose expected traces were recorded from another implementation: the model,
    the input (``rates``, and the replayed spike ``train``), the recorded ``traces`` and a
    ``case.json`` naming their ``source`` (``regen`` leaves such a case alone) that compares spikes
    and spike counts under ``profile``. Returns the spikes per layer over the run (for the README)."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    save_model(graph, os.path.join(folder, "model.safetensors"))
    np.savez_compressed(os.path.join(folder, "input.npz"), x=rates, spikes=np.asarray(train, dtype=np.float64))
    traces.save(os.path.join(folder, "expected.npz"))
    spec = {"name": graph.name, "profile": profile, "T": int(traces.T), "encoder": {"type": "replay"},
            "record": {"spikes": True, "membranes": False}, "compare": ["spikes", "step_counts"],
            "expected_from": source}
    with open(os.path.join(folder, "case.json"), "w") as fh:
        json.dump(spec, fh, indent=1, sort_keys=True)
    return {k: int(v.sum()) for k, v in traces.step_counts.items()}


def init(directory, model, inputs, T=100, profile=None, encoder=None, name=None, record=None,
         description="", echo=print) -> str:
    """Make a golden case of a user's own model: folder ``directory/name`` (``name`` defaults to
    the model's) with ``case.json``, ``model.safetensors``, ``input.npz``, the expected traces from
    the float64 reference backend and a README. ``model``: a path or Graph; ``inputs``: an array
    (B, *input shape) or a path to one; ``encoder``: a spec such as ``{"type": "poisson", "seed": 0}``
    (default: the model's encoding, seed 0). Returns the case folder; refuses an existing one."""
    if model is None or inputs is None:
        raise ValidationError("golden init", "a model and inputs", "missing")
    g = model if isinstance(model, Graph) else load_model(model)
    x = np.asarray(load_array(inputs) if isinstance(inputs, (str, os.PathLike)) else inputs, dtype=np.float64)
    want = g.shapes[g.inputs[0]]
    if x.shape == want:
        x = x[None]
    if x.shape[1:] != want or not np.all(np.isfinite(x)):
        raise ValidationError("golden init inputs", f"a finite array (B, {', '.join(map(str, want))})", x.shape)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError("golden init T", "a positive number of steps", T)
    if encoder is None:
        enc = g.metadata.get("encoding", "poisson")
        encoder = {"type": "static"} if enc == "static" else {"type": "poisson", "seed": 0,
                                                              "ternary": enc == "poisson-ternary"}
    name = name or "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in g.name) or "case"
    folder = os.path.join(os.fspath(directory), name)
    if os.path.exists(folder):
        raise ValidationError("golden init", "a case name not used yet in that folder", folder)
    spec = {"name": name, "T": int(T), "profile": profile_for(g, profile), "encoder": encoder,
            "record": record or {"spikes": True, "membranes": False, "output": True}}
    tmp = folder + ".partial"
    os.makedirs(tmp)  # and the cases' folder if it is new
    try:
        with open(os.path.join(tmp, "case.json"), "w") as fh:
            json.dump(spec, fh, indent=1, sort_keys=True)
        save_model(g, os.path.join(tmp, "model.safetensors"))
        with atomic_path(os.path.join(tmp, "input.npz"), ".npz") as p:
            np.savez_compressed(p, x=x)
        run_case(tmp, "reference").save(os.path.join(tmp, "expected.npz"))
        with open(os.path.join(tmp, "README.md"), "w") as fh:
            fh.write(f"# {name}\n\n{description or 'A golden case of ' + g.name + '.'}\n\n"
                     f"Expected traces made by refsim's float64 reference backend (`refsim golden init`), T={T}, "
                     f"profile {spec['profile']}, encoder {json.dumps(encoder)}. Verify with "
                     f"`refsim golden verify {os.fspath(directory)}` or `refsim.testing.assert_golden`.\n")
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    echo(f"golden case written to {folder}")
    return folder
