"""Threshold balancing (refsim.convert): the layer-by-layer maximum input current times the scale,
in Rathi et al.'s order (checked against a NumPy loop written from their code, in both neuron update
orders), deterministic whatever the calibration order or batch size, recorded in the metadata."""
import numpy as np
import pytest

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


def _conv(x, w, pad):
    """A plain loop convolution (cross-correlation, stride 1), independent of refsim's ops."""
    B, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xp = np.zeros((B, C, H + 2 * pad, W + 2 * pad))
    xp[:, :, pad:pad + H, pad:pad + W] = x
    out = np.zeros((B, O, H + 2 * pad - kh + 1, W + 2 * pad - kw + 1))
    for ki in range(kh):
        for kj in range(kw):
            patch = xp[:, :, ki:ki + out.shape[2], kj:kj + out.shape[3]]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, ki, kj].astype(np.float64))
    return out


def rathi_balance_numpy(weights, spikes, scale=0.7, fire_first=False, order="rathi"):
    """Threshold balancing written from Rathi et al.'s code (nitin-rathi/hybrid-snn-conversion,
    snn.py, find_threshold): for each layer in turn, run the IF network over the whole spike train
    with the thresholds found so far for the layers before it, and take the largest input current
    the layer receives. In the code the earlier layers keep their *unscaled* maxima while the later
    ones are calibrated (threshold_update(scaling_factor=1.0)) and every threshold is multiplied by
    the scale once at the end (order="rathi"); order="scaled-as-it-goes" scales each at once.
    Neurons: subtract reset, v > threshold; integrate then fire, or fire then integrate (Rathi's
    own neuron, fire_first=True)."""
    maxima, now = [], []
    for target in range(len(weights)):
        v = [None] * target
        best = -np.inf
        for t in range(spikes.shape[0]):
            x = spikes[t]
            for i, w in enumerate(weights):
                cur = _conv(x, w, 1)
                if i == target:
                    best = max(best, cur.max())
                    break
                if v[i] is None:
                    v[i] = np.zeros_like(cur)
                if not fire_first:
                    v[i] = v[i] + cur
                s = (v[i] > now[i]).astype(np.float64)
                v[i] = v[i] - s * now[i]
                if fire_first:
                    v[i] = v[i] + cur
                x = s
        maxima.append(float(np.float32(best)) if order == "rathi" else best)
        now.append(maxima[-1] if order == "rathi" else float(np.float32(scale * best)))
    return [float(np.float32(scale * m)) for m in maxima] if order == "rathi" else now


@pytest.mark.parametrize("profile,fire_first", [("paper", False), ("rathi2020", True)])
@pytest.mark.parametrize("order", ["rathi", "scaled-as-it-goes"])
def test_threshold_balancing_equals_a_numpy_loop_written_from_rathis_code(profile, fire_first, order):
    from refsim.convert.balance import _canonical
    from refsim.encoding import ReplayEncoder
    g = net()
    x = np.random.default_rng(1).random((3, 1, 8, 8))
    xs, _ = _canonical(x)  # threshold_balance encodes the samples in this canonical order
    T = 15
    spikes = (np.random.default_rng(7).random((T,) + xs.shape) < xs).astype(np.float64)
    b = threshold_balance(g, x, T=T, scale=0.7, profile=profile, backend="reference", batch=3,
                          encoder=ReplayEncoder(spikes), order=order)
    th = b.metadata["conversion"]["thresholds"]
    want = rathi_balance_numpy([g["c1"].weight, g["c2"].weight], spikes, 0.7, fire_first, order)
    assert [th["n1"], th["n2"]] == want  # exact: every sum is exact in float64 on both sides
    assert [b["n1"].threshold, b["n2"].threshold] == want and b.metadata["conversion"]["order"] == order


def test_the_two_balancing_orders_give_different_thresholds():
    """Layer 1 is the same; layer 2 is calibrated on other upstream spikes (layer 1 at its unscaled
    maximum in Rathi's order, already scaled down in the other), so its threshold differs."""
    g = net()
    x = np.random.default_rng(1).random((4, 1, 8, 8))
    a = threshold_balance(g, x, T=30, backend="reference", batch=4, order="rathi").metadata["conversion"]["thresholds"]
    b = threshold_balance(g, x, T=30, backend="reference", batch=4,
                          order="scaled-as-it-goes").metadata["conversion"]["thresholds"]
    assert a["n1"] == b["n1"] and a["n2"] != b["n2"]


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


