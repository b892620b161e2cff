"""Torch adapter: export a ``torch.nn.Sequential`` spiking network to a refsim graph and record its
traces step by step. torch and the SNN libraries are imported lazily (``pip install torch==2.13.0``
then the library, with a constraints file pinning torch).

Supported modules, in order: ``Conv2d``, ``ConvTranspose2d``, ``AvgPool2d``, ``Linear``, ``Flatten``,
``Dropout``, ``Identity``, and IF neurons: SpikingJelly ``IFNode`` (single-step mode), snnTorch
``Leaky(beta=1)``, Sinabs ``IAF`` / ``IAFSqueeze``, Norse ``IAFCell``. The profile follows the neuron
class and its arguments (``profile_of``); layers after the last neuron feed a non-firing Output.
Layer names are ``<index>_<class>`` of the Sequential.
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelFormatError


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelFormatError("torch adapter", "torch installed (pip install torch==2.13.0)", "no torch") from None
    return torch


def _kind(mod):
    """'sj', 'snntorch', 'sinabs', 'norse' for a neuron module, else None."""
    name = type(mod).__module__ + "." + type(mod).__name__
    if name.startswith("spikingjelly") and type(mod).__name__ == "IFNode":
        return "sj"
    if name.startswith("snntorch") and type(mod).__name__ == "Leaky":
        return "snntorch"
    if name.startswith("sinabs") and type(mod).__name__ in ("IAF", "IAFSqueeze"):
        return "sinabs"
    if name.startswith("norse") and type(mod).__name__ == "IAFCell":
        return "norse"
    return None


def _scalar(v):
    return float(v.detach().cpu().reshape(-1)[0]) if hasattr(v, "detach") else float(v)


def neuron_info(mod, where):
    """(threshold, node-level choice overrides, profile name) of a neuron module."""
    k = _kind(mod)
    if k == "sj":
        if getattr(mod, "step_mode", "s") != "s":
            raise ModelFormatError(where, "an IFNode in single-step mode (step_mode='s')", mod.step_mode)
        if mod.v_reset is None:
            return _scalar(mod.v_threshold), {}, "spikingjelly"
        if _scalar(mod.v_reset) != 0.0:
            raise ModelFormatError(where, "v_reset None or 0", mod.v_reset)
        return _scalar(mod.v_threshold), {}, "spikingjelly-hard-reset"
    if k == "snntorch":
        if _scalar(mod.beta) != 1.0:
            raise ModelFormatError(where, "Leaky(beta=1) (an IF neuron)", f"beta={_scalar(mod.beta)}")
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
        if _scalar(mod.p.v_reset) != 0.0:
            raise ModelFormatError(where, "IAFParameters(v_reset=0)", _scalar(mod.p.v_reset))
        return _scalar(mod.p.v_th), {}, "norse"
    return None


def profile_of(model) -> str:
    """The refsim profile of the model's neurons (they must agree)."""
    names = {neuron_info(m, str(i))[2] for i, m in enumerate(model) if _kind(m)}
    if len(names) != 1:
        raise ModelFormatError("torch model neurons", "neurons of one library", sorted(names) or "none")
    return names.pop()


