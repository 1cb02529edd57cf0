"""Synthetic datasets in the shared index format (:mod:`sserd_cli.data.index`).

* image datasets: aligned crops of random speakers, emotions, intensities, speech shapes, poses
  and lights; ``labels.jsonl`` beside the index holds every parameter of every crop;
* video datasets: talking clips (MP4 + ground truth) per speaker and emotion, plus the aligned
  crop of every ``stride``-th frame in the index, like ``sserd prepare`` makes for MEAD.

Work is split into tasks fully determined by (seed, task number), run in a process pool, and
written into a temporary directory that is renamed at the end: the same seed gives the same files
whatever the number of workers, and an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from ... import interrupts
from ...emotions import EMOTIONS
from ...errors import SserdError
from ..index import IndexRow, write_index
from .params import FaceState, Light, Pose, Speech, emotion_expression
from .render import render_portrait
from .truth import align_crop, framing
from .video import ClipSpec, make_background, speaker_identity, write_clip

MIN_CROP, MAX_CROP = 32, 1024


@dataclass(frozen=True)
class ImageSetConfig:
    count: int = 1000
    size: int = 256
    resize: int | None = None  # align at this size, keep the centre `size`; None: the paper's 1.25 x size
    speakers: int = 50
    seed: int = 0
    min_intensity: float = 0.3


@dataclass(frozen=True)
class VideoSetConfig:
    speakers: int = 4
    clips_per_emotion: int = 2
    duration: float = 3.0
    fps: float = 25.0
    width: int = 640
    height: int = 360
    crop_size: int = 256
    resize: int | None = None  # as ImageSetConfig.resize
    stride: int = 1  # keep every stride-th frame's crop in the index
    seed: int = 0
    sample_rate: int = 16000


def speaker_seed(seed: int, speaker: int) -> int:
    return seed * 1_000_003 + speaker


def speaker_name(speaker: int) -> str:
    return f"synth{speaker:04d}"


def split_of(speaker: int, speakers: int) -> str:
    """The last ~10% of the speakers are the test split (none when there is only one)."""
    n_test = 0 if speakers < 2 else max(1, int(round(0.1 * speakers)))
    return "test" if speaker >= speakers - n_test else "train"


def random_face(rng: np.random.Generator, seed: int, speakers: int, emotion: str, min_intensity: float,
                choices: np.ndarray | None = None):
    """A random face state for the image datasets: (speaker, intensity, state); speaker among ``choices``."""
    speaker = int(rng.integers(speakers)) if choices is None else int(rng.choice(choices))
    identity = speaker_identity(speaker_seed(seed, speaker))
    intensity = 1.0 if emotion == "neutral" else float(rng.uniform(min_intensity, 1.0))
    mouth = 0.0 if rng.random() < 0.25 else float(rng.uniform(0, 1))
    speech = Speech(mouth_open=mouth, lip_round=float(rng.uniform(0, 1)) if rng.random() < 0.6 else 0.0)
    pose = Pose(yaw=float(rng.uniform(-10, 10)), pitch=float(rng.uniform(-8, 8)), roll=float(rng.uniform(-6, 6)),
                blink=float(rng.uniform(0, 1)) if rng.random() < 0.1 else 0.0,
                gaze_x=float(rng.uniform(-0.5, 0.5)), gaze_y=float(rng.uniform(-0.4, 0.4)))
    state = FaceState(identity, emotion_expression(emotion, intensity), speech, pose, Light.random(rng))
    return speaker, intensity, state


CROP_MARGIN = 0.15  # picture rendered around the crop window so alignment never mirrors the border


def crop_frame_size(size: int) -> int:
    """Side of the portrait rendered for a ``size`` crop (background images must have it)."""
    return size + 2 * int(round(size * CROP_MARGIN))


def render_crop(state: FaceState, size: int, background: np.ndarray | None = None, supersample: int = 2,
                resize: int | None = None):
    """(aligned crop [size, size, 3] uint8, rendered portrait) of a face state; ``resize`` as in
    :func:`~sserd_cli.data.synth.truth.align_crop`. The portrait is drawn at the aligned resolution, so
    the alignment warp is close to the identity and the crop stays sharp; ``background`` must be
    ``crop_frame_size(resize or size)`` square."""
    r = render_portrait(state, resize or size, background=background, supersample=supersample, margin=CROP_MARGIN)
    return align_crop(r.image, r.align_landmarks, size, resize), r


def _image_task(args) -> list[dict]:
    cfg, tmp_root, start, stop = args
    cfg = ImageSetConfig(**cfg)
    cfg = replace(cfg, resize=paper_resize(cfg.size, cfg.resize))
    out = []
    for i in range(start, stop):
        rng = np.random.default_rng([cfg.seed, i, 7])
        emotion = EMOTIONS[i % len(EMOTIONS)]
        speaker, intensity, state = random_face(rng, cfg.seed, cfg.speakers, emotion, cfg.min_intensity)
        frame = crop_frame_size(cfg.resize)
        background = make_background(frame, frame, rng)
        crop, _ = render_crop(state, cfg.size, background, resize=cfg.resize)
        rel = f"images/{i // 1000:04d}/{i:07d}.png"
        path = Path(tmp_root) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        out.append({"path": rel, "speaker": speaker_name(speaker), "emotion": emotion, "intensity": intensity,
                    "clip": f"img{i:07d}", "frame": 0, "split": split_of(speaker, cfg.speakers),
                    "state": state.to_dict()})
    return out


def _video_task(args) -> list[dict]:
    cfg, tmp_root, speaker, emotion, clip_no = args
    cfg = VideoSetConfig(**cfg)
    cfg = replace(cfg, resize=paper_resize(cfg.crop_size, cfg.resize))
    rng = np.random.default_rng([cfg.seed, speaker, clip_no, 11 + EMOTIONS.index(emotion)])
    intensity = 1.0 if emotion == "neutral" else float(rng.choice([1 / 3, 2 / 3, 1.0]))
    clip_seed = int(rng.integers(2**31))
    spec = ClipSpec(speaker_seed(cfg.seed, speaker), clip_seed, emotion, intensity, cfg.duration, cfg.fps,
                    cfg.width, cfg.height, cfg.sample_rate)
    name = f"{speaker_name(speaker)}_{emotion}_{clip_no:03d}"
    root = Path(tmp_root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    crop_dir = root / "crops" / name
    crop_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    counter = iter(range(10**9))

    def on_frame(r):
        i = next(counter)
        if i % cfg.stride:
            return
        crop = align_crop(r.image, r.align_landmarks, cfg.crop_size, cfg.resize)
        rel = f"crops/{name}/{i:05d}.png"
        cv2.imwrite(str(root / rel), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append({"path": rel, "speaker": speaker_name(speaker), "emotion": emotion, "intensity": intensity,
                     "clip": name, "frame": i, "split": split_of(speaker, cfg.speakers)})

    write_clip(spec, root / "videos" / f"{name}.mp4", on_frame=on_frame)
    return rows


def _prepare_output(out: Path, overwrite: bool) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise SserdError(f"{out} exists and is not empty: choose another -o or pass --overwrite")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SserdError(f"cannot create {parent} ({exc.strerror}): choose a writable -o") from None
    tmp = parent / f".{out.name}.partial{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
    except OSError as exc:  # permission bits do not tell for root or read-only mounts: creating does
        raise SserdError(f"{parent}: output folder is not writable ({exc.strerror or exc})") from None
    return tmp


def _finish(tmp: Path, out: Path) -> None:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    tmp.replace(out)


def _run(tasks: list, fn: Callable, workers: int, progress: Callable[[int], None] | None) -> Iterable:
    if workers <= 1:
        for t in tasks:
            res = fn(t)
            if progress:
                progress(1)
            yield res
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=interrupts.install) as pool:
        try:
            for res in pool.map(fn, tasks):
                if progress:
                    progress(1)
                yield res
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # see make_*_dataset: nothing may run on
            raise


def paper_resize(size: int, resize: int | None) -> int:
    """The aligned-image side: ``resize`` or, by default, the paper's 320 -> 256 ratio."""
    return int(resize) if resize else int(round(size * 1.25))


