"""The edit pipeline's use of :mod:`sserd_cli.faces`: follow the main face through a stream of frames,
and turn aligned crops into edited frames (warp, model, paste-back)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..faces.align import estimate_alignment, warp_to_crop, zoom_alignment
from ..faces.detect import (
    Face,
    create_detector,
    five_points_from_dlib5,
    landmark_model_path,
)
from ..faces.mask import face_mask
from ..faces.paste import paste_back, paste_region
from ..faces.track import FaceTracker, TrackerConfig, box_iou
from ..faces.transfer import Motion, MotionEstimator, TransferSettings, move_pixels

RENDER_MODES = ("transfer", "generate")  # how an edit reaches the frame; see Transfer and paste_item
UNCHANGED = (0, 0, 0, 0)  # an item's ``changed`` rectangle when its edit left every pixel as it was


@dataclass(frozen=True)
class FaceSettings:
    """Face detection and tracking settings of an edit run."""

    detect_width: int = 640  # full-frame detection runs on a frame shrunk to this width
    upsample: int = 1
    smooth_radius: int = 4   # frames each side averaged into a frame's alignment (the look-ahead)
    max_gap: int = 5         # missed frames bridged by interpolation between two detections
    detect_every: int = 4    # HOG detection on every Nth frame of a track; landmarks alone in between
    detector: str = "dlib"   # or "insightface": SCRFD ONNX models from model_dir, run by onnxruntime
    model_dir: str | None = None


class FaceFollower:
    """Finds the main face in each frame and gives the frame -> crop alignment (None: no face)."""

    def __init__(self, settings: FaceSettings, size: int, zoom: float = 1.0):
        self.settings = settings
        self.size = int(size)
        self.zoom = float(zoom)  # the model's framing (see faces.align)
        options = {"detect_width": settings.detect_width, "upsample": settings.upsample} if settings.detector == "dlib" else {}
        self.detector = create_detector(settings.detector, settings.model_dir, **options)

    def align_still(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detector.detect(rgb)
        return self.alignment(faces[0]) if faces else None

    def alignment(self, face: Face) -> np.ndarray:
        """The frame -> crop alignment of one detected face at this follower's crop size and framing."""
        return estimate_alignment(face.landmarks, self.size, self.zoom)

    def follow(self, items: Iterable) -> Iterator:
        """Items (with ``.index`` and upright ``.rgb``) out in order, each with ``.m`` set to its smoothed
        alignment or None; an item leaves once the tracker's look-ahead has seen enough later frames.

        While a face is tracked, the HOG detector runs on every ``detect_every``-th frame only; the frames
        between get their landmarks from the 5-point predictor started at the face's previous position
        (under a millisecond instead of several), and fall back to HOG when that fit looks wrong."""
        tracker = FaceTracker(TrackerConfig(size=self.size, radius=self.settings.smooth_radius,
                                            max_gap=self.settings.max_gap))
        # the landmark-only follower runs dlib's predictor: only for the dlib detector
        follow_landmarks = self.settings.detect_every > 1 and self.settings.detector == "dlib"
        landmarks = LandmarkFollower(self.detector.landmark_model) if follow_landmarks else None
        waiting: deque = deque()  # at most tracker.delay + 1 items
        since_detection = 0
        for item in items:
            waiting.append(item)
            face = None
            if landmarks is not None and tracker.last_box is not None and since_detection < self.settings.detect_every:
                face = landmarks.follow(item.rgb)
            if face is not None:
                faces = [face]
                since_detection += 1
            else:
                faces = self.detector.detect(item.rgb, near=tracker.last_box)
                since_detection = 1
                if landmarks is not None:
                    landmarks.anchor(_main_face(faces, tracker.last_box))
            yield from self._answer(waiting, tracker.push(item.index, faces))
        yield from self._answer(waiting, tracker.flush())

    def _answer(self, waiting: deque, answers) -> Iterator:
        """The waiting items in push order, each with its alignment at the model's framing."""
        for index, m in answers:
            item = waiting.popleft()
            assert item.index == index, "tracker answers come in push order"
            item.m = None if m is None else zoom_alignment(m, self.size, self.zoom)
            yield item


