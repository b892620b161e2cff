"""Mutation testing: one-line deliberate bugs in the modules where a wrong line gives a wrong answer,
each run against the tests that cover its module. A mutant the tests fail on is *killed*; one they
pass is a *survivor*: a line no test can tell from a bug (or an equivalent mutant, which
validation/mutation_results.json must then justify).

Mutations (one per mutant, found in the module's code through its syntax tree, never in
docstrings, error messages or ``raise`` statements):

* a comparison flipped at its boundary (``<`` / ``<=``, ``>`` / ``>=``) or inverted (``==`` /
  ``!=``);
* an arithmetic operator swapped (``+`` / ``-``, ``*`` / ``/``, ``//`` / ``/``), also in ``x += y``;
* ``and`` / ``or`` swapped;
* a small integer constant moved by one (0 -> 1, 1 -> 0, n -> n + 1).

The mutants of a module are drawn with a fixed seed (``--per-module``); each runs in a private
copy of the repository (``PYTHONPATH`` points there, with its own Numba cache), with ``pytest -x``
over the module's tests, without torch-only tests being needed: the run uses whatever is
installed, and the results record whether torch was.

Run from the repository root (not in CI: a few minutes per module)::

    python -m validation.mutation                      # every module, 12 mutants each
    python -m validation.mutation --modules refsim/synops.py --per-module 40
    python -m validation.mutation --only-survivors     # after adding tests: the survivors again

A survivor that no test should kill (an equivalent mutant) gets a ``"equivalent"`` reason in the
results file by hand; the score counts it as neither killed nor survived.

Writes validation/mutation_results.json (merged with the modules already there).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: module -> the tests that cover it
TARGETS = {
    "refsim/semantics.py": ["tests/unit/test_semantics.py", "tests/unit/test_choice_guard.py"],
    "refsim/neurons/_common.py": ["tests/unit/test_neurons.py", "tests/unit/test_choice_guard.py"],
    "refsim/neurons/multithreshold.py": ["tests/unit/test_neurons.py", "tests/unit/test_choice_guard.py"],
    "refsim/neurons/lif.py": ["tests/unit/test_lif.py", "tests/unit/test_check_leaky.py", "tests/golden/test_golden.py"],
    "refsim/kernels/fused.py": ["tests/unit/test_fused_kernels.py", "tests/unit/test_kernels.py",
                                "tests/unit/test_block_scatter.py"],
    "refsim/kernels/scatter.py": ["tests/unit/test_kernels.py", "tests/unit/test_fused_kernels.py"],
    "refsim/kernels/bits.py": ["tests/unit/test_kernels.py"],
    "refsim/exactness.py": ["tests/unit/test_exactness.py", "tests/unit/test_fused_kernels.py", "tests/unit/test_kernels.py",
                            "tests/properties/test_event_backend.py"],
    "refsim/conformance/check.py": ["tests/conformance/test_check.py", "tests/unit/test_check_leaky.py"],
    "refsim/io/torch/__init__.py": ["tests/conformance/test_torch_libraries.py", "tests/conformance/test_leaky_trained.py"],
    "refsim/io/torch/record.py": ["tests/conformance/test_torch_libraries.py"],
    "refsim/synops.py": ["tests/unit/test_analysis.py"],
    "refsim/analysis/metrics.py": ["tests/unit/test_analysis.py", "tests/unit/test_segment.py"],
    "refsim/convert/balance.py": ["tests/unit/test_convert.py"],
    "refsim/convert/normalize.py": ["tests/unit/test_convert.py"],
    "refsim/segment.py": ["tests/unit/test_segment.py"],
    "refsim/io/onnx.py": ["tests/unit/test_onnx.py", "tests/unit/test_onnx_oracle.py"],
    "refsim/io/nir.py": ["tests/unit/test_nir.py"],
    "refsim/encoding.py": ["tests/unit/test_encoding.py"],
}

_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
_BIN = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
        ast.FloorDiv: ("//", "/")}
_BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}


def _skipped_spans(tree):
    """Line ranges whose code only builds messages: raise statements, f-strings, docstrings."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert)):
            spans.append((node.lineno, node.end_lineno))
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                spans.append((first.lineno, first.end_lineno))
    return spans


def _find(line, token, lo, hi):
    """Column of ``token`` in ``line[lo:hi]`` (as a whole operator), or -1."""
    i = line.find(token, lo, hi)
    while i >= 0:
        before, after = line[i - 1:i] if i else "", line[i + len(token):i + len(token) + 1]
        if before not in "<>=!*/" and after not in "<>=*/":
            return i
        i = line.find(token, i + 1, hi)
    return -1


