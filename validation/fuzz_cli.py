"""Fuzzing every command-line option (issue 21): each case is one ``refsim`` command with its
positional arguments drawn from real files, wrong-kind files and bad paths, and 1-4 of its options
(read from the parser itself, so a new option is fuzzed without editing this file) set to values
from a pool of edge cases: NaN, inf, negatives, zero, huge and fractional numbers, empty strings,
lists with bad items, unknown names, paths that do not exist, folders, trailing slashes, the
command's own inputs as outputs, FIFOs, very long names. Runs in-process through ``cli.main`` with
a per-case alarm (a hang counts as an internal error) and an address-space limit.

A case counts as ``ok`` (exit 0 or 1), ``refused`` (exit 2), or ``internal`` (exit 3, any
exception escaping ``main``, or the alarm). Step counts are kept small (a ``--T`` is always given,
at most 4) so a case that is accepted runs in milliseconds.

    python -m validation.fuzz_cli --cases 20000     # results into validation/fuzz_results.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

from refsim import cli, models
from refsim.io import save_model
from refsim.semantics import list_profiles
from refsim.simulator import Recorder, Simulator
from validation._fuzzing import limit_address_space, parser, save_results

#: commands fuzzed (bench is a long measurement, not an input-handling path)
COMMANDS = ("run", "info", "probe", "profiles", "check", "fingerprint", "golden", "analyze", "segment", "convert",
            "import", "export", "demo")
NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1", "2", "0.5", "1e308", "-1e-300", "99999999999999999999", "1.5",
           "abc", "", " ", "3,", ",", "1,2", "1,nan", "0x10", "1_0", "--T"]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("no answer within the case's time limit")


def _stamp(files):
    """(path, size, mtime) of every fixture that exists: changes when a case writes over one."""
    out = []
    for p in files.values():
        try:
            st = os.stat(p)
            out.append((p, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append((p, None))
    return out


def fixtures(d):
    """Real and wrong-kind files the positional arguments and path options are drawn from."""
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 3), seed=0)
    model = os.path.join(d, "m.safetensors")
    save_model(g, model)
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    np.save(os.path.join(d, "x.npy"), x)
    np.savez(os.path.join(d, "x.npz"), x=x)
    np.save(os.path.join(d, "labels.npy"), (x[:, 0] > 0.5).astype(np.uint8))
    np.save(os.path.join(d, "classes.npy"), np.array([0, 1]))
    tr = Simulator(g).run(x, 3, recorder=Recorder(spikes=True, inputs=True))
    tr.save(os.path.join(d, "t.npz"))
    vol = np.random.default_rng(1).random((3, 8, 8)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), os.path.join(d, "v.nii.gz"))
    nib.save(nib.Nifti1Image((vol > 0.5).astype(np.uint8), np.eye(4)), os.path.join(d, "v_label.nii.gz"))
    # arrays a user may hand over by mistake: the loaders and the input checks must refuse them cleanly
    bad = {"nan.npy": np.full((2, 1, 8, 8), np.nan), "inf.npy": np.full((2, 1, 8, 8), np.inf),
           "int.npy": np.ones((2, 1, 8, 8), np.int64), "bool.npy": np.ones((2, 1, 8, 8), bool),
           "shape.npy": np.ones((2, 3, 5)), "zero.npy": np.zeros((0, 1, 8, 8)), "scalar.npy": np.float64(3.0),
           "huge.npy": np.full((2, 1, 8, 8), 1e300), "complex.npy": np.ones((2, 1, 8, 8), complex),
           "object.npy": np.array([{"a": 1}, None], dtype=object), "labels_bad.npy": np.full((2,), 99)}
    for name, arr in bad.items():
        np.save(os.path.join(d, name), arr, allow_pickle=True)
    with open(os.path.join(d, "text.npy"), "w") as fh:
        fh.write("not an array\n")
    open(os.path.join(d, "empty.npy"), "wb").close()
    with open(os.path.join(d, "bad.onnx"), "wb") as fh:
        fh.write(b"\x08\x07junk")
    os.makedirs(os.path.join(d, "folder"), exist_ok=True)
    fifo = os.path.join(d, "fifo")
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    probes = os.path.join(d, "probes.npy")
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["fingerprint", "--write-probes", probes])
    files = {k: os.path.join(d, v) for k, v in {
        "model": "m.safetensors", "npy": "x.npy", "npz": "x.npz", "labels": "labels.npy", "classes": "classes.npy",
        "traces": "t.npz", "nifti": "v.nii.gz", "nifti_label": "v_label.nii.gz", "text": "text.npy",
        "empty": "empty.npy", "onnx": "bad.onnx", "folder": "folder", "fifo": "fifo", "probes": "probes.npy",
        **{k[:-4]: k for k in bad}}.items()}
    files["missing"] = os.path.join(d, "nope", "x.npy")
    files["long"] = os.path.join(d, "a" * 300 + ".npz")
    files["slash"] = os.path.join(d, "newdir") + "/"
    return files


def _paths(files, out_dir, rng):
    new = os.path.join(out_dir, f"o{rng.randrange(10 ** 6)}")
    return [files[k] for k in files] + [new, new + ".npz", new + ".safetensors", new + ".nir", new + ".json",
                                        new + ".nii.gz", new + ".onnx"]


def _positionals(cmd, files, rng, out_dir):
    f = files
    pick = lambda *keys: f[rng.choice(keys)] if rng.random() < 0.8 else rng.choice(_paths(f, out_dir, rng))  # noqa: E731
    arrays = ("npy", "npz", "nifti", "nan", "inf", "int", "bool", "shape", "zero", "scalar", "huge", "complex",
              "object")
    return {"run": lambda: [pick("model"), pick(*arrays)],
            "info": lambda: [pick("model")],
            "check": lambda: [pick("model"), pick("traces")],
            "fingerprint": lambda: [pick("probes")] if rng.random() < 0.6 else [],
            "golden": lambda: [rng.choice(["verify", "init", "regen", "bogus"]), rng.choice([out_dir, f["folder"],
                                                                                            f["missing"]])],
            "analyze": lambda: [pick("model"), pick(*arrays)],
            "segment": lambda: [pick("model"), pick("nifti")],
            "convert": lambda: [pick("model", "onnx")],
            "import": lambda: [pick("onnx", "model")],
            "export": lambda: [pick("model")]}.get(cmd, lambda: [])()


def _option_value(action, files, rng, out_dir):
    dest = action.dest
    if action.nargs == 0:
        return []
    if action.choices is not None and rng.random() < 0.7:
        return [str(rng.choice(list(action.choices)))]
    if dest in ("out", "output", "json", "report", "write_probes", "out_dir", "label", "calib", "against", "ann",
                "model", "inputs", "spikes", "directory"):
        return [rng.choice(_paths(files, out_dir, rng))]
    if rng.random() < 0.5:  # a plausible value, so that cases get past one option to the next
        if dest.endswith("profile"):
            return [rng.choice(list_profiles())]
        if dest.startswith("sweep"):
            return [rng.choice(["2,3", "1", "paper,norse", "event,reference", "0.3,0.5"])]
        if action.type is float:
            return [rng.choice(["0.5", "0.25", "1.5", "0.9"])]
        if action.type is not None and action.type is not str:
            return [str(rng.randint(1, 4))]
    if action.nargs in ("*", "+"):
        return [rng.choice(["enc1a_if", "nope", "\ud800x", "out"]) for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.3:
        return [rng.choice(["x", "paper", "event", "tcp://127.0.0.1:1", "bogus", "1,2,3", "0,1,2"])]
    return [rng.choice(NUMBERS)]


def subcommands():
    """``{command: its argparse parser}`` of refsim's command line."""
    return next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def make_case(rng, files, out_dir, subparsers):
    cmd = rng.choices(COMMANDS, weights=[0.05 if c == "demo" else 1.0 for c in COMMANDS])[0]
    sp = subparsers[cmd]
    argv = [cmd] + _positionals(cmd, files, rng, out_dir)
    opts = [a for a in sp._actions if a.option_strings and a.dest not in ("help", "T")]
    chosen = rng.sample(opts, min(len(opts), rng.randint(1, 4)))
    for a in chosen:
        argv += [rng.choice(a.option_strings)] + _option_value(a, files, rng, out_dir)
    for a in opts:  # required options get a plausible value most of the time, so cases reach the command
        if a.required and a not in chosen:
            if rng.random() < 0.8:
                value = {"calib": files["npy"], "report": os.path.join(out_dir, "report"),
                         "output": os.path.join(out_dir, "out" + {"convert": ".safetensors", "import": ".safetensors",
                                                                  "export": ".nir"}.get(cmd, ""))}.get(a.dest)
                value = [value] if value else _option_value(a, files, rng, out_dir)
            else:
                value = _option_value(a, files, rng, out_dir)
            argv += [a.option_strings[-1]] + value
    if any(a.dest == "T" for a in sp._actions):
        argv += ["--T", str(rng.randint(1, 4))]
    if any(a.dest == "progress" for a in sp._actions):
        argv += ["--no-progress"]
    if cmd in ("segment", "analyze", "run", "demo", "convert") and "--backend" not in argv:
        argv += ["--backend", "event"]
    return argv


