"""Each Numba scatter kernel against the dense NumPy reference, bit for bit, with edge cases."""
import numpy as np
import pytest

from refsim.graph import AvgPool2d, Conv2d, ConvTranspose2d, Linear, SumPool2d
from refsim.backends.event import kernels as k
from tests.helpers import assert_close

rng = np.random.default_rng(11)


def spikes(shape, density, kind="binary"):
    s = (rng.random(shape) < density).astype(float)
    if kind == "ternary":
        s *= rng.choice([-1.0, 1.0], size=shape)
    elif kind == "multithreshold":  # sums of the default levels 2, 1, 0.5, 0.25 (a dyadic grid)
        s *= rng.integers(1, 16, size=shape) * 0.25
    elif kind == "counts":
        s *= rng.integers(1, 5, size=shape)
    return s


EDGE = {
    "empty": lambda shp: np.zeros(shp),
    "corners": lambda shp: _corners(shp),
    "full": lambda shp: np.ones(shp),
}


def _corners(shp):
    s = np.zeros(shp)
    s[:, :, 0, 0] = s[:, :, -1, -1] = s[:, :, 0, -1] = s[:, :, -1, 0] = 1
    return s


CONVS = [dict(stride=1, padding=1), dict(stride=2, padding=1), dict(stride=(2, 1), padding=(0, 2, 1, 0), dilation=(2, 1)),
         dict(stride=3, padding=0), dict(stride=1, padding="same", dilation=2), dict(stride=1, padding=0, groups=2)]


@pytest.mark.parametrize("cfg", CONVS)
@pytest.mark.parametrize("kind", ["binary", "ternary", "multithreshold", "counts"])
def test_conv_scatter_equals_dense(cfg, kind):
    cfg = dict(cfg)
    g = cfg.get("groups", 1)
    w = rng.standard_normal((6, 4 // g, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    node = Conv2d("c", ["a"], w, b, **cfg)
    x = spikes((2, 4, 9, 8), 0.3, kind)
    shape = node.infer_shape([(4, 9, 8)])
    assert_close(k.conv2d_events(x, node, k.prepare_conv(w, g), shape), node.forward([x]), exact=True)


@pytest.mark.parametrize("edge", sorted(EDGE))
def test_conv_scatter_edges(edge):
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    node = Conv2d("c", ["a"], w, None, stride=2, padding=1)
    x = EDGE[edge]((1, 2, 7, 6))
    shape = node.infer_shape([(2, 7, 6)])
    assert_close(k.conv2d_events(x, node, k.prepare_conv(w, 1), shape), node.forward([x]), exact=True)


@pytest.mark.parametrize("cfg", [dict(stride=2), dict(stride=2, padding=1, output_padding=1),
                                 dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1)), dict(stride=3, padding=1, groups=2)])
@pytest.mark.parametrize("kind", ["binary", "ternary", "multithreshold"])
def test_conv_transpose_scatter_equals_dense(cfg, kind):
    g = cfg.get("groups", 1)
    w = rng.standard_normal((4, 6 // g, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    node = ConvTranspose2d("t", ["a"], w, b, **cfg)
    x = spikes((2, 4, 5, 6), 0.4, kind)
    shape = node.infer_shape([(4, 5, 6)])
    assert_close(k.conv_transpose2d_events(x, node, k.prepare_conv_transpose(w), shape), node.forward([x]), exact=True)


@pytest.mark.parametrize("cls", [AvgPool2d, SumPool2d])
@pytest.mark.parametrize("cfg", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1)])
def test_pool_scatter_equals_dense(cls, cfg):
    node = cls("p", ["a"], **cfg)
    x = spikes((2, 3, 9, 8), 0.5, "ternary")
    shape = node.infer_shape([(3, 9, 8)])
    got = k.pool_events(x, node, shape, average=cls is AvgPool2d)
    assert_close(got, node.forward([x]), exact=True)


