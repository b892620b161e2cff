"""``refsim segment``: NIfTI volumes (a file or a folder) in, masks on the volumes' own grids and Dice out.

For each volume: intensities normalised as the model declares (``metadata["normalize"]``: ``"unit"``
for binary spikes, ``"zero-mean"`` for ternary; by default from its encoding), slices along the
model's axis (``metadata["axis"]``, default 0) fitted to the model's input (centred; every pad and
crop reported), simulated in batches of slices (the event backend by default), read out
(``metadata["readout"]``, default sigmoid of the output membrane / T, :mod:`refsim.analysis.curves`),
and put back on the volume's grid (:func:`refsim.io.nifti.unslice`): a uint8 mask, and with
``prob=True`` a float32 probability map, written with the input's affine and header. Voxels the
model never saw (cropped away) are background (probability 0).

Folders follow nnU-Net's naming: ``CASE_0000.nii.gz`` (or ``CASE.nii.gz``) in, ``CASE.nii.gz`` out;
labels are matched by case name (``LABELS/CASE.nii.gz``). A bad volume (unreadable, wrong
dimensionality, NaN, a label on another grid) is reported and the others finish; nothing
half-written is left (files are written atomically).

Cases are independent tasks (:func:`segment_case`, pure: arrays in, arrays out), so a folder runs
on a Dask cluster unchanged (``scheduler=`` an address, or ``workers=N`` for a local cluster; the
optional extra ``refsim[dask]``): the client reads the volumes and writes the results, workers only
compute, so no shared file system is needed, and the results equal the serial run's bit for bit.
"""
from __future__ import annotations

import csv
import io
import itertools
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from ._files import atomic_path, check_output_dir
from ._optional import optional_import
from .analysis import metrics
from .analysis.curves import CUTOFFS
from .analysis.metrics import EMPTY_POLICIES
from .backends import BACKENDS
from .config import RunConfig
from .encoding import make_encoder
from .errors import RefsimError, UnknownNameError, ValidationError
from .io import load_model
from .io.nifti import prepare_slices, read_volume, save_like, unslice
from .readout import predict, probability
from .semantics import get_profile
from .simulator import DTYPES, Simulator
from .traces import Recorder

NII = (".nii.gz", ".nii")


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment (every field has a command-line option of the same name)."""

    T: int = 200
    profile: str | None = None       # default: the model's, else "paper"
    backend: str = "event"
    dtype: str = "float64"
    threads: int | None = None
    cutoff: float = 0.5
    axis: int | None = None          # default: the model's metadata "axis", else 0
    prob: bool = False
    seed: int = 0
    encoding: str | None = None      # default: the model's, else "poisson"
    normalize: str | None = None     # default: the model's, else by encoding
    readout: str | None = None       # default: the model's, else "sigmoid-mean"
    batch_slices: int = 16
    empty: str = "one"

    def __post_init__(self):
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)) or self.T < 1:
            raise ValidationError("segment T", "a positive number of steps", self.T)
        if not (isinstance(self.cutoff, (int, float)) and 0.0 < float(self.cutoff) < 1.0):
            raise ValidationError("segment cutoff", "a probability strictly between 0 and 1", self.cutoff)
        if self.axis is not None and self.axis not in (0, 1, 2):
            raise ValidationError("segment axis", "0, 1 or 2", self.axis)
        if isinstance(self.batch_slices, bool) or not isinstance(self.batch_slices, int) or self.batch_slices < 1:
            raise ValidationError("segment batch_slices", "a positive integer", self.batch_slices)
        for what, value, names in (("empty-mask policy", self.empty, EMPTY_POLICIES), ("backend", self.backend, BACKENDS),
                                   ("dtype", self.dtype, DTYPES)):
            if value not in names:
                raise UnknownNameError(what, value, names)

    def resolved(self, graph) -> "SegmentOptions":
        """The options with the model's declared defaults filled in (:class:`refsim.config.RunConfig`)."""
        cfg = RunConfig.resolve(graph, **{k: getattr(self, k) for k in RunConfig.__dataclass_fields__})
        return replace(self, **cfg.as_dict())


@dataclass
class Case:
    name: str
    image: str
    label: str | None
    mask_out: str
    prob_out: str | None


def _case_name(path):
    base = os.path.basename(path)
    for ext in NII:
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return re.sub(r"_\d{4}$", "", base)


