"""What every face detector gives back, and the frame check they all start with.

Kept apart from the detectors so that each (dlib in :mod:`.detect`, SCRFD in :mod:`.insightface`) imports the
same type without importing the other, and :func:`~sserd_cli.faces.detect.create_detector` can choose between
them without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SserdError


@dataclass
class Face:
    """One detected face.

    ``box``: float32 [4] (x0, y0, x1, y1) in image pixels; ``landmarks``: float32 [5, 2]
    (left eye, right eye, nose tip, left mouth corner, right mouth corner; "left" is
    image-left); ``score``: detector confidence (dlib HOG margin, higher is surer);
    ``raw_landmarks``: the predictor's own points (5 or 68) for callers that want them.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    raw_landmarks: np.ndarray | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))


def check_frame(frame: np.ndarray) -> np.ndarray:
    """The frame a detector may run on: an RGB uint8 array [H, W, 3], made contiguous; anything else is refused
    in one line."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise SserdError(f"face detection needs an RGB image of shape [H, W, 3], got {shape}")
    if frame.dtype != np.uint8:
        raise SserdError(f"face detection needs a uint8 image, got {frame.dtype}")
    if not frame.flags["C_CONTIGUOUS"]:
        frame = np.ascontiguousarray(frame)
    return frame
