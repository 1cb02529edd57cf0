"""The edit pipeline's use of :mod:`sserd_cli.faces`: follow the main face through a stream of frames,
and turn aligned crops into edited frames (warp, model, paste-back)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..faces.align import estimate_alignment, warp_to_crop
from ..faces.detect import DlibDetector
from ..faces.mask import face_mask
from ..faces.paste import paste_back
from ..faces.track import FaceTracker, TrackerConfig


@dataclass(frozen=True)
class FaceSettings:
    """Face detection and tracking settings of an edit run."""

    detect_width: int = 640  # full-frame detection runs on a frame shrunk to this width
    upsample: int = 1
    smooth_radius: int = 4   # frames each side averaged into a frame's alignment (the look-ahead)
    max_gap: int = 5         # missed frames bridged by interpolation between two detections


class FaceFollower:
    """Finds the main face in each frame and gives the frame -> crop alignment (None: no face)."""

    def __init__(self, settings: FaceSettings, size: int):
        self.settings = settings
        self.size = int(size)
        self.detector = DlibDetector(detect_width=settings.detect_width, upsample=settings.upsample)

    def align_still(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detector.detect(rgb)
        return estimate_alignment(faces[0].landmarks, self.size) if faces else None

    def follow(self, items: Iterable) -> Iterator:
        """Items (with ``.index`` and upright ``.rgb``) out in order, each with ``.m`` set to its smoothed
        alignment or None; an item leaves once the tracker's look-ahead has seen enough later frames."""
        tracker = FaceTracker(TrackerConfig(size=self.size, radius=self.settings.smooth_radius,
                                            max_gap=self.settings.max_gap))
        waiting: deque = deque()  # at most tracker.delay + 1 items
        for item in items:
            waiting.append(item)
            faces = self.detector.detect(item.rgb, near=tracker.last_box)
            yield from _answer(waiting, tracker.push(item.index, faces))
        yield from _answer(waiting, tracker.flush())


def _answer(waiting: deque, answers) -> Iterator:
    for index, m in answers:
        item = waiting.popleft()
        assert item.index == index, "tracker answers come in push order"
        item.m = m
        yield item


def crop_and_paste(items: list, model, color_match: bool = False) -> None:
    """Edit the items that have an alignment: one batched model call, then paste each crop back."""
    faced = [item for item in items if item.m is not None]
    if not faced:
        return
    size = model.resolution
    crops = np.stack([warp_to_crop(item.rgb, item.m, size) for item in faced])
    edited = model.edit(crops)
    mask = face_mask(size)
    for item, crop in zip(faced, edited):
        item.edited = paste_back(item.rgb, crop, item.m, mask, color_match=color_match)
