"""Streaming video encode with PyAV, with the source's audio (and subtitles) carried over.

The output keeps the source's stored size, time base, frame pts and rotation (display matrix). Every
audio stream's packets are copied unchanged, interleaved with the video as it is written; only when the
output container cannot hold an audio codec is that stream re-encoded (and the caller is told why); see
:mod:`.carry`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import SserdError
from .carry import StreamCarrier, open_tracks
from .probe import VideoInfo, _reason

Note = Callable[[str], None]


@dataclass(frozen=True)
class EncodeSettings:
    """How edited video is encoded. ``lossless`` writes RGB H.264 at qp 0 (exact pixels; large files),
    for checking the pipeline itself without codec loss hiding anything."""

    crf: int = 18
    preset: str = "medium"
    lossless: bool = False


def _video_codec(suffix: str, settings: EncodeSettings) -> tuple[str, str, dict[str, str]]:
    """(codec, pixel format, options) for an output file with this suffix."""
    if suffix == ".webm":
        if settings.lossless:
            raise SserdError("--lossless needs an .mp4, .mov or .mkv output (WebM holds no lossless RGB codec)")
        return "libvpx-vp9", "yuv420p", {"crf": str(settings.crf), "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
    # AVI has no presentation timestamps, so frames must not be reordered: no B-frames there
    extra = {"bf": "0"} if suffix == ".avi" else {}
    if settings.lossless:
        return "libx264rgb", "rgb24", {"qp": "0", "preset": settings.preset, **extra}
    return "libx264", "yuv420p", {"crf": str(settings.crf), "preset": settings.preset, **extra}


class VideoWriter:
    """Write frames (in the source's time base) to ``path``; copy the source's audio and subtitles alongside.

    ``start``/``end`` (seconds from the first frame) are the trimmed span: times are shifted so the output
    starts at the first kept frame, and only the audio of that span is carried over.
    """

    def __init__(self, path: Path, info: VideoInfo, settings: EncodeSettings = EncodeSettings(),
                 start: float | None = None, note: Note | None = None):
        self.info = info
        self.offset_pts: int | None = None if start else 0
        self._tagged = False
        self._start = start or 0.0
        codec, pix_fmt, options = _video_codec(Path(path).suffix.lower(), settings)
        try:
            self.container = av.open(str(path), "w")
        except (av.FFmpegError, ValueError) as exc:
            raise SserdError(f"{path}: cannot create the output ({_reason(exc)}); use .mp4, .mov, .mkv, .webm or .avi") from None
        try:
            self.stream = self.container.add_stream(codec, rate=info.rate or Fraction(25))
            self.stream.width, self.stream.height = info.width, info.height
            if pix_fmt == "yuv420p" and (info.width % 2 or info.height % 2):
                pix_fmt = "yuv444p"  # 4:2:0 needs even sizes; keep the source's exact size instead
            self.stream.pix_fmt = pix_fmt
            self.pix_fmt = pix_fmt
            self.stream.time_base = info.time_base
            # the encoder counts in the source's time base too: 1/rate would round VFR pts together
            self.stream.codec_context.time_base = info.time_base
            self.stream.options = options
            self.stream.thread_type = "AUTO"
            if info.rotation:
                self.stream.set_display_rotation(info.rotation)
            self.audio = StreamCarrier(info, self.container, start, note)
        except BaseException:
            self.container.close()
            raise

    def write(self, frame: av.VideoFrame) -> None:
        """Encode one frame; its pts is in the source's time base (shifted by the trim start)."""
        if self.offset_pts is None:
            self.offset_pts = frame.pts
        if not self._tagged:
            self._tagged = True
            if self.pix_fmt != "rgb24":  # tag the output with the source's colour matrix and range
                ctx = self.stream.codec_context
                ctx.colorspace, ctx.color_range = frame.colorspace, frame.color_range
                ctx.color_primaries, ctx.color_trc = frame.color_primaries, frame.color_trc
        pts = frame.pts - self.offset_pts
        frame.pts = pts
        frame.time_base = self.info.time_base
        if self.audio is not None:
            self.audio.write_until(float(pts * self.info.time_base))
        try:
            self.container.mux(self.stream.encode(frame))
        except av.FFmpegError as exc:
            raise SserdError(f"{self.info.path}: encoding failed at pts {pts} ({_reason(exc)})") from None

    def close(self, end: float | None = None) -> None:
        """Flush the encoder and the rest of the audio (up to ``end`` seconds of source time) and close."""
        try:
            self.container.mux(self.stream.encode(None))
            if self.audio is not None:
                self.audio.finish(None if end is None else end - self._start)
        except av.FFmpegError as exc:
            raise SserdError(f"{self.info.path}: writing the output failed ({_reason(exc)})") from None
        finally:
            self.abort()

    def abort(self) -> None:
        if self.audio is not None:
            self.audio.close()
        self.container.close()


def copy_streams(info: VideoInfo, path: Path, note: Note | None = None) -> None:
    """Write ``info.path``'s video, audio and subtitle streams unchanged into ``path`` (a packet remux).
    A video or audio stream the container cannot hold is a :class:`SserdError`; a subtitle or other stream
    it cannot hold is left out and named through ``note``."""
    with av.open(str(info.path), "r") as src, av.open(str(path), "w") as out:
        video = src.streams.video[0]
        try:
            copy = out.add_stream_from_template(video, opaque=True)
        except ValueError as exc:
            raise SserdError(f"{path}: {exc}; choose an output extension that can hold it (e.g. .mkv)") from None
        if info.rotation:
            copy.set_display_rotation(info.rotation)
        tracks = {t.source.index: t for t in open_tracks(src, out, 0.0, note, reencode=False)}
        for packet in src.demux(video, *(t.source for t in tracks.values())):
            # only the demuxer's empty flush packets are skipped: Matroska leaves the dts of reordered
            # (B-frame) video unset, keyframes included, and the muxer derives it
            if packet.size == 0 or (packet.dts is None and packet.pts is None):
                continue
            if packet.stream_index == video.index:
                packet.stream = copy
                out.mux(packet)
            else:
                tracks[packet.stream_index].emit(packet)
