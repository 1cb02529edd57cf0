"""`sserd eval video`: what an edit did to a real clip, measured against its source with offline tools.

Each frame's face is found in the SOURCE (dlib HOG, followed from frame to frame); the edited frame is read
at that same box, so a face the edit made hard to detect is still measured where it should be.

- speech: mouth opening per frame (68-point landmarks, see :mod:`sserd_cli.faces.measures`); the edit keeps
  the speech when its opening follows the source's (Pearson correlation) and stays close (MAE);
- identity: distance of dlib's face-recognition embeddings, source frame against edited frame, on up to
  ``IDENTITY_FRAMES`` frames spread over the clip (0.1 s a face each);
- emotion: p(EMOTION) of the FER2013 mini-Xception (:mod:`.fer`) in both, when the classifier is installed;
- stability: flicker, the mean absolute change of the face region from one frame to the next (grey levels,
  0-255, the source's box for both clips), of the edit over the source's own;
- expression: what moved, per facial action (:mod:`sserd_cli.faces.actions`: AU1 inner brow raise ... AU20 lip
  stretch), frame-paired edit against source in eye distances, the median over the frames;
- sharpness: the variance of the Laplacian on the face box, the edit's over the source's (1: as sharp; a pasted
  64-px render is far below);
- streams: frame counts, presentation times and audio packets, equal or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SserdError

IDENTITY_FRAMES = 16
SPEECH_CORRELATION = 0.8  # the edit's mouth must follow the source's at least this closely to keep the speech
FLICKER_RATIO = 1.2       # an edit whose face changes more than this much faster than the source's flickers
STILL_MOUTH = 0.02        # source mouth opening standard deviation below which it does not speak


@dataclass
class Series:
    """Per-frame values of both clips (NaN where the source shows no face)."""

    mouth_source: list
    mouth_edit: list
    emotion_source: list
    emotion_edit: list
    actions: list | None = None    # per frame with a face: {action: change in eye distances}
    sharpness: list | None = None  # per frame with a face: (source, edit) variance of the Laplacian


def compare_videos(source: Path, edited: Path, emotion: str | None = None, emotion_model=None,
                   progress=None) -> tuple[dict, Series]:
    """The report (a JSON-ready dict) and the per-frame series for the plot. ``emotion_model``: an
    :class:`~sserd_cli.faces.fer.EmotionClassifier` or None (emotion not measured)."""
    from ..faces.detect import create_detector
    from ..faces.actions import action_changes
    from ..faces.measures import FaceReader, mouth_opening

    infos = check_pair(source, edited)
    total = infos[0].frames or 0
    step = max(1, total // IDENTITY_FRAMES) if total else 5
    detector, reader = create_detector("dlib"), FaceReader()
    series = Series([], [], [], [], [], [])
    identity, flicker = [], ([], [])
    previous, box, faces = None, None, 0
    for index, (a, b) in enumerate(_frame_pairs(source, edited, infos)):
        found = detector.detect(a, near=box)
        box = found[0].box if found else None
        if box is None:
            for values in (series.mouth_source, series.mouth_edit, series.emotion_source, series.emotion_edit):
                values.append(math.nan)
            previous = None
            continue
        faces += 1
        points = reader.steady_landmarks(a, box), reader.steady_landmarks(b, box)
        series.mouth_source.append(mouth_opening(points[0]))
        series.mouth_edit.append(mouth_opening(points[1]))
        series.actions.append(action_changes(*points))
        series.sharpness.append((_sharpness(a, box), _sharpness(b, box)))
        if emotion_model is not None:
            series.emotion_source.append(emotion_model.probabilities(a, box)[emotion or "neutral"])
            series.emotion_edit.append(emotion_model.probabilities(b, box)[emotion or "neutral"])
        if index % step == 0:
            identity.append(float(np.linalg.norm(reader.embedding(a, box) - reader.embedding(b, box))))
        crops = _grey_box(a, box), _grey_box(b, box)
        if previous is not None:
            for k in range(2):
                flicker[k].append(float(np.abs(crops[k] - _grey_box(previous[k], box)).mean()))
        previous = (a, b)
        if progress is not None:
            progress(1)
    if faces == 0:
        raise SserdError(f"{source}: no face found in any frame: eval video measures a face")
    report = {
        "source": str(source), "edited": str(edited), "emotion": emotion,
        "frames": {"compared": len(series.mouth_source), "with_face": faces},
        "speech": _speech(series),
        "identity": _identity(identity),
        "emotion_probability": _emotion(series, emotion, emotion_model),
        "flicker": _flicker(*flicker),
        "expression": _expression(series.actions),
        "sharpness": _sharpness_ratio(series.sharpness),
        "streams": _streams(source, edited, infos),
    }
    return report, series


def check_pair(source: Path, edited: Path):
    """Both clips' :class:`VideoInfo`; clips whose headers give different frame counts cannot be compared."""
    from ..media.probe import probe_video

    infos = probe_video(source), probe_video(edited)
    if infos[0].frames and infos[1].frames and infos[0].frames != infos[1].frames:
        raise SserdError(f"{source} has {infos[0].frames} frames and {edited} {infos[1].frames}: eval video compares "
                         "a clip with its edit frame by frame (edit without --trim, or cut the source the same way)")
    return infos


