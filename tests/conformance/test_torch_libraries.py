"""SpikingJelly, snnTorch, Sinabs and Norse IF neurons in small conv networks, through the torch
adapter, against their refsim profiles. Skipped when torch or the library is not installed."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refsim.conformance import record_torch  # noqa: E402
from refsim.io import torch as adapter  # noqa: E402
from refsim.conformance.check import check, format_report  # noqa: E402


def make_neuron(lib, **kw):
    if lib == "spikingjelly":
        from spikingjelly.activation_based import neuron
        return neuron.IFNode(v_threshold=kw.get("th", 1.0), v_reset=None)
    if lib == "spikingjelly-hard":
        from spikingjelly.activation_based import neuron
        return neuron.IFNode(v_threshold=kw.get("th", 1.0))
    if lib == "snntorch":
        import snntorch as snn
        return snn.Leaky(beta=1.0, threshold=kw.get("th", 1.0), reset_mechanism="subtract")
    if lib == "sinabs":
        import sinabs.layers as sl
        return sl.IAF(spike_threshold=kw.get("th", 1.0))
    if lib == "sinabs-from-model":
        import sinabs.layers as sl
        return sl.IAF(spike_threshold=kw.get("th", 1.0), min_v_mem=-1.0)
    if lib == "norse":
        import norse.torch as nt
        from norse.torch.functional.iaf import IAFParameters
        return nt.IAFCell(p=IAFParameters(v_th=torch.as_tensor(kw.get("th", 1.0))))
    raise ValueError(lib)


LIBS = {"spikingjelly": "spikingjelly", "spikingjelly-hard": "spikingjelly", "snntorch": "snntorch",
        "sinabs": "sinabs", "sinabs-from-model": "sinabs", "norse": "norse"}
PROFILES = {"spikingjelly": "spikingjelly", "spikingjelly-hard": "spikingjelly-hard-reset", "snntorch": "snntorch",
            "sinabs": "sinabs", "sinabs-from-model": "sinabs", "norse": "norse"}


def net(lib, seed, dyadic=False):
    g = torch.Generator().manual_seed(seed)
    nn = torch.nn
    layers = [nn.Conv2d(1, 4, 3, padding=1, bias=False), make_neuron(lib, th=1.0),
              nn.Conv2d(4, 6, 3, padding=1, bias=True), make_neuron(lib, th=0.75),
              nn.AvgPool2d(2), nn.ConvTranspose2d(6, 4, 2, stride=2), make_neuron(lib, th=1.0),
              nn.Flatten(), nn.Linear(4 * 8 * 8, 5), make_neuron(lib, th=0.5), nn.Linear(5, 3)]
    m = nn.Sequential(*layers)
    with torch.no_grad():  # synaptic layers only (Sinabs thresholds are parameters too)
        for layer in m:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                for p in layer.parameters():
                    v = torch.randn(p.shape, generator=g) * 0.6
                    p.copy_(torch.round(v * 8) / 8 if dyadic else v)
    return m


def inputs(seed, T=24, B=2):
    rng = np.random.default_rng(seed)
    return (rng.random((T, B, 1, 8, 8)) < rng.random((1, B, 1, 8, 8))).astype(np.float32)


@pytest.mark.parametrize("lib", sorted(LIBS))
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dyadic", [False, True])
def test_library_matches_its_profile(lib, seed, dyadic):
    pytest.importorskip(LIBS[lib])
    m = net(lib, seed, dyadic)
    g = adapter.export(m, (1, 8, 8))
    assert g.metadata["profile"] == PROFILES[lib]
    tr = record_torch.record(m, inputs(seed))
    assert sum(int(v.sum()) for v in tr.step_counts.values()) > 0
    rep = check(g, tr, g.metadata["profile"])
    assert rep["conforms"], format_report(rep)
    assert {n: tuple(tr.layers[n]["shape"]) for n in g.neurons} == {n: tuple(g.shapes[n]) for n in g.neurons}
    if dyadic:  # exact sums: not even rounding ties
        assert all(r["ties"] == 0 for r in rep["layers"]), format_report(rep)
        # so the same spikes: the recorded output (the model's outputs summed over steps, in float32)
        # equals refsim's output membrane on the replayed input up to float32 rounding
        from refsim.encoding import ReplayEncoder
        from refsim.simulator import Recorder, Simulator
        x = tr.inputs["input"]
        ref = Simulator(g, g.metadata["profile"], "reference").run(x[0], tr.T, ReplayEncoder(x), Recorder(output=True))
        mine = next(iter(ref.output.values()))
        assert np.abs(mine).max() > 1.0
        np.testing.assert_allclose(tr.output["output"], mine, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("lib,other,expect", [("spikingjelly", "paper", "comparison=>="),
                                              ("norse", "paper", "reset=zero"),
                                              ("sinabs", "spikingjelly", "spikes_per_step=multi")])
def test_known_differences_between_libraries_are_detected(lib, other, expect):
    """Dyadic weights make exact ties, where the libraries' choices show."""
    pytest.importorskip(LIBS[lib])
    found = set()
    for seed in range(4):
        m = net(lib, seed, dyadic=True)
        g = adapter.export(m, (1, 8, 8))
        tr = record_torch.record(m, inputs(seed, T=32) * (3.0 if lib == "sinabs" else 1.0))
        rep = check(g, tr, other)
        for r in rep["layers"]:
            if r["divergences"]:
                found.update(r["explained_by"])
    assert expect in found


