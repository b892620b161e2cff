"""NIR import and export (issue 11): every reference graph of ../shared/data/nir-reference imports
and runs (both backends, the same traces); files written by nir 1.0.4 and 1.0.8 load; a round trip
of each exportable refsim model is exact; a LIF layer imported from NIR reproduces, step for step,
what Norse and snnTorch compute from the same file; export refuses what NIR cannot express."""
import glob
import os

import numpy as np
import pytest

from refsim.encoding import PoissonEncoder, ReplayEncoder
from refsim.errors import ModelFormatError
from refsim.graph import (Add, Concat, Conv2d, Delay, Flatten, Graph, Input, Linear, Neuron, Output, Scale,
                          SumPool2d)
from refsim.io.nir import NIRExportError, load_nir, read_nir_dict, save_nir
from refsim.simulator import Recorder, Simulator
from refsim.traces import compare_traces

pytest.importorskip("h5py")
HERE = os.path.dirname(os.path.abspath(__file__))
# the project's data folder when it is there, else the copies shipped with the tests (BSD-3, README beside them)
_SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data", "nir-reference")
REFERENCE = _SHARED if os.path.isdir(_SHARED) else os.path.join(HERE, "..", "data", "nir", "reference")
REF_FILES = sorted(glob.glob(os.path.join(REFERENCE, "*.nir")))
NIR108 = os.path.join(HERE, "..", "data", "nir", "lif_v_reset_nir108.nir")


@pytest.mark.skipif(not REF_FILES, reason="no NIR reference graphs (../shared/data or tests/data)")
@pytest.mark.parametrize("path", REF_FILES, ids=[os.path.basename(p) for p in REF_FILES])
def test_every_reference_graph_imports_and_runs(path):
    g = load_nir(path)
    assert g.metadata["profile"] == "nir"  # written before nir 1.0.6: no v_reset, subtractive reset
    x = np.random.default_rng(0).random((2,) + g.shapes[g.inputs[0]])
    runs = [Simulator(g, g.metadata["profile"], be).run(x, 30, PoissonEncoder(seed=1),
                                                         Recorder(spikes=True, membranes=True))
            for be in ("reference", "event")]
    assert compare_traces(runs[0], runs[1]) == []
    assert sum(int(v.sum()) for v in runs[0].step_counts.values()) > 0


@pytest.mark.skipif(not REF_FILES, reason="no NIR reference graphs (../shared/data or tests/data)")
def test_reference_graph_structures():
    g = load_nir(os.path.join(REFERENCE, "braille_noDelay_bias_zero.nir"))
    types = {g[n].TYPE for n in g.order}
    assert {"Delay", "Add", "Linear", "Neuron"} <= types            # recurrence and summed inputs
    lif = g["lif1_lif"]
    assert lif.model == "cubalif"
    # tau_mem 1e-3, tau_syn 2.22e-4, dt 1e-4 (forward Euler): beta 0.9, alpha 0.55; r dt/tau_mem = 1
    assert np.isclose(lif.beta, 0.9) and np.isclose(lif.alpha, 0.55) and lif.gain == 1.0
    c = load_nir(os.path.join(REFERENCE, "cnn_sinabs.nir"))
    assert [c[n].TYPE for n in c.order].count("SumPool2d") == 2 and c.shapes[c.outputs[0]] == (10,)
    e = load_nir(os.path.join(REFERENCE, "lif_norse.nir"), discretisation="exact")
    n = e[e.neurons[0]]
    assert np.isclose(n.beta, np.exp(-1e-4 / 2.5e-3))


def test_files_of_both_nir_rules_load():
    version, _ = read_nir_dict(NIR108)
    assert version == "1.0.8"
    g = load_nir(NIR108)
    assert g.metadata["profile"] == "nir-reset" and g[g.neurons[0]].model == "lif"
    # nir 1.0.4 itself cannot read this file (an unexpected v_reset); refsim reads the HDF5 directly
    tr = Simulator(g, "nir-reset").run(np.ones((1, 2)), 20, ReplayEncoder(np.ones((20, 1, 2))))
    assert tr.T == 20


