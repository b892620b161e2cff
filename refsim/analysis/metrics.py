"""Segmentation and image-quality metrics: Dice per 3-D volume and per 2-D slice (Yue et al. 2023),
F1, Jaccard (IoU), pixel accuracy and mIoU (Li et al., segmentation), PSNR and SSIM (Li et al.,
denoising).

**Empty masks.** Dice is 0/0 when neither the prediction nor the label has a foreground voxel.
Libraries differ: MONAI's ``DiceMetric(ignore_empty=True)`` (its default) and nnU-Net's evaluation
give NaN and leave the case out of means; ``ignore_empty=False`` gives 1 when the prediction is
empty too and 0 otherwise. refsim names the policy (:data:`EMPTY_POLICIES`):

* ``"one"`` (default): an empty label scores 1.0 when the prediction is empty too, 0.0 when the
  prediction has false positives (nothing to find, and nothing wrongly found, is a perfect result);
* ``"nan"``: an empty label scores NaN whatever the prediction, and means skip NaN (nnU-Net, MONAI's
  default), so slices without structure do not count.

A non-empty label with an empty prediction scores 0.0 under both. Jaccard follows the same policy.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnknownNameError, ValidationError

EMPTY_POLICIES = ("one", "nan")


def _masks(pred, target, where):
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValidationError(where, f"prediction and label of one shape (label {t.shape})", f"prediction {p.shape}")
    return p.astype(bool), t.astype(bool)


def _policy(empty):
    if empty not in EMPTY_POLICIES:
        raise UnknownNameError("empty-mask policy", empty, EMPTY_POLICIES)


def _ratio(num, den, label_empty, pred_empty, empty):
    if not label_empty:
        return float(num / den)
    if empty == "nan":
        return float("nan")
    return 1.0 if pred_empty else 0.0


def dice(pred, target, empty: str = "one") -> float:
    """Dice = 2 |P and L| / (|P| + |L|) over the whole array (a 3-D volume: Yue's 3-D Dice)."""
    _policy(empty)
    p, t = _masks(pred, target, "dice")
    inter = np.count_nonzero(p & t)
    sp, st = np.count_nonzero(p), np.count_nonzero(t)
    return _ratio(2.0 * inter, sp + st, st == 0, sp == 0, empty)


def jaccard(pred, target, empty: str = "one") -> float:
    """Jaccard (IoU) = |P and L| / |P or L|."""
    _policy(empty)
    p, t = _masks(pred, target, "jaccard")
    inter, union = np.count_nonzero(p & t), np.count_nonzero(p | t)
    return _ratio(inter, union, np.count_nonzero(t) == 0, np.count_nonzero(p) == 0, empty)


f1 = dice  # for binary masks F1 is Dice


def slice_dice(pred, target, axis: int = 0, empty: str = "one") -> np.ndarray:
    """Dice of every 2-D slice along ``axis`` (Yue's 2-D Dice); summarise with :func:`mean`."""
    p, t = _masks(pred, target, "slice_dice")
    p, t = np.moveaxis(p, axis, 0), np.moveaxis(t, axis, 0)
    return np.array([dice(a, b, empty) for a, b in zip(p, t)])


def mean(values) -> float:
    """Mean that leaves out NaN (the ``"nan"`` policy's empty slices); NaN if nothing is left."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def pixel_accuracy(pred, target) -> float:
    """Fraction of pixels whose class is right (labels of any integer classes)."""
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValidationError("pixel_accuracy", f"prediction and label of one shape (label {t.shape})", f"prediction {p.shape}")
    return float(np.mean(p == t))


def mean_iou(pred, target, classes=None) -> float:
    """mIoU (Li et al.): the mean over classes of |P_c and L_c| / |P_c or L_c|, over ``classes``
    (default: every class in the label or the prediction; a class absent from both is skipped)."""
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValidationError("mean_iou", f"prediction and label of one shape (label {t.shape})", f"prediction {p.shape}")
    classes = np.union1d(np.unique(p), np.unique(t)) if classes is None else classes
    ious = []
    for c in classes:
        union = np.count_nonzero((p == c) | (t == c))
        if union:
            ious.append(np.count_nonzero((p == c) & (t == c)) / union)
    return float(np.mean(ious)) if ious else float("nan")


def psnr(image, reference, data_range=None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(R^2 / MSE)``; ``R`` the reference's range
    (max - min) unless given."""
    x, r = np.asarray(image, np.float64), np.asarray(reference, np.float64)
    if x.shape != r.shape:
        raise ValidationError("psnr", f"image and reference of one shape (reference {r.shape})", f"image {x.shape}")
    R = float(r.max() - r.min()) if data_range is None else float(data_range)
    mse = float(np.mean((x - r) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(R * R / mse)


def ssim(image, reference, data_range=None, sigma=1.5, k1=0.01, k2=0.03) -> float:
    """Mean structural similarity of two 2-D images (Wang et al. 2004): Gaussian window (sigma 1.5,
    11 taps), population covariances, K1 = 0.01, K2 = 0.03, a border of the window radius left out of
    the mean (as scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``)."""
    from scipy.ndimage import gaussian_filter
    x, y = np.asarray(image, np.float64), np.asarray(reference, np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValidationError("ssim", f"two 2-D images of one shape (reference {y.shape})", f"image {x.shape}")
    truncate = 3.5
    r = int(truncate * sigma + 0.5)
    if min(x.shape) < 2 * r + 1:
        raise ValidationError("ssim", f"images of at least {2 * r + 1}x{2 * r + 1} pixels", x.shape)
    R = float(y.max() - y.min()) if data_range is None else float(data_range)

    def f(a):
        return gaussian_filter(a, sigma=sigma, truncate=truncate, mode="reflect")
    ux, uy = f(x), f(y)
    vx, vy, vxy = f(x * x) - ux * ux, f(y * y) - uy * uy, f(x * y) - ux * uy
    c1, c2 = (k1 * R) ** 2, (k2 * R) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return float(s[r:-r, r:-r].mean())
