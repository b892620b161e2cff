"""The benchmark's torch fact (refsim.bench.peers): which oneDNN kernel torch ran for a layer."""
import numpy as np
import pytest

from refsim.bench import _onednn_spec
from refsim.bench.peers import onednn_implementations
from refsim.graph.nodes import Conv2d, ConvTranspose2d

pytest.importorskip("torch")


def test_onednn_names_the_kernel_of_every_convolution():
    w = np.zeros((4, 3, 3, 3), np.float32)
    same_even = Conv2d("c2", ["x"], np.zeros((4, 3, 2, 2), np.float32), padding="same")  # asymmetric padding
    specs = [_onednn_spec(Conv2d("c", ["x"], w, padding=1), (2, 3, 8, 8)),
             _onednn_spec(same_even, (2, 3, 8, 8)),
             _onednn_spec(ConvTranspose2d("t", ["x"], np.zeros((3, 4, 2, 2), np.float32), stride=2), (2, 3, 8, 8))]
    assert specs[1]["shape"] == [2, 3, 9, 9] and specs[1]["padding"] == [0, 0]
    impls = onednn_implementations(specs)
    assert impls is not None and len(impls) == 3
    assert impls[0].endswith("(convolution_direct)") or "wino" in impls[0], impls
    assert "(deconvolution" in impls[2], impls


def test_a_log_that_does_not_match_the_specs_gives_none():
    """A probe that fails (a weight that does not fit its input) is not reported as a kernel."""
    bad = {"type": "Conv2d", "shape": [1, 3, 8, 8], "weight": [4, 5, 3, 3], "stride": [1, 1], "padding": [1, 1],
           "dilation": [1, 1], "groups": 1, "output_padding": [0, 0]}
    assert onednn_implementations([bad]) is None
