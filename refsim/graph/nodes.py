"""Node types of a refsim network graph, and their registry.

Each node has a ``name``, a list of ``inputs`` (names of other nodes), parameters described by
its ``FIELDS`` and tensors (float32 NumPy arrays) named by its ``TENSORS``. Shapes are per
sample: ``(C, H, W)`` for feature maps, ``(F,)`` after ``Flatten``.

=================  ============================================================================
type               meaning
=================  ============================================================================
Input              network input of a given shape (encoded each step by the run's encoder)
Conv2d             cross-correlation as torch ``Conv2d`` (stride, padding incl. 'same', dilation,
                   groups, optional bias added every step)
ConvTranspose2d    as torch ``ConvTranspose2d`` (stride, padding, output_padding, dilation, groups)
AvgPool2d          window mean (count_include_pad=True); its output is an analog current unless
                   a Neuron follows it
SumPool2d          window sum (Sinabs ``SumPool2d``)
Concat             channel concatenation, in the order of ``inputs``
Upsample           nearest-neighbour up-sampling by integer factors
Flatten            (C, H, W) -> (C*H*W,), C order as torch ``flatten(1)``
Linear             ``x @ W.T + b``
Dropout            identity at inference (``p`` is kept for the record)
Scale              multiply by a constant, per layer or per channel
Neuron             spiking layer: ``model`` is 'if', 'ternary' or 'multithreshold'
Output             non-firing integrator (Yue eq. 3); its membrane is the network output
=================  ============================================================================
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import ClassVar

import numpy as np

from ..errors import ModelFormatError, RefsimError, ShapeError, UnknownNameError
from ..neurons import NEURON_MODELS, get_model, make_params
from ..neurons._common import as_threshold
from ..semantics import DEFAULT_PROFILE, get_profile
from . import ops


def _err(node, field, expected, found, cls=ModelFormatError):
    return cls(f"node {node!r} field {field!r}", expected, found)


def _int_pair(node, field, value, minimum):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
            or min(value) < minimum):
        raise _err(node, field, f"an integer >= {minimum} or a pair of them", value)
    return (int(value[0]), int(value[1]))


def _printable(text: str) -> bool:
    """Whether ``text`` can be printed and written as UTF-8 (no lone surrogates, no control characters)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def finite_number(node, field, value, positive=False) -> float:
    """A number field (threshold, level, factor, beta, bias, ...): a real number that stays finite
    when stored as float32, as every parameter is (an integer too large for a float is refused
    here, not where arithmetic overflows). Returns it as a Python float."""
    want = "a positive number" if positive else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _err(node, field, want, repr(value))
    try:
        f = float(value)
    except OverflowError:
        f = math.inf
    with np.errstate(over="ignore"):
        f32 = np.float32(f)
    if not (math.isfinite(f) and np.isfinite(f32)):
        shown = f"an integer of {len(str(abs(int(value))))} digits" if isinstance(value, (int, np.integer)) else repr(value)
        raise _err(node, field, f"{want} finite in float32 (|x| < 3.4e38)", shown)
    if positive and not f32 > 0:
        raise _err(node, field, want, repr(value))
    return f


