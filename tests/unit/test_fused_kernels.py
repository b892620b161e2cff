"""The fused event kernels (refsim.kernels.fused) against slow NumPy references, and the engine's
edge cases: multi-consumer currents, threads, rounding-prone weights."""
import itertools

import numpy as np
import pytest

from refsim.encoding import PoissonEncoder
from refsim.graph import Concat, Conv2d, Graph, Input, Neuron, Output, ops
from refsim.backends.event import kernels as K
from refsim.neurons import get_model
from refsim.neurons.if_ import IFParams, TernaryIFParams
from refsim.semantics import CHOICE_VALUES, V_MIN_VALUES, NeuronChoices
from refsim.simulator import Recorder, Simulator

# every combination of every choice's values (refsim.semantics lists them once)
_GRID = dict(CHOICE_VALUES, v_min=V_MIN_VALUES)
CHOICES = [dict(zip(_GRID, combo)) for combo in itertools.product(*_GRID.values())]


def _tie_inputs(rng, shape, th):
    """Currents on a coarse dyadic grid so membranes hit the thresholds exactly (ties)."""
    return rng.integers(-3, 9, size=shape) * 0.25 * th


@pytest.mark.parametrize("model", ["if", "ternary"])
@pytest.mark.parametrize("idx", list(range(0, len(CHOICES), 7)) + [0, 1])
@pytest.mark.parametrize("keep_pre,has_bias", [(True, True), (False, True), (False, False)])
def test_neuron_pass_equals_numpy_step(model, idx, keep_pre, has_bias):
    """CHOICES[0] is the paper's set, which takes the two-pass loop when keep_pre is off."""
    kw = CHOICES[idx]
    if model == "ternary":
        kw = dict(kw, spikes_per_step="one")
    choices = NeuronChoices(**kw)
    rng = np.random.default_rng(idx)
    B, C, H, W = 2, 3, 4, 5
    th = np.array([1.0, 0.5, 0.75])
    p = (IFParams if model == "if" else TernaryIFParams)(th, choices)
    m = get_model(model)
    bias = np.array([0.25, -0.5, 0.0]) if has_bias else np.zeros(3)
    state = m.step.__globals__["zero_state"]((B, C, H, W))
    v = np.zeros((B, H, W, C))
    vpre = np.zeros_like(v)
    counts = np.zeros((B, C, H, W), np.int64)
    for t in range(6):
        cur_nchw = _tie_inputs(rng, (B, C, H, W), 1.0)
        s_ref, state = m.step(state, cur_nchw + bias[None, :, None, None], p)
        halo = np.zeros((B, H + 2, W + 2, C))
        halo[:, 1:-1, 1:-1] = cur_nchw.transpose(0, 2, 3, 1)
        ex, ec, ev, rcnt, rmax = K.row_events(B, (C, H, W))
        rsum = np.zeros((B, H), np.int64)
        spk = np.zeros((B, C, H, W), np.int16)
        K.neuron_rows(cur=halo, r0=1, c0=1, zero_cur=True, bias=bias if has_bias else None, v=v,
                      vpre=vpre if keep_pre else None, th=th, flags=K.choice_flags(model, choices),
                      events=(ex, ec, ev, rcnt, rmax), rsum=rsum, counts=counts.transpose(0, 2, 3, 1),
                      spikes=spk.transpose(0, 2, 3, 1), scratch=np.zeros((B * H, W, C + 1), np.uint8))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        if keep_pre:
            np.testing.assert_array_equal(vpre.transpose(0, 3, 1, 2), state.v_pre)
        np.testing.assert_array_equal(spk, s_ref)
        assert not halo[:, 1:-1, 1:-1].any(), "the pass zeroes the current it read"
        dense = np.zeros((B, C, H, W))
        K.rows_to_nchw(out=dense, events=(ex, ec, ev, rcnt, rmax))
        np.testing.assert_array_equal(dense, m.emitted(s_ref, p))
        np.testing.assert_array_equal(rsum.sum(axis=1), np.abs(s_ref).reshape(B, -1).sum(axis=1))
        np.testing.assert_array_equal(rmax, np.abs(dense).max(axis=(1, 3)))
        # raster order inside each row: x ascending, then channel
        for b, y in itertools.product(range(B), range(H)):
            key = ex[b, y, :rcnt[b, y]] * C + ec[b, y, :rcnt[b, y]]
            assert np.all(np.diff(key) > 0)


