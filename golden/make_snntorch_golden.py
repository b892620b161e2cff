"""Make the golden case whose expected spikes come from snnTorch itself: a two-layer network of
``snntorch.Leaky`` neurons (beta 0.5, threshold 1, subtraction with snnTorch's default delayed
reset) stepped in torch (run from the repository root with torch 2.13.0 and snntorch 1.0.0:
``python golden/make_snntorch_golden.py``). Verifying the case needs neither:
``refsim golden verify golden``.

Weights are multiples of 1/16 and the inputs binary spikes, and the decay halves the membrane, so
each step adds at most one bit to it: over T=16 steps every float32 value in snnTorch is exact, and
refsim's ``snntorch`` profile (``lif`` model, ``reset_timing="next-step"``) must give the same
spikes bit for bit, with no rounding tie to allow for.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import snntorch  # noqa: E402
import torch  # noqa: E402

from refsim.conformance import golden  # noqa: E402
from refsim.graph import Graph, Input, Linear, Neuron, Output  # noqa: E402
from refsim.traces import TraceWriter  # noqa: E402

NAME = "snntorch-leaky-recorded"
T, B, N_IN, N_HID, N_OUT = 16, 3, 12, 10, 4


def build():
    rng = np.random.default_rng(2027)
    w1 = (rng.integers(-6, 14, size=(N_HID, N_IN)) / 16).astype(np.float32)
    w2 = (rng.integers(-6, 14, size=(N_OUT, N_HID)) / 16).astype(np.float32)
    rates = rng.random((B, N_IN))
    train = (rng.random((T, B, N_IN)) < rates[None]).astype(np.float32)
    return w1, w2, rates, train


def main(folder=None):
    folder = os.path.join(HERE, NAME) if folder is None else os.fspath(folder)
    w1, w2, rates, train = build()
    g = Graph([Input("in", (N_IN,)), Linear("fc1", ["in"], w1), Neuron("lif1", ["fc1"], "lif", 1.0, beta=0.5),
               Linear("fc2", ["lif1"], w2), Neuron("lif2", ["fc2"], "lif", 1.0, beta=0.5), Output("out", ["lif2"])],
              name=NAME)
    l1 = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract")
    l2 = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract")
    t1, t2 = torch.from_numpy(w1), torch.from_numpy(w2)
    m1, m2 = l1.init_leaky(), l2.init_leaky()
    w = TraceWriter(g, T, B, profile="snntorch", producer=f"snntorch {snntorch.__version__} Leaky")
    with torch.no_grad():
        for t in range(T):
            x = torch.from_numpy(train[t])
            s1, m1 = l1(x @ t1.T, m1)
            s2, m2 = l2(s1 @ t2.T, m2)
            w.step(t, inputs={"in": train[t]}, spikes={"lif1": s1, "lif2": s2})
    tr = w.finish()
    source = f"snnTorch {snntorch.__version__} Leaky(beta=0.5, reset_mechanism='subtract'), torch {torch.__version__}"
    counts = golden.write_recorded_case(folder, g, rates, train, tr, "snntorch", source)
    with open(os.path.join(folder, "README.md"), "w") as fh:
        fh.write(f"""# {NAME}

**Pins down:** refsim's `snntorch` profile for leaky neurons against snnTorch itself. The expected
spikes were recorded from {source}, stepped one time step at a time in torch (float32) and written
with `refsim.traces.TraceWriter`; they were not made by refsim. Network: Linear({N_IN}->{N_HID}) ->
Leaky -> Linear({N_HID}->{N_OUT}) -> Leaky, no biases, weights integers/16 from seed 2027, beta 0.5,
threshold 1, snnTorch's default delayed subtraction.

**Input:** a replayed binary spike train (T={T}, batch {B}, {N_IN} inputs), Bernoulli draws at
per-input rates from seed 2027 (synthetic; no data set).

**Why exact:** weights on a 1/16 grid, binary spikes and a decay of 1/2 keep every float32 value in
snnTorch exact over {T} steps, so its decisions are the exact equations' under its choices.

**Pass criterion:** the spikes and spike counts of both layers at every step equal snnTorch's
(`refsim golden verify golden`, on both backends). Spikes per layer over the run: {counts}.

**Provenance:** `golden/make_snntorch_golden.py` (needs torch==2.13.0 and snntorch==1.0.0);
`refsim golden regen` skips this case.
""")
    print("wrote", folder, counts)


if __name__ == "__main__":
    main()
