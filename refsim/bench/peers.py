"""Dense torch CPU peers for the benchmark harness (torch imported lazily; optional)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from .._optional import optional_import
from ..errors import UnknownNameError, ValidationError


def torch_version():
    """The installed torch version, or None."""
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def dense_conv3x3(weight, x, threads=1):
    """A callable running torch's float32 channels-last conv2d (padding 1) of ``x`` (B, C, H, W)
    with ``weight``, on ``threads`` threads; None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tw = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)).contiguous(memory_format=torch.channels_last)
    tx = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).contiguous(memory_format=torch.channels_last)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, padding=1)
    return run


NETWORK_PEERS = ("torch", "spikingjelly", "snntorch")


def network_peer(graph, peer="torch", threads=1, channels_last=True):
    """A callable ``step(x) -> None`` that advances ``graph`` (refsim Graph of IF layers) one time
    step on a float32 input batch, in torch on the CPU, for timing side by side with refsim.

    ``peer``: ``"torch"`` (IF written in torch ops: v += I; s = v > th; v -= s * th),
    ``"spikingjelly"`` (``IFNode(v_reset=None)``, single-step) or ``"snntorch"``
    (``Leaky(beta=1, reset_mechanism="subtract")``). Returns ``(step, reset)``; None when torch or
    the library is missing. Not a conformance tool: for timing only.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    if peer not in NETWORK_PEERS:
        raise UnknownNameError("network peer", peer, NETWORK_PEERS)
    try:
        if peer == "spikingjelly":
            from spikingjelly.activation_based import neuron as sjn
        elif peer == "snntorch":
            import snntorch as snn
    except ImportError:
        return None
    torch.set_num_threads(threads)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    t32 = lambda a: None if a is None else torch.from_numpy(np.array(a, dtype=np.float32))  # a writable copy
    ops, state = [], {}
    for name in graph.order:
        node = graph[name]
        t = node.TYPE
        if t == "Conv2d":
            w = t32(node.weight).contiguous(memory_format=fmt)
            pt, pb, pl, pr = node.pads
            def f(xs, w=w, b=t32(node.bias), n=node, p=(pl, pr, pt, pb)):
                if p[0] == p[1] and p[2] == p[3]:
                    return F.conv2d(xs[0], w, b, n.stride, (p[2], p[0]), n.dilation, n.groups)
                return F.conv2d(F.pad(xs[0], p), w, b, n.stride, 0, n.dilation, n.groups)
        elif t == "ConvTranspose2d":
            w = t32(node.weight)
            def f(xs, w=w, b=t32(node.bias), n=node):
                return F.conv_transpose2d(xs[0], w, b, n.stride, n.padding, n.output_padding, n.groups, n.dilation)
        elif t in ("AvgPool2d", "SumPool2d"):
            area = node.kernel_size[0] * node.kernel_size[1]
            def f(xs, n=node, k=(1.0 if t == "AvgPool2d" else float(area))):
                y = F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding)
                return y * k if k != 1.0 else y
        elif t == "Concat":
            def f(xs):
                return torch.cat(xs, dim=1)
        elif t == "Add":
            def f(xs):
                out = xs[0]
                for x in xs[1:]:
                    out = out + x
                return out
        elif t == "Upsample":
            def f(xs, n=node):
                return F.interpolate(xs[0], scale_factor=n.scale_factor, mode="nearest")
        elif t == "Flatten":
            def f(xs):
                return xs[0].flatten(1)
        elif t == "Linear":
            def f(xs, w=t32(node.weight), b=t32(node.bias)):
                return F.linear(xs[0], w, b)
        elif t in ("Dropout", "Input"):
            def f(xs):
                return xs[0]
        elif t == "Neuron":
            if node.model != "if" or np.ndim(node.threshold) != 0:
                raise ValidationError(f"network_peer node {name!r}", "IF neurons with a scalar threshold", node.model)
            th = float(node.threshold)
            if peer == "torch":
                def f(xs, name=name, th=th):
                    v = state.get(name)
                    v = xs[0].clone() if v is None else v.add_(xs[0])
                    s = (v > th).to(v.dtype)
                    v.sub_(s * th)
                    state[name] = v
                    return s
            elif peer == "spikingjelly":
                mod = sjn.IFNode(v_threshold=th, v_reset=None)
                def f(xs, mod=mod):
                    return mod(xs[0])
                state.setdefault("_modules", []).append(mod)
            else:
                mod = snn.Leaky(beta=1.0, threshold=th, reset_mechanism="subtract")
                def f(xs, mod=mod, name=name):
                    mem = state.get(name)
                    if mem is None:
                        mem = torch.zeros_like(xs[0])
                    s, state[name] = mod(xs[0], mem)
                    return s
        elif t == "Output":
            def f(xs, name=name):
                v = state.get(name)
                state[name] = xs[0].clone() if v is None else v.add_(xs[0])
                return state[name]
        else:
            raise ValidationError(f"network_peer node {name!r}", "a node type the timing peer supports", t)
        ops.append((name, node.inputs, f))

    def step(x):
        vals = {}
        with torch.no_grad():
            for name, ins, f in ops:
                if not ins:
                    xi = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
                    vals[name] = xi.contiguous(memory_format=fmt) if xi.ndim == 4 else xi
                else:
                    vals[name] = f([vals[i] for i in ins])
        return vals

    def reset():
        mods = state.pop("_modules", [])
        state.clear()
        for m in mods:
            m.reset()
        if mods:
            state["_modules"] = mods
    return step, reset


def _onednn_probe():
    """Run each convolution spec read as JSON from stdin once, float32 channels-last on one thread (the
    subprocess of :func:`onednn_implementations`, whose oneDNN log goes to stdout)."""
    torch = optional_import("torch", "the benchmark's torch kernel names")
    F = torch.nn.functional
    torch.set_num_threads(1)
    cl = dict(memory_format=torch.channels_last)
    for s in json.load(sys.stdin):
        x = torch.zeros(s["shape"]).contiguous(**cl)
        w = torch.zeros(s["weight"]).contiguous(**cl)
        with torch.no_grad():
            if s["type"] == "Conv2d":
                F.conv2d(x, w, None, s["stride"], s["padding"], s["dilation"], s["groups"])
            else:
                F.conv_transpose2d(x, w, None, s["stride"], s["padding"], s["output_padding"], s["groups"],
                                   s["dilation"])


def onednn_implementations(specs, timeout=300):
    """Which oneDNN implementation torch runs for each convolution in ``specs`` (dicts: ``type``
    ``"Conv2d"`` or ``"ConvTranspose2d"``, input ``shape``, ``weight`` shape, ``stride``,
    ``padding``, ``dilation``, ``groups``, ``output_padding``), float32 channels-last on one thread,
    as oneDNN's own verbose log names it (``ONEDNN_VERBOSE=1``; e.g. ``brg_conv_fwd:avx2`` with
    ``alg:convolution_direct``, where a Winograd kernel would say ``wino``). Runs in a subprocess
    (the log goes to its stdout). Returns one ``"implementation (algorithm)"`` string per spec, or
    None when torch is missing or the log cannot be matched to the specs (another torch, another
    log format)."""
    if torch_version() is None:
        return None
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
    try:
        out = subprocess.run([sys.executable, "-c", "from refsim.bench.peers import _onednn_probe; _onednn_probe()"],
                             input=json.dumps(specs), env=env,
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    found = []
    for line in out.stdout.splitlines():
        f = line.split(",")
        # onednn_verbose,v1,primitive,exec,cpu,<kind>,<implementation>,<prop>,...,alg:<algorithm>,...
        if len(f) > 6 and f[0] in ("onednn_verbose", "dnnl_verbose") and "exec" in f[1:4]:
            i = f.index("exec")
            kind, impl = f[i + 2], f[i + 3]
            if kind in ("convolution", "deconvolution"):
                alg = next((x.split(":", 1)[1] for x in f if x.startswith("alg:")), "?")
                found.append(f"{impl} ({alg})")
    if out.returncode != 0 or len(found) != len(specs):
        return None
    return found
