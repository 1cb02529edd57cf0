"""Soft face mask in aligned-crop space, for pasting an edited crop back.

The mask is an ellipse built from the canonical template (align.CANONICAL_5):
eye distance e = 0.2458 of the crop, eyes at y = 0.469, mouth at y = 0.725.
It spans 2.4 e across (cheek to cheek: the bizygomatic width of an adult is about
2.2 times the distance between the eye centres) and from 1.0 e above the eye line
(mid forehead, below the hairline, where a generator's hair would not match) to
0.75 e below the mouth (the chin).  The hard ellipse is feathered with a Gaussian
(sigma = 3.5 % of the crop side) and then forced to exactly 0 within a margin of the
crop border, so the warped mask fades to nothing before the crop's edge and
paste-back leaves no seam. With a tighter framing (``zoom`` > 1, see
:mod:`.align`) the ellipse grows with the face and is clipped by the border margin.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .align import CANONICAL_5

_EYE_DIST = float(CANONICAL_5[1, 0] - CANONICAL_5[0, 0])
_EYE_Y = float(CANONICAL_5[0, 1])
_MOUTH_Y = float(CANONICAL_5[3, 1])

# Ellipse in unit crop coordinates (see the module docstring).
_TOP = _EYE_Y - 1.0 * _EYE_DIST         # ~0.223
_BOTTOM = _MOUTH_Y + 0.75 * _EYE_DIST   # ~0.909
_HALF_WIDTH = 1.2 * _EYE_DIST           # ~0.295
FEATHER_SIGMA = 0.035                    # of the crop side
BORDER_MARGIN = 0.02                     # of the crop side, forced to 0


def face_mask(size: int, zoom: float = 1.0) -> np.ndarray:
    """Feathered face mask float32 [size, size] in [0, 1]: 1 inside the face, 0 at the border.

    The array is cached per size and zoom, and read-only; copy it before changing it.
    """
    return _face_mask(int(size), float(zoom))


@lru_cache(maxsize=8)
def _face_mask(size: int, zoom: float) -> np.ndarray:
    if size < 16:
        raise ValueError(f"mask size must be at least 16 pixels, got {size}")
    if zoom <= 0:
        raise ValueError(f"zoom must be positive, got {zoom}")
    # shrink the hard ellipse by one sigma so the feathered 0.5 level sits a little
    # inside the face outline and the tail has room before the border
    sigma = FEATHER_SIGMA * size
    shrink = 1.0 * sigma
    cx = 0.5 * size - 0.5
    cy = ((0.5 * (_TOP + _BOTTOM) - 0.5) * zoom + 0.5) * size - 0.5
    ax = _HALF_WIDTH * zoom * size - shrink
    ay = 0.5 * (_BOTTOM - _TOP) * zoom * size - shrink
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    inside = (((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0).astype(np.float32)
    soft = cv2.GaussianBlur(inside, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    soft[soft < 1.0 / 512] = 0.0   # cut the far Gaussian tail: untouched pixels stay exact
    soft[soft > 1.0 - 1.0 / 512] = 1.0
    margin = max(2, int(np.ceil(BORDER_MARGIN * size)))
    soft[:margin] = 0.0
    soft[-margin:] = 0.0
    soft[:, :margin] = 0.0
    soft[:, -margin:] = 0.0
    soft.setflags(write=False)
    return soft


# Boxes of the expressive parts, in unit crop coordinates of the canonical template (e = eye distance):
# each eye with its brow (brows sit about 0.4 e above the eye centre and rise with surprise), and the mouth
# from the upper lip to below the lower lip of an open jaw. Soft edges absorb head pose and jitter.
_EYE_HALF_W, _EYE_UP, _EYE_DOWN = 0.42 * _EYE_DIST, 0.75 * _EYE_DIST, 0.25 * _EYE_DIST
_MOUTH_HALF_W, _MOUTH_UP, _MOUTH_DOWN = 0.75 * _EYE_DIST, 0.35 * _EYE_DIST, 0.45 * _EYE_DIST


def parts_mask(size: int, zoom: float = 1.0) -> np.ndarray:
    """Soft mask float32 [size, size] in [0, 1] of the eyes, brows and mouth (1 inside, feathered edges).

    Expression and speech live in these few pixels; a pixel loss averaged over the crop settles on a soft,
    closed mouth, so the inversion stage weights them up (``--region-weight``). Cached and read-only.
    """
    return _parts_mask(int(size), float(zoom), True)


def mouth_mask(size: int, zoom: float = 1.0) -> np.ndarray:
    """The mouth's part of :func:`parts_mask` alone (lips and an open jaw). Cached and read-only."""
    return _parts_mask(int(size), float(zoom), False)


