"""The event backend's per-step pipeline (used by :class:`refsim.simulator.Simulator`).

Values flowing between nodes are one of

* a dense ``(B, C, H, W)`` float64 array (what the reference backend passes everywhere);
* :class:`EventMap`: one layer's spikes of this step as row-segmented events, channels-last
  (:mod:`refsim.kernels.fused`), or :class:`EventCat`, a channel concatenation of those;
* :class:`HaloCurrent`: the summed input current of a layer, left in the channels-last halo
  buffer its convolution scattered into, so the neuron pass reads (and zeroes) it in place.

Spiking layers of IF, ternary and multi-threshold neurons run one fused Numba pass (update,
reset, emit events in raster order, count, record); everything the fused kernels do not cover
runs the reference code on dense arrays. Which layers scatter at all is decided by
:meth:`Simulator.event_plan` (sums provably exact in float64), so every path gives the reference's
bits.
"""
from __future__ import annotations

import numpy as np

from .kernels import fused as K
from .simulator import _halo_conv

_RESET = {"subtract": K.RESET_SUBTRACT, "zero": K.RESET_ZERO, "none": K.RESET_NONE}


class EventMap:
    __slots__ = ("ex", "ec", "ev", "rcnt", "rmax", "shape", "_dense")

    def __init__(self, arrays, shape):
        self.ex, self.ec, self.ev, self.rcnt, self.rmax = arrays
        self.shape = shape
        self._dense = None

    def vmax(self):
        return float(self.rmax.max()) if self.rmax.size else 0.0

    def parts(self):
        return [(self, 0)]

    def dense(self):
        if self._dense is None:
            C, H, W = self.shape
            out = np.zeros((self.rcnt.shape[0], C, H, W))
            K._rows_to_nchw(out, self.ex, self.ec, self.ev, self.rcnt, 0)
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

    def dense(self):
        if self._dense is None:
            C, H, W = self.shape
            out = np.zeros((self.items[0][0].rcnt.shape[0], C, H, W))
            for m, off in self.items:
                K._rows_to_nchw(out, m.ex, m.ec, m.ev, m.rcnt, off)
            self._dense = out
        return self._dense


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


def dense(val):
    return val if isinstance(val, np.ndarray) else val.dense()


def is_events(val):
    return isinstance(val, (EventMap, EventCat))


