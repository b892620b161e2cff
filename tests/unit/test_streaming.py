"""Streamed recording (issue 10): per-step arrays written to a trace folder in chunks while the run
goes, read back lazily; the same values as an in-memory run, bit for bit, on both backends; nothing
left behind on errors; sizes checked before anything is allocated."""
import os
import zipfile

import numpy as np
import pytest

from refsim import cli, models, save_model
from refsim.encoding import Encoder, PoissonEncoder, StaticEncoder
from refsim.errors import ModelFormatError, ValidationError
from refsim.simulator import Simulator
from refsim.traces import KINDS, Recorder, StepFile, compare_traces, is_trace_folder, load_traces


@pytest.fixture(scope="module")
def net():
    return models.hippocampus_unet(in_shape=(1, 12, 12), channels=(3, 6), seed=1)


def _full(**kw):
    return Recorder(spikes=True, membranes=True, output=True, inputs=True, synops=True, current_max=True, values=True, **kw)


@pytest.mark.parametrize("backend", ["reference", "event"])
@pytest.mark.parametrize("chunk", [1, 4, 50])
@pytest.mark.parametrize("static", [False, True])
def test_streamed_equals_in_memory(net, tmp_path, backend, chunk, static):
    x = np.random.default_rng(2).random((2, 1, 12, 12))
    enc = StaticEncoder() if static else PoissonEncoder(seed=3)
    sim = Simulator(net, backend=backend)
    a = sim.run(x, 13, encoder=enc, recorder=_full())
    folder = tmp_path / "tr"
    b = sim.run(x, 13, encoder=enc, recorder=_full(stream_to=folder, chunk_steps=chunk))
    assert compare_traces(a, b) == []
    assert not b.membranes[net.neurons[0]].flags.writeable  # read back from disk (memory-mapped when large)
    c = load_traces(folder)
    assert compare_traces(a, c) == []
    assert is_trace_folder(folder)
    assert sorted(os.listdir(tmp_path)) == ["tr"]  # no temporary folder left


def test_error_mid_run_leaves_nothing(net, tmp_path):
    class Failing(Encoder):
        emits_spikes = True

        def stream(self, x, T, sample_offset=0):
            for t in range(T):
                if t == 7:
                    raise ValidationError("encoder", "step 7", "a test failure")
                yield np.zeros_like(x)

        def describe(self):
            return {"type": "failing"}

    x = np.zeros((1, 1, 12, 12))
    with pytest.raises(ValidationError):
        Simulator(net).run(x, 20, encoder=Failing(), recorder=_full(stream_to=tmp_path / "tr", chunk_steps=3))
    assert os.listdir(tmp_path) == []


def test_folder_rules(net, tmp_path):
    x = np.zeros((1, 1, 12, 12))
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValidationError, match="other files"):
        Recorder(spikes=True, stream_to=other)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValidationError, match="existing file"):
        Recorder(stream_to=f)
    with pytest.raises(ValidationError, match="no folder"):
        Recorder(stream_to=tmp_path / "missing" / "tr")
    with pytest.raises(ValidationError, match="chunk_steps"):
        Recorder(chunk_steps=0)
    # an earlier trace folder is replaced, whole
    sim = Simulator(net)
    sim.run(x, 5, recorder=Recorder(spikes=True, stream_to=tmp_path / "tr"))
    b = sim.run(x, 9, recorder=Recorder(membranes=True, stream_to=tmp_path / "tr"))
    assert b.T == 9 and not os.path.exists(tmp_path / "tr" / "spikes")


