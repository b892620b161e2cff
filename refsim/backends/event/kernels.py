"""One keyword-argument wrapper per Numba kernel of :mod:`refsim.kernels.fused`, and
:func:`choice_flags`, the one function that turns :class:`~refsim.semantics.NeuronChoices` into
the kernels' flags. The event run, the kernel tests and the benchmark all call these; the kernels'
positional argument lists are written out here only.

The per-step kernels have a ``bind_*`` form: a layer's per-run arguments are given once, by
keyword, and the returned function takes only what changes each step (the Python glue of a
low-activity step is a visible share of it). The plain form (``neuron_rows(...)`` etc.) binds and
calls once, for tests and benchmarks.

Event arrays (``events``) are the tuple ``(ex, ec, ev, rcnt, rmax)`` of :func:`row_events`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...errors import UnknownNameError
from ...kernels import fused as _F
from ...kernels.scatter import (_conv_scatter, _events_chw, _linear_scatter, prepare_conv, prepare_conv_s1,
                                prepare_conv_transpose)
from ...neurons import get_model

_COMPARISON = {">": False, ">=": True}                                   # ge
_ORDER = {"integrate-then-fire": False, "fire-then-integrate": True}     # fire_first
_RESET = {"subtract": _F.RESET_SUBTRACT, "zero": _F.RESET_ZERO, "none": _F.RESET_NONE}
_SPIKES = {"one": False, "multi": True}                                  # multi
_VALUE = {"one": False, "threshold": True}                               # val_th
_REPORT = {"post-reset": False, "pre-reset": True}                       # keep_pre (when membranes are recorded)
# reset_timing: the fused kernels run IF, ternary and multithreshold layers, which have no leak, so
# both timings give the same membranes (leaky layers run dense: refsim.backends.event.plan)
_RESET_TIMING = {"with-spike": None, "next-step": None}
FLAG_TABLES = {"comparison": _COMPARISON, "order": _ORDER, "reset": _RESET, "spikes_per_step": _SPIKES,
               "spike_value": _VALUE, "membrane_report": _REPORT, "reset_timing": _RESET_TIMING}


class NeuronFlags(NamedTuple):
    """The kernels' view of a neuron layer's choices (see :func:`choice_flags`)."""

    ge: bool
    fire_first: bool
    reset: int
    multi: bool
    ternary: bool
    has_vmin: bool
    vmin: float
    val_th: bool
    pre_reset_report: bool


def _flag(field, value):
    try:
        return FLAG_TABLES[field][value]
    except KeyError:
        raise UnknownNameError(f"{field} the event kernels implement", value, FLAG_TABLES[field]) from None


def choice_flags(model: str, choices) -> NeuronFlags:
    """The kernels' flags for neuron ``model`` under ``choices``. Every value of
    :data:`refsim.semantics.CHOICE_VALUES` has a row in :data:`FLAG_TABLES`; a value added there
    but not here raises (and the guard test ``tests/unit/test_choice_guard.py`` fails)."""
    _flag("reset_timing", choices.reset_timing)  # validated; no flag (no leak in the fused models)
    return NeuronFlags(_flag("comparison", choices.comparison), _flag("order", choices.order),
                       _flag("reset", choices.reset), _flag("spikes_per_step", choices.spikes_per_step),
                       get_model(model).signed, choices.v_min is not None,
                       0.0 if choices.v_min is None else float(choices.v_min),
                       _flag("spike_value", choices.spike_value), _flag("membrane_report", choices.membrane_report))


_DUMMY = {}


def _dummy(dtype, ndim=4):
    """A one-element placeholder for an optional array the kernel will not touch (typed like the real one)."""
    key = (np.dtype(dtype), ndim)
    d = _DUMMY.get(key)
    if d is None:
        d = _DUMMY[key] = np.zeros((1,) * ndim, dtype)
    return d


def row_events(batch, shape, dtype=np.float64):
    """Preallocated row-segmented event arrays ``(ex, ec, ev, rcnt, rmax)`` for a (C, H, W) map."""
    return _F.row_events(batch, shape, dtype)


def bind_neuron_rows(*, v, th, flags: NeuronFlags, events, rsum, scratch, vpre=None, counts=None, spikes=False):
    """:func:`refsim.kernels.fused._neuron_rows` (one step of an IF (binary, counted) or ternary
    layer, fused with event emission) with a layer's per-run arguments bound once. Returns
    ``step(cur, r0, c0, zero_cur, bias, spk)``: ``cur`` (B, R, Wb, C) input current read at offset
    (r0, c0) and zeroed as read when ``zero_cur``; ``bias`` (C,) or None; ``spk`` (B, H, W, C)
    receives each neuron's spike when ``spikes`` (else pass None).

    ``v`` (B, H, W, C) membranes, updated in place; ``vpre`` receives the pre-reset membranes when
    given; ``counts`` (B, H, W, C) int64 += |spikes|; ``scratch`` (B * H, W, C + 1) uint8."""
    kernel, nobias, nospk = _F._neuron_rows, _dummy(v.dtype, 1), _dummy(np.int8)
    mid = _neuron_args(v, th, flags, events, rsum, vpre, counts)

    def step(cur, r0, c0, zero_cur, bias, spk):
        kernel(cur, r0, c0, zero_cur, nobias if bias is None else bias, bias is not None, *mid,
               nospk if spk is None else spk, spk is not None, scratch)
    return step


def neuron_rows(*, cur, v, th, flags: NeuronFlags, events, rsum, scratch, r0=0, c0=0, zero_cur=False, bias=None,
                vpre=None, counts=None, spikes=None):
    """One call of :func:`bind_neuron_rows`'s step, all arguments by keyword (tests, benchmarks)."""
    bind_neuron_rows(v=v, th=th, flags=flags, events=events, rsum=rsum, scratch=scratch, vpre=vpre,
                     counts=counts)(cur, r0, c0, zero_cur, bias, spikes)


