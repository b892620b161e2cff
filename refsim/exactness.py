"""When are sums exact? The one home of the floating-point analysis that the event backend's plan
and ``refsim check``'s rounding bounds both rest on.

* **Value grids** (:func:`value_grids`): which node values lie on a dyadic grid ``k * 2**-s`` with
  ``|k| < 2**b`` (spikes, counts, power-of-two thresholds and levels, their sums and power-of-two
  averages).
* **Exact weighted sums** (:func:`weighted_sum_bits`): every float32 weight is an integer multiple of
  ``2**(e_min - 24)`` (``e_min`` the smallest ``frexp`` exponent of a nonzero weight), so every
  product and partial sum of grid inputs is an integer multiple of ``u = 2**(e_min - 24 - s)`` and
  no partial sum exceeds ``L1 * 2**(b - s)`` (``L1`` the largest sum of ``|w|`` into one output).
  All are exact in float64 when ``log2(L1) + b + 24 - e_min <= 53``: then any summation order gives
  the same bits, and the event backend may scatter where the reference sums densely.
* **Granularity** (:func:`granularity`): the largest power of two dividing every value; ``check``
  uses it to prove that float32 partial sums are exact on a step (bound 0), and otherwise bounds
  the rounding of a float32 implementation with Higham's ``gamma_n`` (:data:`U32`, :func:`fan_in`,
  :func:`abs_node`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .kernels.bits import NONE as NO_BIT, min_low_bit
from .neurons import get_model

#: unit roundoff of float32
U32 = 2.0 ** -24
#: synaptic node types whose sums the analysis covers
WEIGHTED = ("Conv2d", "ConvTranspose2d", "Linear")
POOLS = ("AvgPool2d", "SumPool2d")


def granularity(a) -> float:
    """Largest power of two g such that every value of ``a`` is an integer multiple of g (inf if all
    0). Read from the values' bits in one pass (:mod:`refsim.kernels.bits`); non-finite values are
    left out."""
    k = min_low_bit(a)
    return np.inf if k == NO_BIT else float(np.ldexp(1.0, k))


def neuron_grid(params, model):
    """(s, b) of a neuron layer's emitted values, or None when they are not on a narrow dyadic grid."""
    c = params.choices
    th = np.atleast_1d(params.threshold)
    count_bits = 8 if c.spikes_per_step == "multi" else 1  # multi: counts < 256 assumed, checked each step
    bitmask = get_model(model).bitmask
    if bitmask:
        lv = np.concatenate([lvl * th for lvl in params.levels])
    elif c.spike_value == "threshold":
        lv = th
    else:
        return (0, count_bits)
    m, e = np.frexp(lv)
    if not np.all(m == 0.5):  # not all powers of two
        return None
    kmin, kmax = int(e.min()) - 1, int(e.max()) - 1  # values 2**k
    if bitmask:
        return (-kmin, kmax - kmin + 1 + (len(params.levels) > 1))
    return (-kmin, kmax - kmin + count_bits)


def value_grids(graph, params, spiking_input: bool) -> dict:
    """``{node: (s, b)}`` for every node whose values lie on a dyadic grid (see the module docstring).
    ``spiking_input``: the encoder emits spikes (binary or ternary), not analog values."""
    grid = {}
    for name in graph.order:
        node = graph[name]
        t = node.TYPE
        ins = [grid.get(i) for i in node.inputs]
        if t == "Input":
            if spiking_input:
                grid[name] = (0, 1)
        elif t == "Neuron":
            grid[name] = neuron_grid(params[name], node.model)
        elif any(v is None for v in ins):
            continue
        elif t in ("Concat", "Flatten", "Dropout", "Upsample"):
            s_ = max(v[0] for v in ins)
            grid[name] = (s_, max(b + (s_ - s0) for s0, b in ins))
        elif t == "Add":  # a sum of n grid values: the finest grid, log2(n) more bits
            s_ = max(v[0] for v in ins)
            grid[name] = (s_, max(b + (s_ - s0) for s0, b in ins) + int(np.ceil(np.log2(len(ins)))))
        elif t == "SumPool2d":
            area = node.kernel_size[0] * node.kernel_size[1]
            grid[name] = (ins[0][0], ins[0][1] + int(np.ceil(np.log2(area))))
        elif t == "AvgPool2d":
            area = node.kernel_size[0] * node.kernel_size[1]
            if area & (area - 1) == 0:
                a = area.bit_length() - 1
                grid[name] = (ins[0][0] + a, ins[0][1] + a)
    return grid


