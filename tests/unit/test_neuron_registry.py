"""The neuron-model registry (refsim.neurons.NEURON_MODELS): its properties are read by the
simulator, traces, check, conversion, analysis and the backends instead of model names, so each
property is checked here against what the model's own step does."""
import numpy as np
import pytest

from refsim.errors import ValidationError
from refsim.neurons import NEURON_MODELS, get_model, make_params
from refsim.semantics import MODEL_NAMES, get_profile


def _params(name, **kw):
    levels = (4.0, 2.0, 1.0) if get_model(name).bitmask else None
    extra = {"beta": 0.5} if get_model(name).leaks else {}
    return make_params(name, 1.0, get_profile("paper").choices(name).replace(**kw), levels, **extra)


def _drive(name, x, steps=6, **kw):
    m, p = get_model(name), _params(name, **kw)
    st = m.init_state(np.shape(x))
    out = []
    for _ in range(steps):
        s, st = m.step(st, np.asarray(x, float), p)
        out.append(np.asarray(s))
    return np.stack(out), st


def test_registry_lists_the_semantics_model_names_in_order():
    assert tuple(NEURON_MODELS) == MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_signed_means_negative_input_gives_negative_spikes(name):
    s, _ = _drive(name, np.full(4, -3.0))
    assert (s.min() < 0) == get_model(name).signed


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_leaks_means_the_membrane_decays_without_input(name):
    m, p = get_model(name), _params(name)
    x = np.full(3, 0.4)  # below threshold: no spike, no reset
    _, st = _drive(name, x, steps=1)
    s, st2 = m.step(st, np.zeros(3), p)
    assert not np.any(s)
    assert bool(np.all(np.abs(st2.v) < np.abs(st.v))) == m.leaks


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_current_means_the_state_carries_a_synaptic_current(name):
    _, st = _drive(name, np.full(3, 0.4), steps=1)
    assert hasattr(st, "i") == get_model(name).current


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("multi", ["one", "multi"])
def test_records_hold_every_value_a_step_can_emit(name, multi):
    """Strong positive (and negative) drive: every spike value fits both the run's record dtype and
    the range traces accept, and the count rule gives the number of spikes."""
    m = get_model(name)
    lo, hi = m.spike_range
    if multi == "multi" and (m.signed or m.bitmask):  # one signed spike, or one spike per level, a step
        with pytest.raises(ValidationError, match="spikes_per_step"):
            _params(name, spikes_per_step=multi)
        return
    for drive in (50.0, -50.0, 0.7):
        s, _ = _drive(name, np.full(5, drive), spikes_per_step=multi)
        info = np.iinfo(m.record_dtype)  # hand-written trace files: any value in the range
        assert info.min <= lo and hi <= info.max
        assert s.min() >= lo and s.max() <= hi
        assert np.array_equal(s.astype(m.spike_dtype(multi == "multi")).astype(np.int64), s.astype(np.int64))
        counts = m.spike_count(s)
        if m.bitmask:
            assert np.array_equal(counts, np.unpackbits(s.astype(np.uint8)[..., None], axis=-1).sum(axis=-1))
        else:
            assert np.array_equal(counts, np.abs(s))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_max_rate_bounds_one_step(name):
    m = get_model(name)
    p = _params(name)
    s, _ = _drive(name, np.full(4, 1e3))
    emitted = m.spike_count(s).max()
    assert emitted <= m.max_rate(p)
    if m.bitmask:  # every level fires under a huge drive
        assert emitted == len(p.levels) and m.max_rate(p) == sum(p.levels)
    else:
        assert m.max_rate(p) == 1.0 and emitted == 1
        if not m.signed:
            assert m.max_rate(_params(name, spikes_per_step="multi")) == np.inf
