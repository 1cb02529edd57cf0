"""Everything in a source besides its (first) video stream, carried into the output beside the new video.

Every audio stream is copied packet for packet; one whose codec the output container cannot hold is
re-encoded to the container's own audio codec. Every other stream (subtitles, data such as timecode,
attachments, further video streams) is copied when the container can hold it; what it cannot hold (SubRip
subtitles in MP4, a data stream in Matroska) is named in a note: nothing is dropped without a word.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from ..errors import SserdError
from .decode import time_to_pts
from .probe import VideoInfo

Note = Callable[[str], None]

PACKETED = ("audio", "video", "subtitle", "data")  # stream types whose content comes as packets


def stream_label(stream) -> str:
    """``audio stream 2 (opus, language eng)``: how a note names a stream."""
    ctx = stream.codec_context if stream.type in ("audio", "video", "subtitle") else None
    details = [name] if (name := getattr(ctx, "name", None)) else []
    language = stream.metadata.get("language")
    if language and language != "und":
        details.append(f"language {language}")
    return f"{stream.type} stream {stream.index}" + (f" ({', '.join(details)})" if details else "")


def add_copy(out: av.container.OutputContainer, stream):
    """An output stream that takes ``stream``'s packets unchanged (codec parameters and tags copied);
    ValueError when the container cannot hold its codec."""
    copy = out.add_stream_from_template(stream, opaque=True)
    for key, value in stream.metadata.items():
        if key.lower() in ("language", "title", "handler_name"):
            copy.metadata[key] = value
    return copy


class Track:
    """One carried stream: its source stream, its output stream, and the start of the kept span in its
    own time base."""

    def __init__(self, source, out, start_pts: int):
        self.source, self.out, self.start_pts = source, out, start_pts

    def emit(self, packet: av.Packet) -> None:
        if self.start_pts and packet.pts < self.start_pts:
            return  # before the trimmed span (untrimmed, the codec's priming packets at pts < 0 are kept)
        packet.pts -= self.start_pts
        if packet.dts is not None:
            packet.dts -= self.start_pts
        packet.stream = self.out
        self.out.container.mux(packet)

    def finish(self) -> None:
        pass


class ReencodedAudio(Track):
    """An audio stream the container cannot hold as it is, decoded and encoded to the container's codec."""

    def __init__(self, source, out, start_pts: int):
        super().__init__(source, out, start_pts)
        fmt = out.codec_context.codec.audio_formats[0].name
        self.resampler = av.AudioResampler(format=fmt, layout=source.layout, rate=source.rate)

    def emit(self, packet: av.Packet) -> None:
        for frame in self.source.decode(packet):
            if frame.pts is not None and frame.pts < self.start_pts:
                continue
            frame.pts = None  # let the resampler/encoder count samples from zero
            for out_frame in self.resampler.resample(frame):
                self.out.container.mux(self.out.encode(out_frame))

    def finish(self) -> None:
        self.out.container.mux(self.out.encode(None))


def holds(format_name: str, stream) -> bool:
    """Whether a container of ``format_name`` takes ``stream``'s packets as they are. Asked of a throwaway
    container in memory, header written: some muxers accept the stream and refuse only their header
    (a data stream in Matroska), when it is too late to leave the stream out."""
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as trial:
            trial.add_stream_from_template(stream, opaque=True)
            trial.start_encoding()
    except (ValueError, av.FFmpegError):
        return False
    return True


def open_tracks(src: av.container.InputContainer, out: av.container.OutputContainer, start: float,
                note: Note | None, reencode: bool = True) -> list[Track]:
    """A :class:`Track` for every stream of ``src`` but its first video stream that ``out`` can take.

    ``start`` (seconds of the source's own clock) is where the kept span begins. With ``reencode`` False
    (a bit-exact remux), an audio codec the container cannot hold is a :class:`SserdError` instead of a
    conversion."""
    video = src.streams.video[0] if src.streams.video else None
    tracks: list[Track] = []
    suffix = Path(out.name).suffix
    for stream in src.streams:
        if video is not None and stream.index == video.index:
            continue
        start_pts = time_to_pts(start, stream.time_base) if start else 0
        if holds(out.format.name, stream):
            copy = add_copy(out, stream)
            if stream.type in PACKETED:  # an attachment (a font in Matroska) is all in the stream's header
                tracks.append(Track(stream, copy, start_pts))
            continue
        if stream.type == "audio" and reencode:
            # the container cannot hold this codec (e.g. AAC in WebM): re-encode with the container's default
            name = out.default_audio_codec
            new = out.add_stream(name, rate=stream.rate)
            new.layout = stream.layout
            for key in ("language", "title"):
                if key in stream.metadata:
                    new.metadata[key] = stream.metadata[key]
            tracks.append(ReencodedAudio(stream, new, start_pts))
            _tell(note, f"{stream_label(stream)} re-encoded to {name}: the {suffix} container cannot hold "
                        f"{stream.codec_context.name}")
        elif stream.type == "audio":
            raise SserdError(f"{out.name}: the {suffix} container cannot hold {stream_label(stream)} as it is")
        else:
            hint = "; an .mkv output keeps it" if stream.type == "subtitle" and suffix != ".mkv" else ""
            _tell(note, f"{stream_label(stream)} is not carried over: the {suffix} container cannot hold it{hint}")
    return tracks


def _tell(note: Note | None, message: str) -> None:
    if note is not None:
        note(message)


class StreamCarrier:
    """Carries a source's audio and subtitle streams into ``out`` as the video is written: packets are
    muxed up to the time of each video frame, so the streams interleave."""

    def __init__(self, info: VideoInfo, out: av.container.OutputContainer, start: float | None, note: Note | None):
        self.source = av.open(str(info.path), "r")
        try:
            # trimmed: the kept span starts ``start`` seconds after the first video frame
            origin = float(info.start_pts * info.time_base)
            self.start = origin + start if start else 0.0
            self.tracks = {t.source.index: t for t in open_tracks(self.source, out, self.start, note)}
            streams = [t.source for t in self.tracks.values()]
            if self.start and streams:
                first = streams[0]
                self.source.seek(time_to_pts(self.start, first.time_base), stream=first, backward=True)
            self._packets = self.source.demux(*streams) if streams else iter(())
        except BaseException:
            self.source.close()
            raise
        self._pending: av.Packet | None = None

    def write_until(self, seconds: float | None) -> None:
        """Mux packets up to ``seconds`` of output time (everything left when None)."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            track = self.tracks.get(packet.stream_index)
            if track is None or packet.size == 0 or packet.pts is None:
                continue
            if seconds is not None and packet.pts >= track.start_pts + int(Fraction(seconds) / track.source.time_base):
                self._pending = packet
                return
            track.emit(packet)

    def finish(self, end: float | None) -> None:
        self.write_until(end)
        for track in self.tracks.values():
            track.finish()

    def close(self) -> None:
        self.source.close()
