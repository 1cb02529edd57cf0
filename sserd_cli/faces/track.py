"""Streaming main-face tracker with temporal smoothing and gap bridging.

Feed it every frame's detections in order; it answers, a fixed number of frames
later, each frame's alignment (a frame -> crop similarity) or None:

    tracker = FaceTracker(TrackerConfig(size=256))
    for index, frame in enumerate(frames):
        faces = detector.detect(frame, near=tracker.last_box)
        for ready_index, m in tracker.push(index, faces):
            ...                      # m is a [2, 3] matrix or None (leave the frame alone)
    for ready_index, m in tracker.flush():
        ...

Main face: the largest face when no track is running; afterwards the face that
overlaps the last tracked box most (a background face is never picked up while
the main face is visible).  A face that overlaps nothing starts a new track
(a cut) only if it is at least ``min_relative_size`` as wide as the tracked one.

Gaps: a run of up to ``max_gap`` frames without the main face between two
detections of the same track is bridged by interpolating the alignment; longer
gaps (and gaps at the start or end of the video) are "no face" frames.

Smoothing: each alignment is a similarity; it is described by the frame position
of the crop centre, log-scale and rotation angle, and each of these is averaged
over the frames i-k..i+k of the same track with Gaussian weights (sigma frames);
where the track starts or ends, a weighted local linear fit replaces the average so
that a steady pan is not biased by the one-sided window.  Averaging the crop centre (not the
raw matrix translation) keeps the face fixed when scale or angle change.

Latency and memory: an answer for frame i comes once frame i + ``delay`` has been
pushed, with ``delay = radius + max_gap`` (whether a gap will close, and the
bridged values the smoother needs, are known by then).  The tracker holds
``delay + radius + 1`` small records, independent of the video length.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .align import estimate_alignment, invert_affine
from .face import Face


@dataclass
class TrackerConfig:
    size: int = 256                 # aligned crop side the transforms are made for
    max_gap: int = 5                # longest run of missed frames bridged by interpolation
    radius: int = 4                 # smoothing half-window (look-ahead) in frames
    sigma: float = 2.0              # Gaussian width of the smoothing window, frames
    min_iou: float = 0.2            # overlap with the last box to continue the track
    min_relative_size: float = 0.6  # a non-overlapping face must be this wide (vs the track) to start a new track
    min_face_width: float = 0.0     # faces narrower than this (pixels) are ignored

    def __post_init__(self):
        if self.size < 8:
            raise ValueError(f"crop size must be at least 8, got {self.size}")
        if self.max_gap < 0 or self.radius < 0:
            raise ValueError("max_gap and radius must be 0 or more")
        if self.sigma <= 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")


@dataclass
class _Record:
    index: int
    track: int | None      # track id, None for a no-face frame
    params: np.ndarray | None  # [cx, cy, log_scale, angle] or None


class FaceTracker:
    """Streaming tracker: ``push(frame_index, faces)`` and ``flush()`` yield ``(frame_index, M or None)``."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._records: deque[_Record] = deque()
        self._next_index: int | None = None   # index expected by the next push
        self._next_emit: int | None = None    # first index not answered yet
        self._track_id = 0
        self._last_box: np.ndarray | None = None
        self._last_seen: int | None = None    # index of the last detection of the running track
        self._last_params: np.ndarray | None = None
        self._running = False
        weights = np.exp(-0.5 * (np.arange(-self.config.radius, self.config.radius + 1) / self.config.sigma) ** 2)
        self._weights = weights

    @property
    def delay(self) -> int:
        """Frames between pushing frame i and getting its answer."""
        return self.config.radius + self.config.max_gap

    @property
    def last_box(self) -> np.ndarray | None:
        """Box of the main face at its last detection while a track runs (a search hint for the detector)."""
        return self._last_box if self._running else None

    def push(self, frame_index: int, faces: Iterable[Face]) -> list[tuple[int, np.ndarray | None]]:
        """Add one frame's detections; returns the frames whose answer is now final, in order."""
        if self._next_index is None:
            self._next_index = self._next_emit = int(frame_index)
        if frame_index != self._next_index:
            raise ValueError(f"frames must be pushed in order: expected {self._next_index}, got {frame_index}")
        self._next_index += 1
        self._expire_track(frame_index)
        face = self._select(list(faces))
        if face is None:
            self._records.append(_Record(frame_index, None, None))
        else:
            params = _params_from_matrix(estimate_alignment(face.landmarks, self.config.size), self.config.size)
            self._bridge(frame_index, params)
            self._records.append(_Record(frame_index, self._track_id, params))
            self._last_box = np.asarray(face.box, dtype=np.float32).copy()
            self._last_seen = frame_index
            self._last_params = params
        return self._emit(ready_until=frame_index - self.delay)

    def flush(self) -> list[tuple[int, np.ndarray | None]]:
        """Answers for every frame still held (the end of the video: trailing gaps are not bridged)."""
        if self._next_index is None:
            return []
        out = self._emit(ready_until=self._next_index - 1)
        self._running = False
        return out

    # -- selection -----------------------------------------------------------------------

    def _expire_track(self, frame_index: int) -> None:
        if self._running and frame_index - self._last_seen - 1 > self.config.max_gap:
            self._running = False

    def _select(self, faces: list[Face]) -> Face | None:
        cfg = self.config
        faces = [f for f in faces if f.width >= max(cfg.min_face_width, 1.0)]
        if not faces:
            return None
        if not self._running:
            self._start_track()
            return max(faces, key=lambda f: f.area)
        overlaps = [box_iou(f.box, self._last_box) for f in faces]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= cfg.min_iou:
            return faces[best]
        largest = max(faces, key=lambda f: f.area)
        track_width = float(self._last_box[2] - self._last_box[0])
        if largest.width >= cfg.min_relative_size * track_width:
            self._start_track()  # the main face jumped (a cut): follow the new one, do not bridge
            return largest
        return None

    def _start_track(self) -> None:
        self._track_id += 1
        self._running = True
        self._last_seen = None

    def _bridge(self, frame_index: int, params: np.ndarray) -> None:
        """Fill a short gap since the track's previous detection by interpolation."""
        if self._last_seen is None:
            return
        gap = frame_index - self._last_seen - 1
        if gap <= 0 or gap > self.config.max_gap:
            return
        p0 = self._last_params
        delta = params - p0
        delta[3] = _wrap_angle(delta[3])
        for j in range(1, gap + 1):
            rec = self._find(self._last_seen + j)
            rec.track = self._track_id
            rec.params = p0 + delta * (j / (gap + 1))

    def _find(self, index: int) -> _Record:
        first = self._records[0].index
        rec = self._records[index - first]
        assert rec.index == index
        return rec

    # -- output --------------------------------------------------------------------------

    def _emit(self, ready_until: int) -> list[tuple[int, np.ndarray | None]]:
        out = []
        while self._next_emit is not None and self._next_emit <= ready_until and self._records:
            index = self._next_emit
            rec = self._find(index)
            out.append((index, self._smoothed(rec)))
            self._next_emit += 1
            # keep `radius` answered records as the smoother's history
            while self._records and self._records[0].index < self._next_emit - self.config.radius:
                self._records.popleft()
        return out

    def _smoothed(self, rec: _Record) -> np.ndarray | None:
        """Gaussian-weighted local linear fit of the track's parameters around ``rec``, value at ``rec``.

        Inside a track the window is symmetric and this is the plain Gaussian average; at a
        track's start or end the fitted slope keeps a steady pan from being pulled towards
        the frames that exist (a weighted average alone would lag there).
        """
        if rec.params is None:
            return None
        r = self.config.radius
        first = self._records[0].index
        s0 = s1 = s2 = 0.0
        t0 = np.zeros(4)
        t1 = np.zeros(4)
        for off in range(-r, r + 1):
            pos = rec.index + off - first
            if pos < 0 or pos >= len(self._records):
                continue
            other = self._records[pos]
            if other.track != rec.track or other.params is None:
                continue
            w = self._weights[off + r]
            d = other.params - rec.params
            d[3] = _wrap_angle(d[3])
            s0 += w
            s1 += w * off
            s2 += w * off * off
            t0 += w * d
            t1 += w * off * d
        det = s0 * s2 - s1 * s1
        offset = t0 / s0 if det < 1e-9 * max(s0 * s2, 1e-12) else (s2 * t0 - s1 * t1) / det
        return _matrix_from_params(rec.params + offset, self.config.size)


def track_faces(
    detections: Iterable[tuple[int, list[Face]]], config: TrackerConfig | None = None
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Generator form: ``(frame_index, faces)`` in, ``(frame_index, M or None)`` out, same order."""
    tracker = FaceTracker(config)
    for index, faces in detections:
        yield from tracker.push(index, faces)
    yield from tracker.flush()


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _params_from_matrix(m: np.ndarray, size: int) -> np.ndarray:
    """[crop centre x, y in the frame, log scale, angle] of a frame -> crop similarity."""
    centre = invert_affine(m) @ np.array([(size - 1) / 2.0, (size - 1) / 2.0, 1.0])
    scale = math.hypot(m[0, 0], m[1, 0])
    angle = math.atan2(m[1, 0], m[0, 0])
    return np.array([centre[0], centre[1], math.log(scale), angle])


def _matrix_from_params(p: np.ndarray, size: int) -> np.ndarray:
    scale = math.exp(p[2])
    c, s = scale * math.cos(p[3]), scale * math.sin(p[3])
    a = np.array([[c, -s], [s, c]])
    half = (size - 1) / 2.0
    t = np.array([half, half]) - a @ p[:2]
    return np.concatenate([a, t[:, None]], axis=1)
