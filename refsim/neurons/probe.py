"""The single-neuron runner: N independent neurons of one model driven by given currents.

Used by ``refsim probe``, ``refsim fingerprint`` (the tie probes), :mod:`refsim.testing` and the
library measurements in ``validation/``: one loop over :func:`step` instead of one per caller.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import get_model, make_params
from .multithreshold import emitted
from ..errors import ValidationError
from ..semantics import DEFAULT_PROFILE, get_profile


class NeuronRun(NamedTuple):
    """spikes (T, N): the model's spikes (counts, signs or level masks); ``signed`` (T, N) int64:
    spikes per step with the sign of a ternary spike; v (T, N): membrane after each step;
    v_pre (T, N): the membrane each decision was taken on."""

    spikes: np.ndarray
    signed: np.ndarray
    v: np.ndarray
    v_pre: np.ndarray


def run_neuron(params, inputs, model: str = "if") -> NeuronRun:
    """Run ``model`` with ``params`` on ``inputs`` (T,) for one neuron or (T, N) for N neurons."""
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValidationError("run_neuron(inputs)", "a (T,) or (T, N) array of currents with T >= 1", x.shape)
    m = get_model(model)
    T, N = x.shape
    st = m.init_state((N,))
    spikes, v, v_pre = [], np.empty((T, N)), np.empty((T, N))
    for t in range(T):
        s, st = m.step(st, x[t], params)
        spikes.append(s)
        v[t], v_pre[t] = st.v, st.v_pre
    spikes = np.stack(spikes)
    signed = m.spike_count(spikes) * np.where(spikes.astype(np.int64) < 0, -1, 1) if model == "ternary" \
        else m.spike_count(spikes)
    return NeuronRun(spikes, signed.astype(np.int64), v, v_pre)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def probe(profile=DEFAULT_PROFILE, inputs=(0.5,), T=8, threshold=1.0, model="if", levels=None):
    """One neuron of ``model`` under ``profile`` driven by ``inputs`` (cycled over ``T`` steps), as
    ``refsim probe`` shows it. Returns ``(spikes per step, membranes)``: spikes are counts (signed
    for ternary; for multithreshold, the number of levels that fired)."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError("probe T", "a positive number of steps", T)
    params = make_params(model, threshold, get_profile(profile).choices(model),
                         levels if model == "multithreshold" else None)
    x = np.array([inputs[t % len(inputs)] for t in range(T)], dtype=np.float64)
    r = run_neuron(params, x, model)
    return [int(s) for s in r.signed[:, 0]], [float(v) for v in r.v[:, 0]]


def probe_text(profile=DEFAULT_PROFILE, inputs=(0.5,), T=8, threshold=1.0, model="if", levels=None,
               membrane=False) -> str:
    """What ``refsim probe`` prints: the spike train (:func:`format_spikes`), or for a
    multithreshold neuron the levels that fired and the value sent each step; then the membranes
    when ``membrane``."""
    if model == "multithreshold":
        masks, sent, mems, lv = probe_levels(profile, inputs, T, threshold, levels)
        lines = ["levels " + ", ".join(f"{v:g}" for v in lv) + " (x threshold); per step, one bit per level, highest first:",
                 " ".join(m or "." for m in masks), "sent on per step: " + " ".join(f"{v:g}" for v in sent)]
    else:
        spikes, mems = probe(profile, inputs, T, threshold, model, levels)
        lines = [format_spikes(spikes)]
    if membrane:
        lines.append(" ".join(f"{v:.6g}" for v in mems))
    return "\n".join(lines)


def format_spikes(spikes) -> str:
    """One character per step: 0-9, then a-z for 10-35, '-' for a negative (ternary) spike, '*' beyond."""
    return "".join("-" if s < 0 else (_DIGITS[s] if s < len(_DIGITS) else "*") for s in spikes)


def probe_levels(profile=DEFAULT_PROFILE, inputs=(0.5,), T=8, threshold=1.0, levels=None):
    """One multithreshold neuron (Li et al. eqs. 4-6) as ``refsim probe --model multithreshold``
    shows it: per step the levels that fired as a bit string (highest level first, '' when none),
    the value sent on (the sum of the fired levels times ``threshold``) and the membrane; with the
    levels used."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValidationError("probe T", "a positive number of steps", T)
    params = make_params("multithreshold", threshold, get_profile(profile).choices("multithreshold"), levels)
    x = np.array([inputs[t % len(inputs)] for t in range(T)], dtype=np.float64)
    r = run_neuron(params, x, "multithreshold")
    n = len(params.levels)
    masks = ["".join("1" if (int(m) >> i) & 1 else "0" for i in range(n)) if int(m) else "" for m in r.spikes[:, 0]]
    sent = [float(emitted(r.spikes[t], params)[0]) for t in range(T)]
    return masks, sent, [float(v) for v in r.v[:, 0]], params.levels
