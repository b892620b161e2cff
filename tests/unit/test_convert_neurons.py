"""The neuron a converted network fires with (refsim.convert.with_neuron_model, ``convert --neuron``):
Li et al.'s multi-threshold neuron carries a normalised activation in quarters of the threshold per
step (Spiking-UNet eqs. 4-6), so on static input its rate error is well below the IF network's at
the same T; thresholds and other models are left as they are."""
import numpy as np
import pytest

from refsim import models
from refsim.convert import CONVERSION_NEURONS, ann_activations, normalize, with_neuron_model
from refsim.encoding import StaticEncoder
from refsim.errors import UnknownNameError, ValidationError
from refsim.graph import Graph, Input, Neuron, Output
from refsim.simulator import Recorder, Simulator


@pytest.fixture(scope="module")
def converted():
    g = models.hippocampus_unet(in_shape=(1, 16, 16), channels=(4, 8), seed=1)
    x = np.random.default_rng(0).random((4, 1, 16, 16))
    return g, x, normalize(g, x, method="connectionwise")


def test_multithreshold_swaps_every_if_layer_keeping_its_threshold(converted):
    _, _, snn = converted
    mt = with_neuron_model(snn, "multithreshold")
    assert [mt[n].model for n in mt.neurons] == ["multithreshold"] * len(snn.neurons)
    for n in snn.neurons:
        assert mt[n].levels == (2.0, 1.0, 0.5, 0.25)
        np.testing.assert_array_equal(np.asarray(mt[n].threshold), np.asarray(snn[n].threshold))
    assert mt.metadata["conversion"]["neuron"] == {"model": "multithreshold", "levels": [2.0, 1.0, 0.5, 0.25]}
    assert mt.metadata["conversion"]["method"] == snn.metadata["conversion"]["method"]
    lv = with_neuron_model(snn, "multithreshold", levels=(1.0, 0.5))
    assert lv[lv.neurons[0]].levels == (1.0, 0.5)
    assert with_neuron_model(snn, "if") is snn


def test_multithreshold_error_is_below_if_at_every_T(converted):
    """Static input: |output / T - ANN output| averaged over pixels. The multi-threshold network
    sends up to 3.75 thresholds a step in quarters (Li eq. 6), the IF network at most one, so the
    multi-threshold error is smaller at each T, and both fall as T grows (the rest stays in the
    membrane)."""
    g, x, snn = converted
    out = g.order[-1]
    ann = ann_activations(g, x, head="none")[out]
    err = {}
    for model in ("if", "multithreshold"):
        net = with_neuron_model(snn, model)
        for T in (5, 40):
            tr = Simulator(net, "paper", "event").run(x, T, StaticEncoder(), Recorder(counts=False))
            err[model, T] = float(np.abs(tr.final_output[out] / T - ann).mean())
    for T in (5, 40):
        assert err["multithreshold", T] < 0.5 * err["if", T], err
    assert err["multithreshold", 40] < err["multithreshold", 5] and err["if", 40] < err["if", 5]


def test_other_models_stay_and_bad_names_are_refused(converted):
    _, _, snn = converted
    g = Graph([Input("x", (3,)), Neuron("a", ["x"], "lif", 1.0, beta=0.9), Neuron("b", ["a"], "if", 1.0), Output("o", ["b"])])
    t = with_neuron_model(g, "ternary")
    assert (t["a"].model, t["b"].model) == ("lif", "ternary")
    with pytest.raises(UnknownNameError) as e:
        with_neuron_model(snn, "izhikevich")
    assert all(m in str(e.value) for m in CONVERSION_NEURONS)
    with pytest.raises(ValidationError, match="levels"):
        with_neuron_model(snn, "ternary", levels=(1.0,))
    with pytest.raises(ValidationError):
        with_neuron_model(snn, "multithreshold", levels=(0.5, 1.0))  # not descending


def test_cli_convert_with_multithreshold_neurons(converted, tmp_path, capsys):
    """``refsim convert --neuron multithreshold --neuron-levels ...`` on a refsim ANN file (no torch)."""
    from refsim import cli, save_model
    from refsim.io import load_model
    g, x, _ = converted
    save_model(g, tmp_path / "ann.safetensors")
    np.save(tmp_path / "calib.npy", x)
    out = tmp_path / "snn.safetensors"
    args = ["convert", str(tmp_path / "ann.safetensors"), "--calib", str(tmp_path / "calib.npy"), "--method",
            "connectionwise", "--encoding", "static", "--T", "20", "--no-progress", "-o", str(out)]
    assert cli.main(args + ["--neuron", "multithreshold", "--neuron-levels", "1,0.5,0.25", "--report",
                            str(tmp_path / "r.json")]) == 0
    snn = load_model(out)
    import json
    rep = json.loads((tmp_path / "r.json").read_text())
    # a layer firing by levels is judged on the value it sends per step (in threshold units), which
    # follows the ANN activation / lambda with slope near 1; its level-spike count does not
    assert all(v["slope_checked"] and 0.8 <= v["slope"] <= 1.25 and v["correlation"] > 0.9 and not v["below_bound"]
               and v["value_rate"] != v["rate"] for v in rep["layers"].values()), rep["layers"]
    text = capsys.readouterr().out
    assert "* multithreshold layers: the value sent per step" in text and "not judged" not in text
    assert {snn[n].model for n in snn.neurons} == {"multithreshold"}
    assert snn[snn.neurons[0]].levels == (1.0, 0.5, 0.25)
    capsys.readouterr()
    assert cli.main(args + ["--neuron", "ternary", "--neuron-levels", "1"]) == 2
    assert "levels" in capsys.readouterr().err
    for bad in ("0.5,1", "1,x"):  # ascending; not numbers: refused before any simulation
        assert cli.main(args + ["--neuron", "multithreshold", "--neuron-levels", bad]) == 2
        assert "levels" in capsys.readouterr().err


def test_measured_rate_of_a_multithreshold_layer_is_the_value_sent_per_threshold():
    """Per-channel threshold scales divide each channel's value; an IF layer keeps spikes per step;
    without values a multithreshold layer falls back to its level spikes, marked not comparable."""
    from refsim.convert.compare import measured_rate
    from refsim.graph import Conv2d, Graph, Input, Neuron, Output
    th = np.array([0.5, 2.0], np.float32)
    g = Graph([Input("in", (1, 2, 2)), Conv2d("c", ["in"], np.ones((2, 1, 1, 1), np.float32), None),
               Neuron("mt", ["c"], "multithreshold", th), Conv2d("d", ["mt"], np.ones((1, 2, 1, 1), np.float32), None),
               Neuron("n", ["d"], "if", 1.0), Output("o", ["n"])])
    values = np.arange(8, dtype=np.float64).reshape(1, 2, 2, 2)
    counts = np.full((1, 2, 2, 2), 3)
    r, by_value = measured_rate(g, "mt", counts, 4, values)
    assert by_value
    np.testing.assert_array_equal(r[0, 0], values[0, 0] / (4 * 0.5))
    np.testing.assert_array_equal(r[0, 1], values[0, 1] / (4 * 2.0))
    r, by_value = measured_rate(g, "mt", counts, 4)
    assert not by_value and np.all(r == 0.75)
    r, by_value = measured_rate(g, "n", counts[:, :1], 4, values[:, :1])
    assert by_value and np.all(r == 0.75)
