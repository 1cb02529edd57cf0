"""A contact sheet of the synthetic world: emotions across, identities x mouth openings down."""

from __future__ import annotations

import cv2
import numpy as np

from ...emotions import EMOTIONS
from .params import FaceState, Identity, Light, Pose, Speech, emotion_expression
from .dataset import render_crop


def contact_sheet(size: int = 128, identities: int = 4, openings=(0.0, 0.45, 0.9), seed: int = 0) -> np.ndarray:
    """RGB uint8 image: one column per emotion (full intensity), one row per (identity, mouth opening)."""
    header = max(16, size // 6)
    rows = []
    for k in range(identities):
        rng = np.random.default_rng([seed, k, 5])
        identity = Identity.random(rng)
        light = Light.random(rng)
        for mouth in openings:
            tiles = []
            for emotion in EMOTIONS:
                state = FaceState(identity, emotion_expression(emotion, 1.0), Speech(mouth, 0.0), Pose(), light)
                crop, _ = render_crop(state, size)  # plain backdrop: the sheet is about the faces
                tiles.append(crop)
            rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    top = np.full((header, sheet.shape[1], 3), 255, np.uint8)
    for i, emotion in enumerate(EMOTIONS):
        scale = header / 40
        (tw, th), _ = cv2.getTextSize(emotion, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.putText(top, emotion, (i * size + (size - tw) // 2, (header + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([top, sheet], 0)
