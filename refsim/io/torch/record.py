"""Record a torch spiking network's traces step by step, for ``refsim check`` (torch imported lazily).

:func:`record` runs ``nn.Sequential`` models module by module and other modules through forward
hooks on their neuron modules (names as :func:`refsim.io.torch.export` gives them). It shares the
package's reading of neuron modules (:func:`refsim.io.torch.neuron_info` and the private kind test),
so a module is recorded as it is exported. Public as ``refsim.conformance.record_torch.record``
(the name the docs use) and ``refsim.io.torch.record.record``.
"""
from __future__ import annotations

import math

import numpy as np

from . import _kind, _node_name, _plain_neurons, _torch, profile_of
from ...errors import ModelFormatError
from ...traces import Traces


def _store_spikes(tr, nm, kind, s, t):
    """Put one step's spikes ``s`` (B, ...) of neuron module ``nm`` into the traces (counts: 0/1, or
    n for multi-spike neurons, hence int16 for Sinabs and users' own modules)."""
    T, B = tr.T, tr.batch
    if nm not in tr.spikes:
        tr.spikes[nm] = np.zeros((T,) + s.shape, dtype=np.int16 if kind in ("sinabs", "plain") else np.int8)
        tr.step_counts[nm] = np.zeros((T, B), dtype=np.int64)
        tr.layers[nm] = {"model": "if", "shape": tuple(s.shape[1:]), "neurons": math.prod(s.shape[1:])}
    tr.spikes[nm][t] = s
    tr.step_counts[nm][t] = np.abs(s).reshape(B, -1).sum(axis=1)


def _single_step(model):
    """record() steps the model one time step at a time; a SpikingJelly module in multi-step mode
    expects the whole sequence, so say how to record it instead."""
    for qn, m in model.named_modules():
        if getattr(m, "step_mode", "s") == "m":
            raise ModelFormatError(f"torch module {qn or type(model).__name__}",
                                   "single-step mode for record() (spikingjelly functional.set_step_mode(net, 's')), or "
                                   "record a multi-step model yourself with refsim.traces.TraceWriter (docs/traces.md)",
                                   "step_mode='m'")


def _reset(m):
    k = _kind(m)
    if k == "sj":
        m.reset()
    elif k == "sinabs":
        m.reset_states()
    elif k == "snntorch" and m.init_hidden:
        m.reset_mem()
    elif k == "plain" and hasattr(m, "reset"):
        m.reset()


def record_traced(model, inputs, name="torch-model", neurons=()):
    _single_step(model)
    with _plain_neurons(neurons):
        return _record_traced(model, inputs, name)


def _record_traced(model, inputs, name):
    """:func:`record` for a general module: forward hooks on the neuron modules capture each step's spikes
    (names as :func:`export_traced`); the model's output, summed over steps, is the output membrane."""
    torch = _torch()
    x = np.asarray(inputs, dtype=np.float32)
    T, B = x.shape[:2]
    prof = profile_of(model)
    tr = Traces(T=int(T), batch=int(B), profile=prof, backend=f"torch {torch.__version__}", encoder={"type": "replay"})
    tr.inputs["input"] = x.astype(np.float64)
    step = {"t": 0}
    hooks = []

    def hook(nm, k):
        def f(mod, args, out):
            s = out.detach().cpu().numpy()
            t = step["t"]
            _store_spikes(tr, nm, k, s, t)
        return f
    for qn, m in model.named_modules():
        if _kind(m):
            _reset(m)
            hooks.append(m.register_forward_hook(hook(_node_name(qn), _kind(m))))
    out_acc = None
    try:
        with torch.no_grad():
            for t in range(T):
                step["t"] = t
                o = model(torch.from_numpy(x[t])).detach().cpu().numpy().astype(np.float64)
                out_acc = o if out_acc is None else out_acc + o
                tr.output.setdefault("output", np.zeros((T,) + o.shape))[t] = out_acc
    finally:
        for h in hooks:
            h.remove()
    tr.final_output["output"] = out_acc
    return tr


def record(model, inputs, name="torch-model", neurons=()):
    """Run ``model`` step by step on ``inputs`` (T, B, *input shape) and return refsim Traces with the
    spikes of every neuron module, the input train and the output membrane (float32 sums in torch).
    ``neurons``: your own threshold module classes, as for :func:`refsim.io.torch.export`. Models
    that keep time inside their own forward (SpikingJelly multi-step mode, a loop over a Norse cell)
    are recorded with :class:`refsim.traces.TraceWriter` instead (docs/traces.md)."""
    _single_step(model)
    with _plain_neurons(neurons):
        return _record(model, inputs, name)


def _record(model, inputs, name):
    torch = _torch()
    if not isinstance(model, torch.nn.Sequential):
        return _record_traced(model, inputs, name)
    x = np.asarray(inputs, dtype=np.float32)
    T, B = x.shape[:2]
    prof = profile_of(model)
    states = {}
    for m in model:
        _reset(m)
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
                if k in ("sj", "plain"):
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
                _store_spikes(tr, nm, k, s, t)
            o = h.detach().cpu().numpy().astype(np.float64)
            out_acc = o if out_acc is None else out_acc + o
            tr.output.setdefault("output", np.zeros((T,) + o.shape))[t] = out_acc
    tr.final_output["output"] = out_acc
    return tr
