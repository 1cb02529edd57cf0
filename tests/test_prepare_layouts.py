from pathlib import Path

import pytest

from sserd_cli.data.prepare.clips import ClipSource, assign_splits, parse_emotions
from sserd_cli.data.prepare.ravdess import parse_name
from sserd_cli.errors import SserdError


def _clips(n_speakers=3, n_clips=30):
    return [ClipSource(Path(f"{s}_{e}_{i}.mp4"), f"S{s}", e, 1.0, f"S{s}_{e}_{i:03d}")
            for s in range(n_speakers) for e in ("neutral", "happy") for i in range(n_clips)]


def test_split_is_ninety_ten_per_speaker_and_emotion_and_seeded():
    clips = _clips()
    first = assign_splits(clips, 0.1, seed=3)
    for speaker in ("S0", "S1", "S2"):
        for emotion in ("neutral", "happy"):
            group = [c for c in first if c.speaker == speaker and c.emotion == emotion]
            assert sum(c.split == "test" for c in group) == 3 and len(group) == 30
    assert assign_splits(list(reversed(clips)), 0.1, seed=3)[::-1] == first  # order does not matter
    other = assign_splits(clips, 0.1, seed=4)
    assert [c.split for c in other] != [c.split for c in first]


def test_split_fraction_checked():
    with pytest.raises(SserdError, match="test-fraction"):
        assign_splits(_clips(1, 2), 1.5)


def test_ravdess_name_codes():
    assert parse_name("01-01-06-02-01-02-12") == {"modality": 1, "channel": 1, "emotion": 6, "intensity": 2,
                                                  "statement": 1, "repetition": 2, "actor": 12}
    assert parse_name("video_01") is None


def test_parse_emotions():
    assert parse_emotions(None)[0] == "neutral" and len(parse_emotions(None)) == 7
    assert parse_emotions(["angry,sad", "angry"]) == ("angry", "sad")
    with pytest.raises(SserdError, match="unknown emotion 'calm'"):
        parse_emotions(["calm"])
