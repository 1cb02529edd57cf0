"""MEAD layout: ``<speaker>/video/front/<emotion>/level_<n>/<clip>.mp4`` (Wang et al., ECCV 2020)."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import SserdError
from .clips import ClipSource, VIDEO_SUFFIXES

# The paper's six MEAD speakers (section 4.1).
PAPER_SPEAKERS = ("M003", "M009", "W029", "M012", "M030", "W015")
# MEAD folder names -> our seven classes; "contempt" has no counterpart in the paper and is skipped.
MEAD_EMOTIONS = {
    "neutral": "neutral", "happy": "happy", "angry": "angry", "surprised": "surprised",
    "fear": "fear", "sad": "sad", "disgusted": "disgusted",
}
MEAD_LEVELS = (1, 2, 3)
_SPEAKER = re.compile(r"^[MW]\d{3}$")
_LEVEL = re.compile(r"^level_(\d+)$")


def walk_mead(root: Path, speakers: list[str] | None = None, emotions: tuple[str, ...] | None = None,
              levels: list[int] | None = None, view: str = "front") -> list[ClipSource]:
    """All clips of the chosen speakers/emotions/levels (the split is drawn later, see ``assign_splits``)."""
    root = Path(root)
    if not root.is_dir():
        raise SserdError(f"MEAD root {root} is not a directory: point it at the folder holding M003/, W015/, ...")
    speakers = list(speakers) if speakers else list(PAPER_SPEAKERS)
    levels = list(levels) if levels else list(MEAD_LEVELS)
    wanted = set(emotions) if emotions else set(MEAD_EMOTIONS.values())
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and _SPEAKER.match(p.name))
    if not present:
        raise SserdError(f"{root} does not look like MEAD (no speaker folders such as M003/ or W015/): "
                         "expected <speaker>/video/front/<emotion>/level_<n>/<clip>.mp4")
    clips: list[ClipSource] = []
    for speaker in speakers:
        if speaker not in present:
            raise SserdError(f"speaker {speaker} not found under {root} (found: {', '.join(present)}): "
                             "unpack its video archive or choose others with --speakers")
        front = root / speaker / "video" / view
        if not front.is_dir():
            raise SserdError(f"{speaker} has no video/{view}/ folder under {root}: unpack {speaker}'s video.tar there")
        for emotion_dir in sorted(p for p in front.iterdir() if p.is_dir()):
            emotion = MEAD_EMOTIONS.get(emotion_dir.name.lower())
            if emotion is None or emotion not in wanted:
                continue
            for level_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                match = _LEVEL.match(level_dir.name)
                if not match or int(match.group(1)) not in levels:
                    continue
                level = int(match.group(1))
                for video in sorted(level_dir.iterdir()):
                    if video.suffix.lower() not in VIDEO_SUFFIXES or not video.is_file():
                        continue
                    clips.append(ClipSource(
                        path=video, speaker=speaker, emotion=emotion, intensity=round(level / 3.0, 6),
                        clip=f"{speaker}_{emotion}_level{level}_{video.stem}",
                    ))
    if not clips:
        raise SserdError(f"no MEAD videos matched under {root} for speakers {', '.join(speakers)}: "
                         "check --speakers/--emotions/--levels")
    return clips
