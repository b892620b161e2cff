"""Event-driven propagation: each spike adds its outgoing weights to the layer's input current.

Layout: events are (y, x, c, value) in raster order of the presynaptic map; currents are
channels-last (H, W, C) so one event adds contiguous runs of output-channel weights. Weights are
laid out once per layer, widened to float64:

* Conv2d:          wT[c_in, ki, kj, c_out_in_group]
* ConvTranspose2d: w[c_in, ki, kj, c_out_in_group]
* Linear:          wT[in, out]

The sums are the same as the dense reference's in exact arithmetic, and equal bit for bit in
float64 when every partial sum is exactly representable, which ``Simulator.event_plan`` proves per
layer before a layer scatters. The event backend's per-step pipeline uses
:mod:`refsim.kernels.fused`; the dense-in, dense-out wrappers here serve the layers it leaves out
(strided and grouped convolutions, linear layers) and the kernel tests.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _conv_scatter(out, ev_y, ev_x, ev_c, ev_v, wT, sh, sw, pt, pl, dh, dw, cin_g, cout_g):
    Ho, Wo, _ = out.shape
    kh, kw = wT.shape[1], wT.shape[2]
    for e in range(ev_y.shape[0]):
        y, x, c, v = ev_y[e], ev_x[e], ev_c[e], ev_v[e]
        o0 = (c // cin_g) * cout_g
        for ki in range(kh):
            num = y + pt - ki * dh
            if num < 0 or num % sh != 0:
                continue
            oy = num // sh
            if oy >= Ho:
                continue
            for kj in range(kw):
                numx = x + pl - kj * dw
                if numx < 0 or numx % sw != 0:
                    continue
                ox = numx // sw
                if ox >= Wo:
                    continue
                row = out[oy, ox]
                wrow = wT[c, ki, kj]
                for o in range(cout_g):
                    row[o0 + o] += v * wrow[o]


@njit(cache=True)
def _linear_scatter(out, ev_i, ev_v, wT):
    n = wT.shape[1]
    for e in range(ev_i.shape[0]):
        i, v = ev_i[e], ev_v[e]
        wrow = wT[i]
        for o in range(n):
            out[o] += v * wrow[o]


# -- wrappers: coerce once, then call the kernels ---------------------------------------------

@njit(cache=True)
def _events_chw(a, ys, xs, cs, vs):
    C, H, W = a.shape
    n = 0
    for y in range(H):
        for x in range(W):
            for c in range(C):
                v = a[c, y, x]
                # branchless: always store, advance only on a spike (n <= index, so in bounds)
                ys[n] = y
                xs[n] = x
                cs[n] = c
                vs[n] = v
                n += v != 0.0
    return n


def events_hwc(x_chw: np.ndarray):
    """Events of one sample's (C, H, W) map, in raster (y, x, c) order: (ys, xs, cs, values)."""
    a = np.ascontiguousarray(x_chw, dtype=np.float64)
    size = a.size
    ys, xs, cs = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
    vs = np.empty(size, np.float64)
    n = _events_chw(a, ys, xs, cs, vs)
    return ys[:n], xs[:n], cs[:n], vs[:n]


def prepare_conv(weight: np.ndarray, groups: int) -> np.ndarray:
    """(Cout, Cin/g, kh, kw) -> [Cin, kh, kw, Cout/g] float64, C-contiguous."""
    cout, cin_g, kh, kw = weight.shape
    cout_g = cout // groups
    w = weight.astype(np.float64).reshape(groups, cout_g, cin_g, kh, kw)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1).reshape(groups * cin_g, kh, kw, cout_g))


def prepare_conv_transpose(weight: np.ndarray) -> np.ndarray:
    """(Cin, Cout/g, kh, kw) -> [Cin, kh, kw, Cout/g] float64."""
    return np.ascontiguousarray(weight.astype(np.float64).transpose(0, 2, 3, 1))


def _per_sample(x, out_shape, scatter_one, bias=None):
    """Run ``scatter_one(out_hwc, events)`` for each sample into a zeroed channels-last buffer and
    return (B, C, H, W) with the bias added after the sums (as the dense reference does)."""
    B = x.shape[0]
    cout, ho, wo = out_shape
    res = np.empty((B, cout, ho, wo))
    for b in range(B):
        out = np.zeros((ho, wo, cout))
        scatter_one(out, *events_hwc(x[b]))
        res[b] = out.transpose(2, 0, 1)
    if bias is not None:
        res += bias.astype(np.float64)[None, :, None, None]
    return res


