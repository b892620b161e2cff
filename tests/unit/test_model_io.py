"""Model file format: exact round trips, and every kind of malformed file rejected with a clear error."""
import json
import os
import struct

import numpy as np
import pytest

from refsim import load_model, models, save_model
from refsim.encoding import PoissonEncoder
from refsim.errors import ModelFormatError, ShapeError
from refsim.graph import Graph
from refsim.io import safetensors
from refsim.simulator import Recorder, Simulator


@pytest.fixture
def unet():
    return models.hippocampus_unet(in_shape=(1, 8, 8), channels=(4, 8), seed=3)


def _raw(path):
    tensors, meta = safetensors.read(path)
    return tensors, meta, json.loads(meta["graph"])


def _write(path, doc, tensors):
    safetensors.write(path, tensors, {"format": "refsim-model", "format_version": "1", "graph": json.dumps(doc)})


def test_round_trip_is_exact(unet, tmp_path):
    p = tmp_path / "m.safetensors"
    save_model(unet, p)
    g = load_model(p)
    d1, t1 = unet.to_dict()
    d2, t2 = g.to_dict()
    assert d1 == d2
    assert t1.keys() == t2.keys()
    for k in t1:
        assert t1[k].dtype == t2[k].dtype == np.float32
        np.testing.assert_array_equal(t1[k], t2[k])
    x = np.random.default_rng(0).random((2, 1, 8, 8))
    a = Simulator(unet).run(x, 10, PoissonEncoder(seed=1), Recorder(spikes=True))
    b = Simulator(g).run(x, 10, PoissonEncoder(seed=1), Recorder(spikes=True))
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])
    np.testing.assert_array_equal(a.final_output["output"], b.final_output["output"])


def test_saving_twice_gives_identical_bytes(unet, tmp_path):
    save_model(unet, tmp_path / "a.safetensors")
    save_model(unet, tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_per_channel_thresholds_and_overrides_round_trip(tmp_path):
    from refsim.graph import Input, Neuron, Output, Conv2d
    w = np.ones((2, 1, 1, 1), np.float32)
    g = Graph([Input("in", (1, 2, 2)), Conv2d("c", ["in"], w),
               Neuron("n", ["c"], "if", np.array([0.5, 2.0], np.float32), choices={"comparison": ">="}),
               Neuron("m", ["n"], "multithreshold", 1.0, levels=[1.0, 0.5]), Output("o", ["m"])])
    save_model(g, tmp_path / "g.safetensors")
    h = load_model(tmp_path / "g.safetensors")
    np.testing.assert_array_equal(h["n"].threshold, [0.5, 2.0])
    assert h["n"].choices == {"comparison": ">="} and h["m"].levels == (1.0, 0.5)


def test_readable_by_the_safetensors_package(unet, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    save_model(unet, tmp_path / "m.safetensors")
    loaded = st.load_file(str(tmp_path / "m.safetensors"))
    _, tensors = unet.to_dict()
    for k, v in tensors.items():
        np.testing.assert_array_equal(loaded[k], v)


def test_reads_files_written_by_the_safetensors_package(unet, tmp_path):
    """The other direction: the package writes the container, refsim's reader loads the model."""
    st = pytest.importorskip("safetensors.numpy")
    save_model(unet, tmp_path / "m.safetensors")
    tensors, meta = safetensors.read(tmp_path / "m.safetensors")
    st.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp_path / "p.safetensors"),
                 metadata=meta)
    back = load_model(tmp_path / "p.safetensors")
    assert back.order == unet.order
    for n in unet.order:
        for f, v in unet[n].tensors().items():
            np.testing.assert_array_equal(back[n].tensors()[f], v)


def mutate(unet, tmp_path, fn):
    p = tmp_path / "m.safetensors"
    save_model(unet, p)
    tensors, meta, doc = _raw(p)
    fn(doc, tensors)
    q = tmp_path / "bad.safetensors"
    _write(q, doc, tensors)
    return q


def _node(doc, name):
    return next(n for n in doc["nodes"] if n["name"] == name)


