"""Readouts of the output membrane, and accuracy versus T and versus the cut-off from one run.

The output node integrates its input (Yue eq. 3); the readout turns its membrane after t steps
into a prediction (:data:`READOUTS`; SEMANTICS.md section 2):

* ``"sigmoid-mean"`` (default): one output channel, probability ``sigmoid(v_t / t)``, foreground
  where it exceeds the cut-off (Yue: sigmoid of the output, cut at 0.5; the paper does not say
  whether it divides by T, refsim does, so the cut-off means the same at every t);
* ``"sigmoid"``: ``sigmoid(v_t)`` without the division;
* ``"argmax"``: several output channels, the class of the largest membrane (ties to the lowest
  index; Spiking-UNet segmentation).

Because the recorded membranes of every step are kept (``Recorder(output=True)``), Dice versus T
(Yue Fig. 6A) and versus the cut-off (Yue Table 2) come from a single simulation.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnknownNameError, ValidationError
from . import metrics

READOUTS = ("sigmoid-mean", "sigmoid", "argmax")
CUTOFFS = tuple(np.round(np.arange(0.1, 0.601, 0.05), 2).tolist())


def probability(v, t, readout="sigmoid-mean"):
    """Foreground probability (one channel) from the output membrane ``v`` after ``t`` steps."""
    if readout not in READOUTS:
        raise UnknownNameError("readout", readout, READOUTS)
    v = np.asarray(v, dtype=np.float64)
    z = v / t if readout == "sigmoid-mean" else v
    return 1.0 / (1.0 + np.exp(-z))


def predict(v, t, readout="sigmoid-mean", cutoff=0.5):
    """Per-pixel prediction from the output membrane ``v`` (B, C, H, W) after ``t`` steps: a boolean
    mask (B, H, W) for the sigmoid readouts (one channel), class indices for ``argmax``."""
    v = np.asarray(v)
    if readout == "argmax":
        return np.argmax(v, axis=1)
    if v.ndim < 2 or v.shape[1] != 1:
        raise ValidationError("readout", f"one output channel for {readout!r} (use 'argmax' for several)", v.shape)
    return probability(v[:, 0], t, readout) > cutoff


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
