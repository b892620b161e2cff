"""Bounded fuzzing of the loaders (issue 10): mutated model files and trace files either load or
raise refsim's own errors (exit 2 from the CLI), never another exception; what loads also describes
itself (`refsim info`). A few seconds each; validation/ can run the long version."""
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refsim import cli, models, save_model
from refsim.errors import RefsimError
from refsim.io import load_model
from refsim.testing import TRACE_DAMAGES, damage_traces
from refsim.traces import load_traces

_MODEL = {}



def _clear(exc, path=None):
    """A refused file's error says what was expected and what was found, and names the file."""
    msg = str(exc)
    assert "expected" in msg and "found" in msg, msg
    if path is not None:
        assert os.path.basename(str(path)) in msg, msg

def _model_bytes(tmp):
    if "b" not in _MODEL:
        g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
        save_model(g, tmp)
        _MODEL["b"] = open(tmp, "rb").read()
    return _MODEL["b"]


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10 ** 6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10 ** 6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.integers(0, 255)),
)


def _mutate(raw, muts):
    b = bytearray(raw)
    for kind, pos, val in muts:
        pos = pos % max(1, len(b))
        if kind == "flip":
            if b:
                b[pos] = val
        elif kind == "truncate":
            del b[pos:]
        else:
            b[pos:pos] = bytes([val])
    return bytes(b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_model_files_give_only_refsim_errors(tmp_path, muts):
    raw = _model_bytes(str(tmp_path / "base.safetensors"))
    # most flips should land in the JSON header, where the interesting structure is
    (n,) = struct.unpack("<Q", raw[:8])
    muts = [(k, (8 + p % n) if k == "flip" and p % 3 else p, v) for k, p, v in muts]
    p = tmp_path / "m.safetensors"
    p.write_bytes(_mutate(raw, muts))
    try:
        load_model(p)
    except RefsimError as exc:
        _clear(exc, p)
        return
    assert cli.main(["info", str(p)]) == 0  # it loaded, so info describes it


header_edit = st.sampled_from([
    lambda h: h.update({"x": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}),
    lambda h: h.update({"x": {"dtype": "F32", "shape": [2 ** 62, 2 ** 62], "data_offsets": [0, 0]}}),
    lambda h: h.update({"x": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}),
    lambda h: h.update({"x": {"dtype": "F32", "shape": [2 ** 64], "data_offsets": [0, 4]}}),
    lambda h: h.update({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 2 ** 70]}}),
    lambda h: h["__metadata__"].update({"graph": "[" * 5000 + "]" * 5000}),
    lambda h: h["__metadata__"].update({"graph": "1" * 5000}),
    lambda h: h["__metadata__"].update({"format_version": "7"}),
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header_edit)
def test_hostile_headers_give_only_refsim_errors(tmp_path, edit):
    raw = _model_bytes(str(tmp_path / "base.safetensors"))
    (n,) = struct.unpack("<Q", raw[:8])
    h = json.loads(raw[8:8 + n])
    edit(h)
    hb = json.dumps(h).encode()
    p = tmp_path / "h.safetensors"
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
    try:
        load_model(p)
    except RefsimError as exc:
        _clear(exc, p)
        return
    assert cli.main(["info", str(p)]) == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=3))
def test_mutated_trace_files_give_only_refsim_errors(tmp_path, muts):
    from refsim.simulator import Recorder, Simulator
    base = tmp_path / "t.npz"
    if not base.exists():
        g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
        Simulator(g).run(np.random.default_rng(0).random((1, 1, 8, 8)), 3, recorder=Recorder(spikes=True)).save(base)
    p = tmp_path / "m.npz"
    p.write_bytes(_mutate(base.read_bytes(), muts))
    try:
        tr = load_traces(p)
    except RefsimError as exc:
        _clear(exc, p)
    else:  # it loaded: every per-step array has the T and batch the file's metadata claims
        for kind in ("spikes", "inputs", "membranes", "output"):
            for a in getattr(tr, kind).values():
                assert a.shape[:2] == (tr.T, tr.batch), (kind, a.shape)
    finally:
        os.unlink(p)


# -- NIfTI (issue 10): mutated headers and data, plain and gzipped ------------------------------

_NII = {}


def _nii_bytes(tmp):
    if "b" not in _NII:
        import nibabel as nib
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((6, 5, 4)).astype(np.float32), np.eye(4)), tmp)
        _NII["b"] = open(tmp, "rb").read()
    return _NII["b"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=3), st.booleans())
