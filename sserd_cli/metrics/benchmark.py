"""The synthetic benchmark of the paper's claims: editors side by side on held-out synthetic clips.

A fixed set of neutral talking clips of identities no training set of ``sserd synth`` uses (speaker seeds
from :data:`HELDOUT_SEED_BASE`) is rendered to H.264 files, and every method edits every clip to every
target emotion (the 6 emotions and neutral) with two kinds of reference:

* ``intra``: a still of the clip's own speaker showing the target emotion (another pose, light, mouth);
* ``cross``: a still of another held-out speaker showing it.

Methods: ``no edit`` (the source itself), ``reconstruction`` (G(E(x)), no emotion code), ``direction
edit`` (w_s + beta * d_e, the pair-building edit used as an editor; it takes the emotion, not the
reference) and one row per SSERD bundle. Faces are found once per clip by the edit pipeline's own
follower, and every method goes through the same crop -> model -> paste-back as ``sserd edit``; the
frames are then scored by :class:`~sserd_cli.metrics.synthetic.SyntheticEvaluator` against the exact
true answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.synth.truth import align_crop, read_video_frames, render_true_answer
from ..data.synth.video import ClipSpec, plan_clip, render_plan, write_clip
from ..emotions import EMOTIONS
from ..faces.align import warp_to_crop
from ..pipeline.edit import FrameItem
from ..pipeline.faces import FaceFollower, FaceSettings, Transfer
from ..pipeline.models import EditModel, Target
from ..pipeline.temporal import SmoothSettings, TemporalEditor
from .synthetic import EditCase, SyntheticEvaluator, SyntheticScores, mean_scores

# sserd synth uses speaker seeds seed * 1_000_003 + speaker: this base is out of reach of any seed below ~900
HELDOUT_SEED_BASE = 900_000_000
NO_EDIT, RECONSTRUCTION, DIRECTION, TRUE_ANSWER = "no edit", "reconstruction", "direction edit", "true answer"
BY_EMOTION = ("emotion_accuracy", "agreement", "mouth_agreement", "mouth_open_mae", "mouth_open_vs_truth",
              "lip_round_vs_truth")  # the metrics the summary also gives per target emotion
REF_KINDS = ("intra", "cross")
REAL = "real"  # the ref kind of the references given as files (real photos); scored by the reference's emotion
REAL_FRAME_AT = 2 / 3  # where in a reference video its still is cut (into the acted part, past the onset)
SHEET_TILE = 128  # side of a contact-sheet tile


@dataclass(frozen=True)
class BenchmarkConfig:
    speakers: int = 4          # held-out identities, one neutral talking clip each
    duration: float = 1.0      # seconds per clip
    fps: float = 25.0
    width: int = 640
    height: int = 360
    emotions: tuple = EMOTIONS  # targets: the six emotions and neutral
    seed: int = 0              # picks the held-out speakers and clips
    crop_size: int = 256       # aligned crop side of the metrics (as 'sserd eval synthetic')
    real_refs: tuple = ()      # (emotion, image or video path): references from outside the synthetic world

    def speaker_seeds(self) -> list[int]:
        return [HELDOUT_SEED_BASE + 1000 * self.seed + k for k in range(self.speakers)]


@dataclass
class Method:
    """A row of the table: ``model`` edits towards a :class:`Target`; ``by_emotion`` methods are given the
    emotion name (they cannot read a reference); ``reference_free`` ones do not depend on the target at all."""

    label: str
    model: EditModel | None  # None: no edit
    by_emotion: bool = False
    reference_free: bool = False
    render: str = "generate"  # or "transfer": the edit carried onto the source's pixels, as in 'sserd edit'


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    scores: dict[str, list[SyntheticScores]]  # ref kind -> every case
    sheet: list[dict] = field(default_factory=list)  # crops of the contact sheet (see contact_sheet)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """ref kind -> method -> mean metrics (frame-weighted), plus per-emotion accuracy."""
        out = {}
        for kind, scores in self.scores.items():
            out[kind] = {}
            for label in dict.fromkeys(s.label for s in scores):
                cases = [s for s in scores if s.label == label]
                row = out[kind][label] = mean_scores(cases)
                per = {e: mean_scores([s for s in cases if s.emotion == e]) for e in dict.fromkeys(s.emotion for s in cases)}
                row["accuracy_by_emotion"] = {e: v["emotion_accuracy"] for e, v in per.items()}
                row["by_emotion"] = {e: {m: v[m] for m in BY_EMOTION} for e, v in per.items()}
        return out


def render_heldout_set(folder: Path, config: BenchmarkConfig, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write the held-out neutral clips (MP4 + truth files) into ``folder``; existing ones are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, speaker in enumerate(config.speaker_seeds()):
        spec = ClipSpec(speaker, clip_seed=k, emotion="neutral", intensity=1.0, duration=config.duration,
                        fps=config.fps, width=config.width, height=config.height)
        path = folder / f"heldout{k:02d}_neutral.mp4"
        if not (path.is_file() and path.with_suffix(".truth.json").is_file()):
            if progress:
                progress(f"rendering {path.name}")
            write_clip(spec, path)
        paths.append(path)
    return paths


def reference_frame(config: BenchmarkConfig, speaker_index: int, emotion: str) -> np.ndarray:
    """A full frame of held-out speaker ``speaker_index`` showing ``emotion``, from a clip of its own (another
    head pose, light, background and mouth than the benchmark clip)."""
    spec = ClipSpec(config.speaker_seeds()[speaker_index], clip_seed=10_000 + speaker_index, emotion=emotion,
                    intensity=1.0, duration=0.2, fps=config.fps, width=config.width, height=config.height)
    frames = list(render_plan(plan_clip(spec)))
    return frames[len(frames) // 2].image


class _Faces:
    """Face work every method shares, done once: a follower per crop framing, a track per (clip, framing)
    and an aligned crop per (reference, framing)."""

    def __init__(self, settings: FaceSettings):
        from ..pipeline.reference import default_reader

        self.settings = settings
        self.followers: dict[tuple, FaceFollower] = {}
        self.tracks: dict[tuple, list] = {}
        self.crops: dict[tuple, np.ndarray | None] = {}
        self.targets: dict[tuple, Target] = {}
        self.reader = default_reader()

    def follower(self, size: int, zoom: float) -> FaceFollower:
        if (size, zoom) not in self.followers:
            self.followers[(size, zoom)] = FaceFollower(self.settings, size, zoom)
        return self.followers[(size, zoom)]

    def track(self, clip: int, frames: np.ndarray, size: int, zoom: float) -> list:
        """The smoothed frame -> crop alignment of every frame (None: no face), as ``sserd edit`` finds it."""
        key = (clip, size, zoom)
        if key not in self.tracks:
            items = (FrameItem(i, None, f) for i, f in enumerate(frames))
            self.tracks[key] = [item.m for item in self.follower(size, zoom).follow(items)]
        return self.tracks[key]

    def reference_crop(self, reference: tuple, image: np.ndarray, size: int, zoom: float) -> np.ndarray | None:
        """The aligned crop of a reference still (None: no face found); ``reference`` names the still."""
        key = (reference, size, zoom)
        if key not in self.crops:
            m = self.follower(size, zoom).align_still(image)
            self.crops[key] = None if m is None else warp_to_crop(image, m, size)
        return self.crops[key]


    def reference_target(self, reference: tuple, image: np.ndarray, size: int, zoom: float) -> Target:
        """The target of a reference still, read as ``sserd edit --ref`` reads one (crop and reading)."""
        from ..pipeline.reference import image_target

        key = (reference, size, zoom)
        if key not in self.targets:
            self.targets[key] = image_target(image, self.follower(size, zoom), self.reader, reference)
        return self.targets[key]


def real_reference_still(path: str | Path) -> np.ndarray:
    """The RGB still of a reference file: the image, or a video's frame at :data:`REAL_FRAME_AT`."""
    from ..media.image import read_image
    from ..media.probe import is_image_path
    from ..pipeline.reference import sampled_frames

    path = Path(path)
    if is_image_path(path):
        return read_image(path)
    frames = list(sampled_frames(path, 10_000))
    return frames[min(int(len(frames) * REAL_FRAME_AT), len(frames) - 1)]


