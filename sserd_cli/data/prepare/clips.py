"""What a layout walker returns: one labelled source video, and the seeded train/test split."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from ...emotions import EMOTIONS
from ...errors import SserdError


@dataclass(frozen=True)
class ClipSource:
    """One source video with its labels; ``clip`` is unique inside the dataset."""

    path: Path
    speaker: str
    emotion: str  # one of EMOTIONS
    intensity: float  # 0..1
    clip: str
    split: str | None = None  # None: drawn by assign_splits; "train"/"test": fixed by the layout


def assign_splits(clips: list[ClipSource], test_fraction: float = 0.1, seed: int = 0) -> list[ClipSource]:
    """The paper's 90/10 split by clip, drawn per speaker and emotion with a seeded shuffle.

    Clips whose split is already fixed keep it and take no part in the draw.
    ``sserd prepare`` draws among the clips that gave crops, so a broken video
    never takes a test slot.

    Stratifying by emotion inside each speaker keeps every emotion present in
    the test split (the evaluation needs them all); the draw depends only on
    the seed and the clip names, so re-running ``prepare`` on a subset of the
    same data keeps each clip on the same side where the groups are the same.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise SserdError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    groups: dict[tuple[str, str], list[ClipSource]] = {}
    for clip in clips:
        if clip.split is not None:
            continue
        groups.setdefault((clip.speaker, clip.emotion), []).append(clip)
    test_ids: set[str] = set()
    for (speaker, emotion), members in sorted(groups.items()):
        names = sorted(member.clip for member in members)
        # a stable per-group seed (crc32, not hash(), which changes between processes)
        rng = random.Random(seed * 1_000_003 + zlib.crc32(f"{speaker}/{emotion}".encode()))
        rng.shuffle(names)
        n_test = round(len(names) * test_fraction)
        if n_test == 0 and test_fraction > 0 and len(names) >= 2:
            n_test = 1
        test_ids.update(names[:n_test])
    return [clip if clip.split is not None else replace(clip, split="test" if clip.clip in test_ids else "train")
            for clip in clips]


def parse_emotions(names: list[str] | None) -> tuple[str, ...]:
    """Validate a ``--emotions`` selection (None = all seven)."""
    if not names:
        return EMOTIONS
    chosen = []
    for name in names:
        for part in name.split(","):
            key = part.strip().lower()
            if not key:
                continue
            if key not in EMOTIONS:
                raise SserdError(f"unknown emotion '{part}' in --emotions: choose from {', '.join(EMOTIONS)}")
            chosen.append(key)
    return tuple(dict.fromkeys(chosen))


def split_list(values: list[str] | None) -> list[str]:
    """``["a,b", "c"] -> ["a", "b", "c"]`` (options accept repeats and comma lists)."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".flv")
