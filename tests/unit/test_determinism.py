"""Same seed, same traces, whatever the BLAS thread count (set before NumPy loads, so in subprocesses)."""
import os
import subprocess
import sys

import numpy as np

SCRIPT = r"""
import sys, numpy as np
from refsim import models
from refsim.encoding import PoissonEncoder, StaticEncoder
from refsim.simulator import Recorder, Simulator
x = np.random.default_rng(0).random((3, 1, 16, 16))
out = {}
g = models.spiking_unet(fnum=8, depth=2, in_hw=(16, 16), seed=1)      # static coding: analog first layer
for be in ("reference", "event"):
    tr = Simulator(g, "spiking-unet", be).run(x, 8, StaticEncoder(), Recorder(spikes=True, membranes=["conv1_mt"], output=True))
    out.update({f"{be}/{k}": v for k, v in tr.spikes.items()})
    out[f"{be}/mem"] = tr.membranes["conv1_mt"]
    out[f"{be}/out"] = tr.output["output"]
h = models.hippocampus_unet(in_shape=(1, 16, 16), channels=(8, 16), seed=2)
tr = Simulator(h, "paper").run(x, 8, PoissonEncoder(seed=5), Recorder(spikes=True))
out.update({f"poisson/{k}": v for k, v in tr.spikes.items()})
np.savez(sys.argv[1], **out)
"""


def _run(tmp_path, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    path = tmp_path / f"t{threads}.npz"
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, check=True)
    return np.load(path)


def test_same_traces_on_one_and_two_threads(tmp_path):
    a, b = _run(tmp_path, 1), _run(tmp_path, 2)
    assert a.files == b.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_core_never_imports_torch():
    code = ("import sys, numpy as np, refsim, refsim.cli, refsim.bench, refsim.conformance.check, refsim.models; "
            "from refsim import models, Simulator; g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4)); "
            "Simulator(g, backend='event').run(np.zeros((1, 1, 8, 8)), 2); print('torch' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=root)).stdout.strip()
    assert out == "False"