@pytest.mark.parametrize("pad,k,nbands", [(1, 3, 1), (1, 3, 2), (1, 3, 7), (0, 3, 3), (2, 5, 4), (0, 1, 2), (1, 2, 3)])
def test_conv_rows_equals_dense(pad, k, nbands):
    rng = np.random.default_rng(k * 10 + pad)
    B, C, H, W, cout = 2, 9, 9, 7, 4  # up to 9 events a pixel: groups of 4, 2 and 1
    x = (rng.random((B, C, H, W)) < 0.6) * rng.choice([-1.0, 1.0, 2.0], size=(B, C, H, W))
    w = rng.standard_normal((cout, C, k, k)).astype(np.float32)
    ref = ops.conv2d(x, w, None, (1, 1), (pad, pad, pad, pad))
    ho, wo = ref.shape[2:]
    arrays = K.row_events(B, (C, H, W))
    K.rows_from_nchw(a=x, events=arrays)
    R, Wb = max(H + pad, ho) + k - 1, max(W + pad, wo) + k - 1
    buf = np.zeros((B, R, Wb, cout))
    K.conv_s1_rows(buf=buf, events=arrays, weights=K.prepare_conv_s1(w), pad_top=pad, pad_left=pad, bands=nbands)
    got = buf[:, k - 1:k - 1 + ho, k - 1:k - 1 + wo].transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, ref)


def test_rows_roundtrip_and_pool():
    rng = np.random.default_rng(0)
    x = (rng.random((2, 3, 6, 8)) < 0.4) * 1.0
    arrays = K.row_events(2, (3, 6, 8))
    K.rows_from_nchw(a=x, events=arrays)
    back = np.zeros_like(x)
    K.rows_to_nchw(out=back, events=arrays)
    np.testing.assert_array_equal(back, x)
    out = np.zeros((2, 3, 4, 3))
    K.pool_rows(out=out, events=arrays, kernel=(3, 3), stride=(2, 3), padding=(1, 1))
    ref = ops.avg_pool2d(x, (3, 3), (2, 3), (1, 1))
    pooled = K.row_events(2, (3, 4, 3))
    K.rows_from_nhwc(a=out, events=pooled, divide_by=9.0, zero=True)
    got = np.zeros_like(ref)
    K.rows_to_nchw(out=got, events=pooled)
    np.testing.assert_array_equal(got, ref)
    assert not out.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_add_nchw_accumulates_event_values(dtype):
    """The total-value record's kernel against NumPy: each step's event values (any sign, float32
    widened) added into a float64 map, on top of what it holds."""
    rng = np.random.default_rng(4)
    total = rng.standard_normal((2, 3, 5, 4))
    want = total.copy()
    for _ in range(3):
        x = ((rng.random((2, 3, 5, 4)) < 0.3) * rng.choice([-1.5, 0.25, 2.0], (2, 3, 5, 4))).astype(dtype)
        arrays = K.row_events(2, (3, 5, 4), dtype)
        K.rows_from_nchw(a=x.astype(np.float64), events=arrays)
        K.rows_add_nchw(out=total, events=arrays)
        want += x.astype(np.float64)
    np.testing.assert_array_equal(total, want)


def _shared_current_net():
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((3, 8, 3, 3)).astype(np.float32)
    return Graph([Input("x", (2, 9, 8)), Conv2d("c1", ["x"], w1, rng.standard_normal(4).astype(np.float32), padding=1),
                  Neuron("a", ["c1"], "if", 0.5), Neuron("b", ["c1"], "if", 1.0),  # one current, two consumers
                  Concat("cat", ["a", "b"]), Conv2d("c2", ["cat"], w2, None, padding=1),
                  Neuron("n2", ["c2"], "ternary", 0.5), Output("o", ["n2"])])