def _neuron_args(v, th, flags, events, rsum, vpre, counts):
    """The neuron layer's per-run arguments of the IF/ternary kernels, in their positional order."""
    ex, ec, ev, rcnt, rmax = events
    dt = v.dtype
    return (v, vpre if vpre is not None else _dummy(dt), vpre is not None, th, flags.ge, flags.fire_first, flags.reset,
            flags.multi, flags.ternary, dt.type(flags.vmin), flags.has_vmin, flags.val_th, ex, ec, ev, rcnt, rsum, rmax,
            counts if counts is not None else _dummy(np.int64), counts is not None)


def _no_events(dtype):
    """An empty event part (no rows), padding a one-part input to two parts."""
    return (np.zeros((1, 0, 0), np.int32), np.zeros((1, 0, 0), np.int32), np.zeros((1, 0, 0), dtype),
            np.zeros((1, 0), np.int64))


def _slp_on_first_call(fn):
    """``fn`` whose first call (the one that may compile the kernel it calls) runs inside
    :func:`refsim.kernels.fused.slp_vectorize`; later calls go straight through."""
    first = [True]

    def call(*args, **kw):
        if first[0]:
            first[0] = False
            with _F.slp_vectorize():
                return fn(*args, **kw)
        return fn(*args, **kw)
    return call


def binary_values(x) -> bool:
    """Whether every value of the dense map ``x`` is 0 or 1 (binary spikes), so that its events may
    be scattered as unit-valued (weights added without the multiply)."""
    return bool(np.all((x == 0.0) | (x == 1.0)))


def _bind_fused_synaptic(kernel, head, v, mid, scratch):
    nobias, nospk = _dummy(v.dtype, 1), _dummy(np.int8)
    empty = (_no_events(v.dtype), 0)

    def step(parts, bias, spk):
        # at least two parts, so one compiled kernel serves plain inputs and two-way concatenations
        # (Numba compiles once per tuple length; an empty part adds nothing)
        parts = list(parts) + [empty] * (2 - len(parts))
        kernel(tuple(p[0][0] for p in parts), tuple(p[0][1] for p in parts), tuple(p[0][2] for p in parts),
               tuple(p[0][3] for p in parts), np.array([p[1] for p in parts], np.int64),
               np.array([len(p) > 2 and bool(p[2]) for p in parts], np.bool_), *head,
               nobias if bias is None else bias, bias is not None, *mid, nospk if spk is None else spk,
               spk is not None, scratch)
    return _slp_on_first_call(step)