def fuzz(cases, seed=0, echo=print, limit_gib=10, seconds=30):
    limit_address_space(limit_gib)
    d = tempfile.mkdtemp()
    files = fixtures(d)
    stamp = _stamp(files)
    subparsers = subcommands()
    rng = random.Random(seed)
    c = {"cases": 0, "ok": 0, "refused": 0, "internal_errors": 0, "hangs": 0, "per_command": {}, "examples": []}
    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.time()
    for i in range(cases):
        out_dir = tempfile.mkdtemp(dir=d)
        argv = make_case(rng, files, out_dir, subparsers)
        c["cases"] += 1
        per = c["per_command"].setdefault(argv[0], {"cases": 0, "ok": 0, "refused": 0, "internal": 0, "seconds": 0.0})
        per["cases"] += 1
        t_case = time.time()
        signal.alarm(seconds)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                rc = cli.main(argv)
            outcome = {0: "ok", 1: "ok", 2: "refused"}.get(rc, "internal")
            err = f"exit {rc}"
        except Hang as exc:
            outcome, err = "internal", f"hang: {exc}"
            c["hangs"] += 1
        except BaseException as exc:  # noqa: BLE001 -- what this harness counts
            outcome, err = "internal", f"{type(exc).__name__}: {str(exc)[:160]}"
        finally:
            signal.alarm(0)
            per["seconds"] = round(per["seconds"] + time.time() - t_case, 2)
        if _stamp(files) != stamp:  # a case wrote over a fixture (an output named like another command's input)
            fresh = tempfile.mkdtemp(dir=d)
            files = fixtures(fresh)
            stamp = _stamp(files)
            c["fixtures_rebuilt"] = c.get("fixtures_rebuilt", 0) + 1
        if outcome == "internal":
            c["internal_errors"] += 1
            per["internal"] += 1
            if len(c["examples"]) < 20:
                c["examples"].append({"argv": [a.replace(d, "D") for a in argv], "error": err})
        else:
            c[outcome] += 1
            per[outcome] += 1
        if echo and (i + 1) % 1000 == 0:
            echo(f"  {i + 1} cases: {c['ok']} ok, {c['refused']} refused, {c['internal_errors']} internal")
    c["seconds"] = round(time.time() - t0, 1)
    return c


def main(argv=None):
    args = parser("fuzz every refsim command-line option (issue 21)", "command lines").parse_args(argv)
    c = fuzz(args.cases, args.seed)
    print("cli", {k: v for k, v in c.items() if k not in ("examples", "per_command")})
    for k, v in sorted(c["per_command"].items()):
        print(f"   {k:12s} {v}")
    for e in c["examples"]:
        print("  ", e)
    if not args.no_write:
        save_results({"cli": c})
    return 0 if c["internal_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