@pytest.mark.parametrize("recorder", [Recorder(), Recorder(spikes=True, membranes=True, counts=False, output=False)])
def test_engine_equals_reference_shared_current(recorder):
    g = _shared_current_net()
    x = np.random.default_rng(2).random((3, 2, 9, 8))
    a = Simulator(g, "paper", "reference").run(x, 12, PoissonEncoder(seed=4), recorder)
    b = Simulator(g, "paper", "event").run(x, 12, PoissonEncoder(seed=4), recorder)
    for kind in ("spikes", "membranes", "counts", "step_counts", "output", "final_output"):
        for k, v in getattr(a, kind).items():
            np.testing.assert_array_equal(getattr(b, kind)[k], v, err_msg=f"{kind}/{k}")
    assert sum(int(v.sum()) for v in a.step_counts.values()) > 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_bits_on_one_and_two_numba_threads(dtype):
    g = _shared_current_net()
    x = np.random.default_rng(3).random((2, 2, 9, 8))
    rec = Recorder(spikes=True, membranes=True)
    one = Simulator(g, "spikingjelly", "event", threads=1, dtype=dtype).run(x, 10, PoissonEncoder(seed=1), rec)
    two = Simulator(g, "spikingjelly", "event", threads=2, dtype=dtype).run(x, 10, PoissonEncoder(seed=1), rec)
    for k, v in one.membranes.items():
        assert v.tobytes() == two.membranes[k].tobytes(), k
    for k, v in one.spikes.items():
        assert v.tobytes() == two.spikes[k].tobytes(), k


def test_threads_validated():
    from refsim.errors import ValidationError
    with pytest.raises(ValidationError, match="threads"):
        Simulator(_shared_current_net(), "paper", "event", threads=0)


def test_rounding_prone_weights_run_dense_and_still_match():
    # weights 1 and 2^-40 in one kernel: sums of spikes need 2^-64 resolution next to values ~1,
    # more than float64's 53 bits, so the scatter order could change the last bit
    w = np.zeros((2, 2, 3, 3), np.float32)
    w[:, :, 0, 0] = 1.0
    w[:, :, 2, 2] = 2.0 ** -40
    w[:, :, 1, 1] = 3.0 * 2.0 ** -40
    def net(w):
        return Graph([Input("x", (2, 6, 6)), Conv2d("c", ["x"], w.copy(), None, padding=1),
                      Neuron("n", ["c"], "if", 1.0), Output("o", ["n"])])
    use, why, _ = Simulator(net(w), "paper", "event").event_plan(PoissonEncoder())["c"]
    assert not use and "may round" in why
    x = np.random.default_rng(0).random((2, 2, 6, 6))
    rec = Recorder(membranes=True)
    a = Simulator(net(w), "paper", "reference").run(x, 5, PoissonEncoder(seed=0), rec)
    b = Simulator(net(w), "paper", "event").run(x, 5, PoissonEncoder(seed=0), rec)
    assert a.membranes["n"].tobytes() == b.membranes["n"].tobytes()
    w[:, :, 2, 2] = 2.0 ** -20  # now log2(L1) + 1 + 24 + 20 < 53
    w[:, :, 1, 1] = 0.0
    use, why, _ = Simulator(net(w), "paper", "event").event_plan(PoissonEncoder())["c"]
    assert use and "exact" in why


def _one_layer(w, b):
    return Graph([Input("x", (w.shape[1], 7, 6)), Conv2d("c", ["x"], w, b, padding=1), Neuron("n", ["c"], "if", 1.0),
                  Output("o", ["n"])])


