"""``refsim analyze``: one run (or two side by side) turned into numbers and pictures.

:func:`analyze` simulates a model on inputs with everything the analysis needs recorded (counts,
per-step output membranes, synaptic events, the raster layer's spikes) and returns a report dict
(JSON-serialisable; every quantity's unit and definition in ``report["definitions"]``).
:func:`write_report` writes ``report.json`` and a self-contained ``report.html`` whose PNG plots
(matplotlib, Agg) are embedded, so the file can be mailed or archived as it is.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os

import numpy as np

from . import activity, conversion, curves, energy as energy_mod, metrics
from .._files import atomic_path
from .._optional import optional_import
from .._text import table
from .._version import __version__
from ..convert.compare import match_layers
from ..convert.normalize import ann_activations
from ..encoding import Encoder
from ..errors import UnknownNameError, ValidationError
from ..neurons import get_model
from ..semantics import DEFAULT_PROFILE
from ..simulator import Simulator
from ..synops import dense_macs
from ..traces import Recorder

DEFINITIONS = {
    "null": ("-", "a value that is not defined for this run (e.g. the correlation of a layer that never fired, "
             "or a Dice over empty masks under the 'nan' policy); written as null, JSON has no NaN"),
    "rate": ("spikes / neuron / step", "spikes of the layer divided by neurons, samples and steps (a multi-threshold "
             "neuron counts each level that fired, a ternary neuron each +1 and -1)"),
    "silent_fraction": ("fraction", "neurons (per sample) that never fired during the run"),
    "saturated_fraction": ("fraction", "neurons that fired on every step of the run"),
    "spikes_per_step": ("spikes", "spikes of the layer at each step, summed over the batch"),
    "input_density": ("fraction", "input elements of a synaptic layer that carried an event, per step on average"),
    "acs": ("operations", "accumulates: one event reaching one synapse inside the output map (borders, stride, "
            "dilation, groups and pooling windows as they are), summed over steps and samples"),
    "macs": ("operations", "multiply-accumulates of layers fed analog values (direct coding), once for a static input, "
             "summed over samples"),
    "dense_macs_per_sample": ("operations", "MACs of the ANN with the same graph for one input (every synapse once)"),
    "energy_j": ("J", "MACs x E_MAC + ACs x E_AC for the whole batch, with the named preset (pJ per operation)"),
    "dice": ("1", "2|P and L| / (|P| + |L|) over all slices of the batch (a volume: Yue's 3-D Dice); empty masks "
             "per the named policy"),
    "slice_dice_mean": ("1", "mean over slices of the per-slice Dice (Yue's 2-D Dice)"),
    "correlation": ("1", "Pearson correlation of measured SNN rates with the rate model's predictions, per neuron"),
    "slope": ("1", "least-squares slope (through 0) of measured SNN rate on the predicted rate"),
}


#: the column definitions printed under every rate table
DEFINITIONS_TEXT = ("rate/step: spikes per neuron per step (averaged over neurons, samples and steps); active %: "
                    "neurons that fired at least once; silent %: neurons that never fired.")


def format_summary(rep, dice=True) -> str:
    """The text summary of a report: per-layer rates, synaptic operations and energy, accuracy, the
    first layer below the ANN-vs-SNN bound, and the column definitions."""
    rows = [("layer", "rate/step", "silent %", "spikes")]
    for n, v in rep["layers"].items():
        rows.append((n, f"{v['rate']:.4f}", f"{100 * v.get('silent_fraction', float('nan')):.1f}", str(v["spikes"])))
    lines = [table(rows, right=(1, 2, 3))]
    e = rep["energy"]
    lines.append(f"synaptic operations: {e['acs']} ACs, {e['macs']} MACs -> {e['snn_energy_j']:.3g} J ({e['preset']}, "
                 f"{e['convention']}); the ANN with the same graph: {e['ann_macs']} MACs -> {e['ann_energy_j']:.3g} J")
    if "accuracy" in rep and dice:
        a = rep["accuracy"]
        if "dice" in a:
            lines.append(f"Dice {a['dice']:.4f} (all slices), mean per-slice Dice {a['slice_dice_mean']:.4f}")
        if "class_accuracy" in a:
            ann = f"; the trained ANN {a['ann_class_accuracy']:.4f}" if "ann_class_accuracy" in a else ""
            lines.append(f"accuracy {a['class_accuracy']:.4f} ({a['correct']} of {a['samples']} samples; argmax of "
                         f"the output membrane){ann}")
    if "conversion" in rep:
        lines.append(f"first layer below the ANN-vs-SNN bound: {rep['conversion']['first_below_bound'] or 'none'}")
    lines.append(DEFINITIONS_TEXT)
    return "\n".join(lines)


def _run(graph, x, T, profile, backend, encoder, raster_layer, progress, threads=None, dtype="float64"):
    sim = Simulator(graph, profile, backend, threads=threads, dtype=dtype)
    # spikes of the raster layer, and of every ternary and multi-threshold layer (rates per sign and level)
    keep = [n for n in graph.neurons if n == raster_layer or (get_model(graph[n].model).signed or get_model(graph[n].model).bitmask)]
    # the value multi-threshold layers sent (their rates against the ANN are judged on it)
    levels = any(get_model(graph[n].model).bitmask for n in graph.neurons)
    rec = Recorder(spikes=keep or False, counts=True, output=True, synops=True, values=levels)
    return sim, sim.run(x, T, encoder=encoder, recorder=rec, progress=progress)


def summarize(graph, sim, traces, x, label=None, readout="sigmoid-mean", cutoff=0.5, empty="one",
              energy="fp32", convention="synops", ann=True) -> dict:
    """The report dict of one run (see the module docstring). ``ann``: True compares the rates with
    the rate model of the same graph, a Graph (a trained ANN, e.g. ``refsim.io.onnx.load_onnx``)
    with that ANN's activations, False skips the comparison."""
    em = energy_mod.get_energy_model(energy)
    if convention not in energy_mod.CONVENTIONS:
        raise UnknownNameError("energy convention", convention, energy_mod.CONVENTIONS)
    T, B = traces.T, traces.batch
    layers = activity.layer_activity(traces, graph, sim.params)
    density = activity.input_density(traces, graph)
    dense = dense_macs(graph)
    syn = {}
    for name in traces.acs:
        acs, macs = int(traces.acs[name].sum()), int(traces.macs[name].sum())
        syn[name] = {"type": graph[name].TYPE, "input": graph[name].inputs[0], "input_density": density[name],
                     "acs": acs, "macs": macs, "dense_macs_per_sample": dense[name],
                     "energy_j": em.joules(macs, acs)}
    total_acs = sum(v["acs"] for v in syn.values())
    total_macs = sum(v["macs"] for v in syn.values())
    if convention == "li-table5":
        spikes = sum(int(v.sum()) for v in traces.step_counts.values())
        e_acs, e_macs = spikes, total_macs
    else:
        e_acs, e_macs = total_acs, total_macs
    ann_macs = sum(dense.values()) * B
    rep = {
        "refsim_version": __version__,
        "definitions": {k: {"unit": u, "definition": d} for k, (u, d) in DEFINITIONS.items()},
        "run": {"model": graph.name, "T": T, "batch": B, "profile": traces.profile, "backend": traces.backend,
                "dtype": traces.dtype, "encoder": traces.encoder, "readout": readout, "cutoff": cutoff,
                "empty_mask_policy": empty},
        "layers": layers,
        "synaptic_layers": syn,
        "energy": {"preset": em.name, "e_mac_pj": em.e_mac_pj, "e_ac_pj": em.e_ac_pj, "convention": convention,
                   "acs": int(e_acs), "macs": int(e_macs), "snn_energy_j": em.joules(e_macs, e_acs),
                   "ann_macs": int(ann_macs), "ann_energy_j": em.joules(ann_macs, 0),
                   "by_layer_j": {n: v["energy_j"] for n, v in syn.items()}},
    }
    out_name = graph.outputs[0] if graph.outputs else None
    if out_name and out_name in traces.output and label is not None and np.asarray(label).ndim == 1:
        rep["accuracy"] = class_accuracy(traces.output[out_name], np.asarray(label), x, ann)
    elif out_name and out_name in traces.output and label is not None:
        lab = np.asarray(label) > 0
        final = traces.final_output[out_name]
        pred = curves.predict(final, T, readout, cutoff) > 0
        ts, dt = curves.dice_vs_time(traces.output[out_name], lab, readout, cutoff, empty)
        cs, dc = curves.dice_vs_cutoff(final, T, lab, readout, empty=empty)
        rep["accuracy"] = {"dice": metrics.dice(pred, lab, empty),
                           "slice_dice": metrics.slice_dice(pred, lab, 0, empty).tolist(),
                           "slice_dice_mean": metrics.mean(metrics.slice_dice(pred, lab, 0, empty)),
                           "jaccard": metrics.jaccard(pred, lab, empty), "pixel_accuracy": metrics.pixel_accuracy(pred, lab),
                           "label_voxels": int(lab.sum()), "predicted_voxels": int(pred.sum()),
                           "dice_vs_T": {"T": ts.tolist(), "dice": dt.tolist()},
                           "dice_vs_cutoff": {"cutoff": cs.tolist(), "dice": dc.tolist()}}
    if ann is not None and not isinstance(ann, bool):  # a trained ANN's graph (refsim analyze --ann)
        rep["conversion"] = conversion.compare_with_ann(ann, graph, x, traces.counts, T, values=traces.values)
        rep["conversion"]["ann"] = ann.name
    elif ann:
        rep["conversion"] = conversion.conversion_quality(graph, sim.params, x, traces)
        rep["conversion"]["reference"] = "rate model of the same graph (ReLU / threshold)"
    return rep


