"""Similarity alignment of a face to the FFHQ-like canonical crop.

The template holds where the 5 points (left eye, right eye, nose tip, left and
right mouth corner) sit in an FFHQ-aligned crop, as fractions of the crop side.
The numbers are the mean 5-point positions measured on FFHQ-aligned crops (the
512-px template used by face-restoration tools, left/right symmetrised about
x = 0.5): eyes at y = 0.4687 and 0.2458 apart, nose tip 0.1445 below the eyes,
mouth corners at y = 0.7251 and 0.2182 apart.  They agree with the FFHQ
alignment rule itself (crop side = max(4 x eye distance, 3.6 x eye-to-mouth)
= 0.983, crop centre = eye midpoint + 0.1 x eye-to-mouth = y 0.494), so crops
made here have the framing a StyleGAN2 trained on FFHQ expects, at any size.

Transforms are 2x3 float64 matrices mapping frame pixels to crop pixels, with
pixel centres at integer coordinates (OpenCV's convention).

``zoom`` tightens the framing about the crop centre: the paper's preprocessing
(align at 320, centre-crop 256) is ``zoom = 320 / 256 = 1.25``. A model must be
fed crops with the framing it was trained on, so bundles record their zoom.
"""

from __future__ import annotations

import cv2
import numpy as np

# Unit-square template (x, y) of the 5 points; see the module docstring for the source.
CANONICAL_5 = np.array(
    [
        [0.37710, 0.46870],  # left eye centre (image-left)
        [0.62290, 0.46870],  # right eye centre
        [0.50000, 0.61320],  # nose tip
        [0.39090, 0.72510],  # left mouth corner
        [0.60910, 0.72510],  # right mouth corner
    ],
    dtype=np.float64,
)


def canonical_landmarks(size: int, zoom: float = 1.0) -> np.ndarray:
    """Where the 5 points land in an aligned crop of ``size`` x ``size`` pixels, float32 [5, 2]."""
    if size < 8:
        raise ValueError(f"crop size must be at least 8 pixels, got {size}")
    if zoom <= 0:
        raise ValueError(f"zoom must be positive, got {zoom}")
    # crop pixel i covers [i - 0.5, i + 0.5]: the unit square maps to [-0.5, size - 0.5]
    return (((CANONICAL_5 - 0.5) * zoom + 0.5) * size - 0.5).astype(np.float32)


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src to dst.

    Umeyama (1991), closed form, no reflection; returns a 2x3 float64 matrix.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching [N>=2, 2] point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("the source points are all at one place: cannot fit a similarity")
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # forbid reflections
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def estimate_alignment(landmarks: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """Similarity transform [2, 3] (frame -> crop) putting ``landmarks`` [5, 2] on the template."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"need 5 landmarks of shape [5, 2], got {landmarks.shape}")
    return umeyama_similarity(landmarks, canonical_landmarks(size, zoom))


def zoom_alignment(m: np.ndarray, size: int, zoom: float) -> np.ndarray:
    """``m`` (made for zoom 1) followed by a scaling by ``zoom`` about the crop centre.

    Equal to :func:`estimate_alignment` with ``zoom``; used after the tracker, which
    smooths the zoom-1 transform.
    """
    if zoom == 1.0:
        return np.asarray(m, dtype=np.float64)
    centre = (size - 1) / 2.0
    scale = np.array([[zoom, 0.0, centre * (1 - zoom)], [0.0, zoom, centre * (1 - zoom)], [0.0, 0.0, 1.0]])
    return (scale @ np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]]))[:2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine transform, float64 [2, 3]."""
    m = np.asarray(m, dtype=np.float64)
    a = m[:, :2]
    a_inv = np.linalg.inv(a)
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = a_inv
    out[:, 2] = -a_inv @ m[:, 2]
    return out


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points [N, 2]."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def affine_scale(m: np.ndarray) -> float:
    """Uniform scale of a similarity (crop pixels per frame pixel for frame -> crop)."""
    m = np.asarray(m, dtype=np.float64)
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def warp_to_crop(
    frame: np.ndarray,
    m: np.ndarray,
    size: int,
    border: int = cv2.BORDER_REFLECT_101,
) -> np.ndarray:
    """Aligned crop [size, size, C] (same dtype as ``frame``) through the frame -> crop transform ``m``.

    Bilinear when the crop is at least half the face's resolution in the frame;
    when shrinking more, only the frame region under the crop is first reduced with
    INTER_AREA (true pixel averaging, no aliasing), then warped.  Outside the frame
    the image is mirrored (``border``), as the FFHQ alignment pads its crops.
    """
    m = np.asarray(m, dtype=np.float64)
    scale = affine_scale(m)
    if scale < 0.5:
        frame, m = _shrink_region(frame, m, size, scale)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def _shrink_region(frame: np.ndarray, m: np.ndarray, size: int, scale: float):
    h, w = frame.shape[:2]
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    pre = transform_points(invert_affine(m), corners)
    pad = 2.0 / scale  # a couple of crop pixels of context for the bilinear pass
    x0 = int(np.clip(np.floor(pre[:, 0].min() - pad), 0, w - 1))
    y0 = int(np.clip(np.floor(pre[:, 1].min() - pad), 0, h - 1))
    x1 = int(np.clip(np.ceil(pre[:, 0].max() + pad) + 1, x0 + 1, w))
    y1 = int(np.clip(np.ceil(pre[:, 1].max() + pad) + 1, y0 + 1, h))
    roi = frame[y0:y1, x0:x1]
    rw, rh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = cv2.resize(roi, (rw, rh), interpolation=cv2.INTER_AREA)
    fx, fy = rw / (x1 - x0), rh / (y1 - y0)
    # small pixel j covers roi [j/f - 0.5/f ..]: frame x = (j + 0.5) / f - 0.5 + x0
    to_frame = np.array([[1 / fx, 0, (0.5 / fx) - 0.5 + x0], [0, 1 / fy, (0.5 / fy) - 0.5 + y0]])
    m_small = m[:, :2] @ to_frame[:, :2]
    t_small = m[:, :2] @ to_frame[:, 2] + m[:, 2]
    return small, np.concatenate([m_small, t_small[:, None]], axis=1)
