"""Transfer rendering: the edit's motion and bounded residual carried onto the source frame's own pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from sserd_cli.faces.align import estimate_alignment, transform_points
from sserd_cli.faces.mask import eye_mask
from sserd_cli.faces.transfer import Motion, MotionEstimator, TransferSettings, apply_motion, bound_residual


def face_crop(size=64):
    """A textured stand-in for a render: the astronaut's face, aligned by hand-picked eye/nose/mouth points."""
    rgb = skdata.astronaut()
    points = np.array([[186, 112], [244, 112], [214, 150], [192, 178], [238, 178]], np.float64)
    m = estimate_alignment(points, size, 1.0)
    return rgb, m, cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA)


def shifted(crop, dx, dy, where):
    """``crop`` with the pixels under the soft mask ``where`` read from (x + dx, y + dy): a known local motion."""
    size = crop.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    moved = cv2.remap(crop, xx + dx * where, yy + dy * where, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return moved


def brow_band(size):
    band = np.zeros((size, size), np.float32)
    band[int(0.30 * size):int(0.45 * size), int(0.3 * size):int(0.7 * size)] = 1
    return cv2.GaussianBlur(band, (0, 0), size * 0.04)


def test_no_edit_is_no_motion_and_the_frame_comes_back_exactly():
    rgb, m, crop = face_crop()
    estimator = MotionEstimator(64, 1.0, TransferSettings(work_size=128))
    motion = estimator.motion(crop, crop.copy(), source=crop)
    assert motion.magnitude() == 0.0 and (motion.residual is None or not motion.residual.any())
    assert np.array_equal(apply_motion(rgb, motion, m), rgb)


def test_a_known_brow_lift_is_found_and_carried_in_the_right_direction():
    rgb, m, crop = face_crop()
    band = brow_band(64)
    edited = shifted(crop, 0.0, 1.5, band)  # each brow pixel shows what lay 1.5 px lower: the brows rise
    settings = TransferSettings(work_size=128, residual=False)
    motion = MotionEstimator(64, 1.0, settings).motion(crop, edited)
    inside = band > 0.8
    dy = motion.flow[..., 1][inside]
    assert 0.8 < np.median(dy) < 2.2  # crop pixels: the 1.5 of the edit
    assert motion.fold_fraction() == 0.0
    out = apply_motion(rgb, motion, m)
    # the frame's brow region moves, pixels away from the face stay exactly the source's
    changed = (out != rgb).any(axis=2)
    assert changed.any()
    corners = transform_points(cv2.invertAffineTransform(m), np.array([[0, 0], [63, 63]], np.float64))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    outside = np.ones(changed.shape, bool)
    outside[max(y0, 0):y1, max(x0, 0):x1] = False
    assert not changed[outside].any()


def test_strength_scales_the_field_and_zero_strength_moves_nothing():
    _, _, crop = face_crop()
    edited = shifted(crop, 0.0, 1.5, brow_band(64))
    estimator = MotionEstimator(64, 1.0, TransferSettings(work_size=128))
    full = estimator.motion(crop, edited, 1.0, source=crop)
    half = estimator.motion(crop, edited, 0.5, source=crop)
    assert np.allclose(half.flow, 0.5 * full.flow, atol=1e-5)
    assert estimator.motion(crop, edited, 0.0, source=crop).magnitude() == 0.0


def test_the_residual_is_bounded_and_kept_off_the_eyes():
    residual = np.zeros((8, 8, 3), np.float32)
    residual[..., 0] = 100.0  # a strong red: luminance +33, chroma +67 / -33
    out = bound_residual(residual, 28.0, 10.0)
    y = out.mean(axis=2)
    assert np.allclose(y, 28.0) and np.abs(out - y[..., None]).max() <= 10.0 + 1e-4
    assert np.allclose((out - y[..., None])[..., 1], (out - y[..., None])[..., 2])  # the hue kept
    _, _, crop = face_crop()
    tinted = crop.astype(np.int16)
    tinted[..., 2] += 60
    edited = np.clip(tinted, 0, 255).astype(np.uint8)
    estimator = MotionEstimator(64, 1.0, TransferSettings(work_size=128))
    motion = estimator.motion(crop, edited, source=crop)
    assert motion.residual is not None and np.abs(motion.residual).max() <= 28.0 + 10.0 + 1e-3
    eyes = eye_mask(64, 1.0) > 0.95
    assert eyes.any() and np.abs(motion.residual[eyes]).max() < 0.05 * 38.0  # at most 5 % of the bound


def test_the_mouth_gets_the_residual_only_where_the_model_reconstructs_the_source():
    _, _, crop = face_crop()
    tinted = crop.astype(np.int16)
    tinted[..., :] += 20
    edited = np.clip(tinted, 0, 255).astype(np.uint8)
    estimator = MotionEstimator(64, 1.0, TransferSettings(work_size=128))
    mouth = estimator.mouth > 0.95
    known = estimator.motion(crop, edited, source=crop)  # the reconstruction is the source: trusted
    other = np.clip(crop.astype(np.int16) + 40, 0, 255).astype(np.uint8)  # another face than the render
    unknown = estimator.motion(crop, edited, source=other)
    assert known.residual[mouth].mean() > 10.0
    assert np.abs(unknown.residual[mouth]).max() < 1.0
    assert np.abs(estimator.motion(crop, edited).residual[mouth]).max() < 1.0  # no source: no trust


def test_settings_are_checked():
    with pytest.raises(ValueError):
        TransferSettings(work_size=16)
    with pytest.raises(ValueError):
        TransferSettings(max_flow=0)


def test_a_folding_field_is_measured():
    flow = np.zeros((32, 32, 2), np.float32)
    flow[:, 16:, 0] = -8.0  # the right half slides over the left: folds at the seam
    assert Motion(flow, None).fold_fraction() > 0
    assert Motion(np.zeros_like(flow), None).fold_fraction() == 0
