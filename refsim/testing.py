"""Helpers for users' own test suites: assertions and hypothesis strategies.

>>> from refsim.testing import assert_conforms, assert_neuron_matches
>>> assert_conforms("model.safetensors", "traces.npz", profile="spikingjelly")   # in a pytest test
>>> assert_golden("tests/golden")   # cases made by `refsim golden init`

``assert_neuron_matches(step_fn, profile)`` property-tests a neuron implementation (a callable from
a (T, N) array of input currents to (T, N) spike counts, threshold 1) against a refsim profile on the
tie probes and on the inputs a hypothesis strategy draws (use with ``@given(refsim.testing.currents())``).
Hypothesis is imported only by the strategies.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np

from .conformance import golden
from .conformance.check import check, format_report
from .conformance.fingerprint import probe_inputs, simulate_choices
from .errors import RefsimError
from .graph import Graph
from .io import load_model
from .semantics import DEFAULT_PROFILE, get_profile, profile_for
from .traces import load_traces


class ConformanceError(RefsimError, AssertionError):
    """Raised by the assertions; the message is refsim's report."""


def assert_conforms(model, traces, profile=None):
    """Fail unless ``traces`` (path or Traces) conform to ``model`` (path or Graph) under ``profile``."""
    g = model if isinstance(model, Graph) else load_model(model)
    tr = load_traces(traces) if not hasattr(traces, "spikes") else traces
    rep = check(g, tr, profile_for(g, profile, tr.profile))
    if not rep["conforms"]:
        raise ConformanceError(format_report(rep))
    return rep


def assert_golden(directory, backend="reference"):
    """Fail unless every golden case in ``directory`` (made by ``refsim golden init``) gives its
    expected traces bit for bit; the message names each failing case and its first differing entry,
    step and neuron. Returns the :class:`refsim.conformance.golden.GoldenResult`.

    In a user's test suite::

        def test_my_model_still_spikes_the_same():
            refsim.testing.assert_golden("tests/golden")
    """
    res = golden.verify(directory, backend=backend, echo=lambda *a: None)
    if not res:
        raise ConformanceError("golden cases differ from their expected traces:\n" + res.report())
    return res


def assert_neuron_matches(step_fn, profile=DEFAULT_PROFILE, inputs=None):
    """Fail unless ``step_fn`` gives the same spikes as ``profile``'s IF neuron (threshold 1).

    ``inputs``: a (T, N) array of currents; default: the tie probes of ``refsim fingerprint``.
    """
    x = probe_inputs() if inputs is None else np.asarray(inputs, dtype=np.float64)
    want = simulate_choices(get_profile(profile).choices("if"), x)
    got = np.asarray(step_fn(x.copy())).astype(np.int64)
    if got.shape != want.shape or not np.array_equal(got, want):
        if got.shape != want.shape:
            raise ConformanceError(f"spikes: expected shape {want.shape}, found {got.shape}")
        t, n = (int(i) for i in np.argwhere(got != want)[0])
        raise ConformanceError(f"neuron {n} step {t}: profile {profile!r} gives {want[t, n]} spike(s), the implementation "
                               f"{got[t, n]}; inputs of that neuron up to there: {x[:t + 1, n].tolist()}")


def currents(max_steps=40, max_neurons=8, dyadic=True):
    """Hypothesis strategy: (T, N) input currents. ``dyadic`` keeps values on a 2^-8 grid so exact
    ties with the threshold happen often (where implementations differ)."""
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
    elems = (st.integers(-512, 768).map(lambda k: k / 256.0) if dyadic
             else st.floats(-2.0, 3.0, allow_nan=False, width=32))
    shape = st.tuples(st.integers(1, max_steps), st.integers(1, max_neurons))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=elems))


def spike_trains(max_steps=40, max_neurons=8, ternary=False):
    """Hypothesis strategy: (T, N) spike trains in {0, 1} (or {-1, 0, 1})."""
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
    elems = st.sampled_from([-1.0, 0.0, 1.0] if ternary else [0.0, 1.0])
    shape = st.tuples(st.integers(1, max_steps), st.integers(1, max_neurons))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=elems))


def damage_traces(tr, kind: str, which: int, value: int):
    """A copy of :class:`~refsim.traces.Traces` ``tr`` with one structural defect, for fuzzing what
    consumes traces (``refsim check``, your own wrappers): ``kind`` one of :data:`TRACE_DAMAGES`,
    ``which`` picks the spikes or inputs entry, ``value`` parameterises the edit (an axis, a dtype,
    a position). The arrays of ``tr`` are not modified."""
    tr = copy.copy(tr)
    tr.spikes, tr.inputs = dict(tr.spikes), dict(tr.inputs)
    entries = [("spikes", k) for k in tr.spikes] + [("inputs", k) for k in tr.inputs]
    if not entries:
        return tr
    ek, name = entries[which % len(entries)]
    d = getattr(tr, ek)
    a = d[name]
    if kind in ("swap_axes", "shorten", "nonfinite", "values") and (a.ndim < 2 or a.size == 0):
        return tr  # nothing of that kind to damage in a scalar or empty entry
    if kind == "T":
        tr.T = value % 12 - 3
    elif kind == "batch":
        tr.batch = value % 6 - 1
    elif kind == "drop":
        del d[name]
    elif kind == "rename":
        d[name + "_x"] = d.pop(name)
    elif kind == "swap_axes":
        d[name] = np.swapaxes(a, 0, 1 + value % (a.ndim - 1))
    elif kind == "shorten":
        ax = value % a.ndim
        d[name] = np.take(a, range(max(0, a.shape[ax] - 1 - value % 3)), axis=ax)
    elif kind == "dtype":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d[name] = a.astype([np.float32, np.float64, np.bool_, np.int64, np.uint8, np.int8, np.complex64][value % 7])
    elif kind == "nonfinite":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = a.astype(np.float64)
        b.flat[value % b.size] = [np.nan, np.inf, -np.inf][value % 3]
        d[name] = b
    elif kind == "values":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = np.nan_to_num(a.real if a.dtype.kind == "c" else a).astype(np.int64)
        b.flat[value % b.size] = [7, -3, 300, -129, 2 ** 40][value % 5]
        d[name] = b
    elif kind == "extra_axis":
        d[name] = a[..., None]
    elif kind == "scalar":
        d[name] = np.array(1.0)
    return tr


#: the kinds of :func:`damage_traces`
TRACE_DAMAGES = ("T", "batch", "drop", "rename", "swap_axes", "shorten", "dtype", "nonfinite", "values", "extra_axis", "scalar")
