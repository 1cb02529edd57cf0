"""The edit target from ``--ref`` (an image, or a video whose most expressive frames are kept) or ``--emotion``.

A reference is checked like a source: it must show one face, frontal enough and large enough to read its
expression. Each kept face is also read by the real-face emotion classifier (:mod:`sserd_cli.faces.fer`), so
that a model which does not know the reference's kind of face can still go towards what it shows (see
:class:`~sserd_cli.pipeline.models.SserdModel`); that reading also ranks a video's frames by expressiveness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SserdError
from ..faces.align import warp_to_crop
from ..faces.detect import Face
from ..media.decode import decode_frames
from ..media.image import read_image
from ..media.probe import is_image_path, probe_video
from .faces import FaceFollower, FaceSettings
from .models import Target

REFERENCE_FRAMES = 8  # frames of a reference video whose codes (or readings) are averaged


@dataclass(frozen=True)
class ReferenceSettings:
    """What a reference must be, and how a video reference is sampled."""

    frames: int = REFERENCE_FRAMES  # the most expressive frames kept from a video
    sampled: int = 48               # frames spread over a video that are read to choose them
    min_eye_distance: float = 20.0  # pixels: about the classifier's 48-px training faces (FER2013); less is blur
    max_turn: float = 0.3           # nose-tip offset from the eyes' midline, in eye distances: more is a profile
    rival: float = 0.6              # a second face this wide and this sure (shares of the main one's) is ambiguous


def make_target(ref: str | Path | None, emotion: str | None, size: int, zoom: float = 1.0,
                faces: FaceSettings = FaceSettings(), settings: ReferenceSettings = ReferenceSettings(),
                reader=None) -> Target:
    """Validate ``--ref``/``--emotion`` (exactly one) and build the target; a reference must show a face.
    ``reader``: an :class:`~sserd_cli.faces.fer.EmotionClassifier`, or None for the shipped one (when this
    installation has it; without it the target has no reading)."""
    if (ref is None) == (emotion is None):
        raise SserdError("give exactly one of --ref REF (an image or video of the wanted emotion) or --emotion NAME")
    if emotion is not None:
        return Target(emotion=emotion)
    if reader is None:
        reader = default_reader()
    crops, readings = read_reference(Path(ref), size, zoom, faces, settings, reader)
    return Target(reference=crops, reading=mean_reading(readings) if readings else None)


def default_reader():
    """The shipped real-face emotion classifier, or None where this installation lacks it."""
    from ..faces.fer import EmotionClassifier, shipped_emotion_model

    return EmotionClassifier() if shipped_emotion_model() is not None else None


def read_reference(path: Path, size: int, zoom: float, faces: FaceSettings, settings: ReferenceSettings,
                   reader) -> tuple[np.ndarray, list[dict] | None]:
    """(aligned crops [N, size, size, 3], the reader's p(class) per crop or None without a reader) of the
    reference's face: the image's one face, or a video's ``settings.frames`` most expressive faces (lowest
    p(neutral) by the reader; the first ones without a reader)."""
    follower = FaceFollower(faces, size, zoom)
    if is_image_path(path):
        crop, reading = read_face(read_image(path), follower, settings, reader, path)
        return crop[None], [reading] if reading is not None else None
    found, problem = [], None
    for rgb in sampled_frames(path, settings.sampled):
        try:
            found.append(read_face(rgb, follower, settings, reader, path))
        except SserdError as error:
            problem = error  # a frame without one clear face is skipped; the last reason is told if none has one
    if not found:
        raise problem or SserdError(f"{path}: no frame of the reference video could be read")
    if reader is not None:
        found.sort(key=lambda pair: pair[1].get("neutral", 0.0))  # stable: ties keep the video's order
    kept = found[:settings.frames]
    readings = [r for _, r in kept] if reader is not None else None
    return np.stack([c for c, _ in kept]), readings


def read_face(rgb: np.ndarray, follower: FaceFollower, settings: ReferenceSettings, reader,
              name) -> tuple[np.ndarray, dict | None]:
    """(aligned crop at the follower's size, the reader's p(class) or None) of one picture's checked face."""
    face = checked_face(follower.detector.detect(rgb), settings, name)
    reading = reader.read(rgb, face.box) if reader is not None else None
    return warp_to_crop(rgb, follower.alignment(face), follower.size), reading


def image_target(rgb: np.ndarray, follower: FaceFollower, reader=None, name="reference",
                 settings: ReferenceSettings = ReferenceSettings()) -> Target:
    """The target of one reference picture already in memory (the benchmark's stills)."""
    crop, reading = read_face(rgb, follower, settings, reader, name)
    return Target(reference=crop[None], reading=reading)


def sampled_frames(path: Path, count: int):
    """Upright RGB frames spread evenly over a video (over its first ~10 s where the header gives no length)."""
    info = probe_video(path)
    turns = (info.rotation // 90) % 4
    step = max(1, (info.frames or int(10 * float(info.rate or 25))) // count)
    taken = 0
    for index, frame in enumerate(decode_frames(info)):
        if index % step:
            continue
        rgb = frame.to_ndarray(format="rgb24")
        yield np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb
        taken += 1
        if taken >= count:
            return


def checked_face(faces: list[Face], settings: ReferenceSettings, path) -> Face:
    """The reference's one face, or one clear line on why it cannot serve: none, several, too small, a profile."""
    if not faces:
        raise SserdError(f"{path}: no face found in the reference; use an image or video where one face is "
                         "clearly visible, or --emotion NAME")
    faces = sorted(faces, key=lambda f: -f.width)
    main = faces[0]
    # a rival is as large and as sure as the main face: a weak detection on a badge or a poster does not count
    rivals = [f for f in faces[1:] if f.width >= settings.rival * main.width and f.score >= settings.rival * main.score]
    if rivals:
        raise SserdError(f"{path}: the reference shows {1 + len(rivals)} faces of similar size; crop it to the one "
                         "face whose expression you want")
    left, right, nose = main.landmarks[0], main.landmarks[1], main.landmarks[2]
    eyes = float(np.linalg.norm(right - left))
    if eyes < settings.min_eye_distance:
        raise SserdError(f"{path}: the reference's face is too small ({eyes:.0f} pixels between the eyes, "
                         f"{settings.min_eye_distance:.0f} needed) to read its expression; use a larger or "
                         "closer picture of the face")
    across = (right - left) / max(eyes, 1e-6)
    turn = abs(float(np.dot(nose - (left + right) / 2, across))) / max(eyes, 1e-6)
    if turn > settings.max_turn:
        raise SserdError(f"{path}: the reference's face is turned away (nose {turn:.2f} eye distances off the "
                         f"eyes' midline, at most {settings.max_turn:.2f}); use a frontal picture of the face")
    return main


def mean_reading(readings: list[dict]) -> dict[str, float]:
    """The readings of several frames as one: their geometric mean, normalised (one sure frame does not drown
    the others as an arithmetic mean lets it)."""
    names = list(readings[0])
    logs = np.log(np.clip([[r[k] for k in names] for r in readings], 1e-6, 1.0)).mean(axis=0)
    p = np.exp(logs - logs.max())
    return dict(zip(names, (float(v) for v in p / p.sum())))
