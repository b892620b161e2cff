"""The ``refsim`` command.

Subcommands: ``run``, ``info``, ``probe``, ``demo``, ``profiles``, ``golden``, ``bench``. Exit codes:

* 0 - success (``golden verify``: every case passes);
* 1 - ``golden verify``: some case differs from its expected traces;
* 2 - bad command line or invalid input (model file, input file, parameters): the message says
  what was expected, what was found and where;
* 3 - an unexpected internal error (a bug: please report it with the traceback printed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from . import __version__
from .errors import RefsimError
from .semantics import DEFAULT_PROFILE, NEURON_MODELS, get_profile, list_profiles

from .data import DEMO_IMAGE, DEMO_LABEL, DEMO_MODEL, demo_input  # noqa: F401 (re-exported: refsim.cli.DEMO_IMAGE ...)
from .neurons.probe import format_spikes, probe

EXIT_OK, EXIT_FAILED_CHECK, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def _int_at_least(lo, what):
    """An argparse type: an integer >= ``lo`` (argparse's message names the option)."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_natural_int = _int_at_least(0, "a non-negative integer")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refsim", description="Reference simulator for spiking neural networks.",
                                epilog="exit codes: 0 ok, 1 a check failed (golden verify), 2 bad input or usage, 3 internal error")
    p.add_argument("--version", action="version", version=f"refsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common_run(sp):
        sp.add_argument("--T", type=_positive_int, default=None, help="time steps (default: run 100, demo 200)")
        sp.add_argument("--profile", default=None, help=f"semantic profile (default: the model's, else {DEFAULT_PROFILE}); "
                                                         f"one of {', '.join(list_profiles())}")
        sp.add_argument("--seed", type=_natural_int, default=0, help="encoder seed (default 0)")
        sp.add_argument("--out", default=None, metavar="PATH",
                        help="write the traces here: a name ending in .npz is one compressed file (kept in memory "
                             "until the end); any other name is a trace folder, streamed to disk while the run goes "
                             "(memory flat in T; docs/traces.md)")
        sp.add_argument("--backend", default="reference", choices=["reference", "event"],
                        help="reference (dense NumPy float64, the oracle) or event (Numba scatter over spikes; "
                             "same traces where sums are exact)")
        sp.add_argument("--threads", type=_positive_int, default=None,
                        help="event backend: Numba threads (default: Numba's); results do not depend on it")
        sp.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                        help="event backend: float32 is faster and may differ near thresholds (docs/architecture.md)")
        sp.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar")
        sp.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")

    r = sub.add_parser("run", help="simulate a model file on an input", description="Simulate MODEL on INPUT.")
    r.add_argument("model", help="refsim model file (.safetensors)")
    r.add_argument("input", help=".npy / .npz array (B, *input shape) or a NIfTI volume (.nii, .nii.gz)")
    common_run(r)
    r.add_argument("--encoding", default=None, choices=["poisson", "poisson-ternary", "static"],
                   help="input encoding (default: the model's, else poisson)")
    r.add_argument("--normalize", default="unit", choices=["unit", "zero-mean", "none"],
                   help="NIfTI inputs only: intensity normalisation (default unit)")
    r.add_argument("--record-spikes", nargs="*", default=None, metavar="LAYER",
                   help="keep per-step spikes of these layers (no names: all)")
    r.add_argument("--record-membranes", nargs="*", default=None, metavar="LAYER",
                   help="keep per-step membranes of these layers (no names: all)")
    r.add_argument("--record-inputs", action="store_true", help="keep the encoded input of every step (for refsim check)")
    r.add_argument("--record-output", action="store_true",
                   help="keep the output membrane of every step (the final one is always kept)")

    i = sub.add_parser("info", help="describe a model file: layers, shapes, parameters, metadata, the profile's choices")
    i.add_argument("model", help="refsim model file (.safetensors)")
    i.add_argument("--profile", default=None, help="show the choices of this profile (default: the model's)")

    pr = sub.add_parser("probe", help="print one neuron's spike train for a constant input",
                        description="One neuron, threshold --threshold, constant input; one character per step: "
                                    "the spikes of that step (0-9, then a-z for 10-35; '-' for a negative ternary "
                                    "spike). For a multithreshold neuron: one bit per level per step (highest level "
                                    "first, '.' when none fired) and the value sent on each step.")
    pr.add_argument("--profile", default=DEFAULT_PROFILE,
                    help=f"semantic profile (default {DEFAULT_PROFILE}); one of {', '.join(list_profiles())}")
    pr.add_argument("--input", type=str, default="0.5", help="input per step; a comma list is cycled (default 0.5)")
    pr.add_argument("--T", type=_positive_int, default=8, help="time steps (default 8)")
    pr.add_argument("--threshold", type=float, default=1.0, help="firing threshold (multithreshold: the levels' scale; "
                                                                 "default 1)")
    pr.add_argument("--model", default="if", choices=list(NEURON_MODELS), help="neuron model (default if)")
    pr.add_argument("--levels", type=str, default=None, help="multithreshold levels, comma separated")
    pr.add_argument("--membrane", action="store_true", help="also print the membrane after each step")

    d = sub.add_parser("demo", help="segment a shipped MRI volume with the shipped trained spiking U-Net: Dice, "
                                    "per-layer rates, a mask and an analysis report",
                       description="Segments a shipped held-out MSD hippocampus volume (CC BY-SA 4.0) with the shipped "
                                   "spiking U-Net (trained, converted and fine-tuned by validation/hippocampus), on the "
                                   "event backend; prints Dice and per-layer firing rates, writes the mask (NIfTI, on "
                                   "the volume's grid) and report.html / report.json into --out-dir.")
    common_run(d)
    d.set_defaults(backend="event")
    d.add_argument("--volume", type=int, default=1, choices=[1, 2], help="which of the two shipped volumes (default 1)")
    d.add_argument("--out-dir", default="refsim-demo", help="folder for the mask and the report (default ./refsim-demo)")

    pf = sub.add_parser("profiles", help="list the profiles and their choices for one neuron model")
    pf.add_argument("--model", default="if", choices=list(NEURON_MODELS),
                    help="whose choices to show (default if; the profiles set each model's separately)")

    ck = sub.add_parser("check", help="compare recorded traces with the equations, layer by layer (teacher-forced or free-running)",
                        description="Exit 0: conforms (rounding ties allowed and reported); 1: diverges; 2: bad input.")
    ck.add_argument("model", help="refsim model file (.safetensors) the traces belong to")
    ck.add_argument("traces", help="trace file (.npz) or trace folder with spikes of every spiking layer and inputs/<input> (docs/traces.md)")
    ck.add_argument("--profile", default=None, help="profile to check against (default: the traces', else the model's)")
    ck.add_argument("--json", default=None, help="also write the report as JSON here")
    ck.add_argument("--no-explain", action="store_true", help="skip the search for the choice that explains a divergence")
    ck.add_argument("--free-running", action="store_true",
                    help="drive every layer with refsim's own spikes (only the input train is replayed; rounding ties "
                         "re-synchronised) and report the first real divergence, instead of teacher forcing")
    ck.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="report progress on stderr for passes over a few seconds (default: when stderr is a terminal)")
    ck.add_argument("--no-progress", dest="progress", action="store_false", help="no progress reports")

    fp = sub.add_parser("fingerprint", help="say which semantic choices an implementation makes, from the tie probes",
                        description="Reads a (T, N) spike array (.npy) recorded for the probes of "
                                    "refsim.conformance.fingerprint.PROBES, or --profile NAME to fingerprint a profile.")
    fp.add_argument("spikes", nargs="?", default=None, help=".npy of shape (steps, probes): your neuron's spikes for "
                                                             "the probe inputs of --write-probes")
    fp.add_argument("--profile", default=None, help="fingerprint a refsim profile instead (a self-check)")
    fp.add_argument("--write-probes", default=None, metavar="NPY", help="write the probe inputs (T, N) to this .npy and exit")

    gd = sub.add_parser("golden", help="verify (or explicitly regenerate) the golden cases")
    gd.add_argument("action", choices=["verify", "regen"],
                    help="verify: run every case and compare with its expected files (exit 1 on a difference); "
                         "regen: rewrite the expected files of refsim-made cases from this version")
    gd.add_argument("directory", nargs="?", default="golden", help="folder of cases (default ./golden)")
    gd.add_argument("--backend", default="reference", choices=["reference", "event"], help="verify only")

    an = sub.add_parser("analyze", help="what a model did and what it cost: rates, synaptic operations, energy, "
                                         "accuracy; report.json and a self-contained report.html with plots",
                        description="Simulate MODEL on INPUTS with everything the analysis needs recorded and write "
                                    "DIR/report.json (every number with its unit and definition) and DIR/report.html.")
    an.add_argument("model", help="refsim model file (.safetensors)")
    an.add_argument("input", help=".npy / .npz array (B, *input shape) or a NIfTI volume (.nii, .nii.gz)")
    common_run(an)
    an.add_argument("--report", required=True, metavar="DIR", help="folder for report.json and report.html (created)")
    an.add_argument("--label", default=None, help="labels for Dice: a NIfTI volume matching a NIfTI input, or an "
                                                  ".npy/.npz array (B, H, W); foreground is label > 0")
    an.add_argument("--encoding", default=None, choices=["poisson", "poisson-ternary", "static"],
                    help="input encoding (default: the model's, else poisson)")
    an.add_argument("--normalize", default="unit", choices=["unit", "zero-mean", "none"],
                    help="NIfTI inputs only: intensity normalisation (default unit)")
    an.add_argument("--readout", default="sigmoid-mean", choices=["sigmoid-mean", "sigmoid", "argmax"],
                    help="how the output membrane becomes a prediction (default sigmoid(v/T))")
    an.add_argument("--cutoff", type=float, default=0.5, help="probability cut-off for the mask (default 0.5)")
    an.add_argument("--empty", default="one", choices=["one", "nan"],
                    help="Dice of an empty label: 'one' (1 if the prediction is empty too, else 0) or 'nan' (left out)")
    an.add_argument("--energy", default="fp32", choices=["fp32", "fp16", "int8"],
                    help="energy per operation preset, 45 nm (default fp32: 4.6 pJ/MAC, 0.9 pJ/AC)")
    an.add_argument("--e-mac", type=float, default=None, help="energy of a MAC in pJ (overrides --energy)")
    an.add_argument("--e-ac", type=float, default=None, help="energy of an AC in pJ (overrides --energy)")
    an.add_argument("--convention", default="synops", choices=["synops", "li-table5"],
                    help="ACs as counted synaptic operations (default), or Li et al. Table 5's raw spike count")
    an.add_argument("--raster-layer", default=None, metavar="LAYER", help="layer whose spike raster is plotted "
                                                                          "(default: the first spiking layer)")
    an.add_argument("--no-ann", action="store_true", help="skip the ANN-vs-SNN rate comparison")
    an.add_argument("--ann", default=None, metavar="ANN",
                    help="the trained ANN the model was converted from (.onnx, or a refsim model file): per layer, "
                         "its activation against the SNN's rate (default: the rate model of the same graph)")
    an.add_argument("--against", default=None, metavar="MODEL",
                    help="a second model (say, fine-tuned vs converted) run on the same inputs, shown side by side")
    an.add_argument("--against-profile", default=None, help="the second run's profile (default: the first run's)")
    an.add_argument("--against-backend", default=None, choices=["reference", "event"],
                    help="the second run's backend (default: the first run's)")

    sg = sub.add_parser("segment", help="segment NIfTI volumes (a file or a folder): masks on each volume's own "
                                         "grid, Dice against labels",
                        description="INPUT: a NIfTI file or a folder (nnU-Net naming CASE_0000.nii.gz accepted; output "
                                    "CASE.nii.gz). Exit 0 when every volume was segmented, 2 when any failed (the others "
                                    "still finish; failures are listed at the end).")
    sg.add_argument("model", help="refsim model file (.safetensors)")
    sg.add_argument("input", help="a NIfTI volume (.nii, .nii.gz) or a folder of them")
    sg.add_argument("-o", "--output", required=True,
                    help="output folder (created if missing), or a .nii.gz path for a single input volume")
    sg.add_argument("--label", default=None, help="a label volume, or a folder of them matched by case name "
                                                  "(CASE.nii.gz); foreground is label > 0")
    sg.add_argument("--axis", type=int, default=None, choices=[0, 1, 2], help="slicing axis (default: the model's, else 0)")
    sg.add_argument("--prob", action="store_true", help="also write CASE_prob.nii.gz, the foreground probability (float32)")
    sg.add_argument("--T", type=_positive_int, default=200, help="time steps (default 200)")
    sg.add_argument("--cutoff", type=float, default=0.5, help="probability cut-off for the mask (default 0.5)")
    sg.add_argument("--backend", default="event", choices=["reference", "event"],
                    help="event (default; Numba, same bits as the reference in float64) or reference")
    sg.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="event backend arithmetic")
    sg.add_argument("--threads", type=_positive_int, default=None, help="Numba threads per run (default: Numba's; 1 per Dask worker)")
    sg.add_argument("--profile", default=None, help="semantic profile (default: the model's, else paper)")
    sg.add_argument("--seed", type=_natural_int, default=0, help="encoder seed (default 0; every slice draws from (seed, slice))")
    sg.add_argument("--encoding", default=None, choices=["poisson", "poisson-ternary", "static"],
                    help="input encoding (default: the model's, else poisson)")
    sg.add_argument("--normalize", default=None, choices=["unit", "zero-mean", "none"],
                    help="intensity normalisation over each volume (default: the model's, else by its encoding)")
    sg.add_argument("--readout", default=None, choices=["sigmoid-mean", "sigmoid", "argmax"],
                    help="output membrane to prediction (default: the model's, else sigmoid(v/T))")
    sg.add_argument("--batch-slices", type=_positive_int, default=16, help="slices simulated together (default 16)")
    sg.add_argument("--empty", default="one", choices=["one", "nan"],
                    help="Dice of an empty label (slice): 1 if the prediction is empty too, else 0; or nan (left out)")
    sg.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the volumes on an existing Dask cluster (tcp://host:8786; needs refsim[dask])")
    sg.add_argument("--workers", type=_positive_int, default=None, help="run the volumes on a local Dask cluster of N processes")
    sg.add_argument("--sweep-T", default=None, metavar="T1,T2,..",
                    help="evaluation sweep: these time steps (with --label; writes sweep.csv, no masks)")
    sg.add_argument("--sweep-profile", default=None, metavar="P1,P2,..", help="evaluation sweep: these profiles")
    sg.add_argument("--sweep-backend", default=None, metavar="B1,B2,..", help="evaluation sweep: these backends")
    sg.add_argument("--sweep-cutoff", default=None, metavar="C1,C2,..",
                    help="evaluation sweep: these cut-offs (default 0.1 to 0.6 by 0.05; from one run per setting)")
    sg.add_argument("--progress", dest="progress", action="store_true", default=None, help="per-volume progress on stderr")
    sg.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")

    cv = sub.add_parser("convert", help="convert a trained ANN (ONNX, or a refsim model) into a spiking network, "
                                        "with a per-layer report of where conversion loses accuracy",
                        description="Imports ANN, converts it with the chosen method on the calibration inputs, "
                                    "writes the spiking model, then runs it on the calibration inputs and prints per "
                                    "layer the threshold (and lambda), the rate's correlation and slope against the "
                                    "ANN activation, and the first layer below the bounds (also as JSON with --report).")
    cv.add_argument("ann", help="the trained ANN: an .onnx file (torch.onnx.export) or a refsim model file")
    cv.add_argument("--calib", required=True, help="calibration inputs: .npy/.npz array (B, *input shape) or a NIfTI "
                                                    "volume (sliced and normalised to [0, 1])")
    cv.add_argument("--method", default="balance", choices=["balance", "layerwise", "connectionwise"],
                    help="threshold balancing (Sengupta/Rathi, Yue's conversion; default), layer-wise (Li eq. 7) or "
                         "connection-wise (Li eq. 8) normalisation")
    cv.add_argument("-o", "--output", required=True, help="the spiking model file to write (.safetensors)")
    cv.add_argument("--T", type=_positive_int, default=200, help="steps of threshold balancing and of the report's "
                                                                 "evaluation (default 200, Yue's early stop)")
    cv.add_argument("--scale", type=float, default=0.7, help="balancing: threshold = scale x max input current "
                                                             "(default 0.7, Rathi's code)")
    cv.add_argument("--percentile", type=float, default=99.9, help="normalisations: lambda = this percentile of "
                                                                   "the activation (default 99.9; 100 = max)")
    cv.add_argument("--percentile-of", default="all", choices=["all", "nonzero"],
                    help="normalisations: percentile over all activations (default) or the non-zero ones (SNN Toolbox)")
    cv.add_argument("--compat-offbyone", action="store_true",
                    help="connection-wise: reproduce the Spiking-UNet code's off-by-one (last channel of each part "
                         "unscaled); off by default")
    cv.add_argument("--seed", type=_natural_int, default=0, help="encoder seed (default 0)")
    cv.add_argument("--encoding", default=None, choices=["poisson", "poisson-ternary", "static"],
                    help="input encoding of the spiking model (default: poisson; recorded in the model)")
    cv.add_argument("--profile", default=None, help=f"semantic profile (default {DEFAULT_PROFILE})")
    cv.add_argument("--backend", default="event", choices=["reference", "event"], help="backend of the simulations "
                                                                                       "(default event)")
    cv.add_argument("--input-shape", default=None, metavar="C,H,W",
                    help="per-sample input shape, when the ONNX file leaves it symbolic")
    cv.add_argument("--batch", type=_positive_int, default=16, help="calibration samples simulated together (default 16)")
    cv.add_argument("--report", default=None, metavar="JSON", help="also write the per-layer report as JSON here")
    cv.add_argument("--min-correlation", type=float, default=0.9, help="bound on the rate-activation correlation "
                                                                       "(default 0.9)")
    cv.add_argument("--slope-range", default="0.8,1.25", metavar="LO,HI", help="bounds on the slope (default 0.8,1.25)")
    cv.add_argument("--progress", dest="progress", action="store_true", default=None, help="show progress bars")
    cv.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")

    im = sub.add_parser("import", help="import an ONNX ANN or a NIR graph as a refsim model file",
                        description="ONNX: ReLUs become IF neurons with threshold 1 (run refsim convert to set "
                                    "thresholds). NIR: every node is mapped with its discretisation named "
                                    "(docs/model-format.md).")
    im.add_argument("file", help="an .onnx or .nir file")
    im.add_argument("-o", "--output", required=True, help="the refsim model file to write (.safetensors)")
    im.add_argument("--input-shape", default=None, metavar="C,H,W", help="per-sample input shape, when the file "
                                                                          "leaves it symbolic")
    im.add_argument("--dt", type=float, default=None, help="NIR: the time step (default: the graph's, else 1e-4 s)")
    im.add_argument("--discretisation", default="euler", choices=["euler", "exact"],
                    help="NIR: forward Euler (NIR's reference; default) or the exact exponential decay")

    ex = sub.add_parser("export", help="export a refsim model as a NIR graph (refuses what NIR cannot express)")
    ex.add_argument("model", help="refsim model file (.safetensors)")
    ex.add_argument("-o", "--output", required=True, help="the .nir file to write")
    ex.add_argument("--dt", type=float, default=1e-4, help="the time step the NIR parameters are written for "
                                                           "(default 1e-4 s)")

    bn = sub.add_parser("bench", help="measure the event kernels against dense NumPy and torch (no assertions)")
    bn.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (about 35 s here; the full run about 5 minutes)")
    bn.add_argument("--out-dir", default=None, help="write <quick|full>.json and .md here")
    return p


def _load_input(path, graph, normalize):
    from .errors import EncodingError
    low = path.lower()
    name = graph.inputs[0]
    if low.endswith((".nii", ".nii.gz")):
        from .io.nifti import normalize as norm
        from .io.nifti import read_volume, slice_volume
        shape = graph.shapes[name]
        if len(shape) != 3 or shape[0] != 1:
            raise EncodingError(f"{path}: NIfTI input needs a model with a (1, H, W) input, found {shape}")
        x, geo = slice_volume(read_volume(path), shape[1:])
        print(f"input {os.path.basename(path)}: {geo.describe()}", file=sys.stderr)
        return x if normalize == "none" else norm(x, normalize)
    return _load_array(path)


def _load_array(path):
    """A .npy array, or from a .npz the array named 'x' (or its only array). Never unpickles."""
    from .errors import EncodingError
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise EncodingError(f"{path}: expected an array named 'x' or a single array, found {keys}")
                return z[key]
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EncodingError(f"{path}: expected a .npy/.npz array or a NIfTI volume, found unreadable data ({exc})") from None


def _recorder(args):
    from .simulator import Recorder
    sp = args.record_spikes
    mem = getattr(args, "record_membranes", None)
    return Recorder(spikes=False if sp is None else (True if not sp else list(sp)),
                    membranes=False if mem is None else (True if not mem else list(mem)),
                    inputs=bool(getattr(args, "record_inputs", False)), output=bool(getattr(args, "record_output", False)),
                    stream_to=args.out if _streams(args) else None)


def _streams(args) -> bool:
    """Whether ``--out`` names a trace folder (streamed) rather than an .npz file."""
    out = getattr(args, "out", None)
    return bool(out) and not out.lower().endswith(".npz")


def _check_out(args, inputs=()):
    """Check ``--out`` before any work: an .npz file path, or a trace folder path."""
    if not args.out:
        return
    if _streams(args):
        from .traces import check_trace_folder
        check_trace_folder(args.out, "--out")
        for i in inputs:
            if i is not None and os.path.abspath(i).startswith(os.path.abspath(args.out) + os.sep):
                from .errors import ValidationError
                raise ValidationError("--out", "a folder that does not hold the inputs", args.out)
    else:
        from ._files import check_output
        check_output(args.out, "--out", inputs)


def _simulate(graph, x, args, encoding, recorder=None, out=None):
    out = out if out is not None else sys.stdout
    from .encoding import make_encoder
    from .simulator import Simulator
    profile = args.profile or graph.metadata.get("profile", DEFAULT_PROFILE)
    sim = Simulator(graph, profile, backend=args.backend, threads=args.threads, dtype=args.dtype)
    enc = make_encoder(encoding, seed=args.seed)
    T = args.T if args.T is not None else 100
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    t0 = time.perf_counter()
    tr = sim.run(x, T, encoder=enc, recorder=recorder, progress=progress)
    el = time.perf_counter() - t0
    print(f"model {graph.name}: {len(graph.neurons)} spiking layers, batch {tr.batch}, T={T}, profile {sim.profile.name}, "
          f"encoder {encoding} (seed {args.seed}), backend {sim.backend}: {el:.2f} s ({1e3 * el / T:.1f} ms/step)", file=out)
    print(tr.table(), file=out)
    print(DEFINITIONS_TEXT, file=out)
    if args.out:
        if not _streams(args) or recorder is None or recorder.stream_to is None:
            tr.save(args.out)
        print(f"traces written to {args.out}" + (" (a trace folder)" if _streams(args) else ""), file=out)
    return tr


def _cmd_run(args):
    from .io import load_model
    _check_out(args, (args.model, args.input))
    g = load_model(args.model)
    x = _load_input(args.input, g, args.normalize)
    enc = args.encoding or g.metadata.get("encoding", "poisson")
    _simulate(g, x, args, enc, _recorder(args))
    return EXIT_OK


def _cmd_demo(args):
    from .analysis import metrics
    from .analysis.curves import predict
    from .analysis.report import analyze, write_report
    from .data import DEMO_VOLUMES
    from .encoding import make_encoder
    from .io import load_model
    from .io.nifti import prepare_slices, read_volume, save_like, unslice
    _check_out(args)
    g = load_model(DEMO_MODEL)
    img_path, lab_path = DEMO_VOLUMES[args.volume - 1]
    vol, lab = read_volume(img_path), read_volume(lab_path)
    meta = g.metadata
    T = args.T if args.T is not None else 200
    axis = int(meta.get("axis", 0))
    x, geo = prepare_slices(vol, g.shapes[g.inputs[0]][1:], axis, meta.get("normalize", "unit"))
    lab_slices = prepare_slices(lab.data > 0, g.shapes[g.inputs[0]][1:], axis, "none")[0][:, 0] > 0
    profile = args.profile or meta.get("profile", DEFAULT_PROFILE)
    print(f"model: {g.name} ({os.path.basename(DEMO_MODEL)}): {meta.get('architecture', '')}")
    for key in ("training", "conversion", "finetuning"):
        if key in meta:
            v = meta[key]
            print(f"  {key}: " + (", ".join(f"{k}={v[k]}" for k in v if k not in ("thresholds", "lambdas", "calibration_sha256"))
                                   if isinstance(v, dict) else str(v)))
    print(f"input: {os.path.basename(img_path)} (MSD Task04 hippocampus, held out from training; CC BY-SA 4.0, "
          f"refsim/data/README.md): {geo.describe()}")
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    t0 = time.perf_counter()
    rep, tr = analyze(g, x, T, profile, args.backend, make_encoder(meta.get("encoding", "poisson"), seed=args.seed),
                      label=lab_slices, progress=progress, threads=args.threads, dtype=args.dtype)
    el = time.perf_counter() - t0
    final = tr.final_output[g.outputs[0]]
    mask = unslice(predict(final, T, meta.get("readout", "sigmoid-mean")).astype(np.uint8), geo, fill=0)
    os.makedirs(args.out_dir, exist_ok=True)
    mask_path = os.path.join(args.out_dir, os.path.basename(img_path).replace(".nii.gz", "_mask.nii.gz"))
    save_like(mask, vol, mask_path, np.uint8)
    truth = lab.data > 0
    d3 = metrics.dice(mask > 0, truth)
    d2 = metrics.mean(metrics.slice_dice(mask > 0, truth, axis, "nan"))
    print(f"simulated {x.shape[0]} slices x T={T} on the {args.backend} backend in {el:.1f} s "
          f"({1e3 * el / T:.1f} ms/step), profile {profile}")
    _print_summary(rep, dice=False)
    print(f"Dice against the label (label > 0), on the volume's grid: {d3:.4f} (3-D), {d2:.4f} (mean over slices "
          f"that contain hippocampus); {int(truth.sum())} label voxels, {int(mask.sum())} predicted")
    jpath, hpath = write_report(rep, tr, args.out_dir)
    print(f"mask: {mask_path} (uint8, the input's affine and header)")
    print(f"report: {hpath} (plots) and {jpath} (numbers, units and definitions)")
    if args.out:
        tr.save(args.out)
        print(f"traces written to {args.out}")
    return EXIT_OK


def _cmd_info(args):
    from .io import load_model
    g = load_model(args.model)
    prof = get_profile(args.profile or g.metadata.get("profile", DEFAULT_PROFILE))
    print(f"model: {g.name}   file: {args.model}")
    for k, v in sorted(g.metadata.items()):
        print(f"  {k}: {v}")
    rows = [("node", "type", "inputs", "shape", "params", "detail")]
    for r in g.summary():
        rows.append((r["name"], r["type"], ",".join(r["inputs"]), "x".join(map(str, r["shape"])), str(r["params"]), r["detail"]))
    w = [max(len(r[i]) for r in rows) for i in range(6)]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            print("-" * (sum(w) + 10))
    n_neur = sum(int(np.prod(g.shapes[n])) for n in g.neurons)
    print(f"parameters: {g.n_parameters()}   spiking layers: {len(g.neurons)}   neurons per sample: {n_neur}")
    print(f"profile: {prof.name} - {prof.description}")
    for m in sorted({g[n].model for n in g.neurons}):
        print(f"  {m}: " + ", ".join(f"{k}={v}" for k, v in prof.choices(m).as_dict().items()))
    return EXIT_OK


def _parse_floats(text, what):
    from .errors import ValidationError
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValidationError(what, "a number or a comma-separated list of numbers", text) from None
    if not vals:
        raise ValidationError(what, "at least one number", text)
    return vals


def _cmd_probe(args):
    inputs = _parse_floats(args.input, "--input")
    levels = _parse_floats(args.levels, "--levels") if args.levels else None
    if args.model == "multithreshold":
        from .neurons.probe import probe_levels
        masks, sent, mems, lv = probe_levels(args.profile, inputs, args.T, args.threshold, levels)
        print("levels " + ", ".join(f"{v:g}" for v in lv) + " (x threshold); per step, one bit per level, highest first:")
        print(" ".join(m or "." for m in masks))
        print("sent on per step: " + " ".join(f"{v:g}" for v in sent))
        if args.membrane:
            print(" ".join(f"{v:.6g}" for v in mems))
        return EXIT_OK
    spikes, mems = probe(args.profile, inputs, args.T, args.threshold, args.model, levels)
    print(format_spikes(spikes))
    if args.membrane:
        print(" ".join(f"{v:.6g}" for v in mems))
    return EXIT_OK


def _cmd_profiles(args):
    fields = ["comparison", "order", "reset", "spikes_per_step", "v_min", "spike_value", "membrane_report"]
    rows = [["profile"] + fields]
    for name in list_profiles():
        c = get_profile(name).choices(args.model).as_dict()
        rows.append([name] + [str(c[f]) for f in fields])
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    others = [m for m in NEURON_MODELS if m != args.model]
    print(f"\n(choices of the {args.model!r} model; 'refsim profiles --model " + "|".join(others) + "' shows the others; "
          "'refsim info MODEL' shows those a model file runs with)")
    return EXIT_OK


def _cmd_check(args):
    import json
    from .conformance import load_traces
    from .conformance.check import check, format_report
    from ._files import atomic_path, check_output
    from .io import load_model
    if args.json:
        check_output(args.json, "--json", (args.model, args.traces))
    g = load_model(args.model)
    tr = load_traces(args.traces)
    profile = args.profile or tr.profile or g.metadata.get("profile", DEFAULT_PROFILE)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    rep = check(g, tr, profile, explain_divergences=not args.no_explain,
                mode="free-running" if args.free_running else "teacher-forced", progress=progress)
    print(format_report(rep))
    if args.json:
        with atomic_path(args.json) as tmp, open(tmp, "w") as fh:
            json.dump(rep, fh, indent=1)
    return EXIT_OK if rep["conforms"] else EXIT_FAILED_CHECK


def _cmd_fingerprint(args):
    from .conformance import fingerprint as fpm
    from .errors import ValidationError
    if args.write_probes:
        from ._files import atomic_path, check_output
        check_output(args.write_probes, "--write-probes")
        with atomic_path(args.write_probes, ".npy") as tmp:
            np.save(tmp, fpm.probe_inputs())
        print(f"probe inputs {fpm.probe_inputs().shape} written to {args.write_probes}")
        return EXIT_OK
    if args.profile and args.spikes:
        raise ValidationError("SPIKES / --profile", "one of them", "both")
    if args.profile:
        obs = fpm.simulate_choices(get_profile(args.profile).choices("if"))
    elif args.spikes:
        obs = _load_array(args.spikes)
        probes = fpm.probe_inputs()
        if obs.shape == probes.shape and obs.dtype.kind == "f" and np.array_equal(obs, probes):
            raise ValidationError(f"SPIKES {args.spikes}", "the spikes your neuron emitted for the probe inputs",
                                  "the probe inputs themselves (run them through your neuron first)")
        if obs.dtype.kind not in "biuf" or (obs.size and not np.all(np.isfinite(obs))) or np.any(obs != np.round(obs)):
            raise ValidationError(f"SPIKES {args.spikes}", "integer spike counts per step and probe", f"dtype {obs.dtype}")
    else:
        raise ValidationError("SPIKES", "a spikes .npy of shape (steps, probes) (from --write-probes) or --profile NAME",
                              "neither")
    rep = fpm.fingerprint(obs)
    print(fpm.format_fingerprint(rep))
    return EXIT_OK if rep["matching_choice_sets"] else EXIT_FAILED_CHECK


def _cmd_golden(args):
    from .conformance import golden
    if args.action == "regen":
        golden.regen(args.directory)
        return EXIT_OK
    if args.backend == "event":
        print("event backend: Numba kernels are compiled on first use (several seconds) and cached afterwards",
              file=sys.stderr, flush=True)
    res = golden.verify(args.directory, backend=args.backend)
    bad = [k for k, v in res.items() if v]
    print(f"{len(res) - len(bad)} passed, {len(bad)} failed")
    return EXIT_FAILED_CHECK if bad else EXIT_OK


def _cmd_bench(args):
    from . import bench
    bench.run(quick=args.quick, out_dir=args.out_dir)
    return EXIT_OK


def _load_label(path, graph, n):
    """Labels as a boolean (B, H, W) array: a NIfTI volume sliced like a NIfTI input, or an array."""
    from .errors import EncodingError
    shape = graph.shapes[graph.inputs[0]]
    if path.lower().endswith((".nii", ".nii.gz")):
        from .io.nifti import fit_slices, load_volume
        lab = fit_slices(load_volume(path), shape[1:])[:, 0]
    else:
        lab = _load_array(path)
        if lab.ndim == 4 and lab.shape[1] == 1:
            lab = lab[:, 0]
    if lab.shape != (n,) + tuple(shape[1:]):
        raise EncodingError(f"{path}: expected labels of shape {(n,) + tuple(shape[1:])} (one per input slice), "
                            f"found {lab.shape}")
    return lab > 0


def _cmd_segment(args):
    from .segment import SegmentOptions, segment
    if args.workers is not None and args.workers < 1:
        from .errors import ValidationError
        raise ValidationError("--workers", "a positive number of worker processes", args.workers)
    opts = SegmentOptions(T=args.T, profile=args.profile, backend=args.backend, dtype=args.dtype, threads=args.threads,
                          cutoff=args.cutoff, axis=args.axis, prob=args.prob, seed=args.seed, encoding=args.encoding,
                          normalize=args.normalize, readout=args.readout, batch_slices=args.batch_slices, empty=args.empty)
    progress = args.progress if args.progress is not None else True
    grid = {}
    if args.sweep_T:
        grid["T"] = [int(v) for v in _parse_floats(args.sweep_T, "--sweep-T")]
    if args.sweep_profile:
        grid["profile"] = [get_profile(p.strip()).name for p in args.sweep_profile.split(",") if p.strip()]
    if args.sweep_backend:
        grid["backend"] = [b.strip() for b in args.sweep_backend.split(",") if b.strip()]
    if grid or args.sweep_cutoff:
        from .segment import sweep
        cut = _parse_floats(args.sweep_cutoff, "--sweep-cutoff") if args.sweep_cutoff else None
        res = sweep(args.model, args.input, args.output, args.label, opts, grid, cut, scheduler=args.scheduler,
                    workers=args.workers, progress=progress)
    else:
        res = segment(args.model, args.input, args.output, args.label, opts, scheduler=args.scheduler,
                      workers=args.workers, progress=progress)
    return EXIT_BAD_INPUT if res["failed"] else EXIT_OK


def _cmd_analyze(args):
    from .analysis import energy as energy_mod
    from .analysis.report import analyze, compare, write_report
    from .encoding import make_encoder
    from .io import load_model
    rdir = os.path.abspath(args.report)
    if os.path.exists(rdir) and not os.path.isdir(rdir) or not os.path.isdir(os.path.dirname(rdir)):
        from .errors import ValidationError
        raise ValidationError("--report", "a folder (created if missing) in an existing folder", args.report)
    g = load_model(args.model)
    x = _load_input(args.input, g, args.normalize)
    label = _load_label(args.label, g, x.shape[0]) if args.label else None
    em = energy_mod.get_energy_model(args.energy)
    if args.e_mac is not None or args.e_ac is not None:
        em = energy_mod.EnergyModel("custom", em.e_mac_pj if args.e_mac is None else args.e_mac,
                                    em.e_ac_pj if args.e_ac is None else args.e_ac)
    enc_name = args.encoding or g.metadata.get("encoding", "poisson")
    T = args.T if args.T is not None else 100
    profile = args.profile or g.metadata.get("profile", DEFAULT_PROFILE)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    ann = not args.no_ann
    if args.ann:
        if args.no_ann:
            from .errors import ValidationError
            raise ValidationError("--ann / --no-ann", "one of them", "both")
        ann = _load_ann(args.ann)
        from .analysis.conversion import match_layers
        match_layers(ann, g)  # before the simulation: the ANN must have the model's layers
    kw = dict(label=label, readout=args.readout, cutoff=args.cutoff, empty=args.empty, energy=em,
              convention=args.convention, ann=ann, progress=progress, threads=args.threads)
    if args.raster_layer is not None and args.raster_layer not in g.neurons:
        from .errors import UnknownNameError
        raise UnknownNameError("spiking layer (--raster-layer)", args.raster_layer, g.neurons)
    rep, tr = analyze(g, x, T, profile, args.backend, make_encoder(enc_name, seed=args.seed),
                      raster_layer=args.raster_layer, dtype=args.dtype, **kw)
    comparison = None
    if args.against or args.against_profile or args.against_backend:
        g2 = load_model(args.against) if args.against else g
        p2 = args.against_profile or profile
        b2 = args.against_backend or args.backend
        rep2, _ = analyze(g2, x, T, p2, b2, make_encoder(enc_name, seed=args.seed), dtype=args.dtype, **kw)
        labels = (f"{g.name} ({profile}, {args.backend})", f"{g2.name} ({p2}, {b2})")
        comparison = compare(rep, rep2, labels)
    jpath, hpath = write_report(rep, tr, args.report, comparison)
    _print_summary(rep)
    print(f"report: {hpath} (plots) and {jpath} (numbers, units and definitions)")
    return EXIT_OK


def _shape_arg(text, option):
    if text is None:
        return None
    from .errors import ValidationError
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValidationError(option, "comma-separated positive integers such as 1,64,48", text) from None
    if not shape or any(v < 1 for v in shape):
        raise ValidationError(option, "comma-separated positive integers such as 1,64,48", text)
    return shape


def _cmd_convert(args):
    import json
    from ._files import atomic_path, check_output
    from .convert import normalize, threshold_balance
    from .convert.report import conversion_report, format_report
    from .errors import ValidationError
    from .io import save_model
    check_output(args.output, "-o/--output", (args.ann, args.calib))
    if args.report:
        check_output(args.report, "--report", (args.ann, args.calib, args.output))
    lo_hi = _parse_floats(args.slope_range, "--slope-range")
    if len(lo_hi) != 2 or not 0 <= lo_hi[0] < lo_hi[1]:
        raise ValidationError("--slope-range", "LO,HI with 0 <= LO < HI", args.slope_range)
    if not 0 < args.percentile <= 100:
        raise ValidationError("--percentile", "a percentile in (0, 100]", args.percentile)
    if not args.scale > 0:
        raise ValidationError("--scale", "a positive factor", args.scale)
    ann = _load_ann(args.ann, _shape_arg(args.input_shape, "--input-shape"))
    x = _load_input(args.calib, ann, "unit")
    want = tuple(ann.shapes[ann.inputs[0]])
    if x.ndim < 2 or tuple(x.shape[1:]) != want or x.dtype.kind not in "biuf" or not np.all(np.isfinite(x)):
        raise ValidationError(f"--calib {args.calib}", f"a finite array (B, {', '.join(map(str, want))})",
                              f"shape {x.shape}, dtype {x.dtype}")
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    profile = args.profile or DEFAULT_PROFILE
    base = ann
    meta = dict(ann.metadata, profile=profile, encoding=args.encoding or ann.metadata.get("encoding", "poisson"))
    from .graph import Graph
    base = Graph([ann[n] for n in ann.order], name=ann.name, metadata=meta)
    from .encoding import make_encoder
    t0 = time.perf_counter()
    print(f"ANN {ann.name}: {len(ann.neurons)} ReLU layers; calibration {x.shape[0]} samples; method {args.method}",
          flush=True)
    if args.method == "balance":
        snn = threshold_balance(base, x, T=args.T, scale=args.scale, profile=profile, backend=args.backend,
                                encoder=make_encoder(meta["encoding"], seed=args.seed), batch=args.batch,
                                progress=progress, echo=print)
    else:
        snn = normalize(base, x, method=args.method, percentile=args.percentile, percentile_of=args.percentile_of,
                        compat_offbyone=args.compat_offbyone)
    save_model(snn, args.output)
    print(f"converted in {time.perf_counter() - t0:.1f} s; spiking model written to {args.output}")
    rep = conversion_report(ann, snn, x, T=args.T, profile=profile, backend=args.backend, seed=args.seed,
                            batch=args.batch, percentile=args.percentile if args.method != "balance" else 99.9,
                            min_correlation=args.min_correlation, slope_range=tuple(lo_hi), progress=progress)
    print(format_report(rep))
    if args.report:
        with atomic_path(args.report, ".json") as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(rep, fh, indent=1)
        print(f"report written to {args.report}")
    return EXIT_OK


def _cmd_import(args):
    from ._files import check_output
    from .errors import ValidationError
    from .io import save_model
    check_output(args.output, "-o/--output", (args.file,))
    low = args.file.lower()
    if low.endswith(".onnx"):
        from .io.onnx import load_onnx
        g = load_onnx(args.file, input_shape=_shape_arg(args.input_shape, "--input-shape"))
    elif low.endswith(".nir"):
        from .io.nir import load_nir
        g = load_nir(args.file, dt=args.dt, discretisation=args.discretisation,
                     input_shape=_shape_arg(args.input_shape, "--input-shape"))
    else:
        raise ValidationError("FILE", "an .onnx or .nir file", args.file)
    save_model(g, args.output)
    types = {}
    for n in g.order:
        types[g[n].TYPE] = types.get(g[n].TYPE, 0) + 1
    print(f"imported {args.file}: " + ", ".join(f"{v} {k}" for k, v in types.items()))
    for key in ("folded_batchnorm", "ann_head", "nir_discretisation", "nir_notes"):
        if g.metadata.get(key):
            print(f"  {key}: {g.metadata[key]}")
    print(f"model written to {args.output} (refsim info {args.output} describes it)")
    return EXIT_OK


def _cmd_export(args):
    from ._files import check_output
    from .io import load_model
    from .io.nir import save_nir
    check_output(args.output, "-o/--output", (args.model,))
    g = load_model(args.model)
    save_nir(g, args.output, dt=args.dt)
    print(f"NIR graph of {g.name} written to {args.output}")
    return EXIT_OK


def _load_ann(path, input_shape=None):
    """An ANN graph from an ONNX file (imported) or a refsim model file."""
    if path.lower().endswith(".onnx"):
        from .io.onnx import load_onnx
        return load_onnx(path, input_shape=input_shape)
    from .io import load_model
    return load_model(path)


def _print_summary(rep, dice=True):
    rows = [("layer", "rate/step", "silent %", "spikes")]
    for n, v in rep["layers"].items():
        rows.append((n, f"{v['rate']:.4f}", f"{100 * v.get('silent_fraction', float('nan')):.1f}", str(v["spikes"])))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
    e = rep["energy"]
    print(f"synaptic operations: {e['acs']} ACs, {e['macs']} MACs -> {e['snn_energy_j']:.3g} J ({e['preset']}, "
          f"{e['convention']}); the ANN with the same graph: {e['ann_macs']} MACs -> {e['ann_energy_j']:.3g} J")
    if "accuracy" in rep and dice:
        a = rep["accuracy"]
        print(f"Dice {a['dice']:.4f} (all slices), mean slice Dice {a['slice_dice_mean']:.4f}")
    if "conversion" in rep:
        print(f"first layer below the ANN-vs-SNN bound: {rep['conversion']['first_below_bound'] or 'none'}")
    print(DEFINITIONS_TEXT)


DEFINITIONS_TEXT = ("rate/step: spikes per neuron per step (averaged over neurons, samples and steps); active %: "
                    "neurons that fired at least once; silent %: neurons that never fired.")


_COMMANDS = {"convert": _cmd_convert, "import": _cmd_import, "export": _cmd_export, "segment": _cmd_segment, "analyze": _cmd_analyze, "bench": _cmd_bench, "check": _cmd_check, "fingerprint": _cmd_fingerprint, "golden": _cmd_golden, "run": _cmd_run, "info": _cmd_info, "probe": _cmd_probe, "demo": _cmd_demo, "profiles": _cmd_profiles}


def main(argv=None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code or 0)
    try:
        return _COMMANDS[args.command](args)
    except RefsimError as exc:
        print(f"refsim {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:  # console_scripts
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into a pager or `head` that closed early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception:  # a bug: show it, with its own exit code
        import traceback
        traceback.print_exc()
        print("refsim: internal error (exit 3); please report it with the traceback above", file=sys.stderr)
        code = EXIT_INTERNAL
    sys.exit(code)


if __name__ == "__main__":
    entry()
