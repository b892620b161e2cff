"""Binary against ternary input (Yue et al. 2023 Table 5), reduced: the ANN trained on zero-mean
slices (``train_ann.py --normalize zero-mean --name ann_ternary``, intensities in [-1, 1]) converted
with refsim for ternary Poisson input (spikes sign(x) with probability |x|), by Li's connection-wise
normalisation and by threshold balancing (T=200, scale 0.7), then evaluated with refsim on the same
held-out subjects as evaluate.py (T=200). The binary rows are read from out/results.json (evaluate.py,
same subjects, same code). Fine-tuning is not repeated for the ternary network (see RESULTS.md).
Writes out/ternary.json. Run from the repository root after train_ann.py --normalize zero-mean:
``python validation/hippocampus/ternary.py [--subjects 6]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from refsim import save_model  # noqa: E402
from refsim.analysis import curves  # noqa: E402
from refsim.convert import normalize, threshold_balance  # noqa: E402
from refsim.encoding import make_encoder  # noqa: E402
from refsim.graph import Graph  # noqa: E402
from validation.hippocampus.common import OUT, split, to_refsim, torch_unet, volume_slices  # noqa: E402
from validation.hippocampus.convert_snn import calibration  # noqa: E402
from validation.hippocampus.evaluate import ann_probs, dice_rows, snn_run  # noqa: E402

TERNARY_META = {"encoding": "poisson-ternary", "normalize": "zero-mean"}




def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--evaluate", nargs="*", default=None, metavar="NAME",
                    help="only evaluate these ternary models (out/snn_<NAME>.safetensors, e.g. ternary_finetuned) "
                         "and add them to out/ternary.json")
    ap.add_argument("--convert-only", action="store_true",
                    help="write the two ternary conversions (snn_ternary_connectionwise, snn_ternary_balanced) and stop "
                         "(spread.py evaluates them on all 40 subjects)")
    args = ap.parse_args(argv)
    net = torch_unet()
    net.load_state_dict(torch.load(os.path.join(OUT, "ann_ternary.pt"), weights_only=True))
    net.eval()
    models = {}
    if args.evaluate is None:
        g = to_refsim(net, name="hippocampus-snn-ternary", metadata=TERNARY_META)
        x = calibration(normalize="zero-mean")
        t0 = time.time()
        nm = normalize(g, x, method="connectionwise")
        models["ternary_connectionwise"] = Graph([nm[n] for n in nm.order],
                                                 name="hippocampus-snn-ternary-connectionwise", metadata=nm.metadata)
        models["ternary_balanced"] = threshold_balance(g, x, T=args.T, scale=0.7, order="scaled-as-it-goes",
                                                       encoder=make_encoder("poisson-ternary", seed=0))
        for k, m in models.items():
            save_model(m, os.path.join(OUT, f"snn_{k}.safetensors"))
        print(f"converted in {time.time() - t0:.0f} s", flush=True)
        if args.convert_only:
            return
    else:
        from refsim import load_model
        models = {k: load_model(os.path.join(OUT, f"snn_{k}.safetensors")) for k in args.evaluate}
    _, _, test = split()
    subjects = test[:args.subjects]
    data = {c: volume_slices(c, "zero-mean") for c in subjects}
    labels = {c: y[:, 0] > 0.5 for c, (_, y) in data.items()}
    res = {"subjects": subjects, "T": args.T}
    path = os.path.join(OUT, "ternary.json")
    if args.evaluate is not None and os.path.exists(path):
        with open(path) as fh:
            res = json.load(fh)
    res["ann_ternary"] = dice_rows({c: ann_probs(net, xv) for c, (xv, _) in data.items()}, labels, 0.5)
    for k, m in models.items():
        t1 = time.time()
        probs = {}
        spikes, n_sl = {n: 0 for n in m.neurons}, 0
        for c, (xv, _) in data.items():
            o, s, _ = snn_run(m, xv.astype(np.float64), args.T)
            probs[c] = curves.probability(o[args.T], args.T)
            for n in s:
                spikes[n] += s[n]
            n_sl += len(xv)
        r = dice_rows(probs, labels, 0.5)
        r["rates"] = {n: spikes[n] / (args.T * n_sl * int(np.prod(m.shapes[n]))) for n in m.neurons}
        r["seconds"] = time.time() - t1
        res[k] = r
        print(f"{k}: 3-D Dice {r['dice_3d_mean']:.4f}, 2-D {r['dice_2d_mean']:.4f} ({r['seconds']:.0f} s)", flush=True)
    print(f"ann_ternary: 3-D Dice {res['ann_ternary']['dice_3d_mean']:.4f}", flush=True)
    binary = os.path.join(OUT, "results.json")
    if os.path.exists(binary):
        with open(binary) as fh:
            b = json.load(fh)
        if b.get("subjects") == subjects:
            res["binary"] = {k: {"dice_3d_mean": b[k]["dice_3d_mean"], "dice_2d_mean": b[k]["dice_2d_mean"]}
                             for k in ("ann", "converted", "connectionwise", "finetuned") if k in b}
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
