"""Streaming main-face tracker: selection, smoothing, gap bridging, bounded memory."""

import math

import numpy as np
import pytest

from sserd_cli.faces.align import canonical_landmarks, estimate_alignment, invert_affine, transform_points
from sserd_cli.faces.detect import Face
from sserd_cli.faces.track import FaceTracker, TrackerConfig, box_iou, track_faces

SIZE = 256


def _face(cx: float, cy: float, eye_dist: float = 40.0, angle: float = 0.0, noise=None) -> Face:
    """A face whose landmarks are the template moved to (cx, cy) with the given eye distance and roll."""
    unit = canonical_landmarks(SIZE).astype(np.float64)
    unit = (unit - (SIZE - 1) / 2) * (eye_dist / (0.2458 * SIZE))
    c, s = math.cos(angle), math.sin(angle)
    pts = unit @ np.array([[c, s], [-s, c]]) + [cx, cy]
    if noise is not None:
        pts = pts + noise
    half = 1.2 * eye_dist
    box = np.array([cx - half, cy - half, cx + half, cy + half], np.float32)
    return Face(box=box, landmarks=pts.astype(np.float32), score=1.0)


def _run(tracker: FaceTracker, per_frame: list[list[Face]]):
    out = []
    for i, faces in enumerate(per_frame):
        out += tracker.push(i, faces)
    out += tracker.flush()
    return out


def _centre(m: np.ndarray) -> np.ndarray:
    return invert_affine(m) @ np.array([(SIZE - 1) / 2, (SIZE - 1) / 2, 1.0])


def test_every_frame_answered_once_in_order_after_the_delay():
    tracker = FaceTracker(TrackerConfig(size=SIZE, radius=3, max_gap=4))
    assert tracker.delay == 7
    got = []
    for i in range(20):
        ready = tracker.push(i, [_face(300, 200)])
        if i < 7:
            assert ready == []
        got += ready
    assert [i for i, _ in got] == list(range(13))
    got += tracker.flush()
    assert [i for i, _ in got] == list(range(20))
    assert all(m is not None and m.shape == (2, 3) for _, m in got)


def test_static_face_gives_its_exact_alignment():
    face = _face(300, 200, angle=0.1)
    expected = estimate_alignment(face.landmarks, SIZE)
    for _, m in _run(FaceTracker(TrackerConfig(size=SIZE)), [[face]] * 15):
        np.testing.assert_allclose(m, expected, atol=1e-6)


def test_smoothing_removes_landmark_jitter():
    rng = np.random.default_rng(0)
    n = 60
    true_x = 300 + 1.0 * np.arange(n)  # slow pan
    per_frame = [[_face(true_x[i], 200, noise=rng.normal(0, 1.5, (5, 2)))] for i in range(n)]
    raw = np.array([_centre(estimate_alignment(f[0].landmarks, SIZE)) for f in per_frame])
    smooth = np.array([_centre(m) for _, m in _run(FaceTracker(TrackerConfig(size=SIZE)), per_frame)])
    raw_step = np.diff(raw, axis=0).var(axis=0).sum()
    smooth_step = np.diff(smooth, axis=0).var(axis=0).sum()
    assert smooth_step < 0.1 * raw_step
    # no lag: the smoothed centre follows the pan (inside the window the weights are symmetric)
    inner = slice(5, n - 5)
    assert abs(np.mean(smooth[inner, 0] - true_x[inner] - (raw[inner, 0] - true_x[inner]).mean())) < 0.5
    # scale and rotation are smoothed too
    raw_scale = np.array([math.log(np.hypot(*estimate_alignment(f[0].landmarks, SIZE)[:, 0])) for f in per_frame])
    smooth_scale = np.array([math.log(np.hypot(*m[:, 0])) for _, m in
                             _run(FaceTracker(TrackerConfig(size=SIZE)), per_frame)])
    assert np.diff(smooth_scale).var() < 0.1 * np.diff(raw_scale).var()


def test_short_gap_is_bridged_by_interpolation():
    per_frame = [[_face(200 + 2 * i, 150)] for i in range(30)]
    for i in (10, 11, 12):
        per_frame[i] = []
    out = dict(_run(FaceTracker(TrackerConfig(size=SIZE, max_gap=5, radius=0)), per_frame))
    for i in (10, 11, 12):
        assert out[i] is not None
        np.testing.assert_allclose(_centre(out[i]), _centre(estimate_alignment(_face(200 + 2 * i, 150).landmarks, SIZE)),
                                   atol=1e-6)


def test_long_gap_is_no_face():
    per_frame = [[_face(300, 200)] for _ in range(50)]
    for i in range(15, 35):
        per_frame[i] = []
    out = dict(_run(FaceTracker(TrackerConfig(size=SIZE, max_gap=5)), per_frame))
    assert all(out[i] is None for i in range(15, 35))
    assert all(out[i] is not None for i in list(range(15)) + list(range(35, 50)))