def check_resize(size: int, resize: int) -> None:
    if not size <= resize <= 2 * size:
        raise SserdError(f"--resize {resize} is impossible for {size}-pixel crops: use {size} (FFHQ framing) .. {2 * size}")


def check_size(name: str, value: int, low: int = MIN_CROP, high: int = MAX_CROP) -> None:
    if not low <= value <= high:
        raise SserdError(f"{name} {value} is impossible: use {low}..{high} pixels")


def check_image_config(cfg: ImageSetConfig) -> ImageSetConfig:
    """``cfg`` with its resize resolved, or one line on what is impossible in it."""
    if cfg.count < 1:
        raise SserdError(f"--count must be at least 1, got {cfg.count}")
    if cfg.speakers < 1:
        raise SserdError(f"--speakers must be at least 1, got {cfg.speakers}")
    check_size("--size", cfg.size)
    cfg = replace(cfg, resize=paper_resize(cfg.size, cfg.resize))
    check_resize(cfg.size, cfg.resize)
    return cfg


def make_image_dataset(out: Path, cfg: ImageSetConfig, workers: int = 1, overwrite: bool = False,
                       progress: Callable[[int], None] | None = None, chunk: int = 25) -> tuple[Path, int]:
    """Render ``cfg.count`` aligned crops into ``out``; returns (out, number of tasks) after writing the index."""
    cfg = check_image_config(cfg)
    tmp = _prepare_output(out, overwrite)
    try:
        tasks = [(asdict(cfg), str(tmp), s, min(s + chunk, cfg.count)) for s in range(0, cfg.count, chunk)]
        # closed here, not when garbage collected: on an interrupt the workers must be done before tmp is removed
        with closing(_run(tasks, _image_task, workers, progress)) as batches:
            records = [r for batch in batches for r in batch]
        rows = [IndexRow(r["path"], r["speaker"], r["emotion"], r["intensity"], r["clip"], r["frame"], r["split"],
                         "synthetic") for r in records]
        with (tmp / "labels.jsonl").open("w") as handle:
            for r in records:
                handle.write(json.dumps({k: r[k] for k in ("path", "speaker", "emotion", "intensity", "state")},
                                        sort_keys=True) + "\n")
        write_index(tmp, rows, {"source": "sserd synth images", "crop_size": cfg.size, "config": asdict(cfg),
                                "framing": framing(cfg.size, cfg.resize),
                                "labels": "labels.jsonl"})
        _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(out), len(rows)


