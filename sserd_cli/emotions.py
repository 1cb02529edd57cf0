"""The seven emotion classes of the paper (after NED, Papantoniou et al. 2022)."""

from .errors import SserdError

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "angry", "surprised", "fear", "sad", "disgusted")
NON_NEUTRAL: tuple[str, ...] = EMOTIONS[1:]


def emotion_index(name: str) -> int:
    """Index of ``name`` in :data:`EMOTIONS`; a clear error for unknown names."""
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise SserdError(f"unknown emotion '{name}': choose one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)
