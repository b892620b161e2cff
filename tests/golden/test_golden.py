"""Golden cases verify bit for bit on both backends; a changed value is found and reported."""
import os
import shutil

import numpy as np
import pytest

from refsim import cli
from refsim.conformance import compare_traces, golden, load_traces
from refsim.errors import ModelFormatError

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "golden")
CASES = golden.find_cases(ROOT)


def test_at_least_eight_cases_with_readme_and_generator():
    assert len(CASES) >= 8
    assert os.path.exists(os.path.join(ROOT, "make_golden.py"))
    for c in CASES:
        for f in golden.CASE_FILES + ("expected.npz", "README.md"):
            assert os.path.exists(os.path.join(ROOT, c, f)), (c, f)


@pytest.mark.parametrize("backend", ["reference", "event"])
@pytest.mark.parametrize("case", CASES)
def test_case_verifies(case, backend):
    assert golden.verify_case(os.path.join(ROOT, case), backend) == []


def test_cases_have_activity():
    """A golden case that never spikes pins nothing down."""
    for c in CASES:
        tr = load_traces(os.path.join(ROOT, c, "expected.npz"))
        assert sum(int(v.sum()) for v in tr.step_counts.values()) > 0, c


def test_tampered_case_fails_with_location(tmp_path, capsys):
    shutil.copytree(os.path.join(ROOT, "unet-binary"), tmp_path / "unet-binary")
    path = tmp_path / "unet-binary" / "expected.npz"
    tr = load_traces(path)
    layer = "enc2a_if"
    s = tr.spikes[layer]
    idx = (5, 0, 1, 2, 3)
    s[idx] = 1 - s[idx]
    tr.save(path)
    assert cli.main(["golden", "verify", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  unet-binary" in out and f"spikes/{layer}" in out and "step 5" in out
    assert "0 passed, 1 failed" in out


def test_cli_verify_passes(capsys):
    assert cli.main(["golden", "verify", ROOT]) == 0
    assert f"{len(CASES)} passed, 0 failed" in capsys.readouterr().out


def test_bad_directory_and_trace_files(tmp_path):
    assert cli.main(["golden", "verify", str(tmp_path / "nope")]) == 2
    bad = tmp_path / "t.npz"
    np.savez(bad, meta=np.array('{"format": "other"}'))
    with pytest.raises(ModelFormatError, match="refsim-traces"):
        load_traces(bad)
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError):
        load_traces(bad)


def test_trace_round_trip(tmp_path):
    folder = os.path.join(ROOT, "multithreshold-levels")
    tr = golden.run_case(folder)
    tr.save(tmp_path / "t.npz")
    back = load_traces(tmp_path / "t.npz")
    assert compare_traces(tr, back) == []
    assert back.spikes["mt_gt"].dtype == np.uint8 and back.profile == "paper"


def test_generator_reproduces_the_files(tmp_path):
    """make_golden.py regenerates the same model, input and expected files, byte for byte
    (expected.npz compared as traces: zip timestamps may differ)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("mk", os.path.join(ROOT, "make_golden.py"))
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    for name, c in mk.cases().items():
        mk.HERE = str(tmp_path)
        mk.write_case(name, c)
        for f in ("model.safetensors", "case.json", "README.md"):
            assert (tmp_path / name / f).read_bytes() == open(os.path.join(ROOT, name, f), "rb").read(), (name, f)
        with np.load(tmp_path / name / "input.npz") as a, np.load(os.path.join(ROOT, name, "input.npz")) as b:
            np.testing.assert_array_equal(a["x"], b["x"])


def test_external_case_comes_from_spikingjelly_and_can_fail(tmp_path):
    """The expected spikes of spikingjelly-recorded were recorded from SpikingJelly, not made by refsim;
    under the paper's '>' they do not verify, so the case pins the profile down."""
    import json
    spec = golden.read_spec(os.path.join(ROOT, "spikingjelly-recorded"))
    assert spec["expected_from"].startswith("SpikingJelly") and spec["compare"] == ["spikes", "step_counts"]
    shutil.copytree(os.path.join(ROOT, "spikingjelly-recorded"), tmp_path / "c")
    spec["profile"] = "paper"
    (tmp_path / "c" / "case.json").write_text(json.dumps(spec))
    diffs = golden.verify_case(tmp_path / "c")
    assert diffs and any("spikes/" in d for d in diffs)


def test_regen_skips_external_cases(tmp_path, capsys):
    shutil.copytree(os.path.join(ROOT, "spikingjelly-recorded"), tmp_path / "spikingjelly-recorded")
    before = (tmp_path / "spikingjelly-recorded" / "expected.npz").read_bytes()
    golden.regen(tmp_path)
    assert (tmp_path / "spikingjelly-recorded" / "expected.npz").read_bytes() == before
    assert "skipped spikingjelly-recorded" in capsys.readouterr().out


def test_regen_of_every_case_moves_no_value(tmp_path):
    """Every refsim-made expected file is what this version computes: regenerating moves nothing."""
    shutil.copytree(ROOT, tmp_path / "g")
    assert golden.regen(tmp_path / "g", echo=lambda *a: None) == {}


def test_regen_refuses_to_move_values_unless_forced(tmp_path, capsys):
    case = next(c for c in CASES if not golden.read_spec(os.path.join(ROOT, c)).get("expected_from"))
    shutil.copytree(os.path.join(ROOT, case), tmp_path / case)
    exp = tmp_path / case / "expected.npz"
    tr = load_traces(exp)
    name = sorted(tr.spikes)[0]
    tr.spikes[name] = tr.spikes[name].copy()
    tr.spikes[name][0].flat[0] += 1  # a stale expected value
    tr.save(exp)
    stale = exp.read_bytes()
    assert cli.main(["golden", "regen", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and f"spikes/{name}" in out and "np.int" not in out  # plain numbers
    assert exp.read_bytes() == stale
    assert cli.main(["golden", "regen", str(tmp_path), "--force"]) == 0
    assert golden.verify(tmp_path, echo=lambda *a: None)


def test_user_case_init_verify_and_assert_golden(tmp_path):
    """golden init makes a case of a user's own model; verify's result is false when a case fails,
    and assert_golden names the first differing entry, step and neuron."""
    from refsim import models, save_model
    from refsim.testing import ConformanceError, assert_golden
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=1)
    save_model(g, tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 8, 8)))
    assert cli.main(["golden", "init", str(tmp_path / "cases"), "--model", str(tmp_path / "m.safetensors"),
                     "--inputs", str(tmp_path / "x.npy"), "--T", "12", "--name", "unet"]) == 0
    res = golden.verify(tmp_path / "cases", echo=lambda *a: None)
    assert res and res.passed == ["unet"]
    assert_golden(tmp_path / "cases")
    # the model drifts (one threshold): the case fails, and says where
    from refsim.graph import Graph
    bad = Graph([g[n].replace(threshold=0.75) if n == "enc1a_if" else g[n] for n in g.order], name=g.name,
                metadata=g.metadata)
    save_model(bad, tmp_path / "cases" / "unet" / "model.safetensors")
    res = golden.verify(tmp_path / "cases", echo=lambda *a: None)
    assert not res and res.failed == ["unet"]
    with pytest.raises(ConformanceError, match=r"first difference: layer enc1a_if at step 0, sample \d, neuron \(\d+, \d+, \d+\)"):
        assert_golden(tmp_path / "cases")
    assert cli.main(["golden", "init", str(tmp_path / "cases"), "--model", str(tmp_path / "m.safetensors"),
                     "--inputs", str(tmp_path / "x.npy"), "--name", "unet"]) == 2  # never overwrites a case