def run_benchmark(methods: list[Method], evaluator: SyntheticEvaluator, folder: Path,
                  config: BenchmarkConfig = BenchmarkConfig(), faces: FaceSettings = FaceSettings(),
                  batch_size: int = 16, progress: Callable[[str], None] | None = None,
                  sheet_clip: int = 0, smooth: SmoothSettings = SmoothSettings()) -> BenchmarkResult:
    """Edit every held-out clip to every target with every method and score the edits."""
    say = progress or (lambda _: None)
    clips = render_heldout_set(folder, config, say)
    scores: dict[str, list[SyntheticScores]] = {kind: [] for kind in REF_KINDS}
    real = [(emotion, name, real_reference_still(path)) for (emotion, name), (_, path)
            in zip(_real_names(config), config.real_refs)]
    if real:
        scores[REAL] = []
    sheet: list[dict] = []
    shared_faces = _Faces(faces)
    stills: dict[tuple[int, str], np.ndarray] = {}  # (speaker, emotion) -> reference frame

    def still(speaker: int, emotion: str) -> np.ndarray:
        if (speaker, emotion) not in stills:
            stills[(speaker, emotion)] = reference_frame(config, speaker, emotion)
        return stills[(speaker, emotion)]

    for c, clip in enumerate(clips):
        frames = read_video_frames(clip)
        align = evaluator.truth(clip).arrays["align_landmarks"]
        mid = len(frames) // 2
        for emotion in config.emotions:
            say(f"{clip.name} -> {emotion}")
            # clip c's cross reference is clip c+1's intra one: each still is rendered once
            refs = {"intra": (c, emotion), "cross": ((c + 1) % len(clips), emotion)}
            shared: dict[str, np.ndarray] = {}  # outputs of methods that ignore the reference
            for method in methods:
                for kind in REF_KINDS:
                    if method.label in shared:
                        edited = shared[method.label]
                    elif method.label == TRUE_ANSWER:  # the ceiling: its own errors are the emotion's legitimate change
                        truth = evaluator.truth(clip)
                        edited = shared[method.label] = np.stack([r.image for r in render_true_answer(truth, emotion, None)])
                    else:
                        ref = refs[kind]
                        edited = _edit_clip(method, c, frames, emotion, ref, still(*ref), shared_faces, batch_size,
                                            smooth)
                        if method.reference_free or method.by_emotion:
                            shared[method.label] = edited
                    scores[kind].append(evaluator.evaluate(EditCase(clip, emotion, edited, method.label)))
                    if c == sheet_clip and kind == "cross" and method.label != TRUE_ANSWER:
                        sheet.append({"emotion": emotion, "label": method.label,
                                      "crop": align_crop(edited[mid], align[mid], SHEET_TILE)})
            if c == sheet_clip:
                answer, _ = evaluator.true_answer(clip, emotion, None)
                ref_crop = shared_faces.reference_crop(refs["cross"], still(*refs["cross"]), SHEET_TILE, 1.0)
                sheet += [{"emotion": emotion, "label": "true answer", "crop": _resize(answer[mid], SHEET_TILE)},
                          {"emotion": emotion, "label": "source", "crop": align_crop(frames[mid], align[mid], SHEET_TILE)},
                          {"emotion": emotion, "label": "reference",
                           "crop": _resize(ref_crop if ref_crop is not None else np.zeros_like(answer[0]), SHEET_TILE)}]
        for emotion, name, image in real:
            say(f"{clip.name} -> {name} ({emotion})")
            for method in methods:
                if method.by_emotion and method.label != TRUE_ANSWER or method.reference_free and method.label != NO_EDIT:
                    continue  # rows that never read a reference: the other tables have them
                if method.label == TRUE_ANSWER:
                    edited = np.stack([r.image for r in render_true_answer(evaluator.truth(clip), emotion, None)])
                else:
                    edited = _edit_clip(method, c, frames, emotion, (REAL, name), image, shared_faces, batch_size,
                                        smooth)
                scores[REAL].append(evaluator.evaluate(EditCase(clip, emotion, edited, method.label)))
                if c == sheet_clip and method.label != TRUE_ANSWER:
                    sheet.append({"emotion": name, "label": method.label, "kind": REAL,
                                  "crop": align_crop(edited[mid], align[mid], SHEET_TILE)})
            if c == sheet_clip:
                ref_crop = shared_faces.reference_crop((REAL, name), image, SHEET_TILE, 1.0)
                sheet += [{"emotion": name, "label": "source", "kind": REAL,
                           "crop": align_crop(frames[mid], align[mid], SHEET_TILE)},
                          {"emotion": name, "label": "reference", "kind": REAL,
                           "crop": ref_crop if ref_crop is not None else np.zeros((SHEET_TILE,) * 2 + (3,), np.uint8)}]
        if c > 0:  # speaker 0's stills are the last clip's cross references; the others are done with
            for key in [k for k in stills if k[0] == c]:
                del stills[key]
    return BenchmarkResult(config, scores, sheet)


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if crop.shape[0] != size else crop


