"""Event-driven propagation: each spike adds its outgoing weights to the layer's input current.

Layout: events are (y, x, c, value) in raster order of the presynaptic map; currents are
channels-last (H, W, C) so one event adds contiguous runs of output-channel weights. Weights are
laid out once per layer, widened to float64:

* Conv2d:          wT[c_in, ki, kj, c_out_in_group]
* ConvTranspose2d: w[c_in, ki, kj, c_out_in_group]
* Linear:          wT[in, out]

The sums are the same as the dense reference's in exact arithmetic, and equal bit for bit in
float64 when every partial sum is exactly representable, which the event plan (:mod:`refsim.exactness`) proves per
layer before a layer scatters. The event backend's per-step pipeline uses
:mod:`refsim.kernels.fused`; the kernels here serve the layers it leaves out (strided, dilated and
grouped convolutions, linear layers), through the dense-in, dense-out wrappers of
:mod:`refsim.backends.event.kernels`. The ``prepare_*`` functions lay weights out for the kernels.
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


# -- stride 1, dilation 1, groups 1: halo layout, contiguous runs (docs/architecture.md) ------------

def prepare_conv_s1(weight: np.ndarray) -> np.ndarray:
    """(Cout, Cin, kh, kw) -> (Cin, kh, kw * Cout) float64 with kw reversed."""
    cout, cin, kh, kw = weight.shape
    w = weight.astype(np.float64)[:, :, :, ::-1].transpose(1, 2, 3, 0)
    return np.ascontiguousarray(w.reshape(cin, kh, kw * cout))


def prepare_conv(weight: np.ndarray, groups: int) -> np.ndarray:
    """(Cout, Cin/g, kh, kw) -> [Cin, kh, kw, Cout/g] float64, C-contiguous (for :func:`_conv_scatter`)."""
    cout, cin_g, kh, kw = weight.shape
    cout_g = cout // groups
    w = weight.astype(np.float64).reshape(groups, cout_g, cin_g, kh, kw)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1).reshape(groups * cin_g, kh, kw, cout_g))


def prepare_conv_transpose(weight: np.ndarray) -> np.ndarray:
    """(Cin, Cout/g, kh, kw) -> [Cin, kh, kw, Cout/g] float64 (for the fused transposed-conv kernel)."""
    return np.ascontiguousarray(weight.astype(np.float64).transpose(0, 2, 3, 1))