def bind_conv_neuron_rows(*, weights, pad_top, pad_left, buffer_width, v, th, flags: NeuronFlags, events, rsum,
                          scratch, vpre=None, counts=None):
    """:func:`refsim.kernels.fused._conv_neuron_rows` (a stride-1 convolution fused with the IF or
    ternary layer it feeds) with the per-run arguments bound: the flipped kernel ``weights``
    [Cin, kh, kw * Cout] (:func:`prepare_conv_s1`), the padding, the row buffer's width in pixels,
    and the neuron layer's arguments as in :func:`bind_neuron_rows`. Returns
    ``step(parts, bias, spk)``: ``parts`` is a list of ``(events, first channel)`` or ``(events,
    first channel, unit)``, one per part of the input (a channel concatenation has several), where
    ``unit`` says that every event value of the part is 1.0 (binary spikes: the kernel then adds
    weights without multiplying; default False); ``bias`` (Cout,) or None; ``spk`` as in
    :func:`bind_neuron_rows`."""
    head = (weights, int(pad_top), int(pad_left), int(buffer_width), _F.block_width(weights.shape[2]))
    return _bind_fused_synaptic(_F._conv_neuron_rows, head, v, _neuron_args(v, th, flags, events, rsum, vpre, counts),
                                scratch)


def conv_neuron_rows(*, parts, weights, pad_top, pad_left, buffer_width, v, th, flags: NeuronFlags, events, rsum,
                     scratch, bias=None, vpre=None, counts=None, spikes=None):
    """One call of :func:`bind_conv_neuron_rows`'s step, all arguments by keyword (tests, benchmarks)."""
    bind_conv_neuron_rows(weights=weights, pad_top=pad_top, pad_left=pad_left, buffer_width=buffer_width, v=v, th=th,
                          flags=flags, events=events, rsum=rsum, scratch=scratch, vpre=vpre,
                          counts=counts)(parts, bias, spikes)


def bind_convt_neuron_rows(*, weights, stride, padding, dilation, cin_per_group, in_width, v, th, flags: NeuronFlags,
                           events, rsum, scratch, vpre=None, counts=None):
    """:func:`refsim.kernels.fused._convt_neuron_rows` (a transposed convolution fused with the IF
    or ternary layer it feeds; ``weights`` [Cin, kh, kw, Cout/groups] from
    :func:`prepare_conv_transpose`; ``in_width`` the input's width) with the per-run arguments
    bound. Returns ``step(parts, bias, spk)`` as :func:`bind_conv_neuron_rows` does."""
    kw, wo = weights.shape[2], v.shape[2]
    width = max((int(in_width) - 1) * int(stride[1]) + (kw - 1) * int(dilation[1]) + 1, wo + int(padding[1]), 1)
    runs = weights.shape[3] == v.shape[3] and int(dilation[1]) == 1  # the kernel's contiguous-run case
    head = (weights, int(stride[0]), int(stride[1]), int(padding[0]), int(padding[1]), int(dilation[0]),
            int(dilation[1]), int(cin_per_group), width, _F.block_width(kw * weights.shape[3]) if runs else 0)
    return _bind_fused_synaptic(_F._convt_neuron_rows, head, v, _neuron_args(v, th, flags, events, rsum, vpre, counts),
                                scratch)


def convt_neuron_rows(*, parts, weights, stride, padding, dilation, cin_per_group, in_width, v, th, flags: NeuronFlags,
                      events, rsum, scratch, bias=None, vpre=None, counts=None, spikes=None):
    """One call of :func:`bind_convt_neuron_rows`'s step, all arguments by keyword (tests, benchmarks)."""
    bind_convt_neuron_rows(weights=weights, stride=stride, padding=padding, dilation=dilation,
                           cin_per_group=cin_per_group, in_width=in_width, v=v, th=th, flags=flags, events=events, rsum=rsum,
                           scratch=scratch, vpre=vpre, counts=counts)(parts, bias, spikes)


