"""Make the golden case whose expected spikes come from outside refsim: SpikingJelly's own
``IFNode`` run step by step in torch (run from the repository root with torch 2.13.0 and
spikingjelly 2.0.0 installed: ``python golden/make_external_golden.py``). Verifying the case
needs neither: ``refsim golden verify golden``.

The network (conv 3x3, IF, average pool 2x2, conv 3x3, IF, flatten, linear, IF) has weights on a
1/16 grid and binary input spikes, so every float32 partial sum in torch is exact: SpikingJelly's
spikes are the equations' answer under its choices (``>=``, soft reset; refsim profile
``spikingjelly``), with no rounding ties, and refsim must reproduce them bit for bit.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402
from spikingjelly.activation_based import neuron  # noqa: E402

import spikingjelly  # noqa: E402
from refsim.conformance import golden  # noqa: E402
from refsim.conformance.record_torch import record  # noqa: E402
from refsim.io.torch import export  # noqa: E402

NAME = "spikingjelly-recorded"
T, B = 24, 2


def build():
    torch.manual_seed(0)
    rng = np.random.default_rng(2026)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), neuron.IFNode(v_reset=None),
        torch.nn.AvgPool2d(2), torch.nn.Conv2d(4, 6, 3, padding=1, bias=False), neuron.IFNode(v_reset=None),
        torch.nn.Flatten(), torch.nn.Linear(6 * 4 * 4, 5, bias=False), neuron.IFNode(v_reset=None))
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight.copy_(torch.from_numpy(rng.integers(-6, 14, size=tuple(m.weight.shape)).astype(np.float32) / 16))
    rates = rng.random((B, 1, 8, 8))
    train = (rng.random((T, B, 1, 8, 8)) < rates[None]).astype(np.float32)
    return net, rates, train


def main(folder=None):
    folder = os.path.join(HERE, NAME) if folder is None else os.fspath(folder)
    net, rates, train = build()
    g = export(net, (1, 8, 8), name=NAME)
    tr = record(net, train)
    source = f"SpikingJelly {spikingjelly.__version__ if hasattr(spikingjelly, '__version__') else '2.0.0'} " \
             f"IFNode(v_reset=None), torch {torch.__version__}"
    counts = golden.write_recorded_case(folder, g, rates, train, tr, "spikingjelly", source)
    with open(os.path.join(folder, "README.md"), "w") as fh:
        fh.write(f"""# {NAME}

**Pins down:** refsim's `spikingjelly` profile against SpikingJelly itself. The expected spikes were
recorded from {source}, stepped one time step at a time in torch (float32) by
`refsim.conformance.record_torch.record`; they were not made by refsim. Network: Conv2d(1->4, 3x3,
padding 1) -> IFNode -> AvgPool2d(2) -> Conv2d(4->6, 3x3, padding 1) -> IFNode -> Flatten ->
Linear(96->5) -> IFNode, no biases, weights integers/16 drawn from seed 2026, thresholds 1.

**Input:** a replayed binary spike train (T={T}, batch {B}, 1x8x8), Bernoulli draws at per-pixel rates
from seed 2026 (synthetic; no data set).

**Why exact:** weights on a 1/16 grid, binary spikes and average pooling by 4 keep every float32
partial sum in torch exact, so SpikingJelly's decisions are the exact equations' under its choices
(`>=`, subtract the threshold) and there is no rounding tie to allow for.

**Pass criterion:** the spikes and spike counts of every layer at every step equal SpikingJelly's
(`refsim golden verify golden`, on both backends). Output membranes are not compared (torch sums
them in float32). Spikes per layer over the run: {counts}.

**Provenance:** `golden/make_external_golden.py` (needs torch==2.13.0 and spikingjelly==2.0.0);
`refsim golden regen` skips this case.
""")
    print("wrote", folder, counts)


if __name__ == "__main__":
    main()