def tensor_neuron(lib, th):
    """Neurons that return a spike tensor, as a non-sequential model needs."""
    if lib == "snntorch":
        import snntorch as snn
        return snn.Leaky(beta=1.0, threshold=th, reset_mechanism="subtract", init_hidden=True)
    if lib == "sinabs":
        import sinabs.layers as sl
        return sl.IAFSqueeze(spike_threshold=th, batch_size=2)
    if lib == "plain":
        return PlainIF(th, ge=True)
    return make_neuron(lib, th=th)


class TinyUNet(torch.nn.Module):
    """Two levels, a transposed convolution and a torch.cat skip: the shape of the papers' U-Nets."""

    def __init__(self, lib, seed):
        super().__init__()
        nn = torch.nn
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.enc_if = tensor_neuron(lib, 1.0)
        self.pool = nn.AvgPool2d(2)
        self.down = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.down_if = tensor_neuron(lib, 0.75)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.up_if = tensor_neuron(lib, 1.0)
        self.dec = nn.Conv2d(8, 4, 3, padding=1)
        self.dec_if = tensor_neuron(lib, 1.0)
        self.head = nn.Conv2d(4, 2, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in (self.enc, self.down, self.up, self.dec, self.head):
                for p in m.parameters():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.7)

    def forward(self, x):
        e = self.enc_if(self.enc(x))
        d = self.down_if(self.down(self.pool(e)))
        u = self.up_if(self.up(d))
        return self.head(self.dec_if(self.dec(torch.cat([e, u], dim=1))))


@pytest.mark.parametrize("lib", ["spikingjelly", "snntorch", "sinabs", "plain"])
def test_non_sequential_unet_with_cat_matches_its_profile(lib):
    if lib != "plain":
        pytest.importorskip(LIBS[lib])
    m = TinyUNet(lib, seed=3)
    extra = {"neurons": (PlainIF,)} if lib == "plain" else {}
    g = adapter.export(m, (1, 8, 8), **extra)
    assert [n.TYPE for n in g.nodes.values()].count("Concat") == 1
    assert g.metadata["profile"] == PROFILES.get(lib, "paper")
    tr = record_torch.record(m, inputs(4), **extra)
    assert set(tr.spikes) == set(g.neurons)
    assert all(int(v.sum()) > 0 for v in tr.step_counts.values())
    rep = check(g, tr, g.metadata["profile"])
    assert rep["conforms"], format_report(rep)
    # the recorded output is the model's output summed over steps: the head (a 1x1 convolution)
    # of the last neuron layer's recorded spikes, summed, up to float32 rounding
    head = g[g[g.outputs[0]].inputs[0]]
    assert head.TYPE == "Conv2d" and head.inputs[0] in tr.spikes
    steps = [head.forward([tr.spikes[head.inputs[0]][t].astype(np.float64)]) for t in range(tr.T)]
    np.testing.assert_allclose(tr.output["output"], np.cumsum(steps, axis=0), rtol=1e-5, atol=1e-4)
    # and free-running, the whole network from the recorded input alone
    rep = check(g, tr, g.metadata["profile"], mode="free-running")
    assert rep["conforms"], format_report(rep)


