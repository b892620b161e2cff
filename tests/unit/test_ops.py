"""Every layer against an independent implementation (scipy.signal or explicit loops)."""
import itertools

import numpy as np
import pytest
from scipy import signal

from refsim.graph import ops
from tests.helpers import assert_close


def conv_loops(x, w, b, stride, pads, dil, groups):
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    pt, pb, pl, pr = pads
    xp = np.zeros((B, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    Ho = (H + pt + pb - dil[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + pl + pr - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((B, O, Ho, Wo))
    og = O // groups
    for bb, o, i, j in itertools.product(range(B), range(O), range(Ho), range(Wo)):
        g = o // og
        acc = 0.0
        for c in range(Cg):
            for a in range(kh):
                for e in range(kw):
                    acc += xp[bb, g * Cg + c, i * stride[0] + a * dil[0], j * stride[1] + e * dil[1]] * w[o, c, a, e]
        out[bb, o, i, j] = acc + (0 if b is None else b[o])
    return out


def convT_loops(x, w, b, stride, pad, opad, dil, groups):
    B, C, H, W = x.shape
    _, og, kh, kw = w.shape
    cg = C // groups
    Ho = (H - 1) * stride[0] - 2 * pad[0] + dil[0] * (kh - 1) + opad[0] + 1
    Wo = (W - 1) * stride[1] - 2 * pad[1] + dil[1] * (kw - 1) + opad[1] + 1
    out = np.zeros((B, og * groups, Ho, Wo))
    for bb, c, i, j in itertools.product(range(B), range(C), range(H), range(W)):
        g = c // cg
        for o in range(og):
            for a in range(kh):
                for e in range(kw):
                    y, z = i * stride[0] - pad[0] + a * dil[0], j * stride[1] - pad[1] + e * dil[1]
                    if 0 <= y < Ho and 0 <= z < Wo:
                        out[bb, g * og + o, y, z] += x[bb, c, i, j] * w[c, o, a, e]
    if b is not None:
        out += b[None, :, None, None]
    return out


rng = np.random.default_rng(0)


@pytest.mark.parametrize("stride,pads,dil,groups,k,bias", [
    ((1, 1), (1, 1, 1, 1), (1, 1), 1, 3, False), ((2, 2), (1, 1, 1, 1), (1, 1), 1, 3, True),
    ((1, 2), (0, 2, 1, 0), (2, 1), 1, 3, False), ((1, 1), (0, 0, 0, 0), (1, 1), 2, 1, True),
    ((2, 1), (2, 2, 2, 2), (2, 2), 4, 3, True), ((3, 3), (0, 0, 0, 0), (1, 1), 1, 2, False)])
def test_conv2d_matches_loops(stride, pads, dil, groups, k, bias):
    x = (rng.random((2, 4, 9, 8)) < 0.3).astype(float)
    w = rng.standard_normal((4, 4 // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32) if bias else None
    assert_close(ops.conv2d(x, w, b, stride, pads, dil, groups), conv_loops(x, w.astype(float), b, stride, pads, dil, groups))


def test_conv2d_gives_numpy_tensordots_bits():
    """The window matrix comes from a kernel (refsim.kernels.windows); the product must stay the one
    np.tensordot computes from NumPy's own copy of the sliding-window view, bit for bit, on values
    whose sums round (any stride, padding, dilation, groups, several threads)."""
    from numpy.lib.stride_tricks import sliding_window_view
    rng = np.random.default_rng(11)
    for _ in range(60):
        groups = int(rng.choice([1, 2, 3]))
        cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        kh, kw, sh, sw, dh, dw = (int(v) for v in rng.integers(1, [5, 5, 3, 3, 3, 3]))
        pt, pb, pl, pr = (int(v) for v in rng.integers(0, 3, 4))
        x = rng.standard_normal((int(rng.integers(1, 4)), cin, int(rng.integers(dh * (kh - 1) + 1, 12)),
                                 int(rng.integers(dw * (kw - 1) + 1, 12)))) * 10.0 ** rng.integers(-3, 6)
        w = rng.standard_normal((cout, cin // groups, kh, kw)).astype(np.float32)
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
        cg, og = cin // groups, cout // groups
        want = np.concatenate([np.tensordot(win[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og].astype(np.float64),
                                            axes=([1, 4, 5], [1, 2, 3])) for g in range(groups)], axis=3)
        got = ops.conv2d(x, w, None, (sh, sw), (pt, pb, pl, pr), (dh, dw), groups)
        assert got.tobytes() == np.ascontiguousarray(want.transpose(0, 3, 1, 2)).tobytes()


def test_conv2d_matches_scipy_correlate():
    x = rng.random((1, 3, 12, 10))
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    out = ops.conv2d(x, w, None, (1, 1), (1, 1, 1, 1))
    for o in range(2):
        ref = sum(signal.correlate2d(x[0, c], w[o, c].astype(float), mode="same") for c in range(3))
        assert_close(out[0, o], ref)


def test_conv2d_binary_spikes_exact_in_float64():
    """Binary spikes times float32 weights: float64 sums of a few hundred terms are exact, so two
    summation orders agree bit for bit (docs/architecture.md, 'rules that keep it a reference')."""
    x = (rng.random((1, 16, 10, 10)) < 0.5).astype(float)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    assert_close(ops.conv2d(x, w, None, (1, 1), (1, 1, 1, 1)),
                 conv_loops(x, w.astype(float), None, (1, 1), (1, 1, 1, 1), (1, 1), 1), exact=True)


@pytest.mark.parametrize("stride,pad,opad,dil,groups,k", [
    ((2, 2), (0, 0), (0, 0), (1, 1), 1, 2), ((2, 2), (1, 1), (1, 1), (1, 1), 1, 3),
    ((1, 1), (1, 0), (0, 0), (2, 1), 1, 3), ((3, 2), (1, 1), (2, 1), (1, 1), 2, 3)])
def test_conv_transpose2d_matches_loops(stride, pad, opad, dil, groups, k):
    x = (rng.random((2, 4, 5, 4)) < 0.4).astype(float)
    w = rng.standard_normal((4, 6 // groups if groups == 1 else 3, k, k)).astype(np.float32)
    b = rng.standard_normal(w.shape[1] * groups).astype(np.float32)
    assert_close(ops.conv_transpose2d(x, w, b, stride, pad, opad, dil, groups),
                 convT_loops(x, w.astype(float), b, stride, pad, opad, dil, groups))


@pytest.mark.parametrize("k,s,p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 0))])
def test_pools_match_loops(k, s, p):
    x = rng.random((2, 3, 7, 8))
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    Ho = (7 + 2 * p[0] - k[0]) // s[0] + 1
    Wo = (8 + 2 * p[1] - k[1]) // s[1] + 1
    ref = np.zeros((2, 3, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            ref[:, :, i, j] = xp[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]].sum(axis=(2, 3))
    assert_close(ops.sum_pool2d(x, k, s, p), ref)
    assert_close(ops.avg_pool2d(x, k, s, p), ref / (k[0] * k[1]))


def test_upsample_nearest():
    x = rng.random((1, 2, 3, 4))
    out = ops.upsample_nearest(x, (2, 3))
    for i in range(6):
        for j in range(12):
            assert out[0, 1, i, j] == x[0, 1, i // 2, j // 3]


def test_linear():
    x = rng.random((3, 5))
    w = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    ref = np.array([[sum(x[i, k] * float(w[j, k]) for k in range(5)) + float(b[j]) for j in range(4)] for i in range(3)])
    assert_close(ops.linear(x, w, b), ref)


def test_flatten_concat_scale_nodes():
    """Flatten is torch's flatten(1) (C order); Concat follows input order; Scale per channel."""
    from refsim.graph import Concat, Flatten, Scale
    x = rng.random((2, 3, 2, 2))
    y = rng.random((2, 1, 2, 2))
    f = Flatten("f", ["a"]).forward([x])
    for b in range(2):
        assert list(f[b]) == [x[b, c, i, j] for c in range(3) for i in range(2) for j in range(2)]
    cat = Concat("c", ["a", "b"]).forward([x, y])
    assert_close(cat[:, :3], x, exact=True)
    assert_close(cat[:, 3:], y, exact=True)
    s = Scale("s", ["a"], np.array([1.0, 2.0, 0.5], np.float32)).forward([x])
    assert_close(s, x * np.array([1.0, 2.0, 0.5])[None, :, None, None], exact=True)