def _pos_int(node, field, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise _err(node, field, f"an integer >= {minimum}", value)
    return int(value)


def check_tensor(node, field, arr, shape):
    """A parameter tensor must be float32, finite and of the expected shape."""
    if not isinstance(arr, np.ndarray):
        raise _err(node, field, "a float32 array", type(arr).__name__)
    if arr.dtype != np.float32:
        raise _err(node, field, "dtype float32", str(arr.dtype))
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise _err(node, field, f"shape {tuple(shape)}", tuple(arr.shape), ShapeError)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise _err(node, field, "finite values", f"{arr[idx]} at index {idx} ({int(bad.sum())} non-finite entries)")
    return arr


@functools.lru_cache(maxsize=None)
def _signature(cls):
    """(field names, required field names) of a node class's constructor, computed once per class."""
    sig = inspect.signature(cls.__init__).parameters
    names = tuple(p for p in sig if p not in ("self", "name"))
    return names, tuple(p for p in names if sig[p].default is inspect.Parameter.empty)


def _freezing(init):
    """Wrap a node constructor so the node is immutable once the outermost constructor returns
    (its tensors become read-only views)."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        depth = self.__dict__.get("_init_depth", 0)
        object.__setattr__(self, "_init_depth", depth + 1)
        try:
            init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_init_depth", depth)
        if depth == 0:
            for f in self.TENSORS + self.OPTIONAL_TENSORS:
                v = self.__dict__.get(f)
                if isinstance(v, np.ndarray) and v.flags.writeable:
                    v = v.view()
                    v.flags.writeable = False
                    object.__setattr__(self, f, v)
            object.__setattr__(self, "_frozen", True)
    return __init__


class Node:
    """Base class. Subclasses set ``TYPE``, ``ARITY`` (None = one or more) and ``TENSORS``.

    Nodes are immutable values: every field is validated by the constructor, tensors are read-only,
    and :meth:`replace` returns a new, validated node with some fields changed (as
    ``dataclasses.replace`` does for a frozen dataclass).
    """

    TYPE: ClassVar[str] = ""
    ARITY: ClassVar[int | None] = 1
    TENSORS: ClassVar[tuple] = ()
    OPTIONAL_TENSORS: ClassVar[tuple] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _freezing(cls.__dict__["__init__"])

    def __setattr__(self, key, value):
        if self.__dict__.get("_frozen"):
            raise AttributeError(f"{self.TYPE} node {self.name!r} is immutable; use node.replace({key}=...)")
        object.__setattr__(self, key, value)

    @classmethod
    def field_names(cls) -> list:
        """The constructor's fields (besides ``name``): what a model file and :meth:`replace` may set."""
        return list(_signature(cls)[0])

    @classmethod
    def required_fields(cls) -> list:
        return list(_signature(cls)[1])

    def fields(self) -> dict:
        """The constructor arguments that rebuild this node (inputs, parameters, tensors)."""
        kw = {"inputs": list(self.inputs)}
        kw.update(self.params())
        for f in self.TENSORS + self.OPTIONAL_TENSORS:
            if f in self.field_names():
                kw[f] = getattr(self, f, None)
        return {k: v for k, v in kw.items() if k in self.field_names()}

    def replace(self, **changes) -> "Node":
        """A new node with ``changes`` applied, validated like any other (unknown fields raise)."""
        valid = ["name"] + self.field_names()
        for key in changes:
            if key not in valid:
                raise UnknownNameError(f"field of a {self.TYPE}", key, valid)
        kw = self.fields()
        kw.update(changes)
        return type(self)(kw.pop("name", self.name), **kw)

    def __init__(self, name: str, inputs=()):
        if not isinstance(name, str) or not name or not _printable(name):
            raise ModelFormatError("node name", "a non-empty string of printable Unicode characters",
                                   repr(name) if isinstance(name, str) else name)
        self.name = name
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(i, str) and _printable(i) for i in inputs):
            raise _err(name, "inputs", "a list of node names", repr(inputs))
        self.inputs = list(inputs)
        if self.ARITY is not None and len(self.inputs) != self.ARITY:
            raise _err(name, "inputs", f"exactly {self.ARITY} input(s) for a {self.TYPE}", self.inputs)
        if self.ARITY is None and not self.inputs:
            raise _err(name, "inputs", f"at least one input for a {self.TYPE}", self.inputs)

    # -- serialisation ------------------------------------------------------------------
    def params(self) -> dict:
        """JSON-serialisable parameters (everything but name, type, inputs and tensors)."""
        return {}

    def tensors(self) -> dict:
        out = {}
        for f in self.TENSORS + self.OPTIONAL_TENSORS:
            v = getattr(self, f, None)
            if isinstance(v, np.ndarray):
                out[f] = v
        return out

    def to_dict(self) -> dict:
        d = {"name": self.name, "type": self.TYPE}
        if self.inputs:
            d["inputs"] = list(self.inputs)
        d.update(self.params())
        return d

    # -- semantics ----------------------------------------------------------------------
    def infer_shape(self, shapes: list) -> tuple:
        raise NotImplementedError

    def forward(self, xs: list) -> np.ndarray:
        raise NotImplementedError

    def check_tensors(self, in_shapes: list) -> None:
        """Validate tensors against the inferred input shapes (called by the graph)."""

    def __repr__(self):
        return f"{self.TYPE}({self.name!r}, inputs={self.inputs})"

    def _want_fmap(self, shapes, i=0):
        s = shapes[i]
        if len(s) != 3:
            raise ShapeError(f"node {self.name!r} input {self.inputs[i]!r}", "a (C, H, W) feature map", s)
        return s


class Input(Node):
    TYPE = "Input"
    ARITY = 0

    def __init__(self, name, shape, inputs=()):
        super().__init__(name, inputs)
        if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
                or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise _err(name, "shape", "(C, H, W) or (F,) with positive integers", shape)
        self.shape = tuple(int(s) for s in shape)

    def params(self):
        return {"shape": list(self.shape)}

    def infer_shape(self, shapes):
        return self.shape


