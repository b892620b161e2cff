"""Yue et al.'s own chain, stage 2 (issue 20): the ANN trained on zero-mean slices (``train_ann.py
--normalize zero-mean --name ann_ternary``) balanced in Rathi et al.'s order with ternary Poisson
input (spikes sign(x) with probability |x|; Yue section 4.5), T=200 (Yue's early stop), on the same
32 calibration slices as convert_snn.py, under Yue's IF equations (profile ``paper``). One calibration
at scale 1 gives every scale (``refsim.convert.rescale``: in Rathi's order the scale is a final
multiply), so Yue's Fig. 6A sweep costs one balancing. Writes out/snn_yue_balanced_s<scale>.safetensors
for each ``--scales`` and out/snn_yue_balanced.safetensors at 0.7 (Rathi's and Yue's scale), the start
of the fine-tuning (``finetune_snn.py --ternary --start yue_balanced --name yue_finetuned``).
Run from the repository root: ``python validation/hippocampus/yue_chain.py``."""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from refsim import save_model  # noqa: E402
from refsim.convert import rescale, threshold_balance  # noqa: E402
from refsim.encoding import make_encoder  # noqa: E402
from validation.hippocampus.common import OUT, to_refsim, torch_unet  # noqa: E402
from validation.hippocampus.convert_snn import calibration  # noqa: E402
from validation.hippocampus.ternary import TERNARY_META  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=200, help="balancing steps (Yue's early stop; Rathi's code: 1000)")
    ap.add_argument("--scales", default="0.3,0.4,0.5,0.7,1.0", help="scales to write (Yue Fig. 6A)")
    ap.add_argument("--calibration", type=int, default=32, help="calibration slices with hippocampus (default 32)")
    args = ap.parse_args(argv)
    net = torch_unet()
    net.load_state_dict(torch.load(os.path.join(OUT, "ann_ternary.pt"), weights_only=True))
    net.eval()
    g = to_refsim(net, name="hippocampus-snn-yue-chain", metadata=TERNARY_META)
    x = calibration(args.calibration, normalize="zero-mean")
    t0 = time.time()
    one = threshold_balance(g, x, T=args.T, scale=1.0, order="rathi", profile="paper",
                            encoder=make_encoder("poisson-ternary", seed=0), echo=print)
    print(f"balanced in {time.time() - t0:.0f} s", flush=True)
    named = {f"yue_balanced_s{float(v):g}": float(v) for v in args.scales.split(",")}
    named["yue_balanced"] = 0.7  # Rathi's and Yue's scale: the start of the fine-tuning
    for name, s in named.items():
        save_model(rescale(one, s), os.path.join(OUT, f"snn_{name}.safetensors"))
        print(f"wrote snn_{name}.safetensors", flush=True)


if __name__ == "__main__":
    main()