def _frame_pairs(source: Path, edited: Path, infos):
    """Upright RGB frames of both clips in step; a clip that ends first is an error."""
    import itertools

    from ..media.decode import decode_frames
    from ..media.frames import FrameConverter

    converters = FrameConverter(), FrameConverter()
    streams = decode_frames(infos[0]), decode_frames(infos[1])
    count = 0
    for a, b in itertools.zip_longest(*streams):
        if a is None or b is None:
            longer = itertools.chain([a if b is None else b], streams[0] if b is None else streams[1])
            rest = sum(1 for _ in longer)
            counts = (count + rest, count) if b is None else (count, count + rest)
            raise SserdError(f"{source} has {counts[0]} frames and {edited} {counts[1]}: eval video compares a clip "
                             "with its edit frame by frame")
        pair = []
        for frame, info, converter in zip((a, b), infos, converters):
            rgb = converter.to_rgb(frame)
            turns = (info.rotation // 90) % 4
            pair.append(np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb)
        if pair[0].shape != pair[1].shape:
            raise SserdError(f"{source} is {pair[0].shape[1]}x{pair[0].shape[0]} and {edited} "
                             f"{pair[1].shape[1]}x{pair[1].shape[0]}: eval video compares frames of one size")
        count += 1
        yield pair


def _sharpness(rgb: np.ndarray, box) -> float:
    """:func:`~sserd_cli.faces.measures.sharpness` of the face box."""
    from ..faces.measures import sharpness

    return sharpness(_grey_box(rgb, box))


def _expression(actions: list) -> dict:
    """Per action: the median over the frames of its frame-paired change, in eye distances."""
    from ..faces.actions import ACTIONS

    return {code: {"name": name, "change": float(np.median([a[code] for a in actions])) if actions else math.nan}
            for code, name in ACTIONS}


def _sharpness_ratio(pairs: list) -> dict | None:
    if not pairs:
        return None
    s, e = (float(np.mean([p[k] for p in pairs])) for k in range(2))
    return {"source": s, "edited": e, "ratio": e / s if s > 0 else math.nan}


def _grey_box(rgb: np.ndarray, box) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(math.ceil(box[2])), w), min(int(math.ceil(box[3])), h)
    return cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _finite(*columns):
    keep = np.all([np.isfinite(np.asarray(c, dtype=np.float64)) for c in columns], axis=0)
    return [np.asarray(c, dtype=np.float64)[keep] for c in columns]


