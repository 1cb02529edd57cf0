"""`sserd edit` as one streaming process: frames -> faces -> model batches -> paste-back -> encoder.

Four stages overlap in threads joined by bounded pipes (see :mod:`.stages`):

1. decode (PyAV, FFmpeg's own threads): frames with their pts, turned upright by the rotation metadata;
2. faces: detect the main face, track and smooth its alignment over a bounded look-ahead window;
3. model: aligned crops in batches through the model, pasted back with a feathered mask;
4. encode (the calling thread): frames without a face are re-encoded from the decoded frame itself,
   audio packets are copied alongside, all into a temporary file that is renamed at the end.

Memory is bounded by the pipe capacities and the tracker's window, never by the video's length.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from ..errors import SserdError
from ..media.atomic import atomic_output, check_output
from ..media.decode import decode_frames
from ..media.encode import EncodeSettings, VideoWriter, copy_streams
from ..media.frames import FrameConverter
from ..media.image import read_image, write_image
from ..media.probe import VIDEO_SUFFIXES, is_image_path, probe_video
from .faces import FaceFollower, FaceSettings, crop_and_paste
from .models import EditModel
from .stages import END, Pipe, Run, Stopped, feed

Observer = Callable[[int, "np.ndarray | None"], None]


@dataclass(frozen=True)
class EditOptions:
    """Settings of one edit run (the CLI's options, minus the model and target)."""

    batch_size: int = 8
    start: float | None = None
    end: float | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    color_match: bool = False
    pipe_frames: int = 4  # frames queued between two stages (memory: ~3 pipes + look-ahead + batch)


@dataclass
class EditReport:
    """What one edit did, for the summary line."""

    source: Path
    output: Path
    frames: int = 0
    edited: int = 0
    passed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.output}: {self.edited} frames edited, {self.passed} passed through "
                f"in {self.seconds:.1f} s ({rate:.1f} fps)")


@dataclass
class FrameItem:
    """One frame in flight: the decoded frame (kept for exact pass-through), its upright RGB pixels,
    the frame -> crop alignment once the face stage found one, and the edited pixels."""

    index: int
    frame: av.VideoFrame | None
    rgb: np.ndarray
    m: np.ndarray | None = None
    edited: np.ndarray | None = None


def edit_path(source: str | Path, output: str | Path, model: EditModel, options: EditOptions = EditOptions(), *,
              overwrite: bool = False, progress=None, note: Callable[[str], None] | None = None,
              observer: Observer | None = None) -> EditReport:
    """Edit one video or still image into ``output`` (written atomically); see :func:`edit_video`."""
    source = Path(source)
    output = Path(output)
    if is_image_path(source):
        if not is_image_path(output):
            raise SserdError(f"{output}: a still image source needs an image output (e.g. {output.with_suffix(source.suffix).name})")
        check_output(output, overwrite, (source,))
        return edit_image(source, output, model, options, note=note, observer=observer)
    info = probe_video(source)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise SserdError(f"{output}: a video source needs a video output (.mp4, .mov, .mkv, .webm or .avi)")
    check_output(output, overwrite, (source,))
    return edit_video(info, output, model, options, progress=progress, note=note, observer=observer)


def edit_image(source: Path, output: Path, model: EditModel, options: EditOptions = EditOptions(), *,
               note=None, observer: Observer | None = None) -> EditReport:
    started = time.perf_counter()
    rgb = read_image(source)
    report = EditReport(source, output, frames=1)
    follower = FaceFollower(options.faces, model.resolution, model.zoom)
    m = follower.align_still(rgb)
    if observer is not None:
        observer(0, m)
    with atomic_output(output) as temp:
        if m is None:
            _say(note, report, f"{source}: no face found: the output is the input unchanged")
            if source.suffix.lower() == output.suffix.lower():
                shutil.copyfile(source, temp)
            else:
                write_image(temp, rgb, output.suffix)
            report.passed = 1
        else:
            item = FrameItem(0, None, rgb, m)
            crop_and_paste([item], model, options.color_match)
            write_image(temp, item.edited, output.suffix)
            report.edited = 1
    report.seconds = time.perf_counter() - started
    return report


