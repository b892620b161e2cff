"""Fuzzing near the memory budget (issue 21, class 4): random networks sized so that what the size
checks estimate (``Simulator.memory_estimate``) falls between a third of the budget and a few times
it, run as a user would, with the budget set small (``--budget-mib``, default 384) so that the runs
are quick and the refusals many.

Each case is a chain of 1-4 layers (convolutions with kernels up to 11x11, stride, dilation, padding
and groups; transposed convolutions with strides up to 4; Upsample by up to 8; average pooling; a
Linear layer after a Flatten), IF neurons after most of them, a batch of 1-16, T of 1-3, a random
recorder (counts, every spike and membrane, synaptic operations, inputs) and backend. Outcomes:

* ``refused``: the size check refused the run (a RefsimError naming batch or T) and its estimate
  was indeed over the budget;
* ``ran``: the run finished and the resident memory it added (VmHWM, reset before the run) stayed
  within the estimate;
* ``over_estimate``: the run added more than its estimate: the estimate missed an allocation;
* ``refused_within``: refused although the estimate fits (a check stricter than it says);
* ``internal``: anything else (a MemoryError under the address-space cap, any other exception).

The process re-executes itself with ``MALLOC_MMAP_THRESHOLD_=65536``, so large arrays are mapped
and returned to the system when freed and each case's peak is its own, and caps its address space
(the baseline after loading plus four budgets), so an allocation the checks did not foresee fails
as a MemoryError instead of swapping.

    python -m validation.fuzz_memory --cases 400      # results into validation/fuzz_results.json
"""
from __future__ import annotations

import gc
import os
import random
import resource
import sys
import time

import numpy as np

from refsim import _system
from refsim.encoding import PoissonEncoder
from refsim.errors import RefsimError
from refsim.graph import AvgPool2d, Conv2d, ConvTranspose2d, Flatten, Graph, Input, Linear, Neuron, Output, Upsample
from refsim.simulator import RUNTIME_BYTES, Recorder, Simulator
from validation._fuzzing import parser, save_results

OUTCOMES = ("refused", "ran", "over_estimate", "refused_within", "internal")


