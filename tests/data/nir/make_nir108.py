"""Writes the fixtures of this folder with nir 1.0.8 (whose IF and LIF carry v_reset), so the tests
check that files of both NIR rules load whatever nir is installed:

    pip install --no-deps --target /tmp/nir108 nir==1.0.8
    PYTHONPATH=/tmp/nir108 python tests/data/nir/make_nir108.py

lif_v_reset_nir108.nir: Input(2) -> Affine(3x2) -> LIF(3, tau 2e-3, r = tau/dt for dt 1e-4,
v_threshold 1, v_reset 0) -> Output. Weights from numpy's default_rng(108).
"""
import os

import numpy as np
import nir

assert nir.version == "1.0.8", nir.version
rng = np.random.default_rng(108)
dt, tau = 1e-4, np.full(3, 2e-3)
g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                        "fc": nir.Affine(weight=rng.normal(0, 1, (3, 2)).astype(np.float32),
                                         bias=np.zeros(3, np.float32)),
                        "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(3), v_threshold=np.ones(3),
                                       v_reset=np.zeros(3)),
                        "output": nir.Output(output_type={"output": np.array([3])})},
                 edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
nir.write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lif_v_reset_nir108.nir"), g)
