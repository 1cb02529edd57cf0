"""Ground-truth answers of emotion edits: what a perfect edit of a synthetic clip looks like.

For a clip written by ``sserd synth videos`` and a target emotion, the true answer is the same
clip rendered with only the expression controls replaced: same identity, head pose, light,
background and speech track (mouth opening and rounding) frame by frame. Everything is read from
the clip's stored ground truth, not re-drawn from seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ...faces.align import estimate_alignment, warp_to_crop
from .render import Rendered
from .video import ClipPlan, ClipTruth, load_truth, plan_clip, render_plan, write_video


def align_crop(image: np.ndarray, align_landmarks: np.ndarray, size: int, resize: int | None = None) -> np.ndarray:
    """The aligned face crop of ``image`` (the shared 5-point alignment, on exact landmarks).

    ``resize`` > ``size`` gives the framing of ``sserd prepare``: align at ``resize`` pixels, keep the
    centre ``size`` (the paper's 320 -> 256); the centre crop is folded into the warp.
    """
    resize = size if resize is None else resize
    return warp_to_crop(image, estimate_alignment(align_landmarks, size, zoom=resize / size), size)


def framing(size: int, resize: int) -> dict:
    """The dataset-metadata description of a crop framing (the same keys ``sserd prepare`` records)."""
    return {"template": "ffhq5", "align_size": resize, "crop_size": size, "crop_offset": (resize - size) // 2,
            "zoom": resize / size}


def true_answer_plan(truth: ClipTruth | str | Path, emotion: str, intensity: float | None = None) -> ClipPlan:
    """The plan of the clip with ``emotion`` (at the clip's own intensity unless given)."""
    truth = truth if isinstance(truth, ClipTruth) else load_truth(truth)
    return truth.plan().with_emotion(emotion, intensity)


def render_true_answer(truth: ClipTruth | str | Path, emotion: str, intensity: float | None = None,
                       supersample: int = 2) -> Iterator[Rendered]:
    """Frames of the true answer, in order."""
    yield from render_plan(true_answer_plan(truth, emotion, intensity), supersample)


def true_answer_crops(truth: ClipTruth | str | Path, emotion: str, size: int, intensity: float | None = None,
                      supersample: int = 2) -> np.ndarray:
    """Aligned crops [N, size, size, 3] uint8 of the true answer, aligned like the source clip's frames."""
    truth = truth if isinstance(truth, ClipTruth) else load_truth(truth)
    align = truth.arrays["align_landmarks"]
    return np.stack([align_crop(r.image, align[i], size)
                     for i, r in enumerate(render_true_answer(truth, emotion, intensity, supersample))])


def write_true_answer(source: str | Path, emotion: str, out: Path, intensity: float | None = None) -> Path:
    """An MP4 of the true answer with the source's audio (re-synthesised from its seeds, bit-identical)."""
    truth = load_truth(source)
    plan = true_answer_plan(truth, emotion, intensity)
    spec = truth.spec
    audio_plan = plan_clip(spec)
    n_audio = int(round(spec.n_frames / spec.fps * spec.sample_rate))
    audio = np.zeros(n_audio, np.float32)
    audio[: min(n_audio, len(audio_plan.speech.audio))] = audio_plan.speech.audio[:n_audio]
    write_video(Path(out), (r.image for r in render_plan(plan)), audio, spec.fps, spec.sample_rate)
    return Path(out)


def read_video_frames(path: str | Path) -> np.ndarray:
    """All frames of a (short) video as RGB uint8 [N, H, W, 3]."""
    import av

    from ...errors import SserdError

    path = Path(path)
    if not path.is_file():
        raise SserdError(f"video {path} not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SserdError(f"{path} has no video stream")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as exc:
        raise SserdError(f"cannot decode {path} ({exc}): give a video file PyAV can read") from None
    if not frames:
        raise SserdError(f"{path} has no decodable frames")
    return np.stack(frames)
