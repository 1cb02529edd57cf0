"""Shared helpers of the training tests (no tests here): tiny datasets and tiny bundles."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sserd_cli.cli import run
from sserd_cli.data.index import IndexRow, write_index

EMOTION_STYLE = {  # brow tilt (pixels) and cheek colour per emotion: learnable differences
    "neutral": (0, (90, 90, 90)),
    "happy": (-4, (40, 160, 230)),
    "angry": (5, (40, 40, 200)),
    "sad": (-2, (200, 80, 40)),
}

TINY_GAN = ["--size", "32", "--channel-max", "16", "--style-dim", "32", "--n-mlp", "2", "--batch-size", "2",
            "--no-path-length", "--device", "cpu", "--workers", "0", "--quiet"]


def draw_face(speaker: int, emotion: str, mouth: float, size: int = 40) -> np.ndarray:
    """A crude face (BGR): speaker sets skin and background, emotion the brows and cheeks, mouth its opening."""
    tilt, cheek = EMOTION_STYLE[emotion]
    img = np.full((size, size, 3), (30 + 60 * speaker, 80, 140 - 50 * speaker), np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (int(size * 0.32), int(size * 0.42)), 0, 0, 360, (150 + 40 * speaker, 170, 200), -1)
    for side in (-1, 1):
        x = c + side * size // 6
        cv2.line(img, (x - 4, int(size * 0.33) + side * tilt // 2), (x + 4, int(size * 0.33) - side * tilt // 2), (20, 20, 20), 2)
        cv2.circle(img, (x, int(size * 0.42)), 2, (10, 10, 10), -1)
        cv2.circle(img, (c + side * size // 4, int(size * 0.58)), 3, cheek, -1)
    cv2.ellipse(img, (c, int(size * 0.72)), (6, max(1, int(1 + mouth * 5))), 0, 0, 360, (30, 30, 120), -1)
    return img


def make_dataset(root: Path, emotions=("neutral", "happy", "angry"), speakers: int = 2, clips: int = 2,
                 frames: int = 2, test_clips: int = 0, size: int = 40) -> Path:
    """A dataset in the shared index format: speakers x emotions x clips x frames crops."""
    root = Path(root)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(speakers):
        for emotion in emotions:
            for k in range(clips + test_clips):
                clip = f"s{s}_{emotion}_{k}"
                for f in range(frames):
                    rel = f"crops/{clip}_{f}.png"
                    cv2.imwrite(str(root / rel), draw_face(s, emotion, (f % 3) / 2, size))
                    rows.append(IndexRow(rel, f"s{s}", emotion, 1.0, clip, f, "test" if k >= clips else "train", "real"))
    # the paper's framing (align at 320, centre-crop 256), as `sserd prepare` records it
    write_index(root, rows, {"size": size, "source": "test", "framing": {"template": "ffhq5", "zoom": 1.25}})
    return root


def tiny_gan_bundle(tmp: Path, data: Path) -> Path:
    """A tiny generator bundle made by the real command (2 steps)."""
    assert run(["train-stylegan", str(data), "-o", str(tmp / "gan"), "--iterations", "2", *TINY_GAN]) == 0
    return tmp / "gan" / "bundle"