def _is_nii(path):
    return path.lower().endswith(NII)


def find_cases(input_path, output, label=None, prob=False) -> list:
    """The cases of a file or folder input, with their label and output paths (checked: outputs go
    to an existing or creatable folder and never overwrite an input)."""
    input_path, output = os.fspath(input_path), os.fspath(output)
    if os.path.isdir(input_path):
        files = sorted(os.path.join(input_path, f) for f in os.listdir(input_path) if _is_nii(f))
        if not files:
            raise ValidationError(f"input folder {input_path}", "NIfTI volumes (CASE_0000.nii.gz or CASE.nii.gz)", "none")
        multi = [f for f in files if re.search(r"_(?!0000)\d{4}\.nii(\.gz)?$", os.path.basename(f))]
        if multi:
            raise ValidationError(f"input {multi[0]}", "one channel per case (_0000 only; the model takes 1 channel)",
                                  "a second modality")
        out_dir = output
        if _is_nii(output):
            raise ValidationError("output", "a folder for a folder of inputs", output)
    elif os.path.isfile(input_path):
        files = [input_path]
        out_dir = os.path.dirname(os.path.abspath(output)) if _is_nii(output) else output
    else:
        raise ValidationError("input", "a NIfTI file or a folder of them", f"{input_path} (not found)")
    check_output_dir(out_dir, "output")
    if _is_nii(output) and len(os.path.basename(output).encode("utf-8", "surrogateescape")) > 200:
        raise ValidationError("output", "a file name of at most 200 bytes", output)
    cases = []
    for f in files:
        name = _case_name(f)
        mask = output if (len(files) == 1 and _is_nii(output)) else os.path.join(out_dir, name + ".nii.gz")
        lab = None
        if label is not None:
            lab = os.path.join(label, name + ".nii.gz") if os.path.isdir(label) else label
            if not os.path.exists(lab) and os.path.isdir(label) and os.path.exists(os.path.join(label, name + ".nii")):
                lab = os.path.join(label, name + ".nii")
        probp = re.sub(r"\.nii(\.gz)?$", "", mask) + "_prob.nii.gz" if prob else None
        cases.append(Case(name, f, lab, mask, probp))
    inputs = {os.path.abspath(c.image) for c in cases} | {os.path.abspath(c.label) for c in cases if c.label}
    for c in cases:
        for p in (c.mask_out, c.prob_out):
            if p and os.path.abspath(p) in inputs:
                raise ValidationError("output", "outputs that do not overwrite an input", p)
    return cases


def predict_volume(graph, data: np.ndarray, opts: SegmentOptions, progress=False):
    """Segment one 3-D volume (float64 voxels): returns ``(mask, prob, geometry)`` on the volume's
    grid (``prob`` None for an argmax readout). Pure: the same inputs give the same bits anywhere."""
    shape = graph.shapes[graph.inputs[0]]
    if len(shape) != 3 or shape[0] != 1:
        raise ValidationError("model input", "a (1, H, W) input for slice-wise segmentation", shape)
    if not graph.outputs or len(graph.shapes[graph.outputs[0]]) != 3:
        raise ValidationError("model output", "an Output node of (C, H, W) maps (segment reads its membrane)",
                              "none" if not graph.outputs else f"shape {graph.shapes[graph.outputs[0]]}")
    x, geo = prepare_slices(data, shape[1:], opts.axis, opts.normalize)
    sim = Simulator(graph, opts.profile, opts.backend, threads=opts.threads, dtype=opts.dtype)
    enc = make_encoder(opts.encoding, seed=opts.seed)
    out_name = graph.outputs[0]
    echo = (lambda line: print(line.replace("samples", "slices"), file=sys.stderr, flush=True)) if progress else None
    finals = [tr.final_output[out_name] for _, tr in
              sim.run_batches(x, opts.T, opts.batch_slices, encoder=enc, recorder=Recorder(counts=False, output=False),
                              progress=progress and sys.stderr.isatty(), echo=echo)]
    mask, prob = output_to_mask(np.concatenate(finals), opts.T, opts.readout, opts.cutoff, geo)
    return mask, prob, geo