def test_non_sequential_rejects_residual_add():
    pytest.importorskip("spikingjelly")
    from refsim.errors import ModelFormatError

    class Res(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.n = make_neuron("spikingjelly")

        def forward(self, x):
            return self.n(self.c(x)) + x
    with pytest.raises(ModelFormatError, match="torch.cat, not"):
        adapter.export(Res(), (1, 8, 8))


def test_sinabs_single_spike_is_one_spike_a_step():
    """Sinabs' spike function decides spikes per step: MultiSpike (the default, tested above) or
    SingleSpike, passed as the class. A SingleSpike network exports as one spike a step and
    conforms with inputs strong enough for several; checked as multi-spike, it diverges."""
    pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike
    m = net("sinabs", 1, dyadic=True)
    for i, layer in enumerate(m):
        if isinstance(layer, sl.IAF):
            m[i] = sl.IAF(spike_threshold=float(layer.spike_threshold), spike_fn=SingleSpike)
    g = adapter.export(m, (1, 8, 8))
    assert {g[n].choices.get("spikes_per_step") for n in g.neurons} == {"one"}
    tr = record_torch.record(m, inputs(1, T=32) * 3.0)
    assert int(max(np.abs(v).max() for v in tr.spikes.values())) == 1
    assert check(g, tr, g.metadata["profile"])["conforms"]
    multi = adapter.export(net("sinabs", 1, dyadic=True), (1, 8, 8))
    assert not check(multi, tr, multi.metadata["profile"])["conforms"]


def test_sinabs_membrane_reset_value_adds_to_silent_neurons():
    pytest.importorskip("sinabs")
    from validation.library_findings import sinabs_membrane_reset_value
    f = sinabs_membrane_reset_value(0.25, T=6)
    assert f["expected_spikes"] == [0] * 6 and f["expected_membrane"] == [0.0] * 6  # the equations: nothing happens
    assert f["membrane"][:4] == [0.25, 0.5, 0.75, 1.0] and f["spikes"][4] == 1  # sinabs: climbs by r, then fires
    assert f["differs"]


def test_snntorch_reset_delay_reports_pre_reset_membranes():
    pytest.importorskip("snntorch")
    from validation.library_findings import snntorch_reset_delay
    f = snntorch_reset_delay()
    assert f["spikes"] == f["expected_spikes"] == [0, 1, 0, 1, 1, 0]  # the paper's spikes
    assert f["membrane"] == f["pre_reset_membrane"] != f["expected_membrane"]  # but pre-reset membranes


class PlainIF(torch.nn.Module):
    """A user's own IF neuron in plain torch (what many papers' code does)."""

    def __init__(self, threshold=1.0, ge=False, reset_zero=False):
        super().__init__()
        self.threshold, self.ge, self.reset_zero = threshold, ge, reset_zero
        self.v = None

    def reset(self):
        self.v = None

    def forward(self, x):
        self.v = x.clone() if self.v is None else self.v + x
        s = (self.v >= self.threshold if self.ge else self.v > self.threshold).to(x.dtype)
        self.v = self.v * (1 - s) if self.reset_zero else self.v - s * self.threshold
        return s


@pytest.mark.parametrize("ge,reset_zero", [(False, False), (True, False), (True, True)])
def test_plain_threshold_module_choices_measured_and_conform(ge, reset_zero):
    from refsim.io.torch import plain_choices
    ch = plain_choices(PlainIF(0.75, ge, reset_zero))
    assert ch["comparison"] == (">=" if ge else ">") and ch["reset"] == ("zero" if reset_zero else "subtract")
    nn = torch.nn
    g_ = torch.Generator().manual_seed(5)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), PlainIF(0.75, ge, reset_zero), nn.AvgPool2d(2),
                      nn.Conv2d(4, 3, 3, padding=1), PlainIF(1.0, ge, reset_zero), nn.Flatten(), nn.Linear(48, 2))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g_) * 0.7)
    g = adapter.export(m, (1, 8, 8), neurons=(PlainIF,))
    node = g["1_PlainIF"]
    assert node.threshold == 0.75 and (node.choices or {}).get("comparison", ">") == ch["comparison"]
    tr = record_torch.record(m, inputs(6), neurons=(PlainIF,))
    assert set(tr.spikes) == set(g.neurons) and all(int(v.sum()) > 0 for v in tr.step_counts.values())
    rep = check(g, tr, g.metadata["profile"])
    assert rep["conforms"], format_report(rep)


