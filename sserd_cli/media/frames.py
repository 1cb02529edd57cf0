"""Pixels in and out of decoded frames, in the source's own colour space.

Decoded frames become RGB for the face work; edited RGB goes back into the encoder's pixel format with
the source's colour matrix and range (a BT.709 video stays BT.709 instead of being re-read as BT.601).
Each :class:`FrameConverter` keeps one swscale context, so the conversion set-up is paid once per run,
not once per frame; use one converter per thread (a swscale context is not thread-safe).
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

UNSPECIFIED_COLORSPACE = 2  # AVCOL_SPC_UNSPECIFIED: swscale's default matrix (BT.601) applies
# planar formats whose planes a rectangle can be written into: chroma subsampling (x, y) of each
PATCHABLE = {"yuv420p": (2, 2), "yuvj420p": (2, 2), "yuv422p": (2, 1), "yuv444p": (1, 1)}


class FrameConverter:
    """Decoded frame -> RGB array, and RGB array -> frame in a given pixel format (one thread only)."""

    def __init__(self):
        self._reformatter = VideoReformatter()

    def to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """RGB uint8 [H, W, 3], honouring the frame's colour tags (same size, so POINT loses nothing)."""
        return self._reformatter.reformat(frame, format="rgb24", interpolation="POINT").to_ndarray()

    def from_rgb(self, rgb: np.ndarray, like: av.VideoFrame, pix_fmt: str) -> av.VideoFrame:
        """A ``pix_fmt`` frame showing ``rgb`` with ``like``'s pts, time base and colour tags."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if pix_fmt != "rgb24":
            kwargs = {}
            if like.colorspace != UNSPECIFIED_COLORSPACE:
                kwargs["dst_colorspace"] = like.colorspace
            if like.color_range:
                kwargs["dst_color_range"] = like.color_range
            frame = self._reformatter.reformat(frame, format=pix_fmt, **kwargs)  # bilinear: chroma averaged
            frame.colorspace = like.colorspace
            frame.color_range = like.color_range
        frame.pts = like.pts
        frame.time_base = like.time_base
        return frame

    def patched(self, like: av.VideoFrame, rgb: np.ndarray, region: tuple | None, pix_fmt: str) -> av.VideoFrame:
        """The frame showing ``rgb`` where ``rgb`` differs from the decoded frame ``like`` only inside ``region``
        (x0, y0, x1, y1; None: anywhere): ``like``'s own planes with that rectangle alone converted from RGB.
        Outside it the source's pixels stay bit for bit (no RGB round trip of the whole frame), and the cost
        follows the face, not the frame. Formats that cannot be patched are converted whole."""
        if region is None or like.format.name != pix_fmt or pix_fmt not in PATCHABLE:
            return self.from_rgb(rgb, like, pix_fmt)
        x0, y0, x1, y1 = region
        if x1 <= x0 or y1 <= y0:
            return like  # nothing changed: the decoded frame itself
        sx, sy = PATCHABLE[pix_fmt]
        h, w = rgb.shape[:2]
        # whole chroma samples only: the rectangle grows to the subsampling grid
        x0, y0 = x0 - x0 % sx, y0 - y0 % sy
        x1, y1 = min(w, x1 + (-x1) % sx), min(h, y1 + (-y1) % sy)
        part = self.from_rgb(rgb[y0:y1, x0:x1], like, pix_fmt)
        out = av.VideoFrame(like.width, like.height, pix_fmt)
        for i, (dst, src, new) in enumerate(zip(out.planes, like.planes, part.planes)):
            fx, fy = (1, 1) if i == 0 else (sx, sy)
            target = _plane(dst)
            target[:] = _plane(src)
            target[y0 // fy:y0 // fy + new.height, x0 // fx:x0 // fx + new.width] = _plane(new)
        out.pts, out.time_base = like.pts, like.time_base
        out.colorspace, out.color_range = like.colorspace, like.color_range
        return out


def _plane(plane) -> np.ndarray:
    """An 8-bit plane's pixels as a [height, width] view (its padding to the line size left out)."""
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width]
