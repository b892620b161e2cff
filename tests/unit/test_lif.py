"""The leaky models (refsim.neurons.lif): hand-computed trains, the reset-timing choice, CubaLIF's
current-first order, validation, the model file, both backends, and check's refusal."""
import numpy as np
import pytest

from refsim import load_model, save_model
from refsim.encoding import PoissonEncoder
from refsim.errors import ModelFormatError, ValidationError
from refsim.graph import Conv2d, Graph, Input, Neuron, Output
from refsim.neurons import lif
from refsim.neurons.probe import run_neuron
from refsim.simulator import Recorder, Simulator
from refsim.traces import compare_traces


def test_lif_by_hand():
    # beta 1/2, threshold 1, input 0.75 each step, '>' and subtraction (paper):
    # v: 0.75, 1.125 -> spike -> 0.125, 0.8125, 1.15625 -> spike -> 0.15625
    p = lif.LIFParams.from_profile("paper", threshold=1.0, beta=0.5)
    r = run_neuron(p, np.full(5, 0.75), "lif")
    assert r.signed[:, 0].tolist() == [0, 1, 0, 1, 0]
    assert r.v[:, 0].tolist() == [0.75, 0.125, 0.8125, 0.15625, 0.828125]
    # a bias adds every step: 0.5 + 0.25 = 0.75 per step, the same train
    pb = lif.LIFParams.from_profile("paper", threshold=1.0, beta=0.5, bias=0.25)
    assert np.array_equal(run_neuron(pb, np.full(5, 0.5), "lif").signed, r.signed)


def test_next_step_reset_is_snntorchs_delayed_subtraction():
    # snnTorch Leaky(reset_delay=True): mem[t] = beta mem[t-1] + x[t] - theta s[t-1]
    p = lif.LIFParams.from_profile("snntorch", threshold=1.0, beta=0.5)
    assert p.choices.reset_timing == "next-step"
    x = np.array([1.5, 0.0, 1.0, 1.0, 0.25])
    mem, s_prev, want, mems = 0.0, 0, [], []
    for xt in x:
        mem = 0.5 * mem + xt - 1.0 * s_prev
        s_prev = int(mem > 1.0)
        want.append(s_prev)
        mems.append(mem)
    r = run_neuron(p, x, "lif")
    assert r.signed[:, 0].tolist() == want and np.allclose(r.v_pre[:, 0], mems)
    # the immediate subtraction decays the reset: another train
    q = lif.LIFParams.from_profile("snntorch", threshold=1.0, beta=0.5, reset_timing="with-spike")
    assert run_neuron(q, x, "lif").signed[:, 0].tolist() != want


def test_cubalif_updates_the_current_first():
    p = lif.CubaLIFParams.from_profile("paper", threshold=1.0, beta=0.5, alpha=0.5, gain=1.0)
    x = np.array([1.5, 0.0, 0.0, 0.0])  # with the previous step's current it could not fire at step 0
    i, v, want = 0.0, 0.0, []
    for xt in x:
        i = 0.5 * i + xt
        v = 0.5 * v + i
        s = int(v > 1.0)
        v -= s
        want.append(s)
    assert run_neuron(p, x, "cubalif").signed[:, 0].tolist() == want == [1, 0, 0, 0]


def test_validation_and_the_model_file(tmp_path):
    with pytest.raises(ValidationError, match="beta"):
        lif.LIFParams(beta=1.5)
    with pytest.raises(ModelFormatError, match="beta"):
        Neuron("n", ["x"], "if", beta=0.5)                 # no leak on an IF neuron
    with pytest.raises(ModelFormatError, match="beta"):
        Neuron("n", ["x"], "lif", beta=-0.1)
    g = Graph([Input("x", (2, 4, 4)), Conv2d("c", ["x"], np.ones((3, 2, 3, 3), np.float32) * 0.2, padding=1),
               Neuron("l", ["c"], "lif", 1.0, beta=np.array([0.5, 0.75, 0.875], np.float32), bias=0.0625),
               Conv2d("c2", ["l"], np.ones((2, 3, 1, 1), np.float32) * 0.5),
               Neuron("k", ["c2"], "cubalif", 0.5, beta=0.5, alpha=0.25, gain=2.0), Output("o", ["k"])])
    save_model(g, tmp_path / "m.safetensors")
    h = load_model(tmp_path / "m.safetensors")
    assert np.array_equal(h["l"].beta, [0.5, 0.75, 0.875]) and h["l"].bias == 0.0625
    assert h["k"].alpha == 0.25 and h["k"].gain == 2.0
    x = np.random.default_rng(0).random((2, 2, 4, 4))
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(h, backend="reference").run(x, 30, PoissonEncoder(seed=1), rec)
    sim = Simulator(h, backend="event")
    assert "leaky" in sim.plan(PoissonEncoder()).get("l").reason
    b = sim.run(x, 30, PoissonEncoder(seed=1), rec)
    assert compare_traces(a, b) == [] and sum(int(v.sum()) for v in a.step_counts.values()) > 0


@pytest.mark.parametrize("cls,field", [(lif.LIFParams, "beta"), (lif.CubaLIFParams, "alpha")])
def test_decay_bounds_are_inclusive(cls, field):
    """beta (alpha) = 0 (no memory) and 1 (no leak) are valid; a hair outside [0, 1] is not."""
    for ok in (0.0, 1.0, [0.0, 0.5, 1.0]):
        p = cls(**{field: ok})
        np.testing.assert_array_equal(np.ravel(getattr(p, field)), np.ravel(np.asarray(ok, np.float32)))
    for bad in (-1e-6, 1.000001, np.nan, [0.5, -0.5]):
        with pytest.raises(ValidationError, match=field):
            cls(**{field: bad})
    # beta = 0: the membrane keeps nothing of the previous step
    r = run_neuron(lif.LIFParams(threshold=10.0, beta=0.0), np.array([1.0, 2.0, 3.0]), "lif")
    np.testing.assert_array_equal(r.v[:, 0], [1.0, 2.0, 3.0])
