"""docs/semantics.md section 1 tie tables, for every profile, through the API and through `refsim probe`."""
import numpy as np
import pytest

import refsim
from refsim import cli
from refsim.neurons.probe import format_spikes, probe
from refsim.errors import UnknownNameError, ValidationError
from refsim.semantics import NeuronChoices, Profile, get_profile, list_profiles
from refsim.simulator import Recorder, Simulator
from refsim.encoding import StaticEncoder
from tests.helpers import chain

# threshold 1, start at 0, 8 steps; digits are spikes per step (docs/semantics.md section 1)
TIES = {
    ">=": {1.0: "11111111", 0.5: "01010101", 0.25: "00010001"},
    ">": {1.0: "01111111", 0.5: "00101010", 0.25: "00001000"},
}
EXPECTED = {
    "paper": TIES[">"],
    "snntorch": TIES[">"],
    "spikingjelly": TIES[">="],
    "spikingjelly-hard-reset": TIES[">="],   # hard reset to 0 equals subtraction at these exact ties
    "sinabs": {**TIES[">="], 2.0: "22222222"},
    "sinabs-from-model": {**TIES[">="], 2.0: "22222222"},
    "spiking-unet": TIES[">="],
    # Norse resets to zero: at input 1.0 the membrane returns to 0 after each spike
    "norse": {1.0: "01010101", 0.5: "00100100", 0.25: "00001000"},
    # fire-then-integrate: every spike one step later than under integrate-then-fire with '>'
    "rathi2020": {1.0: "00111111", 0.5: "00010101", 0.25: "00000100", 2.0: "01111111"},
    # NIR's rules: subtraction before nir 1.0.6 (the paper's trains), a reset to v_reset = 0 after
    "nir": TIES[">"],
    "nir-reset": {1.0: "01010101", 0.5: "00100100", 0.25: "00001000"},
}
ONE_PER_STEP = [p for p in EXPECTED if not p.startswith("sinabs")]


def test_every_registered_profile_has_a_tie_table():
    assert sorted(EXPECTED) == list_profiles()


@pytest.mark.parametrize("profile,x,expected", [(p, x, e) for p, tab in EXPECTED.items() for x, e in tab.items()])
def test_tie_table_api(profile, x, expected):
    spikes, _ = probe(profile, [x], 8)
    assert format_spikes(spikes) == expected


@pytest.mark.parametrize("profile", ONE_PER_STEP)
def test_input_two_gives_one_spike_a_step_without_multispike(profile):
    spikes, _ = probe(profile, [2.0], 8)
    assert max(spikes) == 1


@pytest.mark.parametrize("profile,x,expected", [(p, x, e) for p, tab in EXPECTED.items() for x, e in tab.items()])
def test_tie_table_cli(profile, x, expected, capsys):
    assert cli.main(["probe", "--profile", profile, "--input", str(x), "--T", "8"]) == 0
    assert capsys.readouterr().out.strip() == expected


@pytest.mark.parametrize("profile,x,expected", [(p, x, e) for p, tab in EXPECTED.items() for x, e in tab.items()])
def test_tie_table_through_the_simulator(profile, x, expected):
    """The same tables through a graph run (Input -> Neuron -> Output), static input."""
    tr = Simulator(chain(1), profile).run(np.array([[x]]), 8, encoder=StaticEncoder(), recorder=Recorder(spikes=True))
    assert "".join(str(int(s)) for s in tr.spikes["n0"][:, 0, 0]) == expected


def test_issue_done_when_probe_strings(capsys):
    cli.main(["probe", "--profile", "spikingjelly", "--input", "0.5", "--T", "8"])
    cli.main(["probe", "--profile", "snntorch", "--input", "0.5", "--T", "8"])
    assert capsys.readouterr().out.split() == ["01010101", "00101010"]


def test_one_third_differs_between_float32_and_float64_under_strict_comparison():
    """docs/semantics.md: input 1/3 under '>' differs between float32 and float64 accumulation."""
    def run(dtype):
        v, out = dtype(0), ""
        x, one = dtype(1) / dtype(3), dtype(1)
        for _ in range(9):
            v = dtype(v + x)
            s = v > one
            out += "1" if s else "0"
            v = dtype(v - one) if s else v
        return out
    ref, _ = probe("paper", [1 / 3], 9)
    assert format_spikes(ref) == run(np.float64)
    assert run(np.float32) != run(np.float64)


def test_unknown_profile_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        get_profile("spikingjely")
    msg = str(e.value)
    for name in list_profiles():
        assert name in msg


def test_cli_unknown_profile_exit_code_2(capsys):
    assert cli.main(["probe", "--profile", "nope"]) == 2
    assert "valid names are" in capsys.readouterr().err


@pytest.mark.parametrize("field,value", [("comparison", "=>"), ("order", "fire-first"), ("reset", "hard"),
                                         ("spikes_per_step", 2), ("v_min", float("nan")), ("spike_value", "vth"),
                                         ("membrane_report", "pre")])
def test_choices_validated(field, value):
    with pytest.raises(ValidationError) as e:
        NeuronChoices(**{field: value})
    assert field in str(e.value)


def test_choices_replace_unknown_field():
    with pytest.raises(UnknownNameError):
        NeuronChoices().replace(threshold=2)


def test_profile_per_model_overrides():
    p = get_profile("spiking-unet")
    assert p.choices("if").comparison == ">=" and p.choices("if").reset == "zero"
    assert p.choices("multithreshold").comparison == ">" and p.choices("multithreshold").reset == "subtract"
    assert get_profile("paper").choices("ternary").comparison == ">="
    with pytest.raises(UnknownNameError):
        Profile("x", "", "", per_model={"adex": {}})


def test_register_profile_refuses_duplicates():
    with pytest.raises(ValidationError):
        refsim.register_profile(get_profile("paper"))
