"""Still images: read any common format as RGB (EXIF orientation applied), write in the target's format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SserdError
from .probe import check_readable


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]``; a clear error if the file is not a readable image."""
    path = check_readable(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise SserdError(f"{path}: not an image file this build can read (png, jpg, bmp, tiff, webp)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, rgb: np.ndarray, suffix: str | None = None) -> None:
    """Encode ``rgb`` in the format of ``suffix`` (default: the path's) and write it (JPEG quality 95)."""
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise SserdError(f"{path}: cannot write images of type {suffix}")
    buf.tofile(str(path))