def _exportable_models():
    rng = np.random.default_rng(3)
    w = lambda *s: rng.normal(0, 0.6, s).astype(np.float32)
    conv = Graph([Input("x", (2, 8, 8)), Conv2d("c1", ["x"], w(4, 2, 3, 3), w(4), padding=1),
                  Neuron("n1", ["c1"], "if", 0.75), SumPool2d("p", ["n1"], 2),
                  Flatten("f", ["p"]), Scale("s", ["f"], factor=0.5), Linear("fc", ["s"], w(5, 64), w(5)),
                  Neuron("n2", ["fc"], "if", 1.0), Output("out", ["n2"])], name="conv", metadata={"profile": "nir"})
    lif = Graph([Input("x", (6,)), Linear("fc", ["x"], w(5, 6)),
                 Neuron("l", ["fc"], "lif", 0.5, beta=0.875, bias=0.0625), Linear("fc2", ["l"], w(3, 5)),
                 Neuron("c", ["fc2"], "cubalif", 1.0, beta=0.75, alpha=0.5, gain=2.0), Output("out", ["c"])],
                name="lif", metadata={"profile": "nir"})
    rec = Graph([Input("x", (4,)), Linear("fc", ["x"], w(6, 4)), Delay("prev", ["l"], [6]),
                 Linear("wrec", ["prev"], w(6, 6)), Add("sum", ["fc", "wrec"]),
                 Neuron("l", ["sum"], "lif", 1.0, beta=0.5), Output("out", ["l"])],
                name="recurrent", metadata={"profile": "nir"})
    return [conv, lif, rec]


@pytest.mark.parametrize("g", _exportable_models(), ids=lambda g: g.name)
def test_nir_round_trip_is_exact(tmp_path, g):
    pytest.importorskip("nir")
    import nir
    if "v_reset" in __import__("inspect").signature(nir.IF).parameters:
        pytest.skip("the installed nir (>= 1.0.6) cannot say a subtractive reset")
    p = tmp_path / f"{g.name}.nir"
    save_nir(g, p, dt=1e-4)
    back = load_nir(p, dt=1e-4)
    kinds = lambda gr: sorted(gr[n].TYPE for n in gr.order if gr[n].TYPE not in ("Delay", "Add"))
    assert kinds(back) == kinds(g)
    for n in g.neurons:
        for f in ("threshold", "beta", "bias", "alpha", "gain"):
            a, b = getattr(g[n], f, None), getattr(back[n], f, None)
            assert (a is None and b in (None, 0.0, 1.0)) or np.array_equal(np.float32(a), np.float32(b)), (n, f, a, b)
    x = np.random.default_rng(0).random((3,) + g.shapes[g.inputs[0]])
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(g, "nir").run(x, 40, PoissonEncoder(seed=4), rec)
    b = Simulator(back, "nir").run(x, 40, PoissonEncoder(seed=4), rec)
    assert all(np.array_equal(a.spikes[n], b.spikes[n]) for n in g.neurons)
    assert sum(int(v.sum()) for v in a.step_counts.values()) > 0


def test_export_refuses_what_nir_cannot_say(tmp_path):
    pytest.importorskip("nir")
    w = np.ones((2, 1, 1, 1), np.float32)
    cases = {
        "concatenation": Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w), Conv2d("b", ["x"], w),
                                Concat("cat", ["a", "b"]), Neuron("n", ["cat"]), Output("o", ["n"])]),
        "multithreshold": Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w),
                                 Neuron("n", ["a"], "multithreshold", levels=[1.0, 0.5]), Output("o", ["n"])]),
        "'>='": Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w), Neuron("n", ["a"], choices={"comparison": ">="}),
                       Output("o", ["n"])]),
        "ternary": Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w), Neuron("n", ["a"], "ternary"),
                          Output("o", ["n"])]),
    }
    for what, g in cases.items():
        with pytest.raises(NIRExportError, match=what.strip("'") if what != "'>='" else ">="):
            save_nir(g, tmp_path / "x.nir")
        assert not os.path.exists(tmp_path / "x.nir")


def test_bad_nir_files_are_clear_errors(tmp_path):
    (tmp_path / "junk.nir").write_bytes(b"not hdf5" * 20)
    with pytest.raises(ModelFormatError, match="junk.nir"):
        load_nir(tmp_path / "junk.nir")
    import h5py
    with h5py.File(tmp_path / "maxpool.nir", "w") as f:
        n = f.create_group("node")
        n["type"] = "NIRGraph"
        nodes = n.create_group("nodes")
        i = nodes.create_group("input")
        i["type"], i["shape"] = "Input", np.array([3])
        m = nodes.create_group("m")
        m["type"] = "MaxPool2d"
        o = nodes.create_group("output")
        o["type"], o["shape"] = "Output", np.array([3])
        n["edges"] = np.array([[b"input", b"m"], [b"m", b"output"]])
    with pytest.raises(ModelFormatError, match="MaxPool2d"):
        load_nir(tmp_path / "maxpool.nir")


