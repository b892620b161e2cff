"""Trace files: every field survives a save and load (refsim.traces owns writing and reading)."""
import dataclasses
import os

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
        x, 5, PoissonEncoder(seed=2), Recorder(spikes=True, membranes=True, inputs=True, synops=True, current_max=True, output=True, values=True))
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


def _doc_blocks():
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "traces.md")) as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), re.S)


def test_the_worked_example_in_docs_traces_runs_and_conforms(tmp_path, monkeypatch):
    """docs/traces.md's minimal example: a trace written by hand from the docs alone checks cleanly."""
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_doc_blocks()[0], "docs/traces.md", "exec"), ns)
    back = load_traces(tmp_path / "my_traces.npz")
    assert back.T == 20 and set(back.spikes) == set(ns["g"].neurons) and "input" in back.inputs
    assert sum(int(v.sum()) for v in back.step_counts.values()) > 0


def test_trace_writer_refuses_bad_entries():
    from refsim.errors import UnknownNameError, ValidationError
    from refsim.traces import TraceWriter
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
    w = TraceWriter(g, T=3, batch=1)
    with pytest.raises(UnknownNameError, match="enc1a_if"):
        w.add_spikes("enc1a", 0, np.zeros((1, 2, 8, 8)))  # a conv, not a spiking layer; the error lists valid ones
    with pytest.raises(ValidationError, match=r"shape \(1, 2, 8, 8\)"):
        w.add_spikes("enc1a_if", 0, np.zeros((2, 8, 8)))
    with pytest.raises(ValidationError, match="integers"):
        w.add_spikes("enc1a_if", 0, np.full((1, 2, 8, 8), 0.5))
    with pytest.raises(ValidationError, match="step"):
        w.add_input("input", 3, np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValidationError, match="finite"):
        w.add_input("input", 0, np.full((1, 1, 8, 8), np.nan))
    for t in range(3):
        w.add_input("input", t, np.zeros((1, 1, 8, 8)))
        for n in g.neurons:
            if not (n == "dec1b_if" and t == 1):
                w.add_spikes(n, t, np.zeros((1,) + g.shapes[n]))
    with pytest.raises(ValidationError, match="dec1b_if.*step 1"):
        w.finish()


def test_the_streaming_example_in_docs_traces_runs(tmp_path, monkeypatch):
    """docs/traces.md's trace-folder example (its last code block) streams and reads back lazily."""
    from refsim.traces import is_trace_folder
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_doc_blocks()[-1], "docs/traces.md", "exec"), ns)
    assert is_trace_folder(tmp_path / "streamed_traces")
    back = load_traces(tmp_path / "streamed_traces")
    assert back.T == 500 and back.membranes["enc1a_if"].shape == (500, 1, 2, 16, 16)
    assert np.array_equal(ns["last"], back.membranes["enc1a_if"][499])


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    """Found by validation/fuzz_cli.py: `refsim check model FIFO` blocked forever in np.load."""
    import pytest
    from refsim.errors import RefsimError
    from refsim.traces import load_traces
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "f.npz")
    with pytest.raises(RefsimError, match="FIFO"):
        load_traces(tmp_path / "f.npz")
    from refsim import models
    from refsim.simulator import Recorder, Simulator
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 3), seed=0)
    folder = tmp_path / "tr"
    Simulator(g).run(np.zeros((1, 1, 8, 8)), 2, recorder=Recorder(spikes=True, stream_to=str(folder)))
    load_traces(folder)  # the real folder loads
    victim = next((folder / "spikes").iterdir())
    victim.unlink()
    os.mkfifo(victim)
    with pytest.raises(RefsimError, match="regular"):
        load_traces(folder)
