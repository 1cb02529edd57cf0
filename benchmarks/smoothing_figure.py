"""A picture of `sserd edit --smooth`: one held-out benchmark clip edited with per-frame codes and with the
smoothed ones (not a test: run it and look).

Rows: consecutive aligned face crops of the true answer, the edit at ``--smooth 0`` and at ``--smooth N``, each
above its frame-to-frame difference (amplified, so a shimmer shows as speckle); then the oracle's mouth opening
over the whole clip, source against both edits (the smoothing must leave the lips where the speech puts them).

    python benchmarks/smoothing_figure.py --out docs/figures/smoothing.png
    python benchmarks/smoothing_figure.py --model PATH/TO/BUNDLE --emotion fear --set /tmp/bench-set
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

TILE = 96
GAIN = 6  # difference maps: |change| x GAIN grey levels


def edit_clip(model, frames: np.ndarray, tracks: list, radius: int) -> np.ndarray:
    from sserd_cli.pipeline.edit import FrameItem
    from sserd_cli.pipeline.temporal import SmoothSettings, TemporalEditor

    items = TemporalEditor(model, SmoothSettings(radius=radius), batch_size=8).edit_all(
        FrameItem(i, None, f, m) for i, (f, m) in enumerate(zip(frames, tracks)))
    return np.stack([item.edited if item.edited is not None else item.rgb for item in items])


def strip(crops: np.ndarray, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Tiles of frames first..first+count-1 and of their change from the frame before."""
    tiles = [cv2.resize(c, (TILE, TILE), interpolation=cv2.INTER_AREA) for c in crops[first - 1:first + count]]
    diffs = [np.clip(np.abs(b.astype(np.int16) - a.astype(np.int16)).mean(-1) * GAIN, 0, 255).astype(np.uint8)
             for a, b in zip(tiles[:-1], tiles[1:])]
    return np.hstack(tiles[1:]), np.hstack([cv2.cvtColor(d, cv2.COLOR_GRAY2RGB) for d in diffs])


def label(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, image])


def curves(series: list[tuple[str, np.ndarray, tuple, int]], width: int, height: int = 180) -> np.ndarray:
    """(name, values, colour, thickness) lines on one scale; a thick line under a thin one shows where they agree."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    lo = min(float(s.min()) for _, s, _, _ in series)
    hi = max(float(s.max()) for _, s, _, _ in series)
    span = max(hi - lo, 1e-6)
    for k, (name, values, colour, thickness) in enumerate(series):
        xs = np.linspace(40, width - 10, len(values))
        ys = height - 25 - (values - lo) / span * (height - 55)
        cv2.polylines(canvas, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)
        cv2.putText(canvas, name, (40 + 210 * k, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    cv2.putText(canvas, "mouth opening (oracle) over the clip's frames", (40, height - 6), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sserd-synthetic")
    parser.add_argument("--emotion", default="angry")
    parser.add_argument("--clip", type=int, default=0, help="held-out clip (its cross reference: the next speaker)")
    parser.add_argument("--smooth", type=int, default=2)
    parser.add_argument("--first", type=int, default=8, help="first frame of the strips")
    parser.add_argument("--count", type=int, default=8, help="frames in the strips")
    parser.add_argument("--set", type=Path, default=None, help="the benchmark's held-out set (rendered if missing)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/smoothing.png"))
    args = parser.parse_args()

    from sserd_cli.data.synth.truth import align_crop, read_video_frames
    from sserd_cli.faces.align import warp_to_crop
    from sserd_cli.metrics.benchmark import BenchmarkConfig, reference_frame, render_heldout_set
    from sserd_cli.metrics.synthetic import SyntheticEvaluator, face_motion
    from sserd_cli.pipeline.edit import FrameItem
    from sserd_cli.pipeline.faces import FaceFollower, FaceSettings
    from sserd_cli.pipeline.models import Target, load_model

    config = BenchmarkConfig(speakers=max(2, args.clip + 2))
    with tempfile.TemporaryDirectory(prefix="sserd-fig-") as tmp:
        clips = render_heldout_set(args.set or Path(tmp), config)
        clip = clips[args.clip]
        frames = read_video_frames(clip)
        model = load_model(args.model, "cpu")
        follower = FaceFollower(FaceSettings(), model.resolution, model.zoom)
        still = reference_frame(config, (args.clip + 1) % len(clips), args.emotion)
        model.set_target(Target(reference=warp_to_crop(still, follower.align_still(still), model.resolution)[None]))
        tracks = [item.m for item in follower.follow(FrameItem(i, None, f) for i, f in enumerate(frames))]
        evaluator = SyntheticEvaluator(crop_size=256)
        align = evaluator.truth(clip).arrays["align_landmarks"]
        answer, _ = evaluator.true_answer(clip, args.emotion, None)
        rows, mouths = [], []
        source = np.stack([align_crop(f, align[i], 256) for i, f in enumerate(frames)])
        mouths.append(("source", evaluator.oracle.read(source).speech[:, 0], (200, 60, 20), 2))
        for name, crops in [("true answer", answer)] + [
                (f"--smooth {r}", np.stack([align_crop(f, align[i], 256) for i, f in enumerate(edit_clip(model, frames, tracks, r))]))
                for r in (0, args.smooth)]:
            tiles, diffs = strip(crops, args.first, args.count)
            rows.append(label(np.vstack([tiles, diffs]), f"{name}: frames {args.first}-{args.first + args.count - 1} "
                              f"and their change x{GAIN}; face motion {face_motion(crops):.2f} grey levels a frame"))
            if name != "true answer":
                off = name.endswith(" 0")
                mouths.append((name, evaluator.oracle.read(crops).speech[:, 0], (20, 160, 20) if off else (20, 20, 220),
                               6 if off else 2))
    width = rows[0].shape[1]
    figure = np.vstack(rows + [curves(mouths, width)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    print(f"{args.out}: {figure.shape[1]}x{figure.shape[0]}")


if __name__ == "__main__":
    main()
