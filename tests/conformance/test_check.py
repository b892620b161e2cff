"""refsim check: conformance, an injected bug found and explained, float32 rounding ties allowed."""
import numpy as np
import pytest

from refsim import cli, save_model
from refsim.conformance import load_traces
from refsim.conformance.check import check
from refsim.exactness import granularity as _granularity
from refsim.encoding import PoissonEncoder
from refsim.graph import Conv2d, Graph, Input, Linear, Neuron, Output
from refsim.simulator import Recorder, Simulator, Traces

REC = Recorder(spikes=True, inputs=True)


def dyadic_net(choices2=None):
    """Dyadic weights and thresholds: sums are exact, so membranes hit the threshold exactly (ties)."""
    rng = np.random.default_rng(0)
    w1 = (rng.integers(-2, 5, size=(4, 1, 3, 3)) * 0.25).astype(np.float32)
    w2 = (rng.integers(-2, 5, size=(4, 4, 3, 3)) * 0.125).astype(np.float32)
    w3 = (rng.integers(-2, 5, size=(2, 4, 1, 1)) * 0.25).astype(np.float32)
    return Graph([Input("in", (1, 8, 8)), Conv2d("c1", ["in"], w1, None, padding=1), Neuron("if1", ["c1"], "if", 1.0),
                  Conv2d("c2", ["if1"], w2, None, padding=1), Neuron("if2", ["c2"], "if", 1.0, choices=choices2),
                  Conv2d("c3", ["if2"], w3, None), Neuron("if3", ["c3"], "if", 0.5), Output("out", ["if3"])])


def record(g, profile="paper", T=30):
    x = np.random.default_rng(1).random((2, 1, 8, 8))
    return Simulator(g, profile).run(x, T, PoissonEncoder(seed=2), REC)


@pytest.mark.parametrize("profile", ["paper", "spikingjelly", "sinabs", "norse", "rathi2020"])
def test_refsim_traces_conform_to_themselves(profile):
    g = dyadic_net()
    rep = check(g, record(g, profile), profile)
    assert rep["conforms"], rep
    assert all(r["divergences"] == 0 and r["ties"] == 0 for r in rep["layers"])


def test_injected_comparison_bug_found_in_one_layer_and_explained():
    buggy = dyadic_net({"comparison": ">="})          # "their" implementation: >= in layer 2 only
    tr = record(buggy)
    assert tr.spikes["if2"].sum() > 0
    rep = check(dyadic_net(), tr, "paper")           # checked against the equations
    layers = {r["layer"]: r for r in rep["layers"]}
    assert not rep["conforms"]
    assert layers["if2"]["divergences"] > 0 and layers["if2"]["ties"] == 0
    assert layers["if1"]["divergences"] == 0 and layers["if3"]["divergences"] == 0  # teacher forcing: no cascade
    f = layers["if2"]["first"]
    assert f["membrane"] == f["threshold"] == 1.0 and f["recorded_spikes"] == 1 and f["refsim_spikes"] == 0
    assert "comparison=>=" in layers["if2"]["explained_by"]


@pytest.mark.parametrize("field,value,profile", [("reset", "zero", "paper"), ("order", "fire-then-integrate", "paper"),
                                                 ("spikes_per_step", "multi", "spikingjelly")])
def test_other_injected_choices_explained(field, value, profile):
    tr = record(dyadic_net({field: value}), profile)
    rep = check(dyadic_net(), tr, profile)
    if2 = {r["layer"]: r for r in rep["layers"]}["if2"]
    assert if2["divergences"] > 0 and f"{field}={value}" in if2["explained_by"]


