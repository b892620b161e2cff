"""Structure-aware fuzzing of refsim model graphs (issue 21): the graph JSON document and its
tensors are mutated as data (not bytes), so nearly every case gets past the container and reaches
the graph's own validation. Each case is then taken as far as it goes, as a user would:

    load (Graph.from_dict)  ->  refsim info  ->  run T=3 on both backends  ->  compare

and counted as ``refused`` (a RefsimError at load or run: exit 2), ``ran`` (both backends ran and
agreed: spikes and output membranes bit for bit in float64), ``mismatch`` (both ran and disagreed:
a silent wrong answer), or ``internal`` (any other exception, or refsim info exiting 3). The
harness itself sets an address-space limit, so an allocation its memory checks did not foresee
shows up as an internal MemoryError, not as a swapping machine.

Bases: a small U-Net (conv, transposed conv, pool, concat), a classifier (flatten, linear, sum
pool, scale, dropout, upsample, add), ternary, multi-threshold, LIF and CubaLIF layers, and a
recurrent graph (Delay). Mutations (1-3 a case): a field set to a value of another type or range
(strings, lists, objects, null, booleans, 0, negatives, 10**40, 1e39, huge shapes, ragged lists,
lone surrogates), a field dropped or an unknown one added, a node's type swapped, an input
reference broken or redirected, nodes dropped, duplicated or reordered, a tensor's shape, dtype or
values changed (NaN, inf, 1e30, empty), a tensor removed or an extra one added, metadata values.

    python -m validation.fuzz_graph --cases 20000      # results into validation/fuzz_results.json
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import sys
import tempfile
import time

import numpy as np

from refsim import cli, models
from refsim.encoding import PoissonEncoder
from refsim.errors import RefsimError
from refsim.graph import (Add, AvgPool2d, Conv2d, Delay, Dropout, Flatten, Graph, Input, Linear, Neuron, Output, Scale,
                          SumPool2d, Upsample)
from refsim.io import save_model
from refsim.simulator import Recorder, Simulator
from validation._fuzzing import limit_address_space, parser, save_results

#: values a mutated field may take: other types, edge ranges, sizes that overflow
ODD_VALUES = ["x", "", "\ud800", [], [1], [1, 2, 3], [[1, 2], [3]], {}, {"a": 1}, {"tensor": 3}, {"tensor": "nope"},
              None, True, False, 0, -1, 1, 2, 3, 7, 10 ** 40, -10 ** 40, 1e39, -1e39, 1e-45, 0.5, 2 ** 31, 2 ** 62,
              [2 ** 32, 2 ** 32, 1], [0, 0], [-1, 3], [1, 1, 1, 1, 1], [1.5, 2], ["a", "b"], 1e308, -0.0]


def bases():
    rng = np.random.default_rng(0)
    unet = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 3), seed=0)
    w = lambda *s: rng.normal(0, 0.5, s).astype(np.float32)  # noqa: E731
    clf = Graph([Input("x", (1, 8, 8)), Conv2d("c", ["x"], w(3, 1, 3, 3), w(3), padding=1),
                 Neuron("n", ["c"], "if", 0.5), SumPool2d("p", ["n"], 2), Upsample("u", ["p"], 2),
                 Add("a", ["u", "n"]), Dropout("d", ["a"]), Flatten("f", ["d"]), Scale("s", ["f"], 0.5),
                 Linear("l", ["s"], w(4, 192), w(4)), Neuron("o_n", ["l"], "ternary", 1.0), Output("o", ["o_n"])])
    mt = Graph([Input("x", (1, 6, 6)), Conv2d("c", ["x"], w(2, 1, 3, 3)), Neuron("n", ["c"], "multithreshold", 0.5,
                                                                           levels=(2.0, 1.0)),
                AvgPool2d("p", ["n"], 2), Output("o", ["p"])])
    leaky = Graph([Input("x", (6,)), Linear("l1", ["x"], w(5, 6)), Neuron("n1", ["l1"], "lif", 0.8, beta=0.9, bias=0.1),
                   Linear("l2", ["n1"], w(3, 5)), Neuron("n2", ["l2"], "cubalif", 0.8, beta=0.8, alpha=0.5, gain=1.5),
                   Output("o", ["n2"])])
    rec = Graph([Input("x", (4,)), Delay("d", ["n"], (5,)), Linear("li", ["x"], w(5, 4)), Linear("lr", ["d"], w(5, 5)),
                 Add("a", ["li", "lr"]), Neuron("n", ["a"], "lif", 1.0, beta=0.7), Output("o", ["n"])])
    return [unet, clf, mt, leaky, rec]


def mutate(doc, tensors, rng):
    nodes = doc["nodes"] if isinstance(doc.get("nodes"), list) else []
    kind = rng.choice(["field", "field", "field", "drop_field", "add_field", "type", "inputs", "inputs", "nodes",
                       "tensor", "tensor", "tensor_set", "metadata", "top", "plausible", "plausible", "plausible",
                       "plausible", "plausible"])
    if kind == "plausible":  # a change a real model could have: most such graphs load, and must run alike
        nd = rng.choice(nodes) if nodes else None
        fields = ["threshold", "beta", "alpha", "bias", "gain", "stride", "padding", "dilation", "factor",
                  "scale_factor", "kernel_size", "choices", "model", "levels"]
        fields = [k for k in fields if isinstance(nd, dict) and (k in nd or (nd.get("type") == "Neuron" and k in
                                                                           ("choices", "model", "beta")))]
        if fields:
            k = rng.choice(fields)
            nd[k] = rng.choice({
                "threshold": [rng.uniform(0.05, 3), 2.0 ** rng.randint(-6, 3), [0.5, 1.0, 2.0]],
                "beta": [rng.random(), 1.0, 0.0], "alpha": [rng.random()], "bias": [rng.uniform(-1, 1)],
                "gain": [rng.uniform(0, 2)], "stride": [[1, 1], [2, 2], [1, 2]], "padding": [[0, 0], [1, 1], [2, 1, 0, 1]],
                "dilation": [[1, 1], [2, 2]], "factor": [rng.uniform(-2, 2), 0.5], "scale_factor": [[2, 2], [1, 3]],
                "kernel_size": [[2, 2], [3, 3], [1, 2]],
                "choices": [{"comparison": ">="}, {"reset": "zero"}, {"order": "fire-then-integrate"},
                            {"spikes_per_step": "multi"}, {"v_min": -1.0}, {"spike_value": "threshold"},
                            {"reset_timing": "next-step"}, {"membrane_report": "pre-reset"}],
                "model": ["if", "ternary", "multithreshold", "lif", "cubalif"], "levels": [[2.0, 1.0], [1.0]]}[k])
        elif tensors:
            k = rng.choice(sorted(tensors))
            tensors[k] = (tensors[k] * rng.choice([0.25, 2.0, -1.0, 1e-3, 8.0])).astype(np.float32)
        return
    if kind in ("field", "drop_field", "add_field", "type", "inputs") and nodes:
        nd = rng.choice(nodes)
        if not isinstance(nd, dict):
            return
        keys = [k for k in nd if k != "name"] or ["name"]
        if kind == "field":
            k = rng.choice(keys + ["name"])
            nd[k] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == "drop_field":
            nd.pop(rng.choice(keys), None)
        elif kind == "add_field":
            nd[rng.choice(["bogus", "levels", "beta", "alpha", "bias", "padding", "choices", "model"])] = \
                copy.deepcopy(rng.choice(ODD_VALUES))
        elif kind == "type":
            nd["type"] = rng.choice(["Conv2d", "ConvTranspose2d", "Linear", "Neuron", "AvgPool2d", "SumPool2d", "Add",
                                     "Concat", "Flatten", "Upsample", "Delay", "Scale", "Output", "Input", "Dropout"])
        else:
            names = [n.get("name") for n in nodes if isinstance(n, dict)]
            how = rng.choice(["dangling", "redirect", "self", "empty", "extra"])
            ins = nd.get("inputs") if isinstance(nd.get("inputs"), list) else []
            if how == "dangling":
                nd["inputs"] = ["nowhere"]
            elif how == "redirect" and names:
                nd["inputs"] = [rng.choice(names) for _ in range(max(1, len(ins)))]
            elif how == "self":
                nd["inputs"] = [nd.get("name")]
            elif how == "empty":
                nd["inputs"] = []
            else:
                nd["inputs"] = ins + [rng.choice(names)] if names else ins
    elif kind == "nodes" and nodes:
        how = rng.choice(["drop", "dup", "swap", "shuffle"])
        i = rng.randrange(len(nodes))
        if how == "drop":
            del nodes[i]
        elif how == "dup":
            nodes.insert(i, copy.deepcopy(nodes[i]))
        elif how == "swap":
            j = rng.randrange(len(nodes))
            nodes[i], nodes[j] = nodes[j], nodes[i]
        else:
            rng.shuffle(nodes)
    elif kind == "tensor" and tensors:
        k = rng.choice(sorted(tensors))
        a = tensors[k]
        how = rng.choice(["nan", "inf", "huge", "shape", "empty", "dtype", "scalar", "zero"])
        if how in ("nan", "inf", "huge") and a.size:
            a = a.astype(np.float32)
            a.flat[rng.randrange(a.size)] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[how]
        elif how == "shape":
            a = np.resize(a, tuple(max(1, s + rng.choice([-1, 1, 2])) for s in a.shape)).astype(np.float32)
        elif how == "empty":
            a = np.zeros((0,) + a.shape[1:], np.float32)
        elif how == "dtype":
            a = a.astype(rng.choice([np.float64, np.int32, np.float16, np.uint8]))
        elif how == "scalar":
            a = np.float32(1.0).reshape(())
        else:
            a = np.zeros_like(a)
        tensors[k] = a
    elif kind == "tensor_set":
        if tensors and rng.random() < 0.5:
            del tensors[rng.choice(sorted(tensors))]
        else:
            tensors["extra.weight"] = np.ones(3, np.float32)
    elif kind == "metadata":
        doc["metadata"] = rng.choice([None, [], "x", {"profile": rng.choice(ODD_VALUES)},
                                      {"axis": rng.choice(ODD_VALUES)}, {"normalize": 3}, {"encoding": "nope"}])
    else:
        key = rng.choice(["format", "format_version", "nodes", "name"])
        doc[key] = copy.deepcopy(rng.choice(ODD_VALUES))


def run_case(doc, tensors, rng, tmp):
    """'refused', 'ran' or 'mismatch'; raises anything else (an internal error)."""
    try:
        g = Graph.from_dict(doc, tensors)
    except RefsimError:
        return "refused"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if rng.random() < 0.1:  # the file and the command line, now and then (they cost more)
            p = os.path.join(tmp, "m.safetensors")
            try:
                save_model(g, p)
            except RefsimError:
                return "refused"
            rc = cli.main(["info", p])
            if rc not in (0, 2):
                raise RuntimeError(f"refsim info exited {rc}")
        else:  # what refsim info prints; a metadata profile refsim does not know is refused there (exit 2)
            try:
                g.describe(g.metadata.get("profile") if isinstance(g.metadata.get("profile"), str) else "paper")
            except RefsimError:
                return "refused"
    x = {n: np.random.default_rng(1).random((2,) + g.shapes[n]) for n in g.inputs}
    rec = Recorder(spikes=True, output=True)
    outs = []
    for backend in ("reference", "event"):
        try:
            outs.append(Simulator(g, "paper", backend).run(x, 3, PoissonEncoder(seed=2), rec))
        except RefsimError:
            return "refused"
    a, b = outs
    for n in a.spikes:
        if not np.array_equal(a.spikes[n], b.spikes[n]):
            return "mismatch"
    for n in a.final_output:
        if not np.array_equal(a.final_output[n], b.final_output[n], equal_nan=True):
            return "mismatch"
    return "ran"


def fuzz(cases, seed=0, echo=print, limit_gib=10):
    limit_address_space(limit_gib)
    rng = random.Random(seed)
    docs = [g.to_dict() for g in bases()]
    tmp = tempfile.mkdtemp()
    c = {"cases": 0, "refused": 0, "ran": 0, "mismatch": 0, "internal_errors": 0, "examples": [],
         "mismatch_examples": [], "address_space_limit_gib": limit_gib}
    t0 = time.time()
    for i in range(cases):
        doc0, t0s = rng.choice(docs)
        doc = json.loads(json.dumps(doc0))
        tensors = {k: v.copy() for k, v in t0s.items()}
        for _ in range(rng.randint(1, 3)):
            mutate(doc, tensors, rng)
        c["cases"] += 1
        try:
            r = run_case(doc, tensors, rng, tmp)
            c[r] += 1
            if r == "mismatch" and len(c["mismatch_examples"]) < 10:
                c["mismatch_examples"].append(json.dumps(doc)[:300])
        except Exception as exc:  # noqa: BLE001 -- the count this harness exists for
            c["internal_errors"] += 1
            if len(c["examples"]) < 10:
                c["examples"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
        if echo and (i + 1) % 2000 == 0:
            echo(f"  {i + 1} cases: {c['refused']} refused, {c['ran']} ran, {c['mismatch']} mismatches, "
                 f"{c['internal_errors']} internal")
    c["seconds"] = round(time.time() - t0, 1)
    return c


def main(argv=None):
    args = parser("structure-aware fuzzing of model graphs (issue 21)", "mutated graphs").parse_args(argv)
    c = fuzz(args.cases, args.seed)
    print("graph", {k: v for k, v in c.items() if not k.endswith("examples")})
    for e in c["examples"] + c["mismatch_examples"]:
        print("  ", e)
    if not args.no_write:
        save_results({"graph": c})
    return 0 if c["internal_errors"] == 0 and c["mismatch"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
