"""Bit-level kernels over float64 arrays: the exponent of the lowest set bit of every value
(:func:`_min_low_bit`), for :func:`refsim.exactness.granularity`.

A finite nonzero float64 ``a`` is ``M * 2**(E - 1075)`` with the 53-bit integer significand ``M``
(the implicit leading 1 added for normal numbers; ``E`` the biased exponent, taken as 1 for
subnormals). Its lowest set bit is worth ``2**(E - 1075 + ctz(M))``; the granularity of an
array (the largest power of two dividing every value) is 2 to the smallest such exponent. The
kernel reads the bits directly, in one pass, where the NumPy form (``frexp``, ``ldexp``,
integer casts) makes several passes and temporaries; ``tests/unit/test_kernels.py`` checks it
against that NumPy form.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: returned by :func:`_min_low_bit` when no value is finite and nonzero
NONE = 1 << 30


@intrinsic
def _cttz(typingctx, x):
    """Count of trailing zero bits of a uint64 (LLVM's ``cttz``; 64 for 0)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(1)]),
                                            "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 0)])
    return types.uint64(types.uint64), codegen


@njit(cache=True)
def _min_low_bit(u):
    """Smallest lowest-set-bit exponent over the finite nonzero values of ``u`` (a float64 array
    viewed as uint64, flat), or :data:`NONE`."""
    best = NONE
    mant_mask = np.uint64((1 << 52) - 1)
    for i in range(u.shape[0]):
        bits = u[i] & np.uint64(0x7FFFFFFFFFFFFFFF)
        if bits == 0:
            continue
        e = np.int64(bits >> np.uint64(52))
        if e == 2047:  # inf or nan: not a multiple of anything, left out
            continue
        m = bits & mant_mask
        if e == 0:
            e = 1
        else:
            m = m | np.uint64(1 << 52)
        k = e - 1075 + np.int64(_cttz(m))
        if k < best:
            best = k
    return best


def min_low_bit(a) -> int:
    """:func:`_min_low_bit` of any array-like (converted to float64): the exponent, or :data:`NONE`."""
    x = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    return int(_min_low_bit(x.view(np.uint64)))