# -- the same file in Norse and snnTorch ----------------------------------------------------------

def _lif_file():
    p = os.path.join(REFERENCE, "lif_norse.nir")
    if not os.path.exists(p):
        pytest.skip("no NIR reference graphs")
    return p


def _refsim_spikes(path, dt, profile, x):
    g = load_nir(path, dt=dt)
    tr = Simulator(g, profile).run(x[0], x.shape[0], ReplayEncoder(x), Recorder(spikes=True))
    return tr.spikes[g.neurons[0]][..., 0].astype(np.int64)  # (T, B)


def test_lif_matches_norse_step_for_step():
    torch = pytest.importorskip("torch")
    norse = pytest.importorskip("norse.torch")
    nir = pytest.importorskip("nir")
    path = _lif_file()
    x = (np.random.default_rng(7).random((200, 8, 1)) * 0.4).astype(np.float32)
    m = norse.from_nir(nir.read(path), dt=1e-3)  # Norse's default step
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = m(torch.from_numpy(x[t]), state)
            out.append(z.numpy()[:, 0])
    theirs = np.array(out).astype(np.int64)
    assert theirs.sum() > 20
    # Norse's importer resets LIF neurons to v_reset = 0 (profile "norse"); the file, written before
    # nir 1.0.6, says subtract (profile "nir"): the same spikes only under Norse's rule
    assert np.array_equal(_refsim_spikes(path, 1e-3, "norse", x.astype(np.float64)), theirs)
    assert not np.array_equal(_refsim_spikes(path, 1e-3, "nir", x.astype(np.float64)), theirs)


def test_lif_matches_snntorch_step_for_step():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    nir = pytest.importorskip("nir")
    from snntorch import import_nir
    from snntorch.utils import reset
    path = _lif_file()
    x = (np.random.default_rng(8).random((200, 8, 1)) * 0.4).astype(np.float32)
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        m = import_nir.import_from_nir(nir.read(path))  # snnTorch: dt = 1e-4, reset to zero, no delay
    reset(m)
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            z = m(torch.from_numpy(x[t]))
            z = z[0] if isinstance(z, tuple) else z
            out.append(z.numpy()[:, 0])
    theirs = np.array(out).astype(np.int64)
    assert theirs.sum() > 20
    assert np.array_equal(_refsim_spikes(path, 1e-4, "nir-reset", x.astype(np.float64)), theirs)


def test_snntorch_imports_a_nir_if_as_a_leaky_neuron():
    """A library finding docs/import.md reports: snnTorch's importer makes a NIR IF (no leak) a
    Leaky with beta 0.9; refsim keeps it an IF."""
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    nir = pytest.importorskip("nir")
    import contextlib
    import io
    import snntorch as snn
    from snntorch import import_nir
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                            "fc": nir.Linear(weight=np.eye(2, dtype=np.float32)),
                            "if": nir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32)),
                            "output": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("input", "fc"), ("fc", "if"), ("if", "output")])
    with contextlib.redirect_stdout(io.StringIO()):
        m = import_nir.import_from_nir(g)
    leaky = [mod for mod in m.modules() if isinstance(mod, snn.Leaky)]
    assert leaky and abs(float(leaky[0].beta) - 0.9) < 1e-6
    ours = __import__("refsim.io.nir", fromlist=["from_nir_dict"])
    d = {"type": "NIRGraph", "nodes": {k: {"type": type(v).__name__, **{f: getattr(v, f) for f in
                                                                       ("weight", "r", "v_threshold") if hasattr(v, f)},
                                           **({"shape": np.array([2])} if k == "input" else {})}
                                       for k, v in g.nodes.items()}, "edges": np.array(g.edges)}
    rg = ours.from_nir_dict(d)
    assert rg[rg.neurons[0]].model == "if"