class EventEngine:
    """Per-run state of the event backend: buffers, channels-last membranes, event arrays."""

    def __init__(self, sim, batch, plan, traces, nbands):
        self.sim, self.g, self.B = sim, sim.graph, batch
        self.bounds = {n: b for n, (use, _, b) in plan.items() if use}
        self.tr = traces
        self.nbands = nbands
        self.dt = np.dtype(sim.dtype)
        self._w = {}          # synaptic node -> prepared weights in the run's dtype
        g = self.g
        self.fused = set()
        for name in g.neurons:
            node, p = g[name], sim.params[name]
            if node.model in ("if", "ternary", "multithreshold") and len(g.shapes[name]) == 3 and not (p.choices.spikes_per_step == "multi" and name in traces.spikes):
                self.fused.add(name)
        self._bufs = {}       # conv node -> halo buffer
        self._last = {}       # conv node -> HaloCurrent of the previous step
        self._events = {}     # node -> preallocated row-segmented event arrays
        self._v = {}          # fused neuron -> (v, vpre)
        self._nhwc = {}       # fused neuron fed dense values -> (source array, channels-last copy)
        self._th = {}
        self._flags = {}      # fused neuron -> spike-flag scratch of its two-pass loop
        self._setup = {}      # fused neuron -> its kernel's per-run arguments
        self._bias = {}       # synaptic node -> bias in the run's dtype (or None)
        self._keep_pre = {}   # fused neuron -> whether pre-reset membranes are recorded
        for name in self.fused:
            C = g.shapes[name][0]
            shape = (batch,) + tuple(g.shapes[name][1:]) + (C,)
            keep_pre = name in traces.membranes and sim.params[name].choices.membrane_report == "pre-reset"
            self._v[name] = (np.zeros(shape, self.dt), np.zeros(shape, self.dt) if keep_pre else np.zeros((1, 1, 1, 1), self.dt))
            self._keep_pre[name] = keep_pre
            th = np.broadcast_to(sim.params[name].threshold, (C,))
            self._th[name] = np.ascontiguousarray(th, dtype=self.dt)
            if g[name].model == "multithreshold":  # levels x per-channel scale, exact in float64
                levels = np.asarray(sim.params[name].levels, dtype=np.float64)
                self._th[name] = np.ascontiguousarray(np.asarray(th, np.float64)[:, None] * levels[None, :], dtype=self.dt)
            self._flags[name] = np.zeros((batch * shape[1], shape[2], C + 1), np.uint8)

    # -- neurons ------------------------------------------------------------------------------

    def _neuron_setup(self, name):
        """The per-run arguments of a fused layer's kernel call (computed once; Python glue is a
        visible share of a low-activity step)."""
        g, p, tr = self.g, self.sim.params[name], self.tr
        c = p.choices
        C, H, W = g.shapes[name]
        v, vpre = self._v[name]
        keep_pre = self._keep_pre[name]
        arrays = self._event_arrays(name, (C, H, W))
        counts = tr.counts[name].transpose(0, 2, 3, 1) if name in tr.counts else np.zeros((1, 1, 1, 1), np.int64)
        vmin = self.dt.type(c.v_min if c.v_min is not None else 0.0)
        if g[name].model == "multithreshold":
            choice_args = (self._th[name], c.comparison == ">=", c.order == "fire-then-integrate", _RESET[c.reset],
                           vmin, c.v_min is not None)
        else:
            choice_args = (self._th[name], c.comparison == ">=", c.order == "fire-then-integrate", _RESET[c.reset],
                           c.spikes_per_step == "multi", g[name].model == "ternary", vmin, c.v_min is not None,
                           c.spike_value == "threshold")
        rsum = np.empty((self.B, H), np.int64)
        tail = arrays[:4] + (rsum, arrays[4], counts, name in tr.counts)
        mt = g[name].model == "multithreshold"
        return {"v": v, "vpre": vpre, "keep_pre": keep_pre, "choice": choice_args, "tail": tail, "rsum": rsum,
                "arrays": arrays, "shape": (C, H, W), "spk0": np.zeros((1, 1, 1, 1), np.uint8 if mt else np.int8), "mt": mt,
                "zero_bias": np.zeros(C, self.dt),
                "step_counts": tr.step_counts[name], "spikes": tr.spikes.get(name), "membranes": tr.membranes.get(name)}

    def neuron(self, name, val, t):
        """Advance fused neuron layer ``name`` one step on input ``val``; returns its EventMap."""
        a = self._setup.get(name)
        if a is None:
            a = self._setup[name] = self._neuron_setup(name)
        if isinstance(val, HaloCurrent):
            cur, r0, c0 = val.buf, val.r0, val.c0
            bias = val.bias
            zero = val.zero_ok
            val.consumed = zero
        else:
            x = dense(val)
            src, cur = self._nhwc.get(name, (None, None))
            if src is not x:
                cur = np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=self.dt)
                self._nhwc[name] = (x, cur)
            r0 = c0 = 0
            bias, zero = None, False
        v, vpre, keep_pre = a["v"], a["vpre"], a["keep_pre"]
        spikes = a["spikes"]
        spk = spikes[t].transpose(0, 2, 3, 1) if spikes is not None else a["spk0"]
        bias_arg = bias if bias is not None else a["zero_bias"]
        if a["mt"]:
            K._mt_rows(cur, r0, c0, zero, bias_arg, bias is not None, v, vpre, keep_pre,
                       *a["choice"], *a["tail"], spk, spikes is not None)
        else:
            K._neuron_rows(cur, r0, c0, zero, bias_arg, bias is not None, v, vpre, keep_pre,
                           *a["choice"], *a["tail"], spk, spikes is not None, self._flags[name])
        a["step_counts"][t] = a["rsum"].sum(axis=1)
        mem = a["membranes"]
        if mem is not None:
            mem[t] = (vpre if keep_pre else v).transpose(0, 3, 1, 2)
        return EventMap(a["arrays"], a["shape"])

    # -- synaptic layers ----------------------------------------------------------------------

    def _event_arrays(self, name, shape):
        arr = self._events.get(name)
        if arr is None:
            arr = self._events[name] = K.row_events(self.B, shape, self.dt)
        return arr

    def _as_events(self, name, val):
        """Event view of an input value (dense maps are converted, with scratch arrays of ``name``)."""
        if is_events(val):
            return val
        x = np.ascontiguousarray(dense(val), dtype=np.float64)
        if x.ndim != 4:
            return None
        arrays = self._event_arrays("<in>" + name, x.shape[1:])
        K.rows_from_nchw(x, *arrays)
        return EventMap(arrays, x.shape[1:])

    def forward(self, node, vals):
        """Value of an event-planned synaptic node, or None when the fused path does not cover it."""
        name, t = node.name, node.TYPE
        src = self._as_events(name, vals[node.inputs[0]])
        if src is None:
            return None
        if src.vmax() >= self.bounds[name]:  # outside the grid the exactness proof assumed
            return node.forward([src.dense()])
        shape = self.g.shapes[name]
        if t == "Conv2d" and _halo_conv(node):
            return self._conv_s1(node, src, shape)
        if t == "ConvTranspose2d":
            return self._conv_transpose(node, src, shape)
        if t in ("AvgPool2d", "SumPool2d"):
            return self._pool(node, src, shape, float(node.kernel_size[0] * node.kernel_size[1]) if t == "AvgPool2d" else 1.0)
        return None

    def _weights(self, name):
        w = self._w.get(name)
        if w is None:
            w = self._w[name] = self.sim._prepared[name].astype(self.dt)
        return w

    def _halo_current(self, node, buf, r0, c0, shape):
        name = node.name
        if name not in self._bias:
            cons = self.g.consumers[name]
            self._bias[name] = (None if node.bias is None else node.bias.astype(self.dt),
                                len(cons) == 1 and cons[0] in self.fused)
        bias, zero_ok = self._bias[name]
        h = HaloCurrent(buf, r0, c0, shape, bias, zero_ok)
        self._last[node.name] = h
        return h

    def _buffer(self, name, shape):
        buf = self._bufs.get(name)
        if buf is None:
            buf = self._bufs[name] = np.zeros(shape, self.dt)
        else:
            last = self._last.get(name)
            if last is not None and not last.consumed:
                buf[...] = 0.0
            # else: the neuron pass zeroed the interior; the halo border only collects the terms
            # that fall in the padding, which nothing reads.
        return buf

    def _conv_s1(self, node, src, shape):
        cout, ho, wo = shape
        kh, kw = node.weight.shape[2:]
        pt, pl = node.pads[0], node.pads[2]
        _, H, W = src.shape
        R, Wb = max(H + pt, ho) + kh - 1, max(W + pl, wo) + kw - 1
        buf = self._buffer(node.name, (self.B, R, Wb, cout))
        flat = buf.reshape(self.B, R, Wb * cout)
        wF = self._weights(node.name)
        for m, off in src.parts():
            K._conv_s1_rows(flat, m.ex, m.ec, m.ev, m.rcnt, wF, pt, pl, cout, off, self.nbands)
        return self._halo_current(node, buf, kh - 1, kw - 1, shape)

    def _conv_transpose(self, node, src, shape):
        cout, ho, wo = shape
        buf = self._buffer(node.name, (self.B, ho, wo, cout))
        w = self._weights(node.name)
        for m, off in src.parts():
            K._conv_transpose_rows(buf, m.ex, m.ec, m.ev, m.rcnt, w, node.stride[0], node.stride[1],
                                   node.padding[0], node.padding[1], node.dilation[0], node.dilation[1],
                                   0, 0, ho, wo, off, node.weight.shape[0] // node.groups)
        return self._halo_current(node, buf, 0, 0, shape)

    def _pool(self, node, src, shape, div):
        C, ho, wo = shape
        out = self._bufs.get(node.name)
        if out is None:
            out = self._bufs[node.name] = np.zeros((self.B, ho, wo, C), self.dt)
        for m, off in src.parts():
            K._pool_rows(out, m.ex, m.ec, m.ev, m.rcnt, node.kernel_size[0], node.kernel_size[1],
                         node.stride[0], node.stride[1], node.padding[0], node.padding[1], off)
        arrays = self._event_arrays(node.name, shape)
        K._rows_from_nhwc(out, True, self.dt.type(div), *arrays)
        return EventMap(arrays, shape)

    def concat(self, node, vals):
        """Channel concatenation kept as events when every input is events, else None."""
        ins = [vals[i] for i in node.inputs]
        if not all(is_events(v) for v in ins):
            return None
        items, off = [], 0
        for v in ins:
            for m, o in v.parts():
                items.append((m, off + o))
            off += v.shape[0]
        return EventCat(items, self.g.shapes[node.name])