def class_accuracy(output, labels, x=None, ann=None) -> dict:
    """A classifier's accuracy from its output membranes of every step ``output`` (T, B, classes,
    ...): the class of each sample is the argmax of its output membrane (ties to the lowest index),
    compared with integer ``labels`` (B,); accuracy after every step, and the trained ANN's
    (``ann``, a Graph) on the same inputs when given."""
    T = output.shape[0]
    flat = output.reshape(T, output.shape[1], -1)
    correct = (np.argmax(flat, axis=2) == labels[None, :]).sum(axis=1)
    out = {"class_accuracy": float(correct[-1] / labels.size), "correct": int(correct[-1]), "samples": int(labels.size),
           "accuracy_vs_T": {"T": list(range(1, T + 1)), "accuracy": (correct / labels.size).tolist()}}
    if ann is not None and not isinstance(ann, bool) and x is not None:
        acts = ann_activations(ann, x)
        y = np.asarray(acts[ann.outputs[0]]).reshape(labels.size, -1)
        out["ann_class_accuracy"] = float(np.mean(np.argmax(y, axis=1) == labels))
    return out


def analyze(graph, x, T, profile=DEFAULT_PROFILE, backend="reference", encoder: Encoder | None = None, label=None,
            readout="sigmoid-mean", cutoff=0.5, empty="one", energy="fp32", convention="synops",
            raster_layer=None, ann=True, progress=False, threads=None, dtype="float64"):
    """Simulate and summarise one run; returns ``(report, traces)``."""
    if raster_layer is None and graph.neurons:
        raster_layer = graph.neurons[0]
    sim, tr = _run(graph, x, T, profile, backend, encoder, raster_layer, progress, threads, dtype)
    rep = summarize(graph, sim, tr, x, label, readout, cutoff, empty, energy, convention, ann)
    rep["run"]["raster_layer"] = raster_layer
    return rep, tr