def weighted_sum_bits(node, b, s_):
    """Bits the exact sums of a weighted layer need on inputs of grid (s_, b), and a detail text."""
    w = np.asarray(node.weight, dtype=np.float64)
    nz = np.abs(w[w != 0])
    if nz.size == 0:
        return 0.0, "all weights zero"
    e_min = int(np.frexp(nz)[1].min())
    a = np.abs(w)
    if node.TYPE == "Conv2d":
        l1 = a.sum(axis=(1, 2, 3)).max()
    elif node.TYPE == "ConvTranspose2d":  # (Cin, Cout/g, kh, kw): an output sums over Cin/g, kh, kw at most
        g = node.groups
        cin_g = w.shape[0] // g
        l1 = max(a[k * cin_g:(k + 1) * cin_g].sum(axis=(0, 2, 3)).max() for k in range(g))
    else:
        l1 = a.sum(axis=1).max()
    l1 *= 1.0 + 2.0 ** -40  # the float64 sum of |w| may round down by a few ulps
    need = float(np.log2(l1)) + b + 24 - e_min
    return need, f"input grid 2^-{s_}, {b} bits; smallest weight exponent {e_min}; largest L1 into one output {l1:.4g}"


class Exactness(NamedTuple):
    """Whether a synaptic layer's float64 sums are provably exact, why, and the largest input
    magnitude the proof assumed (``bound``; None when not exact)."""

    exact: bool
    reason: str
    bound: float | None


def layer_exactness(node, grid) -> Exactness:
    """:class:`Exactness` of a weighted or pooling node, given the :func:`value_grids` of its input."""
    src = grid.get(node.inputs[0])
    if src is None:
        return Exactness(False, "input is not spike-valued on an exact grid (analog or static)", None)
    s_, b = src
    if node.TYPE in POOLS:
        need = b + np.log2(node.kernel_size[0] * node.kernel_size[1])
        detail = f"input grid 2^-{s_}, {b} bits; window {node.kernel_size[0]}x{node.kernel_size[1]}"
    else:
        need, detail = weighted_sum_bits(node, b, s_)
    if need <= 53.0 - 1e-9:
        return Exactness(True, f"exact: sums need {need:.1f} of 53 bits ({detail})", float(2.0 ** (b - s_)))
    return Exactness(False, f"sums may round: {need:.1f} bits needed > 53 ({detail})", None)


def fan_in(node) -> int:
    """Terms summed into one output of ``node`` (plus one for a bias), for Higham's bound."""
    t = node.TYPE
    if t == "Conv2d":
        return math.prod(node.weight.shape[1:]) + 1
    if t == "ConvTranspose2d":
        return int(node.weight.shape[0] // node.groups * math.prod(node.weight.shape[2:])) + 1
    if t == "Linear":
        return node.weight.shape[1] + 1
    if t in POOLS:
        return node.kernel_size[0] * node.kernel_size[1] + 1
    if t == "Scale":
        return 1
    return 0


def param_granularity(node) -> float:
    """:func:`granularity` of a node's parameters (weights, biases, 1/area of an average, scale)."""
    g = np.inf
    for arr in node.tensors().values():
        g = min(g, granularity(arr))
    if node.TYPE == "AvgPool2d":
        g = min(g, granularity([1.0 / (node.kernel_size[0] * node.kernel_size[1])]))
    if node.TYPE == "Scale" and not isinstance(node.factor, np.ndarray):
        g = min(g, granularity([node.factor]))
    return g


def abs_node(node):
    """The node with |parameters|: its ``forward`` of |inputs| bounds the sum of |terms| of each output."""
    t = node.TYPE
    if t in WEIGHTED:
        return node.replace(weight=np.abs(node.weight), bias=None if node.bias is None else np.abs(node.bias))
    if t == "Scale":
        return node.replace(factor=np.abs(node.factor) if isinstance(node.factor, np.ndarray) else abs(node.factor))
    return node
