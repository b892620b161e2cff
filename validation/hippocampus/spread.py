"""Spread of the hippocampus rows (issue 20): named spiking networks of out/ on the held-out test
subjects with several Poisson seeds, and the two ANNs (deterministic) on the same subjects. Per
model and seed: each subject's 3-D Dice at T (cut-off 0.5 on the output's spike probability, as
evaluate.py); per model: the mean over seeds and subjects, its 95 % interval over subjects (Student's
t on each subject's mean over seeds, n - 1 degrees of freedom) and the spread of the seed means.
Static-input models (metadata ``encoding: static``) are deterministic and run once.

Each finished (model, seed) is written to out/spread.json at once, so an interrupted run resumes
where it stopped; the summary is copied to spread.json beside RESULTS.md.
Run from the repository root (about 25 s per subject, model and seed on one thread):
``python validation/hippocampus/spread.py --models yue_balanced yue_finetuned --seeds 0,1,2``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from refsim import load_model  # noqa: E402
from refsim._files import write_json  # noqa: E402
from refsim.analysis import curves, metrics  # noqa: E402
from refsim.config import RunConfig  # noqa: E402
from refsim.traces import Recorder  # noqa: E402
from validation.hippocampus.common import OUT, split, volume_slices  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def t_interval(values):
    """The 95 % interval of the mean of ``values`` (Student's t, n - 1 degrees of freedom)."""
    from scipy import stats
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return [float(v.mean()), float(v.mean())]
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return [float(v.mean() - half), float(v.mean() + half)]


def snn_probability(g, x, T, seed, threads):
    """Spike probability of the output after T steps, one volume's slices as one batch run."""
    cfg = RunConfig.resolve(g, backend="event", seed=seed, threads=threads)
    sim, enc = cfg.simulator(g), cfg.encoder()
    outs = []
    for _, tr in sim.run_batches(x, T, 16, encoder=enc, recorder=Recorder(counts=False, output=True)):
        outs.append(tr.output["output"][T - 1][:, 0])
    return curves.probability(np.concatenate(outs), T)


def ann_dice(name, subjects, normalize):
    import torch
    from validation.hippocampus.common import torch_unet
    from validation.hippocampus.evaluate import ann_probs
    net = torch_unet()
    net.load_state_dict(torch.load(os.path.join(OUT, f"{name}.pt"), weights_only=True))
    net.eval()
    out = {}
    for c in subjects:
        x, y = volume_slices(c, normalize)
        out[c] = float(metrics.dice(ann_probs(net, x) > 0.5, y[:, 0] > 0.5))
    return out


def summary(per_seed):
    """per_seed: {seed: {subject: dice}} -> mean, 95 % interval over subjects, seed means."""
    seeds = sorted(per_seed, key=int)
    subjects = sorted(set.intersection(*(set(per_seed[s]) for s in seeds)))
    by_subject = np.array([[per_seed[s][c] for s in seeds] for c in subjects])  # subjects x seeds
    seed_means = by_subject.mean(axis=0)
    return {"subjects": len(subjects), "seeds": [int(s) for s in seeds],
            "dice_3d_mean": float(by_subject.mean()), "ci95_subjects": t_interval(by_subject.mean(axis=1)),
            "sd_subjects": float(by_subject.mean(axis=1).std(ddof=1)) if len(subjects) > 1 else 0.0,
            "seed_means": [float(v) for v in seed_means],
            "seed_range": float(seed_means.max() - seed_means.min())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="names of out/snn_<name>.safetensors")
    ap.add_argument("--anns", nargs="*", default=["ann", "ann_ternary"], help="out/<name>.pt ANNs to add")
    ap.add_argument("--seeds", default="0,1,2", help="Poisson seeds (default 0,1,2)")
    ap.add_argument("--subjects", type=int, default=40, help="the first N test subjects (default all 40)")
    ap.add_argument("--T", type=int, default=200, help="time steps (default 200)")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads (default 1)")
    ap.add_argument("--results", default="spread.json",
                    help="file in out/ for this run's per-subject results (default spread.json; give another name "
                         "to run a second process beside the first; both add to the summary beside RESULTS.md)")
    args = ap.parse_args(argv)
    _, _, test = split()
    subjects = test[:args.subjects]
    path = os.path.join(OUT, args.results)
    res = {}
    if os.path.exists(path):
        with open(path) as fh:
            res = json.load(fh)
    if res.get("subjects") != subjects or res.get("T") != args.T:
        res = {"subjects": subjects, "T": args.T, "models": {}}

    def save():
        for m in res["models"].values():
            if m["per_seed"]:
                m["summary"] = summary(m["per_seed"])
        write_json(path, res)
        bpath = os.path.join(HERE, "spread.json")
        brief = {"subjects": len(subjects), "T": args.T, "commands": [], "models": {}}
        if os.path.exists(bpath):
            with open(bpath) as fh:
                old = json.load(fh)
            if old.get("subjects") == len(subjects) and old.get("T") == args.T:
                brief = dict(old, commands=old.get("commands", []), models=old.get("models", {}))
        cmd = "python validation/hippocampus/spread.py " + " ".join(sys.argv[1:] if argv is None else argv)
        if cmd not in brief["commands"]:
            brief["commands"].append(cmd)
        brief["models"].update({k: dict(v["summary"], encoding=v["encoding"]) for k, v in res["models"].items()
                                if "summary" in v})
        write_json(bpath, brief)

    for name in args.anns:
        if name not in res["models"] and os.path.exists(os.path.join(OUT, f"{name}.pt")):
            norm = "zero-mean" if "ternary" in name else "unit"
            res["models"][name] = {"encoding": "ann", "per_seed": {"0": ann_dice(name, subjects, norm)}}
            save()
            print(f"{name}: 3-D Dice {res['models'][name]['summary']['dice_3d_mean']:.4f}", flush=True)
    data = {}
    for name in args.models:
        g = load_model(os.path.join(OUT, f"snn_{name}.safetensors"))
        enc = g.metadata.get("encoding", "poisson")
        norm = g.metadata.get("normalize", "unit")
        seeds = [0] if enc == "static" else [int(v) for v in args.seeds.split(",")]
        entry = res["models"].setdefault(name, {"encoding": enc, "per_seed": {}})
        for seed in seeds:
            if str(seed) in entry["per_seed"]:
                continue
            t0 = time.time()
            dice = {}
            for c in subjects:
                if (c, norm) not in data:
                    data[(c, norm)] = volume_slices(c, norm)
                x, y = data[(c, norm)]
                p = snn_probability(g, x.astype(np.float64), args.T, seed, args.threads)
                dice[c] = float(metrics.dice(p > 0.5, y[:, 0] > 0.5))
            entry["per_seed"][str(seed)] = dice
            save()
            print(f"{name} seed {seed}: 3-D Dice {np.mean(list(dice.values())):.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    save()  # the summary beside RESULTS.md, also when every (model, seed) was already done


if __name__ == "__main__":
    main()
