"""An experiment, not part of refsim (issue 18, round 4, 2026-12-01): an output-stationary gather
convolution fused with the IF pass, accumulating in vector registers, against the event backend's
fused scatter (``conv_neuron_rows``), bit for bit (asserted).

What this round changed against ``gather_conv.py`` (rounds 1-3):

* accumulators: a fixed-width block (8, 16 or 32 channels) on the stack (``_stack_like``, an LLVM
  alloca) with loops of constant trip count, compiled with the SLP vectoriser switched on for this
  kernel only (``numba.core.config.SLP_VECTORIZE`` is read when a library is finalised, so a context
  manager around the first call enables it per kernel; no environment variable). The generated
  assembly keeps the block in ymm registers;
* unsigned (``np.uintp``) indices everywhere in the inner loop and scalar 3-D indexing instead of
  row views: a row view inside the pixel loop costs an NRT reference-count increment and decrement
  (measured: pointer walking alone took 12.5 ms of a 16->16 64x48 layer at 26 % with views, 9.7 ms
  without), and signed indices add a negative-index correction that blocks the vectoriser;
* windows from per-row pixel starts (``pixel_starts``, one pass per input row and step) instead of
  pointers sliding with the output column (the sliding pointers' loop exits mispredict).

Measured on this project's 2-core Zen 3 EPYC (AVX2; the issue's prototype ran on Zen 4), batch 34,
1 thread, minimum of 11, while a validation run used the other core:

* inner loop alone (random rows of a 144 x C float64 table into register blocks): 1.26 ns per
  16-wide event (12.7 G adds/s), 2.4 ns per 32-wide, 5.6 ns per 64-wide; without SLP 4.0 ns;
* the whole fused layer against the fused scatter: 16->16 64x48 at 26 %: 16.5 against 17.9 ms
  (1.09x); 32->16 64x48 at 18 %: 1.02x; 32->32 32x24 at 25 %: 0.96x; 64->32 32x24 at 20 %: 0.93x;
  64->64 16x12 at 10 %: 0.81x; 16->16 at 4 %: 0.81x; the 1->16 input layer: 0.79x.

Why it does not pay here: per event and kernel row the gather's arithmetic is about 1.7x cheaper
than the scatter's (2.2 against 3.8 ns per 16-wide row at 26 %), but each output pixel pays for its
kh windows whether or not they hold events, and the short windows (2-12 events) end in remainder
branches that mispredict; at the shipped model's densities that overhead eats the gain. Also tried
this round, no gain: the scatter without the multiply for unit-valued rows (18.6 against 18.1 ms),
and the scatter with every pixel's events padded to groups of four through a zero weight row
(0.78-0.89x).

On the Ice Lake Xeon (AVX-512) the project moved to on 2026-12-08, the same script against the
scatter of that day (before the block-accumulating scatter): 16->16 at 26 % 1.09x, 32->16 1.04x,
32->32 0.92x, 64->32 0.77x, 64->64 0.90x, 16->16 at 4 % 0.68x, 1->16 0.78x. The block
scatter (refsim.kernels.fused._make_scatter_blocks) took from this round its register blocks and
SLP switch but keeps the scatter's pixel order, so no window is searched.

Run: ``python benchmarks/experiments/gather_registers.py [threads]``
"""
import sys, time
import numpy as np
from numba import carray, njit, prange, set_num_threads
from refsim.kernels import fused as F
from refsim.backends.event import kernels as K
from refsim.semantics import NeuronChoices


_stack_like = F._stack_block  # the stack block this round introduced, now in refsim


def block_width(cout: int) -> int:
    """The accumulator block for ``cout`` output channels: the widest of :data:`BLOCK_WIDTHS` that
    wastes no lane, else 16 (Cout padded up to a multiple)."""
    for bw in (32, 16, 8):
        if cout % bw == 0:
            return bw
    return 8 if cout < 8 else 16