def conv2d_events(x, node, wT, out_shape):
    """Batched event conv (any stride, padding, dilation, groups): x (B, C, H, W) -> (B, Cout, Ho, Wo)."""
    cin_g, cout_g = node.weight.shape[1], out_shape[0] // node.groups
    return _per_sample(x, out_shape, lambda out, ys, xs, cs, vs: _conv_scatter(
        out, ys, xs, cs, vs, wT, node.stride[0], node.stride[1], node.pads[0], node.pads[2],
        node.dilation[0], node.dilation[1], cin_g, cout_g), node.bias)


def _rows(x):
    """Row-segmented events (refsim.kernels.fused) of a dense (B, C, H, W) map."""
    from . import fused
    arrays = fused.row_events(x.shape[0], x.shape[1:])
    fused.rows_from_nchw(np.ascontiguousarray(x, dtype=np.float64), *arrays)
    return arrays


def conv_transpose2d_events(x, node, w, out_shape):
    """Batched event transposed conv (the event backend's kernel), dense in and out."""
    from . import fused
    cout, ho, wo = out_shape
    ex, ec, ev, rcnt, _ = _rows(x)
    buf = np.zeros((x.shape[0], ho, wo, cout))
    fused._conv_transpose_rows(buf, ex, ec, ev, rcnt, w, node.stride[0], node.stride[1], node.padding[0],
                               node.padding[1], node.dilation[0], node.dilation[1], 0, 0, ho, wo, 0,
                               node.weight.shape[0] // node.groups)
    res = np.ascontiguousarray(buf.transpose(0, 3, 1, 2))
    if node.bias is not None:
        res += node.bias.astype(np.float64)[None, :, None, None]
    return res


def pool_events(x, node, out_shape, average):
    """Batched event sum/average pooling (the event backend's kernel), dense in and out."""
    from . import fused
    c, ho, wo = out_shape
    ex, ec, ev, rcnt, _ = _rows(x)
    out = np.zeros((x.shape[0], ho, wo, c))
    fused._pool_rows(out, ex, ec, ev, rcnt, node.kernel_size[0], node.kernel_size[1], node.stride[0], node.stride[1],
                     node.padding[0], node.padding[1], 0)
    res = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    if average:
        res /= float(node.kernel_size[0] * node.kernel_size[1])
    return res


def linear_events(x, node, wT):
    B = x.shape[0]
    res = np.zeros((B, wT.shape[1]))
    for b in range(B):
        (idx,) = np.nonzero(x[b])
        _linear_scatter(res[b], idx.astype(np.int64), x[b, idx].astype(np.float64), wT)
    if node.bias is not None:
        res += node.bias.astype(np.float64)[None, :]
    return res


# -- stride 1, dilation 1, groups 1: halo layout, contiguous runs (ARCHITECTURE.md) ------------

def prepare_conv_s1(weight: np.ndarray) -> np.ndarray:
    """(Cout, Cin, kh, kw) -> (Cin, kh, kw * Cout) float64 with kw reversed."""
    cout, cin, kh, kw = weight.shape
    w = weight.astype(np.float64)[:, :, :, ::-1].transpose(1, 2, 3, 0)
    return np.ascontiguousarray(w.reshape(cin, kh, kw * cout))


def conv2d_events_s1(x, node, wF, out_shape):
    """Batched stride-1 event conv with the halo layout (the event backend's kernel,
    :func:`refsim.kernels.fused._conv_s1_rows`), dense in and out."""
    from . import fused
    B, _, H, W = x.shape
    cout, ho, wo = out_shape
    kh, kw = node.weight.shape[2:]
    pt, pl = node.pads[0], node.pads[2]
    R, Wb = max(H + pt, ho) + kh - 1, max(W + pl, wo) + kw - 1
    buf = np.zeros((B, R, Wb, cout))
    ex, ec, ev, rcnt, _ = _rows(x)
    fused._conv_s1_rows(buf.reshape(B, R, Wb * cout), ex, ec, ev, rcnt, wF, pt, pl, cout, 0, 1)
    res = np.ascontiguousarray(buf[:, kh - 1:kh - 1 + ho, kw - 1:kw - 1 + wo].transpose(0, 3, 1, 2))
    if node.bias is not None:
        res += node.bias.astype(np.float64)[None, :, None, None]
    return res
