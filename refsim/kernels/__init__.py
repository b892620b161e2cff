"""Private Numba kernels: arrays in, arrays out. Only this package imports numba.

* :mod:`.fused`: the event backend's per-step pipeline (row-segmented events, halo-buffer
  convolution scatter, fused neuron passes, convolutions fused with the neuron layer they feed,
  pooling, transposed convolution);
* :mod:`.scatter`: dense-in, dense-out scatter kernels for the layers the fused pipeline leaves
  out (strided, dilated or grouped convolutions, linear layers);
* :mod:`.windows`: the window matrix (im2col) of the reference's dense convolution;
* :mod:`.bits`: the lowest set bit of float64 values (``exactness.granularity``);
* :mod:`.peak`: the benchmark's yardstick (float64 adds per second into an L1-resident array);
* :mod:`.threads`: Numba's thread count for the duration of a run.

The backends call the kernels through one keyword-argument wrapper each
(:mod:`refsim.backends.event.kernels`); every kernel is tested against the dense NumPy reference
(:mod:`refsim.graph.ops` and the neuron models' steps; ``tests/unit/test_kernels.py``,
``tests/unit/test_fused_kernels.py``, ``tests/unit/test_choice_guard.py``). No ``fastmath``:
results are compared bit for bit with the reference backend.
"""