def _main_face(faces: list, last_box) -> Face | None:
    """The face the tracker will follow: the one overlapping its last box most, else the largest."""
    if not faces:
        return None
    if last_box is None:
        return faces[0]
    best = max(faces, key=lambda f: box_iou(f.box, last_box))
    return best if box_iou(best.box, last_box) > 0 else faces[0]


class LandmarkFollower:
    """Landmarks of a tracked face without the detector: dlib's 5-point predictor run on the box where
    the face was in the previous frame (same size relative to the eyes as the last HOG box).

    A fit is accepted only when the eye distance changed by less than 15 % and the eyes moved less than
    a third of their distance since the previous frame; otherwise the caller runs the detector.
    """

    MAX_SCALE_CHANGE = 0.15
    MAX_SHIFT = 1 / 3

    def __init__(self, model: str = "5"):
        import dlib

        self.predictor = dlib.shape_predictor(str(landmark_model_path(model)))
        self.rectangle = dlib.rectangle
        self.model = model
        self.last: Face | None = None
        self.offset = np.zeros(2)  # box centre - eye midpoint, in eye distances (from the last HOG box)
        self.width = 0.0           # box width in eye distances

    def anchor(self, face: Face | None) -> None:
        """Start from a detector's face (None: lose the face until the next detection)."""
        self.last = face
        if face is not None:
            mid, eye = _eyes(face.landmarks)
            centre = (face.box[:2] + face.box[2:]) / 2
            self.offset = (centre - mid) / eye
            self.width = float(face.box[2] - face.box[0]) / eye

    def follow(self, rgb: np.ndarray) -> Face | None:
        if self.last is None or self.model != "5":
            return None
        mid, eye = _eyes(self.last.landmarks)
        centre = mid + self.offset * eye
        half = self.width * eye / 2
        x0, y0, x1, y1 = (int(round(v)) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
        h, w = rgb.shape[:2]
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            return None
        shape = self.predictor(rgb, self.rectangle(x0, y0, x1 - 1, y1 - 1))
        parts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        points = five_points_from_dlib5(parts)
        new_mid, new_eye = _eyes(points)
        if abs(new_eye / eye - 1) > self.MAX_SCALE_CHANGE or np.hypot(*(new_mid - mid)) > self.MAX_SHIFT * eye:
            self.last = None
            return None
        shift = new_mid - mid
        box = np.asarray(self.last.box, dtype=np.float64)
        box = np.concatenate([box[:2] + shift, box[2:] + shift]).astype(np.float32)
        self.last = Face(box=box, landmarks=points, score=self.last.score, raw_landmarks=parts.astype(np.float32))
        return self.last


def _eyes(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Eye midpoint and eye distance of 5 landmarks."""
    left, right = np.asarray(landmarks[0], dtype=np.float64), np.asarray(landmarks[1], dtype=np.float64)
    return (left + right) / 2, max(float(np.hypot(*(right - left))), 1e-3)


class Transfer:
    """Transfer rendering (``--render transfer``, see :mod:`sserd_cli.faces.transfer`): each item's frame gets
    the motion and bounded residual from the model's plain render to its edited render, applied to the frame's
    own pixels at full resolution. One per thread (it holds an optical-flow object)."""

    def __init__(self, model, settings: TransferSettings = TransferSettings()):
        self.settings = settings
        self.estimator = MotionEstimator(int(model.resolution), model.zoom, settings)

    def motion(self, recon: np.ndarray, edited: np.ndarray, presence: float = 1.0, source: np.ndarray | None = None):
        return self.estimator.motion(recon, edited, presence, source)

    def paste(self, item, recon: np.ndarray, edited: np.ndarray, source: np.ndarray | None = None) -> None:
        """``item.edited``: its frame moved as ``recon`` -> ``edited`` says, scaled by the item's ``presence``
        (a span's fade scales the edit itself, not a blend of two faces); ``source`` is the aligned crop the
        model read (see :meth:`MotionEstimator.motion`)."""
        if np.array_equal(recon, edited):  # no edit (the identity model, a neutral step): the frame as it is
            item.edited, item.changed = _writable_rgb(item), UNCHANGED
            return
        self.apply(item, self.motion(recon, edited, float(getattr(item, "presence", 1.0)), source))

    def apply(self, item, motion: Motion) -> None:
        """``item.edited``: its frame moved by ``motion`` (in place when the item owns its ``rgb``), and
        ``item.changed`` the rectangle that holds every changed pixel."""
        frame = _writable_rgb(item)
        item.changed = move_pixels(frame, motion, item.m, self.settings.still) or UNCHANGED
        item.edited = frame


class DeferredTransfer(Transfer):
    """A :class:`Transfer` whose :meth:`paste` only hands the renders to the item, for :meth:`finish` to carry out
    in another thread (the edit pipeline's paste stage): the flow and the warp then overlap the next batch's
    networks. Its own flow object is used by that thread alone."""

    def paste(self, item, recon: np.ndarray, edited: np.ndarray, source: np.ndarray | None = None) -> None:
        item.transfer_job = (recon, edited, source)

    def finish(self, item) -> None:
        job = getattr(item, "transfer_job", None)
        if job is not None:
            item.transfer_job = None
            super().paste(item, *job)


def crop_and_paste(items: list, model, color_match: bool = False, transfer: Transfer | None = None) -> None:
    """Edit the items that have an alignment: one batched model call, then paste each crop back, or carry
    each edit onto its frame with ``transfer``.

    Items may carry ``weights`` (strength per target, for the model) and ``presence`` (the share of the
    model's face blended over the frame's: the fade in and out of a span)."""
    faced = [item for item in items if item.m is not None]
    if not faced:
        return
    crops, weights = aligned_crops(faced, model.resolution), batch_weights(faced)
    if transfer is not None:
        for item, crop, recon, edited in zip(faced, crops, *model.edit_pair(crops, weights)):
            transfer.paste(item, recon, edited, crop)
        return
    edited = model.edit(crops, weights)
    mask = face_mask(model.resolution, model.zoom)
    for item, crop in zip(faced, edited):
        paste_item(item, crop, mask, color_match)


def aligned_crops(items: list, size: int) -> np.ndarray:
    """The aligned crops [B, size, size, 3] of items that all have an alignment ``.m``."""
    return np.stack([warp_to_crop(item.rgb, item.m, size) for item in items])


def batch_weights(items: list) -> np.ndarray | None:
    """The items' ``weights`` stacked [B, n_targets], or None when none has any (1 towards the only target)."""
    weighted = [getattr(item, "weights", None) is not None for item in items]
    if any(weighted) and not all(weighted):
        raise ValueError("a batch mixes items with and without weights")
    return np.stack([item.weights for item in items]) if all(weighted) else None


def paste_item(item, crop: np.ndarray, mask: np.ndarray, color_match: bool = False, colors=None) -> None:
    """``item.edited``: its frame with ``crop`` pasted back through ``mask``, scaled by the item's ``presence``
    (in place when the item owns its ``rgb``), and ``item.changed`` the rectangle the paste can touch;
    ``colors`` as in :func:`~sserd_cli.faces.paste.paste_back`."""
    presence = float(getattr(item, "presence", 1.0))
    mask = mask if presence >= 1.0 else mask * presence
    item.changed = paste_region(item.rgb.shape, item.m, mask) or UNCHANGED
    item.edited = paste_back(item.rgb, crop, item.m, mask, color_match=color_match, colors=colors,
                             inplace=_owned(item))


def _owned(item) -> bool:
    """Whether the edit may be written into ``item.rgb`` itself: only an item that says it owns the array
    (``sserd edit``'s decoded frames); a caller's frames (a benchmark's clip, a test's image) stay as they were."""
    return bool(getattr(item, "owns_rgb", False))


def _writable_rgb(item) -> np.ndarray:
    """``item.rgb`` itself if the item owns it, else a copy to write the edit into."""
    return item.rgb if _owned(item) else item.rgb.copy()
