"""The architectures of the papers are expressible; shapes inferred as the authors' code gives them."""
import numpy as np
import pytest

from refsim import models
from refsim.errors import ValidationError
from refsim.graph import Concat, ConvTranspose2d, Upsample


def test_spiking_unet_full_size_shapes():
    g = models.spiking_unet(in_channels=1, classes=2, fnum=64, depth=4, in_hw=(64, 64))
    assert g.shapes["conv10"] == (1024, 4, 4)
    assert g.shapes["convtranspose1"] == (512, 8, 8)
    assert g.shapes["concat1"] == (1024, 8, 8)
    assert g.shapes["output"] == (2, 64, 64)
    assert g["conv19"].weight.shape == (2, 64, 1, 1) and g["conv1"].bias is not None
    assert all(g[n].model == "multithreshold" for n in g.neurons)
    assert "pooling1_mt" in g.neurons  # a neuron after every pooling layer
    # parameter count of the authors' Segmentation_UNet, layer by layer (3x3 kernels, biases)
    f = [64, 128, 256, 512, 1024]
    enc = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 1024), (1024, 1024)]
    dec = []
    for c in reversed(f[:-1]):
        dec += [(2 * c, c), (2 * c, c), (c, c)]  # convtranspose (2c -> c), conv (2c -> c), conv (c -> c)
    expected = sum(i * o * 9 + o for i, o in enc + dec) + 64 * 2 + 2
    assert g.n_parameters() == expected


def test_hippocampus_unet_yue_style():
    g = models.hippocampus_unet()
    assert g.shapes["input"] == (1, 56, 48) and g.shapes["output"] == (1, 56, 48)
    assert all(getattr(g[n], "bias", None) is None for n in g.order)
    assert g.consumers["pool1"] == ["enc2a"]  # pooled values go on as analog current
    assert any(isinstance(g[n], ConvTranspose2d) for n in g.order) and any(isinstance(g[n], Concat) for n in g.order)
    g2 = models.hippocampus_unet(channels=(8, 16, 32), up="nearest", dropout=0.2)
    assert any(isinstance(g2[n], Upsample) for n in g2.order) and g2.shapes["output"] == (1, 56, 48)
    with pytest.raises(ValidationError):
        models.hippocampus_unet(in_shape=(1, 55, 48))


def test_vgg5_shapes():
    g = models.vgg5()
    assert g.shapes["flatten"] == (128 * 8 * 8,) and g.shapes["output"] == (10,)
    assert g.metadata["profile"] == "rathi2020"


def test_ann_forward_scales_positive():
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4))
    _, scales = models.ann_forward(g, np.random.default_rng(0).random((2, 1, 8, 8)))
    assert set(scales) == set(g.neurons) and all(s > 0 for s in scales.values())


def test_demo_model_file_is_reproducible(tmp_path):
    """The shipped demo model is exactly what its generator script makes."""
    import importlib.util
    import os
    from refsim import save_model
    from refsim.data import UNTRAINED_MODEL
    spec = importlib.util.spec_from_file_location("mk", os.path.join(os.path.dirname(UNTRAINED_MODEL), "make_demo_model.py"))
    if spec is None or not os.path.exists(spec.origin):
        pytest.skip("generator script not installed with the package")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    save_model(mk.build(), tmp_path / "d.safetensors")
    with open(UNTRAINED_MODEL, "rb") as fh:
        assert (tmp_path / "d.safetensors").read_bytes() == fh.read()
