"""Private Numba kernels: arrays in, arrays out. Nothing outside this package imports numba.

Each kernel has a Python wrapper in :mod:`refsim.kernels.scatter` that coerces dtypes and layout
once; every kernel is tested against the dense NumPy reference (``tests/unit/test_kernels.py``).
No ``fastmath``: results are compared bit for bit with the reference backend.
"""
