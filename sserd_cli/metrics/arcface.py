"""ArcFace embeddings (Deng et al., CVPR 2019) from a user-supplied ONNX model, for FAD.

The model is the user's (e.g. insightface's ``w600k_r50.onnx``); nothing is
downloaded. Each prepared crop is re-aligned from the crop's own 5-point
template to the ArcFace 112x112 template (the insightface ``arcface_dst``
points) with the shared similarity fit, fed as RGB ``(x - 127.5) / 127.5``,
and the embedding is L2-normalised before the Fréchet distance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx_net import OnnxFeatureNet, OnnxInput

# insightface's 5-point template for 112x112 ArcFace crops (left eye, right eye, nose, mouth corners)
ARCFACE_TEMPLATE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
], dtype=np.float64)


class ArcFaceEmbedder:
    """``embed(crops, crop_landmarks) -> [N, D]`` unit vectors."""

    def __init__(self, path: str | Path | None, mean: float = 127.5, std: float = 127.5):
        self.net = OnnxFeatureNet(path, role="FAD (ArcFace features)", option="--arcface",
                                  spec=OnnxInput(mean=mean, std=std, default_size=112))

    def views(self, crops: np.ndarray, crop_landmarks: np.ndarray) -> np.ndarray:
        """Crops [N, S, S, 3] re-aligned to the ArcFace template at the model's input size."""
        from ..faces.align import umeyama_similarity, warp_to_crop

        height, width = self.net.size
        m = umeyama_similarity(crop_landmarks, ARCFACE_TEMPLATE_112 * (width / 112.0))
        if height != width:
            raise ValueError(f"ArcFace models take square crops, this one takes {height}x{width}")
        return np.stack([warp_to_crop(crop, m, width) for crop in crops])

    def embed(self, crops: np.ndarray, crop_landmarks: np.ndarray) -> np.ndarray:
        feats = self.net.features(self.views(crops, crop_landmarks))
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
