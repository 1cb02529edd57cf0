"""CSIM: cosine similarity of expression-recognition features (user-supplied ONNX network).

The network is the user's (any expression classifier exported to ONNX; its
input layout, size and grey/colour are read from the model). The whole prepared
crop is resized to the input. CSIM of an edited clip is the mean over its
frames of the cosine between the frame's features and the mean features of the
reference emotion clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx_net import OnnxFeatureNet, OnnxInput, cosine_similarity


class ExpressionFeatures:
    """``features(crops) -> [N, D]`` from the expression network (``output``: which ONNX output to read)."""

    def __init__(self, path: str | Path | None, mean: float = 127.5, std: float = 127.5, bgr: bool = False,
                 output: str | None = None):
        self.net = OnnxFeatureNet(path, role="CSIM (expression features)", option="--expression",
                                  spec=OnnxInput(mean=mean, std=std, bgr=bgr, default_size=224), output=output)

    def features(self, crops: np.ndarray) -> np.ndarray:
        return self.net.features(crops)


def csim(edited_feats: np.ndarray, reference_feats: np.ndarray) -> float:
    """Mean cosine similarity of each edited frame's features to the reference clip's mean features."""
    edited_feats = np.asarray(edited_feats, dtype=np.float64)
    reference = np.asarray(reference_feats, dtype=np.float64).reshape(-1, edited_feats.shape[-1]).mean(axis=0)
    return float(cosine_similarity(edited_feats, reference[None]).mean())
