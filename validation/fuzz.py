"""Fuzz refsim's inputs and count: cases, accepted, clean errors (refsim's own types) and internal
errors (anything else: must be 0).

* ``model``: model files with random byte mutations (flips weighted towards the JSON header,
  truncations, insertions); accepted files must also pass ``refsim info``;
* ``traces``: trace files (npz) mutated the same way, read by ``load_traces``;
* ``nifti``: NIfTI-1 files (8 in 10 flips in the 348-byte header; 3 in 10 gzipped), read by
  ``read_volume``;
* ``check``: valid traces with 1-3 structural defects (``refsim.testing.damage_traces``: wrong T or
  batch, entries dropped or renamed, axes swapped, shortened, other dtypes, NaN, out-of-range
  spikes, extra axes, scalars), given to ``check`` teacher-forced or free-running; a report
  (conforms or diverges) counts as accepted.

Run from the repository root: ``python validation/fuzz.py [--cases 100000]``; writes
validation/fuzz_results.json."""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import struct
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from refsim import cli, models, save_model  # noqa: E402
from refsim.errors import RefsimError  # noqa: E402
from refsim.io import load_model  # noqa: E402
from refsim.simulator import Recorder, Simulator  # noqa: E402
from refsim.traces import load_traces  # noqa: E402
from validation._fuzzing import save_results  # noqa: E402


def mutate(raw, rng, focus=None):
    b = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(("flip", "flip", "flip", "truncate", "insert"))
        if not b:
            break
        pos = rng.randrange(*focus) if focus and rng.random() < 0.7 and focus[1] <= len(b) else rng.randrange(len(b))
        if kind == "flip":
            b[pos] = rng.randrange(256)
        elif kind == "truncate":
            del b[pos:]
        else:
            b[pos:pos] = bytes([rng.randrange(256)])
    return bytes(b)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100000, help="cases per loader")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loaders", default="model,traces,nifti,check,onnx,nir",
                    help="comma list of model, traces, nifti, check, onnx, nir (the last two structure-aware: "
                         "validation/fuzz_onnx.py, validation/fuzz_nir.py)")
    args = ap.parse_args(argv)
    d = tempfile.mkdtemp()
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
    save_model(g, os.path.join(d, "b.safetensors"))
    raw = open(os.path.join(d, "b.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    Simulator(g).run(np.random.default_rng(0).random((1, 1, 8, 8)), 3,
                     recorder=Recorder(spikes=True, inputs=True)).save(os.path.join(d, "t.npz"))
    traw = open(os.path.join(d, "t.npz"), "rb").read()
    rng = random.Random(args.seed)
    out = {}
    import gzip
    import logging
    import nibabel as nib
    from refsim.conformance.check import check
    from refsim.io.nifti import read_volume
    from refsim.testing import TRACE_DAMAGES, damage_traces
    nib.imageglobals.logger.setLevel(logging.ERROR)  # its header-fix notes, thousands of them
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((6, 5, 4)).astype(np.float32), np.eye(4)),
             os.path.join(d, "b.nii"))
    nraw = open(os.path.join(d, "b.nii"), "rb").read()
    cg = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 3), seed=0)
    ctr = Simulator(cg).run(np.random.default_rng(0).random((2, 1, 8, 8)), 4, recorder=Recorder(spikes=True, inputs=True))
    for loader in args.loaders.split(","):
        c = {"cases": 0, "accepted": 0, "clean_errors": 0, "internal_errors": 0, "examples": []}
        t0 = time.time()
        for _ in range(args.cases):
            p = os.path.join(d, {"model": "m.safetensors", "traces": "m.npz", "nifti": "m.nii", "check": "-",
                                 "onnx": "m.onnx", "nir": "-"}[loader])
            if loader == "nifti" and rng.random() < 0.3:
                p += ".gz"
            if loader == "nir":
                from validation.fuzz_nir import case
                p = case(d, rng)
            elif loader == "onnx":
                import copy
                import onnx
                from validation.fuzz_onnx import base, mutate as mutate_onnx
                m = copy.deepcopy(base())
                for _ in range(rng.randint(1, 3)):
                    mutate_onnx(m, rng)
                onnx.save(m, p)
            elif loader != "check":
                data = {"model": lambda: mutate(raw, rng, (8, 8 + n)), "traces": lambda: mutate(traw, rng),
                        "nifti": lambda: mutate(nraw, rng, (0, 348))}[loader]()
                with open(p, "wb") as fh:
                    fh.write(gzip.compress(data, compresslevel=1) if p.endswith(".gz") else data)
            c["cases"] += 1
            try:
                if loader == "check":
                    t = ctr
                    for _ in range(rng.randint(1, 3)):
                        t = damage_traces(t, rng.choice(TRACE_DAMAGES), rng.randrange(100), rng.randrange(10 ** 6))
                    mode = rng.choice(("teacher-forced", "free-running"))
                    rep = check(cg, t, "paper", explain_divergences=rng.random() < 0.2, mode=mode)
                    c["conforms" if rep["conforms"] else "diverges"] = c.get("conforms" if rep["conforms"] else
                                                                             "diverges", 0) + 1
                elif loader == "nifti":
                    read_volume(p)
                elif loader == "onnx":
                    from refsim.io.onnx import load_onnx
                    load_onnx(p)
                elif loader == "nir":
                    from refsim.io.nir import load_nir
                    load_nir(p)
                elif loader == "model":
                    load_model(p)
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        rc = cli.main(["info", p])
                    if rc not in (0, 2):
                        raise RuntimeError(f"refsim info exited {rc}")
                else:
                    load_traces(p)
                c["accepted"] += 1
            except RefsimError:
                c["clean_errors"] += 1
            except Exception as exc:  # the count this harness exists for: must stay 0
                c["internal_errors"] += 1
                if len(c["examples"]) < 10:
                    c["examples"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
        c["seconds"] = round(time.time() - t0, 1)
        out[loader] = c
        print(loader, {k: v for k, v in c.items() if k != "examples"}, flush=True)
    save_results({"seed": args.seed, **out})


if __name__ == "__main__":
    main()
