"""Per-run state of the event backend and its step functions (:class:`EventRun`).

Values flowing between nodes are one of

* a dense ``(B, C, H, W)`` float64 array (what the reference backend passes everywhere);
* :class:`EventMap`: one layer's spikes of this step as row-segmented events, channels-last
  (:mod:`refsim.kernels.fused`), or :class:`EventCat`, a channel concatenation of those;
* :class:`HaloCurrent`: the summed input current of a layer, left in the channels-last halo
  buffer its convolution scattered into, so the neuron pass reads (and zeroes) it in place;
* :class:`PendingConv`: a convolution the plan fused with the neuron layer it feeds; the neuron
  pass computes it row by row.

What runs how is the plan's decision (:mod:`.plan`); this module only carries it out. The one
exception is a runtime guard: a scatter whose input exceeds the magnitude its exactness proof
assumed (many spikes in one step under ``spikes_per_step="multi"``) runs that step dense.
"""
from __future__ import annotations

import numpy as np

from . import kernels as K
from ..base import Run, dense
from ...neurons import get_model


class EventMap:
    __slots__ = ("events", "shape", "unit", "_dense")

    def __init__(self, events, shape, unit=False):
        self.events = events  # (ex, ec, ev, rcnt, rmax)
        self.shape = shape
        self.unit = unit      # every value is 1.0 (a binary IF layer's spikes), so kernels may skip the multiply
        self._dense = None

    def vmax(self):
        rmax = self.events[4]
        return float(rmax.max()) if rmax.size else 0.0

    def parts(self):
        return [(self, 0)]

    def fanout_sums(self, fanout):
        """``(events, synaptic operations)`` per sample of this step's events into a layer whose
        input neuron (c, y, x) has fan-out ``fanout[c, y, x]`` (no dense copy; as counting the
        non-zeros of :meth:`dense`)."""
        return _fanout_sums(self.parts(), fanout)

    def dense(self):
        if self._dense is None:
            C, H, W = self.shape
            out = np.zeros((self.events[3].shape[0], C, H, W))
            K.rows_to_nchw(out=out, events=self.events)
            self._dense = out
        return self._dense


class EventCat:
    __slots__ = ("items", "shape", "_dense")

    def __init__(self, items, shape):
        self.items = items  # [(EventMap, channel offset)]
        self.shape = shape
        self._dense = None

    def vmax(self):
        return max(m.vmax() for m, _ in self.items)

    def parts(self):
        return self.items

    def fanout_sums(self, fanout):
        """As :meth:`EventMap.fanout_sums`, over every part."""
        return _fanout_sums(self.items, fanout)

    def dense(self):
        if self._dense is None:
            C, H, W = self.shape
            out = np.zeros((self.items[0][0].events[3].shape[0], C, H, W))
            for m, off in self.items:
                K.rows_to_nchw(out=out, events=m.events, channel_offset=off)
            self._dense = out
        return self._dense


def _fanout_sums(parts, fanout):
    B = parts[0][0].events[3].shape[0]
    n_events, n_ops = np.zeros(B, np.int64), np.zeros(B, np.int64)
    for m, off in parts:
        K.fanout_sums(events=m.events, fanout=fanout, channel_offset=off, n_events=n_events, n_ops=n_ops)
    return n_events, n_ops


class HaloCurrent:
    __slots__ = ("buf", "r0", "c0", "shape", "bias", "zero_ok", "consumed", "_dense")

    def __init__(self, buf, r0, c0, shape, bias, zero_ok):
        self.buf, self.r0, self.c0, self.shape, self.bias = buf, r0, c0, shape, bias
        self.zero_ok = zero_ok
        self.consumed = False
        self._dense = None

    def dense(self):
        if self._dense is None:
            C, H, W = self.shape
            x = self.buf[:, self.r0:self.r0 + H, self.c0:self.c0 + W, :].transpose(0, 3, 1, 2)
            x = np.ascontiguousarray(x)
            if self.bias is not None:
                x += self.bias[None, :, None, None]
            self._dense = x
        return self._dense