def test_frames_without_faces_and_edges_give_none():
    per_frame = [[] for _ in range(3)] + [[_face(300, 200)] for _ in range(5)] + [[] for _ in range(3)]
    out = _run(FaceTracker(TrackerConfig(size=SIZE)), per_frame)
    assert [m is None for _, m in out] == [True] * 3 + [False] * 5 + [True] * 3
    assert _run(FaceTracker(), [[] for _ in range(4)]) == [(i, None) for i in range(4)]


def test_largest_face_chosen_and_kept_while_a_bigger_one_appears_elsewhere():
    main = _face(200, 200, eye_dist=40)
    small = _face(500, 100, eye_dist=15)
    big = _face(500, 250, eye_dist=60)
    per_frame = [[small, main]] * 5 + [[big, main, small]] * 5
    out = _run(FaceTracker(TrackerConfig(size=SIZE)), per_frame)
    for _, m in out:
        np.testing.assert_allclose(_centre(m), _centre(estimate_alignment(main.landmarks, SIZE)), atol=1e-6)


def test_background_face_is_not_taken_when_the_main_face_is_missed():
    main = _face(200, 200, eye_dist=40)
    small = _face(500, 100, eye_dist=12)
    per_frame = [[main]] * 5 + [[small]] * 2 + [[main]] * 5
    out = dict(_run(FaceTracker(TrackerConfig(size=SIZE)), per_frame))
    for i in (5, 6):  # bridged with the main face, never the far one
        np.testing.assert_allclose(_centre(out[i]), _centre(estimate_alignment(main.landmarks, SIZE)), atol=1e-6)


def test_a_cut_starts_a_new_track_without_interpolating_across_it():
    a = _face(150, 200, eye_dist=40)
    b = _face(450, 180, eye_dist=45)
    per_frame = [[a]] * 10 + [[]] * 2 + [[b]] * 10
    out = dict(_run(FaceTracker(TrackerConfig(size=SIZE)), per_frame))
    assert out[10] is None and out[11] is None
    np.testing.assert_allclose(_centre(out[9]), _centre(estimate_alignment(a.landmarks, SIZE)), atol=1e-6)
    np.testing.assert_allclose(_centre(out[12]), _centre(estimate_alignment(b.landmarks, SIZE)), atol=1e-6)


def test_rotation_smoothing_handles_the_angle_wrap():
    per_frame = [[_face(300, 200, angle=math.pi - 0.01 if i % 2 else -math.pi + 0.01)] for i in range(12)]
    for _, m in _run(FaceTracker(TrackerConfig(size=SIZE)), per_frame):
        angle = math.atan2(m[1, 0], m[0, 0])
        assert abs(abs(angle) - math.pi) < 0.02  # averaged across +-pi, not towards 0


def test_memory_is_bounded_by_the_window():
    cfg = TrackerConfig(size=SIZE, radius=4, max_gap=5)
    tracker = FaceTracker(cfg)
    for i in range(2000):
        tracker.push(i, [_face(300, 200)] if i % 7 else [])
        assert len(tracker._records) <= tracker.delay + cfg.radius + 1


def test_last_box_hint_and_order_check():
    tracker = FaceTracker()
    assert tracker.last_box is None
    face = _face(300, 200)
    tracker.push(0, [face])
    np.testing.assert_array_equal(tracker.last_box, face.box)
    with pytest.raises(ValueError, match="in order"):
        tracker.push(5, [face])


def test_generator_form_matches_push_and_flush():
    rng = np.random.default_rng(3)
    per_frame = [[_face(300 + i, 200, noise=rng.normal(0, 1, (5, 2)))] if i % 9 else [] for i in range(25)]
    a = _run(FaceTracker(), per_frame)
    b = list(track_faces(enumerate(per_frame)))
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, ma), (_, mb) in zip(a, b):
        assert (ma is None) == (mb is None)
        if ma is not None:
            np.testing.assert_allclose(ma, mb)


def test_box_iou():
    a = np.array([0, 0, 10, 10], np.float32)
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, np.array([5, 0, 15, 10], np.float32)) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0


def test_transforms_put_landmarks_on_the_template():
    face = _face(321.5, 187.25, eye_dist=33, angle=-0.3)
    (_, m), = list(track_faces([(0, [face])]))
    np.testing.assert_allclose(transform_points(m, face.landmarks), canonical_landmarks(SIZE), atol=1e-3)


def test_steady_pan_is_not_biased_at_track_ends():
    """A face moving 3 px per frame: smoothed centres sit on the true path, also in the first/last frames."""
    per_frame = [[_face(200 + 3.0 * i, 150 + 1.0 * i)] for i in range(12)]
    out = _run(FaceTracker(TrackerConfig(size=SIZE, radius=4)), per_frame)
    for i, m in out:
        truth = _centre(estimate_alignment(per_frame[i][0].landmarks, SIZE))
        np.testing.assert_allclose(_centre(m), truth, atol=1e-6)
