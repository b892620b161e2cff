"""Analysis: every number on hand-computable networks, exact synaptic operations against an
independent all-ones dense count, energy conventions (Li et al. Table 5), metrics against
scikit-image and hand-computed cases, the report's fields."""
import json

import numpy as np
import pytest

from refsim.analysis import curves, energy, metrics
from refsim.convert import compare as conversion
from refsim.analysis.report import analyze, summarize
from refsim.synops import dense_macs, fanout
from refsim.encoding import PoissonEncoder, StaticEncoder
from refsim.graph import AvgPool2d, Conv2d, ConvTranspose2d, Flatten, Graph, Input, Linear, Neuron, Output, SumPool2d
from refsim.simulator import Recorder, Simulator


def tiny():
    """Input 1x2x2 -> conv 1x1 (weight 1) -> IF (threshold 1) -> conv 3x3 padding 1 (1 -> 2) -> Output."""
    return Graph([Input("x", (1, 2, 2)), Conv2d("c1", ["x"], np.ones((1, 1, 1, 1), np.float32)),
                  Neuron("n", ["c1"], "if", 1.0), Conv2d("c2", ["n"], np.ones((2, 1, 3, 3), np.float32), padding=1),
                  Output("o", ["c2"])])


@pytest.mark.parametrize("backend", ["reference", "event"])
def test_hand_computed_rates_synops_and_energy(backend):
    g = tiny()
    x = np.full((1, 1, 2, 2), 0.5)  # paper IF on 0.5 a step: spikes at steps 2, 4, 6 of 8 (00101010)
    rep, tr = analyze(g, x, 8, "paper", backend, StaticEncoder(), ann=False)
    n = rep["layers"]["n"]
    assert n["spikes"] == 12 and n["rate"] == 3 / 8 and n["spikes_per_step"] == [0, 0, 4, 0, 4, 0, 4, 0]
    assert n["silent_fraction"] == 0.0 and n["saturated_fraction"] == 0.0
    syn = rep["synaptic_layers"]
    # c1: static analog input, computed once: 4 synapses (1x1 kernel) -> 4 MACs, no AC
    assert syn["c1"]["macs"] == 4 and syn["c1"]["acs"] == 0 and syn["c1"]["dense_macs_per_sample"] == 4
    # c2: each spike reaches every output pixel of the 2x2 map (3x3 kernel, padding 1) in 2 channels: 8 synapses
    assert syn["c2"]["acs"] == 12 * 8 and syn["c2"]["macs"] == 0 and syn["c2"]["dense_macs_per_sample"] == 32
    assert syn["c2"]["input_density"] == 12 / (8 * 4)
    e = rep["energy"]
    assert e["snn_energy_j"] == pytest.approx((4 * 4.6 + 96 * 0.9) * 1e-12)
    assert e["ann_macs"] == 36 and e["ann_energy_j"] == pytest.approx(36 * 4.6e-12)


def _ones_count(node, x):
    """Independent count: the node with all-ones weights applied to the event map (1 where the input is nonzero)."""
    ev = (x != 0).astype(np.float64)
    t = node.TYPE
    if t in ("Conv2d", "ConvTranspose2d", "Linear"):
        return node.replace(weight=np.ones_like(node.weight), bias=None).forward([ev]).sum()
    return SumPool2d("s", ["i"], node.kernel_size, node.stride, node.padding).forward([ev]).sum()  # window counts


def odd_net(model):
    rng = np.random.default_rng(5)
    lv = {"levels": (1.0, 0.5)} if model == "multithreshold" else {}
    w = lambda *s: (rng.standard_normal(s) * 0.8).astype(np.float32)
    return Graph([
        Input("x", (2, 9, 11)),
        Conv2d("c1", ["x"], w(4, 1, 3, 3), stride=2, padding=(1, 2), dilation=2, groups=2),
        Neuron("n1", ["c1"], model, 0.5, **lv),
        ConvTranspose2d("t1", ["n1"], w(4, 2, 3, 3), stride=2, padding=1, output_padding=1, groups=2),
        Neuron("n2", ["t1"], model, 0.5, **lv),
        AvgPool2d("p1", ["n2"], 3, 2, 1),
        Conv2d("c2", ["p1"], w(3, 4, 2, 3), padding=(0, 1, 2, 0)),
        Neuron("n3", ["c2"], model, 0.5, **lv),
        SumPool2d("p2", ["n3"], 2),
        Flatten("f", ["p2"]),
        Linear("l", ["f"], w(5, 3 * 2 * 3)),
        Output("o", ["l"])])