CASES = {
    "unknown node type": (lambda d, t: _node(d, "pool1").update(type="MaxPool2d"), ModelFormatError, ["pool1", "MaxPool2d", "AvgPool2d"]),
    "dangling edge": (lambda d, t: _node(d, "enc2a").update(inputs=["nowhere"]), ModelFormatError, ["enc2a", "nowhere", "dangling"]),
    "cycle": (lambda d, t: _node(d, "enc1a").update(inputs=["enc1b_if"]), ModelFormatError, ["cycle", "enc1a"]),
    "shape mismatch": (lambda d, t: t.update({"enc2a.weight": np.zeros((8, 5, 3, 3), np.float32)}), ShapeError,
                       ["enc2a", "weight", "(8, 5, 3, 3)"]),
    "NaN weight": (lambda d, t: t["dec1a.weight"].__setitem__((0, 0, 0, 0), np.nan), ModelFormatError,
                   ["dec1a", "weight", "finite", "nan"]),
    "inf weight": (lambda d, t: t["head.weight"].__setitem__((0, 0, 0, 0), np.inf), ModelFormatError, ["head", "inf"]),
    "wrong dtype": (lambda d, t: t.update({"up1.weight": t["up1.weight"].astype(np.float64)}), ModelFormatError,
                    ["up1", "float32", "float64"]),
    "missing tensor": (lambda d, t: t.pop("enc1b.weight"), ModelFormatError, ["enc1b", "missing tensor"]),
    "unreferenced tensor": (lambda d, t: t.update({"stray": np.zeros(3, np.float32)}), ModelFormatError, ["stray"]),
    "unknown field": (lambda d, t: _node(d, "pool1").update(kernal_size=2), ModelFormatError, ["pool1", "kernal_size", "kernel_size"]),
    "bad field value": (lambda d, t: _node(d, "pool1").update(stride=0), ModelFormatError, ["pool1", "stride"]),
    "future version": (lambda d, t: d.update(format_version=2), ModelFormatError, ["format_version", "2"]),
    "duplicate name": (lambda d, t: _node(d, "pool1").update(name="enc1a"), ModelFormatError, ["enc1a", "unique"]),
    "unknown neuron model": (lambda d, t: _node(d, "enc1a_if").update(model="adex"), ModelFormatError,
                             ["enc1a_if", "adex", "multithreshold"]),
    "bad neuron choice": (lambda d, t: _node(d, "enc1a_if").update(choices={"comparison": "=>"}), ModelFormatError,
                          ["enc1a_if", "choices"]),
    "concat size mismatch": (lambda d, t: _node(d, "cat1").update(inputs=["enc1b_if", "enc2b_if"]), ShapeError, ["cat1"]),
    # neuron parameters are checked at load, not when a Simulator is built (issue 8)
    "bad levels": (lambda d, t: _node(d, "enc1a_if").update(model="multithreshold", levels=[1.0, 1.0, "a"]),
                   ModelFormatError, ["enc1a_if", "levels"]),
    "levels not descending": (lambda d, t: _node(d, "enc1a_if").update(model="multithreshold", levels=[0.5, 1.0]),
                              ModelFormatError, ["enc1a_if", "levels", "descending"]),
    "choices not an object": (lambda d, t: _node(d, "enc1a_if").update(choices="ab"), ModelFormatError,
                              ["enc1a_if", "choices"]),
    "unknown choice name": (lambda d, t: _node(d, "enc1a_if").update(choices={"compare": ">"}), ModelFormatError,
                            ["enc1a_if", "choices", "compare"]),
    "choice invalid for the model": (lambda d, t: _node(d, "enc1a_if").update(model="ternary",
                                                                               choices={"spikes_per_step": "multi"}),
                                     ModelFormatError, ["enc1a_if", "ternary", "spikes_per_step"]),
    "negative threshold": (lambda d, t: _node(d, "enc1a_if").update(threshold=-1.0), ModelFormatError,
                           ["enc1a_if", "threshold"]),
    "threshold underflows float32": (lambda d, t: _node(d, "enc1a_if").update(threshold=1e-50), ModelFormatError,
                                     ["enc1a_if", "threshold", "float32"]),
    "missing required field": (lambda d, t: _node(d, "input").pop("shape"), ModelFormatError, ["input", "shape"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_models_rejected(unet, tmp_path, case):
    fn, exc, words = CASES[case]
    q = mutate(unet, tmp_path, fn)
    with pytest.raises(exc) as e:
        load_model(q)
    msg = str(e.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    if isinstance(e.value, ModelFormatError):
        assert "bad.safetensors" in msg


@pytest.mark.parametrize("cut", [0, 5, 20, -1, -100])
def test_truncated_file(unet, tmp_path, cut):
    p = tmp_path / "m.safetensors"
    save_model(unet, p)
    raw = p.read_bytes()
    q = tmp_path / "cut.safetensors"
    q.write_bytes(raw[:cut] if cut >= 0 else raw[:len(raw) + cut])
    with pytest.raises(ModelFormatError) as e:
        load_model(q)
    assert "cut.safetensors" in str(e.value)


def test_not_a_model_file(tmp_path):
    q = tmp_path / "x.safetensors"
    q.write_bytes(struct.pack("<Q", 2) + b"{}")
    with pytest.raises(ModelFormatError, match="format"):
        load_model(q)
    with pytest.raises(ModelFormatError, match="no such file|readable"):
        load_model(tmp_path / "missing.safetensors")


def test_overlapping_tensor_data_rejected(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    h = json.dumps(header).encode()
    q = tmp_path / "o.safetensors"
    q.write_bytes(struct.pack("<Q", len(h)) + h + bytes(12))
    with pytest.raises(ModelFormatError, match="overlap"):
        safetensors.read(q)


def test_failed_save_leaves_nothing(tmp_path):
    with pytest.raises(ModelFormatError):
        safetensors.write(tmp_path / "x.safetensors", {"a": np.array(["s"])})
    assert os.listdir(tmp_path) == []


def test_every_loaded_model_passes_info(unet, tmp_path, capsys):
    """What loads also describes itself: no parameter is left to fail later (refsim info)."""
    from refsim import cli
    p = tmp_path / "m.safetensors"
    mt = unet.nodes["enc1a_if"].replace(model="multithreshold", levels=(1.0, 0.5), choices={"comparison": ">="})
    save_model(Graph([mt if n == "enc1a_if" else unet[n] for n in unet.order], name="x"), p)
    assert cli.main(["info", str(p)]) == 0
    assert "levels=1,0.5" in capsys.readouterr().out


def test_nodes_are_immutable_and_replace_validates(unet):
    node = unet["enc1a"]
    with pytest.raises(AttributeError, match="replace"):
        node.stride = (2, 2)
    with pytest.raises(ValueError):
        node.weight[0, 0, 0, 0] = 1.0  # tensors are read-only views
    moved = node.replace(stride=2)
    assert moved.stride == (2, 2) and node.stride == (1, 1) and moved.weight is not None
    with pytest.raises(ModelFormatError, match="stride"):
        node.replace(stride=0)
    from refsim.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="kernal_size"):
        node.replace(kernal_size=3)
    n = unet["enc1a_if"].replace(threshold=2.0, choices={"reset": "zero"})
    assert n.threshold == 2.0 and n.choices == {"reset": "zero"} and n.name == "enc1a_if"
    with pytest.raises(ModelFormatError, match="threshold"):
        n.replace(threshold=0.0)


def test_header_format_version_is_checked(unet, tmp_path):
    p = tmp_path / "m.safetensors"
    save_model(unet, p)
    tensors, meta = safetensors.read(p)
    meta["format_version"] = "2"
    safetensors.write(tmp_path / "v2.safetensors", tensors, meta)
    with pytest.raises(ModelFormatError, match="v2.safetensors.*format_version"):
        load_model(tmp_path / "v2.safetensors")


def _mutated_model(tmp_path, mutate):
    """The small U-Net's model file with its JSON graph changed by ``mutate(doc)``."""
    import json as _json
    from refsim import models as _models
    from refsim.io import safetensors as _st
    g = _models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
    path = tmp_path / "m.safetensors"
    save_model(g, path)
    tensors, meta = _st.read(path)
    doc = _json.loads(meta["graph"])
    mutate({n["name"]: n for n in doc["nodes"]}, doc)
    meta = dict(meta, graph=_json.dumps(doc))
    _st.write(path, tensors, meta)
    return path


@pytest.mark.parametrize("case,mutate,where", [
    ("model as a list", lambda n, d: n["enc1a_if"].update(model=["if"]), "'model'"),
    ("model as an object", lambda n, d: n["enc1a_if"].update(model={"a": 1}), "'model'"),
    ("threshold 10**400", lambda n, d: n["enc1a_if"].update(threshold=10 ** 400), "'threshold'"),
    ("threshold 1e39 (inf in float32)", lambda n, d: n["enc1a_if"].update(threshold=1e39), "'threshold'"),
    ("v_min 10**400", lambda n, d: n["enc1a_if"].update(choices={"v_min": 10 ** 400}), "v_min"),
    ("ragged levels", lambda n, d: n["enc1a_if"].update(model="multithreshold", levels=[1, [0.5]]), "'levels'"),
    ("levels 10**400", lambda n, d: n["enc1a_if"].update(model="multithreshold", levels=[10 ** 400]), "'levels'"),
    ("a choice as a list", lambda n, d: n["enc1a_if"].update(choices={"comparison": [">"]}), "comparison"),
    ("a lone surrogate in a name", lambda n, d: n["output"].update(name="out\ud800"), "node name"),
    ("a tensor key that is not a string", lambda n, d: n["enc1a"].update(weight={"tensor": 5}), "'weight'"),
    ("inputs of numbers", lambda n, d: n["enc1a"].update(inputs=[3]), "'inputs'"),
])
def test_graph_fields_of_the_wrong_type_or_range_are_format_errors(tmp_path, capsys, case, mutate, where):
    """Issue 21 class 1 and 2: every graph field's type and range is checked at load (numbers also
    after the cast to float32), naming the node and field; refsim info exits 2, never 3."""
    path = _mutated_model(tmp_path, mutate)
    with pytest.raises(ModelFormatError) as e:
        load_model(path)
    assert where in str(e.value) and str(path) in str(e.value)
    from refsim import cli
    assert cli.main(["info", str(path)]) == 2
    assert where in capsys.readouterr().err
