"""Alignment geometry: template, least-squares similarity, warping without aliasing."""

import math

import cv2
import numpy as np
import pytest

from sserd_cli.faces.align import (
    CANONICAL_5,
    affine_scale,
    canonical_landmarks,
    estimate_alignment,
    invert_affine,
    transform_points,
    umeyama_similarity,
    warp_to_crop,
)


def test_template_scales_with_size_and_is_ffhq_framed():
    t256, t1024 = canonical_landmarks(256), canonical_landmarks(1024)
    assert t256.shape == (5, 2) and t256.dtype == np.float32
    np.testing.assert_allclose((t1024 + 0.5) / 1024, (t256 + 0.5) / 256, atol=1e-6)
    eye_dist = CANONICAL_5[1, 0] - CANONICAL_5[0, 0]
    eye_mid = CANONICAL_5[:2].mean(axis=0)
    mouth_mid = CANONICAL_5[3:].mean(axis=0)
    # FFHQ rule: crop side = max(4 eye distance, 3.6 eye-to-mouth), centre = eye mid + 0.1 eye-to-mouth
    side = max(4 * eye_dist, 3.6 * (mouth_mid - eye_mid)[1])
    assert side == pytest.approx(1.0, abs=0.03)
    assert (eye_mid + 0.1 * (mouth_mid - eye_mid))[1] == pytest.approx(0.5, abs=0.01)


def test_known_similarity_is_recovered_exactly():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 500, (5, 2))
    angle, scale, t = 0.7, 1.8, np.array([12.0, -40.0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = src @ (scale * rot).T + t
    m = umeyama_similarity(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-7)
    assert affine_scale(m) == pytest.approx(scale)


def test_least_squares_never_reflects():
    src = np.array([[0, 0], [3, 0], [0, 1], [1, 2], [0.5, 0.2]], float)
    dst = src * [-1, 1]  # a mirror image: the best similarity must still be a rotation
    m = umeyama_similarity(src, dst)
    assert np.linalg.det(m[:, :2]) > 0
    np.testing.assert_allclose(m[0, 0], m[1, 1])
    np.testing.assert_allclose(m[0, 1], -m[1, 0])


def test_estimate_alignment_maps_moved_template_back():
    size = 256
    m_true = cv2.getRotationMatrix2D((100.0, 80.0), 25.0, 0.4)
    pts = transform_points(m_true, canonical_landmarks(size))
    m = estimate_alignment(pts, size)
    np.testing.assert_allclose(transform_points(m, pts), canonical_landmarks(size), atol=1e-4)
    np.testing.assert_allclose(invert_affine(m), m_true, atol=1e-6)
    with pytest.raises(ValueError):
        estimate_alignment(np.zeros((4, 2)), size)


def test_invert_affine_round_trip():
    m = np.array([[0.8, -0.3, 15.0], [0.3, 0.8, -7.0]])
    full = np.vstack([m, [0, 0, 1]]) @ np.vstack([invert_affine(m), [0, 0, 1]])
    np.testing.assert_allclose(full, np.eye(3), atol=1e-12)


def test_warp_identity_is_exact_and_dtype_kept():
    frame = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    m = np.array([[1.0, 0, -8], [0, 1.0, -4]])
    crop = warp_to_crop(frame, m, 32)
    assert crop.dtype == np.uint8 and crop.shape == (32, 32, 3)
    np.testing.assert_array_equal(crop, frame[4:36, 8:40])


def test_strong_shrink_averages_instead_of_aliasing():
    """A 1-px checkerboard shrunk ~8x must come out flat grey (area averaging), not a moire pattern."""
    yy, xx = np.mgrid[0:512, 0:640]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    frame = np.repeat(board[..., None], 3, axis=2)
    m = np.array([[0.13, 0, -10.3], [0, 0.13, -8.6]])
    crop = warp_to_crop(frame, m, 40)
    assert abs(float(crop.mean()) - 127.5) < 2
    assert crop.astype(float).std() < 3
    naive = cv2.warpAffine(frame, m, (40, 40), flags=cv2.INTER_LINEAR)
    assert naive.astype(float).std() > 30  # what the shortcut would have given


def test_shrink_keeps_geometry():
    """The shrink path puts a bright dot where the transform says it goes."""
    frame = np.zeros((400, 600, 3), np.uint8)
    cv2.circle(frame, (350, 210), 12, (255, 255, 255), -1)
    m = cv2.getRotationMatrix2D((0.0, 0.0), 30.0, 0.2)
    m[:, 2] += [-10.0, 40.0]
    crop = warp_to_crop(frame, m, 96).astype(float)[..., 0]
    ys, xs = np.mgrid[0:96, 0:96]
    centroid = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
    np.testing.assert_allclose(centroid, transform_points(m, np.array([[350.0, 210.0]]))[0], atol=0.3)


@pytest.mark.parametrize("shift", [(-60.0, -40.0), (560.0, 300.0), (5000.0, 5000.0)])
def test_paste_back_at_and_beyond_the_frame_edge(shift):
    from sserd_cli.faces.mask import face_mask
    from sserd_cli.faces.paste import paste_back

    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    m = cv2.getRotationMatrix2D((0.0, 0.0), 10.0, 1.5)
    m[:, 2] -= m[:, :2] @ np.array(shift)  # the crop's origin sits at `shift` in the frame
    crop = np.full((128, 128, 3), 7, np.uint8)
    out = paste_back(frame, crop, m, face_mask(128))
    warped = cv2.warpAffine(face_mask(128), m, (640, 360), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert np.array_equal(out[warped == 0], frame[warped == 0])
    assert (out[warped >= 0.999] == 7).all()


def test_zoom_framing_matches_align_large_then_centre_crop():
    """The paper's framing (align at 320, centre-crop 256) is zoom 1.25 of the 256 crop, both ways."""
    from sserd_cli.faces.align import zoom_alignment

    rng = np.random.default_rng(3)
    landmarks = canonical_landmarks(200) * 1.3 + rng.normal(0, 2, (5, 2)) + 40
    big = estimate_alignment(landmarks, 320)
    big[:, 2] -= (320 - 256) / 2  # centre crop 256 of the 320 alignment
    zoomed = estimate_alignment(landmarks, 256, zoom=1.25)
    np.testing.assert_allclose(zoomed, big, atol=1e-4)  # float32 template
    np.testing.assert_allclose(zoom_alignment(estimate_alignment(landmarks, 256), 256, 1.25), big, atol=1e-4)


def test_mask_grows_with_zoom():
    from sserd_cli.faces.mask import face_mask

    plain, tight = face_mask(128), face_mask(128, zoom=1.25)
    assert tight.sum() > plain.sum() * 1.2
    assert tight[0].max() == 0 and tight[:, -1].max() == 0