def test_save_folder_and_corrupt_entries(net, tmp_path):
    tr = Simulator(net).run(np.ones((1, 1, 12, 12)) * 0.5, 6, recorder=Recorder(spikes=True, membranes=True))
    tr.save(tmp_path / "saved")
    assert compare_traces(tr, load_traces(tmp_path / "saved")) == []
    entry = next((tmp_path / "saved" / "membranes").iterdir())
    entry.write_bytes(entry.read_bytes()[:-40])  # truncated
    with pytest.raises(ModelFormatError, match="membranes"):
        load_traces(tmp_path / "saved")
    (tmp_path / "saved" / "meta.json").write_text("[1")
    with pytest.raises(ModelFormatError, match="meta.json"):
        load_traces(tmp_path / "saved")


def test_step_file_refuses_steps_out_of_order(tmp_path):
    from refsim.errors import RefsimError
    f = StepFile(str(tmp_path / "a.npy"), 10, (2,), np.float64, 3)
    f[0] = 1.0
    f[5] = 2.0
    with pytest.raises(RefsimError):
        f[1] = 3.0
    f.close()
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (10, 2) and a[0, 0] == 1 and a[5, 0] == 2 and a.sum() == 6


def test_npz_sizes_checked_before_inflating(net, tmp_path):
    """A zip bomb (a large all-zero membrane record compresses ~1000:1) is refused from the sizes its
    zip directory and .npy header claim, before anything of that size is allocated."""
    import tracemalloc
    tr = Simulator(net).run(np.zeros((1, 1, 12, 12)), 2, recorder=Recorder())
    tr.membranes["enc1a_if"] = np.zeros((2, 1, 3, 12, 12))
    tr.output["output"] = np.zeros((4000, 1, 1, 100, 100))  # 320 MB of zeros
    p = tmp_path / "bomb.npz"
    tr.save(p)
    assert os.path.getsize(p) < 2_000_000
    tracemalloc.start()
    with pytest.raises(ModelFormatError, match="memory budget"):
        load_traces(p, max_bytes=50_000_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000
    # a header claiming more than the member holds
    with zipfile.ZipFile(p) as z:
        raw = {n: z.read(n) for n in z.namelist() if n != "output/output.npy"}
    hdr = raw["membranes/enc1a_if.npy"]
    raw["membranes/enc1a_if.npy"] = hdr.replace(b"(2, 1, 3, 12, 12)", b"(9, 1, 3, 12, 12)")
    q = tmp_path / "liar.npz"
    with zipfile.ZipFile(q, "w") as z:
        for n, b in raw.items():
            z.writestr(n, b)
    with pytest.raises(ModelFormatError, match="header's shape"):
        load_traces(q)


def test_sizes_checked_before_the_run(net, tmp_path):
    sim = Simulator(net)
    x = np.zeros((1, 1, 12, 12))
    with pytest.raises(ValidationError, match="T \\(steps\\)"):
        sim.run(x, 10 ** 12)
    with pytest.raises(ValidationError, match="stream them"):
        sim.run(x, 10 ** 8, recorder=Recorder(membranes=True))
    with pytest.raises(ValidationError, match="^batch"):
        sim.run(np.broadcast_to(x, (3 * 10 ** 6, 1, 12, 12)), 1)  # a view: nothing of that size exists
    mem, disk = sim.record_bytes(100, 2, Recorder(membranes=True, stream_to=tmp_path / "t"))
    assert disk == 8 * 100 * 2 * sum(int(np.prod(net.shapes[n])) for n in net.neurons + net.outputs) and mem > 0


def test_cli_run_to_folder_then_check(net, tmp_path, capsys):
    save_model(net, tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 12, 12)))
    out = tmp_path / "traces"
    rc = cli.main(["run", str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy"), "--T", "9", "--out", str(out),
                   "--record-spikes", "--record-inputs", "--no-progress", "--backend", "event"])
    assert rc == 0 and "a trace folder" in capsys.readouterr().out
    assert is_trace_folder(out)
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(out), "--no-progress"]) == 0
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a").write_text("x")
    rc = cli.main(["run", str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "junk")])
    assert rc == 2 and "--out" in capsys.readouterr().err
    assert set(KINDS) >= set(os.listdir(out)) - {"meta.json"}