def test_float32_mode_is_exact_when_float32_sums_are():
    # weights on a 2^-4 grid below 4 and few terms: every float32 partial sum is exact, so float32
    # mode must give the reference's spikes and membranes
    rng = np.random.default_rng(5)
    w = (rng.integers(-32, 33, size=(3, 2, 3, 3)) / 16.0).astype(np.float32)
    g = _one_layer(w, (rng.integers(-4, 5, size=3) / 8.0).astype(np.float32))
    x = rng.random((2, 2, 7, 6))
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(g, "paper", "reference").run(x, 10, PoissonEncoder(seed=2), rec)
    b = Simulator(g, "paper", "event", dtype="float32").run(x, 10, PoissonEncoder(seed=2), rec)
    np.testing.assert_array_equal(a.spikes["n"], b.spikes["n"])
    np.testing.assert_array_equal(a.membranes["n"], b.membranes["n"])
    assert b.meta()["dtype"] == "float32" and a.spikes["n"].any()


def test_float32_mode_first_step_within_rounding_bound():
    # random weights: after one step the float32 membrane differs from the float64 one by at most
    # the textbook bound for a float32 sum of n terms, gamma_n * sum|terms| (n <= 19 here)
    rng = np.random.default_rng(6)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    g = _one_layer(w, bias)
    x = rng.random((2, 2, 7, 6))
    rec = Recorder(membranes=True)
    a = Simulator(g, "paper", "reference").run(x, 1, PoissonEncoder(seed=1), rec).membranes["n"][0]
    b = Simulator(g, "paper", "event", dtype="float32").run(x, 1, PoissonEncoder(seed=1), rec).membranes["n"][0]
    u, n = 2.0 ** -24, 2 * 9 + 2  # terms, bias, membrane add
    mag = ops.conv2d(np.ones((2, 2, 7, 6)), np.abs(w), np.abs(bias), (1, 1), (1, 1, 1, 1)) + 1.0  # + threshold (reset)
    assert np.all(np.abs(a - b) <= n * u / (1 - n * u) * mag)
    assert np.any(a != b), "random float32 weights should show some rounding"


def test_float32_only_on_the_event_backend():
    from refsim.errors import UnknownNameError, ValidationError
    with pytest.raises(ValidationError, match="float64 oracle"):
        Simulator(_shared_current_net(), "paper", "reference", dtype="float32")
    with pytest.raises(UnknownNameError, match="float32"):
        Simulator(_shared_current_net(), "paper", "event", dtype="float16")


