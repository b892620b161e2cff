"""The shipped model on all 40 held-out test subjects with ``refsim segment`` (RESULTS.md, "The shipped
model on all 40 test subjects"): links the test cases of ``common.split()`` into out/test/imagesTs
and labelsTs, runs the command exactly as a user would, and copies its dice.csv to
segment_test40_dice.csv beside RESULTS.md. Run from the repository root:
``python validation/hippocampus/segment_test.py`` (about 13 minutes on 2 cores)."""
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
    rc = cli.main(["segment", model, os.path.join(root, "imagesTs"), "-o", os.path.join(root, "masks"),
                   "--label", os.path.join(root, "labelsTs"), "--T", "200", "--no-progress"])
    if rc != 0:
        raise SystemExit(rc)
    if args.subjects == 40:
        shutil.copy(os.path.join(root, "masks", "dice.csv"), os.path.join(HERE, "segment_test40_dice.csv"))


if __name__ == "__main__":
    main()
