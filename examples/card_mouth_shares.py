"""Record in a bundle's card which W+ rows move the mouth, so that `sserd edit` need not probe every clip.

    python examples/card_mouth_shares.py models/sserd-synthetic examples/clips/speaker_a.mp4 examples/clips/speaker_b.mp4

The smoothing of `sserd edit` (see sserd_cli/pipeline/temporal.py) keeps each W+ row's per-frame value in
proportion to how much it moves the mouth. This measures that once, with the same probe, on the first 3 batches
of 8 tracked frames of each clip (talking clips of the bundle's own world: a face the model does not know has no
row that stands out), sums the changes and writes the shares to ``model.json`` as ``smoothing.mouth_shares``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sserd_cli.bundles import load_bundle
from sserd_cli.faces.align import warp_to_crop
from sserd_cli.media.decode import decode_frames
from sserd_cli.media.frames import FrameConverter
from sserd_cli.media.probe import probe_video
from sserd_cli.pipeline.edit import FrameItem
from sserd_cli.pipeline.faces import FaceFollower, FaceSettings
from sserd_cli.pipeline.models import SserdModel
from sserd_cli.pipeline.temporal import PROBE_BATCHES, measure_mouth_shares

BATCH = 8


def tracked_batches(model, clip: Path) -> list[np.ndarray]:
    converter = FrameConverter()
    frames = [converter.to_rgb(f) for f in decode_frames(probe_video(clip))][:BATCH * PROBE_BATCHES]
    items = [FrameItem(i, None, rgb) for i, rgb in enumerate(frames)]
    follower = FaceFollower(FaceSettings(), model.resolution, model.zoom)
    crops = [warp_to_crop(item.rgb, item.m, model.resolution) for item in follower.follow(items) if item.m is not None]
    return [np.stack(crops[i:i + BATCH]) for i in range(0, len(crops) - BATCH + 1, BATCH)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("clips", type=Path, nargs="+")
    args = parser.parse_args()
    model = SserdModel(load_bundle(args.bundle), "cpu")
    batches = [b for clip in args.clips for b in tracked_batches(model, clip)]
    shares = measure_mouth_shares(model, batches)
    card_path = args.bundle / "model.json"
    card = json.loads(card_path.read_text())
    card["smoothing"] = {"mouth_shares": [round(float(v), 4) for v in shares],
                         "measured_on": [c.name for c in args.clips], "batches": len(batches), "batch": BATCH}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print("mouth shares per W+ row:", " ".join(f"{v:.3f}" for v in shares))


if __name__ == "__main__":
    main()