def test_conversion_report_of_a_classifier_gives_the_class_agreement():
    """Issue 23: for a classifier's output the report gives the fraction of samples whose SNN class is
    the ANN's (checked against a count from the run and a NumPy ANN forward), not only a slope."""
    from refsim.config import RunConfig
    from refsim.convert import convert_ann
    from refsim.convert.report import format_report
    from refsim.graph import Input, Linear
    rng = np.random.default_rng(3)
    ann = Graph([Input("x", (6,)), Linear("l1", ["x"], rng.standard_normal((8, 6)).astype(np.float32)),
                 Neuron("n1", ["l1"]), Linear("l2", ["n1"], rng.standard_normal((3, 8)).astype(np.float32)),
                 Output("o", ["l2"])], name="clf")
    x = rng.random((20, 6))
    snn, rep = convert_ann(ann, x, "balance", RunConfig.resolve(ann, backend="reference"), T=50, batch=20)
    out = rep["output"]["o"]
    assert out["classifier"]
    ann_cls = np.argmax(np.maximum(x @ ann["l1"].weight.astype(np.float64).T, 0) @ ann["l2"].weight.astype(np.float64).T,
                        axis=1)
    final = Simulator(snn, "paper", "reference").run(x, 50, PoissonEncoder(seed=0), Recorder()).final_output["o"]
    assert out["argmax_agreement"] == float(np.mean(np.argmax(final, axis=1) == ann_cls))
    assert "a classifier" in format_report(rep) and "agrees with the ANN" in format_report(rep)


def test_balancing_arguments_at_their_edges():
    """T = 1 is the shortest calibration (one step still gives a current maximum); T = 0, a scale of
    0 and an unknown order are refused by name."""
    from refsim.errors import UnknownNameError, ValidationError
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (1, 6, 6)), Conv2d("c", ["x"], rng.standard_normal((2, 1, 3, 3)).astype(np.float32), padding=1),
               Neuron("n", ["c"], "if", 1.0), Output("o", ["n"])])
    x = rng.random((2, 1, 6, 6))
    out = threshold_balance(g, x, T=1, backend="reference", batch=2)
    assert out.metadata["conversion"]["T"] == 1
    for kw, what in ((dict(T=0), "threshold_balance\\(T\\)"), (dict(T=1, scale=0.0), "scale")):
        with pytest.raises(ValidationError, match=what):
            threshold_balance(g, x, backend="reference", **kw)
    with pytest.raises(UnknownNameError, match="order"):
        threshold_balance(g, x, T=1, backend="reference", order="sideways")


@pytest.mark.parametrize("percentile,of", [(100.0, "all"), (99.0, "all"), (90.0, "nonzero")])
def test_layerwise_normalisation_equals_a_numpy_oracle(percentile, of):
    """Layer-wise normalisation (Diehl et al.; Li eq. 7) recomputed here in NumPy, without torch and
    without refsim's ANN forward: W' = W * lambda_in / lambda_out, b' = b / lambda_out, lambda the
    percentile of each ReLU layer's activations (of all, or of the nonzero ones). The net has a
    dead layer (lambda falls back to 1) and a Flatten after a (C, H, W) layer (each input element
    keeps its layer's lambda)."""
    from refsim.convert import normalize
    from refsim.graph import Flatten, Linear, ops
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(3).astype(np.float32) * 0.1
    w2 = -np.abs(rng.standard_normal((2, 3, 3, 3))).astype(np.float32)  # non-negative inputs: always silent
    lw = rng.standard_normal((4, 2 * 6 * 6)).astype(np.float32)
    lb = np.abs(rng.standard_normal(4)).astype(np.float32) + 0.1
    g = Graph([Input("x", (1, 6, 6)), Conv2d("c1", ["x"], w1, b1, padding=1), Neuron("n1", ["c1"], "if", 1.0),
               Conv2d("c2", ["n1"], w2, None, padding=1), Neuron("n2", ["c2"], "if", 1.0), Flatten("f", ["n2"]),
               Linear("l", ["f"], lw, lb), Neuron("n3", ["l"], "if", 1.0), Output("o", ["n3"])])
    x = rng.random((5, 1, 6, 6))
    a1 = np.maximum(ops.conv2d(x, w1, b1, (1, 1), (1, 1, 1, 1)), 0)
    a2 = np.maximum(ops.conv2d(a1, w2, None, (1, 1), (1, 1, 1, 1)), 0)
    a3 = np.maximum(a2.reshape(5, -1) @ lw.astype(np.float64).T + lb, 0)
    assert not a2.any() and a1.any() and a3.any()

    def lam(a):
        a = a.ravel()
        a = a[a > 0] if of == "nonzero" else a
        v = np.percentile(a, percentile) if a.size else 0.0
        return v if v > 0 else 1.0
    l1, l2, l3 = lam(a1), lam(a2), lam(a3)
    assert l2 == 1.0
    out = normalize(g, x, "layerwise", percentile=percentile, percentile_of=of)
    np.testing.assert_allclose(out["c1"].weight, w1 / l1, rtol=1e-6)
    np.testing.assert_allclose(out["c1"].bias, b1 / l1, rtol=1e-6)
    np.testing.assert_allclose(out["c2"].weight, w2 * l1 / l2, rtol=1e-6)
    np.testing.assert_allclose(out["l"].weight, lw * l2 / l3, rtol=1e-6)
    np.testing.assert_allclose(out["l"].bias, lb / l3, rtol=1e-6)


