"""Stage 1: train the ANN U-Net on MSD Task04 hippocampus slices (binary target: label > 0), BCE-Dice
loss (0.3 BCE + 0.7 Dice, Yue et al. 2023), Adam; subject-level split with a fixed seed.
Writes out/ann.pt (state dict) and out/ann_log.json. Run from the repository root:
``python validation/hippocampus/train_ann.py [--epochs 12]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from validation.hippocampus.common import OUT, load, split, torch_unet  # noqa: E402

EPS = 1e-5
W_BCE = {"bce": 1.0, "dice": 0.0, "bce-dice": 0.3}  # the BCE weight of each loss; Dice gets the rest


def bce_dice(logits, y, w_bce=0.3):
    p = torch.sigmoid(logits)
    bce = torch.nn.functional.binary_cross_entropy(p.clamp(EPS, 1 - EPS), y)
    dice = 1 - (2 * (p * y).sum() + EPS) / (p.sum() + y.sum() + EPS)
    return w_bce * bce + (1 - w_bce) * dice


def dice_np(pred, y):
    inter = np.logical_and(pred, y).sum()
    s = pred.sum() + y.sum()
    return 1.0 if s == 0 else 2 * inter / s


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--normalize", default="unit", choices=["unit", "zero-mean"],
                    help="input normalisation: unit (binary spikes) or zero-mean (ternary spikes, Yue Table 5)")
    ap.add_argument("--name", default="ann", help="writes out/<name>.pt and out/<name>_log.json")
    ap.add_argument("--loss", default="bce-dice", choices=["bce", "dice", "bce-dice"],
                    help="BCE, Dice, or 0.3 BCE + 0.7 Dice (Yue et al.'s, the default)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    os.makedirs(OUT, exist_ok=True)
    train, val, test = split()
    t0 = time.time()
    xtr, ytr = load(train, args.normalize)
    xva, yva = load(val, args.normalize)
    print(f"train {len(train)} subjects, {len(xtr)} slices; val {len(val)} subjects, {len(xva)} slices "
          f"(loaded in {time.time() - t0:.1f} s)", flush=True)
    net = torch_unet()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rng = np.random.default_rng(0)
    log = []
    best = -1
    for ep in range(args.epochs):
        net.train()
        t1 = time.time()
        order = rng.permutation(len(xtr))
        losses = []
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
            if rng.random() < 0.5:  # left-right flip augmentation
                xb, yb = xb.flip(-1), yb.flip(-1)
            loss = bce_dice(net(xb), yb, W_BCE[args.loss])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        net.eval()
        with torch.no_grad():
            pv = torch.cat([torch.sigmoid(net(torch.from_numpy(xva[i:i + 256]))) for i in range(0, len(xva), 256)]).numpy()
        d = dice_np(pv > 0.5, yva > 0.5)
        log.append({"epoch": ep + 1, "loss": float(np.mean(losses)), "val_dice": float(d), "seconds": time.time() - t1})
        print(f"epoch {ep + 1}: loss {np.mean(losses):.4f}, val Dice {d:.4f} ({time.time() - t1:.1f} s)", flush=True)
        if d > best:
            best = d
            torch.save(net.state_dict(), os.path.join(OUT, f"{args.name}.pt"))
    with open(os.path.join(OUT, f"{args.name}_log.json"), "w") as fh:
        json.dump({"epochs": log, "best_val_dice": best, "train": train, "val": val, "test": test}, fh, indent=1)


if __name__ == "__main__":
    main()
