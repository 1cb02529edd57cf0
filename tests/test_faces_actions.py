"""Facial actions from 68 landmarks: each measure moves in its FACS direction, in eye distances, and nothing
else moves when only one part of the face does."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

from sserd_cli.faces.actions import ACTIONS, action_changes, face_frame


@pytest.fixture(scope="module")
def face():
    """The astronaut's 68 landmarks, as dlib reads them (a real face)."""
    from sserd_cli.faces.detect import create_detector
    from sserd_cli.faces.measures import FaceReader

    rgb = skdata.astronaut()
    box = create_detector("dlib").detect(rgb)[0].box
    return FaceReader().steady_landmarks(rgb, box)


def moved(points, indices, dx, dy):
    """``points`` with ``indices`` moved by (dx, dy) eye distances in the face's own frame (y down)."""
    _, rotation, eye = face_frame(points)
    out = points.copy()
    out[list(indices)] += (np.array([dx, dy]) * eye) @ rotation
    return out


def test_the_same_face_moves_nothing(face):
    assert all(abs(v) < 1e-9 for v in action_changes(face, face).values())
    assert [code for code, _ in ACTIONS] == list(action_changes(face, face))


def test_raised_brows_read_as_au1_and_au2_and_not_as_the_mouth(face):
    a = action_changes(face, moved(face, range(17, 27), 0.0, -0.05))
    assert a["AU1"] == pytest.approx(0.05, abs=1e-6) and a["AU2"] == pytest.approx(0.05, abs=1e-6)
    assert a["AU4"] < 0  # raised brows are the opposite of lowered ones
    for code in ("AU5", "AU9", "AU12", "AU15", "AU20"):
        assert a[code] == pytest.approx(0.0, abs=1e-9)


def test_knitted_lowered_brows_read_as_au4(face):
    lowered = moved(face, range(17, 27), 0.0, 0.04)
    knit = moved(moved(lowered, range(17, 22), 0.02, 0.0), range(22, 27), -0.02, 0.0)
    assert action_changes(face, knit)["AU4"] == pytest.approx(0.5 * (0.04 + 0.04), abs=1e-6)


def test_a_smile_reads_as_au12_and_au20_a_frown_as_au15(face):
    smile = moved(moved(face, [48], -0.03, -0.04), [54], 0.03, -0.04)
    a = action_changes(face, smile)
    assert a["AU12"] == pytest.approx(0.5 * (0.04 + 0.03), abs=1e-6) and a["AU20"] == pytest.approx(0.03, abs=1e-6)
    assert a["AU15"] == pytest.approx(-0.04, abs=1e-6)
    frown = moved(face, [48, 54], 0.0, 0.03)
    assert action_changes(face, frown)["AU15"] == pytest.approx(0.03, abs=1e-6)


def test_wider_eyes_and_a_wrinkled_nose(face):
    lids = moved(moved(face, [37, 38, 43, 44], 0.0, -0.02), [40, 41, 46, 47], 0.0, 0.01)
    assert action_changes(face, lids)["AU5"] == pytest.approx(0.03, abs=1e-6)
    assert action_changes(face, moved(face, range(31, 36), 0.0, -0.02))["AU9"] == pytest.approx(0.02, abs=1e-6)


def test_units_follow_the_source_eye_distance_whatever_the_pose(face):
    """A rotated, scaled copy of the same motion reads the same."""
    lifted = moved(face, range(17, 27), 0.0, -0.05)
    turn = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]) * 1.7
    a = action_changes(face @ turn.T + 40, lifted @ turn.T + 40)
    assert a["AU1"] == pytest.approx(0.05, abs=1e-6)
