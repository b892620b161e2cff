"""``refsim demo``: segment a shipped held-out MRI volume with the shipped trained spiking U-Net.

The same pipeline as ``refsim segment`` (input preparation :func:`refsim.io.inputs.load_input`,
readout :func:`refsim.segment.output_to_mask`) with the analysis of ``refsim analyze`` on the same
run: Dice, per-layer firing rates, synaptic operations and energy, the mask on the volume's grid
and the report files.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ._files import check_output, check_output_dir
from .analysis import metrics
from .analysis.report import analyze, format_summary, write_report
from .config import RunConfig
from .data import DEMO_MODEL, DEMO_VOLUMES
from .io import load_model
from .io.inputs import load_input, load_labels
from .io.nifti import read_volume, save_like
from .segment import output_to_mask

#: the data set the shipped volumes come from, with their license (refsim/data/README.md)
SOURCE = "MSD Task04 hippocampus, held out from training; CC BY-SA 4.0, refsim/data/README.md"


def run_demo(volume: int = 1, T: int = 200, out_dir: str = "refsim-demo", progress: bool = False, echo=print,
             traces_out=None, **settings):
    """Segment shipped volume ``volume`` (1 or 2) at ``T`` steps; ``settings`` are
    :class:`~refsim.config.RunConfig` fields (profile, backend, threads, dtype, seed). Writes the mask
    and the report into ``out_dir``; returns the analysis report (a dict)."""
    check_output_dir(out_dir, "demo output folder")
    if traces_out:
        check_output(traces_out, "traces file")
    g = load_model(DEMO_MODEL)
    cfg = RunConfig.resolve(g, **settings)
    img_path, lab_path = DEMO_VOLUMES[volume - 1]
    x, geo = load_input(img_path, g, cfg)
    lab_slices = load_labels(lab_path, g, x.shape[0], cfg)
    meta = g.metadata
    echo(f"model: {g.name} ({os.path.basename(DEMO_MODEL)}): {meta.get('architecture', '')}")
    for key in ("training", "conversion", "finetuning"):
        v = meta.get(key)
        if isinstance(v, dict):
            echo(f"  {key}: " + ", ".join(f"{k}={v[k]}" for k in v if k not in ("thresholds", "lambdas", "calibration_sha256")))
        elif v is not None:
            echo(f"  {key}: {v}")
    echo(f"input: {os.path.basename(img_path)} ({SOURCE}): {geo.describe()}")
    t0 = time.perf_counter()
    rep, tr = analyze(g, x, T, cfg.profile, cfg.backend, cfg.encoder(), label=lab_slices, progress=progress,
                      threads=cfg.threads, dtype=cfg.dtype, readout=cfg.readout)
    el = time.perf_counter() - t0
    mask, _ = output_to_mask(tr.final_output[g.outputs[0]], T, cfg.readout, 0.5, geo)
    os.makedirs(out_dir, exist_ok=True)
    vol = read_volume(img_path)
    mask_path = os.path.join(out_dir, os.path.basename(img_path).replace(".nii.gz", "_mask.nii.gz"))
    save_like(mask, vol, mask_path, np.uint8)
    truth = read_volume(lab_path).data > 0
    d3 = metrics.dice(mask > 0, truth)
    d2 = metrics.mean(metrics.slice_dice(mask > 0, truth, cfg.axis, "one"))
    echo(f"simulated {x.shape[0]} slices x T={T} on the {cfg.backend} backend in {el:.1f} s "
         f"({1e3 * el / T:.1f} ms/step), profile {cfg.profile}")
    echo(format_summary(rep, dice=False))
    echo(f"Dice against the label (label > 0), on the volume's grid: {d3:.4f} (3-D), {d2:.4f} (mean per-slice Dice; "
         f"a slice empty in both counts 1, as in refsim segment); {int(truth.sum())} label voxels, "
         f"{int(mask.sum())} predicted")
    jpath, hpath = write_report(rep, tr, out_dir)
    echo(f"mask: {mask_path} (uint8, the input's affine and header)")
    echo(f"report: {hpath} (plots) and {jpath} (numbers, units and definitions)")
    if traces_out:
        tr.save(traces_out)
        echo(f"traces written to {traces_out}")
    return rep
