"""Kernels of the event backend's fused pipeline (docs/architecture.md, "The event backend").

Data layout, per layer and per step, batch first:

* **Row-segmented events** of a spiking layer with shape (C, H, W): ``ex[b, y, :rcnt[b, y]]``,
  ``ec[...]``, ``ev[...]`` are the x, channel and value of the spikes of row ``y`` in raster
  (x, c) order; each row owns a segment of capacity ``W * C``, so rows can be written by
  different threads without a prefix sum. ``rmax[b, y]`` is the largest ``|value|`` of the row.
* **Halo current buffers** ``buf[b, r, j, o]`` (channels-last): a stride-1 convolution adds, for
  a spike at (y, x, c), ``kh`` contiguous runs of ``kw * Cout`` weights (the kernel flipped along
  kw and laid out ``[Cin, kh, kw * Cout]``) at rows ``y + pt + kh - 1 - ki``; the layer's output
  pixel (oy, ox) lives at ``buf[b, oy + r0, ox + c0]``. The neuron pass that consumes the buffer
  reads and zeroes it in the same sweep.
* **Membranes** channels-last ``v[b, y, x, c]``, persistent across steps.

Threads: kernels marked ``parallel`` split work over (sample, band of rows) so that no two threads
write the same element, and every element receives its terms in the same order whatever the
thread count (events are visited in raster order inside each band): same inputs, same bits on 1
or N threads. No ``fastmath``: the arithmetic is the reference's, operation for operation.
"""
from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import carray, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

# reset codes (NeuronChoices.reset)
RESET_SUBTRACT, RESET_ZERO, RESET_NONE = 0, 1, 2

# accumulator blocks of _scatter_row_blocks, in elements: the widest that divides a kernel row's run
# (kw * Cout) is used; 96 and 48 are the 3x3 kernels of 32 and 16 channels, measured best there
BLOCK_WIDTHS = (96, 48, 32, 16, 8)


@contextlib.contextmanager
def slp_vectorize():
    """Compile the Numba functions first called inside this block with LLVM's SLP vectoriser on
    (Numba leaves it off unless ``NUMBA_SLP_VECTORIZE=1``). It is what keeps the accumulator blocks
    of :func:`_scatter_row_blocks` in vector registers (2-3x faster there). Numba reads the setting
    when it finalises a compiled library, so only the kernels compiled inside the block are
    affected: refsim sets nothing in the environment, and other Numba code in the same process
    compiles as it would without refsim. The SLP vectoriser packs isomorphic scalar operations into
    vector ones; without ``fastmath`` it never reassociates, so every result keeps its bits."""
    old = numba.core.config.SLP_VECTORIZE
    numba.core.config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        numba.core.config.SLP_VECTORIZE = old


@intrinsic
def _stack_block(typingctx, size, sample):
    """A pointer to ``size`` (a constant) uninitialised elements of ``sample``'s type on the calling
    function's stack (an LLVM ``alloca`` in its entry block). Indexed with constants after
    unrolling, LLVM keeps the elements in registers."""
    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(sample), size=args[0])
    return types.CPointer(sample)(types.intp, sample), codegen


def block_width(run: int) -> int:
    """The accumulator block :func:`_scatter_row_blocks` uses for kernel rows of ``run`` elements
    (``kw * Cout``): the widest of :data:`BLOCK_WIDTHS` that divides it, or 0 when none does (then
    :func:`_scatter_row` runs)."""
    if run <= 0:  # an empty run (no output channels) has nothing to add
        return 0
    for bw in BLOCK_WIDTHS:
        if run % bw == 0:
            return bw
    return 0


@njit(cache=True, inline="always")
def _count_multi(v, t, ge):
    """Scalar twin of :func:`refsim.neurons._common.count_multi` (same operations, same order)."""
    q = v / t
    if ge:
        n = np.floor(q)
        if n * t > v:
            n = n - 1
        if (n + 1) * t <= v:
            n = n + 1
    else:
        n = np.ceil(q) - 1
        if n * t >= v:
            n = n - 1
        if (n + 1) * t < v:
            n = n + 1
    if n < 0:
        n = 0.0
    return int(n)


