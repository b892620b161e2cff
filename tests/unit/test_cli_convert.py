"""refsim convert / import / export and analyze --ann, in-process (issue 11, 12)."""
import json
import os
import warnings

import numpy as np
import pytest

from refsim import cli

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402


@pytest.fixture(scope="module")
def onnx_unet(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(4, 1, 1), nn.Sigmoid()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.rand(1, 1, 8, 8),), str(d / "ann.onnx"), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "b"}})
    np.save(d / "calib.npy", np.random.default_rng(0).random((6, 1, 8, 8)))
    return d


@pytest.mark.parametrize("method", ["balance", "layerwise", "connectionwise"])
def test_convert_writes_a_model_and_a_report(onnx_unet, tmp_path, method, capsys):
    out, rep = tmp_path / "snn.safetensors", tmp_path / "rep.json"
    rc = cli.main(["convert", str(onnx_unet / "ann.onnx"), "--calib", str(onnx_unet / "calib.npy"), "--method", method,
                   "--T", "60", "-o", str(out), "--report", str(rep), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "correlation" in text and ("first layer below them" in text or "every layer within them" in text)
    r = json.loads(rep.read_text())
    assert set(r["layers"]) == {"n1", "n3"} or len(r["layers"]) == 2
    for v in r["layers"].values():
        assert {"threshold", "correlation", "slope", "below_bound", "rate"} <= set(v)
        assert v["correlation"] > 0.8
    from refsim.io import load_model
    g = load_model(out)
    assert g.metadata["ann_head"] == "sigmoid" and g.metadata["conversion"]["calibration_sha256"]
    assert cli.main(["info", str(out)]) == 0


def test_convert_and_import_errors_name_the_option(onnx_unet, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 8, 8)))
    rc = cli.main(["convert", str(onnx_unet / "ann.onnx"), "--calib", str(tmp_path / "bad.npy"), "-o",
                   str(tmp_path / "o.safetensors")])
    assert rc == 2 and "--calib" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
    assert cli.main(["import", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert cli.main(["convert", str(onnx_unet / "ann.onnx"), "--calib", str(onnx_unet / "calib.npy"), "-o",
                     str(tmp_path / "missing" / "o.safetensors")]) == 2


def test_import_onnx_then_export_nir_round_trip(onnx_unet, tmp_path, capsys):
    assert cli.main(["import", str(onnx_unet / "ann.onnx"), "-o", str(tmp_path / "m.safetensors")]) == 0
    assert "ann_head: sigmoid" in capsys.readouterr().out
    pytest.importorskip("nir")
    # convert first (thresholds), then export: the model has only convolutions and IF neurons
    assert cli.main(["convert", str(tmp_path / "m.safetensors"), "--calib", str(onnx_unet / "calib.npy"),
                     "--method", "layerwise", "-o", str(tmp_path / "snn.safetensors"), "--no-progress"]) == 0
    assert cli.main(["export", str(tmp_path / "snn.safetensors"), "-o", str(tmp_path / "snn.nir")]) == 0
    assert cli.main(["import", str(tmp_path / "snn.nir"), "-o", str(tmp_path / "back.safetensors")]) == 0
    from refsim.io import load_model
    a, b = load_model(tmp_path / "snn.safetensors"), load_model(tmp_path / "back.safetensors")
    assert [a[n].TYPE for n in a.order] == [b[n].TYPE for n in b.order]


def test_export_refuses_with_the_reason(tmp_path, capsys):
    pytest.importorskip("nir")
    from refsim.data import DEMO_MODEL
    assert cli.main(["export", DEMO_MODEL, "-o", str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err
    assert "NIR" in err and ("concatenation" in err or "transposed" in err)
    assert not os.path.exists(tmp_path / "x.nir")


def test_analyze_with_the_trained_ann(onnx_unet, tmp_path, capsys):
    snn = tmp_path / "snn.safetensors"
    assert cli.main(["convert", str(onnx_unet / "ann.onnx"), "--calib", str(onnx_unet / "calib.npy"),
                     "--method", "connectionwise", "-o", str(snn), "--no-progress"]) == 0
    rc = cli.main(["analyze", str(snn), str(onnx_unet / "calib.npy"), "--T", "40", "--ann", str(onnx_unet / "ann.onnx"),
                   "--report", str(tmp_path / "rep"), "--no-progress", "--encoding", "poisson"])
    assert rc == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    conv = rep["conversion"]
    assert conv["ann"] == "ann" and "ANN activations" in conv["reference"]
    assert all(v["correlation"] > 0.8 for v in conv["layers"].values())
    # an ANN without the model's layers is refused before the simulation
    torch.manual_seed(0)
    other = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(other.eval(), (torch.rand(1, 1, 8, 8),), str(tmp_path / "other.onnx"), dynamo=False)
    assert cli.main(["analyze", str(snn), str(onnx_unet / "calib.npy"), "--ann", str(tmp_path / "other.onnx"),
                     "--report", str(tmp_path / "rep2")]) == 2
    assert "ANN reference" in capsys.readouterr().err


def test_bad_files_and_options_exit_2_naming_them(onnx_unet, tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx" * 10)
    (tmp_path / "junk.nir").write_bytes(b"not hdf5" * 10)
    for argv, words in ((["import", str(tmp_path / "junk.onnx"), "-o", str(tmp_path / "a.safetensors")], "junk.onnx"),
                        (["import", str(tmp_path / "junk.nir"), "-o", str(tmp_path / "b.safetensors")], "junk.nir"),
                        (["import", str(onnx_unet / "ann.onnx"), "-o", str(tmp_path / "c.safetensors"),
                          "--input-shape", "1,x,8"], "--input-shape"),
                        (["convert", str(onnx_unet / "ann.onnx"), "--calib", str(onnx_unet / "calib.npy"), "-o",
                          str(tmp_path / "d.safetensors"), "--slope-range", "1.2,0.8"], "slope range"),
                        (["export", str(tmp_path / "junk.onnx"), "-o", str(tmp_path / "e.nir")], "junk.onnx")):
        assert cli.main(argv) == 2, argv
        assert words in capsys.readouterr().err
    assert not any((tmp_path / f).exists() for f in ("a.safetensors", "b.safetensors", "c.safetensors",
                                                    "d.safetensors", "e.nir"))
