"""Any folder of labelled videos: a CSV with columns ``path,speaker,emotion`` (optional ``intensity``, ``split``)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ...emotions import EMOTIONS
from ...errors import SserdError
from .clips import ClipSource

LABEL_FILES = ("labels.csv", "index.csv")
# common spellings of the seven classes in other datasets
ALIASES = {"fearful": "fear", "scared": "fear", "surprise": "surprised", "disgust": "disgusted",
           "anger": "angry", "happiness": "happy", "sadness": "sad", "calm": "neutral"}


def _label_file(root: Path) -> Path:
    if root.is_file():
        return root
    for name in LABEL_FILES:
        if (root / name).is_file():
            return root / name
    raise SserdError(f"no labels.csv in {root}: give a CSV with columns path,speaker,emotion (paths relative to it)")


def walk_folder(root: Path, speakers: list[str] | None = None, emotions: tuple[str, ...] | None = None) -> list[ClipSource]:
    """Clips listed in the CSV; a ``split`` column fixes a clip's split, the others are drawn 90/10."""
    root = Path(root)
    if not root.exists():
        raise SserdError(f"{root} does not exist: give a folder holding labels.csv, or the CSV itself")
    label_file = _label_file(root)
    base = label_file.parent
    clips: list[ClipSource] = []
    with label_file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "speaker", "emotion"} - set(reader.fieldnames or ())
        if missing:
            raise SserdError(f"{label_file} lacks columns {sorted(missing)}: it needs path,speaker,emotion")
        for line, row in enumerate(reader, start=2):
            emotion = ALIASES.get(row["emotion"].strip().lower(), row["emotion"].strip().lower())
            if emotion not in EMOTIONS:
                raise SserdError(f"{label_file}:{line}: unknown emotion '{row['emotion']}': use one of {', '.join(EMOTIONS)}")
            speaker = row["speaker"].strip()
            if speakers and speaker not in speakers:
                continue
            if emotions and emotion not in emotions:
                continue
            path = Path(row["path"].strip())
            path = path if path.is_absolute() else base / path
            try:
                intensity = float(row.get("intensity") or 1.0)
            except ValueError:
                raise SserdError(f"{label_file}:{line}: intensity must be a number in [0, 1]") from None
            clip_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{speaker}_{Path(row['path']).with_suffix('').as_posix()}")
            split = (row.get("split") or "").strip().lower() or None
            if split not in (None, "train", "test"):
                raise SserdError(f"{label_file}:{line}: split must be train or test, got '{split}'")
            clips.append(ClipSource(path=path, speaker=speaker, emotion=emotion, intensity=intensity, clip=clip_id,
                                    split=split))
    if len({c.clip for c in clips}) != len(clips):
        raise SserdError(f"{label_file} lists the same video twice for one speaker: remove the duplicate rows")
    if not clips:
        raise SserdError(f"{label_file} has no rows matching the chosen speakers/emotions")
    return clips