def test_i_threshold_scale_and_avgpool_nodes_map_as_documented():
    """NIR's I (into the Output), Threshold (no memory), Scale and AvgPool2d, from a graph dict."""
    from refsim.io.nir import from_nir_dict
    d = {"type": "NIRGraph", "edges": np.array([["input", "pool"], ["pool", "flat"], ["flat", "scale"],
                                                ["scale", "thr"], ["thr", "i"], ["i", "output"]]),
         "nodes": {"input": {"type": "Input", "shape": np.array([1, 4, 4])},
                   "pool": {"type": "AvgPool2d", "kernel_size": np.array([2, 2]), "stride": np.array([2, 2]),
                            "padding": np.array([0, 0])},
                   "flat": {"type": "Flatten", "start_dim": 0, "end_dim": -1},
                   "scale": {"type": "Scale", "scale": np.full(4, 2.0)},
                   "thr": {"type": "Threshold", "threshold": np.full(4, 0.5)},
                   "i": {"type": "I", "r": np.full(4, 3.0)},
                   "output": {"type": "Output", "shape": np.array([4])}}}
    g = from_nir_dict(d)
    assert [g[n].TYPE for n in g.order] == ["Input", "AvgPool2d", "Flatten", "Scale", "Neuron", "Scale", "Output"]
    thr = g[g.neurons[0]]
    assert thr.model == "lif" and thr.beta == 0.0 and thr.threshold == 0.5
    # a Threshold has no memory: input 0.3 each step never fires, 0.6 fires every step
    x = np.array([[[[0.15, 0.15, 0.3, 0.3], [0.15, 0.15, 0.3, 0.3], [0.3] * 4, [0.3] * 4]]])
    tr = Simulator(g, g.metadata["profile"]).run(x, 5, ReplayEncoder(np.repeat(x[None], 5, 0)), Recorder(spikes=True))
    s = tr.spikes[g.neurons[0]][:, 0]
    assert s[:, 0].sum() == 0 and s[:, 1].sum() == 5          # 2 x 0.15 < 0.5; 2 x 0.3 > 0.5
    # the I integrator: the Output integrates r x the spikes
    assert tr.final_output["output"][0, 1] == 15.0


def _conv_dict(**conv):
    return {"type": "NIRGraph", "edges": np.array([["input", "c"], ["c", "output"]]),
            "nodes": {"input": {"type": "Input", "shape": np.array([1, 5, 5])},
                      "c": {"type": "Conv2d", "weight": np.ones((2, 1, 3, 3), np.float32), "bias": np.zeros(2, np.float32),
                            "stride": np.array([1, 1]), "padding": np.array([1, 1]), "groups": 1, **conv},
                      "output": {"type": "Output", "shape": np.array([2, 5, 5])}}}


def test_nir_conv_without_dilation_defaults_to_1_and_bad_tensors_are_refused():
    """A Conv2d that leaves dilation out (NIR's default) is dilation 1; a weight with a NaN, or one
    that is not numeric, is refused naming the node and the field (torch-free: a NIR graph dict)."""
    from refsim.io.nir import from_nir_dict
    g = from_nir_dict(_conv_dict())
    assert g["c"].dilation == (1, 1) and g.shapes["c"] == (2, 5, 5)
    w = np.ones((2, 1, 3, 3), np.float32)
    w[1, 0, 1, 1] = np.nan
    with pytest.raises(ModelFormatError, match="'c'.*weight|weight.*'c'") as e:
        from_nir_dict(_conv_dict(weight=w))
    assert "finite" in str(e.value)
    with pytest.raises(ModelFormatError, match="weight"):
        from_nir_dict(_conv_dict(weight=np.array(["a", "b"])))


def test_nir_export_refuses_a_zero_step_and_a_cubalif_beta_of_1(tmp_path):
    pytest.importorskip("nir")
    from refsim.errors import ValidationError
    w = np.ones((2, 1, 1, 1), np.float32)
    g = Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w), Neuron("n", ["a"]), Output("o", ["n"])])
    for dt in (0.0, -1e-4, float("nan")):
        with pytest.raises(ValidationError, match="time step"):
            save_nir(g, tmp_path / "x.nir", dt=dt)
    for alpha, beta in ((1.0, 0.5), (0.5, 1.0)):
        c = Graph([Input("x", (1, 4, 4)), Conv2d("a", ["x"], w),
                   Neuron("n", ["a"], "cubalif", alpha=alpha, beta=beta), Output("o", ["n"])])
        with pytest.raises(NIRExportError, match="alpha or beta of 1"):
            save_nir(c, tmp_path / "x.nir")
        assert not os.path.exists(tmp_path / "x.nir")