def mutants(path):
    """Every mutant of the module at ``path``: dicts of line, column, old and new text."""
    src = open(path, encoding="utf-8").read()
    lines = src.splitlines(keepends=True)
    tree = ast.parse(src)
    skip = _skipped_spans(tree)
    out = []

    def add(node_line, col, old, new, kind):
        if any(a <= node_line <= b for a, b in skip):
            return
        out.append({"line": node_line, "col": col, "old": old, "new": new, "kind": kind})

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            a, b = node.left, node.comparators[0]
            if a.end_lineno == b.lineno:
                old, new = _CMP[type(node.ops[0])]
                col = _find(lines[b.lineno - 1], old, a.end_col_offset, b.col_offset)
                if col >= 0:
                    add(b.lineno, col, old, new, "comparison")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            a, b = node.left, node.right
            if a.end_lineno == b.lineno:
                old, new = _BIN[type(node.op)]
                col = _find(lines[b.lineno - 1], old, a.end_col_offset, b.col_offset)
                if col >= 0:
                    add(b.lineno, col, old, new, "arithmetic")
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BIN:
            old, new = _BIN[type(node.op)]
            line = lines[node.lineno - 1]
            col = line.find(old + "=", node.target.end_col_offset, node.value.col_offset) \
                if node.target.end_lineno == node.value.lineno == node.lineno else -1
            if col >= 0:
                add(node.lineno, col, old + "=", new + "=", "arithmetic")
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            a, b = node.values
            if a.end_lineno == b.lineno:
                old, new = _BOOL[type(node.op)]
                col = lines[b.lineno - 1].find(f" {old} ", a.end_col_offset - 1, b.col_offset + 1)
                if col >= 0:
                    add(b.lineno, col + 1, old, new, "boolean")
        elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 8 \
                and node.lineno == node.end_lineno:
            new = {0: "1", 1: "0"}.get(node.value, str(node.value + 1))
            add(node.lineno, node.col_offset, str(node.value), new, "constant")
    out.sort(key=lambda m: (m["line"], m["col"]))
    return out


def relocate(m, everything, lines):
    """A recorded mutant moved to where its code is now (the module was edited since it was drawn): the
    candidate with the same operator change on a line with the same code, at the same column when
    there are several, and on the line nearest the recorded one when the code appears on several;
    None when that code is gone or the choice is a tie."""
    code = m.get("code")
    if code is None or (m["line"] <= len(lines) and lines[m["line"] - 1].strip() == code):
        return m
    hits = [c for c in everything if (c["old"], c["new"], c["kind"]) == (m["old"], m["new"], m["kind"])
            and lines[c["line"] - 1].strip() == code]
    if len(hits) > 1:  # several: the indentation must not have changed
        hits = [c for c in hits if c["col"] == m["col"]]
    hits.sort(key=lambda c: abs(c["line"] - m["line"]))
    if not hits or (len(hits) > 1 and abs(hits[0]["line"] - m["line"]) == abs(hits[1]["line"] - m["line"])):
        return None
    return dict(m, line=hits[0]["line"], col=hits[0]["col"])


def apply(src, m):
    lines = src.splitlines(keepends=True)
    line = lines[m["line"] - 1]
    assert line[m["col"]:m["col"] + len(m["old"])] == m["old"], (m, line)
    lines[m["line"] - 1] = line[:m["col"]] + m["new"] + line[m["col"] + len(m["old"]):]
    return "".join(lines)


def _copy_repo(dest):
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", "build", "dist")
    shutil.copytree(ROOT, dest, ignore=ignore)


def _status(returncode, last_line=()):
    """A pytest run's verdict on a mutant: tests failed (1) or the test process died of a signal (a
    mutated kernel writing out of bounds; the unmutated copy's tests pass, so the mutant did it) both
    kill it; pytest's own errors (2-5) are recorded as errors, not kills."""
    if returncode == 0:
        return "survived"
    if returncode == 1:
        return "killed"
    if returncode < 0:
        return f"killed (the test process died of signal {-returncode})"
    return f"error (pytest exit {returncode})" + (": " + last_line[0][:200] if last_line else "")


def run_mutant(copy, module, m, tests, timeout):
    path = os.path.join(copy, module)
    original = open(path, encoding="utf-8").read()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(apply(original, m))
    env = dict(os.environ, PYTHONPATH=copy, NUMBA_CACHE_DIR=os.path.join(copy, ".numba-cache"),
               PYTHONDONTWRITEBYTECODE="1")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=copy,
                           env=env, capture_output=True, text=True, timeout=timeout)
        status = _status(r.returncode, (r.stdout + r.stderr).strip().splitlines()[-1:])
    except subprocess.TimeoutExpired:
        status = "killed (timeout)"
    finally:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(original)
    return status, time.perf_counter() - t0


