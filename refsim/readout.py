"""Readouts: the output membrane after t steps turned into a prediction.

The Output node integrates its input (Yue et al. 2023 eq. 3); a readout (:data:`READOUTS`,
docs/semantics.md) maps its membrane ``v_t`` to a prediction:

* ``"sigmoid-mean"`` (default): one output channel, probability ``sigmoid(v_t / t)``, foreground
  where it exceeds the cut-off (Yue: sigmoid of the output, cut at 0.5; the paper does not say
  whether it divides by T, refsim does, so the cut-off means the same at every t);
* ``"sigmoid"``: ``sigmoid(v_t)`` without the division;
* ``"argmax"``: several output channels, the class of the largest membrane (ties to the lowest
  index; Spiking-UNet segmentation, and classifiers).
"""
from __future__ import annotations

import numpy as np

from .errors import UnknownNameError, ValidationError

READOUTS = ("sigmoid-mean", "sigmoid", "argmax")


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