def prepare_gather(weight: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(Cout, Cin, kh, kw) -> [Cin * kh * kw, Cp] in ``dtype``, one weight row per (input channel,
    kernel row, kernel column), Cout padded with zeros to a multiple of :func:`block_width`."""
    cout, cin, kh, kw = weight.shape
    bw = block_width(cout)
    cp = -(-cout // bw) * bw
    out = np.zeros((cin * kh * kw, cp), dtype)
    out[:, :cout] = np.asarray(weight, np.float64).transpose(1, 2, 3, 0).reshape(cin * kh * kw, cout)
    return out



slp = F.slp_vectorize  # this round's per-kernel SLP switch, now in refsim


@njit(cache=True, parallel=True)
def pixel_starts(ex, rcnt, ps):
    B, H = rcnt.shape
    W = ps.shape[2] - 1
    for job in prange(B * H):
        b = job // H
        y = job - b * H
        s = ps[b, y]
        for x in range(W + 1):
            s[x] = 0
        exr = ex[b, y]
        n = rcnt[b, y]
        for e in range(n):
            s[np.uintp(exr[e] + 1)] += 1
        for x in range(1, W + 1):
            s[x] += s[x - 1]


def make(BW):
    @njit(cache=True, parallel=True)
    def kernel(ex, ec, ev, rcnt, ps, wg, kh, kw, pt, pl,
               bias, has_bias, v, vpre, keep_pre, th,
               ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
               oex, oec, oev, orcnt, rsum, rmax, counts, has_counts, spk, has_spk, flags):
        B, Ho, Wo, C = v.shape
        Cp = wg.shape[1]
        nblk = Cp // BW
        H = rcnt.shape[1]
        Win = ps.shape[2] - 1
        khkw = np.uintp(kh * kw)
        for job in prange(B * Ho):
            b = job // Ho
            oy = job - b * Ho
            ub = np.uintp(b)
            buf = np.empty((Wo, Cp), wg.dtype)
            acc = carray(_stack_like(BW, wg[0, 0]), (BW,))
            for ox in range(Wo):
                x0 = ox - pl
                xlo = np.uintp(min(max(x0, 0), Win))
                xhi = np.uintp(min(max(x0 + kw, 0), Win))
                for blk in range(nblk):
                    c0 = np.uintp(blk * BW)
                    for j in range(BW):
                        acc[j] = 0.0
                    for ki in range(kh):
                        y = oy + ki - pt
                        if y < 0 or y >= H:
                            continue
                        uy = np.uintp(y)
                        e = np.uintp(ps[ub, uy, xlo])
                        e1 = np.uintp(ps[ub, uy, xhi])
                        base = np.uintp(ki * kw - x0)
                        while e + np.uintp(4) <= e1:
                            u1 = np.uintp(ec[ub, uy, e]) * khkw + np.uintp(ex[ub, uy, e]) + base
                            u2 = np.uintp(ec[ub, uy, e + np.uintp(1)]) * khkw + np.uintp(ex[ub, uy, e + np.uintp(1)]) + base
                            u3 = np.uintp(ec[ub, uy, e + np.uintp(2)]) * khkw + np.uintp(ex[ub, uy, e + np.uintp(2)]) + base
                            u4 = np.uintp(ec[ub, uy, e + np.uintp(3)]) * khkw + np.uintp(ex[ub, uy, e + np.uintp(3)]) + base
                            for j in range(BW):
                                jj = c0 + np.uintp(j)
                                acc[j] += (wg[u1, jj] + wg[u2, jj]) + (wg[u3, jj] + wg[u4, jj])
                            e += np.uintp(4)
                        if e + np.uintp(2) <= e1:
                            u1 = np.uintp(ec[ub, uy, e]) * khkw + np.uintp(ex[ub, uy, e]) + base
                            u2 = np.uintp(ec[ub, uy, e + np.uintp(1)]) * khkw + np.uintp(ex[ub, uy, e + np.uintp(1)]) + base
                            for j in range(BW):
                                jj = c0 + np.uintp(j)
                                acc[j] += wg[u1, jj] + wg[u2, jj]
                            e += np.uintp(2)
                        if e < e1:
                            u1 = np.uintp(ec[ub, uy, e]) * khkw + np.uintp(ex[ub, uy, e]) + base
                            for j in range(BW):
                                acc[j] += wg[u1, c0 + np.uintp(j)]
                    for j in range(BW):
                        buf[np.uintp(ox), c0 + np.uintp(j)] = acc[j]
            F._neuron_row(buf, 0, False, b, oy, bias, has_bias, v, vpre, keep_pre, th, ge,
                          fire_first, reset, multi, ternary, vmin, has_vmin, val_th, oex, oec, oev, orcnt, rsum, rmax,
                          counts, has_counts, spk, has_spk, flags[job])
    return kernel


KS = {bw: make(bw) for bw in (8, 16, 32)}
fl = K.choice_flags("if", NeuronChoices())


def setup(cout, ho, wo, B, thr):
    return dict(v=np.zeros((B, ho, wo, cout)), th=np.full(cout, thr), flags=fl, events=K.row_events(B, (cout, ho, wo)),
                rsum=np.zeros((B, ho), np.int64), scratch=np.zeros((B * ho, wo, cout + 1), np.uint8))


def run(cin, cout, H, W, dens, B=34, reps=11, thr=4.0, rng=np.random.default_rng(0), bw=None):
    x = (rng.random((B, cin, H, W)) < dens).astype(np.float64)
    w = (rng.integers(-64, 64, (cout, cin, 3, 3)) / 256).astype(np.float32)
    ev_in = K.dense_events(x)
    parts = [(ev_in, 0)]
    A = setup(cout, H, W, B, thr)
    G = setup(cout, H, W, B, thr)
    step = K.bind_conv_neuron_rows(weights=K.prepare_conv_s1(w), pad_top=1, pad_left=1, buffer_width=W + 3, **A)
    wg = prepare_gather(w)
    bw = bw or min(32, wg.shape[1])
    gk = KS[bw]
    mid = K._neuron_args(G["v"], G["th"], fl, G["events"], G["rsum"], None, None)
    ps = np.zeros((B, H, W + 1), np.int64)
    tp = []

    def gstep():
        t0 = time.perf_counter()
        pixel_starts(ev_in[0], ev_in[3], ps)
        tp.append(time.perf_counter() - t0)
        gk(ev_in[0], ev_in[1], ev_in[2], ev_in[3], ps, wg, 3, 3, 1, 1,
           K._dummy(np.float64, 1), False, *mid, K._dummy(np.int8), False, G["scratch"])
    step(parts, None, None)
    with slp():
        gstep()
    ta, tb = [], []
    for r in range(reps):
        t0 = time.perf_counter(); step(parts, None, None); ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); gstep(); tb.append(time.perf_counter() - t0)
    assert np.array_equal(A["v"], G["v"]), "v differs"
    assert np.array_equal(A["events"][3], G["events"][3])
    print(f"{cin}->{cout} {H}x{W} {dens:.0%} bw{bw}: scatter {np.min(ta)*1e3:.2f} ms  gather {np.min(tb)*1e3:.2f} ms"
          f" (starts {np.min(tp)*1e3:.2f})  x{np.min(ta)/np.min(tb):.2f}", flush=True)


if __name__ == "__main__":
    set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    for a in [(16, 16, 64, 48, .26), (32, 16, 64, 48, .175), (32, 32, 32, 24, .25), (64, 32, 32, 24, .2),
              (64, 64, 16, 12, .095), (16, 16, 64, 48, .04), (1, 16, 64, 48, .127)]:
        run(*a)
    run(32, 32, 32, 24, .25, bw=16)
    run(64, 64, 16, 12, .095, bw=16)