def test_float32_rounding_flip_is_a_tie_not_a_divergence():
    """Input float32(1/3) accumulated in float32 fires one step later than in float64 (docs/semantics.md 1)."""
    g = Graph([Input("in", (1,)), Linear("l", ["in"], np.ones((1, 1), np.float32)), Neuron("n", ["l"]), Output("o", ["n"])])
    x32 = np.float32(1 / 3)
    T = 40
    v, spikes = np.float32(0), []
    for _ in range(T):
        v = np.float32(v + x32)
        s = v > np.float32(1)
        spikes.append(int(s))
        v = np.float32(v - np.float32(1)) if s else v
    tr = Traces(T=T, batch=1, profile="paper", backend="float32-loop", encoder={"type": "replay"},
                layers={"n": {"model": "if", "shape": (1,), "neurons": 1}})
    tr.inputs["in"] = np.full((T, 1, 1), float(x32))
    tr.spikes["n"] = np.array(spikes, dtype=np.int8).reshape(T, 1, 1)
    ref = Simulator(g).run(np.array([[float(x32)]]), T, __import__("refsim").ReplayEncoder(tr.inputs["in"]), REC)
    assert not np.array_equal(ref.spikes["n"], tr.spikes["n"])  # the two really differ
    rep = check(g, tr, "paper")
    n = rep["layers"][0]
    assert rep["conforms"] and n["ties"] >= 1 and n["divergences"] == 0


def test_granularity():
    assert _granularity([0.75, 0.5]) == 0.25
    assert _granularity([3.0, 6.0]) == 1.0
    assert _granularity([0.0]) == np.inf
    assert _granularity([float(np.float32(0.1))]) == 2.0 ** -27


def test_cli_check(tmp_path, capsys):
    g = dyadic_net()
    save_model(g, tmp_path / "m.safetensors")
    record(dyadic_net({"comparison": ">="})).save(tmp_path / "bug.npz")
    record(g).save(tmp_path / "ok.npz")
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(tmp_path / "ok.npz")]) == 0
    assert "CONFORMS" in capsys.readouterr().out
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(tmp_path / "bug.npz"), "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "if2" in out and "DIVERGES" in out and "explained by: comparison=>=" in out
    assert (tmp_path / "r.json").exists()
    tr = load_traces(tmp_path / "ok.npz")
    del tr.inputs["in"]
    tr.save(tmp_path / "noinput.npz")
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(tmp_path / "noinput.npz")]) == 2
    assert "inputs/in" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["paper", "sinabs"])
def test_free_running_conforms_on_own_traces(profile):
    g = dyadic_net()
    rep = check(g, record(g, profile), profile, mode="free-running")
    assert rep["conforms"] and rep["mode"] == "free-running"
    assert all(r["compared"] == 30 * 2 * np.prod(g.shapes[r["layer"]]) for r in rep["layers"])  # every step compared


def test_free_running_stops_at_the_first_divergence_and_explains_it():
    tr = record(dyadic_net({"comparison": ">="}))
    forced = {r["layer"]: r for r in check(dyadic_net(), tr, "paper")["layers"]}
    rep = check(dyadic_net(), tr, "paper", mode="free-running")
    layers = {r["layer"]: r for r in rep["layers"]}
    assert not rep["conforms"]
    first = layers["if2"]["first"]
    assert first["step"] == forced["if2"]["first"]["step"]  # nothing differed before the bug's first effect
    assert layers["if1"]["divergences"] == 0
    # the pass stops after that step: downstream layers compared no later steps
    assert layers["if3"]["compared"] == (first["step"] + 1) * 2 * np.prod(dyadic_net().shapes["if3"])
    assert "comparison=>=" in layers["if2"]["explained_by"]


def test_cli_check_free_running(tmp_path, capsys):
    g = dyadic_net()
    save_model(g, tmp_path / "m.safetensors")
    record(dyadic_net({"comparison": ">="})).save(tmp_path / "bug.npz")
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(tmp_path / "bug.npz"), "--free-running"]) == 1
    assert "free-running" in capsys.readouterr().out