@njit(cache=True)
def _neuron_row(crow, c0, zero_cur, b, y, bias, has_bias, v, vpre, keep_pre, th,
                ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
                ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk, fl):
    """Row ``y`` of sample ``b`` of :func:`_neuron_rows` (also the second half of the fused
    convolution kernels): reads the row's current ``crow[c0 + x, c]``, updates the membranes
    ``v[b, y]``, writes the row's events, counts and spikes, and its ``rcnt``, ``rsum`` and
    ``rmax`` entries. The other arguments are :func:`_neuron_rows`'s; ``fl`` (W, C + 1) uint8
    scratch of this row."""
    vrow = v[b, y]
    vprow = vpre[b, y] if keep_pre else vpre[0, 0]
    exr, ecr, evr = ex[b, y], ec[b, y], ev[b, y]
    crow_counts = counts[b, y] if has_counts else counts[0, 0]
    srow = spk[b, y] if has_spk else spk[0, 0]
    W, C = vrow.shape
    simple = not (fire_first or multi or ternary or has_vmin or keep_pre) and reset == RESET_SUBTRACT
    n_ev = 0
    tot = 0
    if simple:
        # pass 1, branch-free so it vectorises: v - f * t is the reference's v - n * theta
        # (n = 0 subtracts 0.0); spike flags go to the scratch
        cnt = 0
        # (2-D indexing, no row views: a view in a pixel loop costs a reference-count update)
        for x in range(W):
            xc = c0 + x
            cx_ = 0
            if has_bias:
                for c in range(C):
                    vp = vrow[x, c] + (crow[xc, c] + bias[c])
                    t = th[c]
                    f = (vp >= t) if ge else (vp > t)
                    vrow[x, c] = vp - f * t
                    fl[x, c] = f
                    cx_ += f
            else:
                for c in range(C):
                    vp = vrow[x, c] + crow[xc, c]
                    t = th[c]
                    f = (vp >= t) if ge else (vp > t)
                    vrow[x, c] = vp - f * t
                    fl[x, c] = f
                    cx_ += f
            fl[x, C] = cx_ > 0  # pixel mark: pass 2 skips silent pixels
            cnt += cx_
            if zero_cur:
                for c in range(C):
                    crow[xc, c] = 0.0
        # pass 2, only for rows that spiked: emit in raster order without a branch per neuron (each
        # neuron writes the next slot, which only a spike keeps), count, record
        if cnt:
            for x in range(W):
                if not fl[x, C]:
                    continue
                for c in range(C):
                    exr[n_ev] = x
                    ecr[n_ev] = c
                    evr[n_ev] = 1.0
                    n_ev += fl[x, c]
                if has_counts:
                    for c in range(C):
                        crow_counts[x, c] += fl[x, c]
                if has_spk:
                    for c in range(C):
                        srow[x, c] = fl[x, c]
        tot = n_ev
    for x in range(W if not simple else 0):
        cx = crow[c0 + x]
        vx = vrow[x]
        for c in range(C):
            cv = cx[c] + bias[c] if has_bias else cx[c]
            if zero_cur:
                cx[c] = 0.0
            t = th[c]
            vp = vx[c]
            if not fire_first:
                vp = vp + cv
            if ternary:
                n = 0
                if (vp >= t) if ge else (vp > t):
                    n = 1
                elif (-vp >= t) if ge else (-vp > t):
                    n = -1
            elif multi:
                n = _count_multi(vp, t, ge)
            else:
                n = 1 if ((vp >= t) if ge else (vp > t)) else 0
            vn = vp
            if n != 0:
                if reset == RESET_SUBTRACT:
                    vn = vp - n * t
                elif reset == RESET_ZERO:
                    vn = 0.0
            if fire_first:
                vn = vn + cv
            if has_vmin and vn < vmin:
                vn = vmin
            vx[c] = vn
            if keep_pre:
                vprow[x, c] = vp
            if n != 0:
                exr[n_ev] = x
                ecr[n_ev] = c
                evr[n_ev] = n
                n_ev += 1
                tot += abs(n)
                if has_counts:
                    crow_counts[x, c] += abs(n)
                if has_spk:
                    srow[x, c] = n
    mx = 0.0
    if simple and not val_th:  # every event is one spike of value 1
        mx = 1.0 if n_ev else 0.0
    else:
        for e in range(n_ev):
            if val_th:
                evr[e] = evr[e] * th[ecr[e]]
            a = abs(evr[e])
            if a > mx:
                mx = a
    rcnt[b, y] = n_ev
    rsum[b, y] = tot
    rmax[b, y] = mx


