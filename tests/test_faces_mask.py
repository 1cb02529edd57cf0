"""Feathered face mask in crop space."""

import numpy as np
import pytest

from sserd_cli.faces.align import canonical_landmarks
from sserd_cli.faces.mask import face_mask


@pytest.mark.parametrize("size", [64, 256, 1024])
def test_mask_is_one_on_the_face_and_zero_at_the_border(size):
    m = face_mask(size)
    assert m.shape == (size, size) and m.dtype == np.float32
    assert m.min() == 0.0 and m.max() == 1.0
    assert m[size // 2, size // 2] == 1.0
    margin = max(2, size // 50)
    for edge in (m[:margin], m[-margin:], m[:, :margin], m[:, -margin:]):
        assert not edge.any()
    # every landmark of the template is inside the opaque part (mouth corners at the start of the feather)
    for x, y in np.rint(canonical_landmarks(size)).astype(int):
        assert m[y, x] >= 0.98


def test_mask_is_feathered_not_hard():
    m = face_mask(256)
    soft = ((m > 0) & (m < 1)).sum()
    assert soft > 0.05 * (m > 0).sum()
    # no step between neighbours: a Gaussian edge of sigma ~10 px changes < 0.05 per pixel
    assert np.abs(np.diff(m, axis=0)).max() < 0.05
    assert np.abs(np.diff(m, axis=1)).max() < 0.05


def test_mask_is_symmetric_and_covers_forehead_to_chin():
    m = face_mask(256)
    np.testing.assert_allclose(m, m[:, ::-1], atol=1e-6)
    column = m[:, 128]
    rows = np.flatnonzero(column >= 0.5)
    assert 0.18 * 256 < rows[0] < 0.3 * 256     # forehead, below the hairline of an FFHQ crop
    assert 0.82 * 256 < rows[-1] < 0.95 * 256   # chin


def test_mask_is_cached_and_read_only():
    assert face_mask(128) is face_mask(128)
    with pytest.raises(ValueError):
        face_mask(128)[0, 0] = 1.0
