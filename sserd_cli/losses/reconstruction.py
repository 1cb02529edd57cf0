"""Pixel reconstruction losses: the ``||I' - I||^2`` terms of eq. 8 and eq. 13.

The paper's squared norm is taken as the mean squared error over pixels and channels
(the usual reading, e.g. pSp's ``F.mse_loss``): it keeps the loss scale independent of
resolution, so the paper's weights (alpha = 0.8, lambda = 0.1) balance the same way at
64 px as at 256 px.
"""

from __future__ import annotations

import torch


def reduce_per_sample(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a per-sample loss ``[B]``: ``mean``, ``sum`` or ``none`` (keep ``[B]``)."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def l2_loss(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error. ``reduction="none"`` gives one value per sample ``[B]`` (e.g. to
    apply eq. 14's synthetic-source indicator); ``"mean"`` is the batch mean, equal to
    ``F.mse_loss(a, b)`` for equal-sized samples."""
    if a.shape != b.shape:
        raise ValueError(f"l2_loss: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    per_sample = (a - b).pow(2).reshape(a.shape[0], -1).mean(1)
    return reduce_per_sample(per_sample, reduction)


def masked_l2_loss(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error inside a soft ``mask`` (``[B|1, 1, H, W]`` or ``[H, W]``, values in
    [0, 1], e.g. a mouth region for a lips term): ``sum(m * (a-b)^2) / (C * sum(m))`` per
    sample. A sample with an all-zero mask contributes 0."""
    if a.shape != b.shape:
        raise ValueError(f"masked_l2_loss: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    if mask.dim() == 2:
        mask = mask[None, None]
    mask = mask.to(dtype=a.dtype, device=a.device).expand(a.shape[0], 1, *a.shape[2:])
    sq = (a - b).pow(2) * mask
    num = sq.reshape(a.shape[0], -1).sum(1)
    den = mask.reshape(a.shape[0], -1).sum(1) * a.shape[1]
    per_sample = num / den.clamp(min=1e-8)
    return reduce_per_sample(per_sample, reduction)


def weighted_pixel_loss(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 + L2 with a per-pixel ``weight`` map ([H, W] or [B|1, 1, H, W]), normalised by the weight's mean so
    the loss keeps the scale of the plain per-pixel mean (a weight of 1 everywhere gives ``|d| + d^2``).
    L1 keeps small, sharp differences (teeth, a lid line) from being averaged away as L2 alone does."""
    if a.shape != b.shape:
        raise ValueError(f"weighted_pixel_loss: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    w = weight.to(a).reshape(-1, 1, a.shape[-2], a.shape[-1]) if weight.ndim == 2 else weight.to(a)
    d = a - b
    per_pixel = (d.abs() + d.pow(2)) * w
    return per_pixel.mean() / w.mean()
