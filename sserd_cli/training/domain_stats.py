"""What a bundle's reconstruction error looks like on faces of its own domain, recorded in its card.

``sserd edit`` can only check whether a bundle knows a face by reconstructing it: G(E(x)) against the crop x.
A number alone means nothing without the bundle's usual range, so the stages that export an encoder measure it
on held-out crops of their own dataset (the test split: speakers never trained on; the training split when
there is none) and write the distribution to ``card["domain"]``: the per-crop mean squared error inside the
face mask (values in [-1, 1]), its mean, standard deviation and quantiles.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SserdError
from ..faces.domain import reconstruction_errors  # shared with sserd edit's domain check
from .dataset import FrameSet

QUANTILES = (0.5, 0.9, 0.95, 0.99)


def held_out_statistics(G, E, data: str, size: int, load_size: int, zoom: float, device, limit: int = 256,
                        batch: int = 32) -> dict:
    """The distribution of :func:`reconstruction_errors` over up to ``limit`` held-out crops of ``data``."""
    split = "test"
    try:
        frames = FrameSet(data, size, load_size, split="test", workers=0)
    except SserdError:  # no test split: the training faces are the best the card can say
        frames, split = FrameSet(data, size, load_size, split="train", workers=0), "train"
    picks = np.random.default_rng(0).permutation(len(frames))[:limit].tolist()
    errors = np.concatenate([reconstruction_errors(G, E, frames.load(picks[i:i + batch]).to(device), zoom)
                             for i in range(0, len(picks), batch)])
    return {"metric": "masked_mse", "split": split, "crops": int(len(errors)), "zoom": zoom,
            "mean": float(errors.mean()), "std": float(errors.std()),
            **{f"q{int(q * 100)}": float(np.quantile(errors, q)) for q in QUANTILES}, "max": float(errors.max())}


__all__ = ["reconstruction_errors", "held_out_statistics", "QUANTILES"]
