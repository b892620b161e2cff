"""The refsim command, in-process."""
import os
import numpy as np
import pytest

from refsim import cli, models, save_model
from refsim.data import DEMO_IMAGE, DEMO_MODEL


@pytest.fixture
def model_file(tmp_path):
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(4, 8), seed=0)
    p = tmp_path / "m.safetensors"
    save_model(g, p)
    return p


def test_run_npy_writes_traces(model_file, tmp_path, capsys):
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "traces.npz"
    rc = cli.main(["run", str(model_file), str(tmp_path / "x.npy"), "--T", "5", "--profile", "spikingjelly",
                   "--seed", "3", "--out", str(out), "--record-spikes", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "enc1a_if" in text and "profile spikingjelly" in text
    with np.load(out, allow_pickle=False) as z:
        assert z["spikes/enc1a_if"].shape == (5, 2, 4, 8, 8)
        assert z["final_output/output"].shape == (2, 1, 8, 8)


def test_run_nifti(tmp_path, capsys):
    g = models.hippocampus_unet(in_shape=(1, 56, 48), channels=(2, 4), seed=0)
    save_model(g, tmp_path / "m.safetensors")
    rc = cli.main(["run", str(tmp_path / "m.safetensors"), DEMO_IMAGE, "--T", "2", "--no-progress"])
    assert rc == 0
    assert "batch 8" in capsys.readouterr().out


def test_info(model_file, capsys):
    assert cli.main(["info", str(model_file)]) == 0
    out = capsys.readouterr().out
    for word in ["ConvTranspose2d", "Concat", "AvgPool2d", "comparison=>", "parameters:", "4x8x8"]:
        assert word in out


def test_demo(capsys, tmp_path):
    """The demo segments a shipped held-out volume with the shipped trained model, prints Dice and the
    per-layer rates with their definitions, and writes the mask (on the volume's grid) and the report."""
    import nibabel as nib
    from refsim.data import DEMO_VOLUMES
    assert cli.main(["demo", "--T", "3", "--no-progress", "--out-dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "rate/step" in out and "dec1b_if" in out and "CC BY-SA" in out and "Dice against the label" in out
    assert "neurons that never fired" in out
    mask = nib.load(str(tmp_path / "d" / "hippocampus_007_mask.nii.gz"))
    src = nib.load(DEMO_VOLUMES[0][0])
    assert mask.shape == src.shape and np.allclose(mask.affine, src.affine)
    assert (tmp_path / "d" / "report.html").exists() and (tmp_path / "d" / "report.json").exists()


def test_shipped_model_segments_a_held_out_volume():
    """The shipped trained model really segments: Dice on a shipped held-out volume at T=200 (event
    backend), a few seconds. (RESULTS.md: 0.82 mean over the 40 test subjects.)"""
    from refsim import load_model
    from refsim.analysis import metrics
    from refsim.data import DEMO_MODEL, DEMO_VOLUMES
    from refsim.io.nifti import read_volume
    from refsim.segment import SegmentOptions, predict_volume
    g = load_model(DEMO_MODEL)
    assert {"conversion", "finetuning"} <= set(g.metadata)
    img, lab = (read_volume(p) for p in DEMO_VOLUMES[1])
    mask, prob, _ = predict_volume(g, img.data, SegmentOptions(T=200).resolved(g))
    assert metrics.dice(mask > 0, lab.data > 0) > 0.7


def test_profiles(capsys):
    assert cli.main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "sinabs" in out and "fire-then-integrate" in out


@pytest.mark.parametrize("argv,expected", [
    (["probe", "--profile", "sinabs", "--input", "2.5", "--T", "4"], "2323"),   # 2.5: 2 spikes, 0.5 left, 3.0: 3 ...
    (["probe", "--model", "ternary", "--input", "-1", "--T", "3"], "---"),
    (["probe", "--model", "multithreshold", "--input", "1.3", "--T", "1"],  # levels 1 and 0.25 of 2, 1, 0.5, 0.25
     "levels 2, 1, 0.5, 0.25 (x threshold); per step, one bit per level, highest first:\n0101\nsent on per step: 1.25")])
def test_probe_models(argv, expected, capsys):
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.strip() == expected


def test_probe_membrane_and_list_input(capsys):
    assert cli.main(["probe", "--input", "1,0", "--T", "4", "--membrane"]) == 0
    spikes, mem = capsys.readouterr().out.strip().splitlines()
    assert spikes == "0010" and mem.split() == ["1", "1", "1", "1"]


def test_bad_inputs_exit_2(tmp_path, model_file, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    assert cli.main(["info", str(bad)]) == 2
    assert "bad.safetensors" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 5, 5)))
    assert cli.main(["run", str(model_file), str(tmp_path / "x.npy"), "--T", "2", "--no-progress"]) == 2
    assert "expected shape" in capsys.readouterr().err
    assert cli.main(["probe", "--input", "abc"]) == 2
    assert cli.main(["nonsense"]) == 2
    assert cli.main(["--help"]) == 0


def test_run_event_backend_same_traces(model_file, tmp_path):
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    np.save(tmp_path / "x.npy", x)
    for be, extra in (("reference", []), ("event", ["--threads", "2"]), ("event32", ["--dtype", "float32"])):
        assert cli.main(["run", str(model_file), str(tmp_path / "x.npy"), "--T", "6", "--backend", be.rstrip("32"), "--record-spikes",
                         "--out", str(tmp_path / f"{be}.npz"), "--no-progress"] + extra) == 0
    with np.load(tmp_path / "reference.npz") as a, np.load(tmp_path / "event.npz") as b:
        for key in a.files:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key])
    with np.load(tmp_path / "event32.npz") as c:
        assert '"dtype": "float32"' in str(c["meta"])
    # float32 is the event backend's only: a clear usage error, exit 2
    # float32 is the event backend's (the default); the reference backend is float64 only
    assert cli.main(["run", str(model_file), str(tmp_path / "x.npy"), "--T", "2", "--backend", "reference", "--dtype",
                     "float32", "--no-progress"]) == 2


