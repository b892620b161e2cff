"""Neuron models: each behaviour of docs/semantics.md sections 1, 3 and 4 on hand-computed cases."""
import numpy as np
import pytest

from refsim.errors import ValidationError
from refsim.neurons import if_, integrator, multithreshold as mt
from refsim.neurons._common import count_multi, MembraneState
from refsim.semantics import NeuronChoices


def run(step, params, xs, shape=(1,)):
    st = MembraneState(np.zeros(shape), np.zeros(shape))
    out, vs, pres = [], [], []
    for x in xs:
        s, st = step(st, np.full(shape, x, dtype=float), params)
        out.append(s.copy())
        vs.append(st.v.copy())
        pres.append(st.v_pre.copy())
    return np.array(out)[:, 0], np.array(vs)[:, 0], np.array(pres)[:, 0]


def test_if_paper_membrane_trace():
    s, v, _ = run(if_.step, if_.IFParams(), [0.5] * 4)
    np.testing.assert_array_equal(s, [0, 0, 1, 0])
    np.testing.assert_array_equal(v, [0.5, 1.0, 0.5, 1.0])


def test_reset_to_zero_and_none():
    s, v, _ = run(if_.step, if_.IFParams(1.0, NeuronChoices(reset="zero")), [0.75] * 3)
    np.testing.assert_array_equal(v, [0.75, 0.0, 0.75])
    s, v, _ = run(if_.step, if_.IFParams(1.0, NeuronChoices(reset="none")), [0.75] * 3)
    np.testing.assert_array_equal(s, [0, 1, 1])
    np.testing.assert_array_equal(v, [0.75, 1.5, 2.25])


def test_membrane_floor_after_reset():
    s, v, _ = run(if_.step, if_.IFParams(1.0, NeuronChoices(v_min=-1.0)), [-0.75, -0.75, 0.5])
    np.testing.assert_array_equal(v, [-0.75, -1.0, -0.5])


def test_pre_reset_membrane_reported_separately():
    _, v, pre = run(if_.step, if_.IFParams(), [1.5])
    assert v[0] == 0.5 and pre[0] == 1.5


def test_fire_then_integrate_decides_on_previous_membrane():
    s, v, pre = run(if_.step, if_.IFParams(1.0, NeuronChoices(order="fire-then-integrate")), [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(s, [0, 1, 0])
    np.testing.assert_array_equal(v, [2.0, 1.0, 1.0])


@pytest.mark.parametrize("v,theta,ge,gt", [(3.0, 1.0, 3, 2), (2.9999, 1.0, 2, 2), (0.3, 0.1, 2, 2), (0.75, 0.25, 3, 2),
                                           (0.0, 1.0, 0, 0), (-3.0, 1.0, 0, 0), (1e6, 0.5, 2000000, 1999999)])
def test_multi_spike_count_is_exact(v, theta, ge, gt):
    th = float(np.float32(theta))
    for cmp, want in ((">=", ge), (">", gt)):
        n = int(count_multi(np.array([v]), th, cmp)[0])
        # definition: the largest n with n*theta <= v (>=) or n*theta < v (>)
        ok = (lambda k: k * th <= v) if cmp == ">=" else (lambda k: k * th < v)
        expect = max([k for k in range(0, int(v / th) + 3) if ok(k)], default=0) if v > 0 else 0
        assert n == expect
        if theta in (1.0, 0.25, 0.5):
            assert n == want


def test_multi_spike_sinabs_input_two():
    s, v, _ = run(if_.step, if_.IFParams(1.0, NeuronChoices(comparison=">=", spikes_per_step="multi")), [2.5, 0.5])
    np.testing.assert_array_equal(s, [2, 1])
    np.testing.assert_array_equal(v, [0.5, 0.0])


def test_spike_value_threshold_and_per_channel_threshold():
    p = if_.IFParams(np.array([0.5, 2.0], dtype=np.float32), NeuronChoices(spike_value="threshold"))
    st = MembraneState(np.zeros((1, 2, 1, 1)), np.zeros((1, 2, 1, 1)))
    s, st = if_.step(st, np.ones((1, 2, 1, 1)), p)
    np.testing.assert_array_equal(s.ravel(), [1, 0])
    np.testing.assert_array_equal(if_.emitted(s, p).ravel(), [0.5, 0.0])
    np.testing.assert_array_equal(st.v.ravel(), [0.5, 1.0])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), "a", [[1.0]], []])
def test_threshold_validated(bad):
    with pytest.raises(ValidationError):
        if_.IFParams(bad)


def test_ternary_signed_spikes_and_soft_reset():
    p = if_.TernaryIFParams()
    s, v, _ = run(if_.ternary_step, p, [0.5, 0.5, -1.0, -1.0, -0.5])
    # step 3: v = -1 <= -theta fires -1 and resets to 0; step 5: v = -0.5 stays
    np.testing.assert_array_equal(s, [0, 1, -1, -1, 0])
    np.testing.assert_array_equal(v, [0.5, 0.0, 0.0, 0.0, -0.5])


