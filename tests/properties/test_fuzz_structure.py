"""Bounded versions of the structure-aware fuzzers (issue 21; the long runs are
validation/fuzz_graph.py and validation/fuzz_cli.py, 20,000 cases each): a mutated graph is refused
with refsim's own error, or it runs on both backends and they agree bit for bit; a command line of
edge-case option values exits 0, 1 or 2, never 3 or an exception."""
import contextlib
import io
import json
import random
import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refsim import cli
from validation import fuzz_cli, fuzz_graph

_BASES = {}


def _bases():
    if "docs" not in _BASES:
        _BASES["docs"] = [g.to_dict() for g in fuzz_graph.bases()]
    return _BASES["docs"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_a_mutated_graph_is_refused_or_runs_alike_on_both_backends(seed, tmp_path):
    rng = random.Random(seed)
    doc0, t0 = rng.choice(_bases())
    doc = json.loads(json.dumps(doc0))
    tensors = {k: v.copy() for k, v in t0.items()}
    for _ in range(rng.randint(1, 3)):
        fuzz_graph.mutate(doc, tensors, rng)
    assert fuzz_graph.run_case(doc, tensors, rng, str(tmp_path)) in ("refused", "ran")


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    return fuzz_cli.fixtures(str(tmp_path_factory.mktemp("fuzz_cli")))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_an_edge_case_command_line_exits_0_1_or_2(seed, cli_files, tmp_path):
    rng = random.Random(seed)
    argv = fuzz_cli.make_case(rng, cli_files, str(tmp_path), fuzz_cli.subcommands())
    if argv[0] == "demo":  # seconds per case; the long run covers it
        return
    old = signal.signal(signal.SIGALRM, fuzz_cli._alarm)
    signal.alarm(30)  # a FIFO or a dead scheduler must be refused, not waited on
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = cli.main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert rc in (0, 1, 2), argv
