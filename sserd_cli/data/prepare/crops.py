"""One video -> aligned face crops (PNG), its 16 kHz audio (WAV) and a per-clip index part.

Framing follows the paper (section 4.1): the face is aligned with the shared
5-point similarity alignment (:mod:`sserd_cli.faces.align`), the aligned image
is taken at ``resize`` pixels and centre-cropped to ``size`` (320 -> 256 by
default, a tighter face than the FFHQ framing). The centre crop is folded into
the warp (a zoom about the crop centre, :func:`sserd_cli.faces.align.zoom_alignment`,
the same one ``sserd edit`` applies), so it costs no extra resampling.

The per-clip part file is written last and atomically: its presence (with all
the crops it lists) is what makes a clip "done" for resuming.
"""

from __future__ import annotations

import json
import wave
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import SserdError
from ..index import write_via_temp
from .clips import ClipSource

PARTS_DIR = "parts"
CROPS_DIR = "crops"
AUDIO_DIR = "audio"
AUDIO_RATE = 16000


class BrokenVideo(Exception):
    """The video cannot be decoded (corrupt, truncated, no video stream)."""


def _why(exc: Exception) -> str:
    """FFmpeg's reason without the errno and file name (the report names the file)."""
    return getattr(exc, "strerror", None) or str(exc)


@dataclass(frozen=True)
class CropConfig:
    """How crops are made: ``resize`` is the aligned image side, ``size`` the centre crop kept."""

    size: int = 256
    resize: int = 320
    every_n_frames: int = 1
    detect_width: int = 640
    upsample: int = 1
    audio: bool = True

    def __post_init__(self):
        if self.size < 16 or self.resize < self.size:
            raise SserdError(f"crop size {self.size} must be >= 16 and not larger than the resize {self.resize}")
        if self.every_n_frames < 1:
            raise SserdError(f"--every-n-frames must be 1 or more, got {self.every_n_frames}")

    @property
    def offset(self) -> int:
        return (self.resize - self.size) // 2

    def framing(self) -> dict:
        # zoom: the same framing expressed for faces.align (a crop of `size` scaled about its centre)
        return {"template": "ffhq5", "align_size": self.resize, "crop_size": self.size, "crop_offset": self.offset,
                "zoom": self.resize / self.size}


@dataclass
class ClipReport:
    """What happened to one clip; ``rows`` are index rows as dicts (paths relative to the dataset)."""

    clip: str
    status: str  # done | skipped (already done) | broken
    frames: int = 0  # frames decoded
    crops: int = 0  # crops written (frames with a face, every n-th)
    fps: float = 0.0
    audio: str | None = None
    message: str = ""
    rows: list = field(default_factory=list)


@lru_cache(maxsize=2)
def _detector(detect_width: int, upsample: int):
    # one detector per worker process: loading the landmark model costs ~0.1 s
    from ...faces.detect import DlibDetector

    return DlibDetector(detect_width=detect_width, upsample=upsample)


def part_path(out_root: Path, clip: str) -> Path:
    return Path(out_root) / PARTS_DIR / f"{clip}.json"


def load_done_part(out_root: Path, clip: str) -> dict | None:
    """The part of a finished clip, or None when the clip must be (re)done."""
    path = part_path(out_root, clip)
    if not path.is_file():
        return None
    try:
        part = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    if not all((Path(out_root) / row["path"]).is_file() for row in part.get("rows", [])):
        return None
    if part.get("audio") and not (Path(out_root) / part["audio"]).is_file():
        return None
    return part