def test_ternary_rejects_multi():
    with pytest.raises(ValidationError):
        if_.TernaryIFParams(1.0, NeuronChoices(spikes_per_step="multi"))


def test_multithreshold_greedy_not_parallel():
    """V = 1.3 with levels 2, 1, 0.5, 0.25: greedy emits 1 + 0.25 = 1.25 (parallel would give 1.75)."""
    p = mt.MultiThresholdParams()
    st = MembraneState(np.zeros(1), np.zeros(1))
    mask, st = mt.step(st, np.array([1.3]), p)
    assert mt.emitted(mask, p)[0] == 1.25
    assert int(mask[0]) == 0b1010
    assert int(mt.popcount(mask)[0]) == 2
    assert st.v[0] == pytest.approx(0.05, abs=1e-15)


@pytest.mark.parametrize("cmp,v,out", [(">", 0.5, 0.25), (">=", 0.5, 0.5), (">", 3.75, 3.5), (">=", 3.75, 3.75)])
def test_multithreshold_dyadic_ties(cmp, v, out):
    p = mt.MultiThresholdParams(choices=NeuronChoices(comparison=cmp))
    mask, _ = mt.step(MembraneState(np.zeros(1), np.zeros(1)), np.array([v]), p)
    assert mt.emitted(mask, p)[0] == out


def test_multithreshold_threshold_scale():
    p = mt.MultiThresholdParams((1.0, 0.5), threshold=2.0, choices=NeuronChoices(comparison=">="))
    mask, st = mt.step(MembraneState(np.zeros(1), np.zeros(1)), np.array([3.5]), p)
    assert mt.emitted(mask, p)[0] == 3.0 and st.v[0] == 0.5


@pytest.mark.parametrize("levels", [(1.0, 1.0), (0.5, 1.0), (1.0, -0.5), (), tuple([2.0 ** -i for i in range(9)])])
def test_multithreshold_levels_validated(levels):
    with pytest.raises(ValidationError):
        mt.MultiThresholdParams(levels)


def test_integrator_never_resets():
    st = integrator.init_state((1,))
    for x in [1.0, 2.0, -0.5]:
        s, st = integrator.step(st, np.array([x]))
        assert s is None
    assert st.v[0] == 2.5


def _next_to_multiples(n=4000, seed=0):
    """Membranes within an ulp of k * theta (float32 thresholds): where v / theta rounds across an
    integer and the count needs its corrections."""
    rng = np.random.default_rng(seed)
    th = rng.random(n).astype(np.float32).astype(np.float64) * 2 + 0.01
    k = rng.integers(1, 50, n).astype(np.float64)
    v = k * th
    return np.concatenate([np.nextafter(v, -np.inf), v, np.nextafter(v, np.inf)]), np.tile(th, 3)


def _count_by_definition(v, th, cmp):
    """The largest n >= 0 with n*theta <= v (>=) or n*theta < v (>), float products, searched."""
    n0 = np.floor(v / th).astype(np.int64)
    out = np.zeros_like(n0)
    for d in range(-2, 3):
        k = np.maximum(n0 + d, 0)
        fits = (k * th <= v) if cmp == ">=" else (k * th < v)
        out = np.where(fits & (k > out), k, out)
    return out


@pytest.mark.parametrize("cmp", [">=", ">"])
def test_multi_spike_count_next_to_multiples(cmp):
    """count_multi and the fused kernel's count against the definition where the quotient rounds
    the wrong way; the naive quotient is wrong on some of these inputs, so the corrections matter."""
    from refsim.backends.event import kernels as K
    v, th = _next_to_multiples()
    want = _count_by_definition(v, th, cmp)
    naive = np.floor(v / th) if cmp == ">=" else np.ceil(v / th) - 1
    assert np.any(naive != want), "the inputs must exercise the corrections"
    np.testing.assert_array_equal(count_multi(v, th, cmp), want)
    # the fused kernel, one neuron per channel, membrane v reached in one step from 0
    C = v.size
    flags = K.choice_flags("if", NeuronChoices(comparison=cmp, spikes_per_step="multi", reset="none"))
    cur = np.ascontiguousarray(v.reshape(1, 1, 1, C))
    spikes = np.zeros((1, 1, 1, C), np.int16)
    K.neuron_rows(cur=cur, v=np.zeros((1, 1, 1, C)), th=th, flags=flags, events=K.row_events(1, (C, 1, 1)),
                  rsum=np.zeros((1, 1), np.int64), scratch=np.zeros((1, 1, C + 1), np.uint8), spikes=spikes)
    np.testing.assert_array_equal(spikes.reshape(-1), want)
