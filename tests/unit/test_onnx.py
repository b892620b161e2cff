"""ONNX import (issue 11): real torch modules exported by torch 2.13 (TorchScript and dynamo
exporters), imported by refsim; refsim's ANN reference must equal torch's output and onnxruntime's
on the same file to 1e-5 (onnxruntime: an oracle nobody here wrote). Unsupported ops are clear
errors naming the op and node."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from refsim.convert.normalize import ann_activations  # noqa: E402
from refsim.errors import ModelFormatError  # noqa: E402
from refsim.io.onnx import load_onnx  # noqa: E402


class UNet(nn.Module):
    """BatchNorm (after convolutions and a transposed convolution), a residual add, average pooling,
    dropout, a transposed convolution, nearest up-sampling, skip concatenations, a sigmoid head."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.pool, self.drop = nn.AvgPool2d(2), nn.Dropout(0.3)
        self.c3 = nn.Conv2d(4, 8, 3, padding=1)
        self.up, self.b2 = nn.ConvTranspose2d(8, 4, 2, stride=2), nn.BatchNorm2d(4)
        self.us = nn.Upsample(scale_factor=2)
        self.c4 = nn.Conv2d(12, 1, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        a = self.relu(self.b1(self.c1(x)))
        b = self.relu(self.c2(a) + a)                       # residual
        c = self.relu(self.c3(self.drop(self.pool(b))))
        u = self.relu(self.b2(self.up(c)))
        v = self.us(self.pool(b))
        return torch.sigmoid(self.c4(torch.cat([u, b, v], 1)))


class Classifier(nn.Module):
    def __init__(self, view=False):
        super().__init__()
        self.view = view
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=(1, 0))
        self.pool = nn.AvgPool2d(2, padding=1)
        self.fc1, self.fc2 = nn.Linear(3 * 4 * 3, 10), nn.Linear(10, 4)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        x = x.view(x.size(0), -1) if self.view else torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


def _randomise_bn(m):
    torch.manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


EXPORTS = {
    "torchscript": dict(dynamo=False),
    "torchscript-unfolded-bn": dict(dynamo=False, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False),
    "torchscript-dynamic-batch": dict(dynamo=False, dynamic_axes={"x": {0: "batch"}}),
    "dynamo": dict(dynamo=True),
}


