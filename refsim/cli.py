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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refsim", description="Reference simulator for spiking neural networks.",
                                epilog="exit codes: 0 ok, 1 a check failed (golden verify), 2 bad input or usage, 3 internal error")
    p.add_argument("--version", action="version", version=f"refsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def common_run(sp):
        sp.add_argument("--T", type=int, default=None, help="time steps (run: 100, demo: 100)")
        sp.add_argument("--profile", default=None, help=f"semantic profile (default: the model's, else {DEFAULT_PROFILE}); "
                                                         f"one of {', '.join(list_profiles())}")
        sp.add_argument("--seed", type=int, default=0, help="encoder seed (default 0)")
        sp.add_argument("--out", default=None, help="write traces to this .npz")
        sp.add_argument("--backend", default="reference", choices=["reference", "event"],
                        help="reference (dense NumPy float64, the oracle) or event (Numba scatter over spikes; "
                             "same traces where sums are exact)")
        sp.add_argument("--threads", type=int, default=None,
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

    i = sub.add_parser("info", help="describe a model file")
    i.add_argument("model")
    i.add_argument("--profile", default=None, help="show the choices of this profile (default: the model's)")

    pr = sub.add_parser("probe", help="print one neuron's spike train for a constant input",
                        description="One neuron, threshold --threshold, constant input; one character per step: "
                                    "the spikes of that step (0-9, then a-z for 10-35; '-' for a negative ternary spike).")
    pr.add_argument("--profile", default=DEFAULT_PROFILE)
    pr.add_argument("--input", type=str, default="0.5", help="input per step; a comma list is cycled (default 0.5)")
    pr.add_argument("--T", type=int, default=8)
    pr.add_argument("--threshold", type=float, default=1.0)
    pr.add_argument("--model", default="if", choices=list(NEURON_MODELS))
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

    sub.add_parser("profiles", help="list the profiles and their choices")

    ck = sub.add_parser("check", help="compare recorded traces with the equations, layer by layer (teacher-forced or free-running)",
                        description="Exit 0: conforms (rounding ties allowed and reported); 1: diverges; 2: bad input.")
    ck.add_argument("model")
    ck.add_argument("traces", help="trace file with spikes of every spiking layer and inputs/<input> (docs/traces.md)")
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
    fp.add_argument("spikes", nargs="?", default=None, help=".npy of shape (steps, probes)")
    fp.add_argument("--profile", default=None, help="fingerprint a refsim profile instead (a self-check)")
    fp.add_argument("--write-probes", default=None, metavar="NPY", help="write the probe inputs (T, N) to this .npy and exit")

    gd = sub.add_parser("golden", help="verify (or explicitly regenerate) the golden cases")
    gd.add_argument("action", choices=["verify", "regen"])
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
    sg.add_argument("--T", type=int, default=200, help="time steps (default 200)")
    sg.add_argument("--cutoff", type=float, default=0.5, help="probability cut-off for the mask (default 0.5)")
    sg.add_argument("--backend", default="event", choices=["reference", "event"],
                    help="event (default; Numba, same bits as the reference in float64) or reference")
    sg.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="event backend arithmetic")
    sg.add_argument("--threads", type=int, default=None, help="Numba threads per run (default: Numba's; 1 per Dask worker)")
    sg.add_argument("--profile", default=None, help="semantic profile (default: the model's, else paper)")
    sg.add_argument("--seed", type=int, default=0, help="encoder seed (default 0; every slice draws from (seed, slice))")
    sg.add_argument("--encoding", default=None, choices=["poisson", "poisson-ternary", "static"],
                    help="input encoding (default: the model's, else poisson)")
    sg.add_argument("--normalize", default=None, choices=["unit", "zero-mean", "none"],
                    help="intensity normalisation over each volume (default: the model's, else by its encoding)")
    sg.add_argument("--readout", default=None, choices=["sigmoid-mean", "sigmoid", "argmax"],
                    help="output membrane to prediction (default: the model's, else sigmoid(v/T))")
    sg.add_argument("--batch-slices", type=int, default=16, help="slices simulated together (default 16)")
    sg.add_argument("--empty", default="one", choices=["one", "nan"],
                    help="Dice of an empty label (slice): 1 if the prediction is empty too, else 0; or nan (left out)")
    sg.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the volumes on an existing Dask cluster (tcp://host:8786; needs refsim[dask])")
    sg.add_argument("--workers", type=int, default=None, help="run the volumes on a local Dask cluster of N processes")
    sg.add_argument("--sweep-T", default=None, metavar="T1,T2,..",
                    help="evaluation sweep: these time steps (with --label; writes sweep.csv, no masks)")
    sg.add_argument("--sweep-profile", default=None, metavar="P1,P2,..", help="evaluation sweep: these profiles")
    sg.add_argument("--sweep-backend", default=None, metavar="B1,B2,..", help="evaluation sweep: these backends")
    sg.add_argument("--sweep-cutoff", default=None, metavar="C1,C2,..",
                    help="evaluation sweep: these cut-offs (default 0.1 to 0.6 by 0.05; from one run per setting)")
    sg.add_argument("--progress", dest="progress", action="store_true", default=None, help="per-volume progress on stderr")
    sg.add_argument("--no-progress", dest="progress", action="store_false", help="no progress lines")

    bn = sub.add_parser("bench", help="measure the event kernels against dense NumPy and torch (no assertions)")
    bn.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (under 2 minutes)")
    bn.add_argument("--out-dir", default=None, help="write <quick|full>.json and .md here")
    return p


def _load_input(path, graph, normalize):
    from .errors import EncodingError
    low = path.lower()
    name = graph.inputs[0]
    if low.endswith((".nii", ".nii.gz")):
        from .io.nifti import fit_slices, load_volume
        from .io.nifti import normalize as norm
        shape = graph.shapes[name]
        if len(shape) != 3 or shape[0] != 1:
            raise EncodingError(f"{path}: NIfTI input needs a model with a (1, H, W) input, found {shape}")
        x = fit_slices(load_volume(path), shape[1:])
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
                    inputs=bool(getattr(args, "record_inputs", False)), output=bool(getattr(args, "record_output", False)))


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
        tr.save(args.out)
        print(f"traces written to {args.out}", file=out)
    return tr


def _cmd_run(args):
    from ._files import check_output
    from .io import load_model
    if args.out:
        check_output(args.out, "--out", (args.model, args.input))
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
    from ._files import check_output
    if args.out:
        check_output(args.out, "--out")
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
    spikes, mems = probe(args.profile, inputs, args.T, args.threshold, args.model, levels)
    print(format_spikes(spikes))
    if args.membrane:
        print(" ".join(f"{v:.6g}" for v in mems))
    return EXIT_OK


def _cmd_profiles(args):
    fields = ["comparison", "order", "reset", "spikes_per_step", "v_min", "spike_value", "membrane_report"]
    rows = [["profile"] + fields]
    for name in list_profiles():
        c = get_profile(name).choices("if").as_dict()
        rows.append([name] + [str(c[f]) for f in fields])
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    print("\n(choices of the 'if' model; 'refsim info' shows the multithreshold and ternary ones)")
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
    if args.profile:
        obs = fpm.simulate_choices(get_profile(args.profile).choices("if"))
    elif args.spikes:
        obs = _load_array(args.spikes)
    else:
        raise ValidationError("refsim fingerprint", "a spikes .npy or --profile", "neither")
    print(fpm.format_fingerprint(fpm.fingerprint(obs)))
    return EXIT_OK


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
    kw = dict(label=label, readout=args.readout, cutoff=args.cutoff, empty=args.empty, energy=em,
              convention=args.convention, ann=not args.no_ann, progress=progress, threads=args.threads)
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


_COMMANDS = {"segment": _cmd_segment, "analyze": _cmd_analyze, "bench": _cmd_bench, "check": _cmd_check, "fingerprint": _cmd_fingerprint, "golden": _cmd_golden, "run": _cmd_run, "info": _cmd_info, "probe": _cmd_probe, "demo": _cmd_demo, "profiles": _cmd_profiles}


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
