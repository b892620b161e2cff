"""ONNX import: a trained ANN (a PyTorch U-Net or classifier exported with ``torch.onnx.export``)
as a refsim graph whose ReLUs are IF neurons, ready for conversion (:mod:`refsim.convert`).

Needs the ``onnx`` package (``pip install "refsim[onnx]"``), imported only here. Supported ops
(opsets 9 to 23, the ones torch 2.13's TorchScript and dynamo exporters write):

========================  ==========================================================================
ONNX                      refsim
========================  ==========================================================================
Conv                      Conv2d (symmetric or asymmetric pads, strides, dilations, groups)
ConvTranspose             ConvTranspose2d (pads, output_padding, strides, dilations, groups)
BatchNormalization        folded into the Conv / ConvTranspose before it (its only consumer):
                          ``W' = W s``, ``b' = (b - mean) s + beta``, ``s = gamma / sqrt(var + eps)``
AveragePool               AvgPool2d (``count_include_pad=1``, or no padding; ``ceil_mode=0``)
Concat (channels)         Concat
Add                       Add (two tensors: residual connections); with a constant: folded into the
                          bias of the Conv / Gemm / MatMul before it
Relu                      Neuron (``if``, threshold 1: conversion sets thresholds or weights)
Sigmoid                   only as the last op (the output head): the graph's Output integrates the
                          logits; metadata ``ann_head="sigmoid"``, ``readout="sigmoid-mean"``
Gemm, MatMul              Linear (``transA=0``; MatMul with a constant (K, N) weight)
Flatten, Reshape          Flatten (from axis 1; a Reshape to ``(batch, -1)`` or ``(batch, F)``)
Dropout, Identity         removed (inference)
Resize, Upsample          Upsample (nearest, integer scale factors given by constant scales or sizes)
Constant                  constants for the ops above
========================  ==========================================================================

Anything else (MaxPool included) is a :class:`~refsim.errors.ModelFormatError` naming the op, the
node and what to do. The batch dimension may be fixed or symbolic; the other input dimensions must
be fixed (or given with ``input_shape``).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ._names import unique_name
from .._optional import optional_import
from ..errors import ModelFormatError, RefsimError
from ..graph import (Add, AvgPool2d, Concat, Conv2d, ConvTranspose2d, Flatten, Graph, Input, Linear, Neuron, Output,
                     Upsample)
from ..semantics import DEFAULT_PROFILE

SUPPORTED_OPS = ("Conv", "ConvTranspose", "BatchNormalization", "AveragePool", "Concat", "Add", "Relu", "Sigmoid", "Gemm",
                 "MatMul", "Flatten", "Reshape", "Dropout", "Identity", "Resize", "Upsample", "Constant")
#: what to do instead, for ops users meet often
_ADVICE = {
    "MaxPool": "max pooling has no rate-coded equivalent in these conversions: train with AvgPool2d (as Yue et al.)",
    "BatchNormalization": "put the BatchNorm directly after a convolution (it is folded into it)",
    "LeakyRelu": "use ReLU: IF neurons convert ReLU activations",
    "Clip": "use ReLU (a ReLU6 / clamp has no IF equivalent here)",
    "Softmax": "drop the softmax from the exported model: refsim reads out the output membrane (argmax is the same)",
    "Mul": "fold constant scalings into the weights before export",
    "Sub": "fold constant offsets into the biases before export",
    "MaxUnpool": "use ConvTranspose2d or nearest Upsample",
    "GlobalAveragePool": "use AvgPool2d with the feature map's size as its kernel",
}
MIN_OPSET, MAX_OPSET = 9, 23
#: largest ONNX file read whole (the onnx package parses the protobuf in memory)
MAX_ONNX_BYTES = 2 * 1024 ** 3




#: per op: (fewest inputs, most inputs or None, indices of inputs that must be present constants)
_OP_INPUTS = {"Constant": (0, 0, ()), "Conv": (2, 3, (1,)), "ConvTranspose": (2, 3, (1,)),
              "BatchNormalization": (5, 5, (1, 2, 3, 4)), "AveragePool": (1, 1, ()), "Concat": (1, None, ()),
              "Add": (2, 2, ()), "Relu": (1, 1, ()), "Sigmoid": (1, 1, ()), "Gemm": (2, 3, (1,)), "MatMul": (2, 2, (1,)),
              "Flatten": (1, 1, ()), "Reshape": (2, 2, (1,)), "Cast": (1, 1, ()), "Dropout": (1, 3, ()),
              "Identity": (1, 1, ()), "Resize": (1, 4, ()), "Upsample": (1, 2, ())}
#: the kind each attribute refsim reads must have: a list of ints, an int, a float or a string
_ATTR_KINDS = {"pads": "ints", "strides": "ints", "dilations": "ints", "kernel_shape": "ints", "output_padding": "ints",
               "output_shape": "ints", "group": "int", "axis": "int", "transA": "int", "transB": "int",
               "training_mode": "int", "ceil_mode": "int", "count_include_pad": "int", "epsilon": "float",
               "alpha": "float", "beta": "float", "auto_pad": "string", "mode": "string",
               "coordinate_transformation_mode": "string", "scales": "floats"}
#: attributes an op cannot do without
_REQUIRED_ATTRS = {"AveragePool": ("kernel_shape",)}


class _Importer:
    def __init__(self, model, path, input_shape):
        onnx = optional_import("onnx", "ONNX import")
        self.onnx, self.nh = onnx, optional_import("onnx.numpy_helper", "ONNX import")
        self.path = path
        self.model = model
        self.g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if self.opset is None or not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise self.err("model opset_import", f"the default ONNX domain at opset {MIN_OPSET} to {MAX_OPSET}",
                           self.opset)
        self.const = {}
        for init in self.g.initializer:
            self.const[init.name] = self._array(init, f"initializer {init.name!r}")
        self.nodes, self.used = [], set()
        self.alias = {}          # ONNX tensor -> refsim node name
        self.producer = {}       # refsim node name -> index in self.nodes
        self.consumers = {}      # ONNX tensor -> number of ONNX nodes reading it
        for n in self.g.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        for o in self.g.output:
            self.consumers[o.name] = self.consumers.get(o.name, 0) + 1
        self.head, self.folded = "none", []
        self.input_shape = input_shape

    # -- helpers -----------------------------------------------------------------------------
    def err(self, where, expected, found):
        return ModelFormatError(where, expected, found, file=self.path)

    def _array(self, tensor, where):
        try:
            a = self.nh.to_array(tensor)
        except Exception as exc:  # noqa: BLE001  (onnx raises assorted types for bad tensors)
            raise self.err(where, "a readable tensor", f"{type(exc).__name__}: {str(exc)[:100]}") from None
        if a.dtype.kind not in "biuf":
            raise self.err(where, "a numeric tensor", f"dtype {a.dtype}")
        return a

    def attrs(self, node):
        """The node's attributes, each of the kind refsim reads it as (:data:`_ATTR_KINDS`)."""
        out = {}
        for a in node.attribute:
            try:
                v = self.onnx.helper.get_attribute_value(a)
            except Exception as exc:  # noqa: BLE001
                raise self.err(self.where(node), f"a readable attribute {a.name!r}", str(exc)[:100]) from None
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            kind = _ATTR_KINDS.get(a.name)
            ok = {None: True, "int": isinstance(v, int) and not isinstance(v, bool),
                  "float": isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v),
                  "string": isinstance(v, str),
                  "ints": isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
                  "floats": isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)}[kind]
            if not ok:
                raise self.err(f"{self.where(node)} attribute {a.name!r}", f"{'a list of ' if kind.endswith('s') else 'an ' if kind == 'int' else 'a '}"
                               f"{kind.rstrip('s')}{'s' if kind.endswith('s') else ''}", repr(v)[:80])
            out[a.name] = v
        for req in _REQUIRED_ATTRS.get(node.op_type, ()):
            if req not in out:
                raise self.err(self.where(node), f"attribute {req!r}", "nothing")
        return out

    def check_arity(self, node):
        """Inputs and outputs of ``node`` as its op needs them, before any handler reads them."""
        lo, hi, consts = _OP_INPUTS[node.op_type]
        n = len(node.input)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo} inputs" if lo == hi else f"{lo} to {hi} inputs" if hi is not None else f"at least {lo} input(s)"
            raise self.err(self.where(node), want, f"{n}")
        for i in range(min(lo, n)):
            if node.input[i] == "" and i not in consts:
                raise self.err(self.where(node), f"input {i} (not optional for {node.op_type})", "an empty name")
        for i in consts:
            if i >= n or node.input[i] == "":
                raise self.err(self.where(node), f"a constant at input {i}", "nothing")
        if len(node.output) < 1 or node.output[0] == "":
            raise self.err(self.where(node), "an output", "none")

    def where(self, node):
        return f"node {node.name or '(unnamed)'!r} (op {node.op_type})"

    def constant(self, node, i, what):
        name = node.input[i] if i < len(node.input) else ""
        if name == "":
            return None
        if name not in self.const:
            raise self.err(self.where(node), f"a constant {what} (an initializer or a Constant node)",
                           f"a computed tensor {name!r}")
        return self.const[name]

    def src(self, node, i=0):
        name = node.input[i]
        if name not in self.alias:
            if name in self.const:
                raise self.err(self.where(node), "a tensor computed from the network input at input "
                               f"{i}", f"a constant {name!r}")
            raise self.err(self.where(node), "inputs produced by supported ops", f"unknown tensor {name!r}")
        return self.alias[name]

    def add(self, onnx_node, refsim_node, out=None):
        self.producer[refsim_node.name] = len(self.nodes)
        self.nodes.append(refsim_node)
        self.alias[out if out is not None else onnx_node.output[0]] = refsim_node.name
        return refsim_node

    def shape_of(self, name):
        g = Graph(self.nodes + [], name="partial")
        return g.shapes[name]

    def name_for(self, node, fallback):
        return unique_name(node.name.lstrip("/") if node.name else node.output[0], self.used, fallback)

    def folding_target(self, node, types):
        """The refsim node this node's input 0 comes from, if it is of ``types`` and read only here."""
        src = node.input[0]
        rn = self.alias.get(src)
        if rn is None or self.consumers.get(src, 0) != 1 or src in {o.name for o in self.g.output}:
            return None
        target = self.nodes[self.producer[rn]]
        return target if target.TYPE in types else None

    def replace(self, old, new, onnx_out):
        self.nodes[self.producer[old.name]] = new
        self.alias[onnx_out] = new.name

    # -- the walk ----------------------------------------------------------------------------
    def run(self):
        inits = set(self.const)
        ins = [i for i in self.g.input if i.name not in inits]
        if not ins:
            raise self.err("graph inputs", "at least one input that is not an initializer", "none")
        for k, vi in enumerate(ins):
            dims = vi.type.tensor_type.shape.dim
            shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
            if self.input_shape is not None:
                want = tuple(self.input_shape if len(ins) == 1 else self.input_shape[k])
            else:
                want = tuple(shape[1:])
                if len(shape) not in (2, 4) or any(s is None or s < 1 for s in want):
                    raise self.err(f"graph input {vi.name!r}", "a (batch, C, H, W) or (batch, F) input with fixed "
                                   "sizes after the batch (or pass input_shape=)", shape)
            node = Input(unique_name(vi.name, self.used, "input"), list(want))
            self.producer[node.name] = len(self.nodes)
            self.nodes.append(node)
            self.alias[vi.name] = node.name
        for node in self.g.node:
            op = node.op_type
            if node.domain not in ("", "ai.onnx"):
                raise self.err(self.where(node), "an op of the default ONNX domain", f"domain {node.domain!r}")
            handler = getattr(self, "op_" + op, None)
            if handler is None:
                advice = _ADVICE.get(op, "re-export the model using the supported ops")
                raise self.err(self.where(node), "one of the supported ops (" + ", ".join(SUPPORTED_OPS) + ")",
                               f"{op}: {advice}")
            self.check_arity(node)
            handler(node, self.attrs(node))
        outs = [o.name for o in self.g.output]
        for k, o in enumerate(outs):
            if o not in self.alias:
                raise self.err(f"graph output {o!r}", "a tensor computed from the network input", "a constant")
            name = "output" if len(outs) == 1 else unique_name("output_" + o, self.used, f"output{k}")
            self.nodes.append(Output(name, [self.alias[o]]))
        return self.nodes

    # -- ops ---------------------------------------------------------------------------------
    def op_Constant(self, node, a):
        if "value" in a:
            self.const[node.output[0]] = self._array(a["value"], self.where(node))
        else:
            for k in ("value_float", "value_int", "value_floats", "value_ints"):
                if k in a:
                    self.const[node.output[0]] = np.asarray(a[k])
                    return
            raise self.err(self.where(node), "a numeric value", ", ".join(a) or "nothing")

    def _conv_pads(self, node, a, nd=2):
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise self.err(self.where(node), "explicit pads (auto_pad NOTSET)", a.get("auto_pad"))
        pads = list(a.get("pads", [0] * (2 * nd)))
        if len(pads) != 2 * nd:
            raise self.err(self.where(node), f"{2 * nd} pads", pads)
        return pads

    def op_Conv(self, node, a):
        w = self.constant(node, 1, "weight")
        if w is None or w.ndim != 4:
            raise self.err(self.where(node), "a 4-D weight (2-D convolution)", None if w is None else w.shape)
        b = self.constant(node, 2, "bias")
        top, left, bottom, right = self._conv_pads(node, a)
        pad = [top, left] if (top, left) == (bottom, right) else [top, bottom, left, right]
        self.add(node, Conv2d(self.name_for(node, "conv"), [self.src(node)], w.astype(np.float32),
                              None if b is None else b.astype(np.float32), stride=list(a.get("strides", [1, 1])),
                              padding=pad, dilation=list(a.get("dilations", [1, 1])), groups=int(a.get("group", 1))))

    def op_ConvTranspose(self, node, a):
        w = self.constant(node, 1, "weight")
        if w is None or w.ndim != 4:
            raise self.err(self.where(node), "a 4-D weight (2-D transposed convolution)", None if w is None else w.shape)
        b = self.constant(node, 2, "bias")
        if "output_shape" in a:
            raise self.err(self.where(node), "pads and output_padding (not output_shape)", a["output_shape"])
        top, left, bottom, right = self._conv_pads(node, a)
        if (top, left) != (bottom, right):
            raise self.err(self.where(node), "symmetric pads", [top, left, bottom, right])
        self.add(node, ConvTranspose2d(self.name_for(node, "convt"), [self.src(node)], w.astype(np.float32),
                                       None if b is None else b.astype(np.float32),
                                       stride=list(a.get("strides", [1, 1])), padding=[top, left],
                                       output_padding=list(a.get("output_padding", [0, 0])),
                                       dilation=list(a.get("dilations", [1, 1])), groups=int(a.get("group", 1))))

    def op_BatchNormalization(self, node, a):
        if a.get("training_mode", 0):
            raise self.err(self.where(node), "inference mode (export the model in eval mode)", "training_mode=1")
        target = self.folding_target(node, ("Conv2d", "ConvTranspose2d"))
        if target is None:
            raise self.err(self.where(node), "a BatchNormalization right after a Conv or ConvTranspose it can be "
                           "folded into (its only consumer)", f"input {node.input[0]!r}")
        c_out = self.shape_of(target.name)[0]
        params = []
        for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")):
            v = np.asarray(self.constant(node, i, what), dtype=np.float64)
            if v.shape != (c_out,) or not np.all(np.isfinite(v)):
                raise self.err(f"{self.where(node)} input {i} ({what})", f"{c_out} finite values, one per channel",
                               f"shape {v.shape}")
            params.append(v)
        gamma, beta, mean, var = params
        eps = float(a.get("epsilon", 1e-5))
        if not np.all(var + eps > 0):
            raise self.err(f"{self.where(node)} input 4 (var)", "var + epsilon > 0", f"min {float(np.min(var + eps))}")
        s = gamma / np.sqrt(var + eps)
        w = np.asarray(target.weight, dtype=np.float64)
        if target.TYPE == "Conv2d":
            w2 = w * s[:, None, None, None]
        else:  # (Cin, Cout/g, kh, kw): output channel = group * Cout/g + j
            g = target.groups
            cin_g, cout_g = w.shape[0] // g, w.shape[1]
            s_ = s.reshape(g, cout_g)
            w2 = (w.reshape(g, cin_g, cout_g, *w.shape[2:]) * s_[:, None, :, None, None]).reshape(w.shape)
        b = np.zeros(s.shape) if target.bias is None else np.asarray(target.bias, dtype=np.float64)
        new = target.replace(weight=w2.astype(np.float32), bias=((b - mean) * s + beta).astype(np.float32))
        self.replace(target, new, node.output[0])
        self.folded.append(node.name or node.output[0])

    def op_AveragePool(self, node, a):
        if a.get("ceil_mode", 0):
            raise self.err(self.where(node), "ceil_mode=0", a.get("ceil_mode"))
        k = list(a["kernel_shape"])
        top, left, bottom, right = self._conv_pads(node, a)
        if (top, left) != (bottom, right):
            raise self.err(self.where(node), "symmetric pads", [top, left, bottom, right])
        if (top or left) and not a.get("count_include_pad", 0):
            raise self.err(self.where(node), "count_include_pad=1 when padded (torch's default)", "count_include_pad=0")
        self.add(node, AvgPool2d(self.name_for(node, "pool"), [self.src(node)], k, list(a.get("strides", k)),
                                 [top, left]))

    def op_Concat(self, node, a):
        if all(i in self.const for i in node.input):  # shape arithmetic of an exporter (Resize sizes)
            parts = [np.atleast_1d(self.const[i]).reshape(-1) for i in node.input]
            if int(a.get("axis", 0)) not in (0, -1):
                raise self.err(self.where(node), "a concatenation of 1-D constants (shape arithmetic)",
                               f"axis {a.get('axis')}")
            self.const[node.output[0]] = np.concatenate(parts)
            return
        srcs = [self.src(node, i) for i in range(len(node.input))]
        rank = len(self.shape_of(srcs[0])) + 1
        axis = int(a.get("axis", 1))
        if axis < 0:
            axis += rank
        if axis != 1 or rank != 4:
            raise self.err(self.where(node), "a concatenation of (batch, C, H, W) maps along channels (axis 1)",
                           f"axis {a.get('axis')} of rank {rank}")
        self.add(node, Concat(self.name_for(node, "concat"), srcs))

    def op_Add(self, node, a):
        consts = [i for i in range(2) if node.input[i] in self.const]
        if not consts:
            self.add(node, Add(self.name_for(node, "add"), [self.src(node, 0), self.src(node, 1)]))
            return
        if len(consts) == 2:
            self.const[node.output[0]] = self.const[node.input[0]] + self.const[node.input[1]]
            return
        other = 1 - consts[0]
        c = np.asarray(self.const[node.input[consts[0]]], dtype=np.float64)
        fake = type("N", (), {"input": [node.input[other]]})
        target = self.folding_target(fake, ("Conv2d", "ConvTranspose2d", "Linear"))
        if target is None:
            raise self.err(self.where(node), "a constant added right after a Conv, ConvTranspose, Gemm or MatMul "
                           "(folded into its bias)", f"input {node.input[other]!r}")
        n_out = self.shape_of(target.name)[0]
        flat = c.reshape(-1) if c.size in (1, n_out) and c.size == math.prod(
            [d for d in c.shape if d != 1] or [1]) else None
        if flat is None:
            raise self.err(self.where(node), f"a per-channel constant of {n_out} values (or a scalar)", c.shape)
        bias = np.broadcast_to(flat, (n_out,)).astype(np.float64)
        old = np.zeros(n_out) if target.bias is None else np.asarray(target.bias, dtype=np.float64)
        self.replace(target, target.replace(bias=(old + bias).astype(np.float32)), node.output[0])

    def op_Relu(self, node, a):
        self.add(node, Neuron(self.name_for(node, "relu"), [self.src(node)], model="if", threshold=1.0))

    def op_Sigmoid(self, node, a):
        outs = {o.name for o in self.g.output}
        if node.output[0] not in outs:
            raise self.err(self.where(node), "a Sigmoid only as the output head (the last op)",
                           "a Sigmoid inside the network: IF neurons convert ReLU activations only")
        self.head = "sigmoid"
        self.alias[node.output[0]] = self.src(node)

    def _linear(self, node, w, bias, name):
        src = self.src(node)
        if len(self.shape_of(src)) != 1:
            raise self.err(self.where(node), "a flat (batch, F) input (put a Flatten before it)", self.shape_of(src))
        self.add(node, Linear(name, [src], np.ascontiguousarray(w, dtype=np.float32),
                              None if bias is None else np.asarray(bias, dtype=np.float32).reshape(-1)))

    def op_Gemm(self, node, a):
        if a.get("transA", 0):
            raise self.err(self.where(node), "transA=0", a.get("transA"))
        w = self.constant(node, 1, "weight")
        if w.ndim != 2:
            raise self.err(self.where(node), "a constant 2-D weight", f"shape {w.shape}")
        w = w if a.get("transB", 0) else w.T
        w = w.astype(np.float64) * float(a.get("alpha", 1.0))
        c = self.constant(node, 2, "bias")
        bias = None
        if c is not None:
            if c.size not in (1, w.shape[0]):
                raise self.err(self.where(node), f"a bias of {w.shape[0]} values", c.shape)
            bias = np.broadcast_to(c.astype(np.float64).reshape(-1), (w.shape[0],)) * float(a.get("beta", 1.0))
        self._linear(node, w, bias, self.name_for(node, "gemm"))

    def op_MatMul(self, node, a):
        w = self.constant(node, 1, "weight (K, N)")
        if w.ndim != 2:
            raise self.err(self.where(node), "a constant 2-D (K, N) weight", w.shape)
        self._linear(node, w.T, None, self.name_for(node, "matmul"))

    def op_Flatten(self, node, a):
        axis = int(a.get("axis", 1))
        if axis != 1:
            raise self.err(self.where(node), "a Flatten from axis 1 (keeping the batch)", axis)
        self._flatten(node)

    def _flatten(self, node):
        src = self.src(node)
        if len(self.shape_of(src)) == 1:
            self.alias[node.output[0]] = src
            return
        self.add(node, Flatten(self.name_for(node, "flatten"), [src]))

    def op_Reshape(self, node, a):
        shape = self.constant(node, 1, "shape")
        src = self.src(node)
        n = math.prod(self.shape_of(src))
        shape = [int(s) for s in np.asarray(shape).reshape(-1)]
        if len(shape) == 2 and shape[1] in (-1, n) and shape[0] != -1 or shape == [-1, n]:
            self._flatten(node)
            return
        raise self.err(self.where(node), f"a Reshape to (batch, -1) or (batch, {n}) (a flatten)", shape)

    def op_Cast(self, node, a):
        if node.input[0] not in self.const:
            raise self.err(self.where(node), "a Cast of a constant (shape arithmetic)", f"a Cast of {node.input[0]!r}")
        self.const[node.output[0]] = self.const[node.input[0]]

    def op_Dropout(self, node, a):
        self.alias[node.output[0]] = self.src(node)

    def op_Identity(self, node, a):
        if node.input[0] in self.const:
            self.const[node.output[0]] = self.const[node.input[0]]
        else:
            self.alias[node.output[0]] = self.src(node)

    def _upsample(self, node, mode, scales=None, sizes=None, tmode="asymmetric", nearest_mode="floor"):
        """An integer nearest up-sampling as refsim's Upsample (each pixel repeated), after checking that
        ONNX's coordinate mapping (``tmode``, ``nearest_mode``; Resize-11+) picks those pixels."""
        if mode != "nearest":
            raise self.err(self.where(node), "mode 'nearest'", mode)
        src = self.src(node)
        shape = self.shape_of(src)
        if len(shape) != 3:
            raise self.err(self.where(node), "a (batch, C, H, W) input to up-sample", f"a ({len(shape)}-D) {shape} input")
        c, h, w = shape
        if scales is not None and np.size(scales):
            s = np.asarray(scales, dtype=np.float64).reshape(-1)
            if s.size != 4 or s[0] != 1 or s[1] != 1:
                raise self.err(self.where(node), "scales (1, 1, sH, sW)", s.tolist())
            f = s[2:]
        elif sizes is not None and np.size(sizes):
            z = np.asarray(sizes, dtype=np.float64).reshape(-1)[-2:]
            f = z / np.array([h, w])
        else:
            raise self.err(self.where(node), "constant scales or sizes", "neither")
        if np.any(f != np.round(f)) or np.any(f < 1):
            raise self.err(self.where(node), "integer scale factors >= 1", f.tolist())
        for n_in, k in ((h, int(f[0])), (w, int(f[1]))):
            got = _nearest_sources(n_in, k, tmode, nearest_mode)
            if not np.array_equal(got, np.arange(n_in * k) // k):
                raise self.err(self.where(node), "a nearest Resize that repeats each pixel (refsim's Upsample): at "
                               f"scale {k}, coordinate_transformation_mode {tmode!r} with nearest_mode "
                               f"{nearest_mode!r} picks other pixels", f"source pixels {got[:2 * k].tolist()}...")
        self.add(node, Upsample(self.name_for(node, "upsample"), [src], [int(f[0]), int(f[1])]))

    def op_Resize(self, node, a):
        tmode = a.get("coordinate_transformation_mode", "half_pixel")
        if tmode not in ("asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"):
            raise self.err(self.where(node), "a coordinate transformation that repeats pixels at integer scales",
                           tmode)
        if self.opset < 11:  # Resize-10 has no transformation attribute: asymmetric, and floor (as Upsample)
            self._upsample(node, a.get("mode", "nearest"), scales=self.constant(node, 1, "scales"))
            return
        self._upsample(node, a.get("mode", "nearest"), scales=self.constant(node, 2, "scales"),
                       sizes=self.constant(node, 3, "sizes") if len(node.input) > 3 else None, tmode=tmode,
                       nearest_mode=a.get("nearest_mode", "round_prefer_floor"))

    def op_Upsample(self, node, a):
        scales = a.get("scales")
        if scales is None:
            scales = self.constant(node, 1, "scales")
        self._upsample(node, a.get("mode", "nearest"), scales=scales)



def _nearest_sources(n_in, k, tmode, nearest_mode):
    """The input pixel ONNX's nearest Resize reads for each of the ``n_in * k`` outputs along one axis
    (the operator's coordinate transformation, then its rounding, clamped to the input), to compare
    with pixel repetition (``x // k``). Modes refsim does not know map to -1 (never a repetition)."""
    x = np.arange(n_in * k, dtype=np.float64)
    if tmode == "asymmetric":
        xo = x / k
    elif tmode == "half_pixel" or (tmode == "pytorch_half_pixel" and n_in * k > 1):
        xo = (x + 0.5) / k - 0.5
    elif tmode == "pytorch_half_pixel":
        xo = np.zeros_like(x)
    elif tmode == "align_corners":
        xo = x * (n_in - 1) / (n_in * k - 1) if n_in * k > 1 else np.zeros_like(x)
    else:
        return np.full(x.shape, -1)
    rounding = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}.get(nearest_mode)
    if rounding is None:
        return np.full(x.shape, -1)
    return np.clip(rounding(xo), 0, n_in - 1).astype(np.int64)

