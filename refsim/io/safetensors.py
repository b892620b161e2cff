"""A strict reader and writer of the safetensors container (no pickle, no dependency).

Layout (https://github.com/huggingface/safetensors, "Format"): an unsigned little-endian 64-bit
header length N, N bytes of JSON header (``{"__metadata__": {str: str}, name: {"dtype", "shape",
"data_offsets": [begin, end]}}``), then the tensor bytes, little-endian, C order. The format is
small enough that a strict reader of our own gives better errors (file, tensor, field) than a
wrapper would; tests cross-check with the ``safetensors`` package when it is installed.
"""
from __future__ import annotations

import json
import os
import stat
import struct

import numpy as np

from .inputs import describe_file
from .._files import atomic_path
from ..errors import ModelFormatError

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
_NAMES = {np.dtype(v).str if v != "?" else np.dtype(bool).str: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _err(file, where, expected, found):
    return ModelFormatError(where, expected, found, file=str(file))


def write(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> array) and string ``metadata`` atomically to ``path``."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        key = _NAMES.get(arr.dtype.newbyteorder("<").str if arr.dtype.byteorder == ">" else arr.dtype.str)
        if key is None:
            raise ModelFormatError(f"tensor {name!r}", "a numeric dtype safetensors can store", str(arr.dtype))
        data = arr.astype(_DTYPES[key], copy=False).tobytes()
        header[name] = {"dtype": key, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)
    with atomic_path(path, ".tmp") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(hbytes)))
            fh.write(hbytes)
            for b in blobs:
                fh.write(b)


def read(path) -> tuple[dict, dict]:
    """Return ``(tensors, metadata)``; every inconsistency raises :class:`ModelFormatError`.

    Nothing is read or allocated from a size the file claims before it is checked: the 8-byte length
    and the JSON header are read first (the header at most 100 MiB), every tensor's shape, dtype and
    byte range are validated against the file's real length (Python integers: no wrap-around), and
    only then are the tensor bytes read, one tensor at a time."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # a FIFO would block, a folder is no file
            raise _err(path, "file", "a regular, readable file", "a folder" if stat.S_ISDIR(mode) else
                       "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file")
        size = os.path.getsize(path)
        fh = open(path, "rb")
    except OSError as exc:
        raise _err(path, "file", "a readable file", exc.strerror or str(exc)) from None
    with fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _err(path, "header length", "8 bytes", f"a file of {len(head)} bytes (truncated)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            kind = describe_file(path)
            if "safetensors" in kind:
                raise _err(path, "header", f"{n} bytes of JSON header",
                           f"{size - 8} bytes after the length (a truncated safetensors file)")
            raise _err(path, "file", "a refsim model file (.safetensors; an ONNX ANN goes to refsim convert or "
                       "refsim import, a NIR graph to refsim import)", kind)
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON errors, huge int literals
            raise _err(path, "header", "UTF-8 JSON", f"unparseable header ({type(exc).__name__}: {str(exc)[:120]})") from None
        if not isinstance(header, dict):
            raise _err(path, "header", "a JSON object", type(header).__name__)
        meta = header.pop("__metadata__", {}) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise _err(path, "header field '__metadata__'", "an object of strings", repr(meta)[:80])
        data_len = size - 8 - n
        plan, spans = [], []
        for name, info in header.items():
            where = f"tensor {name!r}"
            if not isinstance(info, dict):
                raise _err(path, where, "an object with dtype, shape, data_offsets", type(info).__name__)
            dt = info.get("dtype")
            if not isinstance(dt, str) or dt not in _DTYPES:
                raise _err(path, where + " field 'dtype'", "one of " + ", ".join(_DTYPES), repr(dt)[:80])
            shape = info.get("shape")
            if not isinstance(shape, list) or len(shape) > 32 or not all(
                    isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise _err(path, where + " field 'shape'", "a list of at most 32 non-negative integers", repr(shape)[:80])
            offs = info.get("data_offsets")
            if not (isinstance(offs, list) and len(offs) == 2
                    and all(isinstance(o, int) and not isinstance(o, bool) for o in offs) and 0 <= offs[0] <= offs[1]):
                raise _err(path, where + " field 'data_offsets'", "[begin, end] with 0 <= begin <= end", repr(offs)[:80])
            dtype = np.dtype(_DTYPES[dt])
            count = 1
            for d in shape:  # Python integers: a shape whose byte count would wrap past 2**64 cannot pass
                count *= d
            need = count * dtype.itemsize
            if offs[1] - offs[0] != need:
                raise _err(path, where, f"{need} bytes for shape {tuple(shape)} {dt}", f"{offs[1] - offs[0]} bytes")
            if offs[1] > data_len:
                raise _err(path, where, f"data up to byte {offs[1]}", f"{data_len} bytes of data (truncated file)")
            plan.append((name, dtype, tuple(shape), offs))
            spans.append((offs[0], offs[1], name))
        tensors = {}
        for name, dtype, shape, offs in plan:
            fh.seek(8 + n + offs[0])
            raw = fh.read(offs[1] - offs[0])
            tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise _err(path, f"tensor {bn!r}", f"data after tensor {an!r} ends (byte {a1})", f"overlap starting at byte {b0}")
    return tensors, dict(meta)
