"""Threshold balancing (refsim.convert): the layer-by-layer maximum input current times the scale,
deterministic whatever the calibration order or batch size, recorded in the model's metadata."""
import numpy as np

from refsim.convert import threshold_balance
from refsim.encoding import PoissonEncoder
from refsim.graph import Conv2d, Graph, Input, Neuron, Output
from refsim.simulator import Recorder, Simulator


def net():
    rng = np.random.default_rng(0)
    return Graph([Input("x", (1, 8, 8)), Conv2d("c1", ["x"], (rng.standard_normal((4, 1, 3, 3)) * 0.7).astype(np.float32),
                                                padding=1),
                  Neuron("n1", ["c1"], "if", 1.0),
                  Conv2d("c2", ["n1"], (rng.standard_normal((3, 4, 3, 3)) * 0.5).astype(np.float32), padding=1),
                  Neuron("n2", ["c2"], "if", 1.0), Output("o", ["n2"])])


def test_thresholds_are_the_scaled_maximum_current_layer_by_layer():
    g = net()
    x = np.random.default_rng(1).random((5, 1, 8, 8))
    b = threshold_balance(g, x, T=15, scale=0.7, backend="reference", batch=5)
    th = b.metadata["conversion"]["thresholds"]
    # an independent recomputation: layer 1's max current with nothing balanced yet, then layer 2's
    # with layer 1 at its new threshold (the calibration samples in the same canonical order)
    from refsim.convert.balance import _canonical
    xs, _ = _canonical(x)
    tr = Simulator(g).run(xs, 15, PoissonEncoder(seed=0), Recorder(current_max=["n1"]))
    assert th["n1"] == float(np.float32(0.7 * float(tr.current_max["n1"])))
    g1 = Graph([g[n].replace(threshold=th["n1"]) if n == "n1" else g[n] for n in g.order])
    tr = Simulator(g1).run(xs, 15, PoissonEncoder(seed=0), Recorder(current_max=["n2"]))
    assert th["n2"] == float(np.float32(0.7 * float(tr.current_max["n2"])))
    assert b["n1"].threshold == th["n1"] and b.metadata["conversion"]["T"] == 15
    assert len(b.metadata["conversion"]["calibration_sha256"]) == 64


def test_same_calibration_data_same_thresholds_whatever_order_or_batch():
    g = net()
    x = np.random.default_rng(2).random((7, 1, 8, 8))
    a = threshold_balance(g, x, T=10, batch=7).metadata["conversion"]
    b = threshold_balance(g, x[::-1].copy(), T=10, batch=3).metadata["conversion"]
    assert a["thresholds"] == b["thresholds"] and a["calibration_sha256"] == b["calibration_sha256"]


def test_event_and_reference_backends_record_the_same_current_max():
    g = net()
    x = np.random.default_rng(3).random((2, 1, 8, 8))
    rec = Recorder(current_max=True)
    a = Simulator(g).run(x, 12, PoissonEncoder(seed=4), rec)
    b = Simulator(g, backend="event").run(x, 12, PoissonEncoder(seed=4), rec)
    assert a.current_max.keys() == {"n1", "n2"} and all(a.current_max[k] == b.current_max[k] for k in a.current_max)


def _skip_net():
    """A small U-Net whose skip and up-sampled parts reach the concatenation at very different scales."""
    from refsim.graph import AvgPool2d, Concat, ConvTranspose2d
    rng = np.random.default_rng(3)
    w = lambda *s, k=1.0: (np.abs(rng.standard_normal(s)) * k).astype(np.float32)
    return Graph([Input("x", (1, 8, 8)), Conv2d("e1", ["x"], w(4, 1, 3, 3, k=0.5), padding=1), Neuron("e1n", ["e1"]),
                  AvgPool2d("p", ["e1n"], 2), Conv2d("e2", ["p"], w(4, 4, 3, 3, k=2.0), padding=1), Neuron("e2n", ["e2"]),
                  ConvTranspose2d("u", ["e2n"], w(4, 4, 2, 2, k=3.0), stride=2), Neuron("un", ["u"]),
                  Concat("cat", ["e1n", "un"]), Conv2d("d", ["cat"], (rng.standard_normal((3, 8, 3, 3)) * 0.3).astype(np.float32),
                                                     padding=1),
                  Neuron("dn", ["d"]), Output("o", ["dn"])])


