"""A small side-by-side GIF of a source clip and its edit (source | edit), cropped around the face.

    python examples/make_side_by_side.py examples/clips/speaker_a.mp4 out.mp4 examples/quickstart_angry.gif

The crop is the union of the face boxes in the clip's truth file (``sserd synth`` clips), grown by ``--margin``;
without a truth file, pass ``--box x0,y0,x1,y1``. Every ``--step``-th frame is kept, so the GIF plays at the
clip's speed with fewer frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image


def frames(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or 25)
        return [f.to_ndarray(format="rgb24") for f in c.decode(stream)], fps


def face_box(source: Path, margin: float) -> tuple[int, int, int, int]:
    boxes = np.load(source.with_suffix(".truth.npz"))["box"]
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = boxes[:, 2:].max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * margin / 2
    return int(cx - half), int(cy - half), int(cx + half), int(cy + half)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("edit", type=Path)
    parser.add_argument("out", type=Path, help="the .gif to write")
    parser.add_argument("--box", help="x0,y0,x1,y1 of the crop (default: from the source's truth file)")
    parser.add_argument("--margin", type=float, default=1.5, help="growth of the truth's face box (default 1.5)")
    parser.add_argument("--side", type=int, default=192, help="side of each half in the GIF, pixels (default 192)")
    parser.add_argument("--step", type=int, default=2, help="keep every STEP-th frame (default 2)")
    parser.add_argument("--labels", default="source,edit", help="the two captions (default source,edit)")
    args = parser.parse_args()
    src, fps = frames(args.source)
    dst, _ = frames(args.edit)
    if len(src) != len(dst):
        raise SystemExit(f"{args.source} has {len(src)} frames and {args.edit} {len(dst)}: give the edit of this clip")
    x0, y0, x1, y1 = (int(v) for v in args.box.split(",")) if args.box else face_box(args.source, args.margin)
    h, w = src[0].shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    names = args.labels.split(",")
    images = []
    for a, b in list(zip(src, dst))[::args.step]:
        tiles = [label(cv2.resize(f[y0:y1, x0:x1], (args.side, args.side), interpolation=cv2.INTER_AREA), n)
                 for f, n in zip((a, b), names)]
        images.append(Image.fromarray(np.concatenate(tiles, axis=1)).quantize(colors=128, dither=Image.Dither.NONE))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(args.out, save_all=True, append_images=images[1:], duration=int(1000 * args.step / fps), loop=0,
                   optimize=True)
    print(f"{args.out}: {len(images)} frames, {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
