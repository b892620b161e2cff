"""Every choice that changes spike trains, as named and validated fields.

docs/semantics.md section 1 lists the places where two reasonable implementations of the same
integrate-and-fire network disagree. :class:`NeuronChoices` names each of them;
:class:`Profile` bundles one set of choices per neuron model under a name, and the registry
(:func:`get_profile`, :func:`register_profile`, :func:`list_profiles`) holds the named sets
(``paper`` is the default: the equations of Yue et al. 2023 eqs. (1)-(3) and Li et al. eqs. (1)-(6)).

Glossary of fields
------------------
comparison : ``">"`` or ``">="``
    How the membrane ``v`` is compared with the threshold ``theta``.
order : ``"integrate-then-fire"`` or ``"fire-then-integrate"``
    Whether step t's input is added before the spike decision of step t (papers) or after it
    (Rathi et al. 2020 code: the decision uses the membrane left by step t-1).
reset : ``"subtract"``, ``"zero"`` or ``"none"``
    What happens to ``v`` after a spike: subtract the emitted charge (soft reset), set to 0
    (hard reset), or leave it.
spikes_per_step : ``"one"`` or ``"multi"``
    At most one spike a step, or as many as the threshold fits in ``v`` (Sinabs ``MultiSpike``:
    ``floor(v / theta)`` with ``>=``).
v_min : float or None
    Membrane floor applied after the reset (Sinabs ``min_v_mem``); ``None`` for no floor.
spike_value : ``"one"`` or ``"threshold"``
    Value a spike carries to the next layer: 1, or the threshold (Spiking-UNet ``vth * spike``).
membrane_report : ``"post-reset"`` or ``"pre-reset"``
    Which membrane a recorder sees; snnTorch ``reset_delay=True`` reports the pre-reset value.
    It never changes spikes.
reset_timing : ``"with-spike"`` or ``"next-step"``
    Leaky models only (``lif``, ``cubalif``): whether a subtractive reset is applied in the step of
    the spike, so the next step's leak decays the reset membrane (Norse, Sinabs, SpikingJelly,
    snnTorch ``reset_delay=False``), or at the next step after its leak (snnTorch ``Leaky`` with
    ``reset_delay=True``: ``v[t] = beta v[t-1] + I[t] - theta s[t-1]``). Without a leak (IF) the two
    are the same.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ._text import table
from .errors import UnknownNameError, ValidationError

COMPARISONS = (">", ">=")
ORDERS = ("integrate-then-fire", "fire-then-integrate")
RESETS = ("subtract", "zero", "none")
SPIKES_PER_STEP = ("one", "multi")
SPIKE_VALUES = ("one", "threshold")
MEMBRANE_REPORTS = ("post-reset", "pre-reset")
RESET_TIMINGS = ("with-spike", "next-step")
#: the neuron models' names; :data:`refsim.neurons.MODEL_NAMES` maps each to its functions and properties
MODEL_NAMES = ("if", "ternary", "multithreshold", "lif", "cubalif")

#: Every spike-changing choice that takes a name, with its allowed values: the one list that the
#: neuron steps, the event kernels' flags (refsim.backends.event.kernels.choice_flags), check's
#: explanations and fingerprint derive from. ``v_min`` is a number or None.
CHOICE_VALUES = {"comparison": COMPARISONS, "order": ORDERS, "reset": RESETS, "spikes_per_step": SPIKES_PER_STEP,
                 "spike_value": SPIKE_VALUES, "membrane_report": MEMBRANE_REPORTS, "reset_timing": RESET_TIMINGS}
#: The values of the membrane floor that explanations and fingerprints try (none; Sinabs from_model's -1).
V_MIN_VALUES = (None, -1.0)
#: The choices that change a neuron's own spike train (what ``refsim check`` explains a divergence with
#: and ``refsim fingerprint`` identifies); spike_value changes what the next layer receives and
#: membrane_report what a recorder sees, not the layer's own spikes; reset_timing changes only leaky
#: models' trains (IF neurons, the ones check explains and fingerprint probes, cannot tell it).
SPIKE_TRAIN_CHOICES = {"comparison": COMPARISONS, "order": ORDERS, "reset": RESETS,
                       "spikes_per_step": SPIKES_PER_STEP, "v_min": V_MIN_VALUES}


def _check_choice(where: str, value, allowed) -> None:
    if value not in allowed:
        raise ValidationError(where, "one of " + ", ".join(repr(a) for a in allowed), value)


@dataclass(frozen=True)
class NeuronChoices:
    """One value for each spike-changing choice (see the module docstring)."""

    comparison: str = ">"
    order: str = "integrate-then-fire"
    reset: str = "subtract"
    spikes_per_step: str = "one"
    v_min: float | None = None
    spike_value: str = "one"
    membrane_report: str = "post-reset"
    reset_timing: str = "with-spike"

    def __post_init__(self):
        for name, allowed in CHOICE_VALUES.items():
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValidationError(f"NeuronChoices.{name}", "one of " + ", ".join(repr(a) for a in allowed), repr(value))
            _check_choice(f"NeuronChoices.{name}", value, allowed)
        if self.v_min is not None:
            v = self.v_min
            try:
                ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(float(v)) \
                    and abs(float(v)) < 3.4e38
            except OverflowError:  # an integer too large for a float
                ok = False
            if not ok:
                raise ValidationError("NeuronChoices.v_min", "None or a number finite in float32",
                                      repr(v) if not isinstance(v, int) else f"an integer of {len(str(abs(v)))} digits")
            object.__setattr__(self, "v_min", float(v))

    def replace(self, **changes) -> "NeuronChoices":
        """Return a copy with some fields changed (unknown field names raise)."""
        valid = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in valid:
                raise UnknownNameError("neuron choice", key, valid)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Profile:
    """A named set of choices: ``base`` for every neuron, ``per_model`` overrides by model name.

    Parameters
    ----------
    name : str
        Registry name.
    description : str
        One line saying whose behaviour this is.
    source : str
        Where the behaviour was read (paper equation, library class).
    base : NeuronChoices
        Choices for every neuron model.
    per_model : mapping of model name to dict
        Field overrides for one neuron model (``"if"``, ``"ternary"``, ``"multithreshold"``).
    """

    name: str
    description: str
    source: str
    base: NeuronChoices = field(default_factory=NeuronChoices)
    per_model: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self):
        for model, overrides in self.per_model.items():
            if model not in MODEL_NAMES:
                raise UnknownNameError("neuron model", model, MODEL_NAMES)
            self.base.replace(**overrides)  # validates
        object.__setattr__(self, "per_model",
                           MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.per_model.items()}))

    def choices(self, model: str) -> NeuronChoices:
        """The resolved choices for neuron model ``model``."""
        if model not in MODEL_NAMES:
            raise UnknownNameError("neuron model", model, MODEL_NAMES)
        return self.base.replace(**dict(self.per_model.get(model, {})))


_PROFILES: dict[str, Profile] = {}


def register_profile(profile: Profile, *, overwrite: bool = False) -> Profile:
    """Add a profile to the registry (``overwrite=True`` to replace an existing name)."""
    if not isinstance(profile, Profile):
        raise ValidationError("register_profile(profile)", "a refsim.semantics.Profile", type(profile).__name__)
    if profile.name in _PROFILES and not overwrite:
        raise ValidationError("register_profile(profile.name)", "a name not yet registered", profile.name)
    _PROFILES[profile.name] = profile
    return profile


def get_profile(name: "str | Profile") -> Profile:
    """Look a profile up by name; a :class:`Profile` passes through unchanged."""
    if isinstance(name, Profile):
        return name
    try:
        return _PROFILES[name]
    except (KeyError, TypeError):
        raise UnknownNameError("profile", name, _PROFILES) from None


def format_profiles(model: str = "if") -> str:
    """The choices every profile makes for neuron ``model``, as a table (``refsim profiles``)."""
    if model not in MODEL_NAMES:
        raise UnknownNameError("neuron model", model, MODEL_NAMES)
    fields = [f.name for f in dataclasses.fields(NeuronChoices)]
    rows = [["profile"] + fields]
    for name in list_profiles():
        c = get_profile(name).choices(model).as_dict()
        rows.append([name] + [str(c[f]) for f in fields])
    return table(rows) + f"\n\n(choices of the {model!r} model)"


def list_profiles() -> list[str]:
    return sorted(_PROFILES)


DEFAULT_PROFILE = "paper"


def profile_for(graph=None, *given) -> str:
    """The profile a run of ``graph`` uses: the first of ``given`` that is not None or empty (an
    option, a trace's own profile), else the model's metadata ``profile``, else
    :data:`DEFAULT_PROFILE` (the order :class:`refsim.config.RunConfig` applies to every setting)."""
    for v in given:
        if v:
            return v
    return (getattr(graph, "metadata", None) or {}).get("profile") or DEFAULT_PROFILE

# The multi-threshold neuron's comparison as coded by the authors of Li et al.
# (SNNresearch/Spiking-UNet @1c198cb, snn/spiking_neuron.py; docs/semantics.md section 3).
_MT_AUTHORS = {"comparison": ">", "reset": "subtract", "spike_value": "one", "spikes_per_step": "one"}
# The only ternary hidden neuron we know of is SpikingJelly's TernaryIFNode (+1 at h >= theta,
# -1 at h <= -theta, signed soft reset); no paper defines one, so every profile uses it unless told.
_TERNARY_SJ = {"comparison": ">=", "reset": "subtract", "spikes_per_step": "one"}
# Leaky layers (lif, cubalif) follow each library's own LIF class where it differs from its IF one.
_LIF_SNNTORCH = {"reset_timing": "next-step"}     # snntorch.Leaky(reset_delay=True), pre-reset membrane
_LIF_NORSE = {"comparison": ">", "reset": "zero"}  # norse LIFBoxCell / LIFCell: heaviside(v - v_th), v_reset = 0

register_profile(Profile(
    "paper", "The papers' equations: integrate, fire on v > theta, subtract theta.",
    "Yue et al. 2023 eqs. (1)-(3); Li et al. eqs. (1)-(6), Theorem 3.1",
    NeuronChoices(">", "integrate-then-fire", "subtract", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "rathi2020", "Rathi et al. 2020 hybrid-conversion code: fire on the previous membrane, then integrate.",
    "Rathi et al. 2020 code (mem/thr - 1 > 0, reset by subtraction); followed by Yue et al. 2023",
    NeuronChoices(">", "fire-then-integrate", "subtract", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "spiking-unet", "Spiking-UNet scripts: IF fires on >=, resets to zero, emits vth * spike; MT neuron greedy with >.",
    "SNNresearch/Spiking-UNet @1c198cb snn/spiking_neuron.py; Li et al. eqs. (1)-(6)",
    NeuronChoices(">=", "integrate-then-fire", "zero", "one", None, "threshold", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "spikingjelly", "SpikingJelly IFNode(v_reset=None): heaviside(v - theta) is v >= theta, soft reset.",
    "spikingjelly.activation_based.neuron.IFNode / TernaryIFNode",
    NeuronChoices(">=", "integrate-then-fire", "subtract", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "spikingjelly-hard-reset", "SpikingJelly IFNode() with its default v_reset=0.0 (hard reset).",
    "spikingjelly.activation_based.neuron.IFNode(v_reset=0.0)",
    NeuronChoices(">=", "integrate-then-fire", "zero", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "snntorch", "snnTorch Leaky(beta=1, reset_mechanism='subtract'): fires on v > theta, reports the pre-reset membrane.",
    "snntorch.Leaky (reset_delay=True)",
    NeuronChoices(">", "integrate-then-fire", "subtract", "one", None, "one", "pre-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ, "lif": _LIF_SNNTORCH, "cubalif": _LIF_SNNTORCH}))
register_profile(Profile(
    "sinabs", "Sinabs IAF with MultiSpike: floor(v / theta) spikes a step (v >= theta), subtract, no floor.",
    "sinabs.layers.IAF (spike_fn=MultiSpike, reset_fn=MembraneSubtract, min_v_mem=None)",
    NeuronChoices(">=", "integrate-then-fire", "subtract", "multi", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "sinabs-from-model", "Sinabs from_model(): as 'sinabs' with the membrane clamped at min_v_mem=-1.",
    "sinabs.from_model (min_v_mem=-1.0)",
    NeuronChoices(">=", "integrate-then-fire", "subtract", "multi", -1.0, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "norse", "Norse IAFCell: integrate, fire on v > theta, reset to v_reset = 0.",
    "norse.torch.functional.iaf.iaf_feed_forward_step",
    NeuronChoices(">", "integrate-then-fire", "zero", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ, "lif": _LIF_NORSE, "cubalif": _LIF_NORSE}))
register_profile(Profile(
    "nir", "NIR before 1.0.6: fire on v > v_threshold, subtract the threshold (IF, LIF, CubaLIF).",
    "nir.ir.neuron (nir<=1.0.5) equations; refsim.io.nir maps files without v_reset to it",
    NeuronChoices(">", "integrate-then-fire", "subtract", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
register_profile(Profile(
    "nir-reset", "NIR 1.0.6 and later: fire on v > v_threshold, reset to v_reset (0 here).",
    "nir.ir.neuron (nir>=1.0.6) equations; refsim.io.nir maps files with v_reset to it",
    NeuronChoices(">", "integrate-then-fire", "zero", "one", None, "one", "post-reset"),
    {"multithreshold": _MT_AUTHORS, "ternary": _TERNARY_SJ}))