@njit(cache=True, parallel=True)
def _neuron_rows(cur, r0, c0, zero_cur, bias, has_bias, v, vpre, keep_pre, th,
                 ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
                 ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk, flags):
    """One step of a layer of IF (binary, counted) or ternary neurons, fused with event emission.

    cur : (B, R, Wb, C) input current (a halo buffer, or a channels-last dense array with
          r0 = c0 = 0); zeroed as read when ``zero_cur``. bias : (C,) added to the current.
    v : (B, H, W, C) membranes, updated in place; vpre receives the pre-reset membrane.
    th : (C,) thresholds. The choice flags follow :class:`refsim.semantics.NeuronChoices`.
    Spikes go to the row-segmented events (value = count or sign, times th with ``val_th``),
    ``rsum`` (spikes per row), ``counts`` (+= |spike|) and ``spk`` (the spike itself).
    flags : (B * H, W, C + 1) uint8 scratch (spike flags, and a mark per pixel that spiked).

    The paper's choice set (one binary spike, integrate-then-fire, subtract, no floor) has its
    own two-pass row loop (a branch-free update, then emission for rows that spiked); the general
    loop costs several times as much per neuron.
    """
    B, H, W, C = v.shape
    for job in prange(B * H):
        b = job // H
        y = job - b * H
        _neuron_row(cur[b, r0 + y], c0, zero_cur, b, y, bias, has_bias, v, vpre, keep_pre, th, ge, fire_first, reset,
                    multi, ternary, vmin, has_vmin, val_th, ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk,
                    has_spk, flags[job])


@njit(cache=True)
def _scatter_row(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx):
    """Add one input row's events, through kernel row ``ki`` of ``wF`` ([Cin, kh, L]: per input
    channel and kernel row, one contiguous run of L = kw * Cout weights), into the channels-last
    output row ``o_row`` (a flat (Wb * Cout,) buffer): the event at x adds its run from element
    ``(x * sx + pl) * cout`` on. For a stride-1 convolution ``wF`` is the kernel flipped along kw
    and ``sx`` = 1 (output pixel ox at buffer pixel ox + kw - 1); for a transposed convolution
    with one group and no column dilation it is the kernel as is and ``sx`` the column stride.
    A pixel's events are consecutive and add into the same run, so they go four, then two at a
    time (each run loaded and stored once per group; the event plan proved every partial sum
    exact, so the grouping changes no bit in float64)."""
    L = wF.shape[2]
    e = 0
    while e < n:
        x = exr[e]
        e1 = e + 1
        while e1 < n and exr[e1] == x:
            e1 += 1
        start = (np.int64(x) * sx + pl) * cout
        # a slice indexed from 0: Numba's negative-index check folds away and the loops vectorise
        o = o_row[start:start + L]
        while e + 4 <= e1:
            w1, w2 = wF[ecr[e] + ch_off, ki], wF[ecr[e + 1] + ch_off, ki]
            w3, w4 = wF[ecr[e + 2] + ch_off, ki], wF[ecr[e + 3] + ch_off, ki]
            v1, v2, v3, v4 = evr[e], evr[e + 1], evr[e + 2], evr[e + 3]
            for j in range(L):
                o[j] += (v1 * w1[j] + v2 * w2[j]) + (v3 * w3[j] + v4 * w4[j])
            e += 4
        while e + 2 <= e1:
            w1, w2 = wF[ecr[e] + ch_off, ki], wF[ecr[e + 1] + ch_off, ki]
            v1, v2 = evr[e], evr[e + 1]
            for j in range(L):
                o[j] += v1 * w1[j] + v2 * w2[j]
            e += 2
        while e < e1:
            w1 = wF[ecr[e] + ch_off, ki]
            v1 = evr[e]
            for j in range(L):
                o[j] += v1 * w1[j]
            e += 1