def test_bench_quick_writes_results(tmp_path, capsys):
    """Smoke test of the harness: it measures and writes; no timing is asserted."""
    assert cli.main(["bench", "--quick", "--out-dir", str(tmp_path)]) == 0
    import json
    res = json.loads((tmp_path / "quick.json").read_text())
    assert {"layers", "network", "jit", "peak_rss_mib", "neuron_pass", "event_profile"} <= set(res)
    assert len(res["peak_rss_mib"]) == 5 and all(v > 0 for v in res["peak_rss_mib"].values())
    assert all(r["synops"] == r["events"] * 9 * int(r["shape"].split("->")[0]) for r in res["layers"])
    assert all({"event_1t_ms_per_step", "event32_1t_ms_per_step", "reference_ms_per_step"} <= set(n) for n in res["network"])
    md = (tmp_path / "quick.md").read_text()
    assert "| layer |" in md and "| U-Net 32/64 56x48 |" in md and "Where an event step goes" in md
    assert "The shipped trained model" in md and res["real_model"]["event_1t_ms_per_step"] > 0
    assert "nan" not in md
    if res["machine"]["torch"]:  # torch's kernel named for every convolution
        rows = res["real_model_layers"]["rows"]
        assert sum("torch_impl" in r for r in rows) == sum(r["path"] != "pool_rows" for r in rows) > 10
        assert "| torch kernel |" in md


