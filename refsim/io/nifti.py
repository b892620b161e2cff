"""NIfTI volumes (nibabel) as batches of 2-D slices for the 2-D networks, with their geometry, so
that a prediction can be written back onto the volume's own grid.

* :func:`read_volume` -> :class:`Volume` (data as float64, the affine, the header, the on-disk dtype);
* :func:`slice_volume` -> slices ``(N, 1, H, W)`` fitted to a model's input (centred, zero-padded or
  cropped) and the :class:`SliceGeometry` that records the slicing axis and every pad and crop;
* :func:`unslice` puts per-slice maps back into the volume's shape (cropped-away voxels get a fill);
* :func:`save_like` writes a mask or probability map with the source's affine and header, atomically.
"""
from __future__ import annotations

import math
import gzip
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import EncodingError, ModelFormatError, ValidationError
from .._files import atomic_path


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image: ``data`` (float64), ``affine`` (4x4 voxel-to-world), ``header`` (nibabel's, kept
    to write results in the same space), ``dtype`` (on disk) and the ``path`` it came from."""

    data: np.ndarray
    affine: np.ndarray
    header: object
    dtype: np.dtype
    path: str

    @property
    def shape(self):
        return self.data.shape


#: the most memory (bytes, as float64 voxels) a volume may claim before it is read
MAX_VOLUME_BYTES = 2 * 1024 ** 3


def read_volume(path, max_bytes: int = MAX_VOLUME_BYTES) -> Volume:
    """Read a 3-D NIfTI image (a 4-D file with one volume is accepted); errors name the file. The
    header's claimed size is checked against ``max_bytes`` (as float64) and, for an uncompressed file,
    against the file's length, before any voxel is read."""
    import nibabel as nib
    path = os.fspath(path)
    try:
        img = nib.load(path)
        dtype = img.get_data_dtype()
        if dtype.kind == "c":
            raise ModelFormatError("image data type", "real-valued voxels", f"complex ({dtype})", file=path)
        if dtype.kind not in "biuf":
            raise ModelFormatError("image data type", "real-valued voxels (integer or float)",
                                   f"{dtype} (RGB or structured voxels)", file=path)
        shape = tuple(int(s) for s in img.shape)
        n = math.prod(shape) if shape else 0
        if n * 8 > max_bytes:
            raise ModelFormatError("image dimensions", f"a volume of at most {max_bytes // 8} voxels "
                                   f"({max_bytes / 1024 ** 3:.1f} GiB as float64)", f"{shape} ({n} voxels)", file=path)
        if not path.endswith(".gz"):
            offset = int(getattr(img.header, "get_data_offset", lambda: 0)())
            need = offset + n * dtype.itemsize
            have = os.path.getsize(path)
            if need > have:
                raise ModelFormatError("image data", f"{need} bytes for shape {shape} {dtype}",
                                       f"a file of {have} bytes (truncated, or a header claiming too much)", file=path)
        data = np.asarray(img.dataobj, dtype=np.float64)
    except FileNotFoundError:
        raise ModelFormatError("file", "an existing NIfTI file", "no such file", file=path) from None
    except (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError, nib.spatialimages.ImageDataError,
            OSError, EOFError, ValueError, TypeError, OverflowError, struct.error, zlib.error, gzip.BadGzipFile) as exc:
        raise ModelFormatError("file", "a NIfTI-1/2 image", f"{type(exc).__name__}: {exc}", file=path) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ModelFormatError("image", "a 3-D volume (or 4-D with one volume)", f"shape {data.shape}", file=path)
    if data.size == 0:
        raise ModelFormatError("image", "a volume with at least one voxel", f"shape {data.shape}", file=path)
    if not np.all(np.isfinite(data)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(data))[0])
        raise ModelFormatError("image data", "finite voxel values", f"{data[bad]} at voxel {bad}", file=path)
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):  # a result written on this grid would fail only at the end of the run
        raise ModelFormatError("affine", "a finite voxel-to-world matrix", np.array2string(affine, precision=3), file=path)
    return Volume(data, affine, img.header.copy(), np.dtype(dtype), path)


def load_volume(path) -> np.ndarray:
    """The voxels of a 3-D NIfTI image as float64 (:func:`read_volume` keeps the geometry too)."""
    return read_volume(path).data


