"""`sserd edit` as one streaming process: frames -> faces -> model batches -> paste-back -> encoder.

Four stages (five with transfer rendering) overlap in threads joined by bounded pipes (see :mod:`.stages`):

1. decode (PyAV, FFmpeg's own threads): frames with their pts, turned upright by the rotation metadata,
   each with the edit's presence and per-target strengths at its time (see :mod:`.spans`);
2. faces: detect the main face, track and smooth its alignment over a bounded look-ahead window, in the
   frames some span reaches (the others need no face work);
3. model: aligned crops in batches through the model, their codes smoothed over a bounded look-ahead
   (see :mod:`.temporal`); with ``--render generate`` the render is pasted back with a feathered mask here;
4. paste (``--render transfer``, the default): the motion from each frame's plain render to its edited one,
   and a bounded residual, carried onto the frame's own pixels (see :mod:`sserd_cli.faces.transfer`), beside
   the next batch's networks;
5. encode (the calling thread): frames without a face (or outside every span) are re-encoded from the
   decoded frame itself, audio and subtitle packets are copied alongside, all into a temporary file that
   is renamed at the end.

Memory is bounded by the pipe capacities and the tracker's window, never by the video's length.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from ..errors import SserdError
from ..media.atomic import atomic_output, check_output, temp_path_for
from ..media.decode import decode_frames
from ..media.encode import EncodeSettings, VideoWriter, copy_streams
from ..media.frames import FrameConverter
from ..media.image import read_still, write_still
from ..media.probe import VIDEO_SUFFIXES, is_image_path, probe_video
from ..faces.transfer import TransferSettings
from .faces import RENDER_MODES, DeferredTransfer, FaceFollower, FaceSettings, Transfer, crop_and_paste
from .domain import DomainGate, TransferGate
from .models import EditModel, LatentModel
from .spans import Timeline, describe
from .stages import END, Pipe, Run, Stopped, feed
from .temporal import SmoothSettings, TemporalEditor

Observer = Callable[[int, "np.ndarray | None"], None]


@dataclass(frozen=True)
class EditOptions:
    """Settings of one edit run (the CLI's options, minus the model and targets). ``timeline`` says which
    frames are edited, how strongly and towards which target; ``start``/``end`` (seconds) trim the output
    to that stretch (``--trim``); None keeps the whole video."""

    batch_size: int = 8
    timeline: Timeline = field(default_factory=Timeline)
    start: float | None = None
    end: float | None = None
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    color_match: bool = False
    smooth: SmoothSettings = field(default_factory=SmoothSettings)  # over time (see .temporal)
    force: bool = False  # edit even a face the model does not know (see .domain)
    render: str = "transfer"  # "transfer": the edit's motion on the source's pixels; "generate": G's render pasted
    transfer: TransferSettings = field(default_factory=TransferSettings)
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
    stages: dict[str, float] = field(default_factory=dict)  # seconds each stage worked (see stages.Run.busy)
    waits: dict[str, float] = field(default_factory=dict)  # seconds each stage waited on its pipes

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
    rgb: np.ndarray | None  # None outside every span: no face work there
    m: np.ndarray | None = None
    edited: np.ndarray | None = None
    presence: float = 1.0  # how much of the model's face is blended in (see spans.Timeline.at)
    weights: np.ndarray | None = None  # strength towards each target; None: 1 towards the only one
    transfer_job: tuple | None = None  # (plain render, edited render, source crop) for the paste stage
    # the rectangle (x0, y0, x1, y1) of the upright frame outside which ``edited`` is the decoded frame's own
    # pixels: only it is converted back to the encoder's format (None: the whole frame)
    changed: tuple | None = None
    # ``rgb`` is this item's own array (a decoded frame's conversion): the edit is written into it, no copy
    owns_rgb: bool = False


def edit_path(source: str | Path, output: str | Path, model: EditModel, options: EditOptions = EditOptions(), *,
              overwrite: bool = False, progress=None, note: Callable[[str], None] | None = None,
              observer: Observer | None = None) -> EditReport:
    """Edit one video or still image into ``output`` (written atomically); see :func:`edit_video`."""
    source = Path(source)
    output = Path(output)
    if is_image_path(source):
        if not is_image_path(output):
            raise SserdError(f"{output}: a still image source needs an image output (e.g. {output.with_suffix(source.suffix).name})")
        if not options.timeline.whole or options.start is not None or options.end is not None:
            raise SserdError(f"{source}: a still image has no time: edit it without --start, --end, --span or --trim")
        check_output(output, overwrite, (source,))
        return edit_image(source, output, model, options, note=note, observer=observer)
    info = probe_video(source)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        hint = f"; to write into a folder, end -o with / ({output.name}/)" if not output.suffix else ""
        raise SserdError(f"{output}: a video source needs a video output (.mp4, .mov, .mkv, .webm or .avi){hint}")
    check_output(output, overwrite, (source,))
    return edit_video(info, output, model, options, progress=progress, note=note, observer=observer)


def edit_image(source: Path, output: Path, model: EditModel, options: EditOptions = EditOptions(), *,
               note=None, observer: Observer | None = None) -> EditReport:
    started = time.perf_counter()
    still = read_still(source)
    rgb = still.rgb
    report = EditReport(source, output, frames=1)
    for message in still.notes:
        _say(note, report, f"{source}: {message}")
    follower = FaceFollower(options.faces, model.resolution, model.zoom)
    m = follower.align_still(rgb)
    if observer is not None:
        observer(0, m)
    weights = options.timeline.at(0.0)[1]  # a still is edited as the first frame of a whole-video edit
    with atomic_output(output) as temp:
        if m is None:
            _say(note, report, f"{source}: no face found: the output is the input unchanged")
            if source.suffix.lower() == output.suffix.lower():
                shutil.copyfile(source, temp)
            else:
                for loss in write_still(temp, still, None, output.suffix):
                    _say(note, report, f"{output}: {loss}")
            report.passed = 1
        else:
            item = FrameItem(0, None, rgb, m, weights=weights)  # not owned: the still's rgb stays for the checks
            transfer = _transfer(model, options)
            gate = _gate(model, options, transfer, source)
            gate.see([item])
            gate.finish()
            _say_forced(gate, note, report)
            crop_and_paste([item], model, options.color_match, transfer)
            for loss in write_still(temp, still, item.edited, output.suffix):
                _say(note, report, f"{output}: {loss}")
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
    timeline = options.timeline
    _check_spans_in_video(info, timeline)
    in_span = [0] * len(timeline.spans)  # frames inside each span, counted by the decode stage
    with atomic_output(output) as temp:
        run, writer = Run(), None
        try:
            writer = VideoWriter(temp, info, options.encode, start=options.start, note=lambda s: _say(note, report, s))
            decoded = Pipe(run, options.pipe_frames)
            located = Pipe(run, options.pipe_frames)
            modelled = Pipe(run, options.pipe_frames)
            done = Pipe(run, options.pipe_frames)
            run.start("decode", lambda: feed(run, _decoded_items(info, options, in_span), decoded))
            run.start("faces", lambda: _face_stage(run, decoded, located, options, model))
            # transfer's flow and warp run in a stage of their own, beside the next batch's networks
            deferred = _transfer(model, options, DeferredTransfer)
            gate = _gate(model, options, _transfer(model, options), info.path)
            run.start("model", lambda: _model_stage(run, located, modelled if deferred else done, model, options,
                                                    gate, deferred))
            if deferred is not None:
                run.start("paste", lambda: _paste_stage(run, modelled, done, deferred))
            converter = FrameConverter()
            encode_started = time.perf_counter()
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
            # this run's pipes are new: all the calling thread waited on them was in the loop above
            encode_waited = run.waits[threading.current_thread().name]
            report.stages["encode"] = time.perf_counter() - encode_started - encode_waited
            report.waits["encode"] = encode_waited
        except BaseException:
            run.close()
            if writer is not None:
                writer.abort()
            raise
        run.close()
        report.stages = {**run.busy(), **report.stages}
        report.waits = {**{name: run.waits.get(f"sserd-{name}", 0.0) for name in run.walls}, **report.waits}
        _say_forced(gate, note, report)
        if report.frames == 0:
            raise SserdError(f"{info.path}: no frames between --start and --end")
        if not any(in_span):
            raise SserdError(f"{info.path}: no frame lies in {_spans_text(timeline)}"
                             + (f"; the video is {info.duration:.2f} s long" if info.duration else ""))
        for span, count in zip(timeline.spans, in_span):
            if count == 0 and not trimmed:
                _say(note, report, f"{info.path}: no frame lies in the span {describe(span)}: nothing edited there")
        if not trimmed and info.frames and report.frames < info.frames:
            _say(note, report, f"{info.path}: the video ended after {report.frames} of the {info.frames} frames "
                               "its header announces: the file may be truncated")
        where = "any frame" if timeline.whole else _spans_text(timeline)  # frames outside the spans are not searched
        copied = report.edited == 0 and not trimmed and _copy_instead(info, temp, output)
        if copied:
            _say(note, report, f"{info.path}: no face found in {where}: the output is the input unchanged")
        else:
            if report.edited == 0:
                _say(note, report, f"{info.path}: no face found in {where}: the frames were re-encoded unchanged")
            if info.bit_depth > 8:
                _say(note, report, f"{info.path}: the source is {info.bit_depth}-bit video; the output is 8-bit "
                                   f"({writer.pix_fmt})")
    report.seconds = time.perf_counter() - started
    return report


def _copy_instead(info, temp: Path, output: Path) -> bool:
    """Nothing was edited: replace the re-encoded ``temp`` by the source's own streams, bit for bit, when
    the output container can hold them (else the re-encoded frames stay: an .avi muxer refuses some
    codecs only when it writes). The notes about streams that cannot be carried were given while writing
    ``temp``; the copy would only repeat them."""
    copy = temp_path_for(output)
    try:
        copy_streams(info, copy)
        os.replace(copy, temp)
        return True
    except (SserdError, av.FFmpegError):
        return False
    finally:
        copy.unlink(missing_ok=True)


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


def _decoded_items(info, options: EditOptions, in_span: list[int]) -> Iterator[FrameItem]:
    turns = (info.rotation // 90) % 4
    converter = FrameConverter()
    timeline = options.timeline
    for index, frame in enumerate(decode_frames(info, options.start, options.end)):
        t = float((frame.pts - info.start_pts) * info.time_base)  # seconds as a player counts them
        presence, weights = timeline.at(t)
        span = timeline.span_index(t)
        if span is not None:
            in_span[span] += 1
        if presence <= 0:
            yield FrameItem(index, frame, None, presence=0.0)  # passed through: no pixels needed
            continue
        rgb = converter.to_rgb(frame)
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, turns))  # upright, as a player shows it
        yield FrameItem(index, frame, rgb, presence=presence, weights=weights, owns_rgb=True)


def _face_stage(run: Run, inbox: Pipe, outbox: Pipe, options: EditOptions, model: EditModel) -> None:
    follower = FaceFollower(options.faces, model.resolution, model.zoom)
    # the face is followed through each stretch of frames that some span reaches, afresh in each one;
    # the frames between pass straight on
    for active, items in itertools.groupby(inbox, key=lambda item: item.presence > 0):
        for item in follower.follow(items) if active else items:
            outbox.put(item)
    outbox.put(END)


def _check_spans_in_video(info, timeline: Timeline) -> None:
    """Spans that all start after the end of the video are a mistake to say before any work."""
    if info.duration > 0 and all(span.start >= info.duration for span in timeline.spans):
        raise SserdError(f"{info.path}: no frame lies in {_spans_text(timeline)}; the video is "
                         f"{info.duration:.2f} s long")


def _spans_text(timeline: Timeline) -> str:
    if len(timeline.spans) == 1:
        return f"the span {describe(timeline.spans[0])}"
    return "the spans " + ", ".join(describe(s) for s in timeline.spans)


def _transfer(model: EditModel, options: EditOptions, kind: type = Transfer) -> Transfer | None:
    """A ``kind`` of :class:`Transfer` for a transfer run (one per thread that uses it), None to generate."""
    if options.render not in RENDER_MODES:
        raise SserdError(f"unknown render mode '{options.render}': use {' or '.join(RENDER_MODES)}")
    return kind(model, options.transfer) if options.render == "transfer" else None


def _gate(model: EditModel, options: EditOptions, transfer: Transfer | None, source):
    """The check before anything is written: in generate mode, does the model know the face; in transfer mode,
    does the face survive the edit's motion (see :mod:`.domain`)."""
    if transfer is None or not isinstance(model, LatentModel):
        return DomainGate(model, options.force, source)
    return TransferGate(model, transfer, options.force, source)


def _model_stage(run: Run, inbox: Pipe, outbox: Pipe, model: EditModel, options: EditOptions, gate,
                 transfer: Transfer | None = None) -> None:
    editor = TemporalEditor(model, options.smooth, options.batch_size, options.color_match, gate, transfer)
    for item in inbox:
        for ready in editor.push(item):
            outbox.put(ready)
    for ready in editor.finish():
        outbox.put(ready)
    outbox.put(END)


def _paste_stage(run: Run, inbox: Pipe, outbox: Pipe, transfer: "DeferredTransfer") -> None:
    for item in inbox:
        transfer.finish(item)
        outbox.put(item)
    outbox.put(END)


def _say_forced(gate, note, report: EditReport) -> None:
    if gate.check is not None and not gate.check.known:
        _say(note, report, f"{gate.check.describe(gate.source)}; edited anyway (--force)")


def _output_frame(item: FrameItem, rotation: int, converter: FrameConverter, pix_fmt: str) -> av.VideoFrame:
    if item.edited is None:
        return item.frame  # untouched: encode the decoded frame itself, no colour round trip
    turns = (rotation // 90) % 4
    if turns:
        return converter.from_rgb(np.rot90(item.edited, -turns), item.frame, pix_fmt)
    return converter.patched(item.frame, item.edited, item.changed, pix_fmt)