def bind_mt_rows(*, v, levels, flags: NeuronFlags, events, rsum, vpre=None, counts=None):
    """:func:`refsim.kernels.fused._mt_rows` (one step of a multi-threshold layer fused with event
    emission) with per-run arguments bound; ``levels`` (C, n_levels) are the levels times each
    channel's threshold, high to low. Returns ``step(cur, r0, c0, zero_cur, bias, spk)``; ``spk``
    receives uint8 level masks."""
    ex, ec, ev, rcnt, rmax = events
    dt = v.dtype
    kernel, nobias, nospk = _F._mt_rows, _dummy(dt, 1), _dummy(np.uint8)
    mid = (v, vpre if vpre is not None else _dummy(dt), vpre is not None, levels, flags.ge, flags.fire_first,
           flags.reset, dt.type(flags.vmin), flags.has_vmin, ex, ec, ev, rcnt, rsum, rmax,
           counts if counts is not None else _dummy(np.int64), counts is not None)

    def step(cur, r0, c0, zero_cur, bias, spk):
        kernel(cur, r0, c0, zero_cur, nobias if bias is None else bias, bias is not None, *mid,
               nospk if spk is None else spk, spk is not None)
    return step


def mt_rows(*, cur, v, levels, flags: NeuronFlags, events, rsum, r0=0, c0=0, zero_cur=False, bias=None, vpre=None,
            counts=None, spikes=None):
    """One call of :func:`bind_mt_rows`'s step, all arguments by keyword."""
    bind_mt_rows(v=v, levels=levels, flags=flags, events=events, rsum=rsum, vpre=vpre,
                 counts=counts)(cur, r0, c0, zero_cur, bias, spikes)


def bind_conv_s1_rows(*, buf, weights, pad_top, pad_left, bands=1):
    """:func:`refsim.kernels.fused._conv_s1_rows` (stride-1 convolution scattered into the halo
    buffer ``buf`` (B, R, Wb, Cout), flipped kernel ``weights`` [Cin, kh, kw * Cout] from
    :func:`prepare_conv_s1`) bound to a layer. Returns ``scatter(events, channel_offset, unit=False)``
    (``unit``: every event value is 1.0, so weights are added without the multiply)."""
    B, R, Wb, cout = buf.shape
    flat = buf.reshape(B, R, Wb * cout)
    kernel = _F._conv_s1_rows
    bw = _F.block_width(weights.shape[2])

    def scatter(events, channel_offset, unit=False):
        kernel(flat, events[0], events[1], events[2], events[3], weights, pad_top, pad_left, cout, channel_offset, bands,
               bw, bool(unit))
    return _slp_on_first_call(scatter)


def conv_s1_rows(*, buf, events, weights, pad_top, pad_left, channel_offset=0, bands=1, unit=False):
    """One call of :func:`bind_conv_s1_rows`'s scatter, all arguments by keyword."""
    bind_conv_s1_rows(buf=buf, weights=weights, pad_top=pad_top, pad_left=pad_left, bands=bands)(events, channel_offset,
                                                                                                    unit)


def bind_conv_transpose_rows(*, buf, weights, stride, padding, dilation, out_hw, cin_per_group, offset=(0, 0)):
    """:func:`refsim.kernels.fused._conv_transpose_rows` (transposed convolution scattered into
    ``buf`` (B, R, Wb, Cout), output pixel (oy, ox) at ``buf[b, oy + offset[0], ox + offset[1]]``;
    ``weights`` [Cin, kh, kw, Cout/groups]) bound to a layer. Returns ``scatter(events, channel_offset)``."""
    kernel = _F._conv_transpose_rows
    geo = (weights, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], offset[0], offset[1],
           out_hw[0], out_hw[1])

    def scatter(events, channel_offset):
        kernel(buf, events[0], events[1], events[2], events[3], *geo, channel_offset, cin_per_group)
    return scatter