def _make_scatter_blocks(bw):
    """:func:`_scatter_row`'s terms in another grouping, with a block of ``bw`` (a constant)
    accumulators: the events of one input pixel are walked once per block of ``bw`` elements of
    their kernel row's run, summed in the block (which LLVM keeps in vector registers when the
    SLP vectoriser is on: :func:`slp_vectorize`), and the block is added to the output row once
    per pixel. One loop walks a pixel's events and finds its end, so a pixel costs one
    mispredicted branch per block instead of one per group of events. ``unit``: every value of the
    events is 1.0 (binary spikes), so weights are added without the multiply (exact).

    The event plan proved every partial sum exact in float64, so the grouping changes no bit
    there; in float32 mode it is another summation order inside the mode's rounding bound, the
    same on any thread count (it depends on the events only)."""
    @njit(cache=True)
    def scatter(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit):
        nblk = wF.shape[2] // bw
        if nblk == 0:  # a run shorter than the block (block_width never chooses one): nothing to walk
            return
        acc = carray(_stack_block(bw, o_row[0]), (bw,))
        uki = np.uintp(ki)
        e = 0
        while e < n:
            x = exr[e]
            start = np.uintp((np.int64(x) * sx + pl) * cout)
            e0 = e
            for blk in range(nblk):
                off = np.uintp(blk * bw)
                for j in range(bw):
                    acc[j] = 0.0
                q = e0
                if unit:
                    while True:
                        c = np.uintp(ecr[q] + ch_off)
                        for j in range(bw):
                            acc[j] += wF[c, uki, off + np.uintp(j)]
                        q += 1
                        if q >= n or exr[q] != x:
                            break
                else:
                    while True:
                        c = np.uintp(ecr[q] + ch_off)
                        vq = evr[q]
                        for j in range(bw):
                            acc[j] += vq * wF[c, uki, off + np.uintp(j)]
                        q += 1
                        if q >= n or exr[q] != x:
                            break
                for j in range(bw):
                    o_row[start + off + np.uintp(j)] += acc[j]
                e = q
    return scatter


_scatter_blocks_96 = _make_scatter_blocks(96)
_scatter_blocks_48 = _make_scatter_blocks(48)
_scatter_blocks_32 = _make_scatter_blocks(32)
_scatter_blocks_16 = _make_scatter_blocks(16)
_scatter_blocks_8 = _make_scatter_blocks(8)


@njit(cache=True)
def _scatter_row_blocks(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, bw, unit):
    """:func:`_scatter_row`'s terms through the block kernel of width ``bw``
    (:func:`block_width`; see :func:`_make_scatter_blocks`), or through :func:`_scatter_row`
    itself when ``bw`` is 0."""
    if bw == 0:
        _scatter_row(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx)
    elif bw == 96:
        _scatter_blocks_96(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit)
    elif bw == 48:
        _scatter_blocks_48(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit)
    elif bw == 32:
        _scatter_blocks_32(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit)
    elif bw == 16:
        _scatter_blocks_16(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit)
    else:
        _scatter_blocks_8(o_row, exr, ecr, evr, n, wF, ki, pl, cout, ch_off, sx, unit)


@njit(cache=True, parallel=True)
def _conv_neuron_rows(exs, ecs, evs, rcnts, offs, units, wF, pt, pl, Wb, bw,
                      bias, has_bias, v, vpre, keep_pre, th,
                      ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
                      ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk, flags):
    """A stride-1 convolution fused with the IF (binary, counted) or ternary layer it feeds: each
    output row's current is scattered into a row buffer that stays in cache (the input rows that
    reach it, each through its kernel row), then that row's neurons are updated from it as
    :func:`_neuron_rows` updates them. The current never goes to memory, and no layer-sized buffer
    is read, zeroed or written back.

    exs, ecs, evs, rcnts : tuples of the input's row-segmented event arrays, one per part of a
    channel concatenation; offs : each part's first channel; units : whether each part's event
    values are all 1.0 (binary spikes). wF : [Cin, kh, kw * Cout] flipped
    kernel (:func:`refsim.kernels.scatter.prepare_conv_s1`); pt, pl : top and left padding;
    Wb : the row buffer's width in pixels (at least ``max(W + pl, Wo) + kw - 1``); bw : the
    accumulator block of :func:`_scatter_row_blocks` (:func:`block_width`; 0: :func:`_scatter_row`). The remaining
    arguments are :func:`_neuron_rows`'s. Rows run in parallel; each row's terms are added in the
    same order on any thread count."""
    B, Ho, Wo, C = v.shape
    kh = wF.shape[1]
    kw = wF.shape[2] // C
    for job in prange(B * Ho):
        b = job // Ho
        oy = job - b * Ho
        buf = np.zeros((Wb, C), v.dtype)
        flat = buf.reshape(Wb * C)
        for p in range(len(exs)):
            rc = rcnts[p]
            H = rc.shape[1]
            for y in range(max(0, oy - pt), min(H, oy - pt + kh)):
                n = rc[b, y]
                if n:
                    _scatter_row_blocks(flat, exs[p][b, y], ecs[p][b, y], evs[p][b, y], n, wF, y + pt - oy, pl, C,
                                        offs[p], 1, bw, units[p])
        _neuron_row(buf, kw - 1, False, b, oy, bias, has_bias, v, vpre, keep_pre, th, ge,
                    fire_first, reset, multi, ternary, vmin, has_vmin, val_th, ex, ec, ev, rcnt, rsum, rmax,
                    counts, has_counts, spk, has_spk, flags[job])


