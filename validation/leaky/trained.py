"""Trained leaky networks, cross-checked (issue 23): an snnTorch ``Leaky`` classifier and a
SpikingJelly ``LIFNode`` classifier trained with surrogate gradients on the UCI digits
(../shared/data/classification/digits.npz, CC BY 4.0), recorded step by step in torch (float32),
and checked by refsim in both modes on their matching profiles. Also: one recorded spike flipped
(must be found at its layer, step and neuron), a wrong reset and a wrong beta (must diverge).

    python -m validation.leaky.trained            # about a minute of CPU; writes RESULTS.json beside it
    python -m validation.leaky.trained --quick    # what tests/conformance/test_leaky_trained.py runs

Both networks are 64 -> 48 -> 10 fully connected, direct (analog) input repeated every step,
T steps, cross-entropy on the output layer's spike counts; the hidden and output layers are the
library's own leaky neurons (snnTorch: beta 0.9, subtract reset delayed a step, its default;
SpikingJelly: tau 2, decay_input, hard reset to 0, its default)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "classification", "digits.npz")


def load_digits(path=DATA):
    d = np.load(path)
    x = d["images"].reshape(len(d["images"]), 64).astype(np.float32) / 16.0
    return x, d["target"].astype(np.int64)


def build(library):
    import torch.nn as nn
    if library == "snntorch":
        import snntorch as snn
        return nn.Sequential(nn.Linear(64, 48), snn.Leaky(beta=0.9, init_hidden=True),
                             nn.Linear(48, 10), snn.Leaky(beta=0.9, init_hidden=True))
    from spikingjelly.activation_based import neuron, surrogate
    return nn.Sequential(nn.Linear(64, 48), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
                         nn.Linear(48, 10), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()))


def _reset(net, library):
    if library == "snntorch":
        import snntorch.utils as su
        su.reset(net)
    else:
        from spikingjelly.activation_based import functional
        functional.reset_net(net)


def train(library, x, y, T, epochs, seed=0, batch=64):
    import torch
    torch.manual_seed(seed)
    net = build(library)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), batch):
            idx = torch.from_numpy(order[i:i + batch])
            _reset(net, library)
            counts = 0
            for _t in range(T):
                counts = counts + net(xt[idx])
            loss = torch.nn.functional.cross_entropy(counts, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def accuracy(net, library, x, y, T):
    import torch
    with torch.no_grad():
        _reset(net, library)
        counts = 0
        for _t in range(T):
            counts = counts + net(torch.from_numpy(x))
    return float((counts.argmax(1).numpy() == y).mean())


def cross_check(net, library, x, T):
    """Export, record in torch, check in both modes; then the three planted faults."""
    from refsim.conformance.check import check
    from refsim.conformance.record_torch import record
    from refsim.io.torch import export
    g = export(net, (64,), name=f"{library}-digits")
    tr = record(net, np.repeat(x[None], T, axis=0), name=g.name)
    out = {"profile": tr.profile, "layers": {n: g[n].model for n in g.neurons},
           "betas": {n: float(np.asarray(g[n].beta)) for n in g.neurons}, "T": T, "batch": int(len(x))}
    for mode in ("teacher-forced", "free-running"):
        t0 = time.perf_counter()
        rep = check(g, tr, tr.profile, mode=mode)
        out[mode] = {"conforms": rep["conforms"], "seconds": round(time.perf_counter() - t0, 2),
                     "decisions": sum(r["compared"] for r in rep["layers"]),
                     "ties": sum(r["ties"] for r in rep["layers"]),
                     "divergences": sum(r["divergences"] for r in rep["layers"])}
    spikes = {n: int(tr.spikes[n].sum()) for n in g.neurons}
    out["spikes"] = spikes
    # a flipped spike: found at its layer, step and neuron, in both modes
    layer = g.neurons[-1]
    t, b, i = T // 2, 0, int(np.argmax(tr.spikes[layer][T // 2, 0] == 0))
    orig = tr.spikes[layer][t, b, i]
    tr.spikes[layer][t, b, i] = 1 - orig
    flips = {}
    for mode in ("teacher-forced", "free-running"):
        rep = check(g, tr, tr.profile, mode=mode, explain_divergences=False)
        first = {r["layer"]: r for r in rep["layers"]}[layer]["first"]
        flips[mode] = {"conforms": rep["conforms"], "found_at": None if first is None else
                       [first["step"]] + first["neuron"], "planted_at": [t, b, i]}
    tr.spikes[layer][t, b, i] = orig
    out["flipped_spike"] = flips
    # a wrong reset and a wrong beta on the checking side
    from refsim.graph import Graph
    wrong_reset = "subtract" if get_choice(g, tr.profile, "reset") == "zero" else "zero"
    g_reset = Graph([g[n].replace(choices={**g[n].choices, "reset": wrong_reset}) if n in g.neurons else g[n]
                     for n in g.order], name=g.name, metadata=g.metadata)
    rep = check(g_reset, tr, tr.profile)
    expl = {r["layer"]: r["explained_by"] for r in rep["layers"] if r["divergences"]}
    out["wrong_reset"] = {"checked_with": wrong_reset, "conforms": rep["conforms"], "explained_by": expl}
    wrong = {n: 0.75 * float(np.asarray(g[n].beta)) for n in g.neurons}
    g_beta = Graph([g[n].replace(beta=wrong[n]) if n in g.neurons else g[n] for n in g.order], name=g.name,
                   metadata=g.metadata)
    rep = check(g_beta, tr, tr.profile)
    out["wrong_beta"] = {"checked_with": wrong, "conforms": rep["conforms"],
                         "explained_by": {r["layer"]: r["explained_by"] for r in rep["layers"] if r["divergences"]}}
    return out


def get_choice(g, profile, field):
    from refsim.semantics import get_profile
    n = g.neurons[0]
    return getattr(get_profile(profile).choices(g[n].model).replace(**g[n].choices), field)


def run(quick=False, libraries=("snntorch", "spikingjelly"), echo=print):
    x, y = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    test, train_idx = order[:300], order[300:]
    T = 8 if quick else 16
    epochs = 3 if quick else 8
    n_check = 16 if quick else 100
    results = {"data": "UCI digits (../shared/data/classification/digits.npz), 1497 train / 300 test",
               "T": T, "epochs": epochs, "checked_samples": n_check}
    for lib in libraries:
        t0 = time.perf_counter()
        net = train(lib, x[train_idx], y[train_idx], T, epochs)
        acc = accuracy(net, lib, x[test], y[test], T)
        res = cross_check(net, lib, x[test[:n_check]], T)
        res["test_accuracy"] = acc
        res["train_seconds"] = round(time.perf_counter() - t0, 1)
        results[lib] = res
        echo(f"{lib}: test accuracy {acc:.3f}; check teacher-forced {res['teacher-forced']}, "
             f"free-running {res['free-running']}; flipped {res['flipped_spike']}; wrong reset "
             f"{res['wrong_reset']['conforms']}, wrong beta {res['wrong_beta']['conforms']}")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="three epochs, T=8, 16 checked samples")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.json"), help="where the results go")
    args = ap.parse_args(argv)
    res = run(args.quick)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
