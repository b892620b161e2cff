"""Shared pieces of the hippocampus pipeline (validation/hippocampus/): the data split, slices as
refsim segment makes them, and the torch U-Net that mirrors refsim.models.hippocampus_unet."""
from __future__ import annotations

import glob
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "hippocampus-msd")
OUT = os.path.join(ROOT, "validation", "hippocampus", "out")
IN_SHAPE = (1, 64, 48)      # every MSD slice along axis 0 (at most 59 x 47) fits without cropping
CHANNELS = (16, 32, 64)
SPLIT_SEED = 2023
N_VAL, N_TEST = 20, 40


def cases():
    return sorted(os.path.basename(f)[:-7] for f in glob.glob(os.path.join(DATA, "imagesTr", "*.nii.gz")))


def split():
    """Subject-level split with a fixed seed: (train, val, test) case names."""
    c = cases()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(c))
    test = sorted(c[i] for i in order[:N_TEST])
    val = sorted(c[i] for i in order[N_TEST:N_TEST + N_VAL])
    train = sorted(c[i] for i in order[N_TEST + N_VAL:])
    return train, val, test


def volume_slices(case, normalize="unit"):
    """(x, y): the case's slices along axis 0 as refsim segment prepares them (normalised over the
    volume: "unit" to [0, 1] for binary spikes, "zero-mean" to [-1, 1] for ternary spikes; centred,
    padded to IN_SHAPE) and the binary label (label > 0) the same way."""
    from refsim.io.nifti import prepare_slices, read_volume, slice_volume
    img = read_volume(os.path.join(DATA, "imagesTr", case + ".nii.gz"))
    lab = read_volume(os.path.join(DATA, "labelsTr", case + ".nii.gz"))
    x, _ = prepare_slices(img, IN_SHAPE[1:], 0, normalize)
    y, _ = slice_volume(lab.data > 0, IN_SHAPE[1:], 0)
    return x.astype(np.float32), y.astype(np.float32)


def load(names, normalize="unit"):
    xs, ys = zip(*(volume_slices(c, normalize) for c in names))
    return np.concatenate(xs), np.concatenate(ys)


def torch_unet(dropout=0.1, channels=CHANNELS, in_channels=IN_SHAPE[0]):
    """The torch twin of refsim.models.hippocampus_unet((in_channels, H, W), channels): same layers and
    names, ReLU where the refsim graph has IF neurons, no biases, average pooling, transposed
    convolutions (validation/em uses it with its own channels)."""
    import torch
    nn = torch.nn

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = channels
            self.enc = nn.ModuleList()
            prev = in_channels
            for ch in c:
                self.enc.append(nn.ModuleList([nn.Conv2d(prev, ch, 3, padding=1, bias=False),
                                               nn.Conv2d(ch, ch, 3, padding=1, bias=False)]))
                prev = ch
            self.up, self.dec = nn.ModuleList(), nn.ModuleList()
            for lvl in range(len(c) - 2, -1, -1):
                self.up.append(nn.ConvTranspose2d(c[lvl + 1], c[lvl], 2, 2, bias=False))
                self.dec.append(nn.ModuleList([nn.Conv2d(2 * c[lvl], c[lvl], 3, padding=1, bias=False),
                                               nn.Conv2d(c[lvl], c[lvl], 3, padding=1, bias=False)]))
            self.head = nn.Conv2d(c[0], 1, 1, bias=False)
            self.drop = nn.Dropout(dropout)
            self.pool = nn.AvgPool2d(2)

        def forward(self, x, act=torch.relu):
            skips = []
            for lvl, (a, b) in enumerate(self.enc):
                if lvl:
                    x = self.pool(x)
                x = act(b(act(a(x))))
                x = self.drop(x)
                skips.append(x)
            for up, (a, b), skip in zip(self.up, self.dec, reversed(skips[:-1])):
                x = act(up(x))
                x = torch.cat([skip, x], dim=1)
                x = act(b(act(a(x))))
            return self.head(x)

    return UNet()


def to_refsim(net, thresholds=None, name="hippocampus-snn", metadata=None, in_shape=IN_SHAPE, channels=CHANNELS):
    """The refsim graph of refsim.models.hippocampus_unet(in_shape, channels) with the torch net's
    weights (float32) and the given thresholds per neuron layer (default 1)."""
    from refsim import models
    from refsim.graph import Graph
    g = models.hippocampus_unet(in_shape=in_shape, channels=channels, seed=0, name=name)
    w = {}
    for lvl, (a, b) in enumerate(net.enc):
        w[f"enc{lvl + 1}a"], w[f"enc{lvl + 1}b"] = a.weight, b.weight
    depth = len(channels)
    for i, lvl in enumerate(range(depth - 2, -1, -1)):
        w[f"up{lvl + 1}"] = net.up[i].weight
        w[f"dec{lvl + 1}a"], w[f"dec{lvl + 1}b"] = net.dec[i][0].weight, net.dec[i][1].weight
    w["head"] = net.head.weight
    nodes = []
    for n in g.order:
        node = g[n]
        if n in w:
            node = node.replace(weight=w.pop(n).detach().cpu().numpy().astype(np.float32))
        elif node.TYPE == "Neuron" and thresholds is not None:
            node = node.replace(threshold=float(np.float32(thresholds[n])))
        nodes.append(node)
    if w:
        raise RuntimeError(f"weights not placed: {sorted(w)}")
    meta = {"architecture": f"hippocampus U-Net {CHANNELS} on {IN_SHAPE[1]}x{IN_SHAPE[2]} slices (Yue et al. 2023 style)",
            "profile": "paper", "encoding": "poisson", "normalize": "unit", "axis": 0, "readout": "sigmoid-mean"}
    meta.update(metadata or {})
    return Graph(nodes, name=name, metadata=meta)


def load_refsim_weights(net, g):
    """Copy a refsim graph's weights (as to_refsim names them) into the torch twin; returns its thresholds."""
    import torch
    depth = len(CHANNELS)
    pairs = []
    for lvl, (a, b) in enumerate(net.enc):
        pairs += [(a, f"enc{lvl + 1}a"), (b, f"enc{lvl + 1}b")]
    for i, lvl in enumerate(range(depth - 2, -1, -1)):
        pairs += [(net.up[i], f"up{lvl + 1}"), (net.dec[i][0], f"dec{lvl + 1}a"), (net.dec[i][1], f"dec{lvl + 1}b")]
    pairs.append((net.head, "head"))
    with torch.no_grad():
        for mod, name in pairs:
            mod.weight.copy_(torch.from_numpy(np.array(g[name].weight)))
    return {n: float(g[n].threshold) for n in g.neurons}
