"""Regenerate the shipped untrained model ``demo_unet.safetensors`` (refsim.data.UNTRAINED_MODEL) (run from the repository root:
``python refsim/data/make_demo_model.py``). Deterministic: same file bytes every run.

The model is the Yue-style hippocampus U-Net of :func:`refsim.models.hippocampus_unet` with
2 levels (16/32 channels) on 56x48 slices, He-normal weights from seed 0 (untrained), and each
spiking layer's threshold set to the 99.9th percentile of its ANN (ReLU) activation on the
shipped MRI excerpt, with rates (activation / threshold, clipped at 1) passed on to the next
layer. That makes every layer fire at a plausible rate; it is not a trained segmenter.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from refsim import models, save_model  # noqa: E402
from refsim.data import demo_input  # noqa: E402
from refsim.graph import Graph, Neuron  # noqa: E402


def build():
    g = models.hippocampus_unet(in_shape=(1, 56, 48), channels=(16, 32), seed=0, name="demo-hippocampus-unet")
    x = demo_input()
    _, scales = models.ann_forward(g, x)
    nodes = []
    for name in g.order:
        n = g[name]
        if isinstance(n, Neuron):
            n = Neuron(n.name, n.inputs, n.model, float(np.float32(scales[name])))
        nodes.append(n)
    meta = dict(g.metadata)
    meta.update({"thresholds": "99.9th percentile of the ANN activation on the shipped excerpt (make_demo_model.py)",
                 "input": "hippocampus_001_x10-17.nii.gz, unit-normalised, padded to 56x48",
                 "encoding": "poisson", "profile": "paper"})
    return Graph(nodes, name=g.name, metadata=meta)


if __name__ == "__main__":
    save_model(build(), os.path.join(HERE, "demo_unet.safetensors"))
    print("wrote", os.path.join(HERE, "demo_unet.safetensors"))
