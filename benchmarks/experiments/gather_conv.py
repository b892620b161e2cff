"""An experiment, not part of refsim: an output-stationary "gather" convolution fused with the IF
pass (issue 18), against the event backend's fused scatter (``conv_neuron_rows``), bit for bit.

Each output pixel sums, in 16 register accumulators (one 16-channel block at a time), the weight
rows of the active inputs in its 3x3 window, found through per-row pixel starts; the sums go to a
row buffer that the backend's own neuron pass (``_neuron_row``) consumes, so the spikes are the
scatter's (asserted). The kernel is generated as text (16 named accumulators, groups of 4, 2 and 1
events) and compiled with Numba's SLP vectoriser on (``NUMBA_SLP_VECTORIZE=1``, which packs the
named accumulators into vector registers; without it they stay scalar and the kernel is 2-4x slower).

Measured 2026-11-30 on this project's 2-core machine, batch 34, 1 thread, minimum of 21 (the
shapes and input densities of the shipped model's layers; the runs shared the machine with other
jobs, so single ratios move by about 0.1-0.2): between 0.5x and 1.1x the fused scatter; parity on 16-channel layers at 26 % input density, slower at low density (the per-pixel
window walk costs more than the scatter's per-event work) and on 32/64-channel layers (the events
are walked once per 16-channel block). Variants tried (per-pixel event lists, pointer walks, 32
accumulators, two accumulator sets): none above 1.2x on any layer. A micro-benchmark of the inner
loop alone (random rows of a 144 x 16 float64 table, accumulate into named registers) reaches
1.6-2.2 ns per 16-wide event on this CPU, which bounds this formulation at about 1.5-2x on the
convolution part of a step, before the window bookkeeping. The SLP vectoriser slows the existing
scatter kernels (a 16-double read-modify-write loop: 7.5 -> 15.7 ns per event in the same
micro-benchmark), so it could only be switched on per kernel.

Round 4 (register accumulators, unsigned indices, pixel starts): ``gather_registers.py`` beside this file.

Run: ``NUMBA_SLP_VECTORIZE=1 python benchmarks/experiments/gather_conv.py [threads]``
"""
import sys
import time

import numpy as np
from numba import set_num_threads

from refsim.backends.event import kernels as K
from refsim.semantics import NeuronChoices

BW = 16
ind = " " * 36
def grp(n, unit):
    lines = []
    for q in range(n):
        lines.append(f"{ind}u{q} = np.uintp(e + {q})")
        lines.append(f"{ind}w{q} = wblk[np.uintp((ecr[u{q}] + off) * khkw + exr[u{q}] + base)]")
        if not unit:
            lines.append(f"{ind}v{q} = evr[u{q}]")
    for j in range(BW):
        terms = [f"w{q}[{j}]" if unit else f"v{q} * w{q}[{j}]" for q in range(n)]
        if n == 4:
            expr = f"({terms[0]} + {terms[1]}) + ({terms[2]} + {terms[3]})"
        elif n == 2:
            expr = f"{terms[0]} + {terms[1]}"
        else:
            expr = terms[0]
        lines.append(f"{ind}a{j} += {expr}")
    return "\n".join(lines)
