"""File formats: the native model file, NIfTI volumes, ONNX ANNs and NIR graphs, and the one input
preparation every command uses (:mod:`.inputs`)."""
import os

from .inputs import describe_file
from .model import load_model, save_model
from .nir import load_nir
from .onnx import load_onnx
from .._files import require_regular_file
from ..errors import ValidationError


def load_any_model(path, input_shape=None):
    """A graph from a refsim model file or an ONNX ANN (imported; ``input_shape`` when the file
    leaves it symbolic)."""
    if os.fspath(path).lower().endswith(".onnx"):
        return load_onnx(path, input_shape=input_shape)
    return load_model(path)


def import_file(path, input_shape=None, dt=None, discretisation="euler"):
    """A graph imported from an ``.onnx`` ANN or a ``.nir`` graph (by the file name's suffix)."""
    low = os.fspath(path).lower()
    if low.endswith((".onnx", ".nir")):
        require_regular_file(path, "FILE")  # a FIFO would block the parser
    if low.endswith(".onnx"):
        return load_any_model(path, input_shape)
    if low.endswith(".nir"):
        return load_nir(path, dt=dt, discretisation=discretisation, input_shape=input_shape)
    raise ValidationError("FILE", "an .onnx or .nir file", f"{path} ({describe_file(path)})")


def import_summary(path, g) -> str:
    """What ``refsim import`` says about the graph ``g`` imported from ``path``: its node types, and
    the metadata the importer left (folded batch norms, the ANN head, NIR's discretisation)."""
    types = {}
    for n in g.order:
        types[g[n].TYPE] = types.get(g[n].TYPE, 0) + 1
    lines = [f"imported {path}: " + ", ".join(f"{v} {k}" for k, v in types.items())]
    lines += [f"  {key}: {g.metadata[key]}" for key in ("folded_batchnorm", "ann_head", "nir_discretisation", "nir_notes")
              if g.metadata.get(key)]
    return "\n".join(lines)


__all__ = ["load_model", "save_model", "load_any_model", "import_file", "import_summary"]
