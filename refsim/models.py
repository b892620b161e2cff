"""Builders for the architectures the papers use, as refsim graphs.

* :func:`hippocampus_unet` - Yue et al. 2023 style (section 3.1, Figure 1): average pooling
  passed on as analog current (Rathi's convention), no bias, no batch norm, dropout, transposed
  convolutions, skip concatenations, a non-firing output layer (eq. 3).
* :func:`spiking_unet` - Li et al. (Spiking-UNet, Figure 1d; authors' ``Segmentation_UNet``):
  3x3 convolutions with bias, multi-threshold neurons after every convolution, a neuron after
  each average pooling, 3x3 stride-2 transposed convolutions (padding 1, output padding 1)
  followed by a neuron, concatenation (skip, up), a final 1x1 convolution integrated by the output.
* :func:`vgg5` - Rathi et al. 2020 VGG5: conv64, avgpool, conv128, conv128, avgpool, two hidden
  linear layers, linear readout; pooling outputs passed on as analog current.

Weights are drawn from a seeded He-normal distribution (float32): the builders give the
architecture; trained weights come from a model file.
"""
from __future__ import annotations

import numpy as np

from .errors import ValidationError
from .graph import (AvgPool2d, Concat, Conv2d, ConvTranspose2d, Dropout, Flatten, Graph, Input, Linear, Neuron, Output,
                    Upsample)
from .neurons.multithreshold import DEFAULT_LEVELS


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


