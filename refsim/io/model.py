"""The refsim model file: one safetensors file whose metadata holds the JSON graph.

Format (version 1)
------------------
* Container: safetensors (``refsim.io.safetensors``), readable by any safetensors reader.
* ``__metadata__["format"] = "refsim-model"``, ``__metadata__["format_version"] = "1"``,
  ``__metadata__["graph"]`` = the JSON graph document (see ``docs/model-format.md``).
* Tensors: float32, named ``<node>.<field>``; the graph refers to them as ``{"tensor": key}``.

Loading checks everything before returning (unknown node types, dangling or cyclic edges, shapes,
dtypes, non-finite values, missing or unreferenced tensors, truncation) and raises
:class:`refsim.errors.ModelFormatError` naming the file, node and field. Nothing is unpickled.
"""
from __future__ import annotations

import json
import os

from ..errors import ModelFormatError, RefsimError
from ..graph import FORMAT_NAME, FORMAT_VERSION, Graph
from . import safetensors


def save_model(graph: Graph, path) -> None:
    """Write ``graph`` to ``path`` (atomically: a failed write leaves no partial file)."""
    doc, tensors = graph.to_dict()
    meta = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "graph": json.dumps(doc, sort_keys=True)}
    safetensors.write(path, tensors, meta)


def load_model(path) -> Graph:
    """Read and validate a model file."""
    path = os.fspath(path)
    tensors, meta = safetensors.read(path)
    if meta.get("format") != FORMAT_NAME:
        raise ModelFormatError("metadata 'format'", repr(FORMAT_NAME), repr(meta.get("format")), file=path)
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ModelFormatError("metadata 'format_version'", f"{str(FORMAT_VERSION)!r} (this refsim reads version "
                               f"{FORMAT_VERSION})", repr(meta.get("format_version")), file=path)
    if "graph" not in meta:
        raise ModelFormatError("metadata 'graph'", "the JSON graph document", "nothing", file=path)
    try:
        doc = json.loads(meta["graph"])
    except (ValueError, RecursionError) as exc:  # JSON errors, integer literals too long, nesting too deep
        raise ModelFormatError("metadata 'graph'", "valid JSON", f"{type(exc).__name__}: {str(exc)[:120]}", file=path) from None
    try:
        return Graph.from_dict(doc, tensors)
    except ModelFormatError as exc:
        raise exc.with_file(path) from None
    except RefsimError as exc:  # an UnknownNameError or ValidationError from a node: add the file
        raise ModelFormatError("graph", "a valid graph", str(exc), file=path) from None
