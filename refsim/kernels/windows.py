"""The window matrix of a dense convolution (im2col), for :func:`refsim.graph.ops.conv2d`.

Row ``m = (b * Ho + oy) * Wo + ox`` of the matrix holds, at column ``(c * kh + ky) * kw + kx``,
the padded input ``x[b, c0 + c, oy * sh + ky * dh, ox * sw + kx * dw]``: exactly the C-ordered
copy NumPy's ``tensordot`` makes of the sliding-window view before its ``dot`` (the same values in
the same layout, so the product, and every bit of it, is the same). NumPy builds that copy by
iterating a six-dimensional strided view with an innermost run of ``kw`` elements; this kernel
writes each row contiguously, rows in parallel. A copy: no arithmetic, the same bits on any
thread count. ``tests/unit/test_ops.py`` checks it against NumPy's own copy.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def _window_matrix(x, kh, kw, sh, sw, dh, dw, c0, ho, wo, out):
    """Fill ``out`` (B * Ho * Wo, Cg * kh * kw) from the padded input ``x`` (B, C, Hp, Wp),
    channels ``c0 .. c0 + Cg``. Scalar indexing only: a row view taken per element would cost a
    reference-count update each."""
    cg = out.shape[1] // (kh * kw)
    for m in prange(out.shape[0]):
        b = m // (ho * wo)
        r = m - b * (ho * wo)
        oy = r // wo
        ox = r - oy * wo
        k = 0
        for c in range(cg):
            for ky in range(kh):
                for kx in range(kw):
                    out[m, k] = x[b, c0 + c, oy * sh + ky * dh, ox * sw + kx * dw]
                    k += 1


def window_matrix(*, x, kernel, stride, dilation, first_channel, channels, out_hw):
    """The (B * Ho * Wo, channels * kh * kw) float64 window matrix of the padded input ``x``
    (B, C, Hp, Wp) float64 for input channels ``first_channel .. first_channel + channels``."""
    kh, kw = kernel
    ho, wo = out_hw
    out = np.empty((x.shape[0] * ho * wo, channels * kh * kw))
    if out.size:
        _window_matrix(np.ascontiguousarray(x, dtype=np.float64), kh, kw, stride[0], stride[1], dilation[0],
                       dilation[1], first_channel, ho, wo, out)
    return out