def export(model, input_shape, name="torch-model"):
    """A refsim Graph equal to ``model`` (a torch.nn.Sequential) for inputs of shape ``input_shape``."""
    torch = _torch()
    from ...graph import (AvgPool2d, Conv2d, ConvTranspose2d, Dropout, Flatten, Graph, Input, Linear, Neuron, Output)
    nn = torch.nn
    nodes = [Input("input", tuple(input_shape))]
    prev = "input"
    prof = profile_of(model)

    def w(t):
        return None if t is None else t.detach().cpu().numpy().astype(np.float32)

    for i, m in enumerate(model):
        nm = f"{i}_{type(m).__name__}"
        if _kind(m):
            th, ov, _ = neuron_info(m, nm)
            from ...semantics import get_profile
            pc = get_profile(prof).choices("if")
            ov = {k: v for k, v in ov.items() if getattr(pc, k) != v}
            nodes.append(Neuron(nm, [prev], "if", th, choices=ov or None))
        elif isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise ModelFormatError(nm, "padding_mode 'zeros'", m.padding_mode)
            pad = m.padding if isinstance(m.padding, str) else list(m.padding)
            nodes.append(Conv2d(nm, [prev], w(m.weight), w(m.bias), stride=list(m.stride), padding=pad,
                                dilation=list(m.dilation), groups=m.groups))
        elif isinstance(m, nn.ConvTranspose2d):
            nodes.append(ConvTranspose2d(nm, [prev], w(m.weight), w(m.bias), stride=list(m.stride), padding=list(m.padding),
                                         output_padding=list(m.output_padding), dilation=list(m.dilation), groups=m.groups))
        elif isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or not m.count_include_pad or m.divisor_override:
                raise ModelFormatError(nm, "AvgPool2d with ceil_mode=False, count_include_pad=True", "other options")
            nodes.append(AvgPool2d(nm, [prev], m.kernel_size, m.stride, m.padding))
        elif isinstance(m, nn.Linear):
            nodes.append(Linear(nm, [prev], w(m.weight), w(m.bias)))
        elif isinstance(m, nn.Flatten):
            nodes.append(Flatten(nm, [prev]))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            nodes.append(Dropout(nm, [prev], getattr(m, "p", 0.0)))
        else:
            raise ModelFormatError(f"torch module {nm}", "a supported module (see refsim.conformance.adapters.torch)",
                                   type(m).__name__)
        prev = nm
    nodes.append(Output("output", [prev]))
    return Graph(nodes, name=name, metadata={"profile": prof, "source": "torch adapter"})


def record(model, inputs, name="torch-model"):
    """Run ``model`` step by step on ``inputs`` (T, B, *input shape) and return refsim Traces with the
    spikes of every neuron module, the input train and the output membrane (float32 sums in torch)."""
    torch = _torch()
    from ...simulator import Traces
    x = np.asarray(inputs, dtype=np.float32)
    T, B = x.shape[:2]
    prof = profile_of(model)
    states = {}
    for m in model:
        k = _kind(m)
        if k == "sj":
            m.reset()
        elif k == "sinabs":
            m.reset_states()
    tr = Traces(T=int(T), batch=int(B), profile=prof, backend=f"torch {torch.__version__}", encoder={"type": "replay"})
    tr.inputs["input"] = x.astype(np.float64)
    out_acc = None
    with torch.no_grad():
        for t in range(T):
            h = torch.from_numpy(x[t])
            for i, m in enumerate(model):
                k = _kind(m)
                nm = f"{i}_{type(m).__name__}"
                if k is None:
                    h = m(h)
                    continue
                if k == "sj":
                    h = m(h)
                elif k == "snntorch":
                    if m.init_hidden:
                        h = m(h)
                    else:
                        mem = states.get(i)
                        if mem is None:
                            mem = torch.zeros_like(h)
                        h, states[i] = m(h, mem)
                elif k == "sinabs":
                    h = m(h) if type(m).__name__ == "IAFSqueeze" else m(h.unsqueeze(1)).squeeze(1)
                else:
                    h, states[i] = m(h, states.get(i))
                s = h.detach().cpu().numpy()
                if nm not in tr.spikes:
                    tr.spikes[nm] = np.zeros((T,) + s.shape, dtype=np.int16 if k == "sinabs" else np.int8)
                    tr.step_counts[nm] = np.zeros((T, B), dtype=np.int64)
                    tr.layers[nm] = {"model": "if", "shape": tuple(s.shape[1:]), "neurons": int(np.prod(s.shape[1:]))}
                tr.spikes[nm][t] = s  # spike counts (0/1, or n for Sinabs MultiSpike)
                tr.step_counts[nm][t] = np.abs(s).reshape(B, -1).sum(axis=1)
            o = h.detach().cpu().numpy().astype(np.float64)
            out_acc = o if out_acc is None else out_acc + o
            tr.output.setdefault("output", np.zeros((T,) + o.shape))[t] = out_acc
    tr.final_output["output"] = out_acc
    return tr
