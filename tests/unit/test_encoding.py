"""Encoders: explicit, per-sample random state; comparisons; validation."""
import numpy as np
import pytest

from refsim.encoding import PoissonEncoder, ReplayEncoder, StaticEncoder, make_encoder
from refsim.errors import EncodingError, UnknownNameError


def take(enc, x, T, offset=0):
    return np.array(list(enc.stream(x, T, offset)))


def test_same_seed_same_spikes_whatever_the_batch():
    x = np.random.default_rng(1).random((6, 2, 5, 4))
    full = take(PoissonEncoder(seed=7), x, 12)
    for i in range(6):
        alone = take(PoissonEncoder(seed=7), x[i:i + 1], 12, offset=i)
        np.testing.assert_array_equal(alone[:, 0], full[:, i])
    half = take(PoissonEncoder(seed=7), x[3:], 12, offset=3)
    np.testing.assert_array_equal(half, full[:, 3:])


def test_different_seed_or_sample_gives_different_spikes():
    x = np.full((2, 1, 16, 16), 0.5)
    a = take(PoissonEncoder(seed=1), x, 4)
    b = take(PoissonEncoder(seed=2), x, 4)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a[:, 0], a[:, 1])


def test_rate_matches_input():
    x = np.array([[0.0, 0.1, 0.5, 0.9, 1.0]])
    s = take(PoissonEncoder(seed=0), x, 20000)
    rates = s.mean(axis=0)[0]
    assert rates[0] == 0.0 and rates[-1] == 1.0
    np.testing.assert_allclose(rates[1:4], [0.1, 0.5, 0.9], atol=0.015)  # ~4 sigma of a binomial at n=20000


def test_comparison_less_or_equal_fires_at_equality():
    """With r drawn from the same stream, '<=' fires exactly where r == |x| in addition to '<'."""
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence([5, 0])))
    r = g.random((3,))
    x = r[None].copy()  # x equal to the first draw
    lt = take(PoissonEncoder(seed=5, comparison="<"), x, 1)[0, 0]
    le = take(PoissonEncoder(seed=5, comparison="<="), x, 1)[0, 0]
    np.testing.assert_array_equal(lt, [0, 0, 0])
    np.testing.assert_array_equal(le, [1, 1, 1])


def test_ternary_sign_and_symmetry():
    x = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    s = take(PoissonEncoder(seed=3, ternary=True), x, 50)
    assert set(np.unique(s[..., 0])) == {-1.0} and set(np.unique(s[..., 4])) == {1.0}
    assert np.all(s[..., 2] == 0)
    neg = take(PoissonEncoder(seed=3, ternary=True), -x, 50)
    np.testing.assert_array_equal(neg, -s)


@pytest.mark.parametrize("ternary,x", [(False, -0.1), (False, 1.5), (True, -1.5), (False, np.nan)])
def test_out_of_range_input(ternary, x):
    with pytest.raises(EncodingError, match="expected values in"):
        take(PoissonEncoder(ternary=ternary), np.array([[x]]), 1)


def test_static_and_replay():
    x = np.arange(4.0).reshape(1, 4)
    np.testing.assert_array_equal(take(StaticEncoder(), x, 3), np.stack([x] * 3))
    rec = np.random.default_rng(0).integers(-1, 2, size=(5, 1, 4))
    np.testing.assert_array_equal(take(ReplayEncoder(rec), x, 5), rec)
    with pytest.raises(EncodingError, match="T=6"):
        take(ReplayEncoder(rec), x, 6)
    with pytest.raises(EncodingError, match="shape"):
        take(ReplayEncoder(rec), np.zeros((1, 3)), 2)


def test_registry():
    assert make_encoder("poisson-ternary", seed=2).ternary
    with pytest.raises(UnknownNameError, match="poisson"):
        make_encoder("rate")
    with pytest.raises(EncodingError):
        PoissonEncoder(comparison="<<")


def test_poisson_default_seed_is_zero():
    """The documented default (seed 0): the same spikes as an explicit seed=0."""
    x = np.random.default_rng(1).random((2, 1, 4, 4))
    a = list(PoissonEncoder().stream(x, 5))
    b = list(PoissonEncoder(seed=0).stream(x, 5))
    c = list(PoissonEncoder(seed=1).stream(x, 5))
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and not all(np.array_equal(p, q) for p, q in zip(a, c))
