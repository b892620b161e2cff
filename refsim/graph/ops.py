"""Dense NumPy reference implementations of the layers, batched (B, C, H, W), float64.

These are the oracle's arithmetic: inputs and float32 weights are widened to float64 before
any product, and every layer is tested against an independent implementation
(``scipy.signal`` or explicit loops) in ``tests/unit/test_ops.py``.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..kernels.windows import window_matrix


def _pad(x, pads):
    pt, pb, pl, pr = pads
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def _windows(x, kernel, stride, dilation):
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = sliding_window_view(x, (ekh, ekw), axis=(2, 3))  # B, C, Ho', Wo', ekh, ekw
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def conv2d(x, weight, bias=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Cross-correlation as torch.nn.functional.conv2d; weight (Cout, Cin/groups, kh, kw)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    cout, cin_g, kh, kw = w.shape
    xp = _pad(x, pads)
    ho = (xp.shape[2] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    wo = (xp.shape[3] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        wg = w[g * cout_g:(g + 1) * cout_g]
        # np.tensordot(windows, wg, axes=([1, 4, 5], [1, 2, 3])) with its window copy built by a kernel:
        # the same operands, in the same layout, to the same dot, so the same bits (tests/unit/test_ops.py).
        # The weights stay the view tensordot makes (a reshape of the transposed kernel, often Fortran-
        # ordered, no copy): BLAS picks its kernel by the operands' layout, and some (OpenBLAS's for
        # AVX-512) sum in another order for a transposed operand, so a C-ordered copy gives other bits
        a = window_matrix(x=xp, kernel=(kh, kw), stride=stride, dilation=dilation, first_channel=g * cin_g,
                          channels=cin_g, out_hw=(ho, wo))
        bt = wg.transpose(1, 2, 3, 0).reshape(cin_g * kh * kw, cout_g)
        outs.append(np.dot(a, bt).reshape(x.shape[0], ho, wo, cout_g))  # B, Ho, Wo, cout_g
    out = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return np.ascontiguousarray(out)


def conv_transpose2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                     dilation=(1, 1), groups=1):
    """As torch.nn.functional.conv_transpose2d; weight (Cin, Cout/groups, kh, kw)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    b, cin, h, wd = x.shape
    _, cout_g, kh, kw = w.shape
    cin_g = cin // groups
    sh, sw = stride
    dh, dw = dilation
    ph, pw = padding
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((b, cout_g * groups, full_h, full_w))
    for g in range(groups):
        xg = x[:, g * cin_g:(g + 1) * cin_g]
        wg = w[g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                contrib = np.tensordot(xg, wg[:, :, i, j], axes=([1], [0])).transpose(0, 3, 1, 2)
                full[:, g * cout_g:(g + 1) * cout_g,
                     i * dh: i * dh + (h - 1) * sh + 1: sh,
                     j * dw: j * dw + (wd - 1) * sw + 1: sw] += contrib
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
    out_w = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
    out = full[:, :, ph:ph + out_h, pw:pw + out_w]
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return np.ascontiguousarray(out)


def sum_pool2d(x, kernel, stride, padding=(0, 0)):
    """Sum over each window (zero padding counts as zeros)."""
    x = np.asarray(x, dtype=np.float64)
    ph, pw = padding
    win = _windows(_pad(x, (ph, ph, pw, pw)), kernel, stride, (1, 1))
    return np.ascontiguousarray(win.sum(axis=(4, 5)))


def avg_pool2d(x, kernel, stride, padding=(0, 0)):
    """Window mean with torch's defaults (count_include_pad=True): the sum divided by kh*kw."""
    return sum_pool2d(x, kernel, stride, padding) / float(kernel[0] * kernel[1])


def upsample_nearest(x, scale):
    x = np.asarray(x, dtype=np.float64)
    return np.repeat(np.repeat(x, scale[0], axis=2), scale[1], axis=3)


def linear(x, weight, bias=None):
    out = np.asarray(x, dtype=np.float64) @ np.asarray(weight, dtype=np.float64).T
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return out