@lru_cache(maxsize=8)
def _parts_mask(size: int, zoom: float, with_eyes: bool) -> np.ndarray:
    if size < 8 or zoom <= 0:
        raise ValueError(f"parts mask needs size >= 8 and zoom > 0, got {size} and {zoom}")

    def px(u: float) -> float:
        return ((u - 0.5) * zoom + 0.5) * size - 0.5

    hard = np.zeros((size, size), np.float32)
    eyes = [(float(CANONICAL_5[i, 0]), _EYE_Y, _EYE_HALF_W, _EYE_UP, _EYE_DOWN) for i in (0, 1)] if with_eyes else []
    mouth_x = 0.5 * float(CANONICAL_5[3, 0] + CANONICAL_5[4, 0])
    boxes = eyes + [(mouth_x, _MOUTH_Y, _MOUTH_HALF_W, _MOUTH_UP, _MOUTH_DOWN)]
    for cx, cy, half_w, up, down in boxes:
        x0, x1 = int(round(px(cx - half_w))), int(round(px(cx + half_w)))
        y0, y1 = int(round(px(cy - up))), int(round(px(cy + down)))
        hard[max(0, y0):min(size, y1 + 1), max(0, x0):min(size, x1 + 1)] = 1.0
    sigma = max(0.5, 0.02 * size * zoom)
    soft = cv2.GaussianBlur(hard, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    soft = np.clip(soft / max(float(soft.max()), 1e-6), 0.0, 1.0).astype(np.float32)
    soft.setflags(write=False)
    return soft


# The parts transfer rendering treats apart (see faces.transfer): its residual is kept off the eyes, and on the
# mouth and the skin around it only where the model reconstructs the source.

def eye_mask(size: int, zoom: float = 1.0) -> np.ndarray:
    """Soft float32 [size, size] mask of the two eyes themselves (lids and eyeball, not the brows), in crop space
    of the canonical template."""
    e = _EYE_DIST
    hard = np.zeros((size, size), np.float32)
    for i in (0, 1):
        cx = ((CANONICAL_5[i, 0] - 0.5) * zoom + 0.5) * size - 0.5
        cy = ((CANONICAL_5[i, 1] - 0.5) * zoom + 0.5) * size - 0.5
        axes = (int(round(0.32 * e * zoom * size)), int(round(0.17 * e * zoom * size)))
        cv2.ellipse(hard, (int(round(cx)), int(round(cy))), axes, 0, 0, 360, 1.0, -1)
    sigma = max(0.5, 0.06 * e * zoom * size)
    return cv2.GaussianBlur(hard, (0, 0), sigma).clip(0.0, 1.0)


def mouth_region(size: int, zoom: float = 1.0) -> np.ndarray:
    """Soft float32 [size, size] mask of the mouth and the skin around it (an open jaw's lower lip, the
    corners' folds), in crop space of the canonical template."""
    height, width, drop = 0.6, 1.3, 0.12  # eye distances, half mouth widths, eye distances below the corners
    e = _EYE_DIST
    cx = ((0.5 - 0.5) * zoom + 0.5) * size - 0.5
    cy = ((CANONICAL_5[3, 1] + drop * e - 0.5) * zoom + 0.5) * size - 0.5
    half_w = 0.5 * float(CANONICAL_5[4, 0] - CANONICAL_5[3, 0]) * zoom * size
    hard = np.zeros((size, size), np.float32)
    cv2.ellipse(hard, (int(round(cx)), int(round(cy))), (int(round(width * half_w)), int(round(height * e * zoom * size))),
                0, 0, 360, 1.0, -1)
    sigma = max(0.5, 0.06 * e * zoom * size)
    return cv2.GaussianBlur(hard, (0, 0), sigma).clip(0.0, 1.0)
