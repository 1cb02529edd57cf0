"""What a source file is: a still image or a video, and the facts about its video and audio streams.

Every way a file can be unusable (missing, a folder, not a media file, no video stream, no frames,
damaged) ends here as one :class:`~sserd_cli.errors.SserdError` line that names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import SserdError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file. ``width``/``height`` are the stored (coded) size; ``rotation`` is the
    counter-clockwise angle of its display matrix (0, 90, 180, 270), as phones write for portrait video."""

    path: Path
    width: int
    height: int
    rotation: int
    time_base: Fraction
    rate: Fraction | None
    frames: int  # from the container header; 0 when it does not say
    duration: float  # seconds, 0.0 when unknown
    codec: str
    audio_codec: str | None
    bit_depth: int = 8  # bits per sample of the decoded pixels (10 for most HDR and pro footage)
    start_pts: int = 0  # pts of the first frame: time 0 as a player counts it (--start, --span)

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def check_readable(path: str | Path) -> Path:
    """The path as a Path if it is an existing readable file, else a clear error."""
    path = Path(path)
    if not path.exists():
        raise SserdError(f"{path}: no such file")
    if path.is_dir():
        raise SserdError(f"{path}: is a folder, not a video or image file")
    if path.stat().st_size == 0:
        raise SserdError(f"{path}: the file is empty (0 bytes): nothing to edit")
    return path


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path``, check it has a decodable video stream with at least one frame, and describe it."""
    path = check_readable(path)
    try:
        container = av.open(str(path), "r")
    except av.error.EOFError:
        raise SserdError(f"{path}: the file ends before any video data (zero-length or truncated video)") from None
    except av.error.InvalidDataError as exc:
        raise SserdError(f"{path}: not a video file this build can read, or its header is damaged ({_reason(exc)})") from None
    except av.FFmpegError as exc:
        raise SserdError(f"{path}: cannot open ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise SserdError(f"{path}: has no video stream (an audio-only or zero-length file)")
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        first = _first_frame(container, stream, path)
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            rotation=int(first.rotation) % 360,
            time_base=stream.time_base or Fraction(1, 90000),
            rate=stream.average_rate or stream.guessed_rate,
            frames=int(stream.frames or 0),
            duration=duration,
            codec=stream.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None and audio.codec_context is not None else None,
            bit_depth=max((c.bits for c in first.format.components), default=8),
            start_pts=int(first.pts or 0),
        )


def _first_frame(container, stream, path: Path):
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise SserdError(f"{path}: the video is damaged and cannot be decoded ({_reason(exc)})") from None
    raise SserdError(f"{path}: the video has no frames (zero-length or truncated)")


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno and file name PyAV adds."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".")