def test_mutated_nifti_files_give_only_refsim_errors(tmp_path, muts, gz):
    import gzip
    import logging
    from refsim.io.nifti import read_volume
    raw = _nii_bytes(str(tmp_path / "base.nii"))
    muts = [(k, p % 348 if k == "flip" and p % 4 else p, v) for k, p, v in muts]  # mostly in the 348-byte header
    data = _mutate(raw, muts)
    p = tmp_path / ("m.nii.gz" if gz else "m.nii")
    p.write_bytes(gzip.compress(data) if gz else data)
    logging.getLogger("nibabel").setLevel(logging.ERROR)
    try:
        vol = read_volume(p)
    except RefsimError as exc:
        assert str(p) in str(exc)  # every error names the file
        return
    assert vol.data.ndim == 3 and np.all(np.isfinite(vol.data))


# -- check (issue 10): traces damaged in structure, checked against the model -------------------

_CHECK = {}


def _check_base():
    if not _CHECK:
        from refsim.simulator import Recorder, Simulator
        g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 3), seed=0)
        tr = Simulator(g).run(np.random.default_rng(0).random((2, 1, 8, 8)), 4,
                              recorder=Recorder(spikes=True, inputs=True))
        _CHECK.update(g=g, tr=tr)
    return _CHECK["g"], _CHECK["tr"]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TRACE_DAMAGES), st.integers(0, 100), st.integers(0, 10 ** 6)), min_size=1,
                max_size=3), st.sampled_from(["teacher-forced", "free-running"]))
def test_damaged_traces_give_a_report_or_a_refsim_error(edits, mode):
    from refsim.conformance.check import check
    g, tr = _check_base()
    for kind, which, value in edits:
        tr = damage_traces(tr, kind, which, value)
    try:
        rep = check(g, tr, "paper", explain_divergences=False, mode=mode)
    except RefsimError as exc:
        _clear(exc)
        return
    # the verdict is the layers' counts: CONFORMS exactly when no layer diverged
    assert rep["conforms"] is (all(r["divergences"] == 0 for r in rep["layers"]))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6), st.sampled_from(["values", "nonfinite"]),
       st.sampled_from(["teacher-forced", "free-running"]))
def test_value_damage_to_spikes_never_conforms(which, value, kind, mode):
    """A spike value changed (to another count, out of range, NaN or inf) is either refused as bad
    input or reported as a divergence: never CONFORMS (issue 21 class 5, issue 22)."""
    from refsim.conformance.check import check
    g, tr = _check_base()
    n_spikes = len(tr.spikes)
    bad = damage_traces(tr, kind, which % n_spikes, value)  # entries list the spikes first
    name = sorted(tr.spikes, key=list(tr.spikes).index)[which % n_spikes]
    if np.array_equal(np.asarray(bad.spikes[name], dtype=np.float64), tr.spikes[name].astype(np.float64)):
        return  # the edit wrote the value that was there
    try:
        rep = check(g, bad, "paper", explain_divergences=False, mode=mode)
    except RefsimError as exc:
        _clear(exc)
        assert name in str(exc), str(exc)  # the damaged entry is named
        return
    assert not rep["conforms"], (kind, name, value)


def test_mutated_onnx_graphs_give_only_refsim_errors(tmp_path):
    """Issue 21 class 7: structure-aware mutations of an ONNX ANN (validation/fuzz_onnx.py: missing
    inputs and initializers, attributes of the wrong type, wrong parameter shapes, swapped ops) load
    or raise refsim's own error naming the node; never another exception."""
    pytest.importorskip("onnx")
    import copy
    import random
    import onnx
    from refsim.io.onnx import load_onnx
    from validation.fuzz_onnx import base, mutate
    rng = random.Random(12)
    counts = {"loaded": 0, "refused": 0}
    for i in range(300):
        m = copy.deepcopy(base())
        for _ in range(rng.randint(1, 3)):
            mutate(m, rng)
        p = tmp_path / f"m{i}.onnx"
        onnx.save(m, str(p))
        try:
            load_onnx(p)
            counts["loaded"] += 1
        except RefsimError as exc:
            assert str(p) in str(exc)
            counts["refused"] += 1
    assert counts["loaded"] > 0 and counts["refused"] > 100, counts


def test_mutated_nir_graphs_give_only_refsim_errors(tmp_path):
    """Issue 21 class 7: structure-aware mutations of the reference NIR graphs through h5py
    (validation/fuzz_nir.py: fields deleted, reshaped, non-finite or of another type, node types
    renamed, edges to unknown nodes) load or raise refsim's own error; never another exception."""
    pytest.importorskip("h5py")
    import random
    import warnings
    from refsim.io.nir import load_nir
    from validation.fuzz_nir import case
    rng = random.Random(5)
    counts = {"loaded": 0, "refused": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(200):
            p = case(str(tmp_path), rng, i)
            try:
                load_nir(p)
                counts["loaded"] += 1
            except RefsimError as exc:
                _clear(exc, p)
                counts["refused"] += 1
    assert counts["loaded"] > 0 and counts["refused"] > 100, counts
