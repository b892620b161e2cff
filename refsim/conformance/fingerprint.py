"""``refsim fingerprint``: run the tie probes through an implementation and say which choices it makes.

The implementation is a Python callable ``step_fn(inputs) -> spikes``: given a (T, N) array of
input currents for N independent neurons with threshold 1 starting at 0, it returns their (T, N)
spike counts (an adapter wraps a torch neuron this way), or a (T, N) spike array recorded for
:data:`PROBES`. Every combination of the choices of docs/semantics.md section 1 is simulated on the same
probes; the ones that reproduce every probe are reported, with the choices they agree on.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import ValidationError
from ..io.inputs import load_array
from ..neurons import if_
from ..neurons.probe import run_neuron
from ..semantics import NeuronChoices, SPIKE_TRAIN_CHOICES, get_profile, list_profiles

T_PROBE = 12
#: name -> per-step input (cycled). Each separates at least one pair of choices.
PROBES = {
    "const 1.0": [1.0], "const 0.5": [0.5], "const 0.25": [0.25], "const 0.75": [0.75], "const 2.0": [2.0],
    "const 2.5": [2.5], "negative then positive": [-0.75, -0.75, -0.75, 1.0, 1.0, 0.25],
    "one pulse 1.5": [1.5, 0.0, 0.0, 0.0],
}
#: the choices a fingerprint identifies, and their values (:data:`refsim.semantics.SPIKE_TRAIN_CHOICES`)
FIELDS = SPIKE_TRAIN_CHOICES


def probe_inputs() -> np.ndarray:
    cols = [[seq[t % len(seq)] for t in range(T_PROBE)] for seq in PROBES.values()]
    return np.array(cols, dtype=np.float64).T  # (T, N)


def simulate_choices(choices: NeuronChoices, x=None) -> np.ndarray:
    """(T, N) spike counts of IF neurons (threshold 1) with ``choices`` on the probes (or ``x``)."""
    x = probe_inputs() if x is None else x
    return run_neuron(if_.IFParams(1.0, choices), x).signed


def observed_spikes(obs, where="SPIKES") -> np.ndarray:
    """A user's recorded probe spikes, checked: integer counts per step and probe, not the probe
    inputs themselves. ``where`` names the file in errors."""
    obs = np.asarray(obs)
    probes = probe_inputs()
    if obs.shape == probes.shape and obs.dtype.kind == "f" and np.array_equal(obs, probes):
        raise ValidationError(f"SPIKES {where}", "the spikes your neuron emitted for the probe inputs",
                              "the probe inputs themselves (run them through your neuron first)")
    if obs.dtype.kind not in "biuf" or (obs.size and not np.all(np.isfinite(obs))) or np.any(obs != np.round(obs)):
        raise ValidationError(f"SPIKES {where}", "integer spike counts per step and probe", f"dtype {obs.dtype}")
    return obs


def fingerprint_of(spikes=None, profile=None, names=("spikes", "profile")) -> dict:
    """The fingerprint of exactly one of: a ``spikes`` file (.npy, (T, N), recorded for
    :func:`probe_inputs`) or a refsim ``profile`` name (a self-check). ``names``: what the caller
    calls the two in errors (the command line passes its argument and option)."""
    if (profile is None) == (spikes is None):
        raise ValidationError(" / ".join(names), f"exactly one of them ({names[0]}: spikes recorded for the probe "
                              f"inputs, or {names[1]}: a profile name)", "both" if profile is not None else "neither")
    if profile is not None:
        return fingerprint(simulate_choices(get_profile(profile).choices("if")))
    return fingerprint(observed_spikes(load_array(spikes), spikes))


def fingerprint(impl) -> dict:
    """``impl``: a callable (T, N) inputs -> (T, N) spikes, or the recorded (T, N) spikes."""
    x = probe_inputs()
    observed = np.asarray(impl(x.copy()) if callable(impl) else impl)
    if observed.shape != x.shape:
        raise ValidationError("fingerprint: spikes of the probes", f"shape {x.shape} (steps, probes)", observed.shape)
    observed = observed.astype(np.int64)
    matches = []
    for combo in itertools.product(*FIELDS.values()):
        ch = NeuronChoices(**dict(zip(FIELDS, combo)))
        if np.array_equal(simulate_choices(ch, x), observed):
            matches.append(ch)
    determined = {}
    for f in FIELDS:
        vals = {getattr(m, f) for m in matches}
        determined[f] = vals.pop() if len(vals) == 1 else (sorted(map(str, vals)) if vals else None)
    profiles = [p for p in list_profiles() if np.array_equal(simulate_choices(get_profile(p).choices("if"), x), observed)]
    trains = {name: "".join(str(int(v)) if 0 <= v < 10 else "*" for v in observed[:, i]) for i, name in enumerate(PROBES)}
    return {"matching_choice_sets": len(matches), "choices": determined, "profiles": profiles, "trains": trains}


def format_fingerprint(rep) -> str:
    lines = ["probe trains (spikes per step, threshold 1):"]
    lines += [f"  {k:<24} {v}" for k, v in rep["trains"].items()]
    if not rep["matching_choice_sets"]:
        lines.append("no combination of the known choices reproduces these trains")
    for f, v in rep["choices"].items():
        lines.append(f"  {f:<16} {v if not isinstance(v, list) else 'undetermined: ' + ' or '.join(v)}")
    lines.append("matching profiles: " + (", ".join(rep["profiles"]) or "none"))
    return "\n".join(lines)