def output_to_mask(final, T, readout, cutoff, geometry):
    """The mask (uint8) and foreground probability (float32; None for an argmax readout) on the
    volume's grid, from the output membranes of its slices after ``T`` steps: the one readout of
    ``refsim segment`` and ``refsim demo``."""
    if readout == "argmax":
        return unslice(predict(final, T, "argmax").astype(np.uint8), geometry, fill=0), None
    p = probability(final[:, 0], T, readout)
    mask = (p > cutoff).astype(np.uint8)
    return unslice(mask, geometry, fill=0), unslice(p.astype(np.float32), geometry, fill=0.0).astype(np.float32)


def segment_case(model_bytes: bytes, data: np.ndarray, opts: SegmentOptions, progress=False):
    """One case as a task for any executor: the model file's bytes and the volume in, the prediction
    out (``{"mask", "prob", "geometry", "seconds"}``). Numba's threads follow ``opts.threads``."""
    t0 = time.perf_counter()
    fd, tmp = tempfile.mkstemp(suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model_bytes)
        graph = load_model(tmp)
    finally:
        os.unlink(tmp)
    mask, prob, geo = predict_volume(graph, data, opts, progress)
    return {"mask": mask, "prob": prob, "geometry": geo, "seconds": time.perf_counter() - t0}


def _dice_rows(mask, lab, axis, empty):
    sl = metrics.slice_dice(mask > 0, lab, axis, empty)
    return metrics.dice(mask > 0, lab, empty), sl


def _write_csv(path, header, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(buf.getvalue())


def _client(scheduler, workers, threads):
    if scheduler is None and workers is None:
        return None, None
    distributed = optional_import("distributed", "running segmentation on a Dask cluster")
    if scheduler is not None:
        if not isinstance(scheduler, str) or not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s:/]+(:\d{1,5})?/?"
                                                             r"|[^\s:/]+:\d{1,5}", scheduler):
            raise ValidationError("scheduler", "a Dask scheduler address such as tcp://host:8786", repr(scheduler))
        try:
            return distributed.Client(scheduler, timeout=10), None
        except (OSError, TimeoutError) as exc:
            raise ValidationError("scheduler", "a Dask scheduler that answers within 10 s", f"{scheduler} ({exc})") from None
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": str(threads or 1)}
    cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                       dashboard_address=None, env=env)
    return distributed.Client(cluster), cluster


