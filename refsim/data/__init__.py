"""The shipped data: the demo model and an MSD Task04 hippocampus excerpt (CC BY-SA 4.0; the
attribution is in ``README.md`` beside this file)."""
from __future__ import annotations

import os

import numpy as np

from ..io.nifti import fit_slices, load_volume, normalize

DATA_DIR = os.path.dirname(os.path.abspath(__file__))
#: the trained spiking U-Net (validation/hippocampus: ANN training, threshold balancing, fine-tuning)
DEMO_MODEL = os.path.join(DATA_DIR, "hippocampus_snn.safetensors")
#: two held-out MSD volumes (test split of validation/hippocampus) with their labels
DEMO_VOLUMES = [(os.path.join(DATA_DIR, f"{c}.nii.gz"), os.path.join(DATA_DIR, f"{c}_label.nii.gz"))
                for c in ("hippocampus_007", "hippocampus_019")]
#: the untrained, seeded U-Net of the earlier demo (make_demo_model.py), kept for tests and golden inputs
UNTRAINED_MODEL = os.path.join(DATA_DIR, "demo_unet.safetensors")
#: 8 slices of MSD case 001 (golden cases and tests)
DEMO_IMAGE = os.path.join(DATA_DIR, "hippocampus_001_x10-17.nii.gz")
DEMO_LABEL = os.path.join(DATA_DIR, "hippocampus_001_x10-17_label.nii.gz")


def demo_input(hw=(56, 48)) -> np.ndarray:
    """The shipped MRI excerpt as a (8, 1, H, W) batch in [0, 1] (slices along the first axis,
    centred and zero-padded to ``hw``)."""
    return normalize(fit_slices(load_volume(DEMO_IMAGE), hw), "unit")


__all__ = ["DATA_DIR", "DEMO_MODEL", "DEMO_VOLUMES", "UNTRAINED_MODEL", "DEMO_IMAGE", "DEMO_LABEL", "demo_input"]