def _write_png(path: Path, crop_rgb: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(crop_rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    write_via_temp(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def _write_wav(path: Path, samples: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with wave.open(str(tmp), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(AUDIO_RATE)
            handle.writeframes(samples.astype("<i2").tobytes())

    write_via_temp(path, write)


def read_audio_16k(path: Path) -> np.ndarray | None:
    """The first audio stream of a media file as 16 kHz mono int16, or None when it has none."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise BrokenVideo(f"cannot open: {_why(exc)}") from None
    with container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        chunks = []
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise BrokenVideo(f"audio decoding failed: {_why(exc)}") from None
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def iter_frames(path: Path):
    """(frame number, pts seconds, RGB uint8 frame) for every decoded video frame."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise BrokenVideo(f"cannot open: {_why(exc)}") from None
    with container:
        if not container.streams.video:
            raise BrokenVideo("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for number, frame in enumerate(container.decode(stream)):
                seconds = float(frame.pts * stream.time_base) if frame.pts is not None else None
                yield number, seconds, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise BrokenVideo(f"decoding failed: {_why(exc)}") from None


def video_fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BrokenVideo("no video stream")
            rate = container.streams.video[0].average_rate or container.streams.video[0].guessed_rate
            return float(rate) if rate else 0.0
    except av.error.FFmpegError as exc:
        raise BrokenVideo(f"cannot open: {_why(exc)}") from None


def prepare_clip(source: ClipSource, out_root: Path, config: CropConfig) -> ClipReport:
    """Crops, audio and index part of one clip; a finished clip is skipped, a broken one reported."""
    out_root = Path(out_root)
    done = load_done_part(out_root, source.clip)
    if done is not None:
        return ClipReport(clip=source.clip, status="skipped", frames=done["frames"], crops=len(done["rows"]),
                          fps=done["fps"], audio=done.get("audio"), rows=done["rows"])
    try:
        return _prepare(source, out_root, config)
    except BrokenVideo as exc:
        # crops written before the decoder failed belong to no index: remove them (our own output only)
        import shutil

        shutil.rmtree(out_root / CROPS_DIR / source.speaker / source.clip, ignore_errors=True)
        return ClipReport(clip=source.clip, status="broken", message=str(exc))


def _prepare(source: ClipSource, out_root: Path, config: CropConfig) -> ClipReport:
    from collections import deque

    from ...faces.align import warp_to_crop, zoom_alignment
    from ...faces.track import FaceTracker, TrackerConfig

    if not source.path.is_file():
        raise BrokenVideo("file not found")
    fps = video_fps(source.path)
    detector = _detector(config.detect_width, config.upsample)
    crop_dir = out_root / CROPS_DIR / source.speaker / source.clip
    crop_dir.mkdir(parents=True, exist_ok=True)
    # the shared tracker smooths the alignment (FFHQ framing at the crop size; the paper's tighter framing
    # is applied after, as `sserd edit` does); kept frames are pushed with consecutive indices (every
    # n-th frame of the video), frames wait in a bounded buffer
    tracker = FaceTracker(TrackerConfig(size=config.size))
    zoom = config.resize / config.size
    waiting: deque = deque()
    rows = []

    def write(answers) -> None:
        for kept, m in answers:
            index, number, frame = waiting.popleft()
            assert index == kept
            if m is None:
                continue
            m = zoom_alignment(m, config.size, zoom)
            target = crop_dir / f"{number:06d}.png"
            _write_png(target, warp_to_crop(frame, m, config.size))
            rows.append({"path": target.relative_to(out_root).as_posix(), "speaker": source.speaker,
                         "emotion": source.emotion, "intensity": source.intensity, "clip": source.clip,
                         "frame": number, "kind": "real"})  # the split is added when the index is merged

    n_frames = 0
    for number, _, frame in iter_frames(source.path):
        n_frames = number + 1
        if number % config.every_n_frames:
            continue
        kept = number // config.every_n_frames
        faces = detector.detect(frame, near=tracker.last_box)
        waiting.append((kept, number, frame))
        write(tracker.push(kept, faces))
    write(tracker.flush())
    if n_frames == 0:
        raise BrokenVideo("no decodable video frames")

    audio_rel = None
    if config.audio:
        samples = read_audio_16k(source.path)
        if samples is not None and samples.size:
            audio_path = out_root / AUDIO_DIR / f"{source.clip}.wav"
            audio_path.parent.mkdir(parents=True, exist_ok=True)
            _write_wav(audio_path, samples)
            audio_rel = audio_path.relative_to(out_root).as_posix()

    part = {"clip": source.clip, "source": str(source.path), "speaker": source.speaker, "emotion": source.emotion,
            "fps": fps, "frames": n_frames, "every_n_frames": config.every_n_frames,
            "audio": audio_rel, "framing": config.framing(), "rows": rows}
    path = part_path(out_root, source.clip)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_via_temp(path, lambda tmp: tmp.write_text(json.dumps(part)))
    message = "" if rows else "no face found in any frame"
    return ClipReport(clip=source.clip, status="done", frames=n_frames, crops=len(rows), fps=fps,
                      audio=audio_rel, message=message, rows=rows)


def config_dict(config: CropConfig) -> dict:
    return asdict(config)
