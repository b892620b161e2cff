"""Trace files: every field survives a save and load (refsim.traces owns writing and reading)."""
import dataclasses

import numpy as np
import pytest

from refsim import models
from refsim.encoding import PoissonEncoder
from refsim.errors import ModelFormatError
from refsim.simulator import Recorder, Simulator
from refsim.traces import KINDS, Traces, load_traces


@pytest.mark.parametrize("backend,dtype", [("reference", "float64"), ("event", "float64"), ("event", "float32")])
def test_every_field_round_trips(tmp_path, backend, dtype):
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=1)
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    tr = Simulator(g, "snntorch", backend, dtype=dtype).run(
        x, 5, PoissonEncoder(seed=2), Recorder(spikes=True, membranes=True, inputs=True))
    for kind in KINDS:
        assert getattr(tr, kind), f"the run recorded no {kind}"
    tr.save(tmp_path / "t.npz")
    back = load_traces(tmp_path / "t.npz")
    for f in dataclasses.fields(Traces):
        a, b = getattr(tr, f.name), getattr(back, f.name)
        if f.name in KINDS:
            assert a.keys() == b.keys(), f.name
            for k in a:
                assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), (f.name, k)
        elif f.name == "layers":
            assert {k: dict(v, shape=tuple(v["shape"])) for k, v in a.items()} == b
        else:
            assert a == b, (f.name, a, b)
    assert back.dtype == dtype  # was always reloaded as float64 before


def test_meta_must_be_an_object_with_integer_T(tmp_path):
    np.savez(tmp_path / "a.npz", meta=np.array('["not", "an", "object"]'))
    with pytest.raises(ModelFormatError, match="a.npz.*meta"):
        load_traces(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", meta=np.array('{"format": "refsim-traces", "format_version": 1, "T": "5", "batch": 1}'))
    with pytest.raises(ModelFormatError, match="b.npz.*'T'"):
        load_traces(tmp_path / "b.npz")
