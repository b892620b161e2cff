"""The network graph: a DAG of typed nodes, validated and shape-checked when it is built."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .nodes import Input, Neuron, Node, Output, get_node_type
from .._text import table
from ..errors import ModelFormatError, ShapeError, UnknownNameError
from ..semantics import get_profile

FORMAT_NAME = "refsim-model"
FORMAT_VERSION = 1


class Graph:
    """A validated network.

    Parameters
    ----------
    nodes : list of Node
        Any order; the graph sorts them topologically.
    name : str
        Model name, for reports.
    metadata : dict
        Free JSON-serialisable information (provenance, recommended profile and encoding).

    Raises
    ------
    ModelFormatError
        Duplicate names, dangling inputs, cycles, no Input node.
    ShapeError
        Shapes of connected nodes do not agree; tensors of the wrong shape.
    """

    def __init__(self, nodes, name: str = "model", metadata: dict | None = None):
        self.name = name
        self.metadata = dict(metadata or {})
        by_name: "OrderedDict[str, Node]" = OrderedDict()
        for n in nodes:
            if not isinstance(n, Node):
                raise ModelFormatError("graph nodes", "refsim.graph node objects", type(n).__name__)
            if n.name in by_name:
                raise ModelFormatError(f"node {n.name!r}", "a unique node name", "a second node with that name")
            by_name[n.name] = n
        for n in by_name.values():
            for i in n.inputs:
                if i not in by_name:
                    raise ModelFormatError(f"node {n.name!r} field 'inputs'", "names of existing nodes",
                                           f"{i!r} (dangling edge; nodes are: {', '.join(by_name)})")
        if not any(isinstance(n, Input) for n in by_name.values()):
            raise ModelFormatError("graph", "at least one Input node", "none")
        self.nodes = by_name
        self.order = self._toposort()
        self.shapes: dict[str, tuple] = {}
        for name in self.order:
            node = by_name[name]
            if node.TYPE == "Delay":  # its input comes later in the order (a recurrent edge)
                self.shapes[name] = tuple(node.infer_shape([]))
                continue
            in_shapes = [self.shapes[i] for i in node.inputs]
            node.check_tensors(in_shapes)
            self.shapes[name] = tuple(node.infer_shape(in_shapes))
        for name, node in by_name.items():
            if node.TYPE == "Delay" and self.shapes[node.inputs[0]] != self.shapes[name]:
                raise ShapeError(f"node {name!r} field 'shape'", f"the shape of its input {node.inputs[0]!r}, "
                                 f"{self.shapes[node.inputs[0]]}", self.shapes[name])
        self.consumers = {n: [m.name for m in by_name.values() if n in m.inputs] for n in by_name}

    def _toposort(self):
        """Kahn's order over the feed-forward edges; a Delay node's input edge carries the previous
        step's value, so it is not a dependency (a cycle through a Delay is a recurrent connection)."""
        deps = {n: ([] if node.TYPE == "Delay" else list(node.inputs)) for n, node in self.nodes.items()}
        indeg = {n: len(d) for n, d in deps.items()}
        children = {n: [] for n in self.nodes}
        for n, d in deps.items():
            for i in d:
                children[i].append(n)
        ready = [n for n in self.nodes if indeg[n] == 0]
        order = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for c in children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        if len(order) != len(self.nodes):
            cyc = [n for n in self.nodes if n not in order]
            raise ModelFormatError("graph edges", "a directed acyclic graph (a recurrent edge needs a Delay node)",
                                   f"a cycle through {', '.join(cyc)}")
        return order

    # -- views ------------------------------------------------------------------------------
    def __getitem__(self, name) -> Node:
        return self.nodes[name]

    @property
    def inputs(self):
        return [n for n in self.order if isinstance(self.nodes[n], Input)]

    @property
    def neurons(self):
        return [n for n in self.order if isinstance(self.nodes[n], Neuron)]

    @property
    def outputs(self):
        return [n for n in self.order if isinstance(self.nodes[n], Output)]

    def propagate(self, x, neuron, output=None) -> dict:
        """Every node's value for input ``x`` (an array for a one-input graph, else a dict by Input
        name), in topological order, densely in float64: the one walk behind the ANN reference,
        the rate model and the demo's scales. ``neuron(name, node, value)`` gives a Neuron node's
        value from its input's; ``output(name, node, value)`` an Output node's (default: its
        input's); every other node applies its own ``forward``. Delay nodes are not supported (a
        value walk has no previous step)."""
        xs = x if isinstance(x, dict) else {n: x for n in self.inputs}
        vals = {}
        for name in self.order:
            node = self.nodes[name]
            if isinstance(node, Input):
                vals[name] = np.asarray(xs[name], dtype=np.float64)
            elif isinstance(node, Neuron):
                vals[name] = neuron(name, node, vals[node.inputs[0]])
            elif isinstance(node, Output):
                v = vals[node.inputs[0]]
                vals[name] = v if output is None else output(name, node, v)
            else:
                vals[name] = node.forward([vals[i] for i in node.inputs])
        return vals

    def n_parameters(self) -> int:
        return int(sum(t.size for n in self.nodes.values() for t in n.tensors().values()))

    def summary(self) -> list[dict]:
        rows = []
        for name in self.order:
            node = self.nodes[name]
            rows.append({"name": name, "type": node.TYPE, "inputs": list(node.inputs), "shape": self.shapes[name],
                         "params": int(sum(t.size for t in node.tensors().values())),
                         "detail": _detail(node)})
        return rows

    def describe(self, profile) -> str:
        """The metadata, the node table, the sizes and ``profile``'s choices for the graph's neuron
        models, as text (``refsim info``)."""
        prof = get_profile(profile)
        lines = [f"  {k}: {v}" for k, v in sorted(self.metadata.items())]
        rows = [("node", "type", "inputs", "shape", "params", "detail")]
        rows += [(r["name"], r["type"], ",".join(r["inputs"]), "x".join(map(str, r["shape"])), r["params"], r["detail"])
                 for r in self.summary()]
        lines.append(table(rows, rule=True))
        n_neur = sum(math.prod(self.shapes[n]) for n in self.neurons)
        lines.append(f"parameters: {self.n_parameters()}   spiking layers: {len(self.neurons)}   neurons per sample: {n_neur}")
        lines.append(f"profile: {prof.name} - {prof.description}")
        for m in sorted({self.nodes[n].model for n in self.neurons}):
            lines.append(f"  {m}: " + ", ".join(f"{k}={v}" for k, v in prof.choices(m).as_dict().items()))
        return "\n".join(lines)

    # -- (de)serialisation ------------------------------------------------------------------
    def to_dict(self):
        """Return ``(document, tensors)``: the JSON graph and a dict of float32 arrays."""
        nodes, tensors = [], {}
        for name in self.order:
            node = self.nodes[name]
            d = node.to_dict()
            for field, arr in node.tensors().items():
                key = f"{name}.{field}"
                tensors[key] = arr
                d[field] = {"tensor": key}
            nodes.append(d)
        doc = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "name": self.name,
               "metadata": self.metadata, "nodes": nodes}
        return doc, tensors

    @classmethod
    def from_dict(cls, doc, tensors) -> "Graph":
        """Build from the JSON document and its tensors; every field is checked."""
        if not isinstance(doc, dict):
            raise ModelFormatError("graph document", "a JSON object", type(doc).__name__)
        if doc.get("format") != FORMAT_NAME:
            raise ModelFormatError("field 'format'", repr(FORMAT_NAME), repr(doc.get("format")))
        ver = doc.get("format_version")
        if ver != FORMAT_VERSION:
            raise ModelFormatError("field 'format_version'", f"{FORMAT_VERSION} (this refsim reads version {FORMAT_VERSION})", repr(ver))
        raw_nodes = doc.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            raise ModelFormatError("field 'nodes'", "a non-empty list of node objects", type(raw_nodes).__name__)
        used = set()
        nodes = []
        for k, nd in enumerate(raw_nodes):
            if not isinstance(nd, dict):
                raise ModelFormatError(f"nodes[{k}]", "a JSON object", type(nd).__name__)
            name = nd.get("name")
            if not isinstance(name, str) or not name:
                raise ModelFormatError(f"nodes[{k}] field 'name'", "a non-empty string", repr(name))
            if "type" not in nd:
                raise ModelFormatError(f"node {name!r} field 'type'", "a node type", "nothing")
            try:
                ntype = get_node_type(nd["type"])
            except UnknownNameError as exc:
                raise ModelFormatError(f"node {name!r} field 'type'", "one of " + ", ".join(exc.valid),
                                       f"{nd['type']!r} (unknown node type)") from None
            valid = ntype.field_names()
            kwargs = {}
            for key, value in nd.items():
                if key in ("name", "type"):
                    continue
                if key not in valid:
                    raise ModelFormatError(f"node {name!r} field {key!r}",
                                           f"one of the fields of a {ntype.TYPE}: {', '.join(valid)}", "an unknown field")
                if isinstance(value, dict) and set(value) == {"tensor"}:
                    tkey = value["tensor"]
                    if tkey not in tensors:
                        raise ModelFormatError(f"node {name!r} field {key!r}", f"tensor {tkey!r} in the weights",
                                               "no such tensor (missing tensor)")
                    used.add(tkey)
                    value = tensors[tkey]
                    if not isinstance(value, np.ndarray) or value.dtype != np.float32:
                        raise ModelFormatError(f"node {name!r} field {key!r}", "dtype float32",
                                               str(getattr(value, "dtype", type(value).__name__)))
                kwargs[key] = value
            for p in ntype.TENSORS:
                if p not in kwargs:
                    raise ModelFormatError(f"node {name!r} field {p!r}", "a tensor reference {\"tensor\": key}", "nothing")
            missing = [f for f in ntype.required_fields() if f not in kwargs]
            if missing:
                raise ModelFormatError(f"node {name!r} field {missing[0]!r}", f"a value (required for a {ntype.TYPE})",
                                       "nothing")
            try:
                nodes.append(ntype(name, **kwargs))
            except UnknownNameError as exc:
                raise ModelFormatError(f"node {name!r}", f"one of {', '.join(exc.valid)}", repr(exc.name)) from None
        extra = sorted(set(tensors) - used)
        if extra:
            raise ModelFormatError("weights", "only tensors the graph refers to", f"unreferenced tensor(s) {', '.join(extra)}")
        meta = doc.get("metadata", {})
        if not isinstance(meta, dict):
            raise ModelFormatError("field 'metadata'", "a JSON object", type(meta).__name__)
        return cls(nodes, name=str(doc.get("name", "model")), metadata=meta)


