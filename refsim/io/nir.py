r"""NIR import and export (the Neuromorphic Intermediate Representation; extra ``refsim[nir]``).

NIR describes neurons in continuous time; refsim steps them. The mapping is explicit and named:

========================  =========================================================================
NIR                       refsim (``dt`` the step; ``discretisation`` "euler" or "exact")
========================  =========================================================================
Input, Output             Input; Output (refsim's Output integrates what reaches it: with spikes,
                          its final value is the spike count, the usual read-out)
Affine, Linear            Linear (with or without bias); the input must be flat
Scale                     Scale (per channel)
Conv2d                    Conv2d; Flatten (over the whole sample) Flatten
SumPool2d, AvgPool2d      SumPool2d, AvgPool2d
IF                        ``if`` neuron, threshold ``v_threshold``; ``v += r I`` per step: the input
                          is the charge of the step, as Sinabs, Norse, SpikingJelly do (a Scale node
                          carries ``r`` when it is not 1); ``dt`` does not appear
I                         a Scale(r) into the Output it must feed (the Output integrates)
LIF                       ``lif`` neuron: euler ``beta = 1 - dt/tau``, input gain ``r dt/tau``, bias
                          ``dt/tau v_leak`` (Norse's ``LIFBoxCell``, snnTorch's import); exact
                          ``beta = exp(-dt/tau)``, gain ``r (1 - beta)``, bias ``(1 - beta) v_leak``
CubaLIF                   ``cubalif``: current decay ``alpha = 1 - dt/tau_syn`` (exact:
                          ``exp(-dt/tau_syn)``) with input gain ``w_in dt/tau_syn`` (exact:
                          ``w_in (1 - alpha)``), then the membrane as LIF with ``tau_mem`` and
                          the current as input (updated first, as snnTorch ``Synaptic`` and Norse)
Threshold                 ``lif`` with ``beta = 0`` (no memory): a spike where the input exceeds it
several edges into a      an Add node summing them
node
a cycle                   a Delay node on the edge that closes it: the recurrent input is the
                          source's value of the previous step
========================  =========================================================================

Resets: a file whose neurons have no ``v_reset`` field (written before nir 1.0.6) resets by
subtraction (profile ``nir``); one with ``v_reset`` (nir 1.0.6 and later) resets to it (profile
``nir-reset``; refsim supports ``v_reset = 0``). NIR fires on ``v > v_threshold``. Per-neuron
parameters of (C, H, W) layers must be constant over H and W (refsim's are per channel).
``dt`` is not stored in NIR files: the default 1e-4 s is snnTorch's (and the braille reference
graphs', whose ``r dt / tau`` is then exactly 1); Norse's importer defaults to 1e-3 s.

Export writes what the installed ``nir`` package can express and refuses the rest with the reason:
concatenation, transposed convolution, up-sampling, multi-threshold and ternary neurons, ``>=``,
several spikes a step, threshold-valued spikes, and the reset rule the installed NIR version
cannot say (subtraction before 1.0.6, a reset value after).
"""
from __future__ import annotations

import inspect
import math
import os

import numpy as np

from ._names import unique_name
from .. import _system
from .._files import atomic_path
from .._optional import optional_import
from ..errors import ModelFormatError, UnknownNameError, ValidationError
from ..graph import Add, AvgPool2d, Conv2d, Delay, Flatten, Graph, Input, Linear, Neuron, Output, Scale, SumPool2d
from ..neurons import get_model
from ..semantics import get_profile, profile_for

DISCRETISATIONS = ("euler", "exact")
DEFAULT_DT = 1e-4
NIR_TYPES = ("Input", "Output", "Affine", "Linear", "Scale", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "I", "IF",
             "LIF", "CubaLIF", "Threshold")
_MAX_DEPTH, _MAX_ENTRIES = 6, 100_000


# -- reading --------------------------------------------------------------------------------------