def test_plain_module_that_is_not_an_if_neuron_is_rejected():
    from refsim.errors import ModelFormatError

    class Leaky(PlainIF):
        def forward(self, x):
            self.v = x.clone() if self.v is None else 0.5 * self.v + x
            s = (self.v > self.threshold).to(x.dtype)
            self.v = self.v - s * self.threshold
            return s
    with pytest.raises(ModelFormatError, match="one IF choice set"):
        adapter.export(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), Leaky()), (1, 4, 4), neurons=(Leaky,))


def test_external_golden_case_regenerates_from_spikingjelly(tmp_path):
    """golden/make_external_golden.py, run again, records the same SpikingJelly spikes as the
    committed case (so the committed expected.npz is what SpikingJelly does, not an edit)."""
    pytest.importorskip("spikingjelly")
    import importlib.util
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("mk_ext", os.path.join(root, "golden", "make_external_golden.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path / "case")
    from refsim.traces import compare_traces, load_traces
    a = load_traces(os.path.join(root, "golden", "spikingjelly-recorded", "expected.npz"))
    b = load_traces(tmp_path / "case" / "expected.npz")
    assert compare_traces(a, b, ["spikes", "step_counts", "inputs"]) == []


@pytest.mark.parametrize("mode", ["teacher-forced", "free-running"])
def test_snntorch_chain_with_a_rounding_tie_conforms_in_both_modes(mode):
    """Issue 9's minimal case: two snnTorch Leaky(beta=1) neurons in a chain, weights float32(1/3),
    constant input. Free-running used to report a divergence in the second neuron after the first
    one's rounding tie."""
    snn = pytest.importorskip("snntorch")
    m = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), snn.Leaky(beta=1.0, init_hidden=True),
                            torch.nn.Linear(1, 1, bias=False), snn.Leaky(beta=1.0, init_hidden=True))
    with torch.no_grad():
        m[0].weight.fill_(1 / 3)
        m[2].weight.fill_(1 / 3)
    g = adapter.export(m, (1,))
    tr = record_torch.record(m, np.ones((40, 1, 1), np.float32))
    rep = check(g, tr, g.metadata["profile"], mode=mode)
    layers = rep["layers"]
    assert rep["conforms"], format_report(rep)
    assert layers[0]["ties"] >= 1 and layers[1]["divergences"] == 0 and layers[1]["compared"] == 40


def _trace_doc_blocks():
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "traces.md")) as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), re.S)


@pytest.mark.parametrize("lib,block", [("spikingjelly", 1), ("norse", 2), ("snntorch", 3)])
def test_docs_trace_writer_examples_conform(lib, block):
    """docs/traces.md: a multi-step SpikingJelly model and a Norse IAFCell loop, which record() cannot
    step, recorded with TraceWriter, and an snnTorch leaky network recorded with record(); each checked."""
    pytest.importorskip(lib)
    torch.manual_seed(0)
    ns = {}
    exec(compile(_trace_doc_blocks()[block], "docs/traces.md", "exec"), ns)
    g, traces = ns["g"], ns["traces"]
    assert traces.step_counts[g.neurons[0]].sum() > 0
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, traces, g.metadata["profile"], mode=mode)
        assert rep["conforms"], format_report(rep)