@pytest.mark.parametrize("idx", [0, 1, 2, 5, 12, 40, 96, 97, 130, 150])
@pytest.mark.parametrize("keep_pre,has_bias", [(True, True), (False, False)])
def test_multithreshold_pass_equals_numpy_step(idx, keep_pre, has_bias):
    from refsim.neurons.multithreshold import MultiThresholdParams
    choices = NeuronChoices(**dict(CHOICES[idx], spikes_per_step="one", spike_value="one"))
    rng = np.random.default_rng(100 + idx)
    B, C, H, W = 2, 3, 4, 5
    th = np.array([1.0, 0.5, 0.75])
    levels = (1.0, 0.5, 0.25)
    p = MultiThresholdParams(levels, th, choices)
    m = get_model("multithreshold")
    lv = th[:, None] * np.array(levels)[None, :]
    bias = np.array([0.25, -0.5, 0.0]) if has_bias else np.zeros(3)
    state = m.step.__globals__["zero_state"]((B, C, H, W))
    v, vpre = np.zeros((B, H, W, C)), np.zeros((B, H, W, C))
    counts = np.zeros((B, C, H, W), np.int64)
    for t in range(6):
        cur = _tie_inputs(rng, (B, C, H, W), 1.0)
        s_ref, state = m.step(state, cur + bias[None, :, None, None], p)
        halo = np.zeros((B, H + 2, W + 2, C))
        halo[:, 1:-1, 1:-1] = cur.transpose(0, 2, 3, 1)
        ex, ec, ev, rcnt, rmax = K.row_events(B, (C, H, W))
        rsum = np.zeros((B, H), np.int64)
        spk = np.zeros((B, C, H, W), np.uint8)
        K.mt_rows(cur=halo, r0=1, c0=1, zero_cur=True, bias=bias if has_bias else None, v=v,
                  vpre=vpre if keep_pre else None, levels=lv, flags=K.choice_flags("multithreshold", choices),
                  events=(ex, ec, ev, rcnt, rmax), rsum=rsum, counts=counts.transpose(0, 2, 3, 1),
                  spikes=spk.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        if keep_pre:
            np.testing.assert_array_equal(vpre.transpose(0, 3, 1, 2), state.v_pre)
        np.testing.assert_array_equal(spk, s_ref)
        dense = np.zeros((B, C, H, W))
        K.rows_to_nchw(out=dense, events=(ex, ec, ev, rcnt, rmax))
        np.testing.assert_array_equal(dense, m.emitted(s_ref, p))
        np.testing.assert_array_equal(rsum.sum(axis=1), m.spike_count(s_ref).reshape(B, -1).sum(axis=1))


@pytest.mark.parametrize("order", [("multithreshold", "if", "ternary"), ("if", "ternary", "multithreshold")])
def test_engine_mixed_neuron_models(order):
    """Each fused layer gets its own model's kernel and thresholds, whatever the others are."""
    rng = np.random.default_rng(9)
    nodes, prev, cin = [Input("x", (2, 8, 8))], "x", 2
    for i, model in enumerate(order):
        w = rng.standard_normal((4, cin, 3, 3)).astype(np.float32)
        nodes += [Conv2d(f"c{i}", [prev], w, None, padding=1),
                  Neuron(f"n{i}", [f"c{i}"], model, 0.5, **({"levels": (1.0, 0.5)} if model == "multithreshold" else {}))]
        prev, cin = f"n{i}", 4
    g = Graph(nodes + [Output("o", [prev])])
    x = rng.random((2, 2, 8, 8))
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(g, "paper", "reference").run(x, 8, PoissonEncoder(seed=5), rec)
    b = Simulator(g, "paper", "event").run(x, 8, PoissonEncoder(seed=5), rec)
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k], err_msg=k)
        np.testing.assert_array_equal(a.membranes[k], b.membranes[k], err_msg=k)
    assert all(int(v.sum()) > 0 for v in a.step_counts.values())


@pytest.mark.parametrize("profile", ["paper", "snntorch"])  # post- and pre-reset membrane reports
def test_engine_one_neuron_layer(profile):
    """A 1x1x1 layer with batch 1: the pre-reset buffer has the membrane's shape; the report must
    still follow the profile."""
    g = Graph([Input("x", (1, 1, 1)), Conv2d("c", ["x"], np.full((1, 1, 1, 1), 0.75, np.float32), None),
               Neuron("n", ["c"], "if", 1.0), Output("o", ["n"])])
    x = np.ones((1, 1, 1, 1))
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(g, profile, "reference").run(x, 6, PoissonEncoder(seed=0), rec)
    b = Simulator(g, profile, "event").run(x, 6, PoissonEncoder(seed=0), rec)
    np.testing.assert_array_equal(a.membranes["n"], b.membranes["n"])
    np.testing.assert_array_equal(a.spikes["n"], b.spikes["n"])
    assert a.spikes["n"].any()


def _event_parts(xs):
    """The fused kernels' ``parts``: each map's row-segmented events with its first channel (a
    channel concatenation of ``xs``)."""
    parts, off = [], 0
    for xi in xs:
        arrays = K.row_events(xi.shape[0], xi.shape[1:])
        K.rows_from_nchw(a=np.ascontiguousarray(xi), events=arrays)
        parts.append((arrays, off))
        off += xi.shape[1]
    return parts


@pytest.mark.parametrize("model", ["if", "ternary"])
@pytest.mark.parametrize("idx", list(range(0, len(CHOICES), 11)) + [0])
@pytest.mark.parametrize("k,pads,parts", [(3, (1, 1, 1, 1), 1), (3, (1, 1, 1, 1), 2), (3, (0, 0, 0, 0), 1),
                                          (5, (2, 1, 0, 2), 2), (1, (0, 0, 0, 0), 1), (2, (1, 0, 0, 1), 1)])
