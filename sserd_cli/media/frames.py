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