def test_record_refuses_multi_step_models_and_points_to_the_writer():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, neuron
    from refsim.errors import ModelFormatError
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), neuron.IFNode())
    functional.set_step_mode(net, "m")
    with pytest.raises(ModelFormatError, match="TraceWriter"):
        record_torch.record(net, np.zeros((4, 1, 2), np.float32))


@pytest.mark.parametrize("tau_mem_inv,reset", [(100.0, "value"), (200.0, "value"), (100.0, "subtract")])
def test_norse_lif_box_cell_is_recorded_and_conforms(tau_mem_inv, reset):
    """Norse's LIFBoxCell (Euler ``v + dt tau_mem_inv (x - v)``; issue 23): recorded by ``record``,
    exported as a ``lif`` layer with beta = 1 - dt tau_mem_inv behind a Scale of dt tau_mem_inv,
    conforms in both modes; the same traces against a beta 2e-4 off diverge, and a leak
    potential (Norse starts the membrane there, refsim at 0) is refused with the field named."""
    pytest.importorskip("norse")
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract, reset_value
    from refsim.errors import ModelFormatError
    torch.manual_seed(0)
    p = LIFBoxParameters(tau_mem_inv=torch.tensor(tau_mem_inv), v_th=torch.tensor(0.5),
                         reset_method=reset_value if reset == "value" else reset_subtract)
    m = torch.nn.Sequential(torch.nn.Linear(20, 30), LIFBoxCell(p), torch.nn.Linear(30, 10), LIFBoxCell(p))
    with torch.no_grad():
        m[0].weight.mul_(8.0)
        m[2].weight.mul_(8.0)
    x = (np.random.default_rng(0).random((100, 16, 20)) < 0.3).astype(np.float32)
    g = adapter.export(m, (20,))
    lif = [n for n in g.neurons]
    assert [g[n].model for n in lif] == ["lif", "lif"]
    a = np.float32(np.float32(0.001) * np.float32(tau_mem_inv))
    assert float(np.float32(g[lif[0]].beta)) == float(np.float32(1.0 - float(a)))
    assert g[g[lif[0]].inputs[0]].TYPE == "Scale"
    tr = record_torch.record(m, x)
    assert all(tr.spikes[n].any() for n in lif)
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, "norse", mode=mode)
        assert rep["conforms"], format_report(rep)
    from refsim.graph import Graph
    off = Graph([g[n].replace(beta=float(g[n].beta) - 2e-4) if n == lif[0] else g[n] for n in g.order], name=g.name,
                metadata=g.metadata)  # a beta 2e-4 off
    assert not check(off, tr, "norse", mode="teacher-forced")["conforms"]
    leak = torch.nn.Sequential(torch.nn.Linear(20, 3), LIFBoxCell(LIFBoxParameters(v_leak=torch.tensor(0.2))))
    with pytest.raises(ModelFormatError, match="v_leak"):
        adapter.export(leak, (20,))


def test_snntorch_beta_of_more_than_one_dimension_is_refused():
    """snnTorch's beta is one value or one per channel; a 2-D beta (one per neuron of a map) has no
    refsim parameter and is refused naming the module, not flattened into per-channel values."""
    pytest.importorskip("snntorch")
    import snntorch as snn
    from refsim.errors import ModelFormatError
    nn = torch.nn
    for beta, ok in ((torch.full((4,), 0.5), True), (torch.full((8, 8), 0.5), False)):
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), snn.Leaky(beta=beta, init_hidden=True), nn.Flatten(),
                          nn.Linear(256, 2))
        if ok:
            g = adapter.export(m, (1, 8, 8))
            assert [g[n].model for n in g.neurons] == ["lif"]
        else:
            with pytest.raises(ModelFormatError, match="one value or one per channel"):
                adapter.export(m, (1, 8, 8))