def third_net(model, **kw):
    """Weights that put sums within float32 rounding of the threshold 1: three float32(1/3) make
    1.00000003 in float64 but 1.0 in float32 (a ``>`` flip); 0.5 + (0.5 - 2^-25) is 0.99999997 in
    float64 but rounds to 1.0 in float32 (a ``>=`` flip). A float32 peer flips decisions."""
    vals = np.array([1 / 3, 0.5, 0.5 - 2.0 ** -25], np.float32)
    rng = np.random.default_rng(7)
    w1 = rng.choice(vals, size=(2, 1, 3, 3)).astype(np.float32)
    w2 = rng.choice(vals, size=(2, 2, 1, 1)).astype(np.float32)
    return Graph([Input("in", (1, 6, 6)), Conv2d("c1", ["in"], w1, None, padding=1), Neuron("n1", ["c1"], model, 1.0, **kw),
                  Conv2d("c2", ["n1"], w2, None), Neuron("n2", ["c2"], model, 1.0, **kw), Output("out", ["n2"])])


@pytest.mark.parametrize("mode", ["teacher-forced", "free-running"])
@pytest.mark.parametrize("model,profile", [("if", "paper"), ("ternary", "paper"), ("if", "spikingjelly")])
def test_float32_peer_rounding_ties_classified_for_if_and_ternary(model, profile, mode):
    """refsim's own float32 mode is a float32 peer: it accumulates in float32 in another order. Its
    flips against the float64 equations must all be rounding ties."""
    g = third_net(model)
    x = np.random.default_rng(0).random((3, 1, 6, 6))
    enc = PoissonEncoder(seed=1, ternary=(model == "ternary"))
    peer = Simulator(g, profile, "event", dtype="float32").run(x, 30, enc, REC)
    ref = Simulator(g, profile, "reference").run(x, 30, enc, REC)
    assert any(not np.array_equal(peer.spikes[k], ref.spikes[k]) for k in ref.spikes)  # there are flips to classify
    rep = check(g, peer, profile, mode=mode)
    assert rep["conforms"], rep
    assert sum(r["ties"] for r in rep["layers"]) > 0
    assert all(r["compared"] == 30 * 3 * np.prod(g.shapes[r["layer"]]) for r in rep["layers"])  # the whole run


@pytest.mark.parametrize("mode", ["teacher-forced", "free-running"])
def test_float32_peer_rounding_ties_classified_for_multithreshold(mode):
    """A float32 multi-threshold peer (currents and membranes rounded to float32 each step, levels
    1, 1/2, 1/4 of a threshold 1/3-based input): its flips are ties, not divergences."""
    from refsim.neurons import get_model
    from refsim.neurons._common import MembraneState
    g = third_net("multithreshold", levels=(1.0, 0.5, 0.25))
    x = np.random.default_rng(2).random((2, 1, 6, 6))
    enc = PoissonEncoder(seed=3)
    T = 25
    ref = Simulator(g, "paper", "reference").run(x, T, enc, REC)
    inputs = ref.inputs["in"]
    m = get_model("multithreshold")
    params = {n: g[n].make_params(__import__("refsim").get_profile("paper")) for n in ("n1", "n2")}
    v = {n: np.zeros((2,) + g.shapes[n], np.float32) for n in ("n1", "n2")}
    spikes = {n: np.zeros((T, 2) + g.shapes[n], np.uint8) for n in ("n1", "n2")}
    for t in range(T):
        h = inputs[t].astype(np.float32)
        for conv, n in (("c1", "n1"), ("c2", "n2")):
            node = g[conv]
            cur = np.zeros((2,) + g.shapes[conv], np.float32)  # float32 accumulation, one term at a time
            xp = np.pad(h, ((0, 0), (0, 0), (node.pads[0], node.pads[1]), (node.pads[2], node.pads[3])))
            kh, kw = node.weight.shape[2:]
            for ci in range(node.weight.shape[1]):
                for i in range(kh):
                    for j in range(kw):
                        cur += node.weight[None, :, ci, i, j, None, None] * xp[:, ci:ci + 1, i:i + cur.shape[2], j:j + cur.shape[3]]
            vv = v[n].astype(np.float64)
            s, st = m.step(MembraneState(vv, vv), cur.astype(np.float64), params[n])
            v[n] = st.v.astype(np.float32)
            spikes[n][t] = s
            h = m.emitted(s, params[n]).astype(np.float32)
    tr = Traces(T=T, batch=2, profile="paper", backend="float32-mt", encoder={"type": "replay"},
                layers={n: {"model": "multithreshold", "shape": g.shapes[n], "neurons": int(np.prod(g.shapes[n]))}
                        for n in ("n1", "n2")})
    tr.inputs["in"] = inputs
    tr.spikes.update(spikes)
    assert any(not np.array_equal(spikes[n], ref.spikes[n]) for n in spikes)
    rep = check(g, tr, "paper", mode=mode)
    assert rep["conforms"], rep
    assert sum(r["ties"] for r in rep["layers"]) > 0