def analyze_config(graph, x, T, cfg, *, ann=True, against=None, against_profile=None, against_backend=None,
                   raster_layer=None, **kw):
    """:func:`analyze` under a resolved run configuration ``cfg`` (:class:`refsim.config.RunConfig`),
    as ``refsim analyze`` runs it. ``ann``: True (the model's own ANN reference), False, or the
    trained ANN as a Graph, whose layers are matched to the model's before anything is simulated.
    ``against`` (a second Graph), ``against_profile`` or ``against_backend``: a second run on the
    same inputs, compared side by side. Returns ``(report, traces, comparison or None)``."""
    if not isinstance(ann, bool):
        match_layers(ann, graph)
    if raster_layer is not None and raster_layer not in graph.neurons:
        raise UnknownNameError("spiking layer (raster)", raster_layer, graph.neurons)
    kw.update(readout=cfg.readout, ann=ann, threads=cfg.threads, dtype=cfg.dtype)
    rep, tr = analyze(graph, x, T, cfg.profile, cfg.backend, cfg.encoder(), raster_layer=raster_layer, **kw)
    if against is None and against_profile is None and against_backend is None:
        return rep, tr, None
    g2 = graph if against is None else against
    p2, b2 = against_profile or cfg.profile, against_backend or cfg.backend
    rep2, _ = analyze(g2, x, T, p2, b2, cfg.encoder(), **kw)
    return rep, tr, compare(rep, rep2, (f"{graph.name} ({cfg.profile}, {cfg.backend})", f"{g2.name} ({p2}, {b2})"))