def segment(model_path, input_path, output, label=None, opts: SegmentOptions | None = None, scheduler=None,
            workers=None, progress=True, echo=print) -> dict:
    """Segment a file or a folder (see the module docstring). Returns ``{"cases": [...], "failed": [...],
    "csv": path or None}``; each case row has its Dice when a label was given."""
    opts = opts or SegmentOptions()
    model_path = os.fspath(model_path)
    graph = load_model(model_path)
    opts = opts.resolved(graph)
    cases = find_cases(input_path, output, label, opts.prob)
    with open(model_path, "rb") as fh:
        model_bytes = fh.read()
    out_dirs = {os.path.dirname(os.path.abspath(c.mask_out)) for c in cases}
    for d in out_dirs:
        os.makedirs(d, exist_ok=True)
    client, cluster = _client(scheduler, workers, opts.threads)
    rows, failed, slice_rows = [], [], []
    t_all = time.perf_counter()

    def say(msg):
        if progress:
            print(msg, file=sys.stderr, flush=True)

    try:
        loaded = {}
        for c in cases:  # read every volume first: a bad one is reported, the rest go on
            try:
                vol = read_volume(c.image)
                lab = None
                if c.label is not None:
                    if not os.path.exists(c.label):
                        raise ValidationError(f"label of {c.name}", "a label volume", f"{c.label} (not found)")
                    lv = read_volume(c.label)
                    if lv.shape != vol.shape or not np.allclose(lv.affine, vol.affine, atol=1e-4):
                        raise ValidationError(f"label {c.label}", f"the image's grid (shape {vol.shape}, same affine)",
                                              f"shape {lv.shape}" + ("" if lv.shape != vol.shape else ", another affine"))
                    lab = lv.data > 0
                loaded[c.name] = (vol, lab)
            except RefsimError as exc:
                failed.append((c.name, str(exc)))
                say(f"refsim segment: {c.name}: FAILED: {exc}")
        todo = [c for c in cases if c.name in loaded]
        if client is not None:
            futures = {c.name: client.submit(segment_case, model_bytes, loaded[c.name][0].data, opts, pure=False,
                                             key=f"refsim-segment-{c.name}") for c in todo}
            results = {}
            for i, c in enumerate(todo):
                try:
                    results[c.name] = futures[c.name].result()
                except RefsimError as exc:
                    results[c.name] = exc
                say(f"[{i + 1}/{len(todo)}] {c.name}: computed on the cluster")
        for i, c in enumerate(todo):
            vol, lab = loaded[c.name]
            try:
                if client is None:
                    say(f"[{i + 1}/{len(todo)}] {c.name}: {vol.shape[opts.axis]} slices along axis {opts.axis}, "
                        f"T={opts.T} ...")
                    res = segment_case(model_bytes, vol.data, opts, progress)
                else:
                    res = results[c.name]
                    if isinstance(res, Exception):
                        raise res
                geo = res["geometry"]
                save_like(res["mask"], vol, c.mask_out, np.uint8)
                if c.prob_out and res["prob"] is not None:
                    save_like(res["prob"], vol, c.prob_out, np.float32)
                row = {"case": c.name, "image": c.image, "mask": c.mask_out, "slices": vol.shape[opts.axis],
                       "geometry": geo.describe(), "pads_and_crops": geo.pads_and_crops(),
                       "predicted_voxels": int(res["mask"].astype(bool).sum()), "seconds": round(res["seconds"], 2)}
                msg = f"    {geo.describe()}; {row['predicted_voxels']} voxels segmented in {res['seconds']:.1f} s"
                if lab is not None:
                    d3, sl = _dice_rows(res["mask"], lab, opts.axis, opts.empty)
                    row.update(dice_3d=d3, slice_dice_mean=metrics.mean(sl), label_voxels=int(lab.sum()))
                    slice_rows += [(c.name, k, f"{v:.6f}") for k, v in enumerate(sl)]
                    msg += f"; Dice {d3:.4f} (3-D), {row['slice_dice_mean']:.4f} (mean per slice)"
                rows.append(row)
                say(msg)
            except RefsimError as exc:
                failed.append((c.name, str(exc)))
                say(f"refsim segment: {c.name}: FAILED: {exc}")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    csv_path = None
    if rows and label is not None:
        out_dir = sorted(out_dirs)[0]
        csv_path = os.path.join(out_dir, "dice.csv")
        _write_csv(csv_path, ["case", "dice_3d", "slice_dice_mean", "label_voxels", "predicted_voxels"],
                   [(r["case"], f"{r['dice_3d']:.6f}", f"{r['slice_dice_mean']:.6f}", r["label_voxels"],
                     r["predicted_voxels"]) for r in rows])
        _write_csv(os.path.join(out_dir, "slice_dice.csv"), ["case", "slice", "dice"], slice_rows)
        d3 = [r["dice_3d"] for r in rows]
        echo(f"{len(rows)} volumes: mean 3-D Dice {metrics.mean(d3):.4f} (min {np.nanmin(d3):.4f}, max "
             f"{np.nanmax(d3):.4f}); mean per-slice Dice {metrics.mean([r['slice_dice_mean'] for r in rows]):.4f}; "
             f"empty masks: {opts.empty}; Dice per volume in {csv_path}")
    echo(f"segmented {len(rows)} of {len(cases)} volumes in {time.perf_counter() - t_all:.1f} s; masks in "
         f"{', '.join(sorted(out_dirs))}")
    if failed:
        echo(f"{len(failed)} failed:")
        for name, why in failed:
            echo(f"  {name}: {why}")
    return {"cases": rows, "failed": failed, "csv": csv_path, "options": asdict(opts)}


SWEEP_FIELDS = ("T", "profile", "backend", "dtype")


def sweep_grid(T=None, profile=None, backend=None) -> dict:
    """The grid of :func:`sweep` from comma-separated lists (``refsim segment --sweep-T 50,100``,
    ``--sweep-profile``, ``--sweep-backend``); each name is checked against its registry."""
    grid = {}
    if T:
        steps = []
        for v in T.split(","):
            try:
                steps.append(int(v))
            except ValueError:
                raise ValidationError("sweep T", "comma-separated positive integers", T) from None
        if any(v < 1 for v in steps):
            raise ValidationError("sweep T", "comma-separated positive integers", T)
        grid["T"] = steps
    if profile:
        grid["profile"] = [get_profile(p.strip()).name for p in profile.split(",") if p.strip()]
    if backend:
        grid["backend"] = [b.strip() for b in backend.split(",") if b.strip()]
        for b in grid["backend"]:
            if b not in BACKENDS:
                raise UnknownNameError("backend", b, BACKENDS)
    return grid