def _float32_chain_traces(T=12):
    """Two IF neurons in a chain (weights float32(1/3), input 1 every step), run in float32 the way a
    torch library does: three float32(1/3) make exactly 1.0 in float32 (no spike under '>'), but
    1.0000000298 in float64 (a spike): a rounding tie in the first neuron at step 2."""
    w = np.float32(1 / 3)
    v1 = v2 = np.float32(0)
    s1s, s2s = [], []
    for _ in range(T):
        v1 = np.float32(v1 + w * np.float32(1))
        s1 = v1 > 1
        v1 = np.float32(v1 - 1) if s1 else v1
        v2 = np.float32(v2 + w * np.float32(s1))
        s2 = v2 > 1
        v2 = np.float32(v2 - 1) if s2 else v2
        s1s.append(int(s1))
        s2s.append(int(s2))
    g = Graph([Input("in", (1,)), Linear("l1", ["in"], np.full((1, 1), w)), Neuron("n1", ["l1"]),
               Linear("l2", ["n1"], np.full((1, 1), w)), Neuron("n2", ["l2"]), Output("o", ["n2"])])
    tr = Traces(T=T, batch=1, profile="paper", backend="float32-loop", encoder={"type": "replay"},
                layers={n: {"model": "if", "shape": (1,), "neurons": 1} for n in ("n1", "n2")})
    tr.inputs["in"] = np.ones((T, 1, 1))
    tr.spikes["n1"] = np.array(s1s, np.int8).reshape(T, 1, 1)
    tr.spikes["n2"] = np.array(s2s, np.int8).reshape(T, 1, 1)
    return g, tr


@pytest.mark.parametrize("mode", ["teacher-forced", "free-running"])
def test_a_rounding_tie_never_makes_a_later_layer_diverge(mode):
    """Issue 9's minimal case: free-running used to drive n2 with refsim's own (tied) spike of n1 and
    report 'DIVERGES ... explained by order=fire-then-integrate'."""
    g, tr = _float32_chain_traces()
    own = Simulator(g).run(np.ones((1, 1)), tr.T, __import__("refsim").ReplayEncoder(tr.inputs["in"]), REC)
    assert not np.array_equal(own.spikes["n1"], tr.spikes["n1"])  # the float32 run really differs
    rep = check(g, tr, "paper", mode=mode)
    layers = {r["layer"]: r for r in rep["layers"]}
    assert rep["conforms"], rep
    assert layers["n1"]["ties"] >= 1 and layers["n2"]["divergences"] == 0
    assert layers["n2"]["compared"] == tr.T  # free-running went on over the whole run


def test_free_running_finds_a_flipped_spike_at_its_place_after_ties():
    """After rounding ties are re-synchronised, a real flip later in the run is still found at its
    exact step, layer and neuron, in both modes."""
    g, tr = _float32_chain_traces(T=30)
    t_flip = 25
    tr.spikes["n2"][t_flip, 0, 0] = 1 - tr.spikes["n2"][t_flip, 0, 0]
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, "paper", mode=mode)
        n2 = {r["layer"]: r for r in rep["layers"]}["n2"]
        assert not rep["conforms"] and n2["first"]["step"] == t_flip and n2["first"]["neuron"] == [0, 0], mode