def random_case(rng: random.Random, budget: int):
    """(graph, batch, T, recorder, backend) whose estimate lies roughly in [budget/3, 4 budget]."""
    nrng = np.random.default_rng(rng.randrange(2 ** 31))
    f32 = lambda *s: (nrng.standard_normal(s) * 0.5).astype(np.float32)  # noqa: E731
    c, h, w = rng.choice([1, 2, 3, 4, 8]), rng.randint(4, 96), rng.randint(4, 96)
    nodes, prev, shape = [Input("x", (c, h, w))], "x", (c, h, w)
    for i in range(rng.randint(1, 4)):
        kind = rng.choice(["conv", "conv", "convt", "up", "pool", "linear"])
        c, h, w = shape
        name = f"l{i}"
        if kind == "conv":
            k, d = rng.choice([1, 3, 5, 7, 11]), rng.choice([1, 1, 2])
            groups = rng.choice([g for g in (1, 2, 4) if c % g == 0])
            cout = groups * rng.choice([1, 2, 4, 8, 16])
            node = Conv2d(name, [prev], f32(cout, c // groups, k, k), None, stride=rng.choice([1, 1, 2]),
                          padding=rng.randint(0, k // 2 * d), dilation=d, groups=groups)
        elif kind == "convt":
            k, s = rng.choice([2, 3, 4, 5]), rng.choice([1, 2, 3, 4])
            node = ConvTranspose2d(name, [prev], f32(c, rng.choice([1, 2, 4, 8]), k, k), None, stride=s,
                                   padding=rng.randint(0, k // 2), output_padding=rng.randint(0, s - 1))
        elif kind == "up":
            node = Upsample(name, [prev], rng.choice([2, 3, 4, 8]))
        elif kind == "pool":
            if h < 2 or w < 2:
                continue
            node = AvgPool2d(name, [prev], 2)
        else:
            if c * h * w > 200_000:
                continue
            nodes.append(Flatten(name + "f", [prev]))
            node = Linear(name, [name + "f"], f32(rng.choice([4, 16, 64]), c * h * w))
        try:
            g = Graph(nodes + [node, Output("o", [name])])
        except RefsimError:
            break
        nodes.append(node)
        prev, shape = name, g.shapes[name]
        if kind != "up" and rng.random() < 0.8:
            nodes.append(Neuron(name + "n", [prev], "if", rng.choice([0.5, 1.0, 2.0])))
            prev = name + "n"
        if len(shape) != 3:
            break
    g = Graph(nodes + [Output("o", [prev])])
    rec = rng.choice([Recorder(), Recorder(spikes=True, membranes=True, output=True),
                      Recorder(synops=True), Recorder(inputs=True, output=True)])
    backend, T = rng.choice(["reference", "event"]), rng.randint(1, 3)
    probe = Simulator(g, "paper", "reference")
    one = probe.memory_estimate(T, 1, rec)
    per_sample = max(one["work"] + one["records"] - RUNTIME_BYTES, 1)  # the runtime allowance is counted once
    target = rng.uniform(0.3, 4.0) * budget  # a batch that lands the estimate near the budget
    batch = int(min(16, max(1, target // per_sample)))
    return g, batch, T, rec, backend


def run_case(g, batch, T, rec, backend, budget):
    sim = Simulator(g, "paper", backend)
    est = sim.memory_estimate(T, batch, rec)
    total = est["work"] + est["records"]
    x = np.random.default_rng(0).random((batch,) + tuple(g.shapes[g.inputs[0]])) * 0.5
    gc.collect()
    before = _system.process_bytes("VmRSS")
    _system.reset_peak_memory()
    try:
        tr = sim.run(x, T, PoissonEncoder(seed=0), rec)
    except RefsimError as exc:
        if ("batch" in str(exc) or "T (steps)" in str(exc)) and total > budget:
            return "refused", total, 0, None
        return ("refused_within" if total <= budget else "refused"), total, 0, str(exc)[:300]
    except Exception as exc:  # noqa: BLE001 - every other failure is a finding
        return "internal", total, 0, f"{type(exc).__name__}: {exc}"[:300]
    added = _system.process_bytes("VmHWM") - before
    del tr
    return ("ran" if added <= total else "over_estimate"), total, added, None


def main(argv=None):
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != "65536":  # each case's peak its own (module docstring)
        os.execve(sys.executable, [sys.executable, "-m", "validation.fuzz_memory"] + (sys.argv[1:] if argv is None
                  else list(argv)), dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536"))
    ap = parser(__doc__.split("\n")[0], "networks")
    ap.add_argument("--budget-mib", type=int, default=384, help="the memory budget the runs get (default 384 MiB)")
    ap.set_defaults(cases=400)
    args = ap.parse_args(argv)
    budget = args.budget_mib << 20
    _system.memory_budget = lambda: budget  # every size check reads the budget from here
    rng = random.Random(args.seed)
    g0 = Graph([Input("x", (1, 8, 8)), Conv2d("c", ["x"], np.ones((2, 1, 3, 3), np.float32)), Neuron("n", ["c"], "if", 1.0),
                Output("o", ["n"])])
    for be in ("reference", "event"):  # kernels loaded before the cap and the measurements
        Simulator(g0, "paper", be).run(np.zeros((1, 1, 8, 8)), 1, PoissonEncoder(seed=0), Recorder(synops=True))
    cap = _system.process_bytes("VmSize") + 4 * budget
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    counts = {k: 0 for k in OUTCOMES}
    findings, ratios, closest, t0 = [], [], None, time.time()
    for i in range(args.cases):
        try:
            case = random_case(rng, budget)
        except RefsimError:
            continue
        outcome, est, added, detail = run_case(*case, budget)
        counts[outcome] += 1
        if outcome == "ran" and est > 0:
            ratios.append(added / est)
            if added / est >= max(ratios):
                g, batch, T, rec, backend = case
                closest = {"case": i, "backend": backend, "batch": batch, "T": T, "added": added, "estimate": est,
                           "layers": [f"{g[n].TYPE} {g.shapes[n]}" for n in g.order]}
        if outcome not in ("refused", "ran"):
            g, batch, T, rec, backend = case
            findings.append({"case": i, "outcome": outcome, "backend": backend, "batch": batch, "T": T,
                             "recorder": repr(rec), "layers": [f"{g[n].TYPE} {g.shapes[n]}" for n in g.order],
                             "estimate": est, "added": added, "detail": detail})
            print(findings[-1], flush=True)
        if (i + 1) % 50 == 0:
            print(f"{i + 1} cases: {counts}", flush=True)
    summary = {"cases": sum(counts.values()), **counts, "budget_mib": args.budget_mib,
               "largest_added_over_estimate": round(max(ratios), 3) if ratios else None, "closest_case": closest,
               "seconds": round(time.time() - t0), "findings": findings[:20],
               "command": f"python -m validation.fuzz_memory --cases {args.cases} --seed {args.seed} "
                          f"--budget-mib {args.budget_mib}"}
    print({k: v for k, v in summary.items() if k != "findings"})
    for f in findings[:20]:
        print(f)
    if not args.no_write:
        save_results({"memory_budget": summary})
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())
