"""Exact-ground-truth metrics of emotion edits on synthetic clips (SPEC section 6).

An evaluation case is one (source clip, target emotion, edited frames) triple. Against the clip's
stored ground truth and its true answer (:mod:`sserd_cli.data.synth.truth`) it measures:

* ``emotion_accuracy``: fraction of edited frames the oracle reads as the target emotion;
* ``expression_mae``: oracle expression controls of the edit vs. the target's true controls;
* ``mouth_open_mae`` / ``lip_round_mae``: oracle speech controls of the edit vs. the *source*
  ground truth (was the speech kept?); ``mouth_open_vs_truth`` / ``lip_round_vs_truth``: the same readings
  against the oracle's reading of the true answer, the same phonemes spoken with the target emotion (does the
  mouth do what the emotion's mouth does? A smile changes the opening and rounding legitimately);
* ``identity_mae``: oracle identity parameters of the edit vs. the true identity, and
  ``identity_cosine`` between oracle identity readings of the edit and of the true answer;
* ``psnr`` / ``ssim``: aligned face crops of the edit vs. the true answer (same crop transform for
  both: the source's skull-fixed landmarks), so background pixels do not flatter the score;
* ``frechet``: Fréchet distance of oracle features, edited crops vs. true-answer crops;
* ``agreement``: does the edit change what the truth changes? The cosine between the edit's pixel change and the
  true answer's (edit - source against truth - source, pooled over the frames' face masks), and
  ``mouth_agreement`` the same over the mouth region alone: no texture can fool it (an edit that changes
  nothing, or changes something else, scores 0); NaN where the truth does not change (the source's own
  emotion as the target: a neutral clip edited to neutral);
* ``sharpness``: variance of the Laplacian of the edit's face over the source's (1: as sharp);
* ``flicker``: the edit's frame-to-frame change of the face region (mean absolute grey-level change of the
  aligned crop's centre from one frame to the next) over the true answer's own: 1.0 moves exactly as much as
  the truth does (head, speech, light); above it the edit shimmers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.synth.params import Identity, emotion_expression, to_vector
from ..data.synth.truth import align_crop, read_video_frames, render_true_answer
from ..data.synth.video import ClipTruth, load_truth
from ..emotions import EMOTIONS, emotion_index
from ..errors import SserdError
from .frechet import frechet_distance
from .oracle import Oracle


@dataclass
class EditCase:
    """One thing to score: ``edited`` frames ([N, H, W, 3] uint8 RGB or a video path) of ``clip`` made
    to show ``emotion``; ``label`` names the method (a model, a baseline) in tables."""

    clip: str | Path  # the source clip (video or its truth file)
    emotion: str
    edited: np.ndarray | str | Path
    label: str = "edit"
    intensity: float | None = None  # target intensity (default: the clip's)


@dataclass
class SyntheticScores:
    label: str
    clip: str
    emotion: str
    frames: int
    emotion_accuracy: float
    target_probability: float
    expression_mae: float
    mouth_open_mae: float
    lip_round_mae: float
    identity_mae: float
    identity_cosine: float
    psnr: float
    ssim: float
    frechet: float
    flicker: float = math.nan
    agreement: float = math.nan
    mouth_agreement: float = math.nan
    mouth_open_vs_truth: float = math.nan
    lip_round_vs_truth: float = math.nan
    sharpness: float = math.nan

    def to_dict(self) -> dict:
        """Plain JSON values: NaN -> None, infinite PSNR (identical crops) -> the string "inf"."""
        def clean(v):
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, float) and math.isinf(v):
                return "inf" if v > 0 else "-inf"
            return v
        return {k: clean(v) for k, v in asdict(self).items()}


METRIC_NAMES = ("emotion_accuracy", "target_probability", "expression_mae", "mouth_open_mae", "lip_round_mae",
                "identity_mae", "identity_cosine", "psnr", "ssim", "frechet", "flicker", "agreement",
                "mouth_agreement", "sharpness", "mouth_open_vs_truth", "lip_round_vs_truth")


def resolve_truth(path: str | Path) -> Path:
    """A clip path from a video, a truth file, or a folder holding exactly one clip's truth."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.truth.json"))
        if len(found) != 1:
            raise SserdError(f"{path} holds {len(found)} ground-truth files: give the clip (.mp4) itself")
        return found[0]
    return path


def _crops(frames: np.ndarray, align: np.ndarray, size: int) -> np.ndarray:
    return np.stack([align_crop(f, a, size) for f, a in zip(frames, align)])


