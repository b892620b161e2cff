"""Conversion against oracles nobody here wrote (issue 11): threshold balancing against a
re-implementation of Rathi et al.'s balancing loop in torch (float32, their arithmetic), and
layer-wise normalisation scales against SpikingJelly ann2snn's own ``VoltageHook`` (modes "Max" and
"99.9%", one batch), on a network trained nowhere but exported from torch to ONNX and imported."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from torch import nn  # noqa: E402

from refsim.convert import normalize, threshold_balance  # noqa: E402
from refsim.convert.balance import _canonical  # noqa: E402
from refsim.encoding import PoissonEncoder  # noqa: E402
from refsim.io.onnx import load_onnx  # noqa: E402


def _ann():
    torch.manual_seed(5)
    m = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                      nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.ReLU(),
                      nn.Flatten(), nn.Linear(8 * 4 * 4, 10), nn.ReLU(), nn.Linear(10, 3)).eval()
    for p in m.parameters():
        p.data.mul_(1.5)
    return m


def _import(m, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.rand(1, 1, 8, 8),), str(tmp_path / "ann.onnx"), dynamo=False,
                          dynamic_axes={"input": {0: "b"}}, input_names=["input"])
    return load_onnx(tmp_path / "ann.onnx")


def rathi_balance(m, spikes, scale=0.7):
    """Rathi et al. 2020's threshold-balancing loop (nitin-rathi/hybrid-snn-conversion, snn.py,
    find_threshold), re-implemented in torch (float32): for each ReLU in turn, run the IF network with
    the *unscaled* maxima found so far as the earlier layers' thresholds (the code's
    threshold_update(scaling_factor=1.0)) and take the largest input current the layer receives over
    all steps and elements; multiply every threshold by ``scale`` at the end. The neurons follow the
    paper's equations (integrate, fire on v > threshold, subtract), the profile refsim balances with."""
    layers = list(m)
    relus = [i for i, layer in enumerate(layers) if isinstance(layer, nn.ReLU)]
    th = {}
    with torch.no_grad():
        for target in relus:
            v = {}
            best = -np.inf
            for t in range(spikes.shape[0]):
                x = torch.as_tensor(spikes[t], dtype=torch.float32)
                for i, layer in enumerate(layers):
                    if isinstance(layer, nn.ReLU):
                        if i == target:
                            best = max(best, float(x.max()))
                            break
                        v[i] = v.get(i, torch.zeros_like(x)) + x
                        s = (v[i] > th[i]).float()
                        v[i] = v[i] - s * th[i]
                        x = s
                    else:
                        x = layer(x)
            th[target] = float(np.float32(best))
    return [float(np.float32(scale * th[i])) for i in relus]


def test_threshold_balancing_equals_rathis_loop_in_torch(tmp_path):
    m = _ann()
    g = _import(m, tmp_path)
    x = np.random.default_rng(0).random((6, 1, 8, 8))
    T = 40
    ours = threshold_balance(g, x, T=T, scale=0.7, backend="reference", batch=4, seed=3)
    xs, _ = _canonical(x)  # the same samples, in the order refsim encodes them
    spikes = np.stack(list(PoissonEncoder(seed=3).stream(xs, T)))
    theirs = rathi_balance(m, spikes)
    found = [ours.metadata["conversion"]["thresholds"][n] for n in g.neurons]
    # float32 torch sums against float64 ones: equal to float32 rounding
    assert np.allclose(found, theirs, rtol=2e-6, atol=0), (found, theirs)


@pytest.mark.parametrize("mode,percentile", [("Max", 100.0), ("99.9%", 99.9)])
def test_layerwise_scales_equal_spikingjelly_voltagehook(tmp_path, mode, percentile):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based.ann2snn.modules import VoltageHook
    m = _ann()
    g = _import(m, tmp_path)
    x = np.random.default_rng(1).random((16, 1, 8, 8))
    lam = normalize(g, x, "layerwise", percentile=percentile).metadata["conversion"]["lambdas"]
    hooks = []
    for layer in m:
        if isinstance(layer, nn.ReLU):
            h = VoltageHook(mode=mode).train()
            layer.register_forward_hook(lambda mod, inp, out, h=h: h(out))
            hooks.append(h)
    with torch.no_grad():
        m(torch.as_tensor(x, dtype=torch.float32))  # one calibration batch
    theirs = [float(h.scale) for h in hooks]
    ours = [lam[n] for n in g.neurons]
    assert np.allclose(ours, theirs, rtol=1e-5, atol=0), (ours, theirs)