def test_hard_reset_restarts_the_rounding_bound():
    """With reset to zero, a spike leaves both sides' membranes at exactly 0: the bound restarts
    instead of growing over the whole run (issue 9)."""
    from refsim.conformance.check import _advance
    from refsim.neurons.if_ import IFParams
    from refsim.neurons._common import MembraneState
    from refsim.semantics import NeuronChoices
    p = IFParams(1.0, NeuronChoices(reset="zero"))
    v = MembraneState(np.array([0.9, 0.9]), np.array([0.9, 0.9]))
    b = np.array([1e-6, 1e-6])
    x = np.array([0.3, 0.05])  # neuron 0 fires, neuron 1 does not
    s, st, dec, carry = _advance("if", p, v, b, x, np.abs(x), 2.0 ** -60, 2, None)
    assert list(s) == [1, 0] and st.v[0] == 0.0
    assert carry[0] == 0.0 and carry[1] > 1e-6 and dec[0] > 1e-6


@pytest.mark.parametrize("weights,k,T,found", [("float", 14, 64, True), ("float", 16, 1000, True),
                                               ("dyadic", 10, 64, True), ("float", 18, 64, False)])
def test_detection_floor_as_documented(weights, k, T, found):
    """docs/check.md (validation/check_detection_floor.py): a threshold change of 2^-k against a float32
    peer is reported as a divergence down to the measured floor, and a smaller one stays within the
    rounding bound (no false divergences from float32 rounding)."""
    from validation.check_detection_floor import detected
    assert detected(weights, "threshold", k, T) is found


@pytest.mark.parametrize("what,k", [("threshold", 14), ("weights", 15), ("beta", 14)])
def test_leaky_detection_floor_as_documented(what, k):
    """docs/check.md's leaky rows at T=64: a change of 2^-k of a lif layer's threshold, weights or
    beta is found against a float32 peer, and 2^-(k+1) stays within the leaky rounding bound."""
    from validation.check_detection_floor import detected
    assert detected("float", what, k, 64, model="lif")
    assert not detected("float", what, k + 1, 64, model="lif")


