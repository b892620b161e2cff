"""refsim segment: masks on the input's own grid (checked with nibabel), Dice that nibabel and NumPy
alone agree with, a folder with a bad volume that still finishes, nnU-Net naming, and a local Dask
cluster that gives the serial results bit for bit."""
import csv
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

from refsim import cli
from refsim.data import DEMO_IMAGE, DEMO_LABEL, DEMO_MODEL

OBLIQUE = np.array([[0.0, -0.9, 0.2, 31.0], [1.1, 0.0, 0.1, -7.0], [0.1, 0.3, 1.0, 2.5], [0, 0, 0, 1]])


def _write(path, data, affine=OBLIQUE, dtype=None):
    nib.save(nib.Nifti1Image(data if dtype is None else data.astype(dtype), affine), str(path))
    return str(path)


def _synthetic(shape, seed):
    """A bright ellipsoid blob on a dim background, and its label."""
    z, y, x = np.indices(shape)
    c = [s / 2 for s in shape]
    blob = ((z - c[0]) / (shape[0] / 3)) ** 2 + ((y - c[1]) / (shape[1] / 4)) ** 2 + ((x - c[2]) / (shape[2] / 4)) ** 2 < 1
    img = 40 + 150 * blob + np.random.default_rng(seed).normal(0, 10, shape)
    return np.clip(img, 0, 255), blob.astype(np.uint8)


