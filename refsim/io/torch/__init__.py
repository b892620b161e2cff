"""Import a torch spiking network as a refsim graph (``nn.Sequential`` directly; other modules,
with skips and ``torch.cat``, through torch.fx). torch and the SNN libraries are imported lazily
(``pip install torch==2.13.0`` then the library, with a constraints file pinning torch). Recording
a torch model's traces step by step is :mod:`refsim.io.torch.record` (also
``refsim.conformance.record_torch``).

Supported modules, in order: ``Conv2d``, ``ConvTranspose2d``, ``AvgPool2d``, ``Linear``, ``Flatten``,
``Dropout``, ``Identity``, IF neurons: SpikingJelly ``IFNode`` (single-step mode), snnTorch
``Leaky(beta=1)``, Sinabs ``IAF`` / ``IAFSqueeze``, Norse ``IAFCell``; and leaky neurons as ``lif``
layers (:func:`leak_of`): snnTorch ``Leaky`` with ``beta < 1`` (one value or one per channel; its
delayed reset unless ``reset_delay=False``), SpikingJelly ``LIFNode`` (``beta = 1 - 1/tau``; with
``decay_input`` a Scale node of ``1/tau`` in front) and Norse ``LIFBoxCell`` (Euler: ``a = dt /
tau_mem``, ``beta = 1 - a``, a Scale node of ``a`` in front; ``v_leak = 0``). The profile follows the neuron class and its
arguments (``profile_of``); layers after the last neuron feed a non-firing Output.
Layer names are ``<index>_<class>`` of the Sequential.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import operator

import numpy as np

from ..._optional import optional_import
from ...conformance.fingerprint import fingerprint, format_fingerprint
from ...errors import ModelFormatError
from ...graph import (AvgPool2d, Concat, Conv2d, ConvTranspose2d, Dropout, Flatten, Graph, Input, Linear, Neuron, Output,
                     Scale)
from ...semantics import DEFAULT_PROFILE, get_profile


def _torch():
    return optional_import("torch", "importing torch models")


_PLAIN = contextvars.ContextVar("refsim_plain_neurons", default=())


def _kind(mod):
    """'sj', 'snntorch', 'sinabs', 'norse' for a neuron module, 'plain' for a user's threshold
    module (a class passed as ``neurons=``), else None."""
    plain = _PLAIN.get()
    if plain and isinstance(mod, plain):
        return "plain"
    name = type(mod).__module__ + "." + type(mod).__name__
    if name.startswith("spikingjelly") and type(mod).__name__ in ("IFNode", "LIFNode"):
        return "sj"
    if name.startswith("snntorch") and type(mod).__name__ == "Leaky":
        return "snntorch"
    if name.startswith("sinabs") and type(mod).__name__ in ("IAF", "IAFSqueeze"):
        return "sinabs"
    if name.startswith("norse") and type(mod).__name__ in ("IAFCell", "LIFBoxCell"):
        return "norse"
    return None


def _scalar(v):
    return float(v.detach().cpu().reshape(-1)[0]) if hasattr(v, "detach") else float(v)


def _plain_threshold(mod, where):
    for attr in ("threshold", "v_threshold", "spike_threshold"):
        if hasattr(mod, attr):
            return attr, _scalar(getattr(mod, attr))
    raise ModelFormatError(where, "a threshold module with a scalar attribute threshold, v_threshold or spike_threshold",
                           f"{type(mod).__name__} without one")


def plain_choices(mod, where="neuron"):
    """The choices of a user's threshold module, measured: a fresh copy with threshold 1 runs the tie
    probes of :mod:`refsim.conformance.fingerprint` (one probe per element of a 1-D input)."""
    torch = _torch()
    attr, _ = _plain_threshold(mod, where)

    def run(x):
        m = copy.deepcopy(mod)
        cur = getattr(m, attr)
        if isinstance(cur, torch.Tensor):
            with torch.no_grad():
                cur.fill_(1.0)
        else:
            setattr(m, attr, 1.0)
        if hasattr(m, "reset"):
            m.reset()
        out = np.zeros(x.shape)
        with torch.no_grad():
            for t in range(x.shape[0]):
                out[t] = np.asarray(m(torch.from_numpy(x[t].astype(np.float32))).detach().cpu()).reshape(-1)
        return out
    rep = fingerprint(run)
    ch = rep["choices"]
    if not rep["matching_choice_sets"] or any(isinstance(v, list) or v is None and f != "v_min" for f, v in ch.items()):
        raise ModelFormatError(where, "a threshold module whose probe spikes one IF choice set reproduces",
                               format_fingerprint(rep).replace("\n", "; "))
    return ch


def neuron_info(mod, where):
    """(threshold, node-level choice overrides, profile name) of a neuron module."""
    k = _kind(mod)
    if k == "plain":
        _, th = _plain_threshold(mod, where)
        return th, plain_choices(mod, where), DEFAULT_PROFILE
    if k == "sj":  # single- or multi-step: the per-step dynamics are the same
        if mod.v_reset is None:
            return _scalar(mod.v_threshold), {}, "spikingjelly"
        if _scalar(mod.v_reset) != 0.0:
            raise ModelFormatError(where, "v_reset None or 0", mod.v_reset)
        return _scalar(mod.v_threshold), {}, "spikingjelly-hard-reset"
    if k == "snntorch":
        mech = mod.reset_mechanism
        if mech == "subtract":
            return _scalar(mod.threshold), {}, "snntorch"
        if mech == "zero":
            return _scalar(mod.threshold), {"reset": "zero"}, "snntorch"
        return _scalar(mod.threshold), {"reset": "none"}, "snntorch"
    if k == "sinabs":
        multi = type(mod.spike_fn).__name__ == "MultiSpike" or getattr(mod.spike_fn, "__name__", "") == "MultiSpike"
        reset = type(mod.reset_fn).__name__
        if reset not in ("MembraneSubtract", "MembraneReset"):
            raise ModelFormatError(where, "MembraneSubtract or MembraneReset", reset)
        ov = {"spikes_per_step": "multi" if multi else "one", "reset": "subtract" if reset == "MembraneSubtract" else "zero",
              "v_min": None if mod.min_v_mem is None else _scalar(mod.min_v_mem)}
        return _scalar(mod.spike_threshold), ov, "sinabs"
    if k == "norse":
        params = type(mod.p).__name__
        method = getattr(getattr(mod.p, "reset_method", None), "__name__", "reset_value")
        if method == "reset_subtract":
            return _scalar(mod.p.v_th), {"reset": "subtract"}, "norse"
        if method != "reset_value":
            raise ModelFormatError(where, f"{params}(reset_method=reset_value or reset_subtract)", method)
        if _scalar(mod.p.v_reset) != 0.0:
            raise ModelFormatError(where, f"{params}(v_reset=0)", _scalar(mod.p.v_reset))
        return _scalar(mod.p.v_th), {}, "norse"
    return None


def leak_of(mod, where):
    """``(model, extra Neuron fields, input gain)`` of a neuron module: ``("if", {}, None)`` for IF
    neurons; for snnTorch ``Leaky(beta < 1)`` a ``lif`` layer with its ``beta`` (one value, or one
    per channel) and, with ``reset_delay=False``, the immediate reset; for SpikingJelly ``LIFNode``
    a ``lif`` layer with ``beta = 1 - 1/tau`` and, with ``decay_input=True`` (its default), the
    input gain ``1/tau`` its charge applies (``v + (x - v) / tau``), which the graph carries as a
    Scale node in front; for Norse ``LIFBoxCell`` (``v + dt/tau_mem (x + v_leak - v)``, Euler) a
    ``lif`` layer with ``a = dt * tau_mem_inv`` as float32 computes it, ``beta = 1 - a`` and the input
    gain ``a`` (``v_leak`` must be 0: Norse starts the membrane there, refsim's layers at 0)."""
    k = _kind(mod)
    if k == "snntorch":
        beta = np.asarray(mod.beta.detach().cpu().numpy() if hasattr(mod.beta, "detach") else mod.beta,
                          dtype=np.float64)
        if beta.ndim > 1:  # (the shape as given: a reshape would hide it)
            raise ModelFormatError(where, "beta as one value or one per channel", f"shape {beta.shape}")
        beta = beta.reshape(-1)
        beta = np.clip(beta, 0.0, 1.0)  # snnTorch clamps beta into [0, 1] when it steps
        if np.all(beta == 1.0):
            return "if", {}, None
        extra = {"beta": float(beta[0]) if beta.size == 1 else beta.astype(np.float32)}
        if not getattr(mod, "reset_delay", True):
            extra["choices"] = {"reset_timing": "with-spike"}
        return "lif", extra, None
    if k == "sj" and type(mod).__name__ == "LIFNode":
        tau = float(mod.tau)
        if not tau >= 1.0:
            raise ModelFormatError(where, "LIFNode tau >= 1", tau)
        return "lif", {"beta": 1.0 - 1.0 / tau}, (1.0 / tau if mod.decay_input else None)
    if k == "norse" and type(mod).__name__ == "LIFBoxCell":
        a = float(np.float32(np.float32(mod.dt) * np.float32(_scalar(mod.p.tau_mem_inv))))
        if not 0.0 < a <= 1.0:
            raise ModelFormatError(where, "LIFBoxCell with 0 < dt * tau_mem_inv <= 1 (a stable Euler step)", a)
        if _scalar(mod.p.v_leak) != 0.0:  # Norse starts the membrane at v_leak; refsim's layers start at 0
            raise ModelFormatError(where, "LIFBoxParameters(v_leak=0) (Norse starts the membrane at v_leak, refsim "
                                   "at 0)", _scalar(mod.p.v_leak))
        return "lif", {"beta": 1.0 - a}, a
    return "if", {}, None


def _w(t):
    return None if t is None else t.detach().cpu().numpy().astype(np.float32)


def _module_node(m, nm, inputs, prof):
    """The refsim nodes (a list, the last one named ``nm``) of torch module ``m`` reading ``inputs``."""
    out = _one_module(m, nm, inputs, prof)
    return out if isinstance(out, list) else [out]


def _one_module(m, nm, inputs, prof):
    torch = _torch()
    nn = torch.nn
    w = _w
    if _kind(m):
        th, ov, _ = neuron_info(m, nm)
        model, extra, gain = leak_of(m, nm)
        ov = {**ov, **extra.pop("choices", {})}
        pc = get_profile(prof).choices(model)
        ov = {k: v for k, v in ov.items() if getattr(pc, k) != v}
        if gain is None:
            return [Neuron(nm, inputs, model, th, choices=ov or None, **extra)]
        return [Scale(nm + "_input", inputs, gain), Neuron(nm, [nm + "_input"], model, th, choices=ov or None, **extra)]
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise ModelFormatError(nm, "padding_mode 'zeros'", m.padding_mode)
        pad = m.padding if isinstance(m.padding, str) else list(m.padding)
        return Conv2d(nm, inputs, w(m.weight), w(m.bias), stride=list(m.stride), padding=pad,
                      dilation=list(m.dilation), groups=m.groups)
    if isinstance(m, nn.ConvTranspose2d):
        return ConvTranspose2d(nm, inputs, w(m.weight), w(m.bias), stride=list(m.stride), padding=list(m.padding),
                               output_padding=list(m.output_padding), dilation=list(m.dilation), groups=m.groups)
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override:
            raise ModelFormatError(nm, "AvgPool2d with ceil_mode=False, count_include_pad=True", "other options")
        return AvgPool2d(nm, inputs, m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.Linear):
        return Linear(nm, inputs, w(m.weight), w(m.bias))
    if isinstance(m, nn.Flatten):
        return Flatten(nm, inputs)
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return Dropout(nm, inputs, getattr(m, "p", 0.0))
    raise ModelFormatError(f"torch module {nm}", "a supported module (see refsim.io.torch)",
                           type(m).__name__)


def profile_of(model) -> str:
    """The refsim profile of the model's neurons (they must agree)."""
    kinds = [(i, m) for i, m in enumerate(model.modules()) if _kind(m)]
    names = {neuron_info(m, str(i))[2] for i, m in kinds if _kind(m) != "plain"}
    if not names and kinds:  # only the user's threshold modules: their measured choices are node overrides
        return DEFAULT_PROFILE
    if len(names) != 1:
        raise ModelFormatError("torch model neurons", "neurons of one library", sorted(names) or "none")
    return names.pop()


@contextlib.contextmanager
def _plain_neurons(neurons):
    classes = tuple(neurons or ())
    if not all(isinstance(c, type) for c in classes):
        raise ModelFormatError("neurons", "a tuple of torch module classes", neurons)
    token = _PLAIN.set(classes)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def export(model, input_shape, name="torch-model", neurons=()):
    """A refsim Graph equal to ``model`` for inputs of shape ``input_shape``.

    ``neurons``: classes of your own threshold modules (plain torch IF neurons with a scalar
    ``threshold``, ``v_threshold`` or ``spike_threshold`` attribute and, if stateful across calls,
    a ``reset()`` method). Their choices are measured with the tie probes (:func:`plain_choices`),
    not assumed, and stored as node-level choices.
    """
    with _plain_neurons(neurons):
        return _export(model, input_shape, name)


def _export(model, input_shape, name):
    torch = _torch()
    if not isinstance(model, torch.nn.Sequential):
        return _export_traced(model, input_shape, name)
    nodes = [Input("input", tuple(input_shape))]
    prev = "input"
    prof = profile_of(model)
    for i, m in enumerate(model):
        nm = f"{i}_{type(m).__name__}"
        nodes.extend(_module_node(m, nm, [prev], prof))
        prev = nm
    nodes.append(Output("output", [prev]))
    return Graph(nodes, name=name, metadata={"profile": prof, "source": "torch adapter"})


def _trace(model):
    """torch.fx graph of ``model`` with neuron modules kept as leaves (their state is Python-side)."""
    _torch()  # a clear error when torch is missing
    import torch.fx as fx

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return _kind(m) is not None or super().is_leaf_module(m, qualname)
    try:
        return _Tracer().trace(model)
    except (fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError) as exc:  # data-dependent Python
        raise ModelFormatError(f"torch model {type(model).__name__}", "a forward that torch.fx can trace (no data-dependent "
                               "control flow; for a model that loops over time itself, export an nn.Sequential of the "
                               "same modules and record with refsim.traces.TraceWriter, docs/traces.md)",
                               f"{type(exc).__name__}: {exc}") from None


def _node_name(target):
    return str(target).replace(".", "_")


def export_traced(model, input_shape, name="torch-model", neurons=()):
    """:func:`export` for non-sequential modules (torch.fx); see :func:`_export_traced`."""
    with _plain_neurons(neurons):
        return _export_traced(model, input_shape, name)


def _export_traced(model, input_shape, name="torch-model"):
    """A refsim Graph equal to a general torch module (skips, ``torch.cat`` along channels), traced with
    torch.fx. Neuron modules must return a spike tensor (SpikingJelly ``IFNode``, snnTorch
    ``Leaky(init_hidden=True)``, Sinabs ``IAFSqueeze``); node names are the module paths with ``_``
    for ``.``. One input; the traced output feeds a non-firing Output node."""
    torch = _torch()
    graph = _trace(model)
    mods = dict(model.named_modules())
    prof = profile_of(model)
    nodes, names = [], {}
    for fxn in graph.nodes:
        where = f"torch.fx node {fxn.name!r}"
        if fxn.op == "placeholder":
            if any(n.TYPE == "Input" for n in nodes):
                raise ModelFormatError(where, "a model with one input", "several inputs")
            nodes.append(Input("input", tuple(input_shape)))
            names[fxn.name] = "input"
        elif fxn.op == "call_module":
            m = mods[fxn.target]
            k = _kind(m)
            if (k == "snntorch" and not m.init_hidden) or k == "norse" or (k == "sinabs" and type(m).__name__ != "IAFSqueeze"):
                raise ModelFormatError(f"torch module {fxn.target}", "a neuron returning a spike tensor (snnTorch "
                                       "init_hidden=True, Sinabs IAFSqueeze) in a non-sequential model", type(m).__name__)
            ins = [names[a.name] for a in fxn.args if isinstance(a, torch.fx.Node)]
            nm = _node_name(fxn.target)
            nodes.extend(_module_node(m, nm, ins, prof))
            names[fxn.name] = nm
        elif fxn.op == "call_function" and fxn.target is torch.cat:
            parts = fxn.args[0]
            dim = fxn.args[1] if len(fxn.args) > 1 else fxn.kwargs.get("dim", 0)
            if dim not in (1, -3):
                raise ModelFormatError(where, "torch.cat along channels (dim=1)", f"dim={dim}")
            nodes.append(Concat(fxn.name, [names[a.name] for a in parts]))
            names[fxn.name] = fxn.name
        elif fxn.op == "call_function" and fxn.target is torch.flatten:
            nodes.append(Flatten(fxn.name, [names[fxn.args[0].name]]))
            names[fxn.name] = fxn.name
        elif fxn.op == "output":
            out = fxn.args[0]
            if not isinstance(out, torch.fx.Node):
                raise ModelFormatError(where, "a model returning one tensor", type(out).__name__)
            nodes.append(Output("output", [names[out.name]]))
        else:
            what = getattr(fxn.target, "__name__", str(fxn.target))
            hint = " (write skips as torch.cat, not +)" if fxn.target in (operator.add, torch.add) else ""
            raise ModelFormatError(where, f"a module call, torch.cat or torch.flatten{hint}", f"{fxn.op} {what}")
    return Graph(nodes, name=name, metadata={"profile": prof, "source": "torch adapter (torch.fx)"})
