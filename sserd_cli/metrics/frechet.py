"""Fréchet distance between two feature sets (the FID/FAD formula).

``d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})``.

The trace of the matrix square root is computed from the eigenvalues of the
symmetric matrix ``S1^{1/2} S2 S1^{1/2}`` (same spectrum as ``S1 S2``), which
is exact for PSD covariances and avoids the complex round-off of a general
``sqrtm``.
"""

from __future__ import annotations

import numpy as np

from ..errors import SserdError


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    values = np.clip(values, 0.0, None)  # round-off can make tiny eigenvalues negative
    return (vectors * np.sqrt(values)) @ vectors.T


def gaussian_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance (squared, as in FID) between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigen = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)
    trace_sqrt = float(np.sqrt(eigen).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def feature_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a feature set [N, D]."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise SserdError(f"a Fréchet distance needs at least 2 samples per set, got {feats.shape[0]}: use more frames")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between feature sets ``feats_a`` [N, D] and ``feats_b`` [M, D]."""
    mu_a, sigma_a = feature_statistics(feats_a)
    mu_b, sigma_b = feature_statistics(feats_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"feature sizes differ: {mu_a.shape[0]} vs {mu_b.shape[0]}")
    return gaussian_frechet(mu_a, sigma_a, mu_b, sigma_b)