def sweep(model_path, input_path, output, label, opts: SegmentOptions | None = None, grid: dict | None = None,
          cutoffs=None, scheduler=None, workers=None, progress=True, echo=print) -> dict:
    """An evaluation sweep: every case under every combination of ``grid`` (a dict of
    :data:`SWEEP_FIELDS` to lists of values), Dice at every cut-off of ``cutoffs`` from the same
    probability map. Each (case, setting) is one task, so the sweep runs on a Dask cluster as a folder
    does, with the serial results. Writes ``OUTPUT/sweep.csv`` (no masks) and returns its rows."""
    opts = opts or SegmentOptions()
    grid = {k: list(v) for k, v in (grid or {}).items()}
    for k in grid:
        if k not in SWEEP_FIELDS:
            raise UnknownNameError("sweep field", k, SWEEP_FIELDS)
    if label is None:
        raise ValidationError("sweep", "label volumes to score the settings with", "none")
    cutoffs = list(CUTOFFS if cutoffs is None else cutoffs)
    graph = load_model(model_path)
    base = replace(opts.resolved(graph), prob=True)
    if base.readout == "argmax":
        raise ValidationError("sweep", "a sigmoid readout (cut-offs of a probability map)", "argmax")
    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] or [{}]
    setting_opts = [replace(base, **s) for s in settings]
    cases = find_cases(input_path, output, label, False)
    out_dir = output if not _is_nii(output) else os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    with open(model_path, "rb") as fh:
        model_bytes = fh.read()
    loaded, failed = {}, []
    for c in cases:
        try:
            vol, lab = read_volume(c.image), read_volume(c.label) if c.label and os.path.exists(c.label) else None
            if lab is None or lab.shape != vol.shape:
                raise ValidationError(f"label of {c.name}", f"a label on the image's grid {vol.shape}",
                                      c.label if lab is None else f"shape {lab.shape}")
            loaded[c.name] = (vol.data, lab.data > 0)
        except RefsimError as exc:
            failed.append((c.name, str(exc)))
    tasks = [(c.name, i) for c in cases if c.name in loaded for i in range(len(settings))]
    client, cluster = _client(scheduler, workers, opts.threads)
    results = {}
    try:
        if client is not None:
            fut = {k: client.submit(segment_case, model_bytes, loaded[k[0]][0], setting_opts[k[1]], pure=False,
                                    key=f"refsim-sweep-{k[0]}-{k[1]}") for k in tasks}
            for k in tasks:
                results[k] = fut[k].result()
        else:
            for n, k in enumerate(tasks):
                if progress:
                    print(f"[{n + 1}/{len(tasks)}] {k[0]} {settings[k[1]]}", file=sys.stderr, flush=True)
                results[k] = segment_case(model_bytes, loaded[k[0]][0], setting_opts[k[1]])
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    rows = []
    for (name, i), res in results.items():
        lab = loaded[name][1]
        for cut in cutoffs:
            pred = res["prob"] > cut
            s = setting_opts[i]
            rows.append({"case": name, "T": s.T, "profile": s.profile, "backend": s.backend, "dtype": s.dtype,
                         "cutoff": cut, "dice_3d": metrics.dice(pred, lab, s.empty),
                         "slice_dice_mean": metrics.mean(metrics.slice_dice(pred, lab, s.axis, s.empty))})
    path = os.path.join(out_dir, "sweep.csv")
    keys = ["case", "T", "profile", "backend", "dtype", "cutoff", "dice_3d", "slice_dice_mean"]
    _write_csv(path, keys, [[f"{r[k]:.6f}" if k in ("dice_3d", "slice_dice_mean") else r[k] for k in keys]
                            for r in rows])
    summary = {}
    for r in rows:
        summary.setdefault((r["T"], r["profile"], r["backend"], r["dtype"], r["cutoff"]), []).append(r["dice_3d"])
    echo("T      profile        backend    dtype    cut-off  mean 3-D Dice")
    for k, v in summary.items():
        echo(f"{k[0]:<6} {k[1]:<14} {k[2]:<10} {k[3]:<8} {k[4]:<8} {metrics.mean(v):.4f}")
    echo(f"{len(rows)} rows in {path}")
    for name, why in failed:
        echo(f"  {name}: FAILED: {why}")
    return {"rows": rows, "failed": failed, "csv": path}