def _export(m, x, path, how):
    kw = dict(EXPORTS[how])
    if how == "dynamo":
        pytest.importorskip("onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(path), input_names=["x"], **kw)
    return path


@pytest.mark.parametrize("how", list(EXPORTS))
def test_unet_round_trip_matches_torch_and_onnxruntime(tmp_path, how):
    torch.manual_seed(1)
    m = _randomise_bn(UNet())
    x = torch.rand(3, 1, 8, 8)
    p = _export(m, x, tmp_path / "unet.onnx", how)
    g = load_onnx(p)
    assert g.metadata["ann_head"] == "sigmoid" and g.metadata["readout"] == "sigmoid-mean"
    types = [g[n].TYPE for n in g.order]
    assert {"Add", "Concat", "ConvTranspose2d", "AvgPool2d", "Upsample"} <= set(types)
    assert "BatchNormalization" not in types and len(g.neurons) == 4
    if how == "torchscript-unfolded-bn":
        assert len(g.metadata["folded_batchnorm"]) == 2
    xn = np.random.default_rng(5).random((4, 1, 8, 8)).astype(np.float32)
    if how != "torchscript-dynamic-batch":
        xn = xn[:3]  # onnxruntime holds a fixed batch dimension to the exported one; refsim takes any batch
    ours = ann_activations(g, xn)["output"]
    with torch.no_grad():
        ref = m(torch.from_numpy(xn)).numpy()
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(None, {sess.get_inputs()[0].name: xn})[0]
    assert np.abs(ours - ref).max() < 1e-5
    assert np.abs(ours - onnx_out).max() < 1e-5


@pytest.mark.parametrize("view", [False, True])
@pytest.mark.parametrize("how", ["torchscript", "dynamo"])
def test_classifier_gemm_flatten(tmp_path, view, how):
    torch.manual_seed(2)
    m = Classifier(view).eval()
    x = torch.rand(2, 1, 11, 11)
    g = load_onnx(_export(m, x, tmp_path / "c.onnx", how))
    assert g.metadata["ann_head"] == "none" and "readout" not in g.metadata
    assert [g[n].TYPE for n in g.order].count("Linear") == 2
    xn = x.numpy()
    with torch.no_grad():
        ref = m(x).numpy()
    assert np.abs(ann_activations(g, xn)["output"] - ref).max() < 1e-5


def test_residual_add_runs_on_both_backends_bit_for_bit(tmp_path):
    from refsim.convert import threshold_balance
    from refsim.encoding import PoissonEncoder
    from refsim.simulator import Recorder, Simulator
    from refsim.traces import compare_traces
    torch.manual_seed(1)
    m = _randomise_bn(UNet())
    g = load_onnx(_export(m, torch.rand(2, 1, 8, 8), tmp_path / "u.onnx", "torchscript"))
    calib = np.random.default_rng(0).random((4, 1, 8, 8))
    snn = threshold_balance(g, calib, T=30, backend="reference")
    x = np.random.default_rng(1).random((2, 1, 8, 8))
    rec = Recorder(spikes=True, membranes=True)
    a = Simulator(snn, backend="reference").run(x, 25, PoissonEncoder(seed=2), rec)
    b = Simulator(snn, backend="event").run(x, 25, PoissonEncoder(seed=2), rec)
    assert compare_traces(a, b) == []
    assert sum(int(v.sum()) for v in a.step_counts.values()) > 0


def _tiny(op_nodes, inits, in_shape=(1, 1, 4, 4), out_shape=None, opset=17):
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(op_nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_unsupported_ops_name_the_op_node_and_advice(tmp_path):
    from onnx import helper
    m = _tiny([helper.make_node("MaxPool", ["x"], ["y"], name="pool1", kernel_shape=[2, 2])], {})
    onnx.save(m, tmp_path / "mp.onnx")
    with pytest.raises(ModelFormatError) as e:
        load_onnx(tmp_path / "mp.onnx")
    msg = str(e.value)
    assert "pool1" in msg and "MaxPool" in msg and "AvgPool2d" in msg and "mp.onnx" in msg


def test_bad_structures_are_clear_errors(tmp_path):
    from onnx import helper
    w = np.ones((2, 1, 3, 3), np.float32)
    bn = {k: np.ones(2, np.float32) for k in ("s", "b", "m", "v")}
    cases = {
        # a BatchNorm that is not right after a convolution
        "bn.onnx": (_tiny([helper.make_node("Relu", ["x"], ["r"]),
                           helper.make_node("BatchNormalization", ["r", "s", "b", "m", "v"], ["y"], name="bn")],
                          {k: np.ones(1, np.float32) for k in ("s", "b", "m", "v")}), "folded"),
        # a sigmoid inside the network
        "sig.onnx": (_tiny([helper.make_node("Sigmoid", ["x"], ["s"], name="sg"),
                            helper.make_node("Relu", ["s"], ["y"])], {}), "output head"),
        # a convolution whose weight is computed
        "w.onnx": (_tiny([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Conv", ["x", "r"], ["y"])], {}),
                   "constant weight"),
        # an opset from the future
        "op.onnx": (_tiny([helper.make_node("Relu", ["x"], ["y"])], {}, opset=40), "opset"),
        # a fully symbolic input shape
        "sym.onnx": (_tiny([helper.make_node("Relu", ["x"], ["y"])], {}, in_shape=["b", "c", "h", "w"]), "fixed sizes"),
        # nearest up-sampling by a non-integer factor
        "rs.onnx": (_tiny([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest")],
                          {"sc": np.array([1, 1, 1.5, 1.5], np.float32)}), "integer scale"),
        "ok_bn.onnx": (_tiny([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                              helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])],
                             {"w": w, **bn}), None),
    }
    for fname, (model, words) in cases.items():
        onnx.save(model, tmp_path / fname)
        if words is None:
            load_onnx(tmp_path / fname)
            continue
        with pytest.raises(ModelFormatError, match=words):
            load_onnx(tmp_path / fname)
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07not a protobuf at all" * 3)
    with pytest.raises(ModelFormatError, match="junk.onnx"):
        load_onnx(tmp_path / "junk.onnx")
    g = load_onnx(tmp_path / "sym.onnx", input_shape=(1, 4, 4))
    assert g.shapes[g.inputs[0]] == (1, 4, 4)


def test_converted_onnx_unet_output_approaches_the_ann_as_T_grows(tmp_path):
    """Issue 11's 'done when': the ONNX U-Net (BatchNorm, residual add, transposed convolution,
    concatenations) converted by connection-wise normalisation; with direct (static) input the
    output membrane / T approaches the ANN's logits at least like c/T (T=25 to T=400)."""
    from refsim.convert import normalize
    from refsim.encoding import StaticEncoder
    from refsim.simulator import Recorder, Simulator
    torch.manual_seed(1)
    m = _randomise_bn(UNet())
    g = load_onnx(_export(m, torch.rand(2, 1, 8, 8), tmp_path / "u.onnx", "torchscript-dynamic-batch"))
    x = np.random.default_rng(2).random((4, 1, 8, 8))
    snn = normalize(g, x, "connectionwise", percentile=100)
    assert any(snn[n].TYPE == "Scale" for n in snn.order)  # the residual's skip summand is rescaled
    logits = ann_activations(g, x, head="none")["output"]
    err = []
    for T in (25, 400):
        tr = Simulator(snn, backend="event").run(x, T, StaticEncoder(), Recorder())
        err.append(float(np.abs(tr.final_output["output"] / T - logits).mean()))
    assert err[1] < err[0] / 4, err