def conv_transpose_rows(*, buf, events, weights, stride, padding, dilation, out_hw, offset=(0, 0), channel_offset=0,
                        cin_per_group):
    """One call of :func:`bind_conv_transpose_rows`'s scatter, all arguments by keyword."""
    bind_conv_transpose_rows(buf=buf, weights=weights, stride=stride, padding=padding, dilation=dilation, out_hw=out_hw,
                             cin_per_group=cin_per_group, offset=offset)(events, channel_offset)


def bind_pool_rows(*, out, kernel, stride, padding):
    """:func:`refsim.kernels.fused._pool_rows` (sum pooling scattered into channels-last ``out``
    (B, Ho, Wo, C)) bound to a layer. Returns ``scatter(events, channel_offset)``."""
    k = _F._pool_rows
    geo = (kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1])

    def scatter(events, channel_offset):
        k(out, events[0], events[1], events[2], events[3], *geo, channel_offset)
    return scatter


def pool_rows(*, out, events, kernel, stride, padding, channel_offset=0):
    """One call of :func:`bind_pool_rows`'s scatter, all arguments by keyword."""
    bind_pool_rows(out=out, kernel=kernel, stride=stride, padding=padding)(events, channel_offset)


def rows_from_nhwc(*, a, events, divide_by=1.0, zero=False):
    """Events of a channels-last map ``a`` (B, H, W, C), each value divided by ``divide_by``;
    ``a`` is zeroed as it is read when ``zero`` (:func:`refsim.kernels.fused._rows_from_nhwc`)."""
    ex, ec, ev, rcnt, rmax = events
    _F._rows_from_nhwc(a, zero, a.dtype.type(divide_by), ex, ec, ev, rcnt, rmax)


def rows_from_nchw(*, a, events):
    """Events of a (B, C, H, W) map (read in place through a channels-last view)."""
    rows_from_nhwc(a=a.transpose(0, 2, 3, 1), events=events)


def fanout_sums(*, events, fanout, channel_offset=0, n_events, n_ops):
    """Add, per sample, the events of ``events`` and the sum of their fan-outs ``fanout`` (C, H, W)
    int64 to ``n_events`` and ``n_ops`` (B,) int64 (:func:`refsim.kernels.fused._fanout_rows`)."""
    ex, ec, _, rcnt, _ = events
    _F._fanout_rows(ex, ec, rcnt, fanout, channel_offset, n_events, n_ops)


def rows_to_nchw(*, out, events, channel_offset=0):
    """Write events into a zeroed (B, C, H, W) map ``out`` from channel ``channel_offset`` on."""
    ex, ec, ev, rcnt, _ = events
    _F._rows_to_nchw(out, ex, ec, ev, rcnt, channel_offset)


def rows_add_nchw(*, out, events):
    """Add events' values into a float64 (B, C, H, W) map ``out`` (a neuron layer's total value sent)."""
    ex, ec, ev, rcnt, _ = events
    _F._rows_add_nchw(out, ex, ec, ev, rcnt)


# -- dense in, dense out: the layers the fused pipeline leaves out, and the kernel tests ---------


def events_hwc(x_chw: np.ndarray):
    """Events of one sample's (C, H, W) map, in raster (y, x, c) order: (ys, xs, cs, values)."""
    a = np.ascontiguousarray(x_chw, dtype=np.float64)
    size = a.size
    ys, xs, cs = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
    vs = np.empty(size, np.float64)
    n = _events_chw(a, ys, xs, cs, vs)
    return ys[:n], xs[:n], cs[:n], vs[:n]


def _add_bias(res, bias):
    if bias is not None:
        res += bias.astype(np.float64).reshape((1, -1) + (1,) * (res.ndim - 2))
    return res


def conv2d_events(x, node, weights, out_shape):
    """Event convolution with any stride, padding, dilation and groups, one sample at a time:
    x (B, C, H, W) -> (B, Cout, Ho, Wo); ``weights`` from :func:`prepare_conv`; the bias is added
    after the sums, as the dense reference does."""
    B = x.shape[0]
    cout, ho, wo = out_shape
    cin_g, cout_g = node.weight.shape[1], cout // node.groups
    res = np.empty((B, cout, ho, wo))
    for b in range(B):
        out = np.zeros((ho, wo, cout))
        ys, xs, cs, vs = events_hwc(x[b])
        _conv_scatter(out, ys, xs, cs, vs, weights, node.stride[0], node.stride[1], node.pads[0], node.pads[2],
                      node.dilation[0], node.dilation[1], cin_g, cout_g)
        res[b] = out.transpose(2, 0, 1)
    return _add_bias(res, node.bias)