def compare(a: dict, b: dict, labels=("A", "B")) -> dict:
    """Per-layer rates of two reports side by side, with differences (layers present in both)."""
    rows = {}
    for name in a["layers"]:
        if name in b["layers"]:
            ra, rb = a["layers"][name]["rate"], b["layers"][name]["rate"]
            rows[name] = {labels[0]: ra, labels[1]: rb, "difference": rb - ra,
                          "ratio": (rb / ra) if ra else float("nan")}
    out = {"labels": list(labels), "rates": rows,
           "energy_j": {labels[0]: a["energy"]["snn_energy_j"], labels[1]: b["energy"]["snn_energy_j"]}}
    for key in ("dice", "class_accuracy"):
        if key in a.get("accuracy", {}) and key in b.get("accuracy", {}):
            out[key] = {labels[0]: a["accuracy"][key], labels[1]: b["accuracy"][key]}
    return out


# -- figures ------------------------------------------------------------------------------------

def _figures(rep, traces, comparison=None) -> list:
    """[(title, caption, png bytes)] of the report's plots."""
    mpl = optional_import("matplotlib", "plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    figs = []

    def add(fig, title, caption):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
        plt.close(fig)
        figs.append((title, caption, buf.getvalue()))

    layers = rep["layers"]
    names = list(layers)
    if names:
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 4))
        rates = [layers[n]["rate"] for n in names]
        ax.bar(range(len(names)), rates, color="tab:blue", label="rate")
        silent = [layers[n].get("silent_fraction", 0.0) for n in names]
        ax2 = ax.twinx()
        ax2.plot(range(len(names)), silent, "o-", color="tab:red", label="silent fraction")
        ax2.set_ylabel("silent neurons (fraction)")
        ax2.set_ylim(0, 1)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_ylabel("firing rate (spikes / neuron / step)")
        ax.set_title("Firing rate per layer")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper right")
        add(fig, "Firing rate per layer", "Bars: spikes per neuron per step. Line: neurons that never fired.")

        fig, ax = plt.subplots(figsize=(7, 4))
        T = rep["run"]["T"]
        for n in names:
            ax.plot(np.arange(1, T + 1), np.asarray(layers[n]["spikes_per_step"]) / (layers[n]["neurons"] * rep["run"]["batch"]),
                    label=n)
        ax.set_xlabel("time step")
        ax.set_ylabel("spikes / neuron")
        ax.set_title("Activity over time")
        ax.legend(fontsize=7, ncol=2)
        add(fig, "Activity over time", "Spikes per neuron at each step, per layer.")

        fig, ax = plt.subplots(figsize=(7, 4))
        for n in names:
            h = layers[n].get("rate_histogram")
            if h:
                ax.plot(np.linspace(0, 1, len(h)), np.asarray(h) / max(1, sum(h)), drawstyle="steps-mid", label=n)
        ax.set_xlabel("firing rate of a neuron over the run (spikes / step)")
        ax.set_ylabel("fraction of neurons")
        ax.set_yscale("log")
        ax.set_title("Rate distribution")
        ax.legend(fontsize=7, ncol=2)
        add(fig, "Rate distribution", "Histogram of per-neuron rates (20 bins), per layer.")

    raster = rep["run"].get("raster_layer")
    if raster and raster in traces.spikes:
        s = traces.spikes[raster][:, 0].reshape(traces.T, -1) != 0
        fired = np.flatnonzero(s.any(axis=0))
        pick = np.sort(np.random.default_rng(0).choice(fired, size=min(200, fired.size), replace=False))
        t_idx, n_idx = np.nonzero(s[:, pick])
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.scatter(t_idx + 1, n_idx, s=2, color="black")
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron (200 that fired, sample 0)")
        ax.set_title(f"Spike raster: {raster}")
        add(fig, f"Spike raster of {raster}", "Each dot is a spike of one of 200 neurons drawn at random among those "
            "of the layer that fired (sample 0).")

    conv = rep.get("conversion")
    if conv and conv["layers"]:
        cl = conv["layers"]
        k = len(cl)
        cols = min(4, k)
        rows = (k + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3 * rows), squeeze=False)
        for ax, (n, v) in zip(axes.flat, cl.items()):
            a, r = v["points"]
            ax.scatter(a, r, s=2, alpha=0.4)
            m = max(max(a, default=1), max(r, default=1), 1e-9)
            ax.plot([0, m], [0, m], "k--", lw=0.8, label="rate = prediction")
            ax.set_title(f"{n}\nr={v['correlation']:.3f} slope={v['slope']:.2f}", fontsize=8,
                         color="red" if v["below_bound"] else "black")
            ax.set_xlabel("ANN activation / lambda" if "ann" in conv else "predicted rate (ANN)", fontsize=7)
            ax.set_ylabel("SNN rate", fontsize=7)
        for ax in list(axes.flat)[k:]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=6)
        fig.suptitle("ANN activation vs SNN rate")
        fig.tight_layout()
        what = (f"the activation of the trained ANN {conv['ann']!r} divided by its 99.9th percentile (lambda)"
                if "ann" in conv else "the rate the ANN with the same graph predicts (ReLU / threshold)")
        add(fig, "ANN activation vs SNN rate", f"Per neuron: {what} against the measured rate. Red titles: below the bound "
            f"(correlation < {conv['min_correlation']} or slope outside {conv['slope_range']}).")

    acc = rep.get("accuracy")
    if acc and "accuracy_vs_T" in acc:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(acc["accuracy_vs_T"]["T"], acc["accuracy_vs_T"]["accuracy"], color="tab:green")
        if "ann_class_accuracy" in acc:
            ax.axhline(acc["ann_class_accuracy"], color="gray", ls="--", label="trained ANN")
            ax.legend()
        ax.set_xlabel("time steps T")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title("Accuracy vs T")
        add(fig, "Accuracy vs T", "Fraction of samples whose class (argmax of the output membrane) is right, after "
                                  "each step.")
    elif acc:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(acc["dice_vs_T"]["T"], acc["dice_vs_T"]["dice"], color="tab:green")
        ax.set_xlabel("time steps T")
        ax.set_ylabel("Dice")
        ax.set_ylim(0, 1)
        ax.set_title("Dice vs T")
        add(fig, "Dice vs T", f"Dice of the batch's prediction after each step (cut-off {rep['run']['cutoff']}).")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(acc["dice_vs_cutoff"]["cutoff"], acc["dice_vs_cutoff"]["dice"], "o-", color="tab:purple")
        ax.set_xlabel("output cut-off")
        ax.set_ylabel("Dice")
        ax.set_ylim(0, 1)
        ax.set_title("Dice vs output cut-off")
        add(fig, "Dice vs output cut-off", f"After T={rep['run']['T']} steps.")

    syn = rep["synaptic_layers"]
    if syn:
        sn = list(syn)
        em = rep["energy"]
        e_ac = [syn[n]["acs"] * em["e_ac_pj"] * 1e-12 for n in sn]
        e_mac = [syn[n]["macs"] * em["e_mac_pj"] * 1e-12 for n in sn]
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(sn) + 2), 4))
        ax.bar(range(len(sn)), e_ac, label=f"ACs x {em['e_ac_pj']} pJ")
        ax.bar(range(len(sn)), e_mac, bottom=e_ac, label=f"MACs x {em['e_mac_pj']} pJ")
        ax.set_xticks(range(len(sn)))
        ax.set_xticklabels(sn, rotation=45, ha="right")
        ax.set_ylabel("energy (J, whole batch)")
        ax.set_title(f"Energy by layer ({em['preset']})")
        ax.legend()
        add(fig, "Energy by layer", "Synaptic operations times the preset's energy per operation.")

    if comparison:
        la, lb = comparison["labels"]
        cn = list(comparison["rates"])
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(cn) + 2), 4))
        xs = np.arange(len(cn))
        ax.bar(xs - 0.2, [comparison["rates"][n][la] for n in cn], 0.4, label=la)
        ax.bar(xs + 0.2, [comparison["rates"][n][lb] for n in cn], 0.4, label=lb)
        ax.set_xticks(xs)
        ax.set_xticklabels(cn, rotation=45, ha="right")
        ax.set_ylabel("firing rate (spikes / neuron / step)")
        ax.set_title(f"Firing rates: {la} vs {lb}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, fontsize=8)
        add(fig, "Two runs side by side", "Per-layer firing rates of the two runs (Yue Fig. 4 layout).")
    return figs


def _table(rows, header) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v, digits=4):
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.{digits}g}"
    return v


