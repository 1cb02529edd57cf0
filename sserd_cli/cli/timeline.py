"""`sserd edit`'s time options as the user types them: times, strengths, ``--span START-END=TARGET@S``.

Parsing only; what a timeline does to the frames is :mod:`sserd_cli.pipeline.spans`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..emotions import EMOTIONS
from ..errors import SserdError
from ..pipeline.spans import Span, Timeline

# 0 keeps the source, 1 is the model's edit. Measured with the default model on the bundled clips: at 2 no
# pixel of the face clips; from 3 on the code leaves the range the generator knows and the face breaks up
# (clipped pixels, then noise), so larger values are refused rather than written.
MAX_STRENGTH = 2.0
DEFAULT_RAMP = 0.3  # seconds: about 8 frames at 25 fps, a fade the eye follows rather than a switch
# frames each side over which the edit's codes are smoothed (pipeline.temporal.SmoothSettings.radius): 2 is
# sigma 1 frame, which keeps a syllable's mouth motion (4-5 Hz at 25 fps) and removes frame-to-frame shimmer
SMOOTH_RADIUS = 2
SMOOTH_MAX = 12  # half a second at 25 fps: a longer window lags a turning head

TIME_FORMS = "use seconds (12.5) or [hh:]mm:ss (1:02.5)"


@dataclass(frozen=True)
class TargetSpec:
    """What a span edits towards, as given: an emotion name or a reference file."""

    emotion: str | None = None
    ref: Path | None = None

    def text(self) -> str:
        return self.emotion if self.emotion is not None else str(self.ref)


def parse_time(text: str | None, flag: str) -> float | None:
    """Seconds from '12.5', '1:02.5' or '0:01:02.5'."""
    if text is None:
        return None
    parts = text.strip().split(":")
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        raise SserdError(f"{flag} '{text}' is not a time: {TIME_FORMS}") from None
    if not math.isfinite(seconds) or seconds < 0 or len(parts) > 3:
        raise SserdError(f"{flag} '{text}' is not a time: {TIME_FORMS}")
    return seconds


def check_strength(value: float, flag: str = "--strength") -> float:
    if not math.isfinite(value) or not 0.0 <= value <= MAX_STRENGTH:
        raise SserdError(f"{flag} {value}: must be a number from 0 (keep the source) to {MAX_STRENGTH:g} "
                         f"(1 is the model's edit)")
    return float(value)


def check_ramp(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise SserdError(f"--ramp {value}: must be 0 or more seconds")
    return float(value)


def parse_span(text: str, default_strength: float) -> tuple[float, float | None, TargetSpec | None, float]:
    """``START-END[=TARGET][@STRENGTH]`` -> (start, end or None, target or None, strength).

    START may be left out (the beginning), END too (the end of the video); TARGET is an emotion name or a
    reference image or video; without it the span takes --emotion / --ref."""
    flag = f"--span '{text}'"
    times, has_target, rest = text.strip().partition("=")
    strength_text = None
    if has_target:
        target_text, at, tail = rest.rpartition("@")
        if at and (_is_number(tail) or target_text.strip().lower() in EMOTIONS):
            rest, strength_text = target_text, tail  # "happy@x": a strength that is not a number, said below
    else:
        times, at, tail = times.partition("@")
        strength_text = tail if at else None
    start_text, dash, end_text = times.partition("-")
    if not dash or "-" in end_text:
        raise SserdError(f"{flag} is not START-END[=TARGET][@STRENGTH], e.g. 0:02-0:05=happy@0.5")
    start = parse_time(start_text, f"--span '{text}' start") if start_text.strip() else 0.0
    end = parse_time(end_text, f"--span '{text}' end") if end_text.strip() else None
    if end is not None and end <= start:
        raise SserdError(f"{flag}: the end must come after the start")
    strength = default_strength
    if strength_text is not None:
        if not _is_number(strength_text):
            raise SserdError(f"{flag}: '@{strength_text}' is not a strength (a number from 0 to {MAX_STRENGTH:g})")
        strength = check_strength(float(strength_text), f"{flag} strength")
    target = _target(rest.strip(), flag) if has_target else None
    return start, end, target, strength


def _target(text: str, flag: str) -> TargetSpec:
    if not text:
        raise SserdError(f"{flag}: nothing after '=': give an emotion name or a reference file")
    if text.lower() in EMOTIONS:
        return TargetSpec(emotion=text.lower())
    path = Path(text)
    if not path.exists():
        raise SserdError(f"{flag}: '{text}' is neither an emotion ({', '.join(EMOTIONS)}) nor an existing "
                         "reference file")
    return TargetSpec(ref=path)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_timeline(spans: list[str], start: str | None, end: str | None, default: TargetSpec | None,
                   strength: float, ramp: float) -> tuple[Timeline, list[TargetSpec]]:
    """The run's timeline and its distinct targets (a span's ``target`` indexes them).

    No time option: the whole video. ``--start``/``--end``: one span with the command's target.
    ``--span`` (repeatable): each with its own target, or the command's."""
    if spans and (start is not None or end is not None):
        raise SserdError("give either --start/--end or --span, not both (--span START-END does the same)")
    if spans:
        parsed = [parse_span(text, strength) for text in spans]
    else:
        t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
        if t0 is not None and t1 is not None and t1 <= t0:
            raise SserdError(f"--end ({end}) must be after --start ({start})")
        parsed = [(t0 or 0.0, t1, None, strength)]
    targets: list[TargetSpec] = []
    made = []
    for t0, t1, target, s in parsed:
        target = target or default
        if target is None:
            raise SserdError("give --emotion NAME or --ref REF, or a target in every --span (START-END=happy)")
        if target not in targets:
            targets.append(target)
        made.append(Span(t0, t1, targets.index(target), s))
    return Timeline(tuple(made), ramp, n_targets=len(targets)), targets