def _read_group(h5py, group, path, budget, depth=0, count=None):
    count = count if count is not None else [0]
    if depth > _MAX_DEPTH:
        raise ModelFormatError("HDF5 structure", f"at most {_MAX_DEPTH} nested groups", "deeper nesting", file=path)
    out = {}
    for key in group.keys():
        count[0] += 1
        if count[0] > _MAX_ENTRIES:
            raise ModelFormatError("HDF5 structure", f"at most {_MAX_ENTRIES} entries", "more", file=path)
        item = group[key]
        if isinstance(item, h5py.Group):
            out[key] = _read_group(h5py, item, path, budget, depth + 1, count)
        elif isinstance(item, h5py.Dataset):
            nbytes = math.prod(item.shape) * item.dtype.itemsize if item.shape is not None else 0
            if nbytes > budget[0]:
                raise ModelFormatError(f"dataset {item.name!r}", f"at most {budget[0]} bytes", f"{nbytes} bytes", file=path)
            budget[0] -= nbytes
            v = item[()]
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, np.ndarray) and v.dtype.kind in "SO":
                v = np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in v.ravel()],
                             dtype=object).reshape(v.shape)
            out[key] = v
    return out


def read_nir_dict(path) -> tuple:
    """``(version, graph dict)`` of a NIR HDF5 file, read with h5py directly (so files written by
    any nir version load, whatever nir is installed), every dataset's size checked before reading."""
    h5py = optional_import("h5py", "NIR import")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFormatError("file", "an existing NIR file", "no such file", file=path)
    budget = [min(_system.memory_budget(), 64 * max(os.path.getsize(path), 1 << 20))]
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise ModelFormatError("HDF5 root", "a 'node' group (a NIR graph)", list(f.keys())[:5], file=path)
            version = f["version"][()] if "version" in f else b"unknown"
            version = version.decode("utf-8", "replace") if isinstance(version, bytes) else str(version)
            d = _read_group(h5py, f["node"], path, budget)
    except ModelFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelFormatError("file", "a NIR (HDF5) file", f"{type(exc).__name__}: {str(exc)[:120]}", file=path) from None
    return version, d