def to_html(rep, figures, comparison=None) -> str:
    run = rep["run"]
    parts = [f"<h1>refsim analysis: {html.escape(str(run['model']))}</h1>",
             f"<p>T={run['T']}, batch {run['batch']}, profile <b>{html.escape(str(run['profile']))}</b>, backend "
             f"{html.escape(str(run['backend']))} ({run['dtype']}), encoder {html.escape(json.dumps(run['encoder']))}; "
             f"refsim {html.escape(rep['refsim_version'])}.</p>"]
    acc = rep.get("accuracy")
    if acc and "class_accuracy" in acc:
        ann = f"; the trained ANN: {_fmt(acc['ann_class_accuracy'])}" if "ann_class_accuracy" in acc else ""
        parts.append(f"<p>Accuracy <b>{_fmt(acc['class_accuracy'])}</b> ({acc['correct']} of {acc['samples']} samples, "
                     f"argmax of the output membrane){ann}.</p>")
    elif acc:
        parts.append(f"<p>Dice (all slices) <b>{_fmt(acc['dice'])}</b>, mean slice Dice {_fmt(acc['slice_dice_mean'])}, "
                     f"Jaccard {_fmt(acc['jaccard'])}, pixel accuracy {_fmt(acc['pixel_accuracy'])}; label voxels "
                     f"{acc['label_voxels']}, predicted {acc['predicted_voxels']} (readout {run['readout']}, cut-off "
                     f"{run['cutoff']}, empty masks: {run['empty_mask_policy']}).</p>")
    e = rep["energy"]
    parts.append(f"<p>Energy ({e['preset']}: {e['e_mac_pj']} pJ/MAC, {e['e_ac_pj']} pJ/AC; convention "
                 f"{e['convention']}): SNN {_fmt(e['snn_energy_j'])} J ({e['acs']} ACs, {e['macs']} MACs) against the "
                 f"ANN's {_fmt(e['ann_energy_j'])} J ({e['ann_macs']} MACs), for the whole batch.</p>")
    rows = [(n, v["model"], "x".join(map(str, v["shape"])), v["neurons"], v["spikes"], _fmt(v["rate"]),
             _fmt(v.get("silent_fraction", float("nan"))), _fmt(v.get("saturated_fraction", float("nan"))))
            for n, v in rep["layers"].items()]
    parts.append("<h2>Spiking layers</h2>" + _table(rows, ["layer", "model", "shape", "neurons", "spikes", "rate",
                                                            "silent", "saturated"]))
    rows = [(n, v["type"], _fmt(v["input_density"]), v["acs"], v["macs"], v["dense_macs_per_sample"], _fmt(v["energy_j"]))
            for n, v in rep["synaptic_layers"].items()]
    parts.append("<h2>Synaptic layers</h2>" + _table(rows, ["layer", "type", "input density", "ACs", "MACs",
                                                             "ANN MACs / sample", "energy (J)"]))
    conv = rep.get("conversion")
    if conv:
        rows = [(n, _fmt(v["correlation"]), _fmt(v["slope"]), "yes" if v["below_bound"] else "")
                for n, v in conv["layers"].items()]
        first = conv["first_below_bound"]
        parts.append("<h2>Conversion quality</h2><p>First layer below the bound: <b>"
                     f"{html.escape(first) if first else 'none'}</b>.</p>" +
                     _table(rows, ["layer", "correlation", "slope", "below bound"]))
    if comparison:
        la, lb = comparison["labels"]
        rows = [(n, _fmt(v[la]), _fmt(v[lb]), _fmt(v["difference"]), _fmt(v["ratio"])) for n, v in comparison["rates"].items()]
        parts.append(f"<h2>{html.escape(la)} vs {html.escape(lb)}</h2>" +
                     _table(rows, ["layer", f"rate {la}", f"rate {lb}", "difference", "ratio"]))
    parts.append("<h2>Plots</h2>")
    for title, caption, png in figures:
        b64 = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt=\"{html.escape(title)}\" src=\"data:image/png;base64,{b64}\">"
                     f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}</figcaption></figure>")
    defs = [(k, v["unit"], v["definition"]) for k, v in rep["definitions"].items()]
    parts.append("<h2>Definitions</h2>" + _table(defs, ["quantity", "unit", "definition"]))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}img{max-width:100%}"
             "figcaption{font-size:13px;color:#444}")
    # counts the images that decoded, for headless checks (data-images-loaded="loaded/total")
    script = ("window.addEventListener('load',function(){var i=document.images,n=0;for(var k=0;k<i.length;k++)"
              "{if(i[k].complete&&i[k].naturalWidth>0)n++;}document.body.setAttribute('data-images-loaded',n+'/'+i.length);});")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>refsim analysis: {html.escape(str(run['model']))}"
            f"</title><style>{style}</style><script>{script}</script></head><body>{''.join(parts)}</body></html>")


def _atomic_write(path, data: bytes):
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _json_safe(v):
    """``v`` with every non-finite float as None (JSON has no NaN: browsers' JSON.parse and jq refuse
    it) and NumPy scalars as Python numbers. A null means "not defined", e.g. the correlation of a
    layer that never fired (report["definitions"]["null"])."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.ndarray):
        return _json_safe(v.tolist())
    if isinstance(v, (np.integer, np.bool_)):
        return v.item()
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def write_report(rep, traces, out_dir, comparison=None) -> tuple:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created if missing); returns their paths."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValidationError("report folder", "a folder (created if missing)", f"{out_dir} is a file")
    os.makedirs(out_dir, exist_ok=True)
    full = dict(rep)
    if comparison:
        full["comparison"] = comparison
    jpath, hpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.html")
    _atomic_write(jpath, json.dumps(_json_safe(full), indent=1, allow_nan=False).encode("utf-8"))
    _atomic_write(hpath, to_html(rep, _figures(rep, traces, comparison), comparison).encode("utf-8"))
    return jpath, hpath