@pytest.mark.parametrize("model", ["if", "ternary", "multithreshold"])
@pytest.mark.parametrize("backend", ["reference", "event"])
def test_synops_equal_an_all_ones_dense_count(model, backend):
    """Strided, padded, dilated, grouped and transposed convolutions, both poolings and a linear layer:
    refsim's ACs equal a dense count of the event maps through all-ones weights; ternary and
    multi-threshold spikes are accumulates, not MACs."""
    g = odd_net(model)
    x = np.random.default_rng(1).random((2, 2, 9, 11))
    tr = Simulator(g, "paper", backend).run(x, 12, PoissonEncoder(seed=3, ternary=model == "ternary"),
                                             Recorder(spikes=True, inputs=True, synops=True))
    from refsim.neurons import get_model
    params = {n: g[n].make_params("paper") for n in g.neurons}
    emitted = {n: np.stack([get_model(g[n].model).emitted(tr.spikes[n][t], params[n]) for t in range(12)])
               for n in g.neurons}
    emitted["x"] = tr.inputs["x"]
    emitted["p1"] = np.stack([g["p1"].forward([emitted["n2"][t]]) for t in range(12)])
    emitted["p2"] = np.stack([g["p2"].forward([emitted["n3"][t]]) for t in range(12)])
    emitted["f"] = emitted["p2"].reshape(12, 2, -1)
    src = {"c1": "x", "t1": "n1", "p1": "n2", "c2": "p1", "p2": "n3", "l": "f"}
    assert sum(int(tr.step_counts[n].sum()) for n in g.neurons) > 0
    for name, s in src.items():
        want = sum(_ones_count(g[name], emitted[s][t]) for t in range(12))
        assert tr.acs[name].sum() == want, name
        assert tr.macs[name].sum() == 0, name
    for name in src:  # the dense count of all synapses equals the all-ones op on a full map
        node = g[name]
        full = np.ones((1,) + g.shapes[node.inputs[0]])
        assert dense_macs(g)[name] == _ones_count(node, full) == fanout(node, g.shapes[node.inputs[0]], g.shapes[name]).sum()


def test_li_table5_arithmetic():
    """Li et al. Table 5: U-Net 6.55e10 MACs at 4.6 pJ -> 0.301 J; Spiking-UNet 2.92e8 FLOPs (eq. 13: spikes
    plus the first layer's MACs under direct coding) -> 6.98e-4 J. The table gives only the sum; the split
    that reproduces the energy (first layer 1.176e8 MACs, 1.744e8 spikes) is solved from the two figures."""
    fp32 = energy.PRESETS["fp32"]
    assert fp32.joules(6.55e10, 0) == pytest.approx(0.301, abs=5e-4)
    macs = (6.98e-4 / 1e-12 - 0.9 * 2.92e8) / (4.6 - 0.9)
    spikes = 2.92e8 - macs
    assert macs == pytest.approx(1.176e8, rel=1e-3)
    assert fp32.joules(macs, spikes) == pytest.approx(6.98e-4, rel=1e-9)


def test_li_convention_counts_raw_spikes():
    g = tiny()
    sim = Simulator(g, "paper")
    tr = sim.run(np.full((1, 1, 2, 2), 0.5), 8, StaticEncoder(), Recorder(synops=True))
    rep = summarize(g, sim, tr, None, convention="li-table5", ann=False)
    assert rep["energy"]["acs"] == 12 and rep["energy"]["macs"] == 4