def edit_video(info, output: Path, model: EditModel, options: EditOptions = EditOptions(), *,
               progress=None, note=None, observer: Observer | None = None) -> EditReport:
    """Stream ``info.path`` through the model into ``output``. ``progress(n)`` is called per encoded frame;
    ``observer(index, m)`` sees each frame's alignment (None = passed through) before it is encoded."""
    started = time.perf_counter()
    report = EditReport(info.path, output)
    trimmed = options.start is not None or options.end is not None
    with atomic_output(output) as temp:
        run, writer = Run(), None
        try:
            writer = VideoWriter(temp, info, options.encode, start=options.start, note=lambda s: _say(note, report, s))
            decoded = Pipe(run, options.pipe_frames)
            located = Pipe(run, options.pipe_frames)
            done = Pipe(run, options.pipe_frames)
            run.start("decode", lambda: feed(run, _decoded_items(info, options), decoded))
            run.start("faces", lambda: _face_stage(run, decoded, located, options, model))
            run.start("model", lambda: _model_stage(run, located, done, model, options))
            converter = FrameConverter()
            for item in _drain(run, done):
                if observer is not None:
                    observer(item.index, item.m if item.edited is not None else None)
                writer.write(_output_frame(item, info.rotation, converter, writer.pix_fmt))
                report.frames += 1
                if item.edited is not None:
                    report.edited += 1
                else:
                    report.passed += 1
                if progress is not None:
                    progress(1)
            writer.close(options.end)
        except BaseException:
            run.close()
            if writer is not None:
                writer.abort()
            raise
        run.close()
        if report.frames == 0:
            raise SserdError(f"{info.path}: no frames between --start and --end")
        if not trimmed and info.frames and report.frames < info.frames:
            _say(note, report, f"{info.path}: the video ended after {report.frames} of the {info.frames} frames "
                               "its header announces: the file may be truncated")
        if report.edited == 0 and not trimmed:
            # nothing to edit: hand back the source's own streams, bit for bit
            temp.unlink()
            copy_streams(info, temp)
            _say(note, report, f"{info.path}: no face found in any frame: the output is the input unchanged")
        else:
            if report.edited == 0:
                _say(note, report, f"{info.path}: no face found in any frame: the frames were re-encoded unchanged")
            if info.bit_depth > 8:
                _say(note, report, f"{info.path}: the source is {info.bit_depth}-bit video; the output is 8-bit "
                                   f"({writer.pix_fmt})")
    report.seconds = time.perf_counter() - started
    return report


def _say(note, report: EditReport, message: str) -> None:
    report.notes.append(message)
    if note is not None:
        note(message)


def _drain(run: Run, pipe: Pipe) -> Iterator[FrameItem]:
    """Items of the last pipe, in order; the first stage failure is re-raised here."""
    try:
        yield from pipe
    except Stopped:
        pass
    run.raise_error()


def _decoded_items(info, options: EditOptions) -> Iterator[FrameItem]:
    turns = (info.rotation // 90) % 4
    converter = FrameConverter()
    for index, frame in enumerate(decode_frames(info, options.start, options.end)):
        rgb = converter.to_rgb(frame)
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, turns))  # upright, as a player shows it
        yield FrameItem(index, frame, rgb)


def _face_stage(run: Run, inbox: Pipe, outbox: Pipe, options: EditOptions, model: EditModel) -> None:
    follower = FaceFollower(options.faces, model.resolution, model.zoom)
    for item in follower.follow(inbox):
        outbox.put(item)
    outbox.put(END)


def _model_stage(run: Run, inbox: Pipe, outbox: Pipe, model: EditModel, options: EditOptions) -> None:
    pending: list[FrameItem] = []
    for item in inbox:
        pending.append(item)
        if len(pending) >= options.batch_size:
            crop_and_paste(pending, model, options.color_match)
            for ready in pending:
                outbox.put(ready)
            pending = []
    crop_and_paste(pending, model, options.color_match)
    for ready in pending:
        outbox.put(ready)
    outbox.put(END)


def _output_frame(item: FrameItem, rotation: int, converter: FrameConverter, pix_fmt: str) -> av.VideoFrame:
    if item.edited is None:
        return item.frame  # untouched: encode the decoded frame itself, no colour round trip
    turns = (rotation // 90) % 4
    pixels = np.rot90(item.edited, -turns) if turns else item.edited
    return converter.from_rgb(pixels, item.frame, pix_fmt)
