"""The one tolerance helper of the test suite, plus small graph builders.

Tolerances per dtype. Exact equality (``exact``) is used for file round-trips, same-seed runs
and every comparison where the reference arithmetic is exact (dyadic values in float64).
"""
import numpy as np

from refsim.graph import Graph, Input, Neuron, Output, Scale

# Reference arithmetic is float64; an independent implementation summing in another order may
# differ by a few ulps of the largest partial sum: rtol 1e-12 covers sums of up to ~1e3 terms.
TOLERANCES = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
              # float32 peers (torch-style) differ in the last bits of each product and sum.
              np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6)}


def assert_close(actual, desired, dtype=np.float64, exact=False, err_msg=""):
    if exact:
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)
        return
    np.testing.assert_allclose(actual, desired, err_msg=err_msg, **TOLERANCES[np.dtype(dtype)])


def chain(n_layers=1, model="if", threshold=1.0, shape=(1,), levels=None, choices=None):
    """Input -> (Neuron)*n -> Output, with identity connections (Scale 1)."""
    nodes = [Input("in", shape)]
    prev = "in"
    for i in range(n_layers):
        nodes.append(Neuron(f"n{i}", [prev], model, threshold, levels=levels, choices=choices))
        prev = f"n{i}"
    nodes.append(Scale("id", [prev], 1.0))
    nodes.append(Output("out", ["id"]))
    return Graph(nodes, name="chain")
