"""refsim.exactness against closed forms: the value grid of each neuron model's emitted values, the
bit count of a pooled sum at the 53-bit edge (both sides), and the fan-in each node type contributes
to check's rounding bound. Written from the module's definitions, not from its code: a grid of
values 2**k for k in [kmin, kmax] is (s, b) = (-kmin, kmax - kmin + 1) plus the bits of the count."""
import numpy as np
import pytest

from refsim.exactness import fan_in, layer_exactness, neuron_grid
from refsim.graph import AvgPool2d, Conv2d, ConvTranspose2d, Linear, Scale, SumPool2d
from refsim.neurons import make_params
from refsim.semantics import NeuronChoices


@pytest.mark.parametrize("levels,threshold,want", [
    ((2.0, 1.0, 0.5, 0.25), 1.0, (2, 5)),     # values 2^1 .. 2^-2 (4 exponents) and a sum of several levels: 1 more bit
    ((1.0,), 1.0, (0, 1)),                    # one level: the value is the threshold or 0
    ((1.0, 0.5), 4.0, (-1, 3)),               # 4 and 2: grid 2^1, 2 exponents + 1 for the sum
])
def test_multithreshold_grid(levels, threshold, want):
    p = make_params("multithreshold", threshold, NeuronChoices(), levels)
    assert neuron_grid(p, "multithreshold") == want


def test_if_grids():
    assert neuron_grid(make_params("if", 0.75, NeuronChoices()), "if") == (0, 1)               # binary spikes
    assert neuron_grid(make_params("if", 0.75, NeuronChoices(spikes_per_step="multi")), "if") == (0, 8)
    assert neuron_grid(make_params("if", 0.5, NeuronChoices(spike_value="threshold")), "if") == (1, 1)
    assert neuron_grid(make_params("if", 0.75, NeuronChoices(spike_value="threshold")), "if") is None  # not a power of 2


@pytest.mark.parametrize("pool", [AvgPool2d, SumPool2d])
@pytest.mark.parametrize("k", [(2, 3), (3, 2)])
def test_pool_bits_at_the_53_bit_edge(pool, k):
    """A window of kh * kw = 6 adds log2(6) = 2.585 bits: 50 input bits fit in 53, 51 do not."""
    node = pool("p", ["x"], k)
    assert layer_exactness(node, {"x": (0, 50)}).exact
    assert not layer_exactness(node, {"x": (0, 51)}).exact
    assert "52.6 of 53" in layer_exactness(node, {"x": (0, 50)}).reason


def test_fan_in_per_node_type():
    w = np.ones((4, 3, 2, 5), np.float32)
    assert fan_in(Conv2d("c", ["x"], w)) == 3 * 2 * 5 + 1
    assert fan_in(ConvTranspose2d("t", ["x"], np.ones((6, 2, 3, 3), np.float32), stride=2, groups=2)) == 3 * 3 * 3 + 1
    assert fan_in(Linear("l", ["x"], np.ones((7, 11), np.float32))) == 11 + 1
    assert fan_in(AvgPool2d("a", ["x"], (2, 3))) == 2 * 3 + 1
    assert fan_in(SumPool2d("s", ["x"], (3, 3))) == 9 + 1
    assert fan_in(Scale("k", ["x"], 0.5)) == 1