def test_demo_volume_mask_on_the_input_grid_and_dice_agrees_with_nibabel(tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    rc = cli.main(["segment", DEMO_MODEL, DEMO_IMAGE, "-o", str(out), "--label", DEMO_LABEL, "--T", "20", "--prob",
                   "--no-progress"])
    assert rc == 0
    src, m = nib.load(DEMO_IMAGE), nib.load(str(out))
    assert m.shape == src.shape and np.allclose(m.affine, src.affine) and m.get_data_dtype() == np.uint8
    prob = nib.load(str(tmp_path / "mask_prob.nii.gz"))
    assert prob.shape == src.shape and prob.get_data_dtype() == np.float32
    p = np.asarray(m.dataobj) > 0
    lab = np.asarray(nib.load(DEMO_LABEL).dataobj) > 0
    assert np.array_equal(p, np.asarray(prob.dataobj) > 0.5)
    want = 2 * np.logical_and(p, lab).sum() / (p.sum() + lab.sum())
    with open(tmp_path / "dice.csv") as fh:
        row = next(csv.DictReader(fh))
    assert float(row["dice_3d"]) == pytest.approx(want, abs=1e-6)
    assert "Dice" in capsys.readouterr().out


@pytest.mark.parametrize("shape,dtype,axis", [((9, 61, 30), np.uint8, 0), ((40, 7, 33), np.int16, 1),
                                              ((20, 50, 11), np.float32, 2)])
def test_odd_shapes_orientations_and_dtypes(tmp_path, shape, dtype, axis):
    img, lab = _synthetic(shape, 1)
    _write(tmp_path / "v.nii.gz", img, dtype=dtype)
    _write(tmp_path / "l.nii.gz", lab)
    rc = cli.main(["segment", DEMO_MODEL, str(tmp_path / "v.nii.gz"), "-o", str(tmp_path / "out"), "--axis", str(axis),
                   "--label", str(tmp_path / "l.nii.gz"), "--T", "8", "--no-progress"])
    assert rc == 0
    m = nib.load(str(tmp_path / "out" / "v.nii.gz"))
    assert m.shape == shape and np.allclose(m.affine, OBLIQUE)
    # slice Dice along the slicing axis, recomputed here slice by slice from the written mask
    # (empty in both: 1, refsim segment's default policy)
    pred, ref = np.asarray(m.dataobj) > 0, lab > 0
    want = []
    for i in range(shape[axis]):
        a, b = np.take(pred, i, axis=axis), np.take(ref, i, axis=axis)
        n = int(a.sum()) + int(b.sum())
        want.append(1.0 if n == 0 else 2.0 * int((a & b).sum()) / n)
    with open(tmp_path / "out" / "slice_dice.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["slice"]) for r in rows] == list(range(shape[axis]))
    np.testing.assert_allclose([float(r["dice"]) for r in rows], want, atol=1e-6)
    with open(tmp_path / "out" / "dice.csv") as fh:
        assert float(next(csv.DictReader(fh))["slice_dice_mean"]) == pytest.approx(np.mean(want), abs=1e-6)


def test_4d_file_with_one_volume(tmp_path):
    img, _ = _synthetic((8, 40, 30), 2)
    _write(tmp_path / "v4.nii.gz", img[..., None], dtype=np.float32)
    assert cli.main(["segment", DEMO_MODEL, str(tmp_path / "v4.nii.gz"), "-o", str(tmp_path / "o"), "--T", "4",
                     "--no-progress"]) == 0
    assert nib.load(str(tmp_path / "o" / "v4.nii.gz")).shape == (8, 40, 30)


def _folder(tmp_path):
    inp, labs = tmp_path / "in", tmp_path / "labels"
    inp.mkdir()
    labs.mkdir()
    for i, shape in enumerate([(8, 40, 30), (6, 56, 48)]):
        img, lab = _synthetic(shape, i)
        _write(inp / f"case{i}_0000.nii.gz", img, dtype=np.int16)
        _write(labs / f"case{i}.nii.gz", lab)
    return inp, labs


def test_folder_with_bad_volumes_finishes_the_others(tmp_path, capsys):
    inp, labs = _folder(tmp_path)
    nan = _synthetic((5, 30, 30), 3)[0].astype(np.float32)
    nan[2, 3, 4] = np.nan
    _write(inp / "nan_0000.nii.gz", nan)
    _write(inp / "flat_0000.nii.gz", np.ones((30, 30), np.float32))
    img, lab = _synthetic((8, 40, 30), 4)
    _write(inp / "grid_0000.nii.gz", img)
    _write(labs / "grid.nii.gz", lab[:, :, :29])  # a label on another grid
    rc = cli.main(["segment", DEMO_MODEL, str(inp), "-o", str(tmp_path / "out"), "--label", str(labs), "--T", "6",
                   "--no-progress"])
    assert rc == 2
    out = capsys.readouterr().out
    assert "3 failed" in out and "nan" in out and "flat" in out and "grid" in out
    made = sorted(os.listdir(tmp_path / "out"))
    assert made == ["case0.nii.gz", "case1.nii.gz", "dice.csv", "slice_dice.csv"]  # nothing half-written


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    inp, _ = _folder(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert cli.main(["segment", DEMO_MODEL, str(inp), "-o", str(tmp_path / "afile"), "--no-progress"]) == 2
    single = str(inp / "case0_0000.nii.gz")
    assert cli.main(["segment", DEMO_MODEL, single, "-o", single, "--no-progress"]) == 2
    shutil.copy(single, tmp_path / "case9_0001.nii.gz")
    os.makedirs(tmp_path / "two")
    shutil.copy(single, tmp_path / "two" / "case9_0000.nii.gz")
    shutil.copy(single, tmp_path / "two" / "case9_0001.nii.gz")
    assert cli.main(["segment", DEMO_MODEL, str(tmp_path / "two"), "-o", str(tmp_path / "o2"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "afile" in err and "overwrite" in err and "modality" in err


def test_local_dask_cluster_gives_the_serial_results_bit_for_bit(tmp_path):
    pytest.importorskip("distributed")
    inp, labs = _folder(tmp_path)
    args = ["segment", DEMO_MODEL, str(inp), "--label", str(labs), "--T", "6", "--prob", "--no-progress"]
    assert cli.main(args + ["-o", str(tmp_path / "serial")]) == 0
    assert cli.main(args + ["-o", str(tmp_path / "dask"), "--workers", "2"]) == 0
    for f in sorted(os.listdir(tmp_path / "serial")):
        if f.endswith(".nii.gz"):
            a, b = nib.load(str(tmp_path / "serial" / f)), nib.load(str(tmp_path / "dask" / f))
            assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)), f
    assert (tmp_path / "serial" / "dice.csv").read_text() == (tmp_path / "dask" / "dice.csv").read_text()


def test_sweep_runs_serial_and_on_dask_with_the_same_rows(tmp_path, capsys):
    """An evaluation sweep (T x profile, all cut-offs from one run per setting): one row per case,
    setting and cut-off; the local Dask cluster gives the same rows."""
    inp, labs = _folder(tmp_path)
    args = ["segment", DEMO_MODEL, str(inp), "--label", str(labs), "--sweep-T", "4,6", "--sweep-profile",
            "paper,spikingjelly", "--sweep-cutoff", "0.3,0.5", "--no-progress"]
    assert cli.main(args + ["-o", str(tmp_path / "s1")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "s1" / "sweep.csv")))
    assert len(rows) == 2 * 2 * 2 * 2 and {r["profile"] for r in rows} == {"paper", "spikingjelly"}
    assert not any(f.endswith(".nii.gz") for f in os.listdir(tmp_path / "s1"))
    pytest.importorskip("distributed")
    assert cli.main(args + ["-o", str(tmp_path / "s2"), "--workers", "2"]) == 0
    assert (tmp_path / "s1" / "sweep.csv").read_text() == (tmp_path / "s2" / "sweep.csv").read_text()
    assert cli.main(args[:-1] + ["--sweep-backend", "fast", "-o", str(tmp_path / "s3"), "--no-progress"]) == 2


@pytest.mark.parametrize("meta", [{"normalize": "zero-mean", "encoding": "poisson-ternary", "axis": 1},
                                  {"normalize": "unit", "axis": 2}])
def test_run_and_segment_prepare_the_same_inputs(tmp_path, meta):
    """One input preparation (refsim.io.inputs): the same volume gives bit-identical model inputs and
    outputs through refsim run and refsim segment, following the model's metadata (axis,
    normalisation), also when the brightest voxel is cropped away by the slicing."""
    from refsim import models, save_model
    from refsim.conformance import load_traces
    from refsim.io.nifti import prepare_slices, read_volume, unslice
    from refsim.readout import probability
    g = models.hippocampus_unet(in_shape=(1, 16, 12), channels=(4, 8), seed=3)
    g = type(g)([g[n] for n in g.order], name=g.name, metadata=dict(g.metadata, **meta))
    save_model(g, tmp_path / "m.safetensors")
    img, _ = _synthetic((14, 22, 20), 2)
    img[0, 0, 0] = 1000.0  # outside the centred 16 x 12 crop along every axis: only the volume maximum sees it
    vol = _write(tmp_path / "v.nii.gz", img, dtype=np.float32)
    T = 6
    assert cli.main(["run", str(tmp_path / "m.safetensors"), vol, "--T", str(T), "--record-inputs", "--out",
                     str(tmp_path / "t.npz"), "--no-progress"]) == 0
    assert cli.main(["segment", str(tmp_path / "m.safetensors"), vol, "-o", str(tmp_path / "seg"), "--T", str(T),
                     "--prob", "--no-progress"]) == 0
    tr = load_traces(tmp_path / "t.npz")
    x, geo = prepare_slices(read_volume(vol), (16, 12), meta["axis"], meta["normalize"])
    assert np.abs(x).max() < 0.5  # the cropped-away voxel set the volume's scale: slice-wise scaling would differ
    assert cli.main(["run", str(tmp_path / "m.safetensors"), vol, "--T", "1", "--encoding", "static", "--record-inputs",
                     "--out", str(tmp_path / "s.npz"), "--no-progress"]) == 0
    np.testing.assert_array_equal(load_traces(tmp_path / "s.npz").inputs["input"][0], x)  # run's input is segment's
    p = probability(tr.final_output["output"][:, 0], T, "sigmoid-mean")
    want = unslice(p.astype(np.float32), geo, fill=0.0).astype(np.float32)
    got = np.asarray(nib.load(str(tmp_path / "seg" / "v_prob.nii.gz")).dataobj)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", ["nan_affine", "empty_volume", "no_output"])
def test_segment_refuses_volumes_and_models_it_cannot_finish(tmp_path, capsys, case):
    """Issue 21 class 6: refused before the run (exit 2, the file or node named), not after it."""
    from refsim import models, save_model
    from refsim.graph import Graph, Input, Conv2d, Neuron
    model = DEMO_MODEL
    img, _ = _synthetic((6, 20, 20), 0)
    aff = OBLIQUE.copy()
    if case == "nan_affine":
        aff[0, 3] = np.nan
    if case == "empty_volume":
        img = np.zeros((0, 20, 20))
    if case == "no_output":
        rng = np.random.default_rng(0)
        g = Graph([Input("x", (1, 8, 8)), Conv2d("c", ["x"], rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
                                                  padding=1), Neuron("n", ["c"])])
        save_model(g, tmp_path / "m.safetensors")
        model = str(tmp_path / "m.safetensors")
    vol = _write(tmp_path / "v.nii.gz", img, affine=aff, dtype=np.float32)
    assert cli.main(["segment", model, vol, "-o", str(tmp_path / "out"), "--T", "2", "--no-progress"]) == 2
    cap = capsys.readouterr()
    assert {"nan_affine": "affine", "empty_volume": "v.nii.gz: image", "no_output": "Output node"}[case] in cap.out + cap.err


@pytest.mark.parametrize("cutoff", [0.0, 1.0, 1.5, -0.2, "0.5"])
def test_segment_options_refuse_a_cutoff_outside_0_1(cutoff):
    from refsim.errors import ValidationError
    from refsim.segment import SegmentOptions
    with pytest.raises(ValidationError, match="cutoff"):
        SegmentOptions(cutoff=cutoff)


@pytest.mark.parametrize("option,value,named", [("--sweep-T", "4.5", "sweep T"), ("--sweep-T", "4,0", "sweep T"),
                                                ("--sweep-backend", "gpu", "backend"),
                                                ("--sweep-profile", "nosuch", "profile")])
def test_bad_sweep_lists_exit_2_naming_the_field(tmp_path, capsys, option, value, named):
    inp, labs = _folder(tmp_path)
    rc = cli.main(["segment", DEMO_MODEL, str(inp), "--label", str(labs), option, value, "-o", str(tmp_path / "o"),
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and named in err and value.split(",")[-1] in err, err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_an_output_name_too_long_for_the_file_system_is_refused_first(tmp_path):
    """Found by validation/fuzz_cli.py: segment -o with a 300-character name was an OSError (exit 3)
    from makedirs; now exit 2 naming the output before any work."""
    from refsim import cli
    from refsim.data import DEMO_IMAGE, DEMO_MODEL
    for name in ("a" * 300, "a" * 300 + ".nii.gz"):
        assert cli.main(["segment", DEMO_MODEL, DEMO_IMAGE, "-o", str(tmp_path / name), "--T", "1",
                         "--no-progress"]) == 2
    assert list(tmp_path.iterdir()) == []
