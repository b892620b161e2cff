"""The event backend equals the reference backend, bit for bit, on random networks (float64)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refsim import models
from refsim.encoding import PoissonEncoder, StaticEncoder
from refsim.graph import (AvgPool2d, Concat, Conv2d, ConvTranspose2d, Flatten, Graph, Input, Linear, Neuron, Output,
                          SumPool2d)
from refsim.semantics import list_profiles
from refsim.simulator import Recorder, Simulator


def assert_same_traces(g, x, T, profile, encoder, threads=None, full=True):
    rec = Recorder(spikes=True, membranes=True, output=True, values=True) if full else Recorder()
    a = Simulator(g, profile, "reference").run(x, T, encoder, rec)
    b = Simulator(g, profile, "event", threads=threads).run(x, T, encoder, rec)
    for kname in a.counts:
        np.testing.assert_array_equal(a.counts[kname], b.counts[kname], err_msg=kname)
    assert set(a.values) == set(b.values) == (set(a.counts) if full else set())
    for kname in a.values:
        np.testing.assert_array_equal(a.values[kname], b.values[kname], err_msg=kname)
    for kname in a.spikes:
        np.testing.assert_array_equal(a.spikes[kname], b.spikes[kname], err_msg=kname)
    for kname in a.membranes:
        np.testing.assert_array_equal(a.membranes[kname], b.membranes[kname], err_msg=kname)
    for kname in a.output:
        np.testing.assert_array_equal(a.output[kname], b.output[kname], err_msg=kname)
    return a


@st.composite
def random_network(draw):
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    c_in = draw(st.integers(1, 3))
    h, w = draw(st.integers(5, 10)), draw(st.integers(5, 10))
    model = draw(st.sampled_from(["if", "ternary", "multithreshold"]))
    thr = draw(st.sampled_from([0.5, 0.75, 1.0, 1.3]))
    kw = {"levels": (1.0, 0.5, 0.25)} if model == "multithreshold" else {}
    nodes = [Input("in", (c_in, h, w))]
    c1 = draw(st.integers(1, 4)) * 2
    k = draw(st.sampled_from([1, 2, 3]))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k // 2 + 1))
    dil = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, c_in])) if c1 % c_in == 0 else 1
    wgt = (rng.standard_normal((c1, c_in // groups, k, k)) * draw(st.sampled_from([0.5, 1.0, 2.0]))).astype(np.float32)
    bias = rng.standard_normal(c1).astype(np.float32) if draw(st.booleans()) else None
    nodes.append(Conv2d("c1", ["in"], wgt, bias, stride=stride, padding=pad, dilation=dil, groups=groups))
    nodes.append(Neuron("n1", ["c1"], model, thr, **kw))
    g0 = Graph(nodes + [Output("o", ["n1"])])
    _, h1, w1 = g0.shapes["n1"]
    prev, cprev = "n1", c1
    if h1 >= 2 and w1 >= 2 and draw(st.booleans()):
        pool = draw(st.sampled_from([AvgPool2d, SumPool2d]))
        nodes.append(pool("p", [prev], 2))
        nodes.append(Neuron("np", ["p"], model, thr, **kw))
        prev = "np"
        nodes.append(ConvTranspose2d("t", [prev], rng.standard_normal((cprev, cprev, 2, 2)).astype(np.float32),
                                     None, stride=2))
        nodes.append(Neuron("nt", ["t"], model, thr, **kw))
        g1 = Graph(nodes + [Output("o", ["nt"])])
        if g1.shapes["nt"][1:] == (h1, w1):
            nodes.append(Concat("cat", ["n1", "nt"]))
            prev, cprev = "cat", 2 * cprev
        else:
            prev = "nt"
    nodes.append(Conv2d("c2", [prev], rng.standard_normal((3, cprev, 3, 3)).astype(np.float32), None, padding=1))
    nodes.append(Neuron("n2", ["c2"], model, thr, **kw))
    if draw(st.booleans()):
        nodes.append(Flatten("f", ["n2"]))
        g2 = Graph(nodes + [Output("o", ["f"])])
        nodes.append(Linear("l", ["f"], rng.standard_normal((4, g2.shapes["f"][0])).astype(np.float32)))
        nodes.append(Output("o", ["l"]))
    else:
        nodes.append(Output("o", ["n2"]))
    return Graph(nodes), model, seed


@settings(max_examples=60)
@given(random_network(), st.sampled_from(list_profiles()), st.floats(0.01, 0.6), st.booleans(),
       st.sampled_from([1, 2]), st.booleans())
def test_event_equals_reference_random_networks(net, profile, density, ternary_input, threads, full):
    g, model, seed = net
    if model != "if" and profile.startswith("sinabs"):
        profile = "paper"  # ternary and multithreshold neurons emit at most one spike (per level) a step
    shape = g.shapes["in"]
    x = np.random.default_rng(seed).random((2,) + shape) * density
    if ternary_input:
        x = x * np.where(np.random.default_rng(seed + 1).random(x.shape) < 0.5, -1, 1)
    assert_same_traces(g, x, 6, profile, PoissonEncoder(seed=seed, ternary=ternary_input), threads, full)


def test_event_equals_reference_on_the_papers_networks():
    x = np.random.default_rng(0).random((2, 1, 16, 16))
    assert_same_traces(models.hippocampus_unet(in_shape=(1, 16, 16), channels=(4, 8)), x, 12, "paper", PoissonEncoder(seed=3))
    assert_same_traces(models.hippocampus_unet(in_shape=(1, 16, 16), channels=(4, 8, 8), up="nearest"), x, 8, "sinabs",
                       PoissonEncoder(seed=3))
    a = assert_same_traces(models.spiking_unet(fnum=2, depth=2, in_hw=(16, 16)), x, 10, "spiking-unet", StaticEncoder())
    assert sum(int(v.sum()) for v in a.step_counts.values()) > 0
    xv = np.random.default_rng(1).random((2, 3, 8, 8))
    # a non-power-of-two threshold makes the sums inexact: that layer must fall back to dense
    g = models.spiking_unet(fnum=2, depth=1, in_hw=(8, 8))
    from refsim.graph import Graph, Neuron
    nodes = [Neuron(n.name, n.inputs, n.model, 0.7, levels=n.levels) if n.TYPE == "Neuron" else n for n in g.nodes.values()]
    g7 = Graph(nodes)
    plan = Simulator(g7, "paper", "event").event_plan(StaticEncoder())
    assert not plan["conv2"][0] and "not spike-valued" in plan["conv2"][1]
    assert_same_traces(g7, x[:, :, :8, :8], 6, "paper", StaticEncoder())
    xv = np.random.default_rng(1).random((2, 3, 8, 8))
    assert_same_traces(models.vgg5(in_shape=(3, 8, 8), hidden=(16,)), xv, 8, "rathi2020", PoissonEncoder(seed=0))