class _B:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []

    def add(self, node):
        self.nodes.append(node)
        return node.name

    def conv(self, name, x, cin, cout, k=3, bias=False, **kw):
        w = _he(self.rng, (cout, cin, k, k), cin * k * k)
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32) if bias else None
        return self.add(Conv2d(name, [x], w, b, padding=kw.pop("padding", k // 2), **kw))

    def convT(self, name, x, cin, cout, k, stride, padding=0, output_padding=0, bias=False):
        w = _he(self.rng, (cin, cout, k, k), cin * k * k // (stride * stride))
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32) if bias else None
        return self.add(ConvTranspose2d(name, [x], w, b, stride=stride, padding=padding, output_padding=output_padding))


def hippocampus_unet(in_shape=(1, 56, 48), channels=(32, 64), seed=0, model="if", threshold=1.0,
                     dropout=0.0, up="transpose", name="hippocampus-unet") -> Graph:
    """A U-Net with ``len(channels)`` levels in Yue et al.'s style (see module docstring).

    ``up``: ``"transpose"`` (2x2 stride-2 transposed convolution) or ``"nearest"`` (nearest
    up-sampling followed by a 3x3 convolution).
    """
    c_in, h, w = in_shape
    depth = len(channels)
    if h % (2 ** (depth - 1)) or w % (2 ** (depth - 1)):
        raise ValidationError("hippocampus_unet(in_shape)", f"H and W divisible by {2 ** (depth - 1)}", in_shape)
    b = _B(seed)
    x = b.add(Input("input", in_shape))
    skips = []
    c_prev = c_in
    for lvl, c in enumerate(channels):
        if lvl:
            x = b.add(AvgPool2d(f"pool{lvl}", [x], 2))
        x = b.conv(f"enc{lvl + 1}a", x, c_prev, c)
        x = b.add(Neuron(f"enc{lvl + 1}a_if", [x], model, threshold))
        x = b.conv(f"enc{lvl + 1}b", x, c, c)
        x = b.add(Neuron(f"enc{lvl + 1}b_if", [x], model, threshold))
        if dropout:
            x = b.add(Dropout(f"drop{lvl + 1}", [x], dropout))
        skips.append((x, c))
        c_prev = c
    for lvl in range(depth - 2, -1, -1):
        skip, c = skips[lvl]
        if up == "transpose":
            u = b.convT(f"up{lvl + 1}", x, c_prev, c, 2, 2)
        elif up == "nearest":
            u = b.add(Upsample(f"up{lvl + 1}_nn", [x], 2))
            u = b.conv(f"up{lvl + 1}", u, c_prev, c)
        else:
            raise ValidationError("hippocampus_unet(up)", "'transpose' or 'nearest'", up)
        u = b.add(Neuron(f"up{lvl + 1}_if", [u], model, threshold))
        x = b.add(Concat(f"cat{lvl + 1}", [skip, u]))
        x = b.conv(f"dec{lvl + 1}a", x, 2 * c, c)
        x = b.add(Neuron(f"dec{lvl + 1}a_if", [x], model, threshold))
        x = b.conv(f"dec{lvl + 1}b", x, c, c)
        x = b.add(Neuron(f"dec{lvl + 1}b_if", [x], model, threshold))
        c_prev = c
    x = b.conv("head", x, c_prev, 1, k=1)
    b.add(Output("output", [x]))
    return Graph(b.nodes, name=name, metadata={"architecture": "hippocampus-unet (Yue et al. 2023 style)",
                                                "weights": f"He-normal, seed {seed} (untrained)"})


def spiking_unet(in_channels=1, classes=2, fnum=64, depth=4, in_hw=(64, 64), levels=DEFAULT_LEVELS, seed=0,
                 name="spiking-unet") -> Graph:
    """Li et al.'s Spiking-UNet (``depth`` down-sampling stages; the paper uses 4 and fnum=64)."""
    h, w = in_hw
    if h % (2 ** depth) or w % (2 ** depth):
        raise ValidationError("spiking_unet(in_hw)", f"H and W divisible by {2 ** depth}", in_hw)
    b = _B(seed)
    mt = dict(model="multithreshold", levels=tuple(levels))
    x = b.add(Input("input", (in_channels, h, w)))
    skips = []
    c_prev = in_channels
    k = 1
    for lvl in range(depth + 1):
        c = fnum * 2 ** lvl
        if lvl:
            x = b.add(AvgPool2d(f"pooling{lvl}", [x], 2))
            x = b.add(Neuron(f"pooling{lvl}_mt", [x], **mt))
        x = b.conv(f"conv{k}", x, c_prev, c, bias=True)
        x = b.add(Neuron(f"conv{k}_mt", [x], **mt))
        x = b.conv(f"conv{k + 1}", x, c, c, bias=True)
        x = b.add(Neuron(f"conv{k + 1}_mt", [x], **mt))
        k += 2
        skips.append((x, c))
        c_prev = c
    for i, lvl in enumerate(range(depth - 1, -1, -1)):
        skip, c = skips[lvl]
        u = b.convT(f"convtranspose{i + 1}", x, c_prev, c, 3, 2, padding=1, output_padding=1, bias=True)
        u = b.add(Neuron(f"convtranspose{i + 1}_mt", [u], **mt))
        x = b.add(Concat(f"concat{i + 1}", [skip, u]))
        x = b.conv(f"conv{k}", x, 2 * c, c, bias=True)
        x = b.add(Neuron(f"conv{k}_mt", [x], **mt))
        x = b.conv(f"conv{k + 1}", x, c, c, bias=True)
        x = b.add(Neuron(f"conv{k + 1}_mt", [x], **mt))
        k += 2
        c_prev = c
    x = b.conv(f"conv{k}", x, c_prev, classes, k=1, bias=True)
    b.add(Output("output", [x]))
    return Graph(b.nodes, name=name, metadata={"architecture": "Spiking-UNet (Li et al.)", "encoding": "static",
                                                "weights": f"He-normal, seed {seed} (untrained)"})


def vgg5(in_shape=(3, 32, 32), classes=10, hidden=(1024, 1024), seed=0, name="vgg5") -> Graph:
    """Rathi et al. 2020 VGG5 (for fire-then-integrate, use profile ``rathi2020``)."""
    c, h, w = in_shape
    if h % 4 or w % 4:
        raise ValidationError("vgg5(in_shape)", "H and W divisible by 4", in_shape)
    b = _B(seed)
    x = b.add(Input("input", in_shape))
    x = b.conv("conv1", x, c, 64)
    x = b.add(Neuron("conv1_if", [x]))
    x = b.add(AvgPool2d("pool1", [x], 2))
    x = b.conv("conv2", x, 64, 128)
    x = b.add(Neuron("conv2_if", [x]))
    x = b.conv("conv3", x, 128, 128)
    x = b.add(Neuron("conv3_if", [x]))
    x = b.add(AvgPool2d("pool2", [x], 2))
    x = b.add(Flatten("flatten", [x]))
    f = 128 * (h // 4) * (w // 4)
    for i, n in enumerate(hidden):
        x = b.add(Linear(f"fc{i + 1}", [x], _he(b.rng, (n, f), f)))
        x = b.add(Neuron(f"fc{i + 1}_if", [x]))
        f = n
    x = b.add(Linear(f"fc{len(hidden) + 1}", [x], _he(b.rng, (classes, f), f)))
    b.add(Output("output", [x]))
    return Graph(b.nodes, name=name, metadata={"architecture": "VGG5 (Rathi et al. 2020)", "profile": "rathi2020",
                                                "weights": f"He-normal, seed {seed} (untrained)"})


def ann_forward(graph: Graph, x, percentile=99.9):
    """Run the graph as an ANN (Neuron -> ReLU, Output -> identity) and return per-neuron-layer
    activation scales (the ``percentile`` of the ReLU output over the batch). Used to set demo
    thresholds; the conversion issue implements the papers' balancing procedures."""
    scales = {}

    def neuron(name, node, v):
        a = np.maximum(v, 0.0)
        lam = float(np.percentile(a, percentile)) if a.size else 1.0
        lam = lam if lam > 0 else 1.0
        scales[name] = lam
        return np.minimum(a / lam, 1.0)

    vals = graph.propagate(x, neuron)
    return vals, scales
