"""Transfer at growing strength: one frame of a clip edited to each emotion at several strengths, side by side.

    python benchmarks/transfer_strength.py examples/clips/speaker_a.mp4 docs/figures/transfer_strength_synthetic.png
    python benchmarks/transfer_strength.py ../shared/real/W011_front_neutral_level1_001.mp4 \\
        docs/figures/transfer_strength_real.jpg

Rows: emotions; columns: the source frame, then the shipped default's transfer edit at each ``--strengths``
value, cropped around the face (the model's crop, grown by half) and enlarged to ``--tile`` pixels, so that
artefacts at strength 2 (smears, streaks, smudges) can be seen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from sserd_cli.faces.align import invert_affine, transform_points
from sserd_cli.media.decode import decode_frames
from sserd_cli.media.frames import FrameConverter
from sserd_cli.media.probe import probe_video
from sserd_cli.pipeline.edit import FrameItem
from sserd_cli.pipeline.faces import FaceFollower, FaceSettings, Transfer, crop_and_paste
from sserd_cli.pipeline.models import Target, load_model


def face_window(m: np.ndarray, size: int, shape) -> tuple[int, int, int, int]:
    corners = transform_points(invert_affine(m), np.array([[0, 0], [size - 1, size - 1]], np.float64))
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
    h, w = shape[:2]
    return max(0, int(cx - half)), max(0, int(cy - half)), min(w, int(cx + half)), min(h, int(cy + half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("out", type=Path, help=".png or .jpg")
    parser.add_argument("--frame", type=float, default=0.5, help="where in the clip, 0..1 (default the middle)")
    parser.add_argument("--emotions", default="angry,surprised,sad,happy,fear,disgusted")
    parser.add_argument("--strengths", default="1,1.5,2")
    parser.add_argument("--model", default="sserd-synthetic")
    parser.add_argument("--tile", type=int, default=256)
    args = parser.parse_args()

    info = probe_video(args.clip)
    converter = FrameConverter()
    frames = [converter.to_rgb(f) for f in decode_frames(info)]
    rgb = frames[int(round(args.frame * (len(frames) - 1)))]
    strengths = [float(s) for s in args.strengths.split(",")]
    models = {s: load_model(args.model, "cpu", s) for s in strengths}
    first = models[strengths[0]]
    m = FaceFollower(FaceSettings(), first.resolution, first.zoom).align_still(rgb)
    if m is None:
        raise SystemExit(f"{args.clip}: no face in that frame")
    x0, y0, x1, y1 = face_window(m, first.resolution, rgb.shape)

    def tile(image: np.ndarray, text: str) -> np.ndarray:
        t = cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (args.tile, args.tile), interpolation=cv2.INTER_CUBIC)
        cv2.putText(t, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(t, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        return t

    rows = []
    for emotion in args.emotions.split(","):
        tiles = [tile(rgb, f"{emotion}: source")]
        for s, model in models.items():
            model.set_target(Target(emotion=emotion))
            item = FrameItem(0, None, rgb, m)
            crop_and_paste([item], model, transfer=Transfer(model))
            tiles.append(tile(item.edited, f"strength {s:g}"))
        rows.append(np.concatenate(tiles, axis=1))
    image = np.concatenate(rows, axis=0)[..., ::-1]
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if args.out.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(args.out), image, params):
        raise SystemExit(f"{args.out}: cannot write")


if __name__ == "__main__":
    main()
