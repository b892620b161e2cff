"""The size checks' memory estimate against what a run really takes (issue 21, class 4).

``Simulator.memory_estimate`` is what the budget check counts before anything is allocated. It must
bound the run's real peak: in a fresh process (so other tests' arrays do not blur the figure), after
the kernels are loaded, the peak resident memory a run adds (Linux's VmHWM, reset through
/proc/self/clear_refs before each run) is measured and compared with the estimate. Cases: the
shipped U-Net's layer sizes with every layer recorded, a transposed convolution and a 4x Upsample
feeding a 7x7 convolution (the reference convolution's window matrix is the largest temporary),
and a classifier with a Linear layer, on both backends."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc peak reset")

_SCRIPT = r'''
import gc, json, sys
import numpy as np
from refsim import _system, models
from refsim.encoding import PoissonEncoder
from refsim.graph import AvgPool2d, Conv2d, ConvTranspose2d, Flatten, Graph, Input, Neuron, Output, Upsample
from refsim.simulator import Recorder, Simulator

rng = np.random.default_rng(0)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
up = Graph([Input("x", (4, 16, 16)),
            ConvTranspose2d("t", ["x"], f32(4, 8, 5, 5), None, stride=3, padding=1, output_padding=1),
            Neuron("n", ["t"], "if", 1.0), Upsample("u", ["n"], 4), Conv2d("c", ["u"], f32(4, 8, 7, 7), None, padding=3),
            Neuron("n2", ["c"], "if", 1.0), AvgPool2d("p", ["n2"], 2), Neuron("n3", ["p"], "if", 1.0),
            Flatten("f", ["n3"]), Output("o", ["f"])])
cases = [("unet", models.hippocampus_unet(in_shape=(1, 64, 48), channels=(16, 32, 64)), 8, 12),
         ("upsample", up, 4, 3), ("vgg5", models.vgg5(in_shape=(3, 32, 32), hidden=(64,)), 8, 12)]
out = []
for name, g, batch, T in cases:
    x = rng.random((batch,) + tuple(g.shapes[g.inputs[0]]))
    for backend in ("reference", "event"):
        for rec_name, rec in (("counts", Recorder()), ("all", Recorder(spikes=True, membranes=True, output=True,
                                                                       inputs=True, synops=True))):
            sim = Simulator(g, "paper", backend)
            sim.run(x[:1], 1, PoissonEncoder(seed=0), Recorder())  # kernels loaded, plan built
            gc.collect()
            before = _system.process_bytes("VmRSS")
            _system.reset_peak_memory()  # VmHWM := VmRSS
            tr = sim.run(x, T, PoissonEncoder(seed=0), rec)
            peak = _system.process_bytes("VmHWM")
            est = sim.memory_estimate(T, batch, rec)
            out.append({"case": f"{name} {backend} {rec_name}", "added": peak - before,
                        "estimate": est["work"] + est["records"]})
            del tr, sim
            gc.collect()
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def measured():
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
    res = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_the_estimate_bounds_the_resident_memory_a_run_adds(measured):
    over = [m for m in measured if m["added"] > m["estimate"]]
    assert not over, over


def test_the_cases_are_big_enough_to_measure(measured):
    """The comparison means something only where the run's arrays dominate the process's noise:
    every case adds at least 10 MiB, and the upsample case's reference run is dominated by the
    convolution's window matrix, which the estimate must include to hold (without it the estimate
    would be several times too small there)."""
    assert all(m["added"] > 10 << 20 for m in measured), measured
    ref = next(m for m in measured if m["case"] == "upsample reference counts")
    assert ref["added"] > 0.5 * ref["estimate"], ref