@njit(cache=True, parallel=True)
def _convt_neuron_rows(exs, ecs, evs, rcnts, offs, units, w, sh, sw, ph, pw, dh, dw, cin_g, Wb, bw,
                       bias, has_bias, v, vpre, keep_pre, th,
                       ge, fire_first, reset, multi, ternary, vmin, has_vmin, val_th,
                       ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk, flags):
    """A transposed convolution fused with the IF or ternary layer it feeds, as
    :func:`_conv_neuron_rows` fuses a stride-1 one: output row ``oy`` collects, in a row buffer,
    the events of every input row ``y`` and kernel row ``ki`` with ``y * sh - ph + ki * dh == oy``
    (the terms :func:`_conv_transpose_rows` adds to that row), then its neurons are updated.
    ``w`` is [Cin, kh, kw, Cout/groups]; ``cin_g`` = Cin/groups; output pixel ox sits at buffer
    column ``ox + pw``, and ``Wb`` >= max((W - 1) * sw + kw, Wo + pw) columns hold every term.
    With one group and no column dilation an event's kernel row is one contiguous run of
    kw * Cout weights on kw adjacent pixels, added by :func:`_scatter_row_blocks` with block ``bw``
    (:func:`block_width` of kw * Cout; 0: :func:`_scatter_row`; terms beyond the output's edges
    land in the margins, which nothing reads); otherwise weight by weight."""
    B, Ho, Wo, C = v.shape
    kh, kw, cout_g = w.shape[1], w.shape[2], w.shape[3]
    runs = cout_g == C and dw == 1
    wr = w.reshape(w.shape[0], kh, kw * cout_g)
    for job in prange(B * Ho):
        b = job // Ho
        oy = job - b * Ho
        buf = np.zeros((Wb, C), v.dtype)
        flat = buf.reshape(Wb * C)
        for ki in range(kh):
            t = oy + ph - ki * dh
            if t < 0 or t % sh != 0:
                continue
            y = t // sh
            for p in range(len(exs)):
                if y >= rcnts[p].shape[1]:
                    continue
                n = rcnts[p][b, y]
                if runs:
                    if n:
                        _scatter_row_blocks(flat, exs[p][b, y], ecs[p][b, y], evs[p][b, y], n, wr, ki, 0, C, offs[p], sw,
                                            bw, units[p])
                    continue
                exr, ecr, evr = exs[p][b, y], ecs[p][b, y], evs[p][b, y]
                for e in range(n):
                    x = exr[e]
                    c = ecr[e] + offs[p]
                    o0 = (c // cin_g) * cout_g
                    val = evr[e]
                    for kj in range(kw):
                        ox = x * sw - pw + kj * dw
                        if ox < 0 or ox >= Wo:
                            continue
                        orow = buf[ox + pw, o0:o0 + cout_g]
                        wrow = w[c, ki, kj]
                        for o in range(cout_g):
                            orow[o] += val * wrow[o]
        _neuron_row(buf, pw, False, b, oy, bias, has_bias, v, vpre, keep_pre, th, ge,
                    fire_first, reset, multi, ternary, vmin, has_vmin, val_th, ex, ec, ev, rcnt, rsum, rmax,
                    counts, has_counts, spk, has_spk, flags[job])


@njit(cache=True, parallel=True)
def _mt_rows(cur, r0, c0, zero_cur, bias, has_bias, v, vpre, keep_pre, lv,
             ge, fire_first, reset, vmin, has_vmin,
             ex, ec, ev, rcnt, rsum, rmax, counts, has_counts, spk, has_spk):
    """One step of a multi-threshold layer (:mod:`refsim.neurons.multithreshold`), fused with event
    emission. ``lv`` (C, n_levels): the levels times each channel's threshold, high to low. The
    spike is the uint8 mask of the levels that fired; the event value is their sum (Li eq. 6),
    added level by level in the reference's order."""
    B, H, W, C = v.shape
    nl = lv.shape[1]
    for job in prange(B * H):
        b = job // H
        y = job - b * H
        n_ev = 0
        tot = 0
        mx = 0.0
        crow = cur[b, r0 + y]
        vrow = v[b, y]
        exr = ex[b, y]
        ecr = ec[b, y]
        evr = ev[b, y]
        for x in range(W):
            cx = crow[c0 + x]
            vx = vrow[x]
            for c in range(C):
                cv = cx[c] + bias[c] if has_bias else cx[c]
                if zero_cur:
                    cx[c] = 0.0
                vp = vx[c]
                if not fire_first:
                    vp = vp + cv
                rest = vp
                mask = 0
                k = 0
                for i in range(nl):
                    lvl = lv[c, i]
                    if (rest >= lvl) if ge else (rest > lvl):
                        rest = rest - lvl
                        mask |= 1 << i
                        k += 1
                vn = vp
                if mask != 0:
                    if reset == RESET_SUBTRACT:
                        vn = rest
                    elif reset == RESET_ZERO:
                        vn = 0.0
                if fire_first:
                    vn = vn + cv
                if has_vmin and vn < vmin:
                    vn = vmin
                vx[c] = vn
                if keep_pre:
                    vpre[b, y, x, c] = vp
                if mask != 0:
                    val = 0.0
                    for i in range(nl):
                        if (mask >> i) & 1:
                            val = val + lv[c, i]
                    exr[n_ev] = x
                    ecr[n_ev] = c
                    evr[n_ev] = val
                    n_ev += 1
                    if abs(val) > mx:
                        mx = abs(val)
                    tot += k
                    if has_counts:
                        counts[b, y, x, c] += k
                    if has_spk:
                        spk[b, y, x, c] = mask
        rcnt[b, y] = n_ev
        rsum[b, y] = tot
        rmax[b, y] = mx


@njit(cache=True, parallel=True)
def _conv_s1_rows(buf, ex, ec, ev, rcnt, wF, pt, pl, cout, ch_off, nbands, bw, unit):
    """Stride-1 convolution as scatter of row-segmented events into a halo buffer ``buf``
    (B, R, Wb * cout). Bands of buffer rows run in parallel; a band visits the input rows that
    reach it, in order, and adds only the kernel rows that land inside it, each through
    :func:`_scatter_row_blocks` with block ``bw`` and ``unit`` (all values 1.0) as the fused kernels
    do (``bw`` 0: :func:`_scatter_row`). The grouping of a pixel's events depends on the events
    only, so float32 results too are the same on any number of threads."""
    B, H = rcnt.shape
    kh = wF.shape[1]
    R = buf.shape[1]
    band = (R + nbands - 1) // nbands
    for job in prange(B * nbands):
        b = job // nbands
        lo = (job - b * nbands) * band
        hi = min(R, lo + band)
        if lo >= hi:
            continue
        ylo = max(0, lo - pt - kh + 1)
        yhi = min(H, hi - pt)
        for y in range(ylo, yhi):
            top = y + pt + kh - 1          # buffer row of ki = 0
            n = rcnt[b, y]
            if n:
                for ki in range(max(0, top - hi + 1), min(kh, top - lo + 1)):
                    _scatter_row_blocks(buf[b, top - ki], ex[b, y], ec[b, y], ev[b, y], n, wF, ki, pl, cout, ch_off, 1,
                                        bw, unit)


@njit(cache=True, parallel=True)
def _conv_transpose_rows(buf, ex, ec, ev, rcnt, w, sh, sw, ph, pw, dh, dw, r0, c0, Ho, Wo, ch_off, cin_g):
    """Transposed convolution as scatter into ``buf`` (B, R, Wb, Cout), output pixel (oy, ox) at
    ``buf[b, oy + r0, ox + c0]``; ``w`` is [Cin, kh, kw, Cout/groups], ``cin_g`` = Cin/groups.
    Samples run in parallel (each writes its own part of ``buf``)."""
    B, H = rcnt.shape
    kh, kw, cout_g = w.shape[1], w.shape[2], w.shape[3]
    for b in prange(B):
        for y in range(H):
            for e in range(rcnt[b, y]):
                x = ex[b, y, e]
                c = ec[b, y, e] + ch_off
                o0 = (c // cin_g) * cout_g
                val = ev[b, y, e]
                for ki in range(kh):
                    oy = y * sh - ph + ki * dh
                    if oy < 0 or oy >= Ho:
                        continue
                    for kj in range(kw):
                        ox = x * sw - pw + kj * dw
                        if ox < 0 or ox >= Wo:
                            continue
                        orow = buf[b, oy + r0, ox + c0, o0:o0 + cout_g]
                        wrow = w[c, ki, kj]
                        for o in range(cout_g):
                            orow[o] += val * wrow[o]


@njit(cache=True, parallel=True)
def _pool_rows(out, ex, ec, ev, rcnt, kh, kw, sh, sw, ph, pw, ch_off):
    """Sum pooling as scatter into channels-last ``out`` (B, Ho, Wo, C); samples run in parallel."""
    B, H = rcnt.shape
    Ho, Wo = out.shape[1], out.shape[2]
    for b in prange(B):
        for y0 in range(H):
            y = y0 + ph
            oy_lo = (y - kh + sh) // sh if y - kh + 1 > 0 else 0
            oy_hi = min(y // sh, Ho - 1)
            for e in range(rcnt[b, y0]):
                x = ex[b, y0, e] + pw
                c = ec[b, y0, e] + ch_off
                val = ev[b, y0, e]
                ox_lo = (x - kw + sw) // sw if x - kw + 1 > 0 else 0
                ox_hi = min(x // sw, Wo - 1)
                for oy in range(oy_lo, oy_hi + 1):
                    for ox in range(ox_lo, ox_hi + 1):
                        out[b, oy, ox, c] += val


@njit(cache=True, parallel=True)
def _rows_from_nhwc(a, zero, div, ex, ec, ev, rcnt, rmax):
    """Row-segmented events of a channels-last map ``a`` (B, H, W, C) divided by ``div`` (as the
    reference's average pooling divides its window sums), zeroing ``a`` as it is read when ``zero``."""
    B, H, W, C = a.shape
    for job in prange(B * H):
        b = job // H
        y = job - b * H
        n = 0
        mx = 0.0
        for x in range(W):
            for c in range(C):
                val = a[b, y, x, c]
                if val != 0.0:
                    if zero:
                        a[b, y, x, c] = 0.0
                    val = val / div
                    ex[b, y, n] = x
                    ec[b, y, n] = c
                    ev[b, y, n] = val
                    n += 1
                    if abs(val) > mx:
                        mx = abs(val)
        rcnt[b, y] = n
        rmax[b, y] = mx


@njit(cache=True)
def _rows_to_nchw(out, ex, ec, ev, rcnt, ch_off):
    """Write row-segmented events into a zeroed (B, C, H, W) map."""
    B, H = rcnt.shape
    for b in range(B):
        for y in range(H):
            for e in range(rcnt[b, y]):
                out[b, ec[b, y, e] + ch_off, y, ex[b, y, e]] = ev[b, y, e]


@njit(cache=True, parallel=True)
def _rows_add_nchw(out, ex, ec, ev, rcnt):
    """Add row-segmented events' values into a float64 (B, C, H, W) map (one add per event and
    element a step, so the sums over steps are the dense ones'); samples run in parallel."""
    B, H = rcnt.shape
    for b in prange(B):
        for y in range(H):
            for e in range(rcnt[b, y]):
                out[b, ec[b, y, e], y, ex[b, y, e]] += np.float64(ev[b, y, e])


@njit(cache=True)
def _fanout_rows(ex, ec, rcnt, fo, ch_off, n_events, n_ops):
    """Per sample, add the number of events and the sum of their fan-outs ``fo[c + ch_off, y, x]``
    (synaptic operations) to ``n_events`` and ``n_ops`` (B,)."""
    B, H = rcnt.shape
    for b in range(B):
        ne = 0
        ops = 0
        for y in range(H):
            n = rcnt[b, y]
            ne += n
            for e in range(n):
                ops += fo[ec[b, y, e] + ch_off, y, ex[b, y, e]]
        n_events[b] += ne
        n_ops[b] += ops


def row_events(batch, shape, dtype=np.float64):
    """Preallocated row-segmented event arrays for a (C, H, W) map: ex, ec, ev, rcnt, rmax."""
    C, H, W = shape
    return (np.empty((batch, H, W * C), np.int32), np.empty((batch, H, W * C), np.int32),
            np.empty((batch, H, W * C), dtype), np.zeros((batch, H), np.int64), np.zeros((batch, H), dtype))
