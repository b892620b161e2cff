"""The block-accumulating scatter of the fused convolutions (refsim.kernels.fused,
``_scatter_row_blocks``) against a slow NumPy reference written here, for every block width it
chooses, unit-valued and valued events, float64 and float32; then the fused convolution and
transposed-convolution passes at channel counts that select each block width, against NumPy's dense
convolution and the model's own step; then whole networks of such layers, event backend against
the reference backend, bit for bit, on every neuron model whose spikes feed them."""
import numpy as np
import pytest

from refsim import models
from refsim.backends.event import kernels as K
from refsim.encoding import PoissonEncoder
from refsim.graph import ops
from refsim.kernels import fused as F
from refsim.neurons import get_model
from refsim.neurons.if_ import IFParams
from refsim.semantics import NeuronChoices
from refsim.simulator import Recorder, Simulator


def _naive_scatter_row(o_row, xs, cs, vs, wF, ki, pl, cout, ch_off, sx):
    """What the scatter adds, one event at a time: the event at column x of channel c adds
    ``v * wF[c + ch_off, ki]`` (L elements) from element ``(x * sx + pl) * cout`` on."""
    L = wF.shape[2]
    for x, c, v in zip(xs, cs, vs):
        s = (int(x) * sx + pl) * cout
        o_row[s:s + L] += v * wF[c + ch_off, ki].astype(np.float64)


def _row_events(rng, W, cin, density, values):
    """One row's events in raster (x, c) order: x, c, value arrays (int32, int32, float64)."""
    mask = rng.random((W, cin)) < density
    xs, cs = np.nonzero(mask)
    vs = rng.choice(values, size=len(xs)) if len(xs) else np.zeros(0)
    return xs.astype(np.int32), cs.astype(np.int32), vs.astype(np.float64)


