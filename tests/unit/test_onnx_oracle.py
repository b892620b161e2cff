"""ONNX import against onnxruntime, without torch: the graphs are written here with ``onnx.helper``
(as an exporter would write them), onnxruntime computes their outputs (an oracle nobody here
wrote), and refsim's ANN reference of the imported graph must agree to float32 rounding. The
batch-norm variances are small, so dropping the epsilon would show (it moves outputs by about 1 %)."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from refsim.convert.normalize import ann_activations  # noqa: E402
from refsim.io.onnx import load_onnx  # noqa: E402


def _init(name, a):
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _save(tmp_path, nodes, inits, in_shape, out_shape, name):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(m, path)
    return path


def _unet(tmp_path, rng):
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.5
    inits = [_init("w1", w(4, 1, 3, 3)), _init("b1", w(4)),
             _init("g", rng.random(4) + 0.5), _init("beta", w(4)), _init("mean", w(4)),
             _init("var", rng.random(4) * 1e-3 + 1e-4),  # eps (1e-5) is 1-10 % of these
             _init("w2", w(3, 4, 3, 3)), _init("b2", w(3)), _init("wt", w(3, 2, 2, 2)), _init("bt", w(2)),
             _init("w3", w(1, 6, 1, 1)), _init("b3", w(1))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["r1"]),
             helper.make_node("AveragePool", ["r1"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("ConvTranspose", ["r2", "wt", "bt"], ["t"], strides=[2, 2]),
             helper.make_node("Relu", ["t"], ["r3"]),
             helper.make_node("Concat", ["r1", "r3"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w3", "b3"], ["c3"]),
             helper.make_node("Sigmoid", ["c3"], ["y"])]
    return _save(tmp_path, nodes, inits, [2, 1, 8, 8], [2, 1, 8, 8], "unet"), (2, 1, 8, 8)


def _classifier(tmp_path, rng):
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.3
    inits = [_init("w1", w(3, 1, 3, 3)), _init("b1", w(3)), _init("fc1", w(16, 3 * 6 * 6)), _init("fb1", w(16)),
             _init("fc2", w(16, 5)), _init("fb2", w(5))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Flatten", ["r1"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fc1", "fb1"], ["g1"], transB=1),
             helper.make_node("Relu", ["g1"], ["r2"]),
             helper.make_node("MatMul", ["r2", "fc2"], ["m"]),
             helper.make_node("Add", ["m", "fb2"], ["y"])]
    return _save(tmp_path, nodes, inits, [3, 1, 8, 8], [3, 5], "classifier"), (3, 1, 8, 8)


@pytest.mark.parametrize("make", [_unet, _classifier])
def test_imported_graph_equals_onnxruntime(tmp_path, make):
    rng = np.random.default_rng(7)
    path, shape = make(tmp_path, rng)
    x = rng.random(shape).astype(np.float32)
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = load_onnx(path)
    ours = ann_activations(g, x.astype(np.float64))[g.outputs[0]]
    assert ours.shape == theirs.shape
    scale = float(np.max(np.abs(theirs)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6 * max(scale, 1.0))
    assert np.max(np.abs(ours - theirs)) < 1e-3 * max(scale, 1.0)  # and far from the ~1 % an epsilon would move
