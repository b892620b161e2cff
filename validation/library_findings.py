"""Library behaviours that differ from the equations or from the library's own documentation, each
with the smallest input that shows it (torch and the library imported lazily). Used by
``validation/conformance_matrix.py`` (docs/conformance.md) and the conformance tests, which fail
when a library changes the behaviour so that the docs get updated.

Each function returns a dict: ``library``, ``what``, ``input`` (per step), the library's trace(s),
what the equations give for the same input (``expected``, from refsim's reference neuron), and
``differs`` (bool).
"""
from __future__ import annotations

import numpy as np

from refsim.neurons.if_ import IFParams
from refsim.neurons.probe import run_neuron


def _refsim_trace(inputs, profile, **overrides):
    """Spikes, post-reset and pre-reset membranes of refsim's IF neuron (threshold 1) under ``profile``."""
    r = run_neuron(IFParams.from_profile(profile, 1.0, **overrides), np.asarray(inputs, dtype=np.float64))
    return ([int(s) for s in r.signed[:, 0]], [float(v) for v in r.v[:, 0]], [float(v) for v in r.v_pre[:, 0]])


def sinabs_membrane_reset_value(reset_value=0.25, T=6):
    """Sinabs ``MembraneReset(reset_value=r)`` computes ``v * (spikes == 0) + r``: the reset value is
    added to every neuron every step, not only set on the ones that spiked. With no input at all a
    neuron's membrane climbs by r a step and it fires."""
    import torch
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset
    layer = sl.IAF(spike_threshold=1.0, reset_fn=MembraneReset(reset_value=reset_value))
    x = np.zeros(T, np.float32)
    v, s = [], []
    with torch.no_grad():
        for t in range(T):
            out = layer(torch.zeros(1, 1, 1))
            s.append(int(out.reshape(-1)[0]))
            v.append(float(layer.v_mem.reshape(-1)[0]))
    exp_s, exp_v, _ = _refsim_trace(x, "sinabs", reset="zero")
    return {"library": "sinabs", "what": f"IAF(spike_threshold=1, reset_fn=MembraneReset(reset_value={reset_value}))",
            "input": x.tolist(), "spikes": s, "membrane": v, "expected_spikes": exp_s, "expected_membrane": exp_v,
            "differs": s != exp_s or v != exp_v}


def snntorch_reset_delay(x=0.625, T=6):
    """snnTorch ``Leaky`` with ``reset_delay=True`` (its default) returns, on the step a neuron
    fires, the membrane *before* the reset (x = 0.625 keeps every value exact in float32), and applies the reset inside the next step's update.
    The spikes are the paper's; the membranes it reports are refsim's ``membrane_report=
    "pre-reset"`` (the ``snntorch`` profile), not the post-reset membranes of Yue eq. (1)."""
    import torch
    import snntorch as snn
    lif = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")
    xs = np.full(T, x, np.float32)
    mem = torch.zeros(1)
    v, s = [], []
    with torch.no_grad():
        for t in range(T):
            spk, mem = lif(torch.tensor([float(xs[t])]), mem)
            s.append(int(spk[0]))
            v.append(float(mem[0]))
    exp_s, post, pre = _refsim_trace(xs.astype(np.float64), "paper")
    return {"library": "snntorch", "what": "Leaky(beta=1, threshold=1, reset_mechanism='subtract'), reset_delay=True",
            "input": xs.tolist(), "spikes": s, "membrane": v, "expected_spikes": exp_s, "expected_membrane": post,
            "pre_reset_membrane": pre,
            "differs": s != exp_s or v != post}


FINDINGS = {"sinabs MembraneReset(reset_value)": sinabs_membrane_reset_value,
            "snntorch reset_delay": snntorch_reset_delay}