class _NIRImporter:
    def __init__(self, d, version, dt, disc, path, input_shape):
        if disc not in DISCRETISATIONS:
            raise UnknownNameError("NIR discretisation", disc, DISCRETISATIONS)
        if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValidationError("NIR dt", "a positive time step in seconds", dt)
        self.dt = float(dt) if dt is not None else DEFAULT_DT
        self.disc, self.path, self.version, self.input_shape = disc, path, version, input_shape
        if not isinstance(d, dict) or d.get("type") != "NIRGraph" or not isinstance(d.get("nodes"), dict):
            raise self.err("root node", "a NIRGraph with nodes", type(d).__name__ if not isinstance(d, dict) else d.get("type"))
        self.nodes = d["nodes"]
        edges = d.get("edges", [])
        try:
            self.edges = [(str(a), str(b)) for a, b in np.asarray(edges, dtype=object).reshape(-1, 2)]
        except ValueError:
            raise self.err("edges", "pairs of node names", repr(edges)[:80]) from None
        for a, b in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise self.err(f"edge ({a!r}, {b!r})", "names of nodes in the graph", n)
        self.used, self.out, self.notes = set(), {}, []
        self.final = {n: unique_name(n, self.used, "node", "n") for n in self.nodes}
        self.refsim = []
        self.reset_rules = set()
        self.resets = {}  # refsim neuron -> the reset rule it follows

    def err(self, where, expected, found):
        return ModelFormatError(where, expected, found, file=self.path)

    def field(self, name, node, key, required=True):
        if key not in node:
            if required:
                raise self.err(f"node {name!r} ({node.get('type')})", f"a field {key!r}", "nothing")
            return None
        v = node[key]
        if isinstance(v, dict):
            raise self.err(f"node {name!r} field {key!r}", "an array", "a group")
        return v

    def arr(self, name, node, key, required=True):
        v = self.field(name, node, key, required)
        if v is None:
            return None
        a = np.asarray(v)
        if a.dtype.kind not in "biuf" or not np.all(np.isfinite(a.astype(np.float64))):
            raise self.err(f"node {name!r} field {key!r}", "finite numbers", f"dtype {a.dtype}")
        return a.astype(np.float64)

    # -- structure -------------------------------------------------------------------------------
    def order(self):
        for n, v in self.nodes.items():
            if not isinstance(v, dict) or not isinstance(v.get("type"), str):
                raise self.err(f"node {n!r}", "a NIR node with a type name", repr(v.get("type") if isinstance(v, dict)
                                                                                     else type(v).__name__)[:60])
        preds = {n: [] for n in self.nodes}
        succ = {n: [] for n in self.nodes}
        for a, b in self.edges:
            preds[b].append(a)
            succ[a].append(b)
        inputs = [n for n, v in self.nodes.items() if isinstance(v, dict) and v.get("type") == "Input"]
        if not inputs:
            raise self.err("graph", "at least one Input node", "none")
        back, state = set(), {}
        for root in inputs:  # iterative DFS: edges into a node on the stack close a cycle
            stack = [(root, iter(succ[root]))]
            state[root] = 1
            while stack:
                n, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[n] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.add((n, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        unreached = [n for n in self.nodes if n not in state]
        if unreached:
            raise self.err("graph", "every node reachable from an Input", f"unreachable: {', '.join(unreached[:5])}")
        fwd = {n: [p for p in preds[n] if (p, n) not in back] for n in self.nodes}
        indeg = {n: len(v) for n, v in fwd.items()}
        ready = [n for n in self.nodes if indeg[n] == 0]
        order = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for c in succ[n]:
                if (n, c) in back:
                    continue
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        return order, preds, back

    def declared_shape(self, name):
        """Output shape of a NIR node from its parameters (for a Delay on a recurrent edge)."""
        node = self.nodes[name]
        t = node.get("type")
        for key in ("v_threshold", "r", "tau", "threshold"):
            if key in node and t in ("IF", "LIF", "CubaLIF", "I", "LI", "Threshold"):
                return tuple(int(s) for s in np.shape(node[key]))
        if t in ("Affine", "Linear"):
            w = self.arr(name, node, "weight")
            if w.ndim != 2:
                raise self.err(f"node {name!r} field 'weight'", "a 2-D (out, in) matrix", w.shape)
            return (int(w.shape[0]),)
        raise self.err(f"node {name!r} ({t})", "a neuron, Affine or Linear node as the source of a recurrent edge",
                       "another type")

    # -- the walk --------------------------------------------------------------------------------
    def run(self):
        order, preds, back = self.order()
        self.graph_nodes = []
        for name in order:
            node = self.nodes[name]
            if not isinstance(node, dict) or "type" not in node:
                raise self.err(f"node {name!r}", "a NIR node with a type", type(node).__name__)
            t = node["type"]
            if t not in NIR_TYPES:
                raise self.err(f"node {name!r}", "one of the supported NIR nodes (" + ", ".join(NIR_TYPES) + ")", t)
            srcs = []
            for p in preds[name]:
                if (p, name) in back:
                    dname = unique_name(f"{p}_previous", self.used, "node", "n")
                    self.add(Delay(dname, [self.final[p]], list(self.declared_shape(p))))
                    srcs.append(dname)
                else:
                    srcs.append(self.out[p])
            if t != "Input" and not srcs:
                raise self.err(f"node {name!r} ({t})", "at least one incoming edge", "none")
            if len(srcs) > 1:
                sname = unique_name(f"{name}_sum", self.used, "node", "n")
                self.add(Add(sname, srcs))
                src = sname
            else:
                src = srcs[0] if srcs else None
            getattr(self, "map_" + t)(name, node, src)
        return self.refsim

    def add(self, n):
        self.refsim.append(n)
        return n

    def shape_of(self, name):
        built = {n.name for n in self.refsim}
        part = [Input(n.name, list(n.shape)) if n.TYPE == "Delay" and n.inputs[0] not in built else n
                for n in self.refsim]  # a recurrent edge whose source is not built yet
        return Graph(part, name="partial").shapes[name]

    def per_channel(self, name, key, a, shape):
        """A NIR per-neuron array as refsim's scalar or per-channel value."""
        a = np.asarray(a, dtype=np.float64)
        if a.size == 1:
            return float(a.reshape(-1)[0])
        if a.ndim == 3 or (a.ndim == len(shape) == 3):
            if len(shape) != 3 or a.size != math.prod(shape):
                raise self.err(f"node {name!r} field {key!r}", f"{math.prod(shape)} values for the "
                               f"layer's shape {tuple(shape)} (the input shape given, or the graph's)",
                               f"{a.size} values of shape {a.shape}")
            a = a.reshape(shape)
            if not np.all(a == a[:, :1, :1]):
                raise self.err(f"node {name!r} field {key!r}", "values constant over each channel's H and W "
                               "(refsim's parameters are per channel)", "values varying within a channel")
            a = a[:, 0, 0]
        a = a.reshape(-1)
        if shape and a.size != shape[0]:
            raise self.err(f"node {name!r} field {key!r}", f"{shape[0]} values (one per channel)", a.size)
        return float(a[0]) if np.all(a == a[0]) else a.astype(np.float32)

    def _same_shape(self, name, keys, arrays):
        """The neuron parameters ``arrays`` broadcast to one shape, or an error naming the fields."""
        try:
            return np.broadcast_arrays(*arrays)
        except ValueError:
            raise self.err(f"node {name!r} fields {', '.join(keys)}", "parameters of one shape (or scalars)",
                           ", ".join(f"{k} {a.shape}" for k, a in zip(keys, arrays))) from None

    def gain(self, name, src, g, tag):
        """``src`` scaled by ``g`` (a Scale node unless g is 1 in float32)."""
        g32 = np.asarray(g, dtype=np.float32)
        if np.all(g32 == 1.0):
            return src
        sname = unique_name(f"{name}_{tag}", self.used, "node", "n")
        self.add(Scale(sname, [src], factor=float(g32) if g32.ndim == 0 else g32))
        return sname

    def reset_rule(self, name, node):
        if "v_reset" in node:
            vr = self.arr(name, node, "v_reset")
            if np.any(vr != 0):
                raise self.err(f"node {name!r} field 'v_reset'", "0 (refsim resets to zero or subtracts)",
                               f"values in [{vr.min():g}, {vr.max():g}]")
            self.reset_rules.add("zero")
            return "zero"
        self.reset_rules.add("subtract")
        return "subtract"

    # -- node types ------------------------------------------------------------------------------
    def map_Input(self, name, node, src):
        shape = self.input_shape
        if shape is None:
            raw = node.get("shape", node.get("input_type"))
            if isinstance(raw, dict):
                raw = raw.get("input")
            shape = tuple(self._ints(name, "shape", raw)) if raw is not None else None
        if not shape or len(shape) not in (1, 3) or any(s < 1 for s in shape):
            raise self.err(f"node {name!r} (Input)", "a shape (F,) or (C, H, W) (or pass input_shape=)", shape)
        self.add(Input(self.final[name], list(shape)))
        self.out[name] = self.final[name]

    def map_Output(self, name, node, src):
        self.add(Output(self.final[name], [src]))
        self.out[name] = self.final[name]

    def _linear(self, name, node, src, bias):
        w = self.arr(name, node, "weight")
        if w.ndim != 2:
            raise self.err(f"node {name!r} field 'weight'", "a 2-D (out, in) matrix", w.shape)
        if len(self.shape_of(src)) != 1:
            raise self.err(f"node {name!r}", "a flat input (a Flatten before it)", self.shape_of(src))
        b = self.arr(name, node, "bias") if bias else None
        self.add(Linear(self.final[name], [src], w.astype(np.float32), None if b is None else b.astype(np.float32)))
        self.out[name] = self.final[name]

    def map_Affine(self, name, node, src):
        self._linear(name, node, src, True)

    def map_Linear(self, name, node, src):
        self._linear(name, node, src, False)

    def map_Scale(self, name, node, src):
        shape = self.shape_of(src)
        f = self.per_channel(name, "scale", self.arr(name, node, "scale"), shape)
        self.add(Scale(self.final[name], [src], factor=f))
        self.out[name] = self.final[name]

    def _ints(self, name, key, v):
        """A field of integers (finite, integral numbers), as Python ints."""
        a = np.asarray(v)
        ok = a.dtype.kind in "biuf" and a.size > 0 and a.ndim <= 1
        if ok and a.dtype.kind == "f":
            ok = bool(np.all(np.isfinite(a))) and bool(np.all(a == np.round(a)))
        if not ok or np.any(np.abs(a.astype(np.float64)) > 2 ** 31):
            raise self.err(f"node {name!r} field {key!r}", "an integer or a list of integers",
                           repr(a.tolist() if a.size < 8 else a.shape)[:60])
        return [int(x) for x in a.reshape(-1)]

    def _pair(self, name, key, v):
        a = self._ints(name, key, v)
        if len(a) not in (1, 2):
            raise self.err(f"node {name!r} field {key!r}", "one or two integers", a)
        return [a[0], a[0]] if len(a) == 1 else a

    def map_Conv2d(self, name, node, src):
        w = self.arr(name, node, "weight")
        if w.ndim != 4:
            raise self.err(f"node {name!r} field 'weight'", "a 4-D (out, in/groups, kh, kw) tensor", w.shape)
        b = self.arr(name, node, "bias", required=False)
        pad = node.get("padding", 0)
        if isinstance(pad, str):
            if pad not in ("same", "valid"):
                raise self.err(f"node {name!r} field 'padding'", "numbers, 'same' or 'valid'", pad)
            pad = "same" if pad == "same" else 0
        else:
            pad = self._pair(name, "padding", pad)
        bias = None if b is None else b.astype(np.float32)
        groups = self._ints(name, "groups", node.get("groups", 1))
        if len(groups) != 1:
            raise self.err(f"node {name!r} field 'groups'", "one integer", groups)
        self.add(Conv2d(self.final[name], [src], w.astype(np.float32), bias,
                        stride=self._pair(name, "stride", node.get("stride", 1)), padding=pad,
                        dilation=self._pair(name, "dilation", node.get("dilation", 1)), groups=groups[0]))
        self.out[name] = self.final[name]

    def map_Flatten(self, name, node, src):
        shape = self.shape_of(src)
        start = self._ints(name, "start_dim", node.get("start_dim", 0))[0]
        end = self._ints(name, "end_dim", node.get("end_dim", -1))[0]
        if start != 0 or end not in (-1, len(shape) - 1):
            raise self.err(f"node {name!r} (Flatten)", "a flatten of the whole sample (start_dim 0, end_dim -1)",
                           f"start_dim {start}, end_dim {end}")
        if len(shape) == 1:
            self.out[name] = src
            return
        self.add(Flatten(self.final[name], [src]))
        self.out[name] = self.final[name]

    def _pool(self, cls, name, node, src):
        k = self._pair(name, "kernel_size", self.field(name, node, "kernel_size"))
        self.add(cls(self.final[name], [src], k, self._pair(name, "stride", node.get("stride", k)),
                     self._pair(name, "padding", node.get("padding", 0))))
        self.out[name] = self.final[name]

    def map_SumPool2d(self, name, node, src):
        self._pool(SumPool2d, name, node, src)

    def map_AvgPool2d(self, name, node, src):
        self._pool(AvgPool2d, name, node, src)

    def _neuron(self, name, node, src, model, shape, reset, fixed=False, **params):
        """A Neuron node; its reset rule is the file's (the graph's profile) unless ``fixed``."""
        th = params.pop("threshold") if "threshold" in params else \
            self.per_channel(name, "v_threshold", self.arr(name, node, "v_threshold"), shape)
        kw = {k: self.per_channel(name, k, v, shape) for k, v in params.items()}
        self.add(Neuron(self.final[name], [src], model, threshold=th, choices={"reset": reset} if fixed else None,
                        **kw))
        self.resets[self.final[name]] = reset
        self.out[name] = self.final[name]

    def map_IF(self, name, node, src):
        shape = self.shape_of(src)
        r = self.per_channel(name, "r", self.arr(name, node, "r"), shape)
        self._neuron(name, node, self.gain(name, src, r, "r"), "if", shape, self.reset_rule(name, node))

    def map_I(self, name, node, src):
        cons = [b for a, b in self.edges if a == name]
        if not cons or any(self.nodes[c].get("type") != "Output" for c in cons):
            raise self.err(f"node {name!r} (I)", "an integrator that feeds the Output (refsim's Output integrates)",
                           f"consumers {cons}")
        r = self.per_channel(name, "r", self.arr(name, node, "r"), self.shape_of(src))
        self.out[name] = self.gain(name, src, r, "r")
        self.notes.append(f"{name}: I integrator mapped to the Output's integration (x r)")

    def _decay(self, tau):
        x = self.dt / tau
        return (1.0 - x, x) if self.disc == "euler" else (np.exp(-x), 1.0 - np.exp(-x))

    def map_LIF(self, name, node, src):
        shape = self.shape_of(src)
        tau, r, vl = self._same_shape(name, ("tau", "r", "v_leak"),
                                      [self.arr(name, node, k) for k in ("tau", "r", "v_leak")])
        if np.any(tau <= 0):
            raise self.err(f"node {name!r} field 'tau'", "positive time constants", "non-positive values")
        beta, k = self._decay(tau)
        if np.any(beta < 0):
            raise self.err(f"node {name!r} field 'tau'", f"tau >= dt = {self.dt:g} for forward Euler (or the exact "
                           "discretisation)", f"min tau {tau.min():g}")
        g = self.per_channel(name, "r", r * k, shape)
        self._neuron(name, node, self.gain(name, src, g, "gain"), "lif", shape, self.reset_rule(name, node),
                     beta=beta, bias=k * vl)

    def map_CubaLIF(self, name, node, src):
        shape = self.shape_of(src)
        ts, tm, r, vl = (self.arr(name, node, k) for k in ("tau_syn", "tau_mem", "r", "v_leak"))
        w_in = self.arr(name, node, "w_in", required=False)
        w_in = np.ones_like(ts) if w_in is None else w_in
        ts, tm, r, vl, w_in = self._same_shape(name, ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
                                               (ts, tm, r, vl, w_in))
        if np.any(ts <= 0) or np.any(tm <= 0):
            raise self.err(f"node {name!r}", "positive time constants", "non-positive values")
        alpha, ks = self._decay(ts)
        beta, km = self._decay(tm)
        if np.any(alpha < 0) or np.any(beta < 0):
            raise self.err(f"node {name!r}", f"time constants >= dt = {self.dt:g} for forward Euler", "shorter ones")
        g_in = self.per_channel(name, "w_in", w_in * ks, shape)
        self._neuron(name, node, self.gain(name, src, g_in, "w_in"), "cubalif", shape, self.reset_rule(name, node),
                     beta=beta, bias=km * vl, alpha=alpha, gain=r * km)

    def map_Threshold(self, name, node, src):
        shape = self.shape_of(src)
        th = self.per_channel(name, "threshold", self.arr(name, node, "threshold"), shape)
        self._neuron(name, {}, src, "lif", shape, "zero", fixed=True, threshold=th, beta=0.0)


def load_nir(path, dt=None, discretisation="euler", input_shape=None, name=None) -> Graph:
    """Import a NIR file (see the module docstring for the mapping). The graph's metadata records
    ``dt``, the discretisation, the NIR version and the reset rule (profile ``nir`` or ``nir-reset``)."""
    version, d = read_nir_dict(path)
    return from_nir_dict(d, version, dt=dt, discretisation=discretisation, input_shape=input_shape, name=name,
                         path=os.fspath(path))


def from_nir_dict(d, version="unknown", dt=None, discretisation="euler", input_shape=None, name=None, path=None):
    try:
        return _from_nir_dict(d, version, dt, discretisation, input_shape, name, path)
    except ModelFormatError as exc:  # a node or field refused while the graph is built: say which file
        raise (exc.with_file(path) if path and not exc.file else exc) from None


def _from_nir_dict(d, version, dt, discretisation, input_shape, name, path):
    imp = _NIRImporter(d, version, dt, discretisation, path, input_shape)
    nodes = imp.run()
    if not any(isinstance(n, Output) for n in nodes):
        raise ModelFormatError("graph", "an Output node", "none", file=path)
    profile = "nir-reset" if imp.reset_rules == {"zero"} else "nir"
    if len(imp.reset_rules) > 1:  # both rules in one file: each neuron says its own
        nodes = [n.replace(choices={**n.choices, "reset": imp.resets[n.name]}) if isinstance(n, Neuron) else n
                 for n in nodes]
    meta = {"source": "nir", "nir_file": os.path.basename(path) if path else None, "nir_version": version,
            "nir_dt": imp.dt, "nir_discretisation": discretisation, "profile": profile, "readout": "argmax",
            "encoding": "static", "nir_notes": imp.notes}
    gname = name or (os.path.splitext(os.path.basename(path))[0] if path else "nir-graph")
    return Graph(nodes, name=gname, metadata=meta)


# -- writing --------------------------------------------------------------------------------------

class NIRExportError(ValidationError):
    """A model uses something NIR cannot express; the message says what and where."""


def _refuse(node, what, why):
    return NIRExportError(f"NIR export of node {node!r}", f"something NIR can express ({why})", what)


def to_nir(graph: Graph, dt=DEFAULT_DT, profile=None):
    """The ``nir.NIRGraph`` of a refsim graph (forward-Euler parameters for step ``dt``)."""
    nir = optional_import("nir", "NIR export")
    prof = get_profile(profile_for(graph, profile))
    has_v_reset = "v_reset" in inspect.signature(nir.IF).parameters
    nodes, edges = {}, []
    src_of = {}  # refsim node -> list of NIR node names its value comes from (Add/Dropout pass through)

    def full(v, shape):
        return np.broadcast_to(np.asarray(v, dtype=np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
                               if np.ndim(v) else np.float32(v), shape).astype(np.float32)

    for name in graph.order:
        node = graph[name]
        t = node.TYPE
        shape = graph.shapes[name]
        if t == "Delay":  # its consumers get an edge from its source: a cycle, as NIR writes recurrence
            continue
        ins = []
        for i in node.inputs:
            if graph[i].TYPE == "Delay":
                ins.extend(src_of.get(graph[i].inputs[0], [graph[i].inputs[0]]))
            else:
                ins.extend(src_of[i])
        if t in ("Add", "Dropout"):
            src_of[name] = ins
            continue
        if t == "Input":
            nodes[name] = nir.Input(input_type={"input": np.array(shape)})
        elif t == "Output":
            nodes[name] = nir.Output(output_type={"output": np.array(shape)})
        elif t == "Conv2d":
            pt, pb, pl, pr = node.pads
            if (pt, pl) != (pb, pr):
                raise _refuse(name, "asymmetric padding", "NIR's Conv2d pads symmetrically")
            in_shape = graph.shapes[node.inputs[0]]
            nodes[name] = nir.Conv2d(input_shape=np.array(in_shape[1:]), weight=np.asarray(node.weight),
                                     stride=np.array(node.stride), padding=np.array([pt, pl]),
                                     dilation=np.array(node.dilation), groups=node.groups,
                                     bias=np.zeros(node.weight.shape[0], np.float32) if node.bias is None
                                     else np.asarray(node.bias))
        elif t == "Linear":
            nodes[name] = nir.Linear(weight=np.asarray(node.weight)) if node.bias is None else \
                nir.Affine(weight=np.asarray(node.weight), bias=np.asarray(node.bias))
        elif t in ("SumPool2d", "AvgPool2d"):
            cls = nir.SumPool2d if t == "SumPool2d" else nir.AvgPool2d
            nodes[name] = cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                              padding=np.array(node.padding))
        elif t == "Flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(graph.shapes[node.inputs[0]])}, start_dim=0,
                                      end_dim=-1)
        elif t == "Scale":
            nodes[name] = nir.Scale(scale=full(node.factor, shape))
        elif t == "Neuron":
            p = node.make_params(prof)
            c = p.choices
            if get_model(node.model).signed or get_model(node.model).bitmask:
                raise _refuse(name, f"a {node.model} neuron", "NIR's neurons emit binary spikes")
            if c.comparison != ">":
                raise _refuse(name, "the '>=' comparison", "NIR fires on v > v_threshold")
            if c.spikes_per_step != "one" or c.spike_value != "one" or c.order != "integrate-then-fire" \
                    or c.v_min is not None:
                raise _refuse(name, f"choices {c.as_dict()}", "NIR has one binary spike a step, integrate then fire, "
                              "no membrane floor")
            if c.reset == "none":
                raise _refuse(name, "no reset", "NIR neurons reset")
            if c.reset == "subtract" and has_v_reset:
                raise _refuse(name, "a subtractive reset", f"nir {nir.version} resets to v_reset (subtraction was "
                              "NIR's rule before 1.0.6: export with nir<1.0.6)")
            if c.reset == "zero" and not has_v_reset:
                raise _refuse(name, "a reset to zero", f"nir {nir.version} resets by subtraction (a reset value "
                              "needs nir>=1.0.6)")
            leaky = node.model in ("lif", "cubalif")
            if leaky and c.reset == "subtract" and c.reset_timing == "next-step":
                raise _refuse(name, "a next-step subtractive reset", "NIR resets in the step of the spike")
            th = full(p.threshold, shape)
            extra = {"v_reset": np.zeros(shape, np.float32)} if has_v_reset else {}
            beta = np.asarray(getattr(p, "beta", 1.0))
            if node.model == "if" or (node.model == "lif" and np.all(beta == 1.0)):
                if node.model == "lif" and np.any(np.asarray(p.bias) != 0):
                    raise _refuse(name, "a bias without a leak", "NIR's IF has no constant input")
                nodes[name] = nir.IF(r=np.ones(shape, np.float32), v_threshold=th, **extra)
            elif node.model == "lif":
                if np.any(beta == 1.0):
                    raise _refuse(name, "a mix of leaky and non-leaky channels", "one NIR node is LIF or IF")
                tau = dt / (1.0 - full(beta, shape).astype(np.float64))
                vl = full(p.bias, shape).astype(np.float64) / (1.0 - full(beta, shape).astype(np.float64))
                nodes[name] = nir.LIF(tau=tau, r=tau / dt, v_leak=vl, v_threshold=th, **extra)
            else:
                alpha = full(p.alpha, shape).astype(np.float64)
                b64 = full(beta, shape).astype(np.float64)
                if np.any(alpha >= 1.0) or np.any(b64 >= 1.0):
                    raise _refuse(name, "alpha or beta of 1", "NIR's CubaLIF time constants are finite")
                ts, tm = dt / (1.0 - alpha), dt / (1.0 - b64)
                nodes[name] = nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=full(p.gain, shape).astype(np.float64) * tm / dt,
                                          v_leak=full(p.bias, shape).astype(np.float64) / (1.0 - b64), v_threshold=th,
                                          w_in=ts / dt, **extra)
        else:
            why = {"Concat": "NIR has no concatenation", "ConvTranspose2d": "NIR has no transposed convolution",
                   "Upsample": "NIR has no up-sampling"}.get(t, "no NIR node for it")
            raise _refuse(name, f"a {t} node", why)
        for s in ins:
            edges.append((s, name))
        src_of[name] = [name]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def save_nir(graph: Graph, path, dt=DEFAULT_DT, profile=None) -> None:
    """Write ``graph`` as a NIR file (atomically); refuses what NIR cannot express."""
    nir = optional_import("nir", "NIR export")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValidationError("NIR export dt", "a positive time step in seconds", dt)
    ng = to_nir(graph, dt, profile)
    with atomic_path(path, ".nir") as tmp:
        nir.write(tmp, ng)
