"""Layer-wise (Diehl 2015, Rueckauer 2017; Li et al. eq. 7) and connection-wise (Li et al. eq. 8)
weight normalisation: the ANN with the same graph runs on calibration data (ReLU where the neurons
are), lambda_l is the ``percentile`` (99.9 by default, or 100 for the max) of layer l's activation over
the whole calibration tensor (``percentile_of="all"``, zeros included; ``"nonzero"`` is SNN
Toolbox's convention), and each weighted layer feeding neuron layer l is rescaled
``W <- W * lambda_in / lambda_l`` (biases ``b / lambda_l``), thresholds 1: the rate of every neuron
then approximates its ANN activation divided by lambda_l.

``lambda_in`` is per input channel: the lambda of the neuron layer each channel comes from (through
pooling, concatenation, up-sampling and flattening). **Connection-wise** (default) keeps each part of
a concatenation at its own source's lambda (Li eq. 8, correct for every channel; the authors' code
leaves the last channel of each part unscaled, an off-by-one offered only as
``compat_offbyone=True``). **Layer-wise** uses one lambda for a concatenated input, the percentile of
the concatenation as a whole. The network input has lambda 1 (intensities in [0, 1]). A weighted
layer that feeds the Output node is divided by nothing, so the output membrane / T approximates the
ANN's output. A neuron layer with no weights of its own (after average pooling: "pooling followed
by a neuron") keeps its input's lambda (a sum pool's times its window), so the rate of every layer
stays its activation / lambda.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from ..errors import UnknownNameError, ValidationError
from ..graph import Graph, Scale
from ..graph.nodes import Input, Neuron, Output

METHODS = ("connectionwise", "layerwise")
#: what the lambda percentile is taken over: every activation, or the non-zero ones (SNN Toolbox)
PERCENTILE_OF = ("all", "nonzero")


def ann_activations(graph, x, head=None) -> dict:
    """The ANN reference (issue 11): every node's value when the graph runs as an ANN, densely in
    NumPy with float64 accumulation: a Neuron node is a ReLU, an Output node the identity, or a
    sigmoid when ``head="sigmoid"`` (default: the graph's ``metadata["ann_head"]``, which the ONNX
    importer sets from the exported model)."""
    head = graph.metadata.get("ann_head", "none") if head is None else head
    if head not in ("none", "sigmoid"):
        raise UnknownNameError("ANN head", head, ("none", "sigmoid"))
    sigmoid = (lambda name, node, v: 1.0 / (1.0 + np.exp(-v))) if head == "sigmoid" else None
    return graph.propagate(x, lambda name, node, v: np.maximum(v, 0.0), sigmoid)


def _lambda_after(graph, name, lam):
    """lambda of the neuron layer the value of ``name`` (a weighted layer's current) flows into,
    through Add nodes; 1 for an Output node."""
    found = set()
    for c in graph.consumers[name]:
        node = graph[c]
        if isinstance(node, Neuron):
            found.add(lam[c])
        elif node.TYPE == "Add":
            found.add(_lambda_after(graph, c, lam))
        elif isinstance(node, Output):
            found.add(1.0)
        else:
            raise ValidationError(f"normalisation: node {name!r}", "a weighted layer feeding neurons, an Add or the "
                                  "output", f"a {node.TYPE} ({c!r})")
    if len(found) > 1:
        raise ValidationError(f"normalisation: node {name!r}", "consumers with one lambda", sorted(found))
    return found.pop() if found else 1.0


def _lambda(a, percentile, percentile_of):
    a = a.reshape(-1)
    if percentile_of == "nonzero":
        a = a[a > 0]
    lam = float(np.percentile(a, percentile)) if a.size else 0.0
    return lam if lam > 0 else 1.0


def _channel_lambdas(graph, name, lam, vals, method, percentile, percentile_of):
    """Per-channel lambda of node ``name``'s value (the input of a weighted layer)."""
    node = graph[name]
    shape = graph.shapes[name]
    if isinstance(node, Input):
        return np.ones(shape[0])
    if isinstance(node, Neuron):
        return np.full(shape[0], lam[name])
    if node.TYPE == "Concat":
        if method == "layerwise":
            return np.full(shape[0], _lambda(vals[name], percentile, percentile_of))
        return np.concatenate([_channel_lambdas(graph, i, lam, vals, method, percentile, percentile_of)
                               for i in node.inputs])
    if node.TYPE == "Flatten":
        src = _channel_lambdas(graph, node.inputs[0], lam, vals, method, percentile, percentile_of)
        per = math.prod(graph.shapes[node.inputs[0]][1:]) if len(graph.shapes[node.inputs[0]]) == 3 else 1
        return np.repeat(src, per)
    if node.TYPE in ("AvgPool2d", "SumPool2d", "Dropout", "Upsample"):
        return _channel_lambdas(graph, node.inputs[0], lam, vals, method, percentile, percentile_of)
    raise ValidationError(f"normalisation: node {name!r}", "spikes, pooling, concatenation or reshaping before a "
                          "weighted layer", f"a {node.TYPE} (a weighted layer feeding a weighted layer)")


def normalize(graph: Graph, x, method="connectionwise", percentile=99.9, percentile_of="all",
              compat_offbyone=False) -> Graph:
    """The normalised copy of ``graph`` (see the module docstring); its metadata records how."""
    if method not in METHODS:
        raise UnknownNameError("normalisation method", method, METHODS)
    if percentile_of not in ("all", "nonzero"):
        raise UnknownNameError("percentile_of", percentile_of, ("all", "nonzero"))
    if not 0 < percentile <= 100:
        raise ValidationError("normalize(percentile)", "a percentile in (0, 100]", percentile)
    vals = ann_activations(graph, x)
    lam = {n: _lambda(vals[n], percentile, percentile_of) for n in graph.neurons}
    for n in graph.neurons:  # a neuron with no weights of its own (after a pool): it keeps its input's scale
        src = graph[graph[n].inputs[0]]
        if src.TYPE in ("AvgPool2d", "SumPool2d", "Upsample", "Dropout", "Flatten", "Concat") or isinstance(src, Input):
            lin = _channel_lambdas(graph, src.name, lam, vals, method, percentile, percentile_of)
            if not np.all(lin == lin[0]):
                raise ValidationError(f"normalisation: neuron layer {n!r}", "one scale across the channels of an "
                                      "unweighted input (a pool of one layer)", "channels at different scales")
            lam[n] = float(lin[0]) * (float(math.prod(src.kernel_size)) if src.TYPE == "SumPool2d" else 1.0)
    nodes = []
    for name in graph.order:
        node = graph[name]
        if node.TYPE in ("Conv2d", "ConvTranspose2d", "Linear"):
            lin = _channel_lambdas(graph, node.inputs[0], lam, vals, method, percentile, percentile_of)
            if compat_offbyone and method == "connectionwise" and graph[node.inputs[0]].TYPE == "Concat":
                # the authors' code: the last channel of each part keeps its weights unscaled
                ends = np.cumsum([graph.shapes[i][0] for i in graph[node.inputs[0]].inputs]) - 1
                lin = lin.copy()
                lin[ends] = lam.get(graph.consumers[name][0], 1.0) if graph.consumers[name] else 1.0
            lam_out = _lambda_after(graph, name, lam)
            w = node.weight.astype(np.float64)
            axis = 0 if node.TYPE == "ConvTranspose2d" else 1
            shape = [1] * w.ndim
            shape[axis] = -1
            if node.TYPE == "ConvTranspose2d" and node.groups != 1:
                raise ValidationError(f"normalisation: node {name!r}", "ungrouped transposed convolutions", node.groups)
            w = w * lin.reshape(shape) / lam_out
            kw = {"weight": w.astype(np.float32)}
            if node.bias is not None:
                kw["bias"] = (node.bias.astype(np.float64) / lam_out).astype(np.float32)
            node = node.replace(**kw)
        elif isinstance(node, Neuron):
            node = node.replace(threshold=1.0)
        elif node.TYPE == "Add":  # a residual sum: a summand that is not a weighted layer's current
            lam_out = _lambda_after(graph, name, lam)  # is rescaled from its own lambda to the sum's
            ins = []
            for k, i in enumerate(node.inputs):
                if graph[i].TYPE in ("Conv2d", "ConvTranspose2d", "Linear"):
                    ins.append(i)
                    continue
                lin = _channel_lambdas(graph, i, lam, vals, method, percentile, percentile_of)
                if np.all(lin == lam_out):
                    ins.append(i)
                    continue
                f = (lin / lam_out).astype(np.float32)
                sc = Scale(f"{name}_rescale{k}", [i], factor=f)
                nodes.append(sc)
                ins.append(sc.name)
            node = node.replace(inputs=ins)
        nodes.append(node)
    meta = dict(graph.metadata)
    meta["conversion"] = {"method": f"{method} normalisation ({'Li eq. 8' if method == 'connectionwise' else 'Li eq. 7'})",
                          "percentile": percentile, "percentile_of": percentile_of, "compat_offbyone": compat_offbyone,
                          "calibration_samples": int(len(x)),
                          "calibration_sha256": hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest(),
                          "lambdas": lam}
    return Graph(nodes, name=graph.name, metadata=meta)
