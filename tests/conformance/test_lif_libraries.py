"""The LIF model's profiles against the libraries' own LIF neurons (issue 11), one neuron per probe:
snnTorch ``Leaky`` (reset_delay=True: the subtraction after the next leak), Norse ``LIFBoxCell``
(reset to 0), SpikingJelly ``LIFNode`` (>=, soft reset) and Sinabs ``LIF`` (several spikes a step,
>=). Inputs are the fingerprint's tie probes (currents that land exactly on thresholds) and random
dyadic currents; decays and gains are powers of two where the library allows, so every membrane is
exact and a tie is a tie in both. Skipped when torch or the library is not installed."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refsim.conformance.fingerprint import probe_inputs  # noqa: E402
from refsim.neurons import lif  # noqa: E402
from refsim.neurons.probe import run_neuron  # noqa: E402


def _currents():
    """(18, N) currents: the tie probes and random multiples of 1/8. With a decay of 1/2 each step
    adds a bit to the membrane, so 18 steps keep every membrane exact in the libraries' float32
    (beyond 24 steps ``1 - 2^-25`` rounds to 1.0 in float32 and fires: a rounding, not a choice)."""
    rng = np.random.default_rng(11)
    dyadic = rng.integers(-8, 24, size=(18, 16)) / 8.0
    return np.concatenate([probe_inputs().repeat(2, axis=0)[:18], dyadic], axis=1)


def _refsim(profile, x, beta, threshold=1.0, gain=1.0):
    p = lif.LIFParams.from_profile(profile, threshold=threshold, beta=beta)
    return run_neuron(p, x * gain, "lif").signed


def _steps(cell_step, x):
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out.append(np.asarray(cell_step(torch.as_tensor(x[t], dtype=torch.float32))))
    return np.array(out).astype(np.int64)


def test_snntorch_leaky_delayed_subtraction():
    snn = pytest.importorskip("snntorch")
    x = _currents()
    cell = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract")  # reset_delay=True by default
    mem = cell.init_leaky()
    state = {"mem": mem}

    def step(i):
        s, state["mem"] = cell(i, state["mem"])
        return s
    theirs = _steps(step, x)
    assert theirs.sum() > 30
    assert np.array_equal(_refsim("snntorch", x, 0.5), theirs)
    # the immediate subtraction of the other profiles gives other trains: the choice is real
    assert not np.array_equal(_refsim("paper", x, 0.5), theirs)


def test_norse_lifbox_reset_to_zero():
    nt = pytest.importorskip("norse.torch")
    from norse.torch.functional.lif_box import LIFBoxParameters
    x = _currents()
    # dt * tau_mem_inv = 0.5: v <- v + 0.5 (i - v) = 0.5 v + 0.5 i  (beta 0.5, input gain 0.5)
    cell = nt.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(1.0)), dt=1e-3)
    state = {"s": None}

    def step(i):
        z, state["s"] = cell(i, state["s"])
        return z
    theirs = _steps(step, x)
    assert theirs.sum() > 30
    assert np.array_equal(_refsim("norse", x, 0.5, gain=0.5), theirs)


def test_spikingjelly_lifnode_soft_reset():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron
    x = _currents()
    cell = neuron.LIFNode(tau=2.0, v_threshold=1.0, v_reset=None)  # v + (i - v) / 2, fires on >=
    theirs = _steps(cell, x)
    assert theirs.sum() > 30
    assert np.array_equal(_refsim("spikingjelly", x, 0.5, gain=0.5), theirs)


def test_sinabs_lif_several_spikes():
    pytest.importorskip("sinabs")
    import sinabs.layers as sl
    x = _currents()
    cell = sl.LIF(tau_mem=torch.tensor(2.0), norm_input=False, spike_threshold=torch.tensor(1.0))
    beta = float(torch.exp(-1.0 / torch.tensor(2.0)))  # Sinabs' alpha in float32 (not dyadic)
    with torch.no_grad():
        theirs = cell(torch.as_tensor(x.T[:, :, None], dtype=torch.float32))[:, :, 0].numpy().T.astype(np.int64)
    assert theirs.sum() > 30 and theirs.max() > 1  # several spikes a step happen
    assert np.array_equal(_refsim("sinabs", x, beta), theirs)
