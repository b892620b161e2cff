"""Fuzz the model and trace loaders with random byte mutations (flips weighted towards the JSON
header, truncations, insertions) and count: cases, accepted, clean errors (refsim's own types) and
internal errors (anything else: must be 0). Accepted model files must also pass `refsim info`.
Run from the repository root: ``python validation/fuzz.py [--cases 100000]``; writes
validation/fuzz_results.json."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
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
    for loader in ("model", "traces"):
        c = {"cases": 0, "accepted": 0, "clean_errors": 0, "internal_errors": 0, "examples": []}
        t0 = time.time()
        for _ in range(args.cases):
            p = os.path.join(d, "m.safetensors" if loader == "model" else "m.npz")
            with open(p, "wb") as fh:
                fh.write(mutate(raw, rng, (8, 8 + n)) if loader == "model" else mutate(traw, rng))
            c["cases"] += 1
            try:
                if loader == "model":
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
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_results.json"), "w") as fh:
        json.dump({"seed": args.seed, **out}, fh, indent=1)


if __name__ == "__main__":
    main()