def test_output_paths_checked_before_the_simulation(tmp_path, capsys):
    """Issue 10: --out into a missing folder, onto a folder or onto an input is an input error (exit 2,
    naming the option) found before any work; check --json and fingerprint --write-probes too."""
    import numpy as np
    from refsim.data import DEMO_IMAGE, UNTRAINED_MODEL
    run = ["run", UNTRAINED_MODEL, DEMO_IMAGE, "--T", "100000000", "--no-progress"]  # would take hours if it ran
    assert cli.main(run + ["--out", str(tmp_path / "missing" / "t.npz")]) == 2
    (tmp_path / "notes.txt").write_text("a folder with other files: not a trace folder to replace")
    assert cli.main(run + ["--out", str(tmp_path)]) == 2
    assert cli.main(run + ["--out", UNTRAINED_MODEL]) == 2  # the model file itself
    assert cli.main(run + ["--out", os.path.join(tmp_path, "notes.txt")]) == 2  # a trace folder onto a file
    assert cli.main(["fingerprint", "--write-probes", str(tmp_path / "nope" / "p.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("--out") == 4 and "--write-probes" in err
    assert cli.main(["fingerprint", "--write-probes", str(tmp_path / "p.npy")]) == 0
    assert oct(os.stat(tmp_path / "p.npy").st_mode & 0o777) == "0o644"
    assert np.load(tmp_path / "p.npy").ndim == 2
    assert [f for f in os.listdir(tmp_path) if f.startswith(".refsim-")] == []


def test_saved_files_have_normal_permissions(tmp_path):
    from refsim import models, save_model
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4))
    save_model(g, tmp_path / "m.safetensors")
    assert oct(os.stat(tmp_path / "m.safetensors").st_mode & 0o777) == "0o644"


def test_every_command_and_option_has_a_help_line():
    import argparse
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    missing = [f"{name}" for name in sub.choices if not helps.get(name)]
    for name, sp in sub.choices.items():
        for a in sp._actions:
            if a.dest != "help" and not a.help:
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")
    assert missing == []


@pytest.mark.parametrize("argv, option", [
    (["run", "M", "X", "--T", "0"], "--T"), (["run", "M", "X", "--T", "1e3"], "--T"),
    (["run", "M", "X", "--threads", "0"], "--threads"), (["run", "M", "X", "--seed", "-1"], "--seed"),
    (["segment", "M", "X", "-o", "o", "--batch-slices", "0"], "--batch-slices"),
    (["probe", "--T", "-2"], "--T"),
])
def test_bad_numbers_name_their_option(argv, option, capsys):
    assert cli.main(argv) == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_run_with_impossible_T_is_a_clean_error(model_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    assert cli.main(["run", str(model_file), str(tmp_path / "x.npy"), "--T", str(10 ** 12)]) == 2
    assert "T (steps)" in capsys.readouterr().err


def test_fingerprint_errors_and_exit_codes(tmp_path, capsys):
    from refsim.conformance import fingerprint as fpm
    assert cli.main(["fingerprint"]) == 2
    err = capsys.readouterr().err
    assert err.count("refsim fingerprint") == 1 and "--profile" in err
    assert cli.main(["fingerprint", "--write-probes", str(tmp_path / "p.npy")]) == 0
    assert cli.main(["fingerprint", str(tmp_path / "p.npy")]) == 2
    assert "probe inputs themselves" in capsys.readouterr().err
    odd = np.zeros(fpm.probe_inputs().shape, np.int8)
    odd[3, 0] = 1  # fires at step 3 only under constant input 1.0: no IF does that
    np.save(tmp_path / "odd.npy", odd)
    assert cli.main(["fingerprint", str(tmp_path / "odd.npy")]) == 1
    assert "no combination" in capsys.readouterr().out
    from refsim.conformance.fingerprint import simulate_choices
    from refsim.semantics import get_profile
    np.save(tmp_path / "sj.npy", simulate_choices(get_profile("spikingjelly").choices("if")))
    assert cli.main(["fingerprint", str(tmp_path / "sj.npy")]) == 0
    assert "spikingjelly" in capsys.readouterr().out


def test_probe_multithreshold_prints_levels_and_values(capsys):
    # levels 1, 0.5 (threshold 1), input 0.5 each step, '>' (paper): step 1 holds 0.5 (not > 0.5),
    # step 2 holds 1.0: level 0.5 fires (1.0 is not > 1), 0.5 is sent on and subtracted, and so on
    assert cli.main(["probe", "--model", "multithreshold", "--levels", "1,0.5", "--T", "4", "--membrane"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == ". 01 01 01"
    assert out[2] == "sent on per step: 0 0.5 0.5 0.5"
    assert out[3] == "0.5 0.5 0.5 0.5"
    # threshold 0.5 scales the levels to 0.5, 0.25: 0.5 passes 0.25 only; then 0.75 passes 0.5, not 0.25
    assert cli.main(["probe", "--model", "multithreshold", "--levels", "1,0.5", "--T", "4", "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["01 10 10 10", "sent on per step: 0.25 0.5 0.5 0.5"]
    # every profile runs the multithreshold neuron (Sinabs' several-spikes choice is the IF model's only)
    for prof in ("sinabs", "sinabs-from-model"):
        assert cli.main(["probe", "--model", "multithreshold", "--profile", prof, "--T", "2"]) == 0


def test_profiles_per_model(capsys):
    assert cli.main(["profiles", "--model", "multithreshold"]) == 0
    out = capsys.readouterr().out
    assert "'multithreshold' model" in out and "--model if|ternary" in out


def test_bad_inputs_are_clean_errors_not_bugs(model_file, tmp_path, capsys):
    """Issue 10: a string array, a batch of 0 and a model whose Upsample would need terabytes are
    input errors (exit 2) found before anything large is allocated."""
    from refsim import save_model
    from refsim.graph import Graph, Input, Neuron, Output, Upsample
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    np.save(tmp_path / "b0.npy", np.zeros((0, 1, 8, 8)))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    save_model(Graph([Input("x", (1, 8, 8)), Upsample("u", ["x"], scale_factor=100000), Neuron("n", ["u"]),
                      Output("o", ["n"])]), tmp_path / "up.safetensors")
    for argv, words in (([str(model_file), str(tmp_path / "s.npy")], "dtype"),
                        ([str(model_file), str(tmp_path / "b0.npy")], "batch of 0"),
                        ([str(tmp_path / "up.safetensors"), str(tmp_path / "x.npy")], "working memory")):
        assert cli.main(["run"] + argv + ["--T", "2", "--no-progress"]) == 2
        assert words in capsys.readouterr().err


@pytest.mark.parametrize("case", ["fifo", "folder", "onnx_as_model", "text_as_npy"])
def test_inputs_of_the_wrong_kind_exit_2_saying_what_they_are(tmp_path, capsys, case):
    """Issue 21 items 8 and 10: a FIFO or a folder is refused before it is opened (a FIFO would block
    forever); a file of another kind says what it is and which command takes it."""
    from refsim import models, save_model
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
    save_model(g, tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    model, inp = str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy")
    if case == "fifo":
        os.mkfifo(tmp_path / "pipe")
        inp, want = str(tmp_path / "pipe"), "FIFO"
    elif case == "folder":
        model, want = str(tmp_path), "folder"
    elif case == "onnx_as_model":
        (tmp_path / "ann.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100))
        model, want = str(tmp_path / "ann.onnx"), "refsim convert"
    else:
        (tmp_path / "t.npy").write_text("not an array\n")
        inp, want = str(tmp_path / "t.npy"), "a text file"
    assert cli.main(["run", model, inp, "--T", "2", "--no-progress"]) == 2
    assert want in capsys.readouterr().err


@pytest.mark.parametrize("address", ["x", "tcp://", "http://h:1"])
def test_segment_scheduler_address_checked_before_connecting(tmp_path, capsys, address):
    assert cli.main(["segment", DEMO_MODEL, DEMO_IMAGE, "-o", str(tmp_path / "o"), "--scheduler", address,
                     "--T", "2", "--no-progress"]) == 2
    assert "scheduler" in capsys.readouterr().err


def test_demo_and_analyze_refuse_an_output_folder_that_is_a_file(tmp_path, capsys, model_file):
    """Found by validation/fuzz_cli.py: --out-dir naming an existing file was a FileExistsError
    (exit 3) after the whole run; now exit 2 before any work, naming the folder."""
    f = tmp_path / "a_file"
    f.write_text("x")
    assert cli.main(["demo", "--out-dir", str(f), "--T", "1", "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert cli.main(["demo", "--out-dir", str(tmp_path / "no" / "such" / "parent"), "--T", "1", "--no-progress"]) == 2
    assert f.read_text() == "x"


def test_an_array_file_is_read_by_its_content_not_its_name(tmp_path):
    """Found by validation/fuzz_cli.py: an .npz name holding .npy content (another command's output
    written there) was a TypeError (exit 3). np.load decides by content; so does refsim."""
    from refsim.io.inputs import load_array
    np.save(tmp_path / "a.npy", np.arange(3.0))
    os.replace(tmp_path / "a.npy", tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.arange(4.0))
    os.replace(tmp_path / "b.npz", tmp_path / "b.npy")
    assert load_array(str(tmp_path / "a.npz")).tolist() == [0.0, 1.0, 2.0]
    assert load_array(str(tmp_path / "b.npy")).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_single_number_as_input_and_a_fifo_to_import_are_refused(tmp_path, model_file, capsys):
    """Found by validation/fuzz_cli.py: a 0-d .npy as the input of run, analyze or convert --calib was
    an IndexError (exit 3); `refsim import FIFO` blocked forever while naming the file's kind."""
    np.save(tmp_path / "s.npy", np.float64(3.0))
    for argv in (["run", str(model_file), str(tmp_path / "s.npy"), "--T", "1"],
                 ["analyze", str(model_file), str(tmp_path / "s.npy"), "--report", str(tmp_path / "r"), "--T", "1"],
                 ["convert", str(model_file), "--calib", str(tmp_path / "s.npy"), "-o", str(tmp_path / "o.safetensors"),
                  "--T", "1"]):
        assert cli.main(argv + ["--no-progress"]) == 2
        assert "single number" in capsys.readouterr().err
    if hasattr(os, "mkfifo"):
        for name in ("f", "f.onnx", "f.nir"):
            os.mkfifo(tmp_path / name)
            assert cli.main(["import", str(tmp_path / name), "-o", str(tmp_path / "i.safetensors")]) == 2
            assert "FIFO" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists() and not (tmp_path / "i.safetensors").exists()


def test_a_text_file_named_npy_is_called_a_text_file(tmp_path, model_file, capsys):
    """Issue 21 class 10: the message names what the file is, not numpy's remark about pickles."""
    (tmp_path / "t.npy").write_text("hello\n")
    assert cli.main(["run", str(model_file), str(tmp_path / "t.npy"), "--T", "1"]) == 2
    err = capsys.readouterr().err
    assert "found a text file" in err and "pickle" not in err


def test_golden_init_without_model_or_inputs_and_demo_traces_into_a_missing_folder(tmp_path, capsys):
    """Checks that moved from the command into the library still refuse on the command line: golden
    init without --model/--inputs (exit 2, naming golden init, no folder made) and demo --out into a
    folder that does not exist (exit 2 before any work, naming the traces file)."""
    cases = tmp_path / "cases"
    assert cli.main(["golden", "init", str(cases)]) == 2
    err = capsys.readouterr().err
    assert "golden init" in err and "a model and inputs" in err and not cases.exists()
    bad = tmp_path / "missing" / "t.npz"
    assert cli.main(["demo", "--out", str(bad), "--out-dir", str(tmp_path / "d"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "traces file" in err and str(bad) in err and not (tmp_path / "d").exists()