class PendingConv:
    """A convolution planned to run inside the pass of the neuron layer it feeds
    (``conv_neuron_rows``, ``convt_neuron_rows``): its input events, computed there. Anything else
    that asks for its value gets it scattered into the layer's buffer, as unfused."""

    __slots__ = ("run", "node", "src", "shape", "halo")

    def __init__(self, run, node, src, shape):
        self.run, self.node, self.src, self.shape = run, node, src, shape
        self.halo = None

    def materialize(self) -> "HaloCurrent":
        if self.halo is None:
            unfused = self.run._conv_s1 if self.node.TYPE == "Conv2d" else self.run._conv_transpose
            self.halo = unfused(self.node, self.src, self.shape)
        return self.halo

    def dense(self):
        return self.materialize().dense()


def is_events(val):
    return isinstance(val, (EventMap, EventCat))


class _FusedLayer:
    """A fused neuron layer's per-run arguments, computed once (Python glue is a visible share of a
    low-activity step)."""

    def __init__(self, run, name):
        g, p, tr, dt, B = run.g, run.params[name], run.tr, run.dt, run.B
        node = g[name]
        C, H, W = g.shapes[name]
        self.shape = (C, H, W)
        self.mt = get_model(node.model).bitmask
        self.flags = K.choice_flags(node.model, p.choices)
        f = self.flags  # one spike of value 1 per firing neuron, nothing else
        self.unit = not (self.mt or f.multi or f.ternary or f.val_th)
        shape = (B, H, W, C)
        self.v = np.zeros(shape, dt)
        self.vpre = np.zeros(shape, dt) if (name in tr.membranes and self.flags.pre_reset_report) else None
        th = np.broadcast_to(p.threshold, (C,))
        if self.mt:  # levels x per-channel scale, exact in float64
            levels = np.asarray(p.levels, dtype=np.float64)
            self.th = np.ascontiguousarray(np.asarray(th, np.float64)[:, None] * levels[None, :], dtype=dt)
        else:
            self.th = np.ascontiguousarray(th, dtype=dt)
        self.scratch = np.zeros((B * H, W, C + 1), np.uint8)
        self.events = run.event_arrays(name, (C, H, W))
        self.rsum = np.empty((B, H), np.int64)
        self.counts = tr.counts[name].transpose(0, 2, 3, 1) if name in tr.counts else None
        self.step_counts = tr.step_counts[name]
        self.values = tr.values.get(name)
        self.spikes = tr.spikes.get(name)
        self.membranes = tr.membranes.get(name)
        self.nhwc = (None, None)  # (dense input array, its channels-last copy)
        self.conv_step = self.conv_bias = None  # bound on first use when the input convolution runs fused
        if self.mt:
            self.step = K.bind_mt_rows(v=self.v, levels=self.th, flags=self.flags, events=self.events, rsum=self.rsum,
                                       vpre=self.vpre, counts=self.counts)
        else:
            self.step = K.bind_neuron_rows(v=self.v, th=self.th, flags=self.flags, events=self.events, rsum=self.rsum,
                                           scratch=self.scratch, vpre=self.vpre, counts=self.counts)


