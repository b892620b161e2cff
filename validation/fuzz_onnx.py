"""Structure-aware mutations of an ONNX ANN (issue 21): a small network built with ``onnx.helper``
(Conv, BatchNormalization, Relu, ConvTranspose, AveragePool, Flatten, Gemm), then one to three
edits of its structure: inputs dropped or renamed, initializers removed or of another shape,
attributes removed or of another type, op types swapped, outputs removed, input dimensions
changed. ``validation/fuzz.py --loaders onnx`` runs them through ``refsim.io.onnx.load_onnx``; the
test suite runs a bounded number (tests/properties/test_fuzz_loaders.py)."""
import random  # noqa: F401  (callers pass a random.Random)

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def base():
    """The unmutated network (input 1x1x8x8, 3 outputs)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.ones(2, np.float32), "g"), numpy_helper.from_array(np.zeros(2, np.float32), "b"),
             numpy_helper.from_array(np.zeros(2, np.float32), "m"), numpy_helper.from_array(np.ones(2, np.float32), "v"),
             numpy_helper.from_array(rng.standard_normal((3, 32)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fb"),
             numpy_helper.from_array(rng.standard_normal((2, 2, 2, 2)).astype(np.float32), "tw")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], name="bn", epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("ConvTranspose", ["r", "tw"], ["ct"], name="ct", strides=[2, 2], kernel_shape=[2, 2]),
             helper.make_node("Relu", ["ct"], ["r2"], name="relu2"),
             helper.make_node("AveragePool", ["r2"], ["p"], name="pool", kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

def mutate(m, rng):
    """One random structural edit of model ``m`` in place (``rng`` a random.Random); returns ``m``."""
    g = m.graph
    k = rng.randrange(9)
    if k == 0 and g.node:  # drop an input
        n = rng.choice(g.node)
        if n.input: del n.input[rng.randrange(len(n.input))]
    elif k == 1 and g.initializer:
        del g.initializer[rng.randrange(len(g.initializer))]
    elif k == 2:
        n = rng.choice(g.node)
        if n.attribute: del n.attribute[rng.randrange(len(n.attribute))]
    elif k == 3:
        n = rng.choice(g.node)
        if n.attribute:
            a = rng.choice(n.attribute)
            new = rng.choice([helper.make_attribute(a.name, 3), helper.make_attribute(a.name, [1]),
                              helper.make_attribute(a.name, "x"), helper.make_attribute(a.name, [1.5, 2.0]),
                              helper.make_attribute(a.name, -7), helper.make_attribute(a.name, [0, 0, 0, 0, 0])])
            n.attribute.remove(a); n.attribute.append(new)
    elif k == 4 and g.initializer:  # wrong shape initializer
        i = rng.randrange(len(g.initializer)); old = g.initializer[i]
        arr = numpy_helper.to_array(old)
        shp = rng.choice([(3,), (1,), (2, 2), (0,), (5, 1, 3, 3), ()])
        g.initializer[i].CopyFrom(numpy_helper.from_array(np.ones(shp, np.float32), old.name))
    elif k == 5:
        n = rng.choice(g.node)
        if n.input: n.input[rng.randrange(len(n.input))] = rng.choice(["", "zz", "x", "w", "y"])
    elif k == 6:
        n = rng.choice(g.node); n.op_type = rng.choice(["Conv", "Gemm", "Flatten", "Concat", "Add", "Upsample", "Resize", "Reshape", "MatMul"])
    elif k == 7:
        n = rng.choice(g.node)
        del n.output[:]
    elif k == 8:
        d = g.input[0].type.tensor_type.shape.dim
        d[rng.randrange(len(d))].dim_value = rng.choice([0, 1, 2, 3, 2**31])
    return m

