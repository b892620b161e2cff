"""Option types and option groups shared by the ``refsim`` subcommands (refsim/cli.py builds the
parser from them): each group adds the same options, with the same help lines and the library's own
choice lists, to every command that takes them, and the small parsers turn option text into values
or a :class:`refsim.errors.ValidationError` naming the option."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .backends import BACKENDS
from .analysis.metrics import EMPTY_POLICIES
from .config import DEFAULTS, RunConfig
from .encoding import ENCODERS
from .errors import ValidationError
from .io.nifti import AXES, NORMALIZATIONS
from .readout import READOUTS
from .semantics import DEFAULT_PROFILE, list_profiles
from .simulator import DTYPES


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


positive_int = _int_at_least(1, "a positive integer")
natural_int = _int_at_least(0, "a non-negative integer")


def names(values) -> str:
    """A list of names for a help line."""
    return ", ".join(map(str, values))


def add_progress(sp):
    """--progress / --no-progress."""
    sp.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="progress on stderr (default: when stderr is a terminal)")
    sp.add_argument("--no-progress", dest="progress", action="store_false", help="no progress reports")


def add_settings(sp, T_default, seed=True, backend=True):
    """The run settings: --T, --profile, --seed, --backend, --threads, --dtype, and progress."""
    sp.add_argument("--T", type=positive_int, default=T_default, help=f"time steps (default {T_default})")
    sp.add_argument("--profile", default=None, help=f"semantic profile (default: the model's, else "
                                                     f"{DEFAULT_PROFILE}); one of {names(list_profiles())}")
    if seed:
        sp.add_argument("--seed", type=natural_int, default=None, help=f"encoder seed (default {DEFAULTS['seed']})")
    if backend:
        sp.add_argument("--backend", default=None, choices=BACKENDS,
                        help="event (default: Numba over each step's spikes; the reference's bits in float64) "
                             "or reference (dense NumPy float64, the oracle; much slower)")
        sp.add_argument("--threads", type=positive_int, default=None,
                        help="event backend: Numba threads (default: Numba's); results do not depend on it")
        sp.add_argument("--dtype", default=None, choices=DTYPES,
                        help="event backend arithmetic (default float64; float32 is faster and may differ near "
                             "thresholds, docs/architecture.md)")
    add_progress(sp)


def add_encoding(sp, nifti=True):
    """--encoding and, for NIfTI inputs, --normalize and --axis."""
    sp.add_argument("--encoding", default=None, choices=tuple(ENCODERS),
                    help="input encoding (default: the model's, else poisson)")
    if nifti:
        sp.add_argument("--normalize", default=None, choices=NORMALIZATIONS,
                        help="NIfTI inputs: intensity normalisation over the volume (default: the model's, else "
                             "by its encoding: zero-mean for poisson-ternary, unit otherwise)")
        sp.add_argument("--axis", type=int, default=None, choices=AXES,
                        help="NIfTI inputs: slicing axis (default: the model's, else 0)")


def add_evaluation(sp):
    """How an output becomes a mask and how it is scored: --readout, --cutoff, --empty."""
    sp.add_argument("--readout", default=None, choices=READOUTS,
                    help="output membrane to prediction (default: the model's, else sigmoid(v/T))")
    sp.add_argument("--cutoff", type=float, default=0.5, help="probability cut-off for the mask (default 0.5)")
    sp.add_argument("--empty", default="one", choices=EMPTY_POLICIES, help="Dice of an empty label (slice): 'one' "
                    "(1 if the prediction is empty too, else 0) or 'nan' (left out)")


def add_output(sp, what, suffix=""):
    """-o / --output, required."""
    sp.add_argument("-o", "--output", required=True, help=f"the {what} to write{suffix}")


def run_config(args, graph):
    """The run settings of ``args`` resolved against ``graph`` (:class:`refsim.config.RunConfig`)."""
    given = {k: getattr(args, k, None) for k in RunConfig.__dataclass_fields__}
    return RunConfig.resolve(graph, **given)


def want_progress(args):
    """--progress / --no-progress, else whether stderr is a terminal."""
    return args.progress if args.progress is not None else sys.stderr.isatty()


def parse_floats(text, what):
    """A comma-separated list of finite numbers (option ``what`` named in the error)."""
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValidationError(what, "a number or a comma-separated list of numbers", text) from None
    if not vals or not all(np.isfinite(vals)):
        raise ValidationError(what, "finite numbers", text)
    return vals


def parse_shape(text, option):
    """``C,H,W`` (positive integers) as a tuple, or None when not given."""
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise ValidationError(option, "comma-separated positive integers such as 1,64,48", text)
    return shape


def layers(given):
    """``--record-spikes`` / ``--record-membranes``: absent -> False, given without names -> True (all
    layers), else the list of layer names."""
    return False if given is None else (list(given) or True)
