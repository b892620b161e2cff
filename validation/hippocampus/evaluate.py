"""Stage 3 (evaluation): the ANN (torch) and the spiking networks (refsim, event backend) on the
held-out test subjects: 3-D Dice per subject and 2-D Dice per slice (Yue Table 1 layout), the output
cut-off sweep 0.1..0.6 (Table 2), Dice vs T (Fig. 6A), per-layer firing rates (Fig. 4), synaptic
operations and energy against the ANN's MACs. Writes out/results.json.
Run from the repository root: ``python validation/hippocampus/evaluate.py [--subjects 40] [--T 200]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from refsim import load_model  # noqa: E402
from refsim.analysis import curves, metrics  # noqa: E402
from refsim.synops import dense_macs  # noqa: E402
from refsim.config import RunConfig  # noqa: E402
from refsim.traces import Recorder  # noqa: E402
from validation.hippocampus.common import OUT, split, torch_unet, volume_slices  # noqa: E402

T_POINTS = (10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000)  # those <= --T are reported


def ann_probs(net, x):
    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(x))).numpy()[:, 0]


def snn_run(g, x, T, batch=16, seed=0):
    """Final and intermediate output membranes, per-layer spike counts and synaptic operations."""
    cfg = RunConfig.resolve(g, backend="event", seed=seed)  # the model's profile and encoding (ternary: Table 5)
    sim, enc = cfg.simulator(g), cfg.encoder()
    outs = {t: [] for t in T_POINTS if t <= T}
    spikes = {n: 0 for n in g.neurons}
    acs = 0
    for _, tr in sim.run_batches(x, T, batch, encoder=enc, recorder=Recorder(counts=False, output=True, synops=True)):
        o = tr.output["output"]
        for t in outs:
            outs[t].append(o[t - 1][:, 0])
        for n in g.neurons:
            spikes[n] += int(tr.step_counts[n].sum())
        acs += sum(int(v.sum()) for v in tr.acs.values())
    return {t: np.concatenate(v) for t, v in outs.items()}, spikes, acs


def dice_rows(prob_by_case, labels, cutoff):
    d3, d2 = [], []
    for c, p in prob_by_case.items():
        pred = p > cutoff
        d3.append(metrics.dice(pred, labels[c]))
        d2.extend(metrics.slice_dice(pred, labels[c], empty="nan").tolist())
    return {"dice_3d_mean": float(np.mean(d3)), "dice_3d_std": float(np.std(d3)),
            "dice_2d_mean": metrics.mean(d2), "dice_2d_std": float(np.nanstd(d2)), "per_subject": d3}


def evaluate(models, subjects, T, cutoff=0.5):
    net = torch_unet()
    net.load_state_dict(torch.load(os.path.join(OUT, "ann.pt"), weights_only=True))
    net.eval()
    data = {c: volume_slices(c) for c in subjects}  # the ANN's (binary) normalisation
    labels = {c: y[:, 0] > 0.5 for c, (x, y) in data.items()}
    by_norm = {"unit": data}
    res = {"subjects": subjects, "T": T, "cutoff": cutoff}
    t0 = time.time()
    ann = {c: ann_probs(net, x) for c, (x, y) in data.items()}
    res["ann"] = dice_rows(ann, labels, cutoff)
    res["ann"]["cutoff_sweep"] = {str(k): dice_rows(ann, labels, k)["dice_3d_mean"] for k in curves.CUTOFFS}
    res["ann"]["seconds"] = time.time() - t0
    for name, path in models.items():
        g = load_model(path)
        norm = g.metadata.get("normalize", "unit")  # ternary models (Yue's chain) take zero-mean slices
        if norm not in by_norm:
            by_norm[norm] = {c: volume_slices(c, norm) for c in subjects}
        t0 = time.time()
        outs, spk, acs = {}, {n: 0 for n in g.neurons}, 0
        n_slices = 0
        for c, (x, y) in by_norm[norm].items():
            o, s, a = snn_run(g, x.astype(np.float64), T)
            outs[c] = o
            for k in s:
                spk[k] += s[k]
            acs += a
            n_slices += len(x)
        probs = {c: curves.probability(o[T], T) for c, o in outs.items()}
        r = dice_rows(probs, labels, cutoff)
        r["cutoff_sweep"] = {str(k): dice_rows(probs, labels, k)["dice_3d_mean"] for k in curves.CUTOFFS}
        r["dice_vs_T"] = {str(t): dice_rows({c: curves.probability(o[t], t) for c, o in outs.items()}, labels,
                                             cutoff)["dice_3d_mean"] for t in T_POINTS if t <= T}
        neurons = {n: int(np.prod(g.shapes[n])) for n in g.neurons}
        r["rates"] = {n: spk[n] / (T * n_slices * neurons[n]) for n in g.neurons}
        macs = sum(dense_macs(g).values())
        r["synops"] = {"acs_per_slice": acs / n_slices, "ann_macs_per_slice": macs,
                       "energy_snn_j_per_slice": acs / n_slices * 0.9e-12, "energy_ann_j_per_slice": macs * 4.6e-12}
        r["seconds"] = time.time() - t0
        res[name] = r
        print(f"{name}: 3-D Dice {r['dice_3d_mean']:.4f}, 2-D Dice {r['dice_2d_mean']:.4f} ({r['seconds']:.0f} s)", flush=True)
    print(f"ann: 3-D Dice {res['ann']['dice_3d_mean']:.4f}, 2-D Dice {res['ann']['dice_2d_mean']:.4f}", flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=40, help="held-out test subjects to evaluate (default: all 40)")
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--models", nargs="*", default=["converted"], help="names of out/snn_<name>.safetensors")
    ap.add_argument("--results", default="results.json", help="file name in out/ for the results (default results.json)")
    args = ap.parse_args(argv)
    _, _, test = split()
    models = {m: os.path.join(OUT, f"snn_{m}.safetensors") for m in args.models}
    res = evaluate(models, test[:args.subjects], args.T)
    with open(os.path.join(OUT, args.results), "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
