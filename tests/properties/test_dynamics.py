"""Properties of the neuron dynamics (issue 2, deliverable 8).

Inputs are dyadic (integers / 2**10) and thresholds powers of two times small integers, so every
float64 sum is exact and the properties are checked with exact equality.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from refsim.neurons import if_, multithreshold as mt
from refsim.neurons._common import MembraneState
from refsim.semantics import NeuronChoices

SCALE = 2.0 ** -10
dyadic = st.integers(-4096, 4096).map(lambda k: k * SCALE)
thresholds = st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
comparisons = st.sampled_from([">", ">="])
orders = st.sampled_from(["integrate-then-fire", "fire-then-integrate"])


def run(step, params, xs):
    state = MembraneState(np.zeros(len(xs[0])), np.zeros(len(xs[0])))
    spikes = []
    for x in xs:
        s, state = step(state, np.asarray(x, dtype=float), params)
        spikes.append(s)
    return np.array(spikes), state


@given(st.lists(st.lists(dyadic, min_size=3, max_size=3), min_size=1, max_size=60), thresholds, comparisons, orders,
       st.sampled_from(["one", "multi"]))
def test_charge_conservation_subtract_reset(xs, theta, cmp, order, per_step):
    """sum of input = theta * spikes + final membrane (subtract reset, any comparison/order/multiplicity)."""
    p = if_.IFParams(theta, NeuronChoices(comparison=cmp, order=order, reset="subtract", spikes_per_step=per_step))
    spikes, state = run(if_.step, p, xs)
    np.testing.assert_array_equal(np.sum(xs, axis=0), theta * spikes.sum(axis=0) + state.v)


@given(st.lists(st.lists(dyadic, min_size=2, max_size=2), min_size=1, max_size=60), thresholds, comparisons, orders)
def test_charge_conservation_ternary(xs, theta, cmp, order):
    p = if_.TernaryIFParams(theta, NeuronChoices(comparison=cmp, order=order))
    spikes, state = run(if_.ternary_step, p, xs)
    np.testing.assert_array_equal(np.sum(xs, axis=0), theta * spikes.sum(axis=0) + state.v)


@given(st.integers(0, 1024), thresholds, comparisons, st.integers(1, 400))
def test_rate_bound_integrate_then_fire(k, theta, cmp, T):
    """Constant input x in [0, theta]: |count/T - x/theta| <= 1/T."""
    x = theta * k / 1024
    p = if_.IFParams(theta, NeuronChoices(comparison=cmp))
    spikes, _ = run(if_.step, p, [[x]] * T)
    # |count/T - k/1024| <= 1/T, multiplied out so it is checked in exact integers
    assert abs(1024 * int(spikes.sum()) - k * T) <= 1024


@given(st.integers(0, 1024), thresholds, comparisons, st.integers(1, 400))
def test_rate_bound_fire_then_integrate(k, theta, cmp, T):
    """Fire-then-integrate delays every spike by one step, so the bound is 2/T (docs/semantics.md section 1)."""
    x = theta * k / 1024
    p = if_.IFParams(theta, NeuronChoices(comparison=cmp, order="fire-then-integrate"))
    spikes, _ = run(if_.step, p, [[x]] * T)
    assert abs(1024 * int(spikes.sum()) - k * T) <= 2 * 1024


def _theorem_levels(N):
    return tuple(2.0 ** -(i + 1) for i in range(N))


@given(st.integers(1, 8), st.floats(0.0, 1.0, exclude_max=True))
def test_theorem_3_1_error_bound_ge(N, V):
    """Li et al. Theorem 3.1, greedy levels 1/2 .. 1/2^N with '>=': error in [0, 2^-N) for every V in [0, 1)."""
    p = mt.MultiThresholdParams(_theorem_levels(N), choices=NeuronChoices(comparison=">="))
    mask, state = mt.step(MembraneState(np.zeros(1), np.zeros(1)), np.array([V]), p)
    err = V - mt.emitted(mask, p)[0]
    assert 0.0 <= err < 2.0 ** -N
    assert err == state.v[0]  # subtract reset leaves exactly the truncation error


@given(st.integers(1, 8), st.floats(0.0, 1.0, exclude_max=True))
def test_theorem_3_1_error_bound_gt(N, V):
    """With '>' the upper end is closed instead: error in [0, 2^-N]."""
    p = mt.MultiThresholdParams(_theorem_levels(N), choices=NeuronChoices(comparison=">"))
    mask, _ = mt.step(MembraneState(np.zeros(1), np.zeros(1)), np.array([V]), p)
    err = V - mt.emitted(mask, p)[0]
    assert 0.0 <= err <= 2.0 ** -N
    if V > 0 and V * 2 ** N == int(V * 2 ** N):
        assert err > 0.0  # with '>' an exact multiple of the smallest level is never reached exactly


@given(st.integers(1, 8), st.sampled_from([">", ">="]), st.integers(0, 6))
def test_theorem_3_1_mean_error(N, cmp, j):
    """Mean error over a fine midpoint grid of [0, 1) equals 2^-(N+1) exactly (both comparisons).
    The grid has 2^(N+j) points so every value and the sum are dyadic and exact in float64."""
    M = 2 ** (N + j)
    V = (np.arange(M) + 0.5) / M
    p = mt.MultiThresholdParams(_theorem_levels(N), choices=NeuronChoices(comparison=cmp))
    mask, _ = mt.step(MembraneState(np.zeros(M), np.zeros(M)), V, p)
    err = V - mt.emitted(mask, p)
    assert err.mean() == 2.0 ** -(N + 1)


@given(st.lists(st.lists(dyadic, min_size=3, max_size=3), min_size=1, max_size=40), thresholds, comparisons, orders,
       st.sampled_from(["subtract", "zero", "none"]))
def test_ternary_symmetry(xs, theta, cmp, order, reset):
    """Negated input gives negated spikes and negated membranes."""
    p = if_.TernaryIFParams(theta, NeuronChoices(comparison=cmp, order=order, reset=reset))
    s1, st1 = run(if_.ternary_step, p, xs)
    s2, st2 = run(if_.ternary_step, p, [[-v for v in x] for x in xs])
    np.testing.assert_array_equal(s1, -s2)
    np.testing.assert_array_equal(st1.v, -st2.v)


levels_strategy = st.lists(st.integers(1, 64), min_size=1, max_size=8, unique=True).map(
    lambda ks: tuple(sorted((k / 16 for k in ks), reverse=True)))


@given(st.lists(st.floats(-10, 50, allow_nan=False), min_size=1, max_size=40), levels_strategy, comparisons, orders,
       st.sampled_from(["subtract", "zero", "none"]), st.sampled_from([0.5, 1.0, 3.0]))
def test_multithreshold_output_bounded_by_sum_of_levels(xs, levels, cmp, order, reset, scale):
    """Per step, 0 <= o <= sum(levels) * threshold, and each level fires at most once."""
    p = mt.MultiThresholdParams(levels, scale, NeuronChoices(comparison=cmp, order=order, reset=reset))
    state = MembraneState(np.zeros(1), np.zeros(1))
    cap = sum(levels) * scale
    for x in xs:
        mask, state = mt.step(state, np.array([x]), p)
        o = mt.emitted(mask, p)[0]
        assert 0.0 <= o <= cap
        assert int(mask[0]) < 2 ** len(levels)


@given(st.lists(dyadic, min_size=1, max_size=60), thresholds, comparisons)
def test_spikes_never_negative_and_one_per_step(xs, theta, cmp):
    p = if_.IFParams(theta, NeuronChoices(comparison=cmp))
    spikes, _ = run(if_.step, p, [[x] for x in xs])
    assert set(np.unique(spikes)) <= {0, 1}
