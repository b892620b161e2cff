"""What the SNN libraries do with NIR's IF neuron, measured (torch, nir and the libraries imported
lazily; used by ``validation/conformance_matrix.py`` and the conformance tests).

* **import**: a NIR graph ``Input -> Affine(1x1, weight 1) -> IF(r=1, v_threshold=1) -> Output`` is
  loaded by the library (snnTorch ``import_from_nir``, Sinabs ``from_nir``, Norse ``from_nir``),
  the tie probes of :mod:`refsim.conformance.fingerprint` are run through it, one probe per batch
  element, and the choices it makes are compared with what the NIR ``IF`` node says it does (the
  installed nir package's docstring: ``z = 1 if v > v_thr``, ``v - v_thr`` if ``z = 1``; that is
  refsim's ``paper`` choices).
* **export**: a one-neuron model of the library's IF neuron is written to NIR; the node type and
  its fields are reported, and whether NIR's IF semantics equal what the neuron itself does.

SpikingJelly 2.0 has no NIR export or import.
"""
from __future__ import annotations

import numpy as np

from refsim.conformance.fingerprint import fingerprint

NIR_IF_CHOICES = {"comparison": ">", "order": "integrate-then-fire", "reset": "subtract", "spikes_per_step": "one",
                  "v_min": None}


def _graph(n):
    import nir
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1])),
               "lin": nir.Affine(weight=np.ones((1, 1), np.float32), bias=np.zeros(1, np.float32)),
               "neuron": nir.IF(r=np.ones(1, np.float32), v_threshold=np.ones(1, np.float32)),
               "output": nir.Output(output_type=np.array([1]))},
        edges=[("input", "lin"), ("lin", "neuron"), ("neuron", "output")])


def _tensor(r):
    while isinstance(r, (tuple, list)):
        r = r[0]
    return r


def _importer(lib, n):
    if lib == "snntorch":
        from snntorch.import_nir import import_from_nir
        return import_from_nir(_graph(n))
    if lib == "sinabs":
        import sinabs
        return sinabs.from_nir(_graph(n), batch_size=n)
    if lib == "norse":
        import norse.torch as nt
        return nt.from_nir(_graph(n))
    raise ValueError(lib)


def import_row(lib):
    """Fingerprint of NIR's IF as imported by ``lib``: {"module", "choices", "profiles", "matches_nir"}."""
    import torch

    def run(x):  # (T, N) -> (T, N)
        T, N = x.shape
        net = _importer(lib, N)
        state = None
        out = np.zeros((T, N))
        with torch.no_grad():
            for t in range(T):
                xt = torch.from_numpy(x[t].astype(np.float32)).reshape(N, 1)
                r = net(xt, state) if state is not None else net(xt)
                if isinstance(r, tuple) and len(r) == 2 and not isinstance(r[1], torch.Tensor):
                    r, state = r
                out[t] = _tensor(r).detach().reshape(N).numpy()
        return out
    rep = fingerprint(run)
    mods = [m for m in _importer(lib, 1).modules() if type(m).__name__ not in
            ("GraphExecutor", "GraphModule", "Identity", "Linear", "Sequential")]
    notes = []
    for m in mods:
        for attr in ("beta", "min_v_mem", "spike_threshold", "threshold", "reset_mechanism", "reset_delay"):
            if hasattr(m, attr) and getattr(m, attr) is not None:
                v = getattr(m, attr)
                v = float(v.detach().reshape(-1)[0]) if hasattr(v, "detach") else v
                notes.append(f"{attr}={v}")
        if hasattr(m, "spike_fn"):
            notes.append(f"spike_fn={getattr(m.spike_fn, '__name__', type(m.spike_fn).__name__)}")
    matches = all(rep["choices"].get(k) == v for k, v in NIR_IF_CHOICES.items())
    return {"library": lib, "module": ", ".join(type(m).__name__ for m in mods), "parameters": notes,
            "choices": rep["choices"], "profiles": rep["profiles"], "matches_nir": matches,
            "reproduced_by_known_choices": rep["matching_choice_sets"] > 0, "trains": rep["trains"]}


def export_row(lib):
    """NIR written by ``lib`` for its IF neuron: {"node", "fields", "neuron_choices", "same_semantics"},
    or {"error": ...} when the library's export fails with the installed nir package."""
    try:
        return _export_row(lib)
    except Exception as exc:  # a library/nir version mismatch is a finding, not a crash
        return {"library": lib, "error": f"{type(exc).__name__}: {exc}", "same_semantics": False}


def _export_row(lib):
    import torch
    nn = torch.nn
    if lib == "snntorch":
        import snntorch as snn
        from snntorch.export_nir import export_to_nir
        net = nn.Sequential(nn.Linear(1, 1), snn.Leaky(beta=1.0, threshold=1.0, init_hidden=True))
        g = export_to_nir(net, torch.zeros(1, 1))
        own = {"comparison": ">", "reset": "subtract", "spikes_per_step": "one"}
    elif lib == "sinabs":
        import sinabs
        import sinabs.layers as sl
        net = nn.Sequential(nn.Linear(1, 1), sl.IAFSqueeze(batch_size=1))
        g = sinabs.to_nir(net, torch.zeros(1, 1))
        own = {"comparison": ">=", "reset": "subtract", "spikes_per_step": "multi"}
    elif lib == "norse":
        import norse.torch as nt
        net = nt.SequentialState(nn.Linear(1, 1), nt.IAFCell())
        g = nt.to_nir(net, torch.zeros(1, 1))
        own = {"comparison": ">", "reset": "zero", "spikes_per_step": "one"}
    else:
        raise ValueError(lib)
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    neuron = [v for v in g.nodes.values() if type(v).__name__ not in ("Input", "Output", "Affine", "Linear")]
    node = neuron[0] if neuron else None
    fields = {}
    if node is not None:
        for f in ("r", "v_threshold", "v_reset", "tau", "v_leak"):
            if hasattr(node, f):
                v = np.asarray(getattr(node, f).detach() if hasattr(getattr(node, f), "detach") else getattr(node, f))
                fields[f] = v.reshape(-1)[:1].tolist()
    same = node is not None and type(node).__name__ == "IF" and all(NIR_IF_CHOICES[k] == v for k, v in own.items())
    return {"library": lib, "node": type(node).__name__ if node is not None else None, "nodes": kinds, "fields": fields,
            "neuron_choices": own, "same_semantics": same}


LIBRARIES = ("snntorch", "sinabs", "norse")