def test_normalised_rates_follow_activation_over_lambda():
    """Layer-wise and connection-wise normalisation (Li eqs. 7-8): thresholds 1, weights rescaled, and
    every layer's rate approaches its ANN activation / lambda as T grows (the error falls with T)."""
    from refsim.convert import ann_activations, normalize
    from refsim.encoding import StaticEncoder
    g = _skip_net()
    x = np.random.default_rng(4).random((4, 1, 8, 8))
    nm = normalize(g, x, "connectionwise", percentile=100)
    lam = nm.metadata["conversion"]["lambdas"]
    act = ann_activations(g, x)
    err = []
    for T in (25, 400):
        tr = Simulator(nm).run(x, T, StaticEncoder(), Recorder())
        err.append(np.mean([np.abs(tr.counts[n] / T - np.minimum(act[n] / lam[n], 1)).mean() for n in nm.neurons]))
    assert err[1] < err[0] / 4  # falls at least like c/T between T=25 and T=400 (16x longer)
    assert all(float(nm[n].threshold) == 1.0 for n in nm.neurons)


def test_connectionwise_beats_layerwise_after_a_concatenation():
    """Li Fig. 3: after a concatenation of parts at different scales, connection-wise normalisation
    gives an activation-vs-rate slope closer to 1 than layer-wise."""
    from refsim.convert import ann_activations, normalize
    from refsim.encoding import StaticEncoder
    g = _skip_net()
    x = np.random.default_rng(4).random((4, 1, 8, 8))
    act = ann_activations(g, x)["dn"].reshape(-1)
    slopes = {}
    for m in ("connectionwise", "layerwise"):
        nm = normalize(g, x, m, percentile=100)
        a = np.minimum(act / nm.metadata["conversion"]["lambdas"]["dn"], 1.0)
        r = (Simulator(nm).run(x, 300, StaticEncoder(), Recorder()).counts["dn"] / 300).reshape(-1)
        slopes[m] = float(np.dot(a, r) / np.dot(a, a))  # SNN rate against ANN activation / lambda (Li Fig. 3)
    assert abs(slopes["connectionwise"] - 1) < 0.1 and abs(slopes["connectionwise"] - 1) < abs(slopes["layerwise"] - 1), slopes


def test_normalisation_records_how_and_refuses_bad_options():
    import pytest
    from refsim.convert import normalize
    from refsim.errors import UnknownNameError, ValidationError
    g = _skip_net()
    x = np.random.default_rng(4).random((2, 1, 8, 8))
    meta = normalize(g, x).metadata["conversion"]
    assert meta["percentile"] == 99.9 and meta["percentile_of"] == "all" and len(meta["calibration_sha256"]) == 64
    with pytest.raises(UnknownNameError, match="connectionwise"):
        normalize(g, x, "channelwise")
    with pytest.raises(ValidationError):
        normalize(g, x, percentile=0)


def test_pooling_followed_by_a_neuron_keeps_its_input_scale():
    """Average pooling either way (issue 11): pooled spikes passed on as analog current, or fed to a
    neuron layer of their own; both normalise so that every rate approaches activation / lambda."""
    from refsim.convert import ann_activations, normalize
    from refsim.encoding import StaticEncoder
    from refsim.graph import AvgPool2d
    rng = np.random.default_rng(6)
    w = lambda *s: (np.abs(rng.standard_normal(s)) * 0.7).astype(np.float32)
    g = Graph([Input("x", (1, 8, 8)), Conv2d("c1", ["x"], w(3, 1, 3, 3), padding=1), Neuron("n1", ["c1"]),
               AvgPool2d("p", ["n1"], 2), Neuron("np", ["p"]),                 # a pool followed by a neuron
               Conv2d("c2", ["np"], w(2, 3, 3, 3), padding=1), Neuron("n2", ["c2"]),
               AvgPool2d("p2", ["n2"], 2), Conv2d("c3", ["p2"], w(2, 2, 1, 1)),  # a pool passed on as current
               Neuron("n3", ["c3"]), Output("o", ["n3"])])
    x = np.random.default_rng(7).random((3, 1, 8, 8))
    nm = normalize(g, x, "layerwise", percentile=100)
    lam = nm.metadata["conversion"]["lambdas"]
    assert lam["np"] == lam["n1"]
    act = ann_activations(g, x)
    tr = Simulator(nm).run(x, 400, StaticEncoder(), Recorder())
    for n in nm.neurons:
        assert np.abs(tr.counts[n] / 400 - np.minimum(act[n] / lam[n], 1)).max() < 0.02, n
