"""The edit target from ``--ref`` (an image, or a video whose frames are averaged) or ``--emotion``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SserdError
from ..faces.align import warp_to_crop
from ..media.decode import decode_frames
from ..media.image import read_image
from ..media.probe import is_image_path, probe_video
from .faces import FaceFollower, FaceSettings
from .models import Target

REFERENCE_FRAMES = 8  # frames of a reference video whose codes are averaged


def make_target(ref: str | Path | None, emotion: str | None, size: int, zoom: float = 1.0,
                faces: FaceSettings = FaceSettings(), frames: int = REFERENCE_FRAMES) -> Target:
    """Validate ``--ref``/``--emotion`` (exactly one) and build the target; a reference must show a face."""
    if (ref is None) == (emotion is None):
        raise SserdError("give exactly one of --ref REF (an image or video of the wanted emotion) or --emotion NAME")
    if emotion is not None:
        return Target(emotion=emotion)
    return Target(reference=reference_crops(Path(ref), size, zoom, faces, frames))


def reference_crops(path: Path, size: int, zoom: float = 1.0, faces: FaceSettings = FaceSettings(),
                    frames: int = REFERENCE_FRAMES) -> np.ndarray:
    """Aligned crops [N, size, size, 3] of the main face of a reference image or video (N >= 1),
    at the model's crop size and framing ``zoom``."""
    follower = FaceFollower(faces, size, zoom)
    crops = []
    if is_image_path(path):
        rgb = read_image(path)
        m = follower.align_still(rgb)
        if m is not None:
            crops.append(warp_to_crop(rgb, m, size))
    else:
        info = probe_video(path)
        turns = (info.rotation // 90) % 4
        # spread the sampled frames over the first ~10 s (or the whole video when the header says how long)
        step = max(1, (info.frames or int(10 * float(info.rate or 25))) // frames)
        for index, frame in enumerate(decode_frames(info)):
            if index % step:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if turns:
                rgb = np.ascontiguousarray(np.rot90(rgb, turns))
            m = follower.align_still(rgb)
            if m is not None:
                crops.append(warp_to_crop(rgb, m, size))
            if len(crops) >= frames:
                break
    if not crops:
        raise SserdError(f"{path}: no face found in the reference; use an image or video where one face is "
                         "clearly visible, or --emotion NAME")
    return np.stack(crops)
