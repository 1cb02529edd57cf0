"""Streaming video decode with PyAV: frames flow out one at a time with their exact pts.

Nothing is kept beyond the frame in hand, so memory does not depend on the length of the video.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av

from ..errors import SserdError
from .probe import VideoInfo, _reason


def time_to_pts(seconds: float | None, time_base: Fraction) -> int | None:
    return None if seconds is None else int(round(Fraction(seconds).limit_denominator(10**6) / time_base))


def decode_frames(info: VideoInfo, start: float | None = None, end: float | None = None) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``info.path`` whose time lies in ``[start, end)`` seconds from the first frame (as a
    player counts them; whole video when None).

    Each frame keeps its own pts in the stream's time base (variable frame rate stays variable); frames
    without a usable pts (none, or not increasing) get the previous one plus one frame duration. FFmpeg decodes on its own threads.
    """
    start_pts = None if start is None else info.start_pts + time_to_pts(start, info.time_base)
    end_pts = None if end is None else info.start_pts + time_to_pts(end, info.time_base)
    step = _frame_step(info)
    try:
        container = av.open(str(info.path), "r")
    except av.FFmpegError as exc:
        raise SserdError(f"{info.path}: cannot open ({_reason(exc)})") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start:
            container.seek(start_pts, stream=stream, backward=True, any_frame=False)
        last = None
        index = 0
        try:
            for frame in container.decode(stream):
                pts = frame.pts
                if pts is None or (last is not None and pts <= last):
                    # no pts, or pts out of display order (AVI files written with B-frames): count frames
                    pts = (last + step) if last is not None else 0
                    frame.pts = pts
                last = pts
                if start_pts is not None and pts < start_pts:
                    continue
                if end_pts is not None and pts >= end_pts:
                    break
                index += 1
                yield frame
        except av.FFmpegError as exc:
            raise SserdError(f"{info.path}: the video is damaged after frame {index} ({_reason(exc)})") from None


def _frame_step(info: VideoInfo) -> int:
    if info.rate:
        return max(1, int(round(1 / (info.rate * info.time_base))))
    return 1
