"""Streaming video encode with PyAV, with the source's audio carried over.

The output keeps the source's stored size, time base, frame pts and rotation (display matrix). Audio
packets are copied unchanged, interleaved with the video as it is written; only when the output
container cannot hold the source's audio codec is the audio re-encoded (and the caller is told why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import SserdError
from .decode import time_to_pts
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
    """Write frames (in the source's time base) to ``path``; copy the source's audio alongside.

    ``start``/``end`` (seconds) are the trimmed span: times are shifted so the output starts at the
    first kept frame, and only the audio of that span is carried over.
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
            self.audio = AudioCarrier(info, self.container, self._start, note) if info.has_audio else None
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


class AudioCarrier:
    """Carries the source's first audio stream into ``out``: packet copy, or re-encode if it must."""

    def __init__(self, info: VideoInfo, out: av.container.OutputContainer, start: float, note: Note | None):
        self.source = av.open(str(info.path), "r")
        self.src_stream = self.source.streams.audio[0]
        tb = self.src_stream.time_base
        self.start_pts = time_to_pts(start, tb) or 0
        if self.start_pts:
            self.source.seek(self.start_pts, stream=self.src_stream, backward=True)
        self._packets = self.source.demux(self.src_stream)
        self._pending: av.Packet | None = None
        self.resampler = None
        try:
            self.stream = out.add_stream_from_template(self.src_stream)
            self.copy = True
        except ValueError:
            # the container cannot hold this codec (e.g. AAC in WebM): re-encode with the container's default
            name = out.default_audio_codec
            self.stream = out.add_stream(name, rate=self.src_stream.rate)
            self.stream.layout = self.src_stream.layout
            self.copy = False
            fmt = self.stream.codec_context.codec.audio_formats[0].name
            self.resampler = av.AudioResampler(format=fmt, layout=self.src_stream.layout, rate=self.src_stream.rate)
            if note is not None:
                note(f"audio re-encoded from {self.src_stream.codec_context.name} to {name}: "
                     f"the {Path(out.name).suffix} container cannot hold {self.src_stream.codec_context.name}")

    def write_until(self, seconds: float | None) -> None:
        """Mux audio up to ``seconds`` of output time (everything left when None)."""
        tb = self.src_stream.time_base
        limit = None if seconds is None else self.start_pts + int(seconds / tb)
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            if packet.size == 0 or packet.pts is None:
                continue
            if limit is not None and packet.pts >= limit:
                self._pending = packet
                return
            self._emit(packet)

    def finish(self, end: float | None) -> None:
        self.write_until(end)
        if not self.copy:
            self._encode(None)

    def _emit(self, packet: av.Packet) -> None:
        if self.start_pts and packet.pts < self.start_pts:
            return  # before the trimmed span (untrimmed, the codec's priming packets at pts < 0 are kept)
        if self.copy:
            packet.pts -= self.start_pts
            if packet.dts is not None:
                packet.dts -= self.start_pts
            packet.stream = self.stream
            self.stream.container.mux(packet)
        else:
            for frame in self.src_stream.decode(packet):
                if frame.pts is not None and frame.pts < self.start_pts:
                    continue
                frame.pts = None  # let the resampler/encoder count samples from zero
                for out_frame in self.resampler.resample(frame):
                    self._encode(out_frame)

    def _encode(self, frame) -> None:
        self.stream.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.source.close()


def copy_streams(info: VideoInfo, path: Path) -> None:
    """Write ``info.path``'s video and first audio stream unchanged into ``path`` (a packet remux)."""
    with av.open(str(info.path), "r") as src, av.open(str(path), "w") as out:
        streams = [src.streams.video[0]] + ([src.streams.audio[0]] if src.streams.audio else [])
        try:
            mapping = {s.index: out.add_stream_from_template(s, opaque=True) for s in streams}
        except ValueError as exc:
            raise SserdError(f"{path}: {exc}; choose an output extension that can hold it (e.g. .mkv)") from None
        if info.rotation:
            mapping[streams[0].index].set_display_rotation(info.rotation)
        for packet in src.demux(*streams):
            if packet.size == 0 or packet.dts is None:
                continue
            packet.stream = mapping[packet.stream_index]
            out.mux(packet)