def body(unit):
    return f"""                                while e + 4 <= e1:
{grp(4, unit)}
                                    e += 4
                                if e + 2 <= e1:
{grp(2, unit)}
                                    e += 2
                                if e < e1:
{grp(1, unit)}"""
init = " = ".join([f"a{j}" for j in range(BW)]) + " = 0.0"
fin = "\n".join(f"                    br[{j}] = a{j}" for j in range(BW))
src = f'''import numpy as np
from numba import njit, prange, get_num_threads
from refsim.kernels import fused as F
BW = {BW}

@njit(parallel=True)
def pixel_starts(ex, rcnt, ps):
    """ps[b, y, x] = index of the first event of row y at column >= x (x = 0..W)."""
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
            s[np.uintp(exr[np.uintp(e)] + 1)] += 1
        for x in range(1, W + 1):
            s[x] += s[x - 1]

@njit(parallel=True)
def gather(exs, ecs, evs, rcnts, pss, offs, unit, wb, kh, kw, pt, pl,
           bias, has_bias, v, vpre, keep_pre, th,
           ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
           ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk, flags, mode=0):
    B, Ho, Wo, C = v.shape
    khkw = kh * kw
    nP = len(exs)
    nblk = C // BW
    nch = get_num_threads()
    per = (B * Ho + nch - 1) // nch
    for ch in prange(nch):
        buf = np.empty((Wo, C), v.dtype)
        for job in range(ch * per, min(B * Ho, ch * per + per)):
            b = job // Ho
            oy = job - b * Ho
            for ox in range(Wo):
                xlo0 = ox - pl
                for blk in range(nblk):
                    wblk = wb[blk]
                    {init}
                    for p in range(nP):
                        H = rcnts[p].shape[1]
                        Win = pss[p].shape[2] - 1
                        off = offs[p]
                        xlo = np.uintp(max(xlo0, 0))
                        xhi = np.uintp(max(min(xlo0 + kw, Win), 0))
                        for ki in range(kh):
                            y = oy + ki - pt
                            if y < 0 or y >= H:
                                continue
                            s = pss[p][b, y]
                            e = s[xlo]
                            e1 = s[xhi]
                            if e >= e1:
                                continue
                            exr = exs[p][b, y]
                            ecr = ecs[p][b, y]
                            evr = evs[p][b, y]
                            base = ki * kw - xlo0
                            if unit:
{body(True)}
                            else:
{body(False)}
                    br = buf[ox, blk * BW:blk * BW + BW]
{fin}
            if mode == 0:
                F._neuron_row(buf, 0, False, b, oy, bias, has_bias, v, vpre, keep_pre, th, ge,
                              fire_first, reset, multi, ternary, vmin, has_vmin, val_th, ex, ec, ev, rcnt, rsum, rmax,
                              counts, has_counts, spk, has_spk, flags[job])
'''

NS = {}
exec(compile(src, "<gather-kernel>", "exec"), NS)
set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
rng = np.random.default_rng(0)
fl = K.choice_flags("if", NeuronChoices())
def setup(cout, ho, wo, B):
    return dict(v=np.zeros((B, ho, wo, cout)), th=np.full(cout, 1.0), flags=fl, events=K.row_events(B, (cout, ho, wo)),
                rsum=np.zeros((B, ho), np.int64), scratch=np.zeros((B * ho, wo, cout + 1), np.uint8))
def run(cin, cout, H, W, dens, B=34, reps=21, thr=1.0):
    x = (rng.random((B, cin, H, W)) < dens).astype(np.float64)
    w = (rng.integers(-64, 64, (cout, cin, 3, 3)) / 256).astype(np.float32)
    ev_in = K.dense_events(x)
    parts = [(ev_in, 0)]
    A = setup(cout, H, W, B); Bs = setup(cout, H, W, B)
    A["th"][:] = thr; Bs["th"][:] = thr
    step = K.bind_conv_neuron_rows(weights=K.prepare_conv_s1(w), pad_top=1, pad_left=1, buffer_width=W + 3, **A)
    wg = K.prepare_conv(w, 1)
    wb = np.ascontiguousarray(wg.reshape(-1, cout // BW, BW).transpose(1, 0, 2))
    mid = K._neuron_args(Bs["v"], Bs["th"], fl, Bs["events"], Bs["rsum"], None, None)
    ps = np.zeros((B, H, W + 1), np.int64)
    def gstep():
        NS['pixel_starts'](ev_in[0], ev_in[3], ps)
        NS['gather']((ev_in[0],), (ev_in[1],), (ev_in[2],), (ev_in[3],), (ps,), np.array([0], np.int64), True, wb, 3, 3, 1, 1,
                 K._dummy(np.float64, 1), False, *mid, K._dummy(np.int8), False, Bs["scratch"])
    step(parts, None, None); gstep()
    ta = []; tb = []
    for r in range(reps):
        t0 = time.perf_counter(); step(parts, None, None); ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); gstep(); tb.append(time.perf_counter() - t0)
    assert np.array_equal(A["v"], Bs["v"]), "v differs"
    assert np.array_equal(A["events"][3], Bs["events"][3])
    rate = A["rsum"].sum() / (B * H * W * cout)
    print(f"{cin}->{cout} {H}x{W} {dens:.0%} out rate {rate:.2f}: scatter {np.min(ta)*1e3:.2f} ms  gather {np.min(tb)*1e3:.2f} ms  x{np.min(ta)/np.min(tb):.2f}", flush=True)
for args in [(16, 16, 64, 48, .26), (32, 16, 64, 48, .175), (32, 32, 32, 24, .25), (64, 32, 32, 24, .2), (64, 64, 16, 12, .095), (16, 16, 64, 48, .04), (1, 16, 64, 48, .127)]:
    run(*args, thr=4.0)
