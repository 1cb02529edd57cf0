"""Which frames an edit changes, how strongly, and towards which target: a timeline of spans.

A span is a stretch of the video ``[start, end)`` in seconds, as a player shows them (from the first
frame), edited towards one of the run's targets at its own strength. Around each span the edit fades in
over ``ramp`` seconds before ``start`` and out over ``ramp`` seconds after ``end``, so the emotion does not
switch on in one frame; inside the span it is at full strength. Frames that no span or ramp reaches are
not edited at all.

At each frame time the timeline gives two numbers per frame:

- ``presence`` in [0, 1]: how much of the model's output is blended over the original face (0: the
  original frame untouched, 1: the model's face). Fading the pixels in, not only the strength, matters:
  even at strength 0 the model's face is a re-rendering of the original, not the original itself;
- ``weights`` [n_targets]: the strength of the edit towards each target. Where two spans' ramps overlap
  their shares are normalised, so the edit crosses from one emotion to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SserdError


@dataclass(frozen=True)
class Span:
    """``[start, end)`` seconds (``end`` None: to the end of the video), edited towards ``target`` (an index
    into the run's targets) at ``strength``."""

    start: float = 0.0
    end: float | None = None
    target: int = 0
    strength: float = 1.0

    def __post_init__(self):
        if self.end is not None and self.end <= self.start:
            raise SserdError(f"span {describe(self)}: the end must come after the start")


WHOLE_VIDEO = (Span(),)


def describe(span: Span) -> str:
    return f"{clock(span.start)}-{'' if span.end is None else clock(span.end)}"


def clock(seconds: float) -> str:
    """``75.5`` -> ``1:15.5``: times in messages in the form the user types them."""
    minutes, rest = divmod(float(seconds), 60.0)
    text = f"{rest:.3f}".rstrip("0").rstrip(".")
    if minutes == 0:
        return text
    hours, minutes = divmod(int(minutes), 60)
    rest_text = text if rest >= 10 else f"0{text}"
    return f"{hours}:{minutes:02d}:{rest_text}" if hours else f"{minutes}:{rest_text}"


def _smoothstep(x: float) -> float:
    # zero slope at both ends: neither the start of the fade nor its arrival at full strength shows as a jolt
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Timeline:
    """The spans of one edit run (non-overlapping; see :func:`check_spans`) and the fade length."""

    spans: tuple[Span, ...] = WHOLE_VIDEO
    ramp: float = 0.0
    n_targets: int = 1

    def __post_init__(self):
        check_spans(self.spans)
        if not self.ramp >= 0:
            raise SserdError(f"--ramp {self.ramp}: must be 0 or more seconds")
        for span in self.spans:
            if not 0 <= span.target < self.n_targets:
                raise ValueError(f"span {describe(span)} names target {span.target} of {self.n_targets}")

    def at(self, t: float) -> tuple[float, np.ndarray]:
        """(presence, weights) at ``t`` seconds from the first frame."""
        reach = np.array([_reach(span, self.ramp, t) for span in self.spans])
        total = float(reach.sum())
        weights = np.zeros(self.n_targets, dtype=np.float64)
        if total <= 0:
            return 0.0, weights
        share = reach / max(total, 1.0)
        for span, part in zip(self.spans, share):
            weights[span.target] += part * span.strength
        return min(total, 1.0), weights

    @property
    def whole(self) -> bool:
        """One span over the whole video: an edit with no time in it (the only kind a still image takes)."""
        return len(self.spans) == 1 and self.spans[0].start <= 0 and self.spans[0].end is None

    def active(self, t: float) -> bool:
        return any(_reach(span, self.ramp, t) > 0 for span in self.spans)

    def span_index(self, t: float) -> int | None:
        """The span whose ``[start, end)`` holds ``t`` (ramps not included), if any."""
        for i, span in enumerate(self.spans):
            if span.start <= t and (span.end is None or t < span.end):
                return i
        return None

    def extent(self) -> tuple[float, float | None]:
        """From the first span's start to the last span's end (None: the end of the video)."""
        ends = [s.end for s in self.spans]
        return min(s.start for s in self.spans), None if any(e is None for e in ends) else max(ends)


def _reach(span: Span, ramp: float, t: float) -> float:
    """How far into ``span`` the time ``t`` is: 1 inside, fading to 0 over ``ramp`` on each side, else 0."""
    if t < span.start:
        return _smoothstep(1.0 - (span.start - t) / ramp) if ramp > 0 and t > span.start - ramp else 0.0
    if span.end is None or t < span.end:
        return 1.0
    return _smoothstep(1.0 - (t - span.end) / ramp) if ramp > 0 and t < span.end + ramp else 0.0


def check_spans(spans: tuple[Span, ...]) -> None:
    """Spans must not overlap (their ramps may): one frame has one span's target at full strength."""
    if not spans:
        raise SserdError("no span to edit")
    ordered = sorted(spans, key=lambda s: s.start)
    for a, b in zip(ordered, ordered[1:]):
        if a.end is None or b.start < a.end:
            raise SserdError(f"spans {describe(a)} and {describe(b)} overlap: give each stretch of the video "
                             "to one span")