@dataclass(frozen=True)
class SliceGeometry:
    """How a volume was cut into model inputs: slices along ``axis`` of a volume of ``volume_shape``;
    in-plane, the window ``src`` = (row, col, height, width) of each slice lands at ``dst`` = (row,
    col) of the model's ``hw`` input (centred: padded where the slice is smaller, cropped where larger)."""

    axis: int
    volume_shape: tuple
    hw: tuple
    src: tuple
    dst: tuple

    @property
    def slice_hw(self):
        return tuple(s for i, s in enumerate(self.volume_shape) if i != self.axis)

    def pads_and_crops(self) -> dict:
        """Per in-plane dimension: ``{"pad": (before, after)}`` or ``{"crop": (before, after)}`` (or neither)."""
        out = {}
        for d, name in enumerate(("rows", "columns")):
            have, want = self.slice_hw[d], self.hw[d]
            lo = self.dst[d] if have < want else self.src[d]
            if have < want:
                out[name] = {"pad": (lo, want - have - lo)}
            elif have > want:
                out[name] = {"crop": (lo, have - want - lo)}
        return out

    def describe(self) -> str:
        """One line saying what was padded or cropped."""
        h, w = self.slice_hw
        parts = []
        for name, pc in self.pads_and_crops().items():
            (kind, (a, b)), = pc.items()
            parts.append(f"{name} {'zero-padded' if kind == 'pad' else 'CROPPED'} by {a} before, {b} after")
        what = "; ".join(parts) if parts else "no padding or cropping"
        return (f"{self.volume_shape[self.axis]} slices along axis {self.axis}, {h}x{w} -> {self.hw[0]}x{self.hw[1]}: "
                f"{what}")


