"""refsim fingerprint and refsim.testing."""
import numpy as np
import pytest
from hypothesis import given

from refsim import cli
from refsim.conformance.fingerprint import PROBES, fingerprint, probe_inputs, simulate_choices
from refsim.errors import ValidationError
from refsim.semantics import get_profile, list_profiles
from refsim.testing import ConformanceError, assert_neuron_matches, currents


def float32_if(ge=False, reset_zero=False):
    """An independent float32 implementation, as a trainer would write it."""
    def step_fn(x):
        x = x.astype(np.float32)
        v = np.zeros(x.shape[1], np.float32)
        out = np.zeros(x.shape, np.int64)
        one = np.float32(1)
        for t in range(x.shape[0]):
            v = v + x[t]
            s = (v >= one) if ge else (v > one)
            out[t] = s
            v = np.where(s, np.float32(0), v) if reset_zero else v - s.astype(np.float32) * one
        return out
    return step_fn


@pytest.mark.parametrize("profile", list_profiles())
def test_fingerprint_recovers_each_profile(profile):
    ch = get_profile(profile).choices("if")
    rep = fingerprint(simulate_choices(ch))
    for field in ("comparison", "order", "reset", "spikes_per_step", "v_min"):
        assert rep["choices"][field] == getattr(ch, field), field
    assert profile in rep["profiles"]


@pytest.mark.parametrize("ge,reset_zero,expect", [(False, False, {"comparison": ">", "reset": "subtract"}),
                                                  (True, False, {"comparison": ">=", "reset": "subtract"}),
                                                  (False, True, {"comparison": ">", "reset": "zero"})])
def test_fingerprint_of_a_callable(ge, reset_zero, expect):
    rep = fingerprint(float32_if(ge, reset_zero))
    for k, v in expect.items():
        assert rep["choices"][k] == v


def test_fingerprint_unknown_behaviour_and_bad_shape():
    x = probe_inputs()
    rep = fingerprint(np.ones(x.shape, dtype=int) * 3)
    assert rep["matching_choice_sets"] == 0 and rep["profiles"] == []
    with pytest.raises(ValidationError):
        fingerprint(np.zeros((3, 3)))


def test_cli_fingerprint(tmp_path, capsys):
    np.save(tmp_path / "s.npy", float32_if(ge=True)(probe_inputs()))
    assert cli.main(["fingerprint", str(tmp_path / "s.npy")]) == 0
    out = capsys.readouterr().out
    assert "comparison       >=" in out and "spikingjelly" in out
    assert cli.main(["fingerprint", "--write-probes", str(tmp_path / "p.npy")]) == 0
    assert np.load(tmp_path / "p.npy").shape == (12, len(PROBES))


def test_assert_neuron_matches():
    assert_neuron_matches(float32_if(ge=True), "spikingjelly")
    assert_neuron_matches(float32_if(), "paper")
    with pytest.raises(ConformanceError, match="step"):
        assert_neuron_matches(float32_if(ge=True), "paper")


@given(currents())
def test_property_float32_strict_neuron_matches_paper_on_dyadic_inputs(x):
    """Dyadic currents: float32 sums are exact, so a float32 '>' neuron equals the paper profile."""
    assert_neuron_matches(float32_if(), "paper", x)


def test_assert_conforms(tmp_path):
    from refsim.testing import assert_conforms
    from tests.conformance.test_check import dyadic_net, record
    assert_conforms(dyadic_net(), record(dyadic_net()), "paper")
    with pytest.raises(ConformanceError, match="if2"):
        assert_conforms(dyadic_net(), record(dyadic_net({"comparison": ">="})), "paper")


def test_cli_fingerprint_reads_npz(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", x=float32_if(ge=True)(probe_inputs()))
    assert cli.main(["fingerprint", str(tmp_path / "s.npz")]) == 0
    assert "comparison       >=" in capsys.readouterr().out
