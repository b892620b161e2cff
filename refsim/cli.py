"""The ``refsim`` command: each subcommand parses its options and prints what library code returns.

Exit codes:

* 0 - success (``golden verify``: every case passes; ``check``: conforms);
* 1 - a check failed (``check`` diverges, ``golden verify`` differs, ``fingerprint`` matches nothing);
* 2 - bad command line or invalid input (model file, input file, parameters): the message says
  what was expected, what was found and where;
* 3 - an unexpected internal error (a bug: please report it with the traceback printed).

Run settings (profile, backend, threads, dtype, encoding, seed, normalisation, readout, axis) are
resolved once by :class:`refsim.config.RunConfig`: the option, then the model's metadata, then the
default written there; option choices are the library's own lists.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

from . import _cli_options as opt
from . import bench
from ._files import atomic_path, check_output, check_output_dir, write_json
from ._version import __version__
from .analysis import energy
from .analysis.energy import CONVENTIONS, PRESETS
from .analysis.report import DEFINITIONS_TEXT, analyze_config, format_summary, write_report
from .backends import BACKENDS
from .conformance import fingerprint as fpm
from .conformance import golden, load_traces
from .conformance.check import check, format_report as format_check_report
from .conformance.golden import ACTIONS as GOLDEN_ACTIONS
from .convert import CONVERSION_METHODS, CONVERSION_NEURONS, convert_ann
from .convert.balance import BALANCE_ORDERS
from .convert.normalize import PERCENTILE_OF
from .convert.report import format_report as format_conversion_report
from .data import DEMO_VOLUMES
from .demo import run_demo
from .errors import RefsimError, ValidationError
from .io import import_file, import_summary, load_any_model, load_model, save_model
from .io.inputs import load_input, load_labels
from .io.nir import DISCRETISATIONS, save_nir
from .neurons.probe import probe_text
from .segment import SegmentOptions, segment, sweep, sweep_grid
from .semantics import DEFAULT_PROFILE, MODEL_NAMES, format_profiles, list_profiles, profile_for
from .simulator import Recorder
from .traces import check_trace_output

EXIT_OK, EXIT_FAILED_CHECK, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refsim", description="Reference simulator for spiking neural networks.",
                                epilog="exit codes: 0 ok, 1 a check failed, 2 bad input or usage, 3 internal error")
    p.add_argument("--version", action="version", version=f"refsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name, help_, description=None):
        return sub.add_parser(name, help=help_, description=description or help_[0].upper() + help_[1:] + ".")

    model_help, input_help = "refsim model file (.safetensors)", ".npy / .npz array (B, *input shape) or a NIfTI volume"
    r = cmd("run", "simulate a model file on an input")
    r.add_argument("model", help=model_help)
    r.add_argument("input", help=input_help)
    opt.add_settings(r, 100)
    opt.add_encoding(r)
    r.add_argument("--out", default=None, metavar="PATH",
                   help="write the traces here: a name ending in .npz is one compressed file (kept in memory until "
                        "the end); any other name is a trace folder, streamed while the run goes (docs/traces.md)")
    r.add_argument("--record-spikes", nargs="*", default=None, metavar="LAYER",
                   help="keep per-step spikes of these layers (no names: all)")
    r.add_argument("--record-membranes", nargs="*", default=None, metavar="LAYER",
                   help="keep per-step membranes of these layers (no names: all)")
    r.add_argument("--record-inputs", action="store_true", help="keep the encoded input of every step (for refsim check)")
    r.add_argument("--record-output", action="store_true",
                   help="keep the output membrane of every step (the final one is always kept)")

    i = cmd("info", "describe a model file: layers, shapes, parameters, metadata, the profile's choices")
    i.add_argument("model", help=model_help)
    i.add_argument("--profile", default=None, help="show the choices of this profile (default: the model's)")

    pr = cmd("probe", "print one neuron's spike train for a constant input",
             "One neuron, threshold --threshold, constant input; one character per step: the spikes of that step "
             "(0-9, then a-z; '-' for a negative ternary spike). Multithreshold: one bit per level per step (highest "
             "first, '.' when none fired) and the value sent on each step.")
    pr.add_argument("--profile", default=DEFAULT_PROFILE, help=f"semantic profile (default {DEFAULT_PROFILE}); one of "
                                                               f"{opt.names(list_profiles())}")
    pr.add_argument("--input", type=str, default="0.5", help="input per step; a comma list is cycled (default 0.5)")
    pr.add_argument("--T", type=opt.positive_int, default=8, help="time steps (default 8)")
    pr.add_argument("--threshold", type=float, default=1.0, help="threshold (multithreshold: the levels' scale; default 1)")
    pr.add_argument("--model", default="if", choices=MODEL_NAMES, help="neuron model (default if)")
    pr.add_argument("--levels", type=str, default=None, help="multithreshold levels, comma separated")
    pr.add_argument("--membrane", action="store_true", help="also print the membrane after each step")

    d = cmd("demo", "segment a shipped MRI volume with the shipped trained spiking U-Net: Dice, per-layer rates, a "
                    "mask and an analysis report",
            "Segments a shipped held-out MSD hippocampus volume (CC BY-SA 4.0) with the shipped spiking U-Net "
            "(validation/hippocampus) as refsim segment does; prints Dice and per-layer rates, writes the mask "
            "(NIfTI, on the volume's grid) and report.html / report.json into --out-dir.")
    opt.add_settings(d, 200)
    d.add_argument("--volume", type=int, default=1, choices=range(1, len(DEMO_VOLUMES) + 1),
                   help="which shipped volume (default 1)")
    d.add_argument("--out-dir", default="refsim-demo", help="folder for the mask and the report (default ./refsim-demo)")
    d.add_argument("--out", default=None, metavar="NPZ", help="also write the run's traces (.npz)")

    pf = cmd("profiles", "list the profiles and the choices each makes for one neuron model")
    pf.add_argument("--model", default="if", choices=MODEL_NAMES, help="whose choices to show (default if)")

    ck = cmd("check", "compare recorded traces with the equations, layer by layer (teacher-forced or free-running)",
             "Exit 0: conforms (rounding ties allowed and reported); 1: diverges; 2: bad input.")
    ck.add_argument("model", help="refsim model file (.safetensors) the traces belong to")
    ck.add_argument("traces", help="trace file (.npz) or folder with the spikes of every spiking layer and the inputs")
    ck.add_argument("--profile", default=None, help="profile to check against (default: the traces', else the model's)")
    ck.add_argument("--json", default=None, help="also write the report as JSON here")
    ck.add_argument("--no-explain", action="store_true", help="skip the search for the choice that explains a divergence")
    ck.add_argument("--free-running", action="store_true",
                    help="drive every layer with refsim's own spikes (only the input train is replayed; rounding ties "
                         "re-synchronised) and report the first real divergence, instead of teacher forcing")
    opt.add_progress(ck)

    fp = cmd("fingerprint", "say which semantic choices an implementation makes, from the tie probes",
             "Reads a (T, N) spike array (.npy) recorded for the probes of --write-probes, or --profile NAME.")
    fp.add_argument("spikes", nargs="?", default=None, help=".npy (steps, probes): your neuron's spikes for the probes")
    fp.add_argument("--profile", default=None, help="fingerprint a refsim profile instead (a self-check)")
    fp.add_argument("--write-probes", default=None, metavar="NPY", help="write the probe inputs (T, N) here and exit")

    gd = cmd("golden", "make, verify or regenerate golden cases: a model, inputs and the traces they must give",
             "init: make a case of your own model (--model, --inputs); verify: run every case and compare (exit 1 "
             "on a difference); regen: recompute refsim-made cases (values that would move need --force).")
    gd.add_argument("action", choices=GOLDEN_ACTIONS, help=" / ".join(GOLDEN_ACTIONS))
    gd.add_argument("directory", nargs="?", default="golden", help="folder of cases (default ./golden)")
    gd.add_argument("--backend", default="reference", choices=BACKENDS, help="verify only (default reference)")
    gd.add_argument("--force", action="store_true", help="regen: rewrite expected files whose values move")
    gd.add_argument("--model", default=None, help="init: the model file of the new case")
    gd.add_argument("--inputs", default=None, help="init: .npy/.npz inputs (B, *input shape) of the new case")
    gd.add_argument("--T", type=opt.positive_int, default=100, help="init: time steps (default 100)")
    gd.add_argument("--profile", default=None, help="init: profile (default: the model's)")
    gd.add_argument("--name", default=None, help="init: the case's folder name (default: the model's name)")

    an = cmd("analyze", "what a model did and what it cost: rates, synaptic operations, energy, accuracy; "
                        "report.json and a self-contained report.html with plots")
    an.add_argument("model", help=model_help)
    an.add_argument("input", help=input_help)
    opt.add_settings(an, 100)
    opt.add_encoding(an)
    an.add_argument("--report", required=True, metavar="DIR", help="folder for report.json and report.html (created)")
    an.add_argument("--label", default=None, help="labels: a NIfTI volume matching a NIfTI input, masks (B, H, W), or "
                                                  "class indices (B,) for a classifier (accuracy)")
    opt.add_evaluation(an)
    an.add_argument("--energy", default="fp32", choices=tuple(PRESETS), help="energy per operation preset, 45 nm "
                                                                            "(default fp32)")
    an.add_argument("--e-mac", type=float, default=None, help="energy of a MAC in pJ (overrides --energy)")
    an.add_argument("--e-ac", type=float, default=None, help="energy of an AC in pJ (overrides --energy)")
    an.add_argument("--convention", default="synops", choices=CONVENTIONS,
                    help="ACs as counted synaptic operations (default), or Li et al. Table 5's raw spike count")
    an.add_argument("--raster-layer", default=None, metavar="LAYER", help="layer whose spike raster is plotted")
    an.add_argument("--no-ann", action="store_true", help="skip the ANN-vs-SNN rate comparison")
    an.add_argument("--ann", default=None, metavar="ANN", help="the trained ANN the model came from (.onnx or a refsim "
                                                               "model): its activations (and accuracy) against the SNN")
    an.add_argument("--against", default=None, metavar="MODEL", help="a second model run on the same inputs, side by side")
    an.add_argument("--against-profile", default=None, help="the second run's profile (default: the first run's)")
    an.add_argument("--against-backend", default=None, choices=BACKENDS, help="the second run's backend")

    sg = cmd("segment", "segment NIfTI volumes (a file or a folder): masks on each volume's own grid, Dice",
             "INPUT: a NIfTI file or a folder (nnU-Net naming CASE_0000.nii.gz accepted; output CASE.nii.gz). Exit 0 "
             "when every volume was segmented, 2 when any failed (the others still finish).")
    sg.add_argument("model", help=model_help)
    sg.add_argument("input", help="a NIfTI volume (.nii, .nii.gz) or a folder of them")
    sg.add_argument("-o", "--output", required=True, help="output folder (created), or a .nii.gz path for one volume")
    sg.add_argument("--label", default=None, help="a label volume, or a folder of them matched by case name")
    opt.add_settings(sg, 200)
    opt.add_encoding(sg)
    sg.add_argument("--prob", action="store_true", help="also write CASE_prob.nii.gz, the foreground probability")
    opt.add_evaluation(sg)
    sg.add_argument("--batch-slices", type=opt.positive_int, default=16, help="slices simulated together (default 16)")
    sg.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask cluster (tcp://host:8786)")
    sg.add_argument("--workers", type=opt.positive_int, default=None, help="a local Dask cluster of N processes")
    sg.add_argument("--sweep-T", default=None, metavar="T1,T2,..", help="evaluation sweep over steps (with --label)")
    sg.add_argument("--sweep-profile", default=None, metavar="P1,P2,..", help="evaluation sweep: these profiles")
    sg.add_argument("--sweep-backend", default=None, metavar="B1,B2,..", help="evaluation sweep: these backends")
    sg.add_argument("--sweep-cutoff", default=None, metavar="C1,C2,..", help="evaluation sweep: these cut-offs")

    cv = cmd("convert", "convert a trained ANN (ONNX, or a refsim model) into a spiking network, with a per-layer "
                        "report of where conversion loses accuracy")
    cv.add_argument("ann", help="the trained ANN: an .onnx file (torch.onnx.export) or a refsim model file")
    cv.add_argument("--calib", required=True, help="calibration inputs: .npy/.npz array or a NIfTI volume")
    cv.add_argument("--method", default="balance", choices=CONVERSION_METHODS,
                    help="threshold balancing (Yue's conversion; default), layer-wise (Li eq. 7) or connection-wise "
                         "(Li eq. 8) normalisation")
    opt.add_output(cv, "spiking model file", " (.safetensors)")
    opt.add_settings(cv, 200, backend=False)
    opt.add_encoding(cv)
    cv.add_argument("--backend", default=None, choices=BACKENDS, help="backend of the simulations (default event)")
    cv.add_argument("--scale", type=float, default=0.7, help="balancing: threshold = scale x max input current (0.7)")
    cv.add_argument("--balance-order", default="rathi", choices=BALANCE_ORDERS,
                    help="balancing: rathi (default; earlier layers unscaled while later ones are calibrated, the scale "
                         "applied once at the end, as Rathi et al.'s code) or scaled-as-it-goes (refsim before 0.2)")
    cv.add_argument("--percentile", type=float, default=99.9, help="normalisations: lambda percentile (default 99.9)")
    cv.add_argument("--percentile-of", default="all", choices=PERCENTILE_OF,
                    help="normalisations: percentile over all activations (default) or the non-zero ones")
    cv.add_argument("--compat-offbyone", action="store_true", help="connection-wise: the Spiking-UNet code's off-by-one")
    cv.add_argument("--neuron", default="if", choices=CONVERSION_NEURONS,
                    help="the converted layers' neuron: if (default), multithreshold (Li et al.) or ternary")
    cv.add_argument("--neuron-levels", default=None, metavar="L1,L2,..",
                    help="multithreshold levels, high to low (default 2,1,0.5,0.25)")
    cv.add_argument("--input-shape", default=None, metavar="C,H,W", help="per-sample input shape, if the ONNX leaves it")
    cv.add_argument("--batch", type=opt.positive_int, default=16, help="calibration samples simulated together (16)")
    cv.add_argument("--report", default=None, metavar="JSON", help="also write the per-layer report as JSON here")
    cv.add_argument("--min-correlation", type=float, default=0.9, help="bound on the rate-activation correlation (0.9)")
    cv.add_argument("--slope-range", default="0.8,1.25", metavar="LO,HI", help="bounds on the slope (default 0.8,1.25)")

    im = cmd("import", "import an ONNX ANN or a NIR graph as a refsim model file")
    im.add_argument("file", help="an .onnx or .nir file")
    opt.add_output(im, "refsim model file", " (.safetensors)")
    im.add_argument("--input-shape", default=None, metavar="C,H,W", help="per-sample input shape, if the file leaves it")
    im.add_argument("--dt", type=float, default=None, help="NIR: the time step (default: the graph's, else 1e-4 s)")
    im.add_argument("--discretisation", default="euler", choices=DISCRETISATIONS,
                    help="NIR: forward Euler (NIR's reference; default) or the exact exponential decay")

    ex = cmd("export", "export a refsim model as a NIR graph (refuses what NIR cannot express)")
    ex.add_argument("model", help=model_help)
    opt.add_output(ex, ".nir file")
    ex.add_argument("--dt", type=float, default=1e-4, help="the time step the NIR parameters are written for (1e-4 s)")

    bn = cmd("bench", "measure the event backend against dense NumPy, torch, SpikingJelly and snnTorch (no assertions)")
    bn.add_argument("--quick", action="store_true", help="fewer shapes and repetitions (about a minute)")
    bn.add_argument("--out-dir", default=None, help="write <quick|full>.json and .md here")
    return p


def _cmd_run(args):
    stream = bool(args.out) and check_trace_output(args.out, "--out", (args.model, args.input))
    g = load_model(args.model)
    cfg = opt.run_config(args, g)
    x, geo = load_input(args.input, g, cfg)
    if geo is not None:
        print(f"input {os.path.basename(args.input)}: {geo.describe()}", file=sys.stderr)
    rec = Recorder(spikes=opt.layers(args.record_spikes), membranes=opt.layers(args.record_membranes),
                   inputs=args.record_inputs, output=args.record_output, stream_to=args.out if stream else None)
    sim = cfg.simulator(g)
    t0 = time.perf_counter()
    tr = sim.run(x, args.T, encoder=cfg.encoder(), recorder=rec, progress=opt.want_progress(args))
    el = time.perf_counter() - t0
    print(f"model {g.name}: {len(g.neurons)} spiking layers, batch {tr.batch}, T={args.T}, profile {cfg.profile}, "
          f"encoder {cfg.encoding} (seed {cfg.seed}), backend {cfg.backend}: {el:.2f} s ({1e3 * el / args.T:.1f} ms/step)")
    print(tr.table())
    print(DEFINITIONS_TEXT)
    if args.out:
        if not stream:
            tr.save(args.out)
        print(f"traces written to {args.out}" + (" (a trace folder)" if stream else ""))
    return EXIT_OK


def _cmd_demo(args):
    run_demo(args.volume, args.T, args.out_dir, progress=opt.want_progress(args), traces_out=args.out, profile=args.profile,
             backend=args.backend, threads=args.threads, dtype=args.dtype, seed=args.seed)
    return EXIT_OK


def _cmd_info(args):
    g = load_model(args.model)
    print(f"model: {g.name}   file: {args.model}")
    print(g.describe(profile_for(g, args.profile)))
    return EXIT_OK


def _cmd_probe(args):
    levels = opt.parse_floats(args.levels, "--levels") if args.levels else None
    print(probe_text(args.profile, opt.parse_floats(args.input, "--input"), args.T, args.threshold, args.model, levels,
                     args.membrane))
    return EXIT_OK


def _cmd_profiles(args):
    others = "|".join(m for m in MODEL_NAMES if m != args.model)
    print(format_profiles(args.model), f"'refsim profiles --model {others}' shows the others; 'refsim info MODEL' "
          "shows those a model file runs with", sep="\n")
    return EXIT_OK


def _cmd_check(args):
    if args.json:
        check_output(args.json, "--json", (args.model, args.traces))
    g = load_model(args.model)
    tr = load_traces(args.traces)
    profile = profile_for(g, args.profile, tr.profile)
    rep = check(g, tr, profile, explain_divergences=not args.no_explain,
                mode="free-running" if args.free_running else "teacher-forced", progress=opt.want_progress(args))
    print(format_check_report(rep))
    if args.json:
        write_json(args.json, rep)
    return EXIT_OK if rep["conforms"] else EXIT_FAILED_CHECK


def _cmd_fingerprint(args):
    if args.write_probes:
        check_output(args.write_probes, "--write-probes", (args.spikes,) if args.spikes else ())
        with atomic_path(args.write_probes, ".npy") as tmp:
            np.save(tmp, fpm.probe_inputs())
        print(f"probe inputs {fpm.probe_inputs().shape} written to {args.write_probes}")
        return EXIT_OK
    rep = fpm.fingerprint_of(args.spikes or None, args.profile or None, ("SPIKES", "--profile"))
    print(fpm.format_fingerprint(rep))
    return EXIT_OK if rep["matching_choice_sets"] else EXIT_FAILED_CHECK


def _cmd_golden(args):
    if args.action == "init":
        golden.init(args.directory, args.model, args.inputs, T=args.T, profile=args.profile, name=args.name)
        return EXIT_OK
    if args.action == "regen":
        moved = golden.regen(args.directory, force=args.force)
        return EXIT_FAILED_CHECK if moved and not args.force else EXIT_OK
    res = golden.verify(args.directory, backend=args.backend)
    print(f"{len(res.passed)} passed, {len(res.failed)} failed")
    return EXIT_OK if res else EXIT_FAILED_CHECK


def _cmd_bench(args):
    bench.run(quick=args.quick, out_dir=args.out_dir)
    return EXIT_OK


def _cmd_segment(args):
    cfg = opt.run_config(args, load_model(args.model))
    opts = SegmentOptions(T=args.T, cutoff=args.cutoff, prob=args.prob, batch_slices=args.batch_slices,
                          empty=args.empty, **{k: v for k, v in cfg.as_dict().items()})
    progress = args.progress if args.progress is not None else True
    grid = sweep_grid(args.sweep_T, args.sweep_profile, args.sweep_backend)
    kw = dict(scheduler=args.scheduler, workers=args.workers, progress=progress)
    if grid or args.sweep_cutoff:
        cut = opt.parse_floats(args.sweep_cutoff, "--sweep-cutoff") if args.sweep_cutoff else None
        res = sweep(args.model, args.input, args.output, args.label, opts, grid, cut, **kw)
    else:
        res = segment(args.model, args.input, args.output, args.label, opts, **kw)
    return EXIT_BAD_INPUT if res["failed"] else EXIT_OK


def _cmd_analyze(args):
    check_output_dir(args.report, "--report")
    if args.ann and args.no_ann:
        raise ValidationError("--ann / --no-ann", "one of them", "both")
    g = load_model(args.model)
    cfg = opt.run_config(args, g)
    x, _ = load_input(args.input, g, cfg)
    label = load_labels(args.label, g, x.shape[0], cfg) if args.label else None
    ann = load_any_model(args.ann) if args.ann else not args.no_ann
    rep, tr, comparison = analyze_config(
        g, x, args.T, cfg, ann=ann, against=load_model(args.against) if args.against else None,
        against_profile=args.against_profile, against_backend=args.against_backend, raster_layer=args.raster_layer,
        label=label, cutoff=args.cutoff, empty=args.empty, energy=energy.get_energy_model(args.energy, args.e_mac,
        args.e_ac), convention=args.convention, progress=opt.want_progress(args))
    jpath, hpath = write_report(rep, tr, args.report, comparison)
    print(format_summary(rep))
    print(f"report: {hpath} (plots) and {jpath} (numbers, units and definitions)")
    return EXIT_OK


def _cmd_convert(args):
    check_output(args.output, "-o/--output", (args.ann, args.calib), suffix=".safetensors")
    if args.report:
        check_output(args.report, "--report", (args.ann, args.calib, args.output))
    lo_hi = opt.parse_floats(args.slope_range, "--slope-range")
    ann = load_any_model(args.ann, opt.parse_shape(args.input_shape, "--input-shape"))
    cfg = opt.run_config(args, ann)
    x, _ = load_input(args.calib, ann, cfg)
    print(f"ANN {ann.name}: {len(ann.neurons)} ReLU layers; calibration {x.shape[0]} samples; method {args.method}",
          flush=True)
    t0 = time.perf_counter()
    snn, rep = convert_ann(ann, x, args.method, cfg, T=args.T, scale=args.scale, order=args.balance_order,
                           percentile=args.percentile,
                           percentile_of=args.percentile_of, compat_offbyone=args.compat_offbyone, batch=args.batch,
                           min_correlation=args.min_correlation, slope_range=lo_hi, progress=opt.want_progress(args),
                           echo=print, where=f"--calib {args.calib}", neuron=args.neuron,
                           levels=opt.parse_floats(args.neuron_levels, "--neuron-levels") if args.neuron_levels else None)
    print(f"converted in {time.perf_counter() - t0:.1f} s")
    print(format_conversion_report(rep))
    save_model(snn, args.output)  # only now: nothing is written unless the whole command succeeds
    print(f"spiking model written to {args.output}")
    if args.report:
        write_json(args.report, rep)
        print(f"report written to {args.report}")
    return EXIT_OK


def _cmd_import(args):
    check_output(args.output, "-o/--output", (args.file,), suffix=".safetensors")
    g = import_file(args.file, input_shape=opt.parse_shape(args.input_shape, "--input-shape"), dt=args.dt,
                    discretisation=args.discretisation)
    save_model(g, args.output)
    print(import_summary(args.file, g))
    print(f"model written to {args.output} (refsim info {args.output} describes it)")
    return EXIT_OK


def _cmd_export(args):
    check_output(args.output, "-o/--output", (args.model,), suffix=".nir")
    g = load_model(args.model)
    save_nir(g, args.output, dt=args.dt)
    print(f"NIR graph of {g.name} written to {args.output}")
    return EXIT_OK


_COMMANDS = {"run": _cmd_run, "demo": _cmd_demo, "info": _cmd_info, "probe": _cmd_probe, "profiles": _cmd_profiles,
             "check": _cmd_check, "fingerprint": _cmd_fingerprint, "golden": _cmd_golden, "bench": _cmd_bench,
             "segment": _cmd_segment, "analyze": _cmd_analyze, "convert": _cmd_convert, "import": _cmd_import,
             "export": _cmd_export}


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
    for stream in (sys.stdout, sys.stderr):  # a name or value that cannot be encoded is escaped, never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into a pager or `head` that closed early
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception:  # a bug: show it, with its own exit code
        traceback.print_exc()
        print("refsim: internal error (exit 3); please report it with the traceback above", file=sys.stderr)
        code = EXIT_INTERNAL
    sys.exit(code)


if __name__ == "__main__":
    entry()
