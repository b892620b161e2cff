"""The backend interface: what the :class:`~refsim.simulator.Simulator` asks of a backend.

The Simulator owns the clock, the encoders, static-input caching and the recorder's choices; a
backend owns the arithmetic. Its three jobs:

* **prepare** (``__init__``): lay out parameters once (weights in the kernels' layouts);
* **plan** (:meth:`Backend.plan`): for every computing node, how it will run and why
  (:class:`LayerPlan`); the only place a backend decides that;
* **step** (:meth:`Backend.start` returns a :class:`Run`): per-run state; ``neuron``, ``output`` and
  ``node`` advance one node one step and record what the Recorder asked for.

:class:`Run` here is the dense NumPy path (float64, the reference arithmetic): neuron layers step
their model (:mod:`refsim.neurons`) and record in :meth:`Run.record_neuron`, the one place a dense
neuron's step is written into the traces. A backend that cannot run a graph says which node and
why with :class:`UnsupportedError` (as brian2's ``UnsupportedEquationsException``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import RefsimError, UnknownNameError, ValidationError
from ..graph.nodes import Input, Output
from ..neurons import get_model, integrator
from ..neurons._common import zero_state


class UnsupportedError(RefsimError, ValueError):
    """A backend cannot run something; the message says what and why."""


@dataclass(frozen=True)
class LayerPlan:
    """How a backend runs one node. ``how``: ``"dense"`` (NumPy, reference arithmetic), ``"fused"``
    (one Numba pass per neuron layer), ``"scatter"`` (events scattered by a kernel), ``"events"``
    (a concatenation kept as events); ``kernel``: which kernel; ``reason``: why; ``bound``: the
    largest input magnitude an exactness proof assumed (a step beyond it runs dense)."""

    how: str
    reason: str
    kernel: str | None = None
    bound: float | None = None


def dense(val) -> np.ndarray:
    """A node's value as a dense (B, ...) array (event-backend values convert themselves)."""
    return val if isinstance(val, np.ndarray) else val.dense()


class Backend:
    """Base class of the backends (see the module docstring). Subclasses set ``name`` and ``DTYPES``."""

    name: ClassVar[str] = ""
    DTYPES: ClassVar[tuple] = ("float64",)
    DTYPE_REASON: ClassVar[str] = ""

    def __init__(self, graph, params: dict, dtype: str = "float64", threads: int | None = None):
        if dtype not in ("float64", "float32"):
            raise UnknownNameError("dtype", dtype, ("float64", "float32"))
        if dtype not in self.DTYPES:
            raise ValidationError("Simulator(dtype)", f"{' or '.join(map(repr, self.DTYPES))} for the {self.name} "
                                  f"backend{self.DTYPE_REASON}", dtype)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
            raise ValidationError("Simulator(threads)", "None (Numba's default) or a positive integer", threads)
        self.graph, self.params, self.dtype = graph, params, dtype
        self.threads = None if threads is None else int(threads)

    def plan(self, encoder, recorder=None) -> dict:
        """``{node: LayerPlan}`` for every node that computes (not Input and Output nodes)."""
        return {n: LayerPlan("dense", f"{self.name} backend: dense NumPy, float64")
                for n in self.graph.order if not isinstance(self.graph[n], (Input, Output))}

    def start(self, batch: int, traces, plan: dict) -> "Run":
        return Run(self, batch, traces, plan)


class Run:
    """Per-run state of the dense path: membranes, output integrators, the traces being filled."""

    def __init__(self, backend: Backend, batch: int, traces, plan: dict):
        self.backend, self.g, self.params, self.B = backend, backend.graph, backend.params, batch
        self.tr, self.plan = traces, plan
        self.states = {n: get_model(self.g[n].model).init_state((batch,) + self.g.shapes[n]) for n in self.g.neurons}
        self.states.update({n: zero_state((batch,) + self.g.shapes[n]) for n in self.g.outputs})

    def neuron(self, name: str, value, t: int):
        """Advance neuron layer ``name`` one step on input ``value``; returns what its spikes carry."""
        node, p = self.g[name], self.params[name]
        m = get_model(node.model)
        s, st = m.step(self.states[name], dense(value), p)
        self.states[name] = st
        self.record_neuron(name, t, s, m.spike_count(s), st)
        out = m.emitted(s, p)
        if name in self.tr.values:
            self.tr.values[name] += out
        return out

    def record_neuron(self, name, t, s, n_sp, st):
        """Write one dense step of neuron layer ``name`` into the traces (what the Recorder asked for)."""
        tr = self.tr
        tr.step_counts[name][t] = n_sp.reshape(self.B, -1).sum(axis=1)
        if name in tr.counts:
            tr.counts[name] += n_sp
        if name in tr.spikes:
            rec = tr.spikes[name]
            if not get_model(self.g[name].model).bitmask:
                lim = np.iinfo(rec.dtype)
                if s.size and (s.max() > lim.max or s.min() < lim.min):
                    raise RefsimError(f"layer {name!r} step {t}: more than {lim.max} spikes in one step do not "
                                      f"fit the {lim.dtype} spike record (found {int(s.max())}); record counts only")
            rec[t] = s
        if name in tr.membranes:
            pre = self.params[name].choices.membrane_report == "pre-reset"
            tr.membranes[name][t] = st.v_pre if pre else st.v

    def output(self, name: str, value, t: int):
        """Advance Output node ``name`` (Yue eq. 3, :mod:`refsim.neurons.integrator`)."""
        _, st = integrator.step(self.states[name], dense(value))
        self.states[name] = st
        if name in self.tr.output:
            self.tr.output[name][t] = st.v
        if name in self.tr.membranes:
            self.tr.membranes[name][t] = st.v
        return st.v

    def node(self, node, vals: dict):
        """Value of a synaptic or structural node from the values of its inputs."""
        return node.forward([dense(vals[i]) for i in node.inputs])

    def final_output(self, name: str) -> np.ndarray:
        return self.states[name].v.copy()

    def close(self) -> None:
        """Release what the run holds (the event backend restores the thread count)."""