def _geometry(shape, hw, axis):
    if axis not in AXES:
        raise ValidationError("slicing axis", "0, 1 or 2", axis)
    h, w = (s for i, s in enumerate(shape) if i != axis)
    H, W = hw
    sh, sw = min(h, H), min(w, W)
    return SliceGeometry(axis, tuple(int(s) for s in shape), (int(H), int(W)),
                         ((h - sh) // 2, (w - sw) // 2, sh, sw), ((H - sh) // 2, (W - sw) // 2))


def slice_volume(volume, hw, axis=0, fill=0.0):
    """Slices of ``volume`` (a :class:`Volume` or a 3-D array) along ``axis`` fitted to ``hw``
    (padding with ``fill``): returns ``(x, geometry)`` with ``x`` of shape (N, 1, H, W) float64."""
    data = volume.data if isinstance(volume, Volume) else np.asarray(volume, dtype=np.float64)
    if data.ndim != 3:
        raise EncodingError(f"slice_volume: expected a 3-D volume, found shape {data.shape}")
    geo = _geometry(data.shape, hw, axis)
    need = data.shape[axis] * geo.hw[0] * geo.hw[1] * 8
    if need > MAX_VOLUME_BYTES:
        where = f"{volume.path}: " if isinstance(volume, Volume) and volume.path else ""
        raise EncodingError(f"{where}slicing along axis {axis}: {data.shape[axis]} slices of {geo.hw[0]}x{geo.hw[1]} "
                            f"would take {need / 2**30:.3g} GiB (at most {MAX_VOLUME_BYTES / 2**30:.3g} GiB); is the "
                            f"slicing axis right for a volume of shape {data.shape}?")
    vol = np.moveaxis(data, axis, 0)
    y0, x0, sh, sw = geo.src
    Y0, X0 = geo.dst
    out = np.full((vol.shape[0], geo.hw[0], geo.hw[1]), float(fill))
    out[:, Y0:Y0 + sh, X0:X0 + sw] = vol[:, y0:y0 + sh, x0:x0 + sw]
    return out[:, None], geo


NORMALIZATIONS = ("unit", "zero-mean", "none")
#: the axes a volume can be sliced along
AXES = (0, 1, 2)


def prepare_slices(volume, hw, axis=0, normalize="unit"):
    """Model inputs from a volume: intensities normalised over the whole volume (``"unit"``: divided
    by the maximum, to [0, 1], for binary spikes; ``"zero-mean"``: centred on the mean and divided
    by the largest deviation, to [-1, 1], for ternary spikes (Yue et al. 2023 section 3.3);
    ``"none"``), then sliced along ``axis`` and fitted to ``hw``, padding with the normalised value
    of intensity 0 (so padding looks like the scanner's background). With ``"zero-mean"`` and
    padding, intensity 0 counts among the deviations, so the padding stays in [-1, 1] too (a volume
    without zeros whose mean lies nearer its maximum than 0 would otherwise pad below -1).
    Returns ``(x, geometry)``."""
    data = volume.data if isinstance(volume, Volume) else np.asarray(volume, dtype=np.float64)
    if normalize not in NORMALIZATIONS:
        raise EncodingError(f"normalize: expected one of {', '.join(NORMALIZATIONS)}, found {normalize!r}")
    off, scale = 0.0, 1.0
    if normalize == "unit":
        m = float(data.max()) if data.size else 0.0
        scale = m if m > 0 else 1.0
    elif normalize == "zero-mean":
        big = float(np.abs(data).max()) if data.size else 0.0
        if big > 2.0 ** 1000:  # the sum and the deviations would overflow: scale by a power of two first,
            data = data / 2.0 ** 1000  # which is exact, so the result is what it would be without overflow
        off = float(data.mean()) if data.size else 0.0
        m = float(np.abs(data - off).max()) if data.size else 0.0
        if data.ndim == 3 and data.size:
            geo = _geometry(data.shape, hw, axis)
            if (geo.src[2], geo.src[3]) != tuple(geo.hw):  # padded: intensity 0 must land in [-1, 1] too
                m = max(m, abs(off))
        scale = m if m > 0 else 1.0
    return slice_volume((data - off) / scale, hw, axis, fill=(0.0 - off) / scale)


def fit_slices(volume: np.ndarray, hw, axis=0) -> np.ndarray:
    """Slices along ``axis``, zero-padded (centred) or centre-cropped to ``hw``: (N, 1, H, W)."""
    return slice_volume(volume, hw, axis)[0]


def unslice(maps: np.ndarray, geometry: SliceGeometry, fill=0):
    """Per-slice maps (N, H, W) or (N, 1, H, W) back in the volume's shape and orientation; voxels
    that were cropped away (never seen by the model) get ``fill``."""
    m = np.asarray(maps)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    n = geometry.volume_shape[geometry.axis]
    if m.shape != (n,) + geometry.hw:
        raise ValidationError("unslice(maps)", f"shape {(n,) + geometry.hw} (slices, H, W)", m.shape)
    y0, x0, sh, sw = geometry.src
    Y0, X0 = geometry.dst
    h, w = geometry.slice_hw
    out = np.full((n, h, w), fill, dtype=np.result_type(m.dtype, np.min_scalar_type(fill)))
    out[:, y0:y0 + sh, x0:x0 + sw] = m[:, Y0:Y0 + sh, X0:X0 + sw]
    return np.moveaxis(out, 0, geometry.axis)


def save_like(array: np.ndarray, reference: Volume, path, dtype=np.uint8) -> None:
    """Write ``array`` (the reference's shape) as NIfTI with the reference's affine and header (data
    type set to ``dtype``, no intensity scaling), atomically: a failed write leaves no partial file."""
    import nibabel as nib
    arr = np.asarray(array)
    if arr.shape != reference.shape:
        raise ValidationError(f"save_like({os.fspath(path)!r})", f"an array of the reference's shape {reference.shape}",
                              arr.shape)
    header = reference.header.copy()
    header.set_data_dtype(dtype)
    img = nib.Nifti1Image(arr.astype(dtype), reference.affine, header)
    img.header.set_slope_inter(1.0, 0.0)
    path = os.fspath(path)
    with atomic_path(path, ".nii.gz" if path.endswith(".gz") else ".nii") as tmp:
        nib.save(img, tmp)


def normalize(x: np.ndarray, mode: str = "unit") -> np.ndarray:
    """``"unit"``: divide by the maximum, to [0, 1] (binary Poisson coding); ``"zero-mean"``: to
    [-1, 1] around the mean, the ternary coding of Yue et al. 2023 section 3.3."""
    x = np.asarray(x, dtype=np.float64)
    if mode == "unit":
        m = x.max()
        return x / m if m > 0 else x
    if mode == "zero-mean":
        y = x - x.mean()
        m = np.abs(y).max()
        return y / m if m > 0 else y
    raise EncodingError(f"normalize(mode): expected 'unit' or 'zero-mean', found {mode!r}")
