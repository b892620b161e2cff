"""A strict reader and writer of the safetensors container (no pickle, no dependency).

Layout (https://github.com/huggingface/safetensors, "Format"): an unsigned little-endian 64-bit
header length N, N bytes of JSON header (``{"__metadata__": {str: str}, name: {"dtype", "shape",
"data_offsets": [begin, end]}}``), then the tensor bytes, little-endian, C order. The format is
small enough that a strict reader of our own gives better errors (file, tensor, field) than a
wrapper would; tests cross-check with the ``safetensors`` package when it is installed.
"""
from __future__ import annotations

import json
import struct

import numpy as np

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
    from .._files import atomic_path
    with atomic_path(path, ".tmp") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(hbytes)))
            fh.write(hbytes)
            for b in blobs:
                fh.write(b)


def read(path) -> tuple[dict, dict]:
    """Return ``(tensors, metadata)``; every inconsistency raises :class:`ModelFormatError`."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise _err(path, "file", "a readable file", exc.strerror or str(exc)) from None
    if len(raw) < 8:
        raise _err(path, "header length", "8 bytes", f"a file of {len(raw)} bytes (truncated)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise _err(path, "header", f"{n} bytes of JSON header", f"{len(raw) - 8} bytes after the length (truncated or not safetensors)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _err(path, "header", "UTF-8 JSON", f"unparseable header ({exc})") from None
    if not isinstance(header, dict):
        raise _err(path, "header", "a JSON object", type(header).__name__)
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _err(path, "header field '__metadata__'", "an object of strings", repr(meta)[:80])
    data = memoryview(raw)[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            raise _err(path, where, "an object with dtype, shape, data_offsets", type(info).__name__)
        dt = info.get("dtype")
        if dt not in _DTYPES:
            raise _err(path, where + " field 'dtype'", "one of " + ", ".join(_DTYPES), repr(dt))
        shape = info.get("shape")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise _err(path, where + " field 'shape'", "a list of non-negative integers", repr(shape))
        offs = info.get("data_offsets")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs) and 0 <= offs[0] <= offs[1]):
            raise _err(path, where + " field 'data_offsets'", "[begin, end] with 0 <= begin <= end", repr(offs))
        dtype = np.dtype(_DTYPES[dt])
        need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offs[1] - offs[0] != need:
            raise _err(path, where, f"{need} bytes for shape {tuple(shape)} {dt}", f"{offs[1] - offs[0]} bytes")
        if offs[1] > len(data):
            raise _err(path, where, f"data up to byte {offs[1]}", f"{len(data)} bytes of data (truncated file)")
        arr = np.frombuffer(data[offs[0]:offs[1]], dtype=dtype).reshape(shape)
        tensors[name] = arr.astype(dtype.newbyteorder("="), copy=True)
        spans.append((offs[0], offs[1], name))
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        if b0 < a1:
            raise _err(path, f"tensor {bn!r}", f"data after tensor {an!r} ends (byte {a1})", f"overlap starting at byte {b0}")
    return tensors, dict(meta)