def _detail(node) -> str:
    t = node.TYPE
    if t in ("Conv2d", "ConvTranspose2d"):
        k = node.weight.shape[2:]
        s = f"k={k[0]}x{k[1]} s={node.stride[0]},{node.stride[1]} p={node.padding}"
        if t == "ConvTranspose2d":
            s += f" op={list(node.output_padding)}"
        if node.groups != 1:
            s += f" g={node.groups}"
        return s + (" bias" if node.bias is not None else "")
    if t in ("AvgPool2d", "SumPool2d"):
        return f"k={node.kernel_size[0]}x{node.kernel_size[1]} s={node.stride[0]},{node.stride[1]}"
    if t == "Neuron":
        th = "per-channel" if isinstance(node.threshold, np.ndarray) else f"{node.threshold:g}"
        s = f"{node.model} theta={th}"
        if node.levels:
            s += " levels=" + ",".join(f"{x:g}" for x in node.levels)
        if node.choices:
            s += " " + " ".join(f"{k}={v}" for k, v in node.choices.items())
        return s
    if t == "Upsample":
        return f"x{node.scale_factor[0]},{node.scale_factor[1]} nearest"
    if t == "Scale":
        return "per-channel" if isinstance(node.factor, np.ndarray) else f"x{node.factor:g}"
    return ""
