"""What the fuzzers share: the address-space limit they run under, their command line, and the
one results file (validation/fuzz_results.json), merged target by target."""
from __future__ import annotations

import argparse
import json
import os
import resource

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_results.json")


def limit_address_space(gib):
    """Cap this process's address space at ``gib`` GiB (never above the hard limit), so an
    allocation refsim's memory checks did not foresee fails as a MemoryError instead of swapping."""
    if not gib:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = gib << 30
    resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def parser(description, cases_of):
    """The fuzzers' common options: --cases, --seed, --no-write."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cases", type=int, default=20000, help=f"number of {cases_of} (default 20000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave validation/fuzz_results.json alone")
    return ap


def save_results(entries: dict) -> None:
    """Merge ``entries`` (target -> counts) into validation/fuzz_results.json."""
    old = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as fh:
            old = json.load(fh)
    with open(RESULTS, "w") as fh:
        json.dump({**old, **entries}, fh, indent=1)
