"""Accuracy versus T and versus the cut-off from one run (the readouts themselves, output
membrane to prediction, are :mod:`refsim.readout`).

Because the recorded membranes of every step are kept (``Recorder(output=True)``), Dice versus T
(Yue Fig. 6A) and versus the cut-off (Yue Table 2) come from a single simulation.
"""
from __future__ import annotations

import numpy as np

from ..readout import READOUTS, predict, probability  # noqa: F401  (re-exported: the readouts live in refsim.readout)
from . import metrics

CUTOFFS = tuple(np.round(np.arange(0.1, 0.601, 0.05), 2).tolist())


def dice_vs_time(output, label, readout="sigmoid-mean", cutoff=0.5, empty="one", steps=None):
    """Dice of the whole batch (a volume's slices: Yue's 3-D Dice) after each step: ``(ts, dice)``.
    ``output`` (T, B, C, H, W): the output membranes of every step."""
    T = output.shape[0]
    ts = np.arange(1, T + 1) if steps is None else np.asarray(steps)
    lab = np.asarray(label) > 0
    return ts, np.array([metrics.dice(predict(output[t - 1], t, readout, cutoff) > 0, lab, empty) for t in ts])


def dice_vs_cutoff(final, T, label, readout="sigmoid-mean", cutoffs=CUTOFFS, empty="one"):
    """Dice at each cut-off from the final output membrane after ``T`` steps: ``(cutoffs, dice)``."""
    lab = np.asarray(label) > 0
    return np.asarray(cutoffs), np.array([metrics.dice(predict(final, T, readout, c), lab, empty) for c in cutoffs])
