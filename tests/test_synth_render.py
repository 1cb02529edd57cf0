"""The renderer: deterministic, any resolution, exact landmarks, independent parameter groups, dlib finds the face."""


import numpy as np
import pytest

from sserd_cli.data.synth.params import (EMOTION_PRESETS, Expression, FaceState, Identity, Light, Pose, Speech,
                                         emotion_expression, from_vector, to_vector)
from sserd_cli.data.synth.render import render, render_portrait
from sserd_cli.emotions import EMOTIONS
from sserd_cli.errors import SserdError


def _state(seed=0, emotion="neutral", mouth=0.0, **pose):
    rng = np.random.default_rng(seed)
    return FaceState(Identity.random(rng), emotion_expression(emotion, 1.0), Speech(mouth, 0.0), Pose(**pose),
                     Light.random(rng))


def test_same_state_gives_identical_pixels_and_landmarks():
    a = render(_state(3, "happy", 0.4, yaw=5), (160, 120))
    b = render(_state(3, "happy", 0.4, yaw=5), (160, 120))
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.landmarks, b.landmarks)


@pytest.mark.parametrize("size", [(48, 48), (200, 120), (333, 517)])
def test_any_resolution(size):
    r = render(_state(1), size)
    assert r.image.shape == (size[1], size[0], 3) and r.image.dtype == np.uint8
    assert r.image.std() > 5  # a face was drawn, not a flat frame


def test_landmarks_follow_the_face_geometry():
    r = render_portrait(_state(2), 256)
    le, re, nose, lm, rm = r.landmarks
    assert le[0] < nose[0] < re[0] and lm[0] < nose[0] < rm[0]
    assert le[1] < nose[1] < lm[1]
    x0, y0, x1, y1 = r.box
    assert np.all((r.landmarks[:, 0] > x0) & (r.landmarks[:, 0] < x1) & (r.landmarks[:, 1] > y0) & (r.landmarks[:, 1] < y1))
    # a rolled head rotates the eye line by the same angle
    rolled = render_portrait(_state(2, roll=10.0), 256).landmarks
    angle = np.degrees(np.arctan2(*(rolled[1] - rolled[0])[::-1]))
    assert angle == pytest.approx(10.0, abs=0.5)


def test_emotion_moves_the_face_but_not_the_alignment_landmarks():
    neutral = render_portrait(_state(4, "neutral", 0.5), 128)
    happy = render_portrait(_state(4, "happy", 0.5), 128)
    assert np.abs(neutral.image.astype(int) - happy.image.astype(int)).mean() > 0.5
    assert np.array_equal(neutral.align_landmarks, happy.align_landmarks)
    assert happy.landmarks[3, 1] < neutral.landmarks[3, 1]  # smiling lifts the mouth corners
    # speech changes the mouth but not the alignment either
    talking = render_portrait(_state(4, "neutral", 1.0), 128)
    assert np.array_equal(neutral.align_landmarks, talking.align_landmarks)
    assert np.abs(neutral.image.astype(int) - talking.image.astype(int)).max() > 50


def test_presets_scale_with_intensity_and_round_trip():
    assert tuple(EMOTION_PRESETS) == EMOTIONS
    half = emotion_expression("sad", 0.5)
    assert half.brow_inner_raise == pytest.approx(0.5 * EMOTION_PRESETS["sad"].brow_inner_raise)
    assert emotion_expression("angry", 0.0) == Expression()
    state = _state(5, "fear", 0.3)
    assert FaceState.from_dict(state.to_dict()) == state
    assert from_vector(Expression, to_vector(half)) == half
    with pytest.raises(SserdError):
        emotion_expression("furious")
    # every pair of emotions differs in its controls
    vecs = {e: to_vector(p) for e, p in EMOTION_PRESETS.items()}
    for a in EMOTIONS:
        for b in EMOTIONS:
            if a < b:
                assert np.abs(vecs[a] - vecs[b]).sum() > 0.5


def test_dlib_finds_the_face_in_at_least_98_percent_of_video_frames():
    """The edit pipeline's default detector (dlib HOG + 5 landmarks) on talking clips in 640x360 frames."""
    from sserd_cli.data.synth.video import ClipSpec, plan_clip, render_plan
    from sserd_cli.faces.detect import DlibDetector

    detector = DlibDetector()
    found = total = 0
    for k, emotion in enumerate(("fear", "disgusted")):
        for r in render_plan(plan_clip(ClipSpec(500 + k, 9, emotion, 1.0, duration=1.0, fps=25))):
            faces = detector.detect(r.image)
            total += 1
            if faces:
                found += 1
                # the detected eyes are within a few pixels of the exact ones
                assert np.abs(faces[0].landmarks[:2] - r.landmarks[:2]).max() < 10
    assert total == 50 and found >= 49