class EventRun(Run):
    """The event backend's run: fused neuron passes, scatters, event concatenations; the rest is
    the dense path of :class:`~refsim.backends.base.Run`."""

    def __init__(self, backend, batch, traces, plan):
        super().__init__(backend, batch, traces, plan)
        self.dt = np.dtype(backend.dtype)
        self.nbands = backend.bands
        self._layers = {}     # fused neuron -> _FusedLayer
        self._bufs = {}       # conv / pool node -> its buffer
        self._kern = {}       # conv / pool node -> its bound scatter kernel
        self._last = {}       # conv node -> HaloCurrent of the previous step
        self._events = {}     # node -> preallocated row-segmented event arrays
        self._bias = {}       # conv node -> (bias in the run's dtype or None, may the neuron pass zero the buffer)
        self._w = {n: w.astype(self.dt) for n, w in backend.prepared.items()}
        self._fused = {n for n, p in plan.items() if p.how == "fused"}
        self._scatter = {n: p for n, p in plan.items() if p.how == "scatter"}

    # -- neurons ------------------------------------------------------------------------------

    def neuron(self, name, val, t):
        if name not in self._fused:
            return super().neuron(name, val, t)
        a = self._layers.get(name)
        if a is None:
            a = self._layers[name] = _FusedLayer(self, name)
        if isinstance(val, PendingConv):
            if val.halo is None:
                return self._conv_neuron(a, name, val, t)
            val = val.halo
        if isinstance(val, HaloCurrent):
            cur, r0, c0, bias, zero = val.buf, val.r0, val.c0, val.bias, val.zero_ok
            val.consumed = zero
        else:
            x = dense(val)
            src, cur = a.nhwc
            if src is not x:
                cur = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=self.dt)
                a.nhwc = (x, cur)
            r0 = c0 = 0
            bias, zero = None, False
        a.step(cur, r0, c0, zero, bias, a.spikes[t].transpose(0, 2, 3, 1) if a.spikes is not None else None)
        return self._emitted(a, t)

    def _emitted(self, a, t):
        a.step_counts[t] = a.rsum.sum(axis=1)
        if a.values is not None:  # each event's value is what the neuron sent (emitted)
            K.rows_add_nchw(out=a.values, events=a.events)
        if a.membranes is not None:
            a.membranes[t] = (a.vpre if a.vpre is not None else a.v).transpose(0, 3, 1, 2)
        return EventMap(a.events, a.shape, a.unit)

    def _conv_neuron(self, a, name, pending, t):
        """The convolution ``pending`` and neuron layer ``name`` in one pass (``conv_neuron_rows``)."""
        node = pending.node
        if a.conv_step is None:
            layer = dict(v=a.v, th=a.th, flags=a.flags, events=a.events, rsum=a.rsum, scratch=a.scratch, vpre=a.vpre,
                         counts=a.counts)
            if node.TYPE == "Conv2d":
                kw = node.weight.shape[3]
                pl = node.pads[2]
                a.conv_step = K.bind_conv_neuron_rows(weights=self._w[node.name], pad_top=node.pads[0], pad_left=pl,
                                                      buffer_width=max(pending.src.shape[2] + pl, pending.shape[2]) + kw - 1,
                                                      **layer)
            else:
                a.conv_step = K.bind_convt_neuron_rows(weights=self._w[node.name], stride=node.stride,
                                                       padding=node.padding, dilation=node.dilation,
                                                       cin_per_group=node.weight.shape[0] // node.groups,
                                                       in_width=pending.src.shape[2], **layer)
            a.conv_bias = None if node.bias is None else node.bias.astype(self.dt)
        a.conv_step([(m.events, off, m.unit) for m, off in pending.src.parts()], a.conv_bias,
                    a.spikes[t].transpose(0, 2, 3, 1) if a.spikes is not None else None)
        return self._emitted(a, t)

    # -- synaptic layers ----------------------------------------------------------------------

    def event_arrays(self, name, shape):
        arr = self._events.get(name)
        if arr is None:
            arr = self._events[name] = K.row_events(self.B, shape, self.dt)
        return arr

    def _as_events(self, name, val):
        """Event view of an input value (dense maps are converted, with scratch arrays of ``name``)."""
        if is_events(val):
            return val
        x = np.ascontiguousarray(dense(val), dtype=np.float64)
        arrays = self.event_arrays("<in>" + name, x.shape[1:])
        K.rows_from_nchw(a=x, events=arrays)
        # binary input spikes (a Poisson or replayed 0/1 train): the scatter may skip the multiply
        return EventMap(arrays, x.shape[1:], K.binary_values(x))

    def node(self, node, vals):
        name = node.name
        p = self._scatter.get(name)
        if p is None:
            if node.TYPE == "Concat" and self.plan[name].how == "events":
                ins = [vals[i] for i in node.inputs]
                if all(is_events(v) for v in ins):
                    return self._concat(node, ins)
            return super().node(node, vals)
        x = vals[node.inputs[0]]
        if p.kernel in ("conv2d_events", "linear_events"):  # dense in, dense out
            x = dense(x)
            if x.size and np.abs(x).max() >= p.bound:  # outside the grid the exactness proof assumed
                return node.forward([x])
            if p.kernel == "linear_events":
                return K.linear_events(x, node, self.backend.prepared[name])
            return K.conv2d_events(x, node, self.backend.prepared[name], self.g.shapes[name])
        src = self._as_events(name, x)
        if src.vmax() >= p.bound:
            return node.forward([src.dense()])
        shape = self.g.shapes[name]
        if p.kernel in ("conv_neuron_rows", "convt_neuron_rows"):
            return PendingConv(self, node, src, shape)
        if p.kernel == "conv_s1_rows":
            return self._conv_s1(node, src, shape)
        if p.kernel == "conv_transpose_rows":
            return self._conv_transpose(node, src, shape)
        return self._pool(node, src, shape, node.kernel_size[0] * node.kernel_size[1] if node.TYPE == "AvgPool2d" else 1)

    def _halo_current(self, node, buf, r0, c0, shape):
        name = node.name
        if name not in self._bias:
            cons = self.g.consumers[name]
            self._bias[name] = (None if node.bias is None else node.bias.astype(self.dt),
                                len(cons) == 1 and cons[0] in self._fused)
        bias, zero_ok = self._bias[name]
        h = HaloCurrent(buf, r0, c0, shape, bias, zero_ok)
        self._last[name] = h
        return h

    def _buffer(self, name, shape, bind):
        """The layer's persistent buffer (zeroed unless the neuron pass already zeroed what it read)
        and its scatter kernel, bound to it once (``bind(buf)``)."""
        buf = self._bufs.get(name)
        if buf is None:
            buf = self._bufs[name] = np.zeros(shape, self.dt)
            self._kern[name] = bind(buf)
        else:
            last = self._last.get(name)
            if last is not None and not last.consumed:
                buf[...] = 0.0
            # else: the neuron pass zeroed the interior; the halo border only collects the terms
            # that fall in the padding, which nothing reads.
        return buf, self._kern[name]

    def _conv_s1(self, node, src, shape):
        cout, ho, wo = shape
        kh, kw = node.weight.shape[2:]
        pt, pl = node.pads[0], node.pads[2]
        _, H, W = src.shape
        R, Wb = max(H + pt, ho) + kh - 1, max(W + pl, wo) + kw - 1
        buf, scatter = self._buffer(node.name, (self.B, R, Wb, cout), lambda b: K.bind_conv_s1_rows(
            buf=b, weights=self._w[node.name], pad_top=pt, pad_left=pl, bands=self.nbands))
        for m, off in src.parts():
            scatter(m.events, off, m.unit)
        return self._halo_current(node, buf, kh - 1, kw - 1, shape)

    def _conv_transpose(self, node, src, shape):
        cout, ho, wo = shape
        buf, scatter = self._buffer(node.name, (self.B, ho, wo, cout), lambda b: K.bind_conv_transpose_rows(
            buf=b, weights=self._w[node.name], stride=node.stride, padding=node.padding, dilation=node.dilation,
            out_hw=(ho, wo), cin_per_group=node.weight.shape[0] // node.groups))
        for m, off in src.parts():
            scatter(m.events, off)
        return self._halo_current(node, buf, 0, 0, shape)

    def _pool(self, node, src, shape, div):
        C, ho, wo = shape
        out = self._bufs.get(node.name)
        if out is None:
            out = self._bufs[node.name] = np.zeros((self.B, ho, wo, C), self.dt)
            self._kern[node.name] = K.bind_pool_rows(out=out, kernel=node.kernel_size, stride=node.stride,
                                                     padding=node.padding)
        scatter = self._kern[node.name]
        for m, off in src.parts():
            scatter(m.events, off)
        arrays = self.event_arrays(node.name, shape)
        K.rows_from_nhwc(a=out, events=arrays, divide_by=div, zero=True)
        return EventMap(arrays, shape)

    def _concat(self, node, ins):
        items, off = [], 0
        for v in ins:
            for m, o in v.parts():
                items.append((m, off + o))
            off += v.shape[0]
        return EventCat(items, self.g.shapes[node.name])

    def close(self):
        self.backend.release_threads()
