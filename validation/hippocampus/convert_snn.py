"""Stage 2: convert the trained ANN (out/ann.pt) to a spiking network with refsim's threshold
balancing (T=200 early stop, scale 0.7; Yue's method), with binary (Poisson) input, and for
comparison with Li et al.'s connection-wise and layer-wise normalisation (99.9th percentile);
write out/snn_converted.safetensors, out/snn_connectionwise.safetensors, out/snn_layerwise.safetensors.
Run from the repository root: ``python validation/hippocampus/convert_snn.py``."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from refsim import save_model  # noqa: E402
from refsim.graph import Graph  # noqa: E402
from refsim.convert import normalize, threshold_balance  # noqa: E402
from validation.hippocampus.common import OUT, load, split, to_refsim, torch_unet  # noqa: E402


def calibration(n=32, seed=0, normalize="unit"):
    """n training slices that contain hippocampus (the balancing batch), normalised for binary
    ("unit") or ternary ("zero-mean") input."""
    train, _, _ = split()
    x, y = load(train[:40], normalize)
    keep = np.flatnonzero(y.reshape(len(y), -1).any(axis=1))
    pick = np.random.default_rng(seed).choice(keep, size=min(n, keep.size), replace=False)
    return x[np.sort(pick)].astype(np.float64)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--scale", type=float, default=0.7)
    ap.add_argument("--balance-order", default="scaled-as-it-goes", choices=("rathi", "scaled-as-it-goes"),
                    help="the order RESULTS.md's balancing rows were made with is scaled-as-it-goes (refsim < 0.2); "
                         "rathi is Rathi et al.'s code (issue 20: not yet rerun on the 40 subjects)")
    ap.add_argument("--calibration", type=int, default=32)
    args = ap.parse_args(argv)
    net = torch_unet()
    net.load_state_dict(torch.load(os.path.join(OUT, "ann.pt"), weights_only=True))
    net.eval()
    g = to_refsim(net, name="hippocampus-snn-converted")
    x = calibration(args.calibration)
    t0 = time.time()
    print(f"threshold balancing on {len(x)} calibration slices, T={args.T}, scale {args.scale}", flush=True)
    snn = threshold_balance(g, x, T=args.T, scale=args.scale, echo=print, order=args.balance_order)
    save_model(snn, os.path.join(OUT, "snn_converted.safetensors"))
    print(f"wrote {os.path.join(OUT, 'snn_converted.safetensors')} in {time.time() - t0:.1f} s")
    for method in ("connectionwise", "layerwise"):
        nm = normalize(g, x, method=method)
        nm = Graph([nm[n] for n in nm.order], name=f"hippocampus-snn-{method}", metadata=nm.metadata)
        save_model(nm, os.path.join(OUT, f"snn_{method}.safetensors"))
        print(f"wrote snn_{method}.safetensors (lambdas {nm.metadata['conversion']['lambdas']})")


if __name__ == "__main__":
    main()