def _edit_clip(method: Method, clip: int, frames: np.ndarray, emotion: str, reference: tuple, image: np.ndarray,
               faces: _Faces, batch_size: int, smooth: SmoothSettings = SmoothSettings()) -> np.ndarray:
    """The frames of one edit, made exactly as ``sserd edit`` makes them (minus the encoder), smoothed over
    time as ``smooth`` says; ``reference`` names the reference still ``image``."""
    model = method.model
    if model is None:
        return frames
    if method.by_emotion or method.reference_free:
        model.set_target(Target(emotion=emotion))
    else:
        model.set_target(faces.reference_target(reference, image, model.resolution, model.zoom))
    items = [FrameItem(i, None, f) for i, f in enumerate(frames)]
    for item, m in zip(items, faces.track(clip, frames, model.resolution, model.zoom)):
        item.m = m
    transfer = Transfer(model) if method.render == "transfer" else None
    TemporalEditor(model, smooth, batch_size, transfer=transfer).edit_all(items)
    return np.stack([item.edited if item.edited is not None else item.rgb for item in items])


def contact_sheet(result: BenchmarkResult, labels: list[str], kind: str = "cross") -> np.ndarray:
    """An RGB image: one row per target emotion (``kind`` "cross"; columns: source, reference of another
    identity, each method's output, the true answer) or per reference file (:data:`REAL`; columns: the
    reference, the source, each method that reads it), aligned face crops of the middle frame of the first clip."""
    import cv2

    real = kind == REAL
    columns = (["reference", "source"] + labels) if real else (["source", "reference"] + labels + ["true answer"])
    entries = [s for s in result.sheet if (s.get("kind") == REAL) == real]
    by = {(s["emotion"], s["label"]): s["crop"] for s in entries}
    head = np.full((24, SHEET_TILE * len(columns), 3), 255, np.uint8)
    for j, name in enumerate(columns):
        cv2.putText(head, name[:18], (j * SHEET_TILE + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [head]
    row_names = [name for _, name in _real_names(result.config)] if real else list(result.config.emotions)
    for name in row_names:
        if (name, "source") not in by:
            continue
        row = np.concatenate([by[(name, column)] for column in columns], axis=1)
        cv2.putText(row, Path(name).stem[:20], (4, SHEET_TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
        rows.append(row)
    return np.concatenate(rows, axis=0)


def _real_names(config: BenchmarkConfig) -> list[tuple[str, str]]:
    """(emotion, file name) of each reference file, as the sheet's rows name them."""
    return [(emotion, Path(path).name) for emotion, path in config.real_refs]


__all__ = ["BenchmarkConfig", "BenchmarkResult", "Method", "HELDOUT_SEED_BASE", "REF_KINDS", "run_benchmark",
           "render_heldout_set", "reference_frame", "contact_sheet", "real_reference_still", "REAL", "NO_EDIT", "RECONSTRUCTION", "DIRECTION", "TRUE_ANSWER"]
