"""Facial actions read from 68 landmarks: how far an edit moved brows, lids and lips, in eye distances.

A real face has no oracle, but the 68-point landmarks (iBUG 300-W layout) show what moved. Each measure is a
*change* between two pictures of one moment (a source frame and its edit, frame-paired), both read in the
source's own face frame (origin between the eyes, x along the eye line, y down, one unit = the source's eye
distance), so head pose and speech cancel and a change of the edit's own geometry cannot rescale itself.
Every measure is positive in its FACS direction:

- AU1 inner brow raise: the inner brow ends (points 20, 21, 22, 23) rise;
- AU2 outer brow raise: the outer brow ends (17, 18, 25, 26) rise;
- AU4 brow lowerer: the brows come down and together (the mean of the whole brows' fall and of the
  inner ends' approach);
- AU5 upper lid raiser: the eyes open wider (lid gaps 37-41, 38-40, 43-47, 44-46);
- AU9 nose wrinkler: the nose wings and tip (31-35) rise towards the eyes (pose-sensitive: a nod moves it);
- AU12 lip corner puller: the corners (48, 54) rise and move out (the mean of lift and of each corner's
  outward move);
- AU15 lip corner depressor: the corners fall relative to the lips' centre line (51, 57);
- AU20 lip stretcher: each corner's outward move (half the widening of the mouth).

These are geometric stand-ins for FACS action units, not a FACS coder: an AU is defined by muscles, these
by landmark motion, and the landmark model itself moves a little with blur and texture.
"""

from __future__ import annotations

import numpy as np

ACTIONS = (
    ("AU1", "inner brow raise"),
    ("AU2", "outer brow raise"),
    ("AU4", "brow lowering and knitting"),
    ("AU5", "upper lid raise"),
    ("AU9", "nose wrinkle"),
    ("AU12", "lip corner pull and lift"),
    ("AU15", "lip corner depression"),
    ("AU20", "lip stretch"),
)

_RIGHT_EYE, _LEFT_EYE = slice(36, 42), slice(42, 48)  # image-left and image-right eye
_INNER_BROW, _OUTER_BROW, _BROWS = [20, 21, 22, 23], [17, 18, 25, 26], list(range(17, 27))
_LID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
_NOSE = [31, 32, 33, 34, 35]
_CORNERS = (48, 54)
_LIP_CENTRE = (51, 57)


def face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(origin, rotation [2, 2] whose rows are the face's x and y axes, eye distance) of 68 landmarks."""
    points = np.asarray(points, dtype=np.float64)
    right, left = points[_RIGHT_EYE].mean(axis=0), points[_LEFT_EYE].mean(axis=0)
    axis = left - right
    distance = max(float(np.hypot(*axis)), 1e-6)
    x = axis / distance
    return (right + left) / 2, np.array([x, [-x[1], x[0]]]), distance


def _in_frame(points: np.ndarray, frame) -> np.ndarray:
    origin, rotation, distance = frame
    return (np.asarray(points, dtype=np.float64) - origin) @ rotation.T / distance


def _readings(p: np.ndarray) -> dict[str, float]:
    """Positions of one face in face-frame units (y down): heights are -y."""
    inner_gap = abs(p[21, 0] - p[22, 0])
    width = abs(p[_CORNERS[1], 0] - p[_CORNERS[0], 0])
    corners_y = p[list(_CORNERS), 1].mean()
    return {
        "inner_brow": -p[_INNER_BROW, 1].mean(),
        "outer_brow": -p[_OUTER_BROW, 1].mean(),
        "brows": -p[_BROWS, 1].mean(),
        "inner_gap": inner_gap,
        "lids": float(np.mean([p[b, 1] - p[a, 1] for a, b in _LID_PAIRS])),
        "nose": -p[_NOSE, 1].mean(),
        "corner_height": -corners_y,
        "corner_vs_centre": p[list(_LIP_CENTRE), 1].mean() - corners_y,
        "width": width,
    }


def action_changes(source: np.ndarray, edited: np.ndarray) -> dict[str, float]:
    """Each action's change from the ``source`` landmarks [68, 2] to the ``edited`` ones, in the source's eye
    distances, positive in its FACS direction (see the module docstring)."""
    frame = face_frame(source)
    a, b = _readings(_in_frame(source, frame)), _readings(_in_frame(edited, frame))
    d = {k: b[k] - a[k] for k in a}
    return {
        "AU1": d["inner_brow"],
        "AU2": d["outer_brow"],
        "AU4": 0.5 * (-d["brows"] - d["inner_gap"]),
        "AU5": d["lids"],
        "AU9": d["nose"],
        "AU12": 0.5 * (d["corner_height"] + d["width"] / 2),
        "AU15": -d["corner_vs_centre"],
        "AU20": d["width"] / 2,
    }


__all__ = ["ACTIONS", "action_changes", "face_frame"]