def psnr_ssim(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR over all paired uint8 crops [N, S, S, 3] (dB from the pooled MSE; inf when identical) and mean SSIM."""
    from skimage.metrics import structural_similarity

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    psnr = math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
    ssim = float(np.mean([structural_similarity(y, x, channel_axis=2, data_range=255) for x, y in zip(a, b)]))
    return psnr, ssim


def centred_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - 0.5, b - 0.5
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-8
    return float((num / den).mean())


class SyntheticEvaluator:
    """Scores many cases; true answers are rendered once per (clip, emotion, intensity) and cached."""

    def __init__(self, oracle: Oracle | None = None, crop_size: int = 256):
        self.oracle = oracle or Oracle.load()
        self.crop_size = crop_size
        self._truths: dict[str, ClipTruth] = {}
        self._answers: dict[tuple, tuple[np.ndarray, object]] = {}
        self._sources: dict[str, np.ndarray] = {}

    def truth(self, clip: str | Path) -> ClipTruth:
        key = str(resolve_truth(clip))
        if key not in self._truths:
            self._truths[key] = load_truth(key)
        return self._truths[key]

    def true_answer(self, clip: str | Path, emotion: str, intensity: float | None):
        """(aligned true-answer crops, oracle reading of them)."""
        key = (str(resolve_truth(clip)), emotion, intensity)
        if key not in self._answers:
            truth = self.truth(clip)
            align = truth.arrays["align_landmarks"]
            crops = np.stack([align_crop(r.image, align[i], self.crop_size)
                              for i, r in enumerate(render_true_answer(truth, emotion, intensity))])
            self._answers[key] = (crops, self.oracle.read(crops))
        return self._answers[key]

    def source_crops(self, clip: str | Path) -> np.ndarray:
        """The aligned face crops of the source clip itself (its video beside its truth file)."""
        path = resolve_truth(clip)
        key = str(path)
        if key not in self._sources:
            truth = self.truth(clip)
            video = path.with_name(truth.meta["video"]) if path.name.endswith(".truth.json") else path
            if len(self._sources) >= 8:
                self._sources.pop(next(iter(self._sources)))
            self._sources[key] = _crops(read_video_frames(video), truth.arrays["align_landmarks"], self.crop_size)
        return self._sources[key]

    def evaluate(self, case: EditCase) -> SyntheticScores:
        emotion = EMOTIONS[emotion_index(case.emotion)]
        truth = self.truth(case.clip)
        edited = read_video_frames(case.edited) if isinstance(case.edited, (str, Path)) else np.asarray(case.edited)
        spec = truth.spec
        if edited.ndim != 4 or edited.shape[-1] != 3:
            raise SserdError(f"edited frames must be RGB [N, H, W, 3], got shape {edited.shape}")
        if len(edited) != truth.n_frames:
            raise SserdError(f"the edit has {len(edited)} frames but the clip has {truth.n_frames}: "
                             "an emotion edit must keep every frame")
        if edited.shape[1:3] != (spec.height, spec.width):
            raise SserdError(f"the edit is {edited.shape[2]}x{edited.shape[1]} but the clip is {spec.width}x{spec.height}")
        align = truth.arrays["align_landmarks"]
        crops = _crops(edited, align, self.crop_size)
        answer_crops, answer = self.true_answer(case.clip, emotion, case.intensity)
        reading = self.oracle.read(crops)
        target = emotion_index(emotion)
        intensity = spec.intensity if case.intensity is None else case.intensity
        target_expr = to_vector(emotion_expression(emotion, intensity))
        source_speech = truth.arrays["speech"]
        identity = to_vector(Identity(**truth.meta["identity"]))  # field order, not the JSON's key order
        psnr, ssim = psnr_ssim(crops, answer_crops)
        frechet = frechet_distance(reading.features, answer.features) if len(crops) >= 2 else math.nan
        return SyntheticScores(
            label=case.label, clip=Path(resolve_truth(case.clip)).name, emotion=emotion, frames=len(edited),
            emotion_accuracy=float((reading.emotion == target).mean()),
            target_probability=float(reading.emotion_probs[:, target].mean()),
            expression_mae=float(np.abs(reading.expression - target_expr).mean()),
            mouth_open_mae=float(np.abs(reading.speech[:, 0] - source_speech[:, 0]).mean()),
            lip_round_mae=float(np.abs(reading.speech[:, 1] - source_speech[:, 1]).mean()),
            mouth_open_vs_truth=float(np.abs(reading.speech[:, 0] - answer.speech[:, 0]).mean()),
            lip_round_vs_truth=float(np.abs(reading.speech[:, 1] - answer.speech[:, 1]).mean()),
            identity_mae=float(np.abs(reading.identity - identity).mean()),
            identity_cosine=centred_cosine(reading.identity, answer.identity),
            psnr=psnr, ssim=ssim, frechet=frechet, flicker=flicker_ratio(crops, answer_crops),
            **change_scores(crops, answer_crops, self.source_crops(case.clip), changes=emotion != spec.emotion))

    def evaluate_many(self, cases: Iterable[EditCase]) -> list[SyntheticScores]:
        return [self.evaluate(c) for c in cases]


def change_agreement(edited: np.ndarray, answer: np.ndarray, source: np.ndarray, weight: np.ndarray) -> float:
    """Cosine of (edited - source) with (answer - source), crops [N, S, S, 3], pixels weighted by ``weight`` [S, S]
    and pooled over the frames; NaN where the answer hardly differs from the source."""
    w = weight[None, :, :, None].astype(np.float64)
    d_edit = (edited.astype(np.float64) - source) * w
    d_true = (answer.astype(np.float64) - source) * w
    norm_true = float(np.sqrt((d_true ** 2).sum()))
    if norm_true < 1.0 * np.sqrt(w.sum() * 3 * len(source)) * 0.5:  # under half a grey level on average
        return math.nan
    norm_edit = float(np.sqrt((d_edit ** 2).sum()))
    return float((d_edit * d_true).sum() / (norm_edit * norm_true)) if norm_edit > 0 else 0.0


def sharpness(crops: np.ndarray, weight: np.ndarray) -> float:
    """Mean over crops of :func:`~sserd_cli.faces.measures.sharpness` where ``weight`` > 0.5."""
    import cv2

    from ..faces.measures import sharpness as laplacian_variance

    inside = weight > 0.5
    return float(np.mean([laplacian_variance(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), inside) for c in crops]))


def change_scores(edited: np.ndarray, answer: np.ndarray, source: np.ndarray, changes: bool = True) -> dict:
    """``agreement``, ``mouth_agreement`` and ``sharpness`` of aligned crops (FFHQ framing) against the truth's
    and the source's (see the module docstring); with ``changes`` False (the target is the source's own
    emotion) there is no change to agree with: the truth differs from the source by the codec alone."""
    from ..faces.mask import face_mask, mouth_mask

    size = edited.shape[1]
    face, mouth = face_mask(size), mouth_mask(size)
    base = sharpness(source, face)
    agree = (lambda w: change_agreement(edited, answer, source, w)) if changes else (lambda w: math.nan)
    return {"agreement": agree(face), "mouth_agreement": agree(mouth),
            "sharpness": sharpness(edited, face) / base if base > 0 else math.nan}


def face_motion(crops: np.ndarray) -> float:
    """Mean absolute grey-level change between consecutive aligned crops [N, S, S, 3], over the crop's centre
    (rows 25-90 %, columns 20-80 %: the face, not the background); NaN for fewer than 2 frames."""
    if len(crops) < 2:
        return math.nan
    s = crops.shape[1]
    grey = crops[:, s // 4:int(s * 0.9), s // 5:s - s // 5].astype(np.float32).mean(-1)
    return float(np.abs(np.diff(grey, axis=0)).mean())


def flicker_ratio(edited: np.ndarray, answer: np.ndarray) -> float:
    """The edit's face motion over the true answer's (see :func:`face_motion`)."""
    truth = face_motion(answer)
    return face_motion(edited) / truth if truth > 0 else math.nan


def mean_scores(rows: list[SyntheticScores]) -> dict:
    """Frame-weighted mean of every metric over cases; a case that could not measure a metric (NaN: no face
    found, too few frames for a Frechet distance) is left out of that metric's mean, not of the others."""
    w = np.array([s.frames for s in rows], np.float64)
    out: dict = {}
    for m in METRIC_NAMES:
        values = np.array([getattr(s, m) for s in rows], np.float64)
        ok = np.isfinite(values)
        out[m] = float(np.average(values[ok], weights=w[ok])) if ok.any() else math.nan
    out["cases"] = len(rows)
    return out


def summarize(scores: list[SyntheticScores]) -> dict[str, dict]:
    """Mean of every metric per label (see mean_scores)."""
    return {label: mean_scores([s for s in scores if s.label == label]) for label in dict.fromkeys(s.label for s in scores)}