def video_tasks(cfg: VideoSetConfig) -> list[tuple[int, str, int]]:
    return [(s, e, c) for s in range(cfg.speakers) for e in EMOTIONS for c in range(cfg.clips_per_emotion)]


def check_video_config(cfg: VideoSetConfig) -> VideoSetConfig:
    """``cfg`` with its resize resolved, or one line on what is impossible in it."""
    if cfg.speakers < 1 or cfg.clips_per_emotion < 1:
        raise SserdError("--speakers and --clips-per-emotion must be at least 1")
    if not 0 < cfg.duration <= 600:  # written so that NaN fails too
        raise SserdError(f"--duration {cfg.duration} is impossible: use a length in (0, 600] seconds")
    if not 1 <= cfg.fps <= 120:
        raise SserdError(f"--fps {cfg.fps} is impossible: use 1..120")
    if cfg.stride < 1:
        raise SserdError("--stride must be at least 1")
    check_size("--crop-size", cfg.crop_size)
    cfg = replace(cfg, resize=paper_resize(cfg.crop_size, cfg.resize))
    check_resize(cfg.crop_size, cfg.resize)
    check_size("frame width", cfg.width, 64, 4096)
    check_size("frame height", cfg.height, 64, 4096)
    if cfg.width % 2 or cfg.height % 2:
        raise SserdError(f"frame size {cfg.width}x{cfg.height} must be even for H.264 (yuv420p)")
    return cfg


def make_video_dataset(out: Path, cfg: VideoSetConfig, workers: int = 1, overwrite: bool = False,
                       progress: Callable[[int], None] | None = None) -> tuple[Path, int]:
    """Render talking clips per speaker x emotion x clip into ``out``; returns (out, index rows)."""
    cfg = check_video_config(cfg)
    tmp = _prepare_output(out, overwrite)
    try:
        tasks = [(asdict(cfg), str(tmp), s, e, c) for s, e, c in video_tasks(cfg)]
        with closing(_run(tasks, _video_task, workers, progress)) as batches:  # see make_image_dataset
            records = [r for batch in batches for r in batch]
        rows = [IndexRow(r["path"], r["speaker"], r["emotion"], r["intensity"], r["clip"], r["frame"], r["split"],
                         "synthetic") for r in records]
        write_index(tmp, rows, {"source": "sserd synth videos", "crop_size": cfg.crop_size, "config": asdict(cfg),
                                "framing": framing(cfg.crop_size, cfg.resize),
                                "videos": "videos"})
        _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(out), len(rows)
