"""Where does a conversion lose accuracy? The per-layer report of ``refsim convert`` (issue 11): the
converted network runs on the calibration data, and per neuron layer its threshold (and lambda, for
the normalisations), the correlation and slope of its rate against the ANN's activation
(:func:`refsim.convert.compare.compare_with_ann`) and whether they fall outside the bounds;
the first such layer is named. The output is compared too: the SNN's output membrane / T against
the ANN's pre-head output (correlation, slope, largest absolute difference).
"""
from __future__ import annotations

import numpy as np

from .compare import compare_with_ann, measured_rate
from ..neurons import get_model
from ..encoding import make_encoder
from ..simulator import Simulator
from ..traces import Recorder
from .normalize import ann_activations
from ..semantics import profile_for


def conversion_report(ann, snn, x, T=200, profile=None, backend="event", seed=0, encoding=None, batch=16,
                      percentile=99.9, min_correlation=0.9, slope_range=(0.8, 1.25), progress=False) -> dict:
    """The report dict (JSON-serialisable); ``ann`` the ANN graph, ``snn`` the converted graph."""
    x = np.asarray(x, dtype=np.float64)
    enc = make_encoder(encoding or snn.metadata.get("encoding", "poisson"), seed=seed)
    prof = profile_for(snn, profile)
    sim = Simulator(snn, prof, backend)
    counts = {n: [] for n in snn.neurons}
    sent = {n: [] for n in snn.neurons if get_model(snn[n].model).bitmask}
    final = {n: [] for n in snn.outputs}
    rec = Recorder(output=False, values=bool(sent))
    for _, tr in sim.run_batches(x, T, batch, encoder=enc, recorder=rec, progress=progress):
        for n in snn.neurons:
            counts[n].append(tr.counts[n])
        for n in sent:
            sent[n].append(tr.values[n])
        for n in snn.outputs:
            final[n].append(tr.final_output[n])
    counts = {n: np.concatenate(v) for n, v in counts.items()}
    sent = {n: np.concatenate(v) for n, v in sent.items()}
    q = compare_with_ann(ann, snn, x, counts, T, percentile, min_correlation, slope_range, values=sent)
    conv = snn.metadata.get("conversion", {})
    lambdas = conv.get("lambdas", {})
    for n, v in q["layers"].items():
        th = np.asarray(snn[n].threshold, dtype=np.float64)
        v["threshold"] = float(th) if th.ndim == 0 else [float(t) for t in th]
        v["lambda"] = lambdas.get(n)
        v["rate"] = float(counts[n].mean() / T)
        if n in sent:
            v["value_rate"] = float(measured_rate(snn, n, counts[n], T, sent[n])[0].mean())
        v.pop("points", None)
    acts = ann_activations(ann, x, head="none")
    outs = {}
    for n in snn.outputs:
        src = n if n in ann.outputs else (ann.outputs[0] if len(ann.outputs) == 1 else None)
        if src is None:
            continue
        a_full, s_full = np.asarray(acts[src]), np.concatenate(final[n]) / T
        a, s = a_full.reshape(-1), s_full.reshape(-1)
        corr = float(np.corrcoef(a, s)[0, 1]) if a.std() > 0 and s.std() > 0 else float("nan")
        slope = float(np.dot(a, s) / np.dot(a, a)) if np.dot(a, a) > 0 else float("nan")
        outs[n] = {"correlation": corr, "slope": slope, "max_abs_difference": float(np.abs(a - s).max()),
                   "mean_abs_difference": float(np.abs(a - s).mean())}
        if a_full.ndim == 2 and a_full.shape[1] > 1:  # a classifier: only the class matters
            agree = np.argmax(s_full, axis=1) == np.argmax(a_full, axis=1)
            outs[n]["classifier"] = True
            outs[n]["argmax_agreement"] = float(agree.mean())
    return {"model": snn.name, "method": conv.get("method"), "conversion": {k: v for k, v in conv.items()
                                                                           if k not in ("lambdas", "thresholds")},
            "evaluation": {"T": int(T), "profile": prof if isinstance(prof, str) else prof.name, "backend": backend,
                           "encoder": enc.describe(), "samples": int(len(x))},
            "layers": q["layers"], "first_below_bound": q["first_below_bound"],
            "bounds": {"min_correlation": min_correlation, "slope_range": list(slope_range),
                       "reference": q["reference"]},
            "output": outs,
            "definitions": {
                "rate": "spikes per neuron per step of the converted network on the calibration data (level spikes "
                        "for a multithreshold layer)",
                "value_rate": "multithreshold layers: the value each neuron sent per step, in units of its threshold "
                              "scale (the sum of the levels that fired), averaged; what correlation and slope use",
                "correlation": "Pearson correlation of the layer's per-neuron rate (value_rate for a multithreshold "
                               "layer) with the ANN activation",
                "slope": "least-squares slope (through 0) of rate (value_rate for a multithreshold layer) against ANN "
                         "activation / lambda; 1 is ideal",
                "lambda": "the normalisation scale of the layer (its activation percentile; normalisations only)",
                "output": "the SNN's output membrane / T against the ANN's output before its head (Yue eq. 3)",
                "argmax_agreement": "classifiers (a flat output of several classes): the fraction of samples whose "
                                    "SNN class (argmax of the output membrane) is the ANN's; the output's scale, "
                                    "and so its slope and difference, do not measure a classifier's accuracy"}}