def summary(res):
    """The totals over every module in the results: mutants drawn, equivalent, killed, and the survivors
    (module:line old -> new)."""
    rows = [(mod, r) for mod, m in res["modules"].items() for r in m["mutants"]]
    return {"modules": len(res["modules"]), "drawn": len(rows), "equivalent": sum("equivalent" in r for _, r in rows),
            "killed": sum(r["status"].startswith("killed") for _, r in rows if "equivalent" not in r),
            "survived": [f"{mod}:{r['line']} {r['old']} -> {r['new']}" for mod, r in rows
                         if "equivalent" not in r and not r["status"].startswith("killed")]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", default=None, help="comma-separated modules (default: every one in TARGETS)")
    ap.add_argument("--per-module", type=int, default=12, help="mutants drawn per module (default 12)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant before it counts as killed")
    ap.add_argument("--out", default=os.path.join(ROOT, "validation", "mutation_results.json"))
    ap.add_argument("--only-survivors", action="store_true",
                    help="rerun only the mutants the results file records as survivors (after adding tests); "
                         "a mutant killed now keeps its first verdict under 'first_status'")
    args = ap.parse_args(argv)
    modules = args.modules.split(",") if args.modules else list(TARGETS)
    unknown = [m for m in modules if m not in TARGETS]
    if unknown:
        ap.error(f"--modules: expected modules from {', '.join(TARGETS)}, found {', '.join(unknown)}")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    res = json.load(open(args.out)) if os.path.exists(args.out) else {"modules": {}}
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "repo")
        _copy_repo(copy)
        check = subprocess.run([sys.executable, "-c", "import refsim; print(refsim.__file__)"], cwd=copy,
                               env=dict(os.environ, PYTHONPATH=copy), capture_output=True, text=True, check=True)
        if not check.stdout.strip().startswith(copy):
            raise SystemExit(f"the copy's refsim is not the one imported ({check.stdout.strip()}); cannot mutate safely")
        for module in modules:
            tests = TARGETS[module]
            everything = mutants(os.path.join(ROOT, module))
            if args.only_survivors:
                rows = res["modules"].get(module, {}).get("mutants", [])
                lines = open(os.path.join(ROOT, module), encoding="utf-8").read().splitlines()
                picked = []
                for r in rows:
                    if r["status"] != "survived":
                        continue
                    moved = relocate(r, everything, lines)
                    if moved is None:
                        print(f"{module}: {r['code']!r} is no longer in the module (or not unique): not rerun")
                        continue
                    r.update(line=moved["line"], col=moved["col"])
                    picked.append(r)
            else:
                picked = random.Random(f"{args.seed}:{module}").sample(everything, min(args.per_module, len(everything)))
                picked.sort(key=lambda m: (m["line"], m["col"]))
                rows = []
            for m in picked:
                status, secs = run_mutant(copy, module, m, tests, args.timeout)
                line = open(os.path.join(ROOT, module), encoding="utf-8").read().splitlines()[m["line"] - 1].strip()
                if args.only_survivors:
                    if status != m["status"]:
                        m.update(first_status=m["status"], status=status, seconds=round(secs, 1))
                else:
                    rows.append(dict(m, status=status, seconds=round(secs, 1), code=line))
                print(f"{module}:{m['line']} {m['old']!r} -> {m['new']!r}: {status} ({secs:.0f} s)", flush=True)
            if not rows:
                continue
            counted = [r for r in rows if "equivalent" not in r]
            killed = sum(r["status"].startswith("killed") for r in counted)
            old = res["modules"].get(module, {})
            res["modules"][module] = {"tests": tests, "candidates": len(everything), "drawn": len(rows),
                                      "equivalent": len(rows) - len(counted), "killed": killed,
                                      "score": round(killed / len(counted), 3) if counted else None,
                                      "seed": old.get("seed", args.seed) if args.only_survivors else args.seed,
                                      "torch_installed": have_torch, "mutants": rows}
            with open(args.out, "w") as fh:
                json.dump(res, fh, indent=1)
    res["summary"] = dict(summary(res), command=res.get("summary", {}).get("command", ""))
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    rows = [r for m in res["modules"].values() for r in m["mutants"] if "equivalent" not in r]
    total, killed = len(rows), sum(r["status"].startswith("killed") for r in rows)
    print(f"mutation score: {killed}/{total} killed" + (f" ({killed / total:.0%})" if total else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
