"""One input preparation for every command: a model's input batch (and labels) from a file.

``refsim run``, ``analyze``, ``convert --calib``, ``segment`` and ``demo`` all read their inputs
here, so the same file gives the same model input whichever command reads it:

* a NIfTI volume is normalised over the whole volume, then sliced along the run configuration's
  axis and fitted to the model's input (:func:`refsim.io.nifti.prepare_slices`), both from the
  model's metadata unless given (:class:`refsim.config.RunConfig`);
* ``.npy`` / ``.npz`` arrays are taken as they are (an ``.npz`` holds ``x`` or a single array),
  never unpickled.

A file of another kind (a model, ONNX, NIR, text, ...) is refused with a message that says what
it is and which command takes it (:func:`describe_file`).
"""
from __future__ import annotations

import os
import stat
import zipfile

import numpy as np

from .nifti import prepare_slices, read_volume
from .._files import require_regular_file
from ..errors import EncodingError

NII = (".nii", ".nii.gz")

_MAGIC = ((b"\x93NUMPY", "a NumPy .npy array"), (b"PK\x03\x04", "a zip archive (.npz arrays or a trace file)"),
          (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a NIR graph: refsim import)"),
          (b"\x1f\x8b", "a gzip file (a .nii.gz volume?)"))


def describe_file(path) -> str:
    """What ``path`` holds, by its first bytes: for error messages that name the file's kind. Only
    a regular file is opened (a FIFO would block)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not stat.S_ISREG(mode):
        return "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not head:
        return "an empty file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 10 ** 9:
        return "a safetensors file (a refsim model: the MODEL argument)"
    if head[:1] in (b"\x08", b"\x0a", b"\x12", b"\x1a", b"\x22", b"\x3a") and path.lower().endswith(".onnx"):
        return "an ONNX model (refsim convert ANN.onnx ...)"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "binary data of an unknown kind"


def is_nifti(path) -> bool:
    return os.fspath(path).lower().endswith(NII)


def load_array(path) -> np.ndarray:
    """A ``.npy`` array, or from an ``.npz`` the array named ``x`` (or its only array). Never unpickles."""
    path = os.fspath(path)
    require_regular_file(path, "input")
    try:
        loaded = np.load(path, allow_pickle=False)  # by content: an .npy array or an .npz archive, whatever the name
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            return loaded
        with loaded as z:
            keys = list(z.keys())
            key = "x" if "x" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise EncodingError(f"{path}: expected an array named 'x' or a single array, found {keys}")
            return z[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        kind = describe_file(path)
        detail = f" ({type(exc).__name__}: {exc})" if kind.startswith(("binary", "a NumPy", "a zip")) else ""
        raise EncodingError(f"{path}: expected a .npy/.npz array or a NIfTI volume (.nii, .nii.gz), found "
                            f"{kind}{detail}") from None


def _slice_shape(graph, path):
    shape = graph.shapes[graph.inputs[0]]
    if len(shape) != 3 or shape[0] != 1:
        raise EncodingError(f"{path}: a NIfTI volume needs a model with a (1, H, W) input, found {shape}")
    return shape[1:]


def load_input(path, graph, config):
    """The model input batch in ``path`` and, for a NIfTI volume, its slice geometry (else None);
    ``config`` is a :class:`refsim.config.RunConfig` (axis, normalisation)."""
    path = os.fspath(path)
    require_regular_file(path, "input")
    if is_nifti(path):
        return prepare_slices(read_volume(path), _slice_shape(graph, path), config.axis, config.normalize)
    x = load_array(path)
    if x.ndim == 0:
        raise EncodingError(f"{path}: expected an array (B, *input shape) or one sample, found a single number")
    return x, None


def load_labels(path, graph, n, config) -> np.ndarray:
    """Labels of ``n`` input samples: a NIfTI label volume sliced exactly as :func:`load_input`
    slices its image, or an array of masks (n, H, W) / (n, 1, H, W), as booleans (``label > 0``);
    or, for a classifier, class indices (n,) as int64."""
    path = os.fspath(path)
    hw = tuple(graph.shapes[graph.inputs[0]][1:])
    if is_nifti(path):
        lab = prepare_slices(read_volume(path).data > 0, _slice_shape(graph, path), config.axis, "none")[0][:, 0]
    else:
        lab = load_array(path)
        if lab.ndim == 1:
            if lab.shape != (n,) or lab.dtype.kind not in "biuf" or not np.all(np.isfinite(lab)) \
                    or np.any(lab != np.round(lab)) or (lab.size and lab.min() < 0):
                raise EncodingError(f"{path}: expected class labels, {n} non-negative integers (one per input "
                                    f"sample), found shape {lab.shape}, dtype {lab.dtype}")
            return lab.astype(np.int64)
        if lab.ndim == 4 and lab.shape[1] == 1:
            lab = lab[:, 0]
    if lab.shape != (n,) + hw:
        raise EncodingError(f"{path}: expected labels of shape {(n,) + hw} (one mask per input sample) or ({n},) "
                            f"(class labels), found {lab.shape}")
    return lab > 0
