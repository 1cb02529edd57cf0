"""RAVDESS layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4`` (Livingstone & Russo, 2018).

Codes: modality (01 full AV, 02 video only, 03 audio only), vocal channel
(01 speech, 02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad,
05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal,
02 strong), statement, repetition, actor.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import SserdError
from .clips import ClipSource

PAPER_ACTORS = (1, 2, 3, 4, 5, 6)
RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgusted", 8: "surprised"}
INTENSITY = {1: 0.5, 2: 1.0}
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR = re.compile(r"^Actor_(\d{2})$")


def parse_name(stem: str) -> dict | None:
    """The seven codes of a RAVDESS file name, or None when the name is not one."""
    match = _NAME.match(stem)
    if not match:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = (int(g) for g in match.groups())
    return {"modality": modality, "channel": channel, "emotion": emotion, "intensity": intensity,
            "statement": statement, "repetition": repetition, "actor": actor}


def walk_ravdess(root: Path, actors: list[int] | None = None, emotions: tuple[str, ...] | None = None,
                 levels: list[int] | None = None, calm: str = "neutral") -> list[ClipSource]:
    """Speech videos of the chosen actors, calm folded into neutral (``calm="neutral"``) or dropped (``"drop"``).

    Full-AV (01) and video-only (02) files of the same take are the same
    recording; the full-AV file is kept because it carries the audio LSE-D needs.
    """
    root = Path(root)
    if not root.is_dir():
        raise SserdError(f"RAVDESS root {root} is not a directory: point it at the folder holding Actor_01/, Actor_02/, ...")
    if calm not in ("neutral", "drop"):
        raise SserdError(f"calm handling must be 'neutral' or 'drop', got '{calm}'")
    actor_dirs = {int(m.group(1)): p for p in root.iterdir() if p.is_dir() and (m := _ACTOR.match(p.name))}
    if not actor_dirs:
        raise SserdError(f"{root} does not look like RAVDESS (no Actor_XX folders): "
                         "expected Actor_01/01-01-03-01-01-01-01.mp4 and so on")
    actors = list(actors) if actors else list(PAPER_ACTORS)
    wanted = set(emotions) if emotions else None
    takes: dict[tuple, tuple[int, Path, dict]] = {}
    for actor in actors:
        folder = actor_dirs.get(actor)
        if folder is None:
            raise SserdError(f"Actor_{actor:02d} not found under {root}: unpack its video archive or choose others with --speakers")
        for video in sorted(folder.iterdir()):
            codes = parse_name(video.stem)
            if codes is None or not video.is_file() or codes["modality"] not in (1, 2) or codes["channel"] != 1:
                continue
            take = (codes["actor"], codes["emotion"], codes["intensity"], codes["statement"], codes["repetition"])
            if take not in takes or codes["modality"] < takes[take][0]:
                takes[take] = (codes["modality"], video, codes)
    clips: list[ClipSource] = []
    for _take, (_, video, codes) in sorted(takes.items()):
        emotion = RAVDESS_EMOTIONS.get(codes["emotion"])
        if emotion is None:
            continue
        if emotion == "calm":
            if calm == "drop":
                continue
            emotion = "neutral"
        if wanted is not None and emotion not in wanted:
            continue
        if levels and codes["intensity"] not in levels:
            continue
        speaker = f"Actor_{codes['actor']:02d}"
        clips.append(ClipSource(path=video, speaker=speaker, emotion=emotion,
                                intensity=INTENSITY.get(codes["intensity"], 1.0), clip=f"{speaker}_{video.stem}"))
    if not clips:
        raise SserdError(f"no RAVDESS speech videos (modality 01/02, channel 01) matched under {root}: "
                         "check --speakers/--emotions/--levels")
    return clips