class _ConvBase(Node):
    TENSORS = ("weight",)
    OPTIONAL_TENSORS = ("bias",)

    def __init__(self, name, inputs, weight, bias=None, stride=1, dilation=1, groups=1):
        super().__init__(name, inputs)
        self.weight = weight
        self.bias = bias
        self.stride = _int_pair(name, "stride", stride, 1)
        self.dilation = _int_pair(name, "dilation", dilation, 1)
        self.groups = _pos_int(name, "groups", groups)
        if not isinstance(weight, np.ndarray) or weight.ndim != 4:
            raise _err(name, "weight", "a 4-D float32 array", getattr(weight, "shape", type(weight).__name__), ShapeError)

    def check_tensors(self, in_shapes):
        c = in_shapes[0][0]
        if c != self.in_channels:
            hint = self.IN_CHANNELS_HINT.format(c=c, g=self.groups)
            raise ShapeError(f"node {self.name!r} field 'weight'",
                             f"{hint} (input {self.inputs[0]!r} has {c} channels)", f"shape {tuple(self.weight.shape)}")
        check_tensor(self.name, "weight", self.weight, None)
        if self.bias is not None:
            check_tensor(self.name, "bias", self.bias, (self.out_channels,))


class Conv2d(_ConvBase):
    """``weight`` (Cout, Cin/groups, kh, kw); ``padding`` int, pair, (top, bottom, left, right) or 'same'."""

    TYPE = "Conv2d"

    def __init__(self, name, inputs, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        super().__init__(name, inputs, weight, bias, stride, dilation, groups)
        self.padding = padding
        if padding == "same":
            if self.stride != (1, 1):
                raise _err(name, "padding", "numeric padding when stride != 1 ('same' needs stride 1, as in torch)", padding)
            kh, kw = weight.shape[2:]
            th, tw = self.dilation[0] * (kh - 1), self.dilation[1] * (kw - 1)
            self.pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        elif isinstance(padding, (list, tuple)) and len(padding) == 4:
            if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in padding):
                raise _err(name, "padding", "non-negative integers", padding)
            self.pads = tuple(int(p) for p in padding)
            self.padding = list(self.pads)
        else:
            ph, pw = _int_pair(name, "padding", padding, 0)
            self.pads = (ph, ph, pw, pw)
            self.padding = [ph, pw]
        if weight.shape[0] % self.groups:
            raise _err(name, "groups", f"a divisor of out_channels={weight.shape[0]}", self.groups)

    @property
    def in_channels(self):
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self):
        return self.weight.shape[0]

    def params(self):
        return {"stride": list(self.stride), "padding": self.padding, "dilation": list(self.dilation),
                "groups": self.groups}

    IN_CHANNELS_HINT = "in_channels/groups = {c}/{g} in dimension 1"

    def infer_shape(self, shapes):
        c, h, w = self._want_fmap(shapes)
        kh, kw = self.weight.shape[2:]
        pt, pb, pl, pr = self.pads
        ho = (h + pt + pb - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + pl + pr - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if ho < 1 or wo < 1:
            raise ShapeError(f"node {self.name!r}", "a kernel that fits the padded input", f"input {h}x{w}, kernel {kh}x{kw}")
        return (self.out_channels, ho, wo)

    def forward(self, xs):
        return ops.conv2d(xs[0], self.weight, self.bias, self.stride, self.pads, self.dilation, self.groups)


class ConvTranspose2d(_ConvBase):
    """``weight`` (Cin, Cout/groups, kh, kw) as torch."""

    TYPE = "ConvTranspose2d"

    def __init__(self, name, inputs, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
        super().__init__(name, inputs, weight, bias, stride, dilation, groups)
        self.padding = _int_pair(name, "padding", padding, 0)
        self.output_padding = _int_pair(name, "output_padding", output_padding, 0)
        for a in range(2):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise _err(name, "output_padding", "smaller than stride or dilation (as torch)", list(self.output_padding))
        if weight.shape[0] % self.groups:
            raise _err(name, "groups", f"a divisor of in_channels={weight.shape[0]}", self.groups)

    @property
    def in_channels(self):
        return self.weight.shape[0]

    @property
    def out_channels(self):
        return self.weight.shape[1] * self.groups

    def params(self):
        return {"stride": list(self.stride), "padding": list(self.padding), "output_padding": list(self.output_padding),
                "dilation": list(self.dilation), "groups": self.groups}

    IN_CHANNELS_HINT = "in_channels = {c} in dimension 0"

    def infer_shape(self, shapes):
        c, h, w = self._want_fmap(shapes)
        kh, kw = self.weight.shape[2:]
        ho = (h - 1) * self.stride[0] - 2 * self.padding[0] + self.dilation[0] * (kh - 1) + self.output_padding[0] + 1
        wo = (w - 1) * self.stride[1] - 2 * self.padding[1] + self.dilation[1] * (kw - 1) + self.output_padding[1] + 1
        if ho < 1 or wo < 1:
            raise ShapeError(f"node {self.name!r}", "a positive output size", (ho, wo))
        return (self.out_channels, ho, wo)

    def forward(self, xs):
        return ops.conv_transpose2d(xs[0], self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                    self.dilation, self.groups)


class _PoolBase(Node):
    def __init__(self, name, inputs, kernel_size, stride=None, padding=0):
        super().__init__(name, inputs)
        self.kernel_size = _int_pair(name, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _int_pair(name, "stride", stride, 1)
        self.padding = _int_pair(name, "padding", padding, 0)
        if self.padding[0] * 2 > self.kernel_size[0] or self.padding[1] * 2 > self.kernel_size[1]:
            raise _err(name, "padding", "at most half the kernel size (as torch)", list(self.padding))

    def params(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def infer_shape(self, shapes):
        c, h, w = self._want_fmap(shapes)
        ho = (h + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
        if ho < 1 or wo < 1:
            raise ShapeError(f"node {self.name!r}", "a window that fits the input", f"input {h}x{w}, kernel {self.kernel_size}")
        return (c, ho, wo)


class AvgPool2d(_PoolBase):
    TYPE = "AvgPool2d"

    def forward(self, xs):
        return ops.avg_pool2d(xs[0], self.kernel_size, self.stride, self.padding)


class SumPool2d(_PoolBase):
    TYPE = "SumPool2d"

    def forward(self, xs):
        return ops.sum_pool2d(xs[0], self.kernel_size, self.stride, self.padding)


class Concat(Node):
    TYPE = "Concat"
    ARITY = None

    def infer_shape(self, shapes):
        for i in range(len(shapes)):
            self._want_fmap(shapes, i)
        hw = {tuple(s[1:]) for s in shapes}
        if len(hw) != 1:
            raise ShapeError(f"node {self.name!r} inputs", "feature maps of one spatial size",
                             ", ".join(f"{n}: {s}" for n, s in zip(self.inputs, shapes)))
        return (sum(s[0] for s in shapes),) + tuple(shapes[0][1:])

    def forward(self, xs):
        return np.concatenate(xs, axis=1)


class Add(Node):
    """Element-wise sum of two or more inputs of one shape (residual connections), summed left to
    right in float64."""

    TYPE = "Add"
    ARITY = None

    def __init__(self, name, inputs):
        super().__init__(name, inputs)
        if len(self.inputs) < 2:
            raise _err(name, "inputs", "at least two inputs for an Add", self.inputs)

    def infer_shape(self, shapes):
        if len({tuple(s) for s in shapes}) != 1:
            raise ShapeError(f"node {self.name!r} inputs", "inputs of one shape",
                             ", ".join(f"{n}: {s}" for n, s in zip(self.inputs, shapes)))
        return tuple(shapes[0])

    def forward(self, xs):
        out = np.array(xs[0], dtype=np.float64)
        for x in xs[1:]:
            out = out + x
        return out


class Delay(Node):
    """The value its input had one step earlier (zeros at step 0): a recurrent connection, such as
    NIR's cycles (a recurrent weight matrix reads the layer's spikes of the previous step). The
    simulator steps it; ``shape`` is declared because its input comes later in the graph's order."""

    TYPE = "Delay"

    def __init__(self, name, inputs, shape):
        super().__init__(name, inputs)
        if (not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3)
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise _err(name, "shape", "the input's shape: [F] or [C, H, W] of positive integers", shape)
        self.shape = tuple(int(v) for v in shape)

    def params(self):
        return {"shape": list(self.shape)}

    def infer_shape(self, shapes):
        return self.shape

    def forward(self, xs):
        raise RefsimError(f"Delay node {self.name!r} is stepped by the simulator (it holds the previous step's value)")


class Upsample(Node):
    TYPE = "Upsample"

    def __init__(self, name, inputs, scale_factor=2, mode="nearest"):
        super().__init__(name, inputs)
        self.scale_factor = _int_pair(name, "scale_factor", scale_factor, 1)
        if mode != "nearest":
            raise _err(name, "mode", "'nearest'", mode)
        self.mode = mode

    def params(self):
        return {"scale_factor": list(self.scale_factor), "mode": self.mode}

    def infer_shape(self, shapes):
        c, h, w = self._want_fmap(shapes)
        return (c, h * self.scale_factor[0], w * self.scale_factor[1])

    def forward(self, xs):
        return ops.upsample_nearest(xs[0], self.scale_factor)


class Flatten(Node):
    TYPE = "Flatten"

    def infer_shape(self, shapes):
        return (math.prod(shapes[0]),)

    def forward(self, xs):
        return xs[0].reshape(xs[0].shape[0], -1)


class Linear(Node):
    TYPE = "Linear"
    TENSORS = ("weight",)
    OPTIONAL_TENSORS = ("bias",)

    def __init__(self, name, inputs, weight, bias=None):
        super().__init__(name, inputs)
        if not isinstance(weight, np.ndarray) or weight.ndim != 2:
            raise _err(name, "weight", "a 2-D float32 array (out_features, in_features)",
                       getattr(weight, "shape", type(weight).__name__), ShapeError)
        self.weight, self.bias = weight, bias

    def check_tensors(self, in_shapes):
        if len(in_shapes[0]) != 1:
            raise ShapeError(f"node {self.name!r} input {self.inputs[0]!r}", "a flat (F,) input (add a Flatten node)", in_shapes[0])
        check_tensor(self.name, "weight", self.weight, (self.weight.shape[0], in_shapes[0][0]))
        if self.bias is not None:
            check_tensor(self.name, "bias", self.bias, (self.weight.shape[0],))

    def infer_shape(self, shapes):
        return (self.weight.shape[0],)

    def forward(self, xs):
        return ops.linear(xs[0], self.weight, self.bias)


class Dropout(Node):
    TYPE = "Dropout"

    def __init__(self, name, inputs, p=0.0):
        super().__init__(name, inputs)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise _err(name, "p", "a probability in [0, 1)", p)
        self.p = float(p)

    def params(self):
        return {"p": self.p}

    def infer_shape(self, shapes):
        return shapes[0]

    def forward(self, xs):
        return xs[0]


def _scalar_or_tensor(node, field, value):
    """Inline number (stored as float32) or a float32 per-channel tensor."""
    if isinstance(value, np.ndarray):
        return value
    return float(np.float32(finite_number(node, field, value)))


def _check_per_channel(node, field, value, in_shape):
    if isinstance(value, np.ndarray):
        check_tensor(node, field, value, (in_shape[0],))


class Scale(Node):
    TYPE = "Scale"
    OPTIONAL_TENSORS = ("factor",)

    def __init__(self, name, inputs, factor=1.0):
        super().__init__(name, inputs)
        self.factor = _scalar_or_tensor(name, "factor", factor)

    def params(self):
        return {} if isinstance(self.factor, np.ndarray) else {"factor": self.factor}

    def check_tensors(self, in_shapes):
        _check_per_channel(self.name, "factor", self.factor, in_shapes[0])

    def infer_shape(self, shapes):
        return shapes[0]

    def forward(self, xs):
        f = self.factor
        if isinstance(f, np.ndarray):
            f = f.astype(np.float64).reshape((1, -1) + (1,) * (xs[0].ndim - 2))
        return xs[0] * f


_LEAKY_FIELDS = ("beta", "bias", "alpha", "gain")


class Neuron(Node):
    """A spiking layer. ``model``: 'if' | 'ternary' | 'multithreshold' | 'lif' | 'cubalif'.
    ``threshold``: number or per-channel tensor. ``levels``: multithreshold levels. ``choices``:
    overrides of the run's profile for this node only (e.g. ``{"comparison": ">="}``). ``beta``,
    ``bias`` (lif, cubalif) and ``alpha``, ``gain`` (cubalif): numbers or per-channel tensors
    (:mod:`refsim.neurons.lif`); None for the model's default."""

    TYPE = "Neuron"
    OPTIONAL_TENSORS = ("threshold",) + _LEAKY_FIELDS

    def __init__(self, name, inputs, model="if", threshold=1.0, levels=None, choices=None, beta=None, bias=None,
                 alpha=None, gain=None):
        super().__init__(name, inputs)
        if not isinstance(model, str) or model not in NEURON_MODELS:
            raise _err(name, "model", "one of " + ", ".join(NEURON_MODELS), repr(model))
        self.model = model
        allowed = {k for k, _ in get_model(model).extra}
        for f, v in (("beta", beta), ("bias", bias), ("alpha", alpha), ("gain", gain)):
            if v is not None and f not in allowed:
                raise _err(name, f, f"no {f} for a {model!r} neuron (only for " +
                           ", ".join(m for m in NEURON_MODELS if f in {k for k, _ in get_model(m).extra}) + ")", v)
            if v is not None:
                if isinstance(v, np.ndarray):
                    if v.ndim != 1:
                        raise _err(name, f, "a number or a 1-D per-channel tensor", f"shape {v.shape}")
                    check_tensor(name, f, v, None)
                else:
                    v = _scalar_or_tensor(name, f, v)
            setattr(self, f, v)
        if isinstance(threshold, np.ndarray):
            if threshold.ndim != 1:
                raise _err(name, "threshold", "a number or a 1-D per-channel tensor", f"shape {threshold.shape}")
            check_tensor(name, "threshold", threshold, None)
        else:
            threshold = _scalar_or_tensor(name, "threshold", threshold)
        try:
            as_threshold(threshold, "threshold")
        except RefsimError as exc:
            raise _err(name, "threshold", exc.expected, exc.found) from None
        self.threshold = threshold
        if levels is not None and not get_model(model).bitmask:
            raise _err(name, "levels", "no levels unless the model fires by levels ("
                       + ", ".join(m for m, spec in NEURON_MODELS.items() if spec.bitmask) + ")", levels)
        if levels is not None and (not isinstance(levels, (list, tuple)) or not levels):
            raise _err(name, "levels", "a non-empty list of numbers", repr(levels))
        self.levels = None if levels is None else tuple(finite_number(name, "levels", v, positive=True) for v in levels)
        if choices is not None and (not isinstance(choices, dict) or not all(isinstance(k, str) for k in choices)):
            raise _err(name, "choices", "an object of neuron choices, e.g. {\"comparison\": \">=\"}", choices)
        self.choices = dict(choices or {})
        try:  # every parameter as the model will see it, under the default profile
            make_params(model, 1.0, get_profile(DEFAULT_PROFILE).choices(model).replace(**self.choices), self.levels,
                        **self._extra())
        except RefsimError as exc:
            field = next((f for f in ("levels",) + _LEAKY_FIELDS if f in str(exc)), "choices")
            raise _err(name, field, f"values valid for a {model!r} neuron", f"{exc}") from None

    def _extra(self):
        return {f: getattr(self, f) for f in _LEAKY_FIELDS if getattr(self, f, None) is not None}

    def params(self):
        d = {"model": self.model}
        if not isinstance(self.threshold, np.ndarray):
            d["threshold"] = self.threshold
        if self.levels is not None:
            d["levels"] = list(self.levels)
        if self.choices:
            d["choices"] = dict(self.choices)
        for f, v in self._extra().items():
            if not isinstance(v, np.ndarray):
                d[f] = v
        return d

    def check_tensors(self, in_shapes):
        _check_per_channel(self.name, "threshold", self.threshold, in_shapes[0])
        for f, v in self._extra().items():
            _check_per_channel(self.name, f, v, in_shapes[0])

    def infer_shape(self, shapes):
        return shapes[0]

    def make_params(self, profile):
        """Build the neuron model's parameter object under ``profile`` plus this node's overrides."""
        try:
            choices = get_profile(profile).choices(self.model).replace(**self.choices)
            return make_params(self.model, self.threshold, choices, self.levels, **self._extra())
        except (RefsimError) as exc:
            raise _err(self.name, "threshold/levels/choices", "parameters valid for this model under the profile",
                       str(exc)) from None


class Output(Node):
    """Non-firing integrator (Yue eq. 3). Its membrane, recorded every step, is the output."""

    TYPE = "Output"

    def infer_shape(self, shapes):
        return shapes[0]


Node.__init__ = _freezing(Node.__init__)

NODE_TYPES = {cls.TYPE: cls for cls in (Input, Conv2d, ConvTranspose2d, AvgPool2d, SumPool2d, Concat, Add, Delay, Upsample,
                                        Flatten, Linear, Dropout, Scale, Neuron, Output)}


def get_node_type(name):
    try:
        return NODE_TYPES[name]
    except (KeyError, TypeError):
        raise UnknownNameError("node type", name, NODE_TYPES) from None