def test_linear_scatter_equals_dense():
    w = rng.standard_normal((7, 20)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    node = Linear("l", ["a"], w, b)
    x = spikes((3, 20), 0.3, "counts")
    x[1] = 0
    assert_close(k.linear_events(x, node, np.ascontiguousarray(w.astype(np.float64).T)), node.forward([x]), exact=True)


def test_events_are_in_raster_order():
    x = np.zeros((3, 2, 2))
    x[2, 0, 0] = x[0, 1, 1] = x[1, 0, 0] = 1
    ys, xs, cs, _ = k.events_hwc(x)
    assert list(zip(ys, xs, cs)) == [(0, 0, 1), (0, 0, 2), (1, 1, 0)]


@pytest.mark.parametrize("ksize,padding", [(3, 1), (3, 0), (1, 0), (2, (0, 1, 1, 0)), (5, 2), (3, "same"), (3, (2, 0, 0, 2))])
@pytest.mark.parametrize("kind", ["binary", "ternary", "multithreshold", "counts"])
def test_halo_conv_kernel_equals_dense(ksize, padding, kind):
    w = rng.standard_normal((5, 3, ksize, ksize)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    node = Conv2d("c", ["a"], w, b, padding=padding)
    x = spikes((2, 3, 8, 7), 0.3, kind)
    shape = node.infer_shape([(3, 8, 7)])
    assert_close(k.conv2d_events_s1(x, node, k.prepare_conv_s1(w), shape), node.forward([x]), exact=True)


@pytest.mark.parametrize("edge", sorted(EDGE))
def test_halo_conv_kernel_edges(edge):
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    node = Conv2d("c", ["a"], w, None, padding=1)
    x = EDGE[edge]((1, 2, 6, 5))
    assert_close(k.conv2d_events_s1(x, node, k.prepare_conv_s1(w), (4, 6, 5)), node.forward([x]), exact=True)


def _granularity_numpy(a):
    """The slow NumPy form of refsim.exactness.granularity (frexp / ldexp), the kernel's reference."""
    a = np.abs(np.asarray(a, dtype=np.float64)).ravel()
    a = a[(a > 0) & np.isfinite(a)]
    if a.size == 0:
        return np.inf
    m, e = np.frexp(a)
    ints = np.ldexp(m, 53).astype(np.int64)
    low = ints & -ints
    low_exp = np.frexp(low.astype(np.float64))[1] - 1
    return float(np.ldexp(1.0, int((low_exp + e - 53).min())))


@pytest.mark.parametrize("seed", range(6))
def test_granularity_kernel_equals_numpy(seed):
    from refsim.exactness import granularity
    rng = np.random.default_rng(seed)
    cases = [rng.standard_normal(50), rng.integers(-9, 9, 40) * 0.125, rng.standard_normal(30).astype(np.float32),
             np.array([5e-324, 1.0]), np.array([2.0 ** -1074 * 6, 0.0]), np.array([1e308, 3.0]), np.zeros(4),
             np.array([np.inf, 0.75, np.nan, -0.5]), np.array([-2.0 ** 60]), rng.random((3, 4, 5)) * 2 ** 30]
    for a in cases:
        assert granularity(a) == _granularity_numpy(a), a


def test_add_rate_kernels_equal_numpy():
    """The benchmark's yardstick kernels (refsim.kernels.peak) compute what they say."""
    from refsim.kernels import peak
    rng = np.random.default_rng(0)
    w = [rng.integers(-8, 9, 40) / 8.0 for _ in range(4)]
    o = rng.integers(-8, 9, 40) / 8.0
    ref = o + 3 * w[0]
    peak._add_into(o, w[0], 3)
    np.testing.assert_array_equal(o, ref)
    ref = o + 2 * ((w[0] + w[1]) + (w[2] + w[3]))
    peak._add4_into(o, *w, 2)
    np.testing.assert_array_equal(o, ref)
