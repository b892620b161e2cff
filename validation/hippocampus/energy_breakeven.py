"""The energy break-even point of the shipped model (issue 20): how many input events per synapse per
inference an SNN may receive before it costs more than the ANN with the same graph, with membrane
updates counted. fp32 45 nm presets (refsim.analysis.energy): a MAC 4.6 pJ, an AC 0.9 pJ; a membrane
update is counted as one AC (an add into the membrane each step, for every neuron). Per inference:

    ANN:  S MACs                              (S = synapses, one MAC each)
    SNN:  e S ACs + T N membrane updates      (e = input events per synapse, N neurons, T steps)
    break-even:  e* = E_MAC / E_AC - T N / S

Run from the repository root: ``python validation/hippocampus/energy_breakeven.py``."""
from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from refsim.analysis.energy import PRESETS  # noqa: E402
from refsim.data import DEMO_MODEL  # noqa: E402
from refsim.io import load_model  # noqa: E402
from refsim.synops import dense_macs  # noqa: E402


def main():
    g = load_model(DEMO_MODEL)
    em = PRESETS["fp32"]
    S = sum(dense_macs(g).values())
    N = sum(math.prod(g.shapes[n]) for n in g.neurons)
    print(f"shipped model: {S} synapses (MACs per inference per slice), {N} neurons")
    for T in (50, 100, 200):
        e = em.e_mac_pj / em.e_ac_pj - T * N / S
        print(f"T={T}: membrane updates per synapse {T * N / S:.3f}; break-even {e:.2f} input events per synapse "
              f"per inference (a mean input rate of {e / T:.4f} spikes per step)")


if __name__ == "__main__":
    main()
