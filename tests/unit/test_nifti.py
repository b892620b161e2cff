"""NIfTI volumes with their geometry: slicing along any axis with every pad and crop recorded,
and predictions written back on the volume's own grid (checked with nibabel)."""
import nibabel as nib
import numpy as np
import pytest

from refsim.data import DEMO_IMAGE
from refsim.errors import ModelFormatError, ValidationError
from refsim.io.nifti import read_volume, save_like, slice_volume, unslice


def _write(tmp_path, data, affine=None, name="v.nii.gz", dtype=None):
    affine = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    img = nib.Nifti1Image(data if dtype is None else data.astype(dtype), affine)
    p = tmp_path / name
    nib.save(img, p)
    return p


OBLIQUE = np.array([[0.9, -0.3, 0.1, 10.0], [0.3, 0.95, 0.0, -4.0], [-0.1, 0.05, 1.2, 7.5], [0, 0, 0, 1]])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_slice_unslice_save_on_the_original_grid(tmp_path, axis, dtype):
    rng = np.random.default_rng(axis)
    data = rng.integers(0, 100, size=(7, 13, 30)).astype(dtype)
    p = _write(tmp_path, data, OBLIQUE)
    vol = read_volume(p)
    assert vol.dtype == np.dtype(dtype)
    x, geo = slice_volume(vol, (16, 16), axis)
    assert x.shape == (data.shape[axis], 1, 16, 16)
    back = unslice(x, geo, fill=-1)
    assert back.shape == data.shape
    seen = back != -1
    np.testing.assert_array_equal(back[seen], data.astype(np.float64)[seen])  # uncropped voxels come back exactly
    mask = back > 50
    out = tmp_path / "mask.nii.gz"
    save_like(mask, vol, out)
    img = nib.load(out)
    assert img.shape == data.shape
    np.testing.assert_allclose(img.affine, OBLIQUE)
    np.testing.assert_array_equal(np.asarray(img.dataobj), mask.astype(np.uint8))


def test_pads_and_crops_are_reported():
    vol = read_volume(DEMO_IMAGE)  # 8 x 51 x 35
    _, geo = slice_volume(vol, (40, 40), 0)
    assert geo.pads_and_crops() == {"rows": {"crop": (5, 6)}, "columns": {"pad": (2, 3)}}
    assert "CROPPED" in geo.describe() and "zero-padded" in geo.describe()


def test_4d_with_one_volume_is_accepted(tmp_path):
    p = _write(tmp_path, np.ones((4, 5, 6, 1), np.float32))
    assert read_volume(p).shape == (4, 5, 6)


@pytest.mark.parametrize("case", ["complex", "nan", "4d", "garbage", "missing"])
def test_bad_volumes_name_the_file(tmp_path, case):
    if case == "complex":
        p = _write(tmp_path, np.ones((3, 3, 3), np.complex64), name="c.nii.gz")
    elif case == "nan":
        d = np.ones((3, 3, 3), np.float32)
        d[1, 2, 0] = np.nan
        p = _write(tmp_path, d, name="n.nii.gz")
    elif case == "4d":
        p = _write(tmp_path, np.ones((3, 3, 3, 2), np.float32), name="f.nii.gz")
    elif case == "garbage":
        p = tmp_path / "g.nii.gz"
        p.write_bytes(b"not a nifti file at all" * 10)
    else:
        p = tmp_path / "missing.nii.gz"
    with pytest.raises(ModelFormatError) as e:
        read_volume(p)
    assert p.name in str(e.value)


def test_failed_save_leaves_nothing(tmp_path):
    vol = read_volume(DEMO_IMAGE)
    with pytest.raises(ValidationError, match=r"reference's shape \(8, 51, 35\)"):
        save_like(np.zeros((2, 2, 2)), vol, tmp_path / "m.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_header_claiming_a_huge_volume_is_refused_before_reading(tmp_path):
    """A small file whose header claims gigabytes is refused from the header alone (issue 10)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2048, 2048, 1024))
    hdr.set_data_dtype(np.float32)
    p = tmp_path / "huge.nii"
    with open(p, "wb") as fh:
        fh.write(hdr.binaryblock + b"\0" * 4 + b"\0" * 100)
    with pytest.raises(ModelFormatError, match="huge.nii.*voxels"):
        read_volume(p)
    hdr.set_data_shape((64, 64, 64))
    with open(p, "wb") as fh:
        fh.write(hdr.binaryblock + b"\0" * 4 + b"\0" * 100)
    with pytest.raises(ModelFormatError, match="huge.nii.*truncated"):
        read_volume(p)


def test_zero_mean_normalisation_of_voxels_near_the_float64_limit():
    """Issue 21 class 6: voxels near +-1.7e308 overflowed the mean and the deviations (NaN inputs,
    then a message about non-finite values the file does not have). A power-of-two pre-scaling
    keeps them finite and gives what the same volume scaled down gives."""
    from refsim.io.nifti import prepare_slices
    v = np.full((3, 8, 8), 1.7e308)
    v[0] = -1.7e308
    x, _ = prepare_slices(v, (8, 8), 0, "zero-mean")
    small, _ = prepare_slices(v / 2.0 ** 1000, (8, 8), 0, "zero-mean")
    assert np.isfinite(x).all() and x.min() == -1.0
    np.testing.assert_array_equal(x, small)


def test_zero_mean_padding_stays_in_the_ternary_range():
    """A volume without zeros whose mean lies nearer its maximum than intensity 0 (MSD
    hippocampus_109, intensities 1-122 around a mean of 65.7, is one) padded to the model's size:
    the padding (normalised intensity 0) was below -1, and the ternary Poisson encoder refused the
    whole volume. Intensity 0 now counts among the deviations when the slices are padded; unpadded
    slices are normalised as before."""
    from refsim.encoding import make_encoder
    from refsim.io.nifti import prepare_slices
    rng = np.random.default_rng(0)
    v = rng.uniform(150.0, 200.0, size=(4, 6, 5))
    v[0, 0, 0] = 100.0  # mean about 175: 0 lies 175 below it, the maximum deviation is about 75
    x, _ = prepare_slices(v, (8, 8), 0, "zero-mean")
    off = v.mean()
    np.testing.assert_allclose(x[:, 0, 0, 0], (0.0 - off) / off)  # the padding: intensity 0
    assert x.min() == -1.0 and x.max() <= 1.0
    inner, _ = prepare_slices(v, (6, 5), 0, "zero-mean")  # no padding: the largest deviation of the data
    dev = v - off
    np.testing.assert_array_equal(inner[:, 0], dev / np.abs(dev).max())
    assert np.abs(inner).max() == 1.0
    next(make_encoder("poisson-ternary", seed=0).stream(x, 1))  # the encoder takes the padded slices
