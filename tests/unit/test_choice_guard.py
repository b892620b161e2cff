"""Guard: every value of every semantic choice reaches every consumer.

The allowed values are listed once (refsim.semantics.CHOICE_VALUES, V_MIN_VALUES). Each value is
sent through the NumPy neuron step, the event kernels' flags and fused pass, ``refsim check`` and
``refsim fingerprint``; a value added to semantics.py that one consumer does not handle fails here.
"""
import itertools

import numpy as np
import pytest

from refsim.backends.event import kernels as K
from refsim.conformance.check import ALTERNATIVES, check
from refsim.conformance.fingerprint import FIELDS, fingerprint, simulate_choices
from refsim.encoding import PoissonEncoder
from refsim.graph import Conv2d, Graph, Input, Neuron, Output
from refsim.neurons import get_model, make_params
from refsim.neurons._common import zero_state
from refsim.semantics import CHOICE_VALUES, SPIKE_TRAIN_CHOICES, V_MIN_VALUES, NeuronChoices
from refsim.simulator import Recorder, Simulator

ALL = [(f, v) for f, vals in dict(CHOICE_VALUES, v_min=V_MIN_VALUES).items() for v in vals]
MODELS = ("if", "ternary", "multithreshold", "lif", "cubalif")


def _valid(model, choices):
    return not (model in ("ternary", "multithreshold") and choices.spikes_per_step == "multi")


def test_flag_tables_list_exactly_the_allowed_values():
    assert set(K.FLAG_TABLES) == set(CHOICE_VALUES)
    for field, values in CHOICE_VALUES.items():
        assert set(K.FLAG_TABLES[field]) == set(values), field


def test_spike_train_choices_are_searched_by_check_and_fingerprint():
    assert set(FIELDS) == set(SPIKE_TRAIN_CHOICES)
    for field, values in SPIKE_TRAIN_CHOICES.items():
        for v in values:
            assert (field, v) in ALTERNATIVES


@pytest.mark.parametrize("field,value", ALL)
@pytest.mark.parametrize("model", MODELS)
def test_numpy_step_and_fused_kernel_agree(field, value, model):
    choices = NeuronChoices(**{field: value})
    if not _valid(model, choices):
        pytest.skip("not a valid choice for this model")
    if model in ("lif", "cubalif"):
        pytest.skip("leaky layers have no fused kernel (the event plan runs them dense)")
    flags = K.choice_flags(model, choices)
    rng = np.random.default_rng(3)
    B, C, H, W = 1, 2, 3, 4
    th = np.array([1.0, 0.5])
    p = make_params(model, th, choices, (1.0, 0.5) if model == "multithreshold" else None)
    m = get_model(model)
    state = zero_state((B, C, H, W))
    v, vpre = np.zeros((B, H, W, C)), np.zeros((B, H, W, C))
    lv = th[:, None] * np.array([1.0, 0.5])[None, :]
    for t in range(6):
        cur = rng.integers(-3, 9, size=(B, C, H, W)) * 0.25
        s_ref, state = m.step(state, cur, p)
        events = K.row_events(B, (C, H, W))
        spk = np.zeros((B, C, H, W), np.uint8 if model == "multithreshold" else np.int16)
        common = dict(cur=np.ascontiguousarray(cur.transpose(0, 2, 3, 1)), v=v, vpre=vpre, flags=flags, events=events,
                      rsum=np.zeros((B, H), np.int64), spikes=spk.transpose(0, 2, 3, 1))
        if model == "multithreshold":
            K.mt_rows(levels=lv, **common)
        else:
            K.neuron_rows(th=th, scratch=np.zeros((B * H, W, C + 1), np.uint8), **common)
        np.testing.assert_array_equal(spk, s_ref)
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        np.testing.assert_array_equal(vpre.transpose(0, 3, 1, 2), state.v_pre)


@pytest.mark.parametrize("field,value", ALL)
@pytest.mark.parametrize("model", MODELS)
def test_check_conforms_to_its_own_traces(field, value, model):
    """check's teacher forcing (the model's step with forced spikes) reproduces every choice."""
    if not _valid(model, NeuronChoices(**{field: value})):
        pytest.skip("not a valid choice for this model")
    w = np.full((2, 1, 1, 1), 0.75, np.float32)
    lv = {"levels": (1.0, 0.5)} if model == "multithreshold" else {}
    if model in ("lif", "cubalif"):
        lv = {"beta": 0.875}
    g = Graph([Input("x", (1, 3, 3)), Conv2d("c", ["x"], w), Neuron("n", ["c"], model, 1.0, choices={field: value}, **lv),
               Output("o", ["n"])])
    x = np.random.default_rng(0).random((2, 1, 3, 3))
    tr = Simulator(g, "paper").run(x, 12, PoissonEncoder(seed=1, ternary=model == "ternary"),
                                   Recorder(spikes=True, inputs=True))
    assert tr.step_counts["n"].sum() > 0
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, "paper", mode=mode)
        assert rep["conforms"], rep


@pytest.mark.parametrize("field,values", list(SPIKE_TRAIN_CHOICES.items()))
def test_fingerprint_recovers_every_value(field, values):
    for v in values:
        rep = fingerprint(simulate_choices(NeuronChoices(**{field: v})))
        got = rep["choices"][field]
        assert got == v or (isinstance(got, list) and str(v) in got), (field, v, rep["choices"])


def test_a_value_unknown_to_the_kernels_raises():
    class Fake:
        comparison, order, reset, spikes_per_step, v_min, spike_value, membrane_report, reset_timing = (
            "<", "integrate-then-fire", "subtract", "one", None, "one", "post-reset", "with-spike")
    from refsim.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="comparison"):
        K.choice_flags("if", Fake())


def test_every_combination_builds_params_or_a_clear_error():
    grid = dict(CHOICE_VALUES, v_min=V_MIN_VALUES)
    for combo in itertools.product(*grid.values()):
        ch = NeuronChoices(**dict(zip(grid, combo)))
        for model in MODELS:
            if _valid(model, ch):
                make_params(model, 1.0, ch)
