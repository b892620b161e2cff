"""The shipped model on all 40 held-out test subjects with ``refsim segment`` (RESULTS.md, "The shipped
model on all 40 test subjects"): links the test cases of ``common.split()`` into out/test/imagesTs
and labelsTs, runs the command exactly as a user would, and copies its dice.csv to
segment_test40_dice.csv beside RESULTS.md. Run from the repository root:
``python validation/hippocampus/segment_test.py`` (about 13 minutes on 2 cores).

``--seeds 1,2`` repeats the run with other Poisson seeds (masks_seed1, ...) and writes
segment_test40_seeds.json beside RESULTS.md: the mean 3-D Dice of each seed (seed 0 is the default
run's CSV) and their spread, and each subject's spread over the seeds."""
from __future__ import annotations

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from refsim import cli  # noqa: E402
from validation.hippocampus.common import DATA, OUT, split  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=40, help="the first N test subjects (default all 40)")
    ap.add_argument("--seeds", default=None, help="other Poisson seeds to repeat the run with, e.g. 1,2")
    ap.add_argument("--reuse", action="store_true", help="with --seeds: reuse a seed's finished run (its dice.csv)")
    args = ap.parse_args(argv)
    _, _, test = split()
    test = test[:args.subjects]
    root = os.path.join(OUT, "test" if args.subjects == 40 else f"test{args.subjects}")
    for sub, src in (("imagesTs", "imagesTr"), ("labelsTs", "labelsTr")):
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        for c in test:
            link = os.path.join(d, c + ".nii.gz")
            if not os.path.exists(link):
                os.symlink(os.path.join(DATA, src, c + ".nii.gz"), link)
    model = os.path.join(os.path.dirname(os.path.dirname(HERE)), "refsim", "data", "hippocampus_snn.safetensors")
    if args.seeds:
        return seeds(model, root, [int(v) for v in args.seeds.split(",")], args.subjects, args.reuse)
    rc = cli.main(["segment", model, os.path.join(root, "imagesTs"), "-o", os.path.join(root, "masks"),
                   "--label", os.path.join(root, "labelsTs"), "--T", "200", "--no-progress"])
    if rc != 0:
        raise SystemExit(rc)
    if args.subjects == 40:
        shutil.copy(os.path.join(root, "masks", "dice.csv"), os.path.join(HERE, "segment_test40_dice.csv"))


def _dice(csv_path):
    import csv
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    key = next(k for k in rows[0] if k.lower().startswith("dice"))
    return {r["case"]: float(r[key]) for r in rows}


def _t_interval(values):
    """The 95 % interval of the mean of ``values`` (Student's t, n - 1 degrees of freedom)."""
    import numpy as np
    from scipy import stats
    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return [float(v.mean() - half), float(v.mean() + half)]


def seeds(model, root, extra, subjects, reuse=False):
    """The same run with other Poisson seeds; the spread over seeds (seed 0 from the default run)."""
    import json
    import numpy as np
    per = {0: _dice(os.path.join(HERE, "segment_test40_dice.csv") if subjects == 40 else
                    os.path.join(root, "masks", "dice.csv"))}
    for s in extra:
        out = os.path.join(root, f"masks_seed{s}")
        if reuse and os.path.exists(os.path.join(out, "dice.csv")):
            per[s] = _dice(os.path.join(out, "dice.csv"))
            continue
        rc = cli.main(["segment", model, os.path.join(root, "imagesTs"), "-o", out, "--label",
                       os.path.join(root, "labelsTs"), "--T", "200", "--seed", str(s), "--no-progress"])
        if rc != 0:
            raise SystemExit(rc)
        per[s] = _dice(os.path.join(out, "dice.csv"))
    cases = sorted(per[0])
    means = {s: float(np.mean([d[c] for c in cases])) for s, d in per.items()}
    subj_sd = [float(np.std([per[s][c] for s in per], ddof=1)) for c in cases]
    res = {"subjects": len(cases), "T": 200, "seeds": sorted(per), "mean_dice_per_seed": means,
           "mean_over_seeds": float(np.mean(list(means.values()))),
           "sd_over_seeds": float(np.std(list(means.values()), ddof=1)),
           "ci95_over_seeds": _t_interval(list(means.values())),
           "per_subject_sd_over_seeds": {"median": float(np.median(subj_sd)), "max": float(np.max(subj_sd))}}
    with open(os.path.join(HERE, f"segment_test{subjects}_seeds.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    print(res)
    return res


if __name__ == "__main__":
    main()