def test_conv_neuron_pass_equals_numpy(model, idx, k, pads, parts):
    """The convolution fused with its neuron layer (conv_neuron_rows) against NumPy: the dense
    convolution (refsim.graph.ops), bias after the sums, then the model's own step; the input is
    one event map or a channel concatenation of two (each part its own events and offset)."""
    kw = CHOICES[idx]
    if model == "ternary":
        kw = dict(kw, spikes_per_step="one")
    choices = NeuronChoices(**kw)
    rng = np.random.default_rng(1000 + idx + 7 * k)
    B, H, W, cout = 2, 6, 7, 3
    cins = [5, 4][:parts]
    th = np.array([1.0, 0.5, 0.75])
    p = (IFParams if model == "if" else TernaryIFParams)(th, choices)
    m = get_model(model)
    w = (rng.integers(-8, 9, size=(cout, sum(cins), k, k)) / 8.0).astype(np.float32)
    bias = np.array([0.25, -0.5, 0.0])
    pt, pb, pl, pr = pads
    ho, wo = H + pt + pb - k + 1, W + pl + pr - k + 1
    state = m.step.__globals__["zero_state"]((B, cout, ho, wo))
    v, vpre = np.zeros((B, ho, wo, cout)), np.zeros((B, ho, wo, cout))
    counts = np.zeros((B, cout, ho, wo), np.int64)
    counts_ref = np.zeros_like(counts)
    for t in range(5):
        xs = [(rng.random((B, c, H, W)) < 0.5) * rng.choice([-1.0, 1.0, 2.0], size=(B, c, H, W)) for c in cins]
        x = np.concatenate(xs, axis=1)
        cur = ops.conv2d(x, w, bias, (1, 1), pads)
        s_ref, state = m.step(state, cur, p)
        parts_ev = _event_parts(xs)
        events = K.row_events(B, (cout, ho, wo))
        rsum = np.zeros((B, ho), np.int64)
        spk = np.zeros((B, cout, ho, wo), np.int16)
        K.conv_neuron_rows(parts=parts_ev, weights=K.prepare_conv_s1(w), pad_top=pt, pad_left=pl,
                           buffer_width=max(W + pl, wo) + k - 1, v=v, th=th, flags=K.choice_flags(model, choices),
                           events=events, rsum=rsum, scratch=np.zeros((B * ho, wo, cout + 1), np.uint8),
                           bias=bias, vpre=vpre, counts=counts.transpose(0, 2, 3, 1), spikes=spk.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        np.testing.assert_array_equal(vpre.transpose(0, 3, 1, 2), state.v_pre)
        np.testing.assert_array_equal(spk, s_ref)
        dense = np.zeros((B, cout, ho, wo))
        K.rows_to_nchw(out=dense, events=events)
        np.testing.assert_array_equal(dense, m.emitted(s_ref, p))
        np.testing.assert_array_equal(rsum.sum(axis=1), np.abs(s_ref).reshape(B, -1).sum(axis=1))
        counts_ref += np.abs(s_ref)
        np.testing.assert_array_equal(counts, counts_ref)
    assert counts.sum() > 0


def test_event_plan_fuses_a_halo_convolution_with_its_only_neuron_consumer():
    """The plan says which convolutions run inside their neuron layer's pass, and why the others do not."""
    g = _shared_current_net()
    plans = Simulator(g, "paper", "event").plan(PoissonEncoder())
    assert plans["c1"].kernel == "conv_s1_rows"  # one current, two consumers
    assert plans["c2"].kernel == "conv_neuron_rows" and "fused with n2" in plans["c2"].reason
    recorded = Simulator(g, "paper", "event").plan(PoissonEncoder(), Recorder(current_max=["n2"]))
    assert recorded["c2"].kernel == "conv_s1_rows"  # the recorded current needs the whole map


@pytest.mark.parametrize("model,idx", [("if", 0), ("if", 37), ("ternary", 0), ("ternary", 90), ("if", 151)])
@pytest.mark.parametrize("cfg,parts", [(dict(stride=(2, 2), padding=(0, 0), dilation=(1, 1), groups=1, k=2), 2),
                                       (dict(stride=(2, 1), padding=(1, 0), dilation=(1, 1), groups=1, k=3, op=(1, 0)), 1),
                                       (dict(stride=(3, 2), padding=(1, 2), dilation=(2, 1), groups=3, k=3), 1),
                                       (dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, k=1), 2),
                                       (dict(stride=(2, 3), padding=(2, 1), dilation=(1, 1), groups=1, k=4, op=(1, 2)), 2),
                                       (dict(stride=(1, 2), padding=(0, 1), dilation=(1, 2), groups=1, k=3), 1)])
