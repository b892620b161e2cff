"""Bounded fuzzing of the loaders (issue 10): mutated model files and trace files either load or
raise refsim's own errors (exit 2 from the CLI), never another exception; what loads also describes
itself (`refsim info`). A few seconds each; validation/ can run the long version."""
import json
import os
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refsim import cli, models, save_model
from refsim.errors import RefsimError
from refsim.io import load_model
from refsim.traces import load_traces

_MODEL = {}


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
    except RefsimError:
        return
    assert cli.main(["info", str(p)]) in (0, 2)


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
    except RefsimError:
        return
    assert cli.main(["info", str(p)]) in (0, 2)


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
        load_traces(p)
    except RefsimError:
        pass
    finally:
        os.unlink(p)
