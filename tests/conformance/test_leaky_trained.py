"""Trained leaky networks from snnTorch and SpikingJelly, recorded in torch and checked by refsim
(issue 23; validation/leaky/trained.py, --quick: three epochs on the UCI digits). Skipped without
torch, snnTorch or SpikingJelly, or without ../shared/data beside the checkout."""
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("spikingjelly")

from validation.leaky import trained  # noqa: E402

if not os.path.exists(trained.DATA):
    pytest.skip("../shared/data/classification/digits.npz not beside the checkout", allow_module_level=True)


@pytest.fixture(scope="module")
def results():
    return trained.run(quick=True, echo=lambda *a: None)


@pytest.mark.parametrize("library,profile,reset", [("snntorch", "snntorch", "subtract"),
                                                    ("spikingjelly", "spikingjelly-hard-reset", "zero")])
def test_trained_leaky_network_conforms_and_faults_are_found(results, library, profile, reset):
    r = results[library]
    assert r["profile"] == profile
    assert set(r["layers"].values()) == {"lif"} and all(0 < b < 1 for b in r["betas"].values())
    assert all(n > 0 for n in r["spikes"].values()), r["spikes"]
    for mode in ("teacher-forced", "free-running"):
        assert r[mode]["conforms"] and r[mode]["divergences"] == 0, r[mode]
        assert r[mode]["decisions"] == results["T"] * results["checked_samples"] * (48 + 10)
        flip = r["flipped_spike"][mode]
        assert not flip["conforms"] and flip["found_at"] == flip["planted_at"]
    assert not r["wrong_reset"]["conforms"]
    assert all(expl == [f"reset={reset}"] for expl in r["wrong_reset"]["explained_by"].values())
    assert not r["wrong_beta"]["conforms"]
    for layer, expl in r["wrong_beta"]["explained_by"].items():  # the leak fitted: the trained beta, not the model's
        (label,) = expl
        lo, hi = (float(v) for v in label[len("beta in ["):label.index("]")].split(", "))
        assert lo <= r["betas"][layer] <= hi and not lo <= r["wrong_beta"]["checked_with"][layer] <= hi, label


def test_the_exported_leaky_layers_run_as_the_library_does():
    """refsim's own run of the exported network gives the torch recording's spikes bit for bit on
    a network where every value is exact (dyadic weights and inputs, beta 1/2)."""
    import torch
    from refsim.conformance.record_torch import record
    from refsim.encoding import ReplayEncoder
    from refsim.io.torch import export
    from refsim.simulator import Recorder, Simulator
    rng = np.random.default_rng(0)
    for lib in ("snntorch", "spikingjelly"):
        net = trained.build(lib)
        with torch.no_grad():
            for m in net:
                if isinstance(m, torch.nn.Linear):
                    m.weight.copy_(torch.from_numpy(rng.integers(-8, 9, m.weight.shape) / 16.0))
                    m.bias.zero_()
        if lib == "snntorch":
            for m in net[1::2]:
                m.beta.fill_(0.5)
        x = np.repeat((rng.integers(0, 17, (4, 64)) / 16.0)[None], 12, axis=0).astype(np.float32)
        g = export(net, (64,))
        tr = record(net, x)
        ours = Simulator(g, tr.profile).run(x[0], 12, ReplayEncoder(x.astype(np.float64)), Recorder(spikes=True))
        for n in g.neurons:
            assert tr.spikes[n].sum() > 0
            np.testing.assert_array_equal(ours.spikes[n].astype(np.int64), tr.spikes[n].astype(np.int64), err_msg=lib)
