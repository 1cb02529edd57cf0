"""How well a generator and encoder reconstruct face crops: G(E(x)) against x inside the face mask.

A model can only be trusted with a face it can reconstruct: its codes of a face it does not know decode
to another face (a blurred average of its training faces). The training stages record this error on
held-out crops of their own data (``training.domain_stats``), and ``sserd edit`` measures it on the
first crops of a clip before editing (``pipeline.domain``): both through this one function, so the two
numbers are comparable.
"""

from __future__ import annotations

import numpy as np

from .mask import face_mask


def reconstruction_errors(G, E, crops, zoom: float) -> np.ndarray:
    """Per-crop masked MSE of G(E(x)) against x for crops [N, 3, S, S] in [-1, 1] (G and E in eval mode)."""
    import torch

    with torch.no_grad():
        mask = torch.from_numpy(np.array(face_mask(crops.shape[-1], zoom))).to(crops)
        recon = G.synthesis(E(crops), noise_mode="const").float()
        per_pixel = (recon - crops.float()).pow(2).mean(1)  # [N, S, S]
        return ((per_pixel * mask).sum((1, 2)) / mask.sum()).cpu().numpy()


__all__ = ["reconstruction_errors"]
