"""Yue et al.'s own chain, stage 2 (issue 20): the ANN trained on zero-mean slices (``train_ann.py
--normalize zero-mean --name ann_ternary``) balanced in Rathi et al.'s order with ternary Poisson
input (spikes sign(x) with probability |x|; Yue section 4.5), T=200 (Yue's early stop), on the same
32 calibration slices as convert_snn.py, under Yue's IF equations (profile ``paper``). One calibration
at scale 1 gives every scale (``refsim.convert.rescale``: in Rathi's order the scale is a final
multiply), so Yue's Fig. 6A sweep costs one balancing. Writes out/snn_yue_balanced_s<scale>.safetensors
for each ``--scales`` and out/snn_yue_balanced.safetensors at 0.7 (Rathi's and Yue's scale), the start
of the fine-tuning (``finetune_snn.py --ternary --start yue_balanced --name yue_finetuned``).
``--binary`` runs the same chain on the binary ANN (``ann.pt``, unit-normalised slices, binary Poisson
input) and writes out/snn_yue_binary_balanced(_s<scale>).safetensors: the binary column of Yue's Table 5
layout (``finetune_snn.py --start yue_binary_balanced --name yue_binary_finetuned --lr 1e-4``).
Run from the repository root: ``python validation/hippocampus/yue_chain.py``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from refsim import save_model  # noqa: E402
from refsim._files import write_json  # noqa: E402
from refsim.convert import rescale, threshold_balance  # noqa: E402
from refsim.encoding import make_encoder  # noqa: E402
from validation.hippocampus.common import OUT, to_refsim, torch_unet  # noqa: E402
from validation.hippocampus.convert_snn import calibration  # noqa: E402
from validation.hippocampus.ternary import TERNARY_META  # noqa: E402


def rate_model_dice(g, params, subjects=6):
    """Mean 3-D Dice of the network's rate model (ideal IF neurons on constant input: ReLU(current) /
    threshold, at most one spike a step; :func:`refsim.analysis.conversion.rate_model`) on the first
    ``subjects`` test subjects, read out as the SNN is (the mean output current above 0, i.e.
    sigmoid(v/T) > 0.5): what the thresholds allow before any spike is counted."""
    from refsim.analysis import conversion, metrics
    from validation.hippocampus.common import split, volume_slices
    ds = []
    for c in split()[2][:subjects]:
        x, y = volume_slices(c, g.metadata.get("normalize", "unit"))
        x = x.astype(np.float64)
        rates = conversion.rate_model(g, params, x)
        out = g.propagate(x, lambda n, node, cur: rates[n] * (1.0 if params[n].choices.spike_value != "threshold"
                                                              else np.asarray(params[n].threshold)))
        ds.append(metrics.dice(out[g.outputs[0]][:, 0] > 0, y[:, 0] > 0.5))
    return float(np.mean(ds))


def diagnose(names, T=200, seed=0, subject=None):
    """Where each named network departs from its rate model, per layer (issue 20: why the chain falls
    below its ANN): on one held-out subject's slices (the first test subject unless ``subject``),
    T steps, the model's own encoding (ternary Poisson for the chain), seed ``seed``: each neuron
    layer's rate (spikes per neuron per step), the fraction of its neurons that never fired, and
    the correlation and slope of its per-neuron rates against the rate model of the same graph
    (:func:`refsim.analysis.conversion.conversion_quality`: ReLU(current) / threshold, clipped at one
    spike a step). Returns ``{name: {"first_below_bound": ..., "layers": {layer: {...}}}}``."""
    from refsim import load_model
    from refsim.analysis import conversion
    from refsim.config import RunConfig
    from refsim.traces import Recorder
    from validation.hippocampus.common import split, volume_slices
    subject = subject or split()[2][0]
    out = {}
    for name in names:
        g = load_model(os.path.join(OUT, f"snn_{name}.safetensors"))
        x, _ = volume_slices(subject, g.metadata.get("normalize", "unit"))
        x = x.astype(np.float64)
        cfg = RunConfig.resolve(g, backend="event", seed=seed)
        sim = cfg.simulator(g)
        tr = sim.run(x, T, cfg.encoder(), Recorder(counts=True, output=False))
        q = conversion.conversion_quality(g, sim.params, x, tr)
        out[name] = {"subject": subject, "T": T, "seed": seed, "first_below_bound": q["first_below_bound"],
                     "rate_model_dice_3d": rate_model_dice(g, sim.params),
                     "layers": {n: {"rate": float(tr.counts[n].mean() / T),
                                    "silent": float((tr.counts[n] == 0).mean()),
                                    "correlation": q["layers"][n]["correlation"], "slope": q["layers"][n]["slope"]}
                                for n in g.neurons}}
        print(f"{name}: first layer below the bound {q['first_below_bound']}", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=200, help="balancing steps (Yue's early stop; Rathi's code: 1000)")
    ap.add_argument("--scales", default="0.3,0.4,0.5,0.7,1.0", help="scales to write (Yue Fig. 6A)")
    ap.add_argument("--calibration", type=int, default=32, help="calibration slices with hippocampus (default 32)")
    ap.add_argument("--binary", action="store_true",
                    help="the binary ANN (ann.pt) with binary Poisson input instead (Yue Table 5's binary column); "
                         "writes snn_yue_binary_balanced*")
    ap.add_argument("--diagnose", nargs="+", metavar="NAME", default=None,
                    help="instead of balancing: per-layer rates and slopes against the rate model for these "
                         "out/snn_<NAME>.safetensors on the first test subject (written to yue_layers.json)")
    args = ap.parse_args(argv)
    if args.diagnose:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yue_layers.json")
        res = {}
        if os.path.exists(path):  # other networks diagnosed before stay
            with open(path) as fh:
                res = json.load(fh)
        res.update(diagnose(args.diagnose, T=args.T))
        write_json(path, res)
        return
    net = torch_unet()
    ann, meta, norm, enc, stem = (("ann", {}, "unit", "poisson", "yue_binary_balanced") if args.binary else
                                  ("ann_ternary", TERNARY_META, "zero-mean", "poisson-ternary", "yue_balanced"))
    net.load_state_dict(torch.load(os.path.join(OUT, f"{ann}.pt"), weights_only=True))
    net.eval()
    g = to_refsim(net, name="hippocampus-snn-" + stem.replace("_balanced", "-chain").replace("_", "-"), metadata=meta)
    x = calibration(args.calibration, normalize=norm)
    t0 = time.time()
    one = threshold_balance(g, x, T=args.T, scale=1.0, order="rathi", profile="paper",
                            encoder=make_encoder(enc, seed=0), echo=print)
    print(f"balanced in {time.time() - t0:.0f} s", flush=True)
    named = {f"{stem}_s{float(v):g}": float(v) for v in args.scales.split(",")}
    named[stem] = 0.7  # Rathi's and Yue's scale: the start of the fine-tuning
    for name, s in named.items():
        save_model(rescale(one, s), os.path.join(OUT, f"snn_{name}.safetensors"))
        print(f"wrote snn_{name}.safetensors", flush=True)


if __name__ == "__main__":
    main()