def test_presets():
    assert (energy.PRESETS["fp16"].e_mac_pj, energy.PRESETS["fp16"].e_ac_pj) == (1.5, 0.4)
    assert (energy.PRESETS["int8"].e_mac_pj, energy.PRESETS["int8"].e_ac_pj) == (0.23, 0.03)
    from refsim.errors import UnknownNameError, ValidationError
    with pytest.raises(UnknownNameError, match="fp32"):
        energy.get_energy_model("fp64")
    with pytest.raises(ValidationError):
        energy.EnergyModel("x", -1.0, 0.1)


def test_dice_hand_cases_and_empty_policy():
    a = np.array([[1, 1, 0], [0, 0, 0]])
    b = np.array([[1, 0, 0], [0, 1, 0]])
    assert metrics.dice(a, b) == 0.5 and metrics.jaccard(a, b) == 1 / 3 and metrics.f1(a, b) == 0.5
    assert metrics.pixel_accuracy(a, b) == 4 / 6
    z = np.zeros((2, 3))
    assert metrics.dice(z, z) == 1.0 and metrics.dice(a, z) == 0.0 and metrics.dice(z, a) == 0.0
    assert np.isnan(metrics.dice(z, z, empty="nan")) and np.isnan(metrics.dice(a, z, empty="nan"))
    assert metrics.dice(z, a, empty="nan") == 0.0
    sl = metrics.slice_dice(np.stack([a, z]), np.stack([b, z]), empty="nan")
    assert sl[0] == 0.5 and np.isnan(sl[1]) and metrics.mean(sl) == 0.5
    assert metrics.mean_iou(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])) == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_metrics_against_scikit_image_on_real_mri():
    """On a shipped MSD volume (refsim/data), so it runs wherever refsim is installed."""
    skm = pytest.importorskip("skimage.metrics")
    from refsim.data import DEMO_VOLUMES
    from refsim.io.nifti import load_volume
    img = load_volume(DEMO_VOLUMES[0][0])
    lab = load_volume(DEMO_VOLUMES[0][1]) > 0
    a = img[img.shape[0] // 2]
    noisy = a + np.random.default_rng(0).normal(0, 0.05 * a.max(), a.shape)
    R = float(a.max() - a.min())
    assert metrics.ssim(noisy, a, data_range=R) == pytest.approx(
        skm.structural_similarity(noisy, a, data_range=R, gaussian_weights=True, use_sample_covariance=False), abs=1e-12)
    assert metrics.psnr(noisy, a, R) == pytest.approx(skm.peak_signal_noise_ratio(a, noisy, data_range=R), abs=1e-10)
    pred = np.roll(lab, 1, axis=1)
    inter = np.logical_and(pred, lab).sum()
    assert metrics.dice(pred, lab) == pytest.approx(2 * inter / (pred.sum() + lab.sum()))
    # Jaccard as scikit-image's contingency table gives it: |P and L| / |P or L|
    ct = skm.contingency_table(lab.astype(int).ravel(), pred.astype(int).ravel()).toarray()
    assert metrics.jaccard(pred, lab) == pytest.approx(ct[1, 1] / (ct[1, 1] + ct[0, 1] + ct[1, 0]))


def test_curves_from_one_run():
    g = tiny()
    tr = Simulator(g).run(np.full((1, 1, 2, 2), 0.5), 8, StaticEncoder(), Recorder(output=True))
    lab = np.ones((1, 2, 2), bool)
    ts, d = curves.dice_vs_time(tr.output["o"][:, :, :1], lab)
    assert list(ts) == list(range(1, 9)) and d[0] == 0.0 and d[-1] == 1.0  # no spike yet at step 1
    cs, dc = curves.dice_vs_cutoff(tr.final_output["o"][:, :1], 8, lab)
    assert 0.5 in list(cs) and dc[list(cs).index(0.5)] == d[-1]


def test_conversion_quality_rates_follow_the_rate_model():
    g = Graph([Input("x", (1, 6, 6)), Conv2d("c", ["x"], np.ones((1, 1, 1, 1), np.float32)), Neuron("n", ["c"], "if", 1.0),
               Output("o", ["n"])])
    x = np.random.default_rng(0).random((2, 1, 6, 6))
    sim = Simulator(g)
    tr = sim.run(x, 400, StaticEncoder(), Recorder())
    q = conversion.conversion_quality(g, sim.params, x, tr)
    assert q["layers"]["n"]["correlation"] > 0.999 and abs(q["layers"]["n"]["slope"] - 1) < 0.01
    assert q["first_below_bound"] is None


def test_report_json_has_every_field(tmp_path):
    from refsim.analysis.report import write_report
    g = odd_net("if")
    x = np.random.default_rng(1).random((2, 2, 9, 11))
    rep, tr = analyze(g, x, 10, encoder=PoissonEncoder(seed=0), label=None)
    jpath, hpath = write_report(rep, tr, tmp_path / "r")
    back = json.loads(open(jpath).read())
    for key in ("refsim_version", "definitions", "run", "layers", "synaptic_layers", "energy", "conversion"):
        assert key in back, key
    for name in g.neurons:
        for f in ("rate", "spikes", "silent_fraction", "saturated_fraction", "spikes_per_step", "channel_rates"):
            assert f in back["layers"][name], (name, f)
    for q in ("rate", "acs", "macs", "energy_j", "dice", "input_density"):
        assert {"unit", "definition"} <= set(back["definitions"][q])
    assert open(hpath).read().count("data:image/png;base64,") >= 5


@pytest.mark.parametrize("model", ["ternary", "multithreshold"])
def test_report_splits_ternary_signs_and_multithreshold_levels(model):
    g = odd_net(model)
    x = np.random.default_rng(1).random((2, 2, 9, 11))
    rep, _ = analyze(g, x, 10, encoder=PoissonEncoder(seed=0, ternary=model == "ternary"), ann=False)
    for n in g.neurons:
        row = rep["layers"][n]
        if model == "ternary":
            assert row["rate_positive"] + row["rate_negative"] == pytest.approx(row["rate"])
        else:
            assert row["levels"] == [1.0, 0.5] and sum(row["rate_per_level"]) == pytest.approx(row["rate"])


def test_report_json_is_strict_json_with_null_for_undefined_values(tmp_path):
    """A silent layer's correlation is undefined: written as null (JSON has no NaN; jq and browsers
    refuse a file that holds one), and the definitions say what null means (issue 21)."""
    from refsim.analysis.report import write_report
    g = odd_net("if")
    x = np.zeros((2, 2, 9, 11))  # nothing ever fires
    rep, tr = analyze(g, x, 5, encoder=PoissonEncoder(seed=0), label=None)
    jpath, _ = write_report(rep, tr, tmp_path / "r")

    def refuse(c):
        raise ValueError(f"non-JSON constant {c}")
    back = json.loads(open(jpath).read(), parse_constant=refuse)
    assert "null" in back["definitions"]
    corr = [v.get("correlation") for v in back["conversion"]["layers"].values()]
    assert None in corr


@pytest.mark.parametrize("node,in_shape", [
    (Conv2d("c", ["i"], np.ones((3, 2, 2, 3), np.float32), padding=(0, 1, 2, 0)), (2, 5, 6)),
    (Conv2d("c", ["i"], np.ones((2, 2, 3, 3), np.float32), stride=2, padding=(1, 2), dilation=(1, 2)), (2, 7, 9)),
    (Conv2d("c", ["i"], np.ones((4, 1, 3, 2), np.float32), stride=(2, 1), padding=(2, 0, 1, 1), groups=2), (2, 6, 5)),
    (ConvTranspose2d("t", ["i"], np.ones((2, 3, 3, 3), np.float32), stride=2, padding=1, output_padding=1), (2, 4, 5)),
    (ConvTranspose2d("t", ["i"], np.ones((2, 2, 4, 3), np.float32), stride=(3, 2), padding=(2, 0), output_padding=(0, 1),
                     dilation=(1, 2)), (2, 3, 4)),
    (AvgPool2d("p", ["i"], 3, 2, 1), (2, 7, 6)),
    (SumPool2d("p", ["i"], (2, 3), (1, 2), (1, 0)), (1, 5, 7)),
])
def test_fanout_of_every_input_element_equals_an_all_ones_count(node, in_shape):
    """Each input element's synapses, one element at a time: the all-ones node applied to a map with
    that single event (asymmetric padding, stride, dilation, groups, output padding: the borders
    where a wrong pad or tap shows)."""
    g = Graph([Input("i", in_shape), node, Output("o", [node.name])])
    fo = fanout(node, in_shape, g.shapes[node.name])
    for c, y, x in np.ndindex(*in_shape):
        ev = np.zeros((1,) + in_shape)
        ev[0, c, y, x] = 1.0
        assert fo[c, y, x] == _ones_count(node, ev), (c, y, x)


def test_psnr_and_ssim_edges():
    """PSNR at MSE exactly 1 (finite: 20 log10 R) and of identical images (inf); SSIM on the smallest
    image its 11-tap window allows (11 x 11, scikit-image agrees) and refused below it."""
    from refsim.errors import ValidationError
    ref = np.arange(121, dtype=np.float64).reshape(11, 11)
    assert metrics.psnr(ref + 1.0, ref) == pytest.approx(20 * np.log10(120.0))
    assert metrics.psnr(ref, ref) == float("inf")
    img = ref + np.random.default_rng(0).normal(0, 3, ref.shape)
    skm = pytest.importorskip("skimage.metrics")
    assert metrics.ssim(img, ref, data_range=120.0) == pytest.approx(skm.structural_similarity(
        img, ref, data_range=120.0, gaussian_weights=True, use_sample_covariance=False), abs=1e-12)
    with pytest.raises(ValidationError, match="11x11"):
        metrics.ssim(img[:10, :10], ref[:10, :10])


@pytest.mark.parametrize("backend", ["reference", "event"])
def test_synops_through_upsample_and_add_of_spikes_are_accumulates(backend):
    """Up-sampled spikes, and the sum of two spike maps (values 0, 1, 2), are still spike-derived:
    the convolutions after them cost ACs (one per event and synapse, the all-ones count of the
    nonzero map), no MACs."""
    from refsim.graph import Add, Upsample
    rng = np.random.default_rng(2)
    w = lambda *s: (rng.standard_normal(s) * 0.8).astype(np.float32)
    g = Graph([Input("x", (1, 6, 6)), Conv2d("c1", ["x"], w(2, 1, 3, 3), padding=1), Neuron("n1", ["c1"], "if", 0.5),
               Conv2d("c2", ["x"], w(2, 1, 3, 3), padding=1), Neuron("n2", ["c2"], "if", 0.5),
               Add("a", ["n1", "n2"]), Conv2d("c3", ["a"], w(2, 2, 3, 3), padding=(0, 2, 1, 0)),
               Neuron("n3", ["c3"], "if", 0.5), Upsample("u", ["n3"], 2),
               Conv2d("c4", ["u"], w(1, 2, 3, 3), stride=2, padding=1), Output("o", ["c4"])])
    T = 10
    tr = Simulator(g, "paper", backend).run(rng.random((2, 1, 6, 6)), T, PoissonEncoder(seed=1),
                                            Recorder(spikes=True, synops=True))
    n1, n2, n3 = (tr.spikes[k].astype(np.float64) for k in ("n1", "n2", "n3"))
    added = n1 + n2
    assert added.max() == 2.0 and n3.any()  # both spikes at once somewhere; the last layer fires
    up = np.stack([g["u"].forward([n3[t]]) for t in range(T)])
    for name, src in (("c3", added), ("c4", up)):
        assert tr.macs[name].sum() == 0, name
        assert tr.acs[name].sum() == sum(_ones_count(g[name], src[t]) for t in range(T)), name
        assert tr.events[name].sum() == int((src != 0).sum()), name