def linear_events(x, node, weights):
    """Event linear layer: x (B, F) -> (B, out); ``weights`` is W.T in float64."""
    B = x.shape[0]
    res = np.zeros((B, weights.shape[1]))
    for b in range(B):
        (idx,) = np.nonzero(x[b])
        _linear_scatter(res[b], idx.astype(np.int64), x[b, idx].astype(np.float64), weights)
    return _add_bias(res, node.bias)


def dense_events(x):
    """Row-segmented events of a dense (B, C, H, W) map (float64), for the ``events=`` argument of
    the dense-in, dense-out wrappers below (one conversion serving several layers)."""
    events = row_events(x.shape[0], x.shape[1:])
    a = np.ascontiguousarray(x, dtype=np.float64)
    rows_from_nchw(a=a if a.flags.writeable else a.copy(), events=events)  # a memory-mapped trace is read-only
    return events


def conv_transpose2d_events(x, node, weights, out_shape, events=None):
    """The fused pipeline's transposed convolution, dense in and out (``events``: x's, if made already)."""
    cout, ho, wo = out_shape
    buf = np.zeros((x.shape[0], ho, wo, cout))
    conv_transpose_rows(buf=buf, events=dense_events(x) if events is None else events, weights=weights,
                        stride=node.stride, padding=node.padding,
                        dilation=node.dilation, out_hw=(ho, wo), cin_per_group=node.weight.shape[0] // node.groups)
    return _add_bias(np.ascontiguousarray(buf.transpose(0, 3, 1, 2)), node.bias)


def pool_events(x, node, out_shape, average, events=None):
    """The fused pipeline's sum or average pooling, dense in and out (``events``: x's, if made already)."""
    c, ho, wo = out_shape
    out = np.zeros((x.shape[0], ho, wo, c))
    pool_rows(out=out, events=dense_events(x) if events is None else events, kernel=node.kernel_size,
              stride=node.stride, padding=node.padding)
    res = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    if average:
        res /= float(node.kernel_size[0] * node.kernel_size[1])
    return res


def conv2d_events_s1(x, node, weights, out_shape, events=None):
    """The fused pipeline's stride-1 halo-buffer convolution, dense in and out (``events``: x's, if
    made already)."""
    B, _, H, W = x.shape
    cout, ho, wo = out_shape
    kh, kw = node.weight.shape[2:]
    pt, pl = node.pads[0], node.pads[2]
    R, Wb = max(H + pt, ho) + kh - 1, max(W + pl, wo) + kw - 1
    buf = np.zeros((B, R, Wb, cout))
    conv_s1_rows(buf=buf, events=dense_events(x) if events is None else events, weights=weights, pad_top=pt,
                 pad_left=pl, unit=binary_values(x))
    res = np.ascontiguousarray(buf[:, kh - 1:kh - 1 + ho, kw - 1:kw - 1 + wo].transpose(0, 3, 1, 2))
    return _add_bias(res, node.bias)


__all__ = ["fanout_sums", "NeuronFlags", "choice_flags", "row_events", "neuron_rows", "mt_rows", "conv_s1_rows", "conv_transpose_rows",
           "pool_rows", "bind_neuron_rows", "bind_conv_neuron_rows", "conv_neuron_rows", "bind_convt_neuron_rows", "convt_neuron_rows", "bind_mt_rows", "bind_conv_s1_rows", "bind_conv_transpose_rows",
           "bind_pool_rows", "rows_from_nhwc", "rows_from_nchw", "rows_to_nchw", "events_hwc", "conv2d_events",
           "linear_events", "dense_events", "conv_transpose2d_events", "pool_events", "conv2d_events_s1", "prepare_conv",
           "prepare_conv_s1", "prepare_conv_transpose"]