@pytest.mark.parametrize("case", ["short", "channels_last", "nan", "fractional_spikes", "other_model", "T0"])
def test_bad_traces_are_input_errors_before_any_work(case, tmp_path, capsys):
    """Traces that do not fit the model exit 2 with the entry named, not 3 or a false verdict (issue 10)."""
    g = dyadic_net()
    save_model(g, tmp_path / "m.safetensors")
    tr = record(g, T=6)
    if case == "short":
        tr.spikes["if2"] = tr.spikes["if2"][:4]
    elif case == "channels_last":
        tr.inputs["in"] = np.ascontiguousarray(tr.inputs["in"].transpose(0, 1, 3, 4, 2))
    elif case == "nan":
        tr.inputs["in"][2, 0, 0, 1, 1] = np.nan
    elif case == "fractional_spikes":  # float spikes are accepted when integral (issue 23), not 0.25
        tr.spikes["if1"] = tr.spikes["if1"].astype(np.float64)
        tr.spikes["if1"][1, 0, 0, 2, 2] = 0.25
    elif case == "other_model":
        tr.spikes["layer9"] = tr.spikes.pop("if3")
    elif case == "T0":
        tr.T = 0
    tr.save(tmp_path / "t.npz")
    assert cli.main(["check", str(tmp_path / "m.safetensors"), str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert {"short": "spikes/if2", "channels_last": "inputs/in", "nan": "inputs/in", "fractional_spikes": "spikes/if1",
            "other_model": "another model", "T0": "'T'"}[case] in err


def test_static_input_traces_check_against_themselves():
    """Direct (static) coding: the input is recorded every step, so refsim's own traces conform (issue 10)."""
    from refsim.encoding import StaticEncoder
    g = dyadic_net()
    x = np.random.default_rng(1).random((2, 1, 8, 8))
    tr = Simulator(g, "paper").run(x, 12, StaticEncoder(), REC)
    assert np.all(tr.inputs["in"] == x[None])
    assert check(g, tr, "paper")["conforms"]


def _unet_traces(seed=0, T=6, profile="paper"):
    from refsim import models
    g = models.hippocampus_unet(in_shape=(1, 16, 12), channels=(4, 8), seed=seed)
    x = np.random.default_rng(seed).random((3, 1, 16, 12))
    return g, Simulator(g, profile, "event").run(x, T, PoissonEncoder(seed=seed), REC)


@pytest.mark.parametrize("seed", [0, 1])
def test_check_event_values_equal_the_dense_arithmetic(seed):
    """check computes layer currents and |terms| sums with the event kernels where the sums are
    provably exact: bit for bit the dense reference's values, node by node and step by step."""
    from refsim.conformance import check as C
    g, tr = _unet_traces(seed)
    params = C._params(g, C.get_profile("paper"))
    fast = C._Values(g, params, C._spiking_inputs(g, tr))
    dense = C._Values(g)
    kinds = {g[n].TYPE for n in fast.fast}
    assert {"Conv2d", "ConvTranspose2d", "AvgPool2d"} <= kinds  # the event path is really taken
    for t in range(tr.T):
        for v in (fast, dense):
            v.start()
        for name in g.order:
            node = g[name]
            if isinstance(node, Input):
                val = np.asarray(tr.inputs[name][t], dtype=np.float64)
            elif isinstance(node, Neuron):
                val = tr.spikes[name][t].astype(np.float64)
            else:
                fast.compute(name)
                dense.compute(name)
                if not isinstance(node, Output):
                    np.testing.assert_array_equal(fast.vals[name], dense.vals[name], err_msg=f"{name} t={t}")
                    np.testing.assert_array_equal(fast.absv[name], dense.absv[name], err_msg=f"{name} t={t}")
                continue
            fast.put(name, val)
            dense.put(name, val)


def test_check_falls_back_to_dense_beyond_the_exactness_bound():
    """A step whose input exceeds the magnitude the exactness proof assumed runs the dense arithmetic:
    integers of up to 40 bits, where the event kernels' order of summation rounds differently from
    the dense one (asserted, so the case can tell the two paths apart), give the dense bits."""
    from refsim.conformance import check as C
    g, tr = _unet_traces(0, T=2)
    params = C._params(g, C.get_profile("paper"))
    v = C._Values(g, params, True)
    v.start()
    bound, event_forward = v.fast["enc1a"]
    rng = np.random.default_rng(3)
    shape = tr.inputs["input"][0].shape
    x = (rng.random(shape) < 0.5) * rng.integers(1, 2 ** 40, size=shape).astype(np.float64)
    x.flat[0] = 2.0 * bound
    dense = g["enc1a"].forward([x])
    assert x.max() >= bound and np.any(event_forward(x, np.abs(x))[0] != dense)
    v.put("input", x)
    v.compute("enc1a")
    np.testing.assert_array_equal(v.vals["enc1a"], dense)


def test_float_spikes_accepted_when_integral():
    """torch records spikes as float 0/1: accepted, with the same verdict as integer spikes."""
    g = dyadic_net()
    tr = record(g)
    rep_int = check(g, tr, "paper")
    for n in tr.spikes:
        tr.spikes[n] = tr.spikes[n].astype(np.float32)
    rep_float = check(g, tr, "paper")
    assert rep_float["conforms"] and rep_float == rep_int


@pytest.mark.parametrize("dtype,value,expect", [(np.float32, 0.5, "0.5"), (np.float64, np.nan, "nan"),
                                                (np.int64, 2 ** 32 + 1, str(2 ** 32 + 1)), (np.int16, -1, "-1")])
def test_spikes_out_of_range_or_fractional_refused(dtype, value, expect):
    """Values that would wrap or truncate when cast are refused, naming the entry, step and value."""
    from refsim.errors import ModelFormatError
    g = dyadic_net()
    tr = record(g)
    a = tr.spikes["if2"].astype(dtype)
    a[3, 1, 2, 4, 5] = value
    tr.spikes["if2"] = a
    with pytest.raises(ModelFormatError) as e:
        check(g, tr, "paper")
    msg = str(e.value)
    assert "spikes/if2" in msg and expect in msg and "(3, 1, 2, 4, 5)" in msg


def test_large_fan_in_float32_peer_needs_the_fan_in_term():
    """A float32 peer written here (not refsim's float32 mode): it adds one neuron's 256 input terms
    in float32 in its own order, a large weight first and then 255 weights of 3/4 of the running
    sum's ulp, so every addition rounds the same way and the error grows with the fan-in (about 64
    ulps). Its spike at a threshold just above the exact sum is a rounding tie, which only a bound
    with the fan-in term (gamma_n = n u / (1 - n u), docs/check.md) can tell from a divergence."""
    n = 256
    small = np.float32(0.75 * 2.0 ** -21)  # 3/4 of ulp(4) in float32
    w = np.full((1, n), small, np.float32)
    w[0, 0] = 4.0
    exact = 4.0 + (n - 1) * float(small)  # the float64 sum, exact
    theta = np.float32(4.0 + 200 * 2.0 ** -21)  # just above it, a float32 value
    assert exact < theta
    g = Graph([Input("in", (n,)), Linear("l", ["in"], w), Neuron("n", ["l"], "if", float(theta)), Output("out", ["n"])])
    x = np.ones((1, n))
    tr = Simulator(g, "paper", "reference").run(x, 1, PoissonEncoder(seed=0), REC)
    assert tr.inputs["in"].min() == 1.0 and tr.spikes["n"].sum() == 0  # the equations: no spike
    acc = np.float32(0.0)
    for k in range(n):  # the peer's order and precision
        acc = np.float32(acc + w[0, k])
    assert acc > theta  # the peer fires
    tr.spikes["n"][0, 0, 0] = 1
    tr.dtype = "float32"
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, "paper", mode=mode)
        assert rep["conforms"], rep
        assert sum(r["ties"] for r in rep["layers"]) == 1
    # check takes every peer to be float32 at worst, but the bound stays finite: with the threshold
    # 2^-14 above the exact sum (more than gamma_256 * sum|terms|, about 6e-5) the spike diverges
    far = np.float32(4.0 + 400 * 2.0 ** -21)
    g2 = Graph([Input("in", (n,)), Linear("l", ["in"], w), Neuron("n", ["l"], "if", float(far)), Output("out", ["n"])])
    rep = check(g2, tr, "paper")
    assert not rep["conforms"] and rep["layers"][0]["divergences"] == 1, rep


def test_ternary_float32_peer_tie_at_minus_theta():
    """The same float32 peer as above with the weights negated, on a ternary layer: the exact
    membrane sits just above -theta (no spike), the peer's just below (a -1 spike). The tie is
    at the negative boundary, which the distance must measure from -theta too."""
    n = 256
    small = np.float32(0.75 * 2.0 ** -21)
    w = np.full((1, n), -small, np.float32)
    w[0, 0] = -4.0
    theta = np.float32(4.0 + 200 * 2.0 ** -21)
    g = Graph([Input("in", (n,)), Linear("l", ["in"], w), Neuron("n", ["l"], "ternary", float(theta)),
               Output("out", ["n"])])
    tr = Simulator(g, "paper", "reference").run(np.ones((1, n)), 1, PoissonEncoder(seed=0), REC)
    assert tr.spikes["n"].sum() == 0
    acc = np.float32(0.0)
    for k in range(n):
        acc = np.float32(acc + w[0, k])
    assert acc < -theta  # the peer sends -1
    tr.spikes["n"][0, 0, 0] = -1
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, "paper", mode=mode)
        assert rep["conforms"] and rep["layers"][0]["ties"] == 1, rep
    tr.spikes["n"][0, 0, 0] = 1  # a +1 spike there is no rounding: 8 away from +theta
    assert not check(g, tr, "paper")["conforms"]


def test_spike_valued_inputs_are_recognised():
    """check takes the event path only when every recorded input is -1, 0 or 1 (the grid its
    exactness proof assumes); any other value sends it to the dense path."""
    from refsim.conformance.check import _spiking_inputs
    g = dyadic_net()
    tr = record(g, T=3)
    assert set(np.unique(tr.inputs["in"])) <= {0.0, 1.0} and _spiking_inputs(g, tr)
    tr.inputs["in"] = -tr.inputs["in"]  # ternary-style -1 / 0
    assert _spiking_inputs(g, tr)
    tr.inputs["in"][1, 0, 0, 0, 0] = 0.5
    assert not _spiking_inputs(g, tr)
