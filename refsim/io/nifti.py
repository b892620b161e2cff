"""NIfTI volumes (nibabel) as batches of 2-D slices for the 2-D networks."""
from __future__ import annotations

import os

import numpy as np

from ..errors import EncodingError, ModelFormatError


def load_volume(path) -> np.ndarray:
    """Read a 3-D NIfTI image as float64 (nibabel imported here, a core dependency)."""
    import nibabel as nib
    path = os.fspath(path)
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float64)
    except FileNotFoundError:
        raise ModelFormatError("file", "an existing NIfTI file", "no such file", file=path) from None
    except Exception as exc:
        raise ModelFormatError("file", "a NIfTI-1/2 image", f"{type(exc).__name__}: {exc}", file=path) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ModelFormatError("image", "a 3-D volume", f"shape {data.shape}", file=path)
    return data


def fit_slices(volume: np.ndarray, hw, axis=0) -> np.ndarray:
    """Slices along ``axis``, zero-padded (centred) or centre-cropped to ``hw``: (N, 1, H, W)."""
    vol = np.moveaxis(np.asarray(volume, dtype=np.float64), axis, 0)
    n, h, w = vol.shape
    H, W = hw
    out = np.zeros((n, H, W))
    sh, sw = min(h, H), min(w, W)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    Y0, X0 = (H - sh) // 2, (W - sw) // 2
    out[:, Y0:Y0 + sh, X0:X0 + sw] = vol[:, y0:y0 + sh, x0:x0 + sw]
    return out[:, None]


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