def _speech(series: Series) -> dict:
    src, edit = _finite(series.mouth_source, series.mouth_edit)
    moving = float(src.std()) >= STILL_MOUTH
    corr = float(np.corrcoef(src, edit)[0, 1]) if len(src) > 2 and src.std() > 0 and edit.std() > 0 else (
        1.0 if len(src) and np.allclose(src, edit) else 0.0)
    mae = float(np.abs(src - edit).mean())
    # a still source mouth says nothing by correlation (its wiggle is landmark noise): judged by the MAE alone
    kept = corr >= SPEECH_CORRELATION if moving else mae <= STILL_MOUTH
    return {"mouth_correlation": corr, "mouth_mae": mae, "source_mouth_std": float(src.std()),
            "edit_mouth_std": float(edit.std()), "source_speaks": moving, "kept": bool(kept)}


def _identity(distances: list) -> dict:
    from ..faces.measures import SAME_PERSON

    d = np.asarray(distances, dtype=np.float64)
    return {"distance_mean": float(d.mean()), "distance_max": float(d.max()), "frames": len(d),
            "same_person_below": SAME_PERSON, "kept": bool(d.mean() < SAME_PERSON)}


def _emotion(series: Series, emotion: str | None, model) -> dict | None:
    if model is None:
        return None
    src, edit = _finite(series.emotion_source, series.emotion_edit)
    return {"class": emotion or "neutral", "source": float(src.mean()), "edited": float(edit.mean()),
            "change": float(edit.mean() - src.mean()), "model": str(model.path)}


def _flicker(source: list, edit: list) -> dict | None:
    if not source:
        return None
    s, e = float(np.mean(source)), float(np.mean(edit))
    ratio = e / s if s > 0 else (1.0 if e == 0 else math.inf)
    return {"source": s, "edited": e, "ratio": ratio, "stable": bool(ratio <= FLICKER_RATIO)}


def _streams(source: Path, edited: Path, infos) -> dict:
    """Frame times and audio packets of both files."""
    import av

    def read(path: Path, info):
        with av.open(str(path)) as c:
            video = c.streams.video[0]
            times = [float((p.pts - info.start_pts) * video.time_base) for p in c.demux(video) if p.pts is not None]
        with av.open(str(path)) as c:
            audio = [bytes(p) for s in c.streams.audio for p in c.demux(s) if p.size]
        return sorted(times), audio

    (ta, aa), (tb, ab) = read(source, infos[0]), read(edited, infos[1])
    pts_equal = len(ta) == len(tb) and bool(np.allclose(ta, tb, atol=1e-6))
    return {"frames_equal": len(ta) == len(tb), "pts_equal": pts_equal, "audio_packets": [len(aa), len(ab)],
            "audio_equal": aa == ab}


def plot(series: Series, emotion: str | None, path: Path) -> None:
    """A PNG of mouth opening and p(emotion) over the frames, source (blue) against edit (orange); OpenCV only."""
    import cv2

    panels = [("mouth opening", series.mouth_source, series.mouth_edit)]
    if series.emotion_source:
        panels.append((f"p({emotion or 'neutral'})", series.emotion_source, series.emotion_edit))
    w, h, pad = 960, 260, 50
    canvas = np.full((h * len(panels), w, 3), 255, np.uint8)
    for k, (title, a, b) in enumerate(panels):
        top = k * h
        values = np.asarray(a + b, dtype=np.float64)
        high = max(float(np.nanmax(values)) if np.isfinite(values).any() else 1.0, 1e-3) * 1.1
        cv2.rectangle(canvas, (pad, top + 30), (w - 20, top + h - 30), (200, 200, 200), 1)
        cv2.putText(canvas, f"{title} (0 to {high:.2f}): source blue, edit orange", (pad, top + 22),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        for series_values, colour in ((a, (200, 110, 30)), (b, (30, 140, 250))):  # BGR
            n = max(len(series_values) - 1, 1)
            points = [(pad + int(i * (w - 20 - pad) / n), top + h - 30 - int(v / high * (h - 60)))
                      for i, v in enumerate(series_values) if math.isfinite(v)]
            if len(points) > 1:
                cv2.polylines(canvas, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
    if not cv2.imwrite(str(path), canvas):
        raise SserdError(f"{path}: cannot write the plot")


__all__ = ["compare_videos", "plot", "Series", "SPEECH_CORRELATION", "FLICKER_RATIO"]
