"""Stage 3: fine-tune the converted SNN in torch with the surrogate gradient of Yue et al. 2023
eq. (5), ``do/du = alpha * max(0, 1 - |u - V|)`` (alpha = 0.3, Rathi's value), BCE-Dice loss, Adam;
the reset passes no gradient. Then record the fine-tuned torch SNN's spikes on held-out slices with
refsim's TraceWriter and write out/snn_finetuned.safetensors and out/finetune_traces.npz.

The torch SNN is the paper's IF network (integrate, fire on u > V, subtract V; one spike a step;
Poisson input drawn by torch), with the converted model's weights and thresholds as its start.
Run from the repository root: ``python validation/hippocampus/finetune_snn.py [--epochs 2] [--T 50]``
(the defaults are the shipped model's run: from the connection-wise conversion, lr 3e-4).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

from refsim import load_model, save_model  # noqa: E402
from refsim.traces import TraceWriter  # noqa: E402
from validation.hippocampus.common import (CHANNELS, OUT, load, load_refsim_weights, split, to_refsim,  # noqa: E402
                                          torch_unet)
from validation.hippocampus.train_ann import bce_dice, dice_np  # noqa: E402

ALPHA = 0.3


class SpikeFn(torch.autograd.Function):
    """Heaviside(u - V) with Yue eq. (5)'s surrogate derivative alpha * max(0, 1 - |u - V|)."""

    @staticmethod
    def forward(ctx, u, v_th):
        ctx.save_for_backward(u, v_th)
        return (u > v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, v_th = ctx.saved_tensors
        sg = ALPHA * torch.clamp(1 - torch.abs(u - v_th), min=0)
        return grad * sg, None


def neuron_names():
    """The refsim Neuron node names in the order the torch SNN meets them."""
    depth = len(CHANNELS)
    names = []
    for lvl in range(depth):
        names += [f"enc{lvl + 1}a_if", f"enc{lvl + 1}b_if"]
    for lvl in range(depth - 2, -1, -1):
        names += [f"up{lvl + 1}_if", f"dec{lvl + 1}a_if", f"dec{lvl + 1}b_if"]
    return names


class TorchSNN(torch.nn.Module):
    """The torch U-Net's layers run as the paper's IF network over T steps."""

    def __init__(self, net, thresholds):
        super().__init__()
        self.net = net
        self.names = neuron_names()
        self.th = {n: torch.tensor(float(thresholds[n])) for n in self.names}
        self.ternary = False

    def forward(self, x, T, gen=None, record=None):
        """x: (B, 1, H, W) intensities in [0, 1] (binary Poisson spikes drawn each step) or, with
        ``self.ternary``, in [-1, 1] (sign(x) with probability |x|). Returns the output membrane
        after T steps; ``record(t, name, spikes)`` is called for the input and every layer."""
        v = {}
        out = 0.0
        net = self.net

        def fire(name, cur):
            u = v.get(name, 0.0) + cur
            s = SpikeFn.apply(u, self.th[name])
            v[name] = u - (s * self.th[name]).detach()
            if record is not None:
                record(t, name, s)
            return s

        for t in range(T):
            if self.ternary:
                inp = (torch.rand(x.shape, generator=gen) < x.abs()).to(x.dtype) * torch.sign(x)
            else:
                inp = (torch.rand(x.shape, generator=gen) < x).to(x.dtype)
            if record is not None:
                record(t, "input", inp)
            h = inp
            skips = []
            k = 0
            for lvl, (a, b) in enumerate(net.enc):
                if lvl:
                    h = net.pool(h)
                h = fire(self.names[k], a(h))
                h = fire(self.names[k + 1], b(h))
                k += 2
                skips.append(h)
            for up, (a, b), skip in zip(net.up, net.dec, reversed(skips[:-1])):
                h = fire(self.names[k], up(h))
                h = torch.cat([skip, h], dim=1)
                h = fire(self.names[k + 1], a(h))
                h = fire(self.names[k + 2], b(h))
                k += 3
            out = out + net.head(h)
        return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--T", type=int, default=50, help="time steps of each training forward (reduced from 200 for CPU)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches-per-epoch", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--start", default="connectionwise",
                    help="the converted model to start from: out/snn_<start>.safetensors (default: the connection-wise "
                         "conversion, as the shipped model)")
    ap.add_argument("--ternary", action="store_true", help="ternary input (zero-mean slices; Yue Table 5)")
    ap.add_argument("--name", default="finetuned", help="writes out/snn_<name>.safetensors")
    args = ap.parse_args(argv)
    norm = "zero-mean" if args.ternary else "unit"
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    conv = load_model(os.path.join(OUT, f"snn_{args.start}.safetensors"))
    net = torch_unet(dropout=0.0)
    thresholds = load_refsim_weights(net, conv)
    snn = TorchSNN(net, thresholds)
    snn.ternary = args.ternary
    train, val, test = split()
    xtr, ytr = load(train, norm)
    has = np.flatnonzero(ytr.reshape(len(ytr), -1).any(axis=1))
    xva, yva = load(val[:5], norm)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(0)
    log = []

    def val_dice():
        net.eval()
        with torch.no_grad():
            ps = [torch.sigmoid(snn(torch.from_numpy(xva[i:i + 32]), args.T, gen) / args.T) for i in range(0, len(xva), 32)]
        return dice_np(torch.cat(ps).numpy() > 0.5, yva > 0.5)

    d0 = val_dice()
    print(f"before fine-tuning: val Dice {d0:.4f} (T={args.T}, 5 val subjects)", flush=True)
    log.append({"epoch": 0, "val_dice": float(d0)})
    for ep in range(args.epochs):
        net.train()
        t0 = time.time()
        losses = []
        for _ in range(args.batches_per_epoch):
            # half of each batch from slices with hippocampus, half at random
            idx = np.concatenate([rng.choice(has, args.batch // 2), rng.choice(len(xtr), args.batch - args.batch // 2)])
            xb, yb = torch.from_numpy(xtr[idx]), torch.from_numpy(ytr[idx])
            loss = bce_dice(snn(xb, args.T, gen) / args.T, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        d = val_dice()
        log.append({"epoch": ep + 1, "loss": float(np.mean(losses)), "val_dice": float(d), "seconds": time.time() - t0})
        print(f"epoch {ep + 1}: loss {np.mean(losses):.4f}, val Dice {d:.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    extra = {"encoding": "poisson-ternary", "normalize": "zero-mean"} if args.ternary else {}
    g = to_refsim(net, thresholds, name=f"hippocampus-snn-{args.name}",
                  metadata={**extra, "conversion": conv.metadata.get("conversion"),
                            "finetuning": {"surrogate": "Yue et al. 2023 eq. (5), alpha 0.3", "T": args.T, "start": args.start,
                                           "epochs": args.epochs, "batches_per_epoch": args.batches_per_epoch,
                                           "batch": args.batch, "lr": args.lr, "loss": "0.3 BCE + 0.7 Dice"}})
    save_model(g, os.path.join(OUT, f"snn_{args.name}.safetensors"))
    if args.name != "finetuned":  # the cross-check traces and the log belong to the shipped model's run
        with open(os.path.join(OUT, f"{args.name}_log.json"), "w") as fh:
            json.dump(log, fh, indent=1)
        return
    # cross-check material: the fine-tuned torch SNN's spikes on 4 held-out slices, T=64
    x, _ = load(test[:1])
    x = torch.from_numpy(x[10:14])
    T = 64
    w = TraceWriter(g, T=T, batch=len(x), profile="paper", producer=f"torch {torch.__version__} (fine-tuned SNN)")
    with torch.no_grad():
        snn(x, T, torch.Generator().manual_seed(5),
            record=lambda t, name, s: w.add_input(name, t, s) if name == "input" else w.add_spikes(name, t, s))
    w.save(os.path.join(OUT, "finetune_traces.npz"))
    with open(os.path.join(OUT, "finetune_log.json"), "w") as fh:
        json.dump(log, fh, indent=1)


if __name__ == "__main__":
    main()
