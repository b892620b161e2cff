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



def _unchecked(tmp_path, nodes, inits, in_shape, out_shape, name):
    """A model saved without onnx.checker (as a broken exporter might write it)."""
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    p = str(tmp_path / f"{name}.onnx")
    onnx.save(m, p)
    return p


@pytest.mark.parametrize("op,w", [("Conv", np.ones((2, 1, 3, 3), np.float32)),
                                  ("ConvTranspose", np.ones((1, 2, 3, 3), np.float32))])
def test_an_op_with_too_many_inputs_is_refused_naming_the_node(tmp_path, op, w):
    """Conv and ConvTranspose take 2 or 3 inputs (X, W, optional B); a fourth is refused with the node
    and the input count named, not ignored."""
    from refsim.errors import ModelFormatError
    node = helper.make_node(op, ["x", "w", "b", "b"], ["y"], name="four_in", pads=[1, 1, 1, 1])
    p = _unchecked(tmp_path, [node], [_init("w", w), _init("b", np.zeros(2))], [1, 1, 4, 4], [1, 2, 4, 4], op)
    with pytest.raises(ModelFormatError, match="four_in") as e:
        load_onnx(p)
    assert "expected 2 to 3 inputs, found 4" in str(e.value)


@pytest.mark.parametrize("op", ["Gemm", "Conv"])
def test_a_weight_input_left_empty_is_refused(tmp_path, op):
    """The weight of a Gemm or Conv must be a constant; an empty input name there is refused as such."""
    from refsim.errors import ModelFormatError
    node = helper.make_node(op, ["x", ""], ["y"], name="no_weight")
    p = _unchecked(tmp_path, [node], [], [1, 3] if op == "Gemm" else [1, 1, 4, 4], [1, 2], op)
    with pytest.raises(ModelFormatError, match="no_weight.*a constant at input 1"):
        load_onnx(p)


@pytest.mark.parametrize("tmode,nmode", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                         ("pytorch_half_pixel", "round_prefer_ceil")])
def test_resize_with_unequal_scales_keeps_each_axis_factor(tmp_path, tmode, nmode):
    """Resize (nearest) by 2 along H and 3 along W, with coordinate mappings that repeat pixels:
    refsim's Upsample has factors (2, 3) and equals onnxruntime's output bit for bit."""
    node = helper.make_node("Resize", ["x", "", "sc"], ["y"], name="rs", mode="nearest",
                            coordinate_transformation_mode=tmode, nearest_mode=nmode)
    p = _unchecked(tmp_path, [node], [_init("sc", [1.0, 1.0, 2.0, 3.0])], [1, 1, 3, 4], [1, 1, 6, 12], "resize23")
    g = load_onnx(p)
    up = [g[n] for n in g.order if g[n].TYPE == "Upsample"]
    assert len(up) == 1 and tuple(up[0].scale_factor) == (2, 3)
    x = np.random.default_rng(0).random((1, 1, 3, 4)).astype(np.float32)
    want = ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = ann_activations(g, x.astype(np.float64))[g.order[-1]]
    np.testing.assert_array_equal(got, want.astype(np.float64))


@pytest.mark.parametrize("tmode,nmode", [("asymmetric", "round_prefer_floor"), ("half_pixel", "floor"),
                                         ("asymmetric", "ceil")])
def test_resize_that_does_not_repeat_pixels_is_refused(tmp_path, tmode, nmode):
    """Found by the test above against onnxruntime: at scale 3, an asymmetric Resize with ONNX's default
    rounding (round_prefer_floor) reads pixels 0, 0, 1, 1, 1, 2, ... (not 0, 0, 0, 1, 1, 1), so it is not
    an up-sampling by repetition; refsim refused nothing and differed from onnxruntime. Such
    combinations are refused now, naming the node and the modes."""
    from refsim.errors import ModelFormatError
    node = helper.make_node("Resize", ["x", "", "sc"], ["y"], name="rs3", mode="nearest",
                            coordinate_transformation_mode=tmode, nearest_mode=nmode)
    p = _unchecked(tmp_path, [node], [_init("sc", [1.0, 1.0, 3.0, 3.0])], [1, 1, 3, 4], [1, 1, 9, 12], "resize33")
    with pytest.raises(ModelFormatError, match=f"rs3.*{tmode}.*{nmode}"):
        load_onnx(p)
