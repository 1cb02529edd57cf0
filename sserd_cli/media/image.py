"""Still images: read any common format, edit in 8-bit RGB, write back what the source held.

The face work sees 8-bit RGB, upright (EXIF orientation applied). What it does not need is kept beside
it and put back on writing: the alpha plane exactly as it was, 16 bits per channel (the edit's change is
added to the original 16-bit values, so every pixel outside the face keeps its exact value), and a grey
image stays grey. Where the output format cannot hold one of these, :func:`write_still` says what was
lost.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import SserdError
from .probe import check_readable

# what OpenCV's encoders can store, by suffix (measured: a round trip gives the same array back)
HOLDS_ALPHA = frozenset({".png", ".bmp", ".tif", ".tiff", ".webp"})
HOLDS_16_BIT = frozenset({".png", ".tif", ".tiff"})
HOLDS_GREY = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


@dataclass
class Still:
    """A decoded still. ``pixels`` holds the colour planes as stored (uint8 or uint16; [H, W, 3] RGB or
    [H, W] grey), ``alpha`` the alpha plane ([H, W], same type) or None, both upright; ``rgb`` is the 8-bit
    RGB view the face work edits."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def grey(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def rgb(self) -> np.ndarray:
        colour = self.pixels if not self.grey else np.repeat(self.pixels[..., None], 3, axis=2)
        return _to_8_bit(colour)


def read_still(path: str | Path) -> Still:
    """The still at ``path``; a clear error if the file is not a readable image."""
    path = check_readable(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    with _native_stderr_silenced():  # libpng / libjpeg print their own complaints; ours is the one line
        stored = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        upright = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH) if stored is not None else None
    if stored is None or upright is None:
        raise SserdError(f"{path}: not an image file this build can read (png, jpg, bmp, tiff, webp)")
    if stored.dtype not in (np.uint8, np.uint16) or upright.dtype not in (np.uint8, np.uint16):
        raise SserdError(f"{path}: {stored.dtype} pixels are not supported: save it with 8 or 16 bits per channel")
    if stored.ndim == 3 and stored.shape[2] == 3 and stored.dtype == upright.dtype and stored.shape == upright.shape \
            and np.array_equal(stored, upright):
        return Still(cv2.cvtColor(upright, cv2.COLOR_BGR2RGB))  # the common case: nothing else to keep
    colour = stored if stored.ndim == 2 else stored[..., :3]
    alpha = stored[..., 3] if stored.ndim == 3 and stored.shape[2] == 4 else None
    as_read = colour if colour.ndim == 3 else cv2.cvtColor(colour, cv2.COLOR_GRAY2BGR)
    turn = _orientation(as_read, upright)
    if turn is None:
        # the two decodes disagree beyond orientation (an unusual colour model): edit what the colour
        # decode gives, and say that the rest is not kept
        still = Still(cv2.cvtColor(upright, cv2.COLOR_BGR2RGB))
        if alpha is not None:
            still.notes.append("its alpha channel could not be matched to the colour planes and was dropped")
        return still
    colour, alpha = turn(colour), None if alpha is None else turn(alpha)
    pixels = colour if colour.ndim == 2 else cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return Still(np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha))


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]``, upright; a clear error if the file is not a readable image."""
    return read_still(path).rgb


def write_still(path: str | Path, still: Still, edited: np.ndarray | None = None, suffix: str | None = None) -> list[str]:
    """Write ``still`` with its colour replaced by ``edited`` (8-bit RGB of the same size; None: unchanged)
    in the format of ``suffix`` (default: the path's). Returns what the format could not hold, one
    phrase each (empty when nothing was lost)."""
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    colour = still.pixels if edited is None else _apply_edit(still, edited)
    alpha = still.alpha
    lost = []
    if still.depth == 16 and suffix not in HOLDS_16_BIT:
        colour, alpha = _to_8_bit(colour), None if alpha is None else _to_8_bit(alpha)
        lost.append(f"the {suffix} format holds 8 bits per channel: the 16-bit source was written in 8 bits")
    if alpha is not None and suffix not in HOLDS_ALPHA:
        alpha = None
        lost.append(f"the {suffix} format holds no alpha channel: the transparency was dropped")
    if colour.ndim == 2 and (alpha is not None or suffix not in HOLDS_GREY):
        colour = np.repeat(colour[..., None], 3, axis=2)  # grey + alpha is stored as colour + alpha
    bgr = colour if colour.ndim == 2 else cv2.cvtColor(colour, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    _encode_to(path, bgr, suffix)
    return lost


def write_image(path: str | Path, rgb: np.ndarray, suffix: str | None = None) -> None:
    """Encode 8-bit RGB ``rgb`` in the format of ``suffix`` (default: the path's) and write it."""
    write_still(path, Still(np.ascontiguousarray(rgb)), None, suffix)


def _apply_edit(still: Still, edited: np.ndarray) -> np.ndarray:
    """The stored colour planes with the edit's change added: exact wherever the edit changed nothing."""
    change = edited.astype(np.int32) - still.rgb.astype(np.int32)
    scale = 257 if still.depth == 16 else 1  # 8 -> 16 bits: 255 * 257 = 65535
    top = 65535 if still.depth == 16 else 255
    if still.grey:
        luma = np.rint(change @ np.array([0.299, 0.587, 0.114])).astype(np.int32)  # BT.601, as OpenCV's grey
        return np.clip(still.pixels.astype(np.int32) + luma * scale, 0, top).astype(still.pixels.dtype)
    if still.depth == 8:
        return edited
    return np.clip(still.pixels.astype(np.int32) + change * scale, 0, top).astype(np.uint16)


def _to_8_bit(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    return np.rint(x.astype(np.float64) / 257.0).astype(np.uint8)


def _orientation(stored: np.ndarray, upright: np.ndarray):
    """The turn or flip (of the 8 an EXIF orientation can ask for) that takes ``stored`` to ``upright``."""
    turns = [lambda a, k=k: np.rot90(a, k) for k in range(4)]
    turns += [lambda a, k=k: np.rot90(a[:, ::-1], k) for k in range(4)]
    same_depth = stored.dtype == upright.dtype
    for turn in turns:
        candidate = turn(stored)
        if candidate.shape != upright.shape:
            continue
        if np.array_equal(candidate, upright) or (not same_depth and np.array_equal(_to_8_bit(candidate), _to_8_bit(upright))):
            return turn
    return None


def _encode_to(path: Path, pixels: np.ndarray, suffix: str) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    try:
        with _native_stderr_silenced():
            ok, buf = cv2.imencode(suffix, np.ascontiguousarray(pixels), params)
    except cv2.error:
        ok = False
    if not ok:
        raise SserdError(f"{path}: cannot write images of type {suffix}")
    buf.tofile(str(path))


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence what native libraries write straight to file descriptor 2 (libpng's "IDAT: CRC error",
    OpenCV's "[ WARN:0@...]"), which Python's own stderr does not see."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # no usable stderr (a closed terminal): nothing to silence
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