def test_balancing_accepts_small_currents_and_refuses_a_silent_layer():
    """A layer whose largest current is below 1 is balanced (threshold 0.7 x that current); one whose
    current never rises above 0 is refused by name."""
    from refsim.errors import ValidationError
    w = np.full((1, 1, 1, 1), 0.5, np.float32)
    g = Graph([Input("x", (1, 2, 2)), Conv2d("c", ["x"], w), Neuron("n", ["c"], "if", 1.0), Output("o", ["n"])])
    out = threshold_balance(g, np.ones((1, 1, 2, 2)), T=2, backend="reference", batch=1)
    assert float(np.ravel(out["n"].threshold)[0]) == pytest.approx(0.7 * 0.5)
    for wd in (-w, 0 * w):  # currents below 0, and exactly 0
        dead = Graph([Input("x", (1, 2, 2)), Conv2d("c", ["x"], wd), Neuron("n", ["c"], "if", 1.0), Output("o", ["n"])])
        with pytest.raises(ValidationError, match="positive input current"):
            threshold_balance(dead, np.ones((1, 1, 2, 2)), T=2, backend="reference", batch=1)


def test_ann_reference_sigmoid_head_and_small_percentiles():
    from refsim.convert import normalize
    from refsim.convert.normalize import ann_activations
    g = net()
    x = np.random.default_rng(4).random((3, 1, 8, 8))
    plain = ann_activations(g, x, head="none")["o"]
    np.testing.assert_allclose(ann_activations(g, x, head="sigmoid")["o"], 1.0 / (1.0 + np.exp(-plain)), rtol=1e-12)
    assert normalize(g, x, "layerwise", percentile=0.5).metadata["conversion"]["percentile"] == 0.5


def test_connectionwise_offbyone_leaves_the_last_channel_of_each_part_unscaled():
    """``compat_offbyone`` (the Spiking-UNet authors' code): after a concatenation, the last input
    channel of each part keeps its ANN weight (scaled by neither lambda), every other channel is
    rescaled as Li eq. 8 says; without it no channel keeps its weight."""
    from refsim import models
    from refsim.convert import normalize
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(3, 4), seed=2)
    x = np.random.default_rng(1).random((3, 1, 8, 8))
    cat = next(n for n in g.order if g[n].TYPE == "Concat")
    conv = g.consumers[cat][0]
    ends = np.cumsum([g.shapes[i][0] for i in g[cat].inputs]) - 1
    w0 = g[conv].weight
    off = normalize(g, x, "connectionwise", compat_offbyone=True)[conv].weight
    plain = normalize(g, x, "connectionwise")[conv].weight
    np.testing.assert_array_equal(off[:, ends], w0[:, ends])
    rest = np.setdiff1d(np.arange(w0.shape[1]), ends)
    np.testing.assert_array_equal(off[:, rest], plain[:, rest])
    assert not np.any(plain[:, ends] == w0[:, ends])


def test_rescale_equals_balancing_at_that_scale(tmp_path):
    """In Rathi's order the scale is a final multiply, so one calibration serves every scale (Yue Fig.
    6A): rescaling the balanced graph gives threshold_balance's thresholds at that scale bit for bit,
    also after a save and load; a graph balanced scaled-as-it-goes is refused."""
    from refsim import load_model, save_model
    from refsim.convert import rescale
    from refsim.errors import ValidationError
    x = np.random.default_rng(4).random((6, 1, 8, 8))
    g = net()
    one = threshold_balance(g, x, T=30, scale=1.0)
    save_model(one, tmp_path / "one.safetensors")
    one = load_model(tmp_path / "one.safetensors")
    for s in (0.7, 0.45, 1.3):
        want = threshold_balance(g, x, T=30, scale=s)
        got = rescale(one, s)
        assert {n: got[n].threshold for n in got.neurons} == {n: want[n].threshold for n in want.neurons}
        assert got.metadata["conversion"]["thresholds"] == want.metadata["conversion"]["thresholds"]
        assert rescale(want, 1.0).metadata["conversion"]["thresholds"] == one.metadata["conversion"]["thresholds"]
    assert len({one[n].threshold for n in one.neurons} | {rescale(one, 0.7)[n].threshold for n in one.neurons}) == 4
    with pytest.raises(ValidationError, match="Rathi"):
        rescale(threshold_balance(g, x, T=30, scale=0.7, order="scaled-as-it-goes"), 0.5)
    with pytest.raises(ValidationError, match="scal"):
        rescale(one, 0.0)
