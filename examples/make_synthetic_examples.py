"""Make the synthetic example clips and reference images of examples/ with sserd's own renderer.

* ``clips/speaker_a.mp4`` (25 fps) and ``clips/speaker_b.mp4`` (30000/1001 fps): neutral talking clips,
  3 s, 640x360, H.264 + AAC, each with its ground truth (``.truth.json`` / ``.truth.npz``) so an edit of
  it can be scored with ``sserd eval synthetic OUT.mp4 --clip examples/clips/speaker_a.mp4 -e angry``;
* ``refs/<emotion>.png``: one reference portrait per emotion, each of another identity than the clips.

Identities come from speaker seeds that ``sserd synth`` never uses for training (800,000,000 and up)
and that differ from the held-out benchmark's; the same command always writes the same files.

    python examples/make_synthetic_examples.py            # -> examples/clips, examples/refs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sserd_cli.data.synth.params import FaceState, Light, Pose, Speech, emotion_expression
from sserd_cli.data.synth.render import render_portrait
from sserd_cli.data.synth.video import ClipSpec, make_background, speaker_identity, write_clip
from sserd_cli.emotions import EMOTIONS
from sserd_cli.media.image import write_image

HERE = Path(__file__).resolve().parent
SEED_BASE = 800_000_000  # out of reach of 'sserd synth' seeds below ~800
CLIPS = {"speaker_a": (SEED_BASE + 1, 25.0), "speaker_b": (SEED_BASE + 2, 30000 / 1001)}
PORTRAIT = 256  # side of the aligned face window of a reference; the picture adds a margin around it
MARGIN = 0.25


def write_clips(folder: Path, seconds: float = 3.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (name, (speaker, fps)) in enumerate(CLIPS.items()):
        spec = ClipSpec(speaker, clip_seed=k, emotion="neutral", intensity=1.0, duration=seconds, fps=fps)
        write_clip(spec, folder / f"{name}.mp4")
        paths.append(folder / f"{name}.mp4")
    return paths


def write_references(folder: Path) -> list[Path]:
    """A frontal-ish portrait per emotion at full intensity, mouth closed, each of its own identity."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, emotion in enumerate(EMOTIONS):
        rng = np.random.default_rng([SEED_BASE, 100 + k])
        identity = speaker_identity(SEED_BASE + 100 + k)
        pose = Pose(yaw=float(rng.uniform(-6, 6)), pitch=float(rng.uniform(-4, 4)), roll=float(rng.uniform(-3, 3)))
        state = FaceState(identity, emotion_expression(emotion, 1.0), Speech(), pose, Light.random(rng))
        side = int(round(PORTRAIT * (1 + 2 * MARGIN)))
        image = render_portrait(state, PORTRAIT, background=make_background(side, side, rng), margin=MARGIN).image
        path = folder / f"{emotion}.png"
        write_image(path, image)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write clips/ and refs/ into")
    args = parser.parse_args()
    for path in write_clips(args.out / "clips") + write_references(args.out / "refs"):
        print(path)


if __name__ == "__main__":
    main()