def test_a_fresh_project_guards_its_model_in_pytest(tmp_path):
    """The README's "Guard your model in CI" example, in a project outside this repository: its
    pytest suite passes, and fails loudly once the model changes."""
    import subprocess
    import sys
    from refsim import models, save_model
    proj = tmp_path / "proj"
    (proj / "tests").mkdir(parents=True)
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=2)
    save_model(g, proj / "model.safetensors")
    np.save(proj / "x.npy", np.random.default_rng(1).random((2, 1, 8, 8)))
    assert cli.main(["golden", "init", str(proj / "tests" / "golden"), "--model", str(proj / "model.safetensors"),
                     "--inputs", str(proj / "x.npy"), "--T", "10"]) == 0
    (proj / "conftest.py").write_text('pytest_plugins = ["refsim.pytest_plugin"]\n')
    (proj / "tests" / "test_model.py").write_text(
        "def test_model_spikes_as_recorded(refsim_golden):\n    refsim_golden('tests/golden')\n")
    run = lambda: subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=proj,
                                 capture_output=True, text=True, timeout=300)
    r = run()
    assert r.returncode == 0, r.stdout + r.stderr
    from refsim.graph import Graph
    case = next((proj / "tests" / "golden").iterdir())
    bad = Graph([g[n].replace(threshold=1.25) if n == "dec1b_if" else g[n] for n in g.order], name=g.name,
                metadata=g.metadata)
    save_model(bad, case / "model.safetensors")
    r = run()
    assert r.returncode == 1 and "dec1b_if" in r.stdout, r.stdout + r.stderr


def test_snntorch_case_comes_from_snntorch_and_can_fail(tmp_path):
    """snntorch-leaky-recorded's expected spikes were recorded from snnTorch's Leaky, not made by refsim;
    with the immediate subtraction of the paper profile they do not verify, so the case pins down the
    delayed reset of refsim's snntorch profile."""
    import json
    spec = golden.read_spec(os.path.join(ROOT, "snntorch-leaky-recorded"))
    assert spec["expected_from"].startswith("snnTorch") and spec["profile"] == "snntorch"
    assert golden.verify_case(os.path.join(ROOT, "snntorch-leaky-recorded")) == []
    shutil.copytree(os.path.join(ROOT, "snntorch-leaky-recorded"), tmp_path / "c")
    spec["profile"] = "paper"
    (tmp_path / "c" / "case.json").write_text(json.dumps(spec))
    diffs = golden.verify_case(tmp_path / "c")
    assert diffs and diffs[0].startswith("first difference: layer lif")


def test_snntorch_case_regenerates_from_snntorch(tmp_path):
    pytest.importorskip("snntorch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_snntorch_golden", os.path.join(ROOT, "make_snntorch_golden.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path / "c")
    a, b = load_traces(tmp_path / "c" / "expected.npz"), load_traces(os.path.join(ROOT, mod.NAME, "expected.npz"))
    assert compare_traces(b, a, ["spikes", "step_counts"]) == []