@pytest.mark.parametrize("cout,kw", [(32, 3), (16, 3), (8, 4), (16, 2), (8, 1), (24, 2), (4, 2), (3, 3)])
@pytest.mark.parametrize("unit", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sx", [1, 2])
def test_block_scatter_equals_naive(cout, kw, unit, dtype, sx):
    rng = np.random.default_rng(cout * 31 + kw * 7 + sx + unit)
    cin, kh, W, ch_off = 12, 3, 11, 2
    L = kw * cout
    bw = F.block_width(L)
    assert bw == 0 or L % bw == 0
    # weights on a dyadic grid: every partial sum exact in float32 and float64, so any grouping is exact
    wF = (rng.integers(-64, 65, size=(cin + ch_off, kh, L)) / 64.0).astype(dtype)
    values = [1.0] if unit else [1.0, -1.0, 0.5, 2.0, 0.75]
    for density in (0.0, 0.05, 0.4, 1.0):
        xs, cs, vs = _row_events(rng, W, cin, density, values)
        n = len(xs)
        pad = 3
        width = ((W - 1) * sx + pad) * cout + L
        expect = np.zeros(width)
        got = np.zeros(width, dtype)
        cap = max(n, 1)
        ex, ec, ev = np.zeros(cap, np.int32), np.zeros(cap, np.int32), np.zeros(cap, dtype)
        ex[:n], ec[:n], ev[:n] = xs, cs, vs
        for ki in range(kh):
            _naive_scatter_row(expect, xs, cs, vs, wF, ki, pad, cout, ch_off, sx)
            if bw:
                F._scatter_row_blocks(got, ex, ec, ev, n, wF, ki, pad, cout, ch_off, sx, bw, unit)
            else:
                F._scatter_row(got, ex, ec, ev, n, wF, ki, pad, cout, ch_off, sx)
        np.testing.assert_array_equal(got.astype(np.float64), expect)


def test_block_width_choice():
    """The widest block that divides the run; 0 (the one-event scatter) when none does."""
    assert F.block_width(96) == 96 and F.block_width(192) == 96 and F.block_width(48) == 48
    assert F.block_width(144) == 48 and F.block_width(32) == 32 and F.block_width(64) == 32
    assert F.block_width(16) == 16 and F.block_width(24) == 8 and F.block_width(40) == 8
    assert F.block_width(12) == 0 and F.block_width(3) == 0
    assert F.block_width(0) == 0  # no output channels: the one-event scatter (a block would never advance)


def test_block_scatter_with_a_short_run_returns():
    """A run shorter than the block (an empty one: no output channels) adds nothing and returns
    (it once walked the first pixel forever: found by tests/properties/test_fuzz_structure.py)."""
    ex, ec, ev = np.array([0, 1], np.int32), np.array([0, 0], np.int32), np.ones(2)
    o = np.zeros(8)
    F._scatter_row_blocks(o, ex, ec, ev, 2, np.zeros((1, 1, 0)), 0, 0, 0, 0, 1, 8, True)
    assert not o.any()


def _parts(xs, unit):
    parts, off = [], 0
    for xi in xs:
        arrays = K.row_events(xi.shape[0], xi.shape[1:])
        K.rows_from_nchw(a=np.ascontiguousarray(xi), events=arrays)
        parts.append((arrays, off, unit))
        off += xi.shape[1]
    return parts


@pytest.mark.parametrize("cout,k", [(32, 3), (16, 3), (8, 3), (16, 1), (8, 2)])
@pytest.mark.parametrize("unit", [True, False])
@pytest.mark.parametrize("nparts", [1, 2])
def test_conv_neuron_pass_with_blocks_equals_numpy(cout, k, unit, nparts):
    """conv_neuron_rows at channel counts whose kernel rows take each block width, binary (unit)
    and valued events, one map or a concatenation of two, against the dense convolution and the IF
    step (paper choices, per-channel thresholds, bias)."""
    rng = np.random.default_rng(cout + 10 * k + 100 * unit + nparts)
    B, H, W = 2, 7, 9
    cins = [5, 6][:nparts]
    th = rng.integers(2, 9, size=cout) / 4.0
    p = IFParams(th, NeuronChoices())
    m = get_model("if")
    w = (rng.integers(-8, 9, size=(cout, sum(cins), k, k)) / 8.0).astype(np.float32)
    bias = rng.integers(-2, 3, size=cout) / 4.0
    pad = (k - 1) // 2
    pads = (pad, k - 1 - pad, pad, k - 1 - pad)
    assert F.block_width(k * cout) or cout == 8  # the cases below do take the block kernel
    state = m.step.__globals__["zero_state"]((B, cout, H, W))
    v = np.zeros((B, H, W, cout))
    for t in range(4):
        vals = [1.0] if unit else [-1.0, 1.0, 2.0, 0.5]
        xs = [(rng.random((B, c, H, W)) < 0.3) * rng.choice(vals, size=(B, c, H, W)) for c in cins]
        cur = ops.conv2d(np.concatenate(xs, axis=1), w, bias, (1, 1), pads)
        s_ref, state = m.step(state, cur, p)
        events = K.row_events(B, (cout, H, W))
        spk = np.zeros((B, cout, H, W), np.int16)
        K.conv_neuron_rows(parts=_parts(xs, unit), weights=K.prepare_conv_s1(w), pad_top=pads[0], pad_left=pads[2],
                           buffer_width=W + pads[2] + k - 1, v=v, th=th, flags=K.choice_flags("if", NeuronChoices()),
                           events=events, rsum=np.zeros((B, H), np.int64),
                           scratch=np.zeros((B * H, W, cout + 1), np.uint8), bias=bias, spikes=spk.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        np.testing.assert_array_equal(spk, s_ref)
    assert np.abs(state.v).sum() > 0


@pytest.mark.parametrize("cout,k,stride", [(16, 2, 2), (8, 2, 2), (32, 3, 2), (16, 3, 1)])
@pytest.mark.parametrize("unit", [True, False])
def test_convt_neuron_pass_with_blocks_equals_numpy(cout, k, stride, unit):
    """convt_neuron_rows (one group, no column dilation: the contiguous-run case) at channel counts
    whose kernel rows take the block kernel, against NumPy's dense transposed convolution."""
    rng = np.random.default_rng(cout + k + stride + 7 * unit)
    B, H, W, cin = 2, 4, 5, 6
    th = rng.integers(2, 9, size=cout) / 4.0
    p = IFParams(th, NeuronChoices())
    m = get_model("if")
    w = (rng.integers(-8, 9, size=(cin, cout, k, k)) / 8.0).astype(np.float32)
    ho = wo = None
    for t in range(4):
        vals = [1.0] if unit else [-1.0, 1.0, 2.0, 0.5]
        x = (rng.random((B, cin, H, W)) < 0.4) * rng.choice(vals, size=(B, cin, H, W))
        cur = ops.conv_transpose2d(x, w, None, (stride, stride), (0, 0), (0, 0), (1, 1), 1)
        if ho is None:
            ho, wo = cur.shape[2:]
            state = m.step.__globals__["zero_state"]((B, cout, ho, wo))
            v = np.zeros((B, ho, wo, cout))
        s_ref, state = m.step(state, cur, p)
        spk = np.zeros((B, cout, ho, wo), np.int16)
        K.convt_neuron_rows(parts=_parts([x], unit), weights=K.prepare_conv_transpose(w), stride=(stride, stride),
                            padding=(0, 0), dilation=(1, 1), cin_per_group=cin, in_width=W, v=v, th=th,
                            flags=K.choice_flags("if", NeuronChoices()), events=K.row_events(B, (cout, ho, wo)),
                            rsum=np.zeros((B, ho), np.int64), scratch=np.zeros((B * ho, wo, cout + 1), np.uint8),
                            spikes=spk.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        np.testing.assert_array_equal(spk, s_ref)


@pytest.mark.parametrize("profile", ["paper", "spiking-unet", "sinabs", "rathi2020", "norse"])
@pytest.mark.parametrize("neuron", ["if", "ternary", "multithreshold"])
def test_unet_with_block_widths_event_equals_reference(profile, neuron):
    """A U-Net with 16- and 32-channel layers (kernel rows of 48 and 96 elements: the block kernel
    on every fused convolution) on both backends: the same spikes and membranes, bit for bit, for
    binary spikes (the unit path), threshold-valued spikes (spiking-unet), several spikes per step
    (sinabs) and ternary spikes (the valued path); multi-threshold layers are not fused and are here
    as the control."""
    if neuron == "multithreshold":
        g = models.spiking_unet(fnum=16, depth=1, in_hw=(16, 12), seed=3)
    else:
        g = models.hippocampus_unet(in_shape=(1, 16, 12), channels=(16, 32), seed=3, model=neuron)
    x = np.random.default_rng(0).random((3, 1, 16, 12))
    enc = PoissonEncoder(seed=2, ternary=neuron == "ternary")
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(g, profile, "reference").run(x, 12, enc, rec)
    b = Simulator(g, profile, "event").run(x, 12, enc, rec)
    plan = Simulator(g, profile, "event").plan(enc)
    # multi-threshold layers run their own pass (mt_rows), so their convolutions scatter unfused
    fused = any(p.kernel == "conv_neuron_rows" for p in plan.values())
    assert fused == (neuron != "multithreshold")
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=name)
        np.testing.assert_array_equal(a.membranes[name], b.membranes[name], err_msg=name)
    assert sum(int(np.abs(s).sum()) for s in a.spikes.values()) > 0