def test_convt_neuron_pass_equals_numpy(model, idx, cfg, parts):
    """The transposed convolution fused with its neuron layer (convt_neuron_rows) against NumPy's
    dense transposed convolution (refsim.graph.ops) and the model's own step."""
    kw = CHOICES[idx % len(CHOICES)]
    if model == "ternary":
        kw = dict(kw, spikes_per_step="one")
    choices = NeuronChoices(**kw)
    rng = np.random.default_rng(2000 + idx)
    g, k, op = cfg["groups"], cfg["k"], cfg.get("op", (0, 0))
    B, H, W, cout = 2, 4, 5, 6
    cins = [3, 3][:parts] if g == 1 else [6]
    th = np.array([0.5, 0.75, 1.0, 0.625, 0.875, 1.25])
    p = (IFParams if model == "if" else TernaryIFParams)(th, choices)
    m = get_model(model)
    w = (rng.integers(-8, 9, size=(sum(cins), cout // g, k, k)) / 8.0).astype(np.float32)
    bias = rng.integers(-2, 3, size=cout) / 4.0
    ref0 = ops.conv_transpose2d(np.zeros((B, sum(cins), H, W)), w, None, cfg["stride"], cfg["padding"], op,
                                cfg["dilation"], g)
    ho, wo = ref0.shape[2:]
    state = m.step.__globals__["zero_state"]((B, cout, ho, wo))
    v, vpre = np.zeros((B, ho, wo, cout)), np.zeros((B, ho, wo, cout))
    for t in range(5):
        xs = [(rng.random((B, c, H, W)) < 0.5) * rng.choice([-1.0, 1.0, 2.0], size=(B, c, H, W)) for c in cins]
        cur = ops.conv_transpose2d(np.concatenate(xs, axis=1), w, bias, cfg["stride"], cfg["padding"], op,
                                   cfg["dilation"], g)
        s_ref, state = m.step(state, cur, p)
        parts_ev = _event_parts(xs)
        events = K.row_events(B, (cout, ho, wo))
        spk = np.zeros((B, cout, ho, wo), np.int16)
        K.convt_neuron_rows(parts=parts_ev, weights=K.prepare_conv_transpose(w), stride=cfg["stride"],
                            padding=cfg["padding"], dilation=cfg["dilation"], cin_per_group=sum(cins) // g, in_width=W, v=v, th=th,
                            flags=K.choice_flags(model, choices), events=events, rsum=np.zeros((B, ho), np.int64),
                            scratch=np.zeros((B * ho, wo, cout + 1), np.uint8), bias=bias, vpre=vpre,
                            spikes=spk.transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(v.transpose(0, 3, 1, 2), state.v)
        np.testing.assert_array_equal(vpre.transpose(0, 3, 1, 2), state.v_pre)
        np.testing.assert_array_equal(spk, s_ref)
        dense = np.zeros((B, cout, ho, wo))
        K.rows_to_nchw(out=dense, events=events)
        np.testing.assert_array_equal(dense, m.emitted(s_ref, p))