def load_onnx(path, input_shape=None, name=None) -> Graph:
    """Import an ONNX model file (see the module docstring for the ops) as a refsim graph.

    ``input_shape``: the per-sample input shape (C, H, W) when the file leaves it symbolic.
    Metadata records the source file, its opset and producer, the BatchNorms folded and the head
    (``ann_head``: ``"sigmoid"`` or ``"none"``). ReLUs become IF neurons with threshold 1: run a
    conversion (:func:`refsim.convert.threshold_balance`, :func:`refsim.convert.normalize`) before
    simulating it as a spiking network."""
    onnx = optional_import("onnx", "ONNX import")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFormatError("file", "an existing ONNX file", "no such file", file=path)
    size = os.path.getsize(path)
    if size > MAX_ONNX_BYTES:
        raise ModelFormatError("file", f"an ONNX file of at most {MAX_ONNX_BYTES} bytes", f"{size} bytes", file=path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001  (protobuf's DecodeError and friends)
        raise ModelFormatError("file", "an ONNX model (protobuf)", f"{type(exc).__name__}: {str(exc)[:120]}",
                               file=path) from None
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:  # torch's dynamo exporter writes the weights beside the model (FILE.onnx.data)
        base = os.path.dirname(os.path.abspath(path))
        total = 0
        for t in external:
            info = {e.key: e.value for e in t.external_data}
            loc = info.get("location", "")
            full = os.path.normpath(os.path.join(base, loc))
            if not loc or os.path.isabs(loc) or not full.startswith(base + os.sep):
                raise ModelFormatError(f"initializer {t.name!r} external data", "a file in the model's folder",
                                       repr(loc), file=path)
            if not os.path.isfile(full):
                raise ModelFormatError(f"initializer {t.name!r} external data", "an existing file",
                                       f"{loc} (missing; keep it beside the .onnx file)", file=path)
            try:
                offset, length = int(info.get("offset", 0)), int(info.get("length", os.path.getsize(full)))
            except ValueError:
                raise ModelFormatError(f"initializer {t.name!r} external data", "integer offset and length",
                                       info, file=path) from None
            if offset < 0 or length < 0 or offset + length > os.path.getsize(full):
                raise ModelFormatError(f"initializer {t.name!r} external data", f"a byte range inside {loc}",
                                       f"offset {offset}, length {length}", file=path)
            total += length
        if total > MAX_ONNX_BYTES:
            raise ModelFormatError("external data", f"at most {MAX_ONNX_BYTES} bytes of weights", total, file=path)
        try:
            onnx.load_external_data_for_model(model, base)
        except Exception as exc:  # noqa: BLE001
            raise ModelFormatError("external data", "readable weight files", f"{type(exc).__name__}: {str(exc)[:120]}",
                                   file=path) from None
    return from_onnx(model, input_shape=input_shape, name=name, path=path)


def from_onnx(model, input_shape=None, name=None, path=None) -> Graph:
    """:func:`load_onnx` for an ``onnx.ModelProto`` already in memory."""
    imp = _Importer(model, path, input_shape)
    try:
        nodes = imp.run()
    except ModelFormatError as exc:
        raise (exc.with_file(path) if path and not exc.file else exc) from None
    except RefsimError as exc:  # a node refsim's graph refuses (shapes, parameters): say which file
        raise ModelFormatError("graph", "a network refsim can build", str(exc), file=path) from None
    meta = {"source": "onnx", "onnx_file": os.path.basename(path) if path else None, "opset": imp.opset,
            "producer": f"{model.producer_name} {model.producer_version}".strip(), "ann_head": imp.head,
            "folded_batchnorm": imp.folded, "profile": DEFAULT_PROFILE}
    if imp.head == "sigmoid":
        meta["readout"] = "sigmoid-mean"
    gname = name or (os.path.splitext(os.path.basename(path))[0] if path else (model.graph.name or "onnx-model"))
    try:
        return Graph(nodes, name=gname, metadata=meta)
    except ModelFormatError as exc:
        raise exc.with_file(path) if path else exc
    except RefsimError as exc:
        raise ModelFormatError("graph", "a network refsim can build", str(exc), file=path) from None