def format_report(rep) -> str:
    """The report as a fixed-width table with the first layer below the bounds named."""
    rows = [("layer", "threshold", "lambda", "rate/step", "correlation", "slope", "")]
    for n, v in rep["layers"].items():
        th = v["threshold"]
        th = f"{th:.4g}" if isinstance(th, float) else f"{min(th):.3g}..{max(th):.3g}"
        lam = "" if v["lambda"] is None else f"{v['lambda']:.4g}"
        slope = f"{v['slope']:.3f}" if v.get("slope_checked", True) else f"({v['slope']:.3f})"
        rate = f"{v['value_rate']:.4f}*" if "value_rate" in v else f"{v['rate']:.4f}"
        rows.append((n, th, lam, rate, f"{v['correlation']:.3f}", slope,
                     "<- below bound" if v["below_bound"] else ""))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    b = rep["bounds"]
    first = rep["first_below_bound"]
    lines.append(f"bounds: correlation >= {b['min_correlation']}, slope in {b['slope_range']} ({b['reference']}); "
                 + (f"first layer below them: {first}" if first else "every layer within them"))
    if any("value_rate" in v for v in rep["layers"].values()):
        lines.append("* multithreshold layers: the value sent per step in units of the threshold scale (the sum of the "
                     "levels that fired), which their correlation and slope use; their level spikes per step are "
                     "the report's 'rate'")
    if any(not v.get("slope_checked", True) for v in rep["layers"].values()):
        lines.append("slopes in parentheses are not judged: those layers fire by levels (multithreshold), so their rate "
                     "counts level spikes, not the value they send")
    for n, o in rep["output"].items():
        if o.get("classifier"):
            lines.append(f"output {n} (a classifier): the class (argmax) agrees with the ANN's on "
                         f"{100 * o['argmax_agreement']:.1f} % of the samples (the output's scale, correlation "
                         f"{o['correlation']:.3f}, slope {o['slope']:.3f}, does not measure a classifier's accuracy)")
            continue
        lines.append(f"output {n}: membrane / T vs ANN output: correlation {o['correlation']:.3f}, slope "
                     f"{o['slope']:.3f}, mean |difference| {o['mean_abs_difference']:.4g}")
    e = rep["evaluation"]
    lines.append(f"(on {e['samples']} calibration samples, T={e['T']}, profile {e['profile']}, {e['backend']} backend)")
    return "\n".join(lines)
