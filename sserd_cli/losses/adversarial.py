"""Adversarial losses of StyleGAN2 (used by eq. 9 and eq. 14 and by ``train-stylegan``).

Eq. 9 writes the minimax GAN objective ``E[log D(I)] + E[log(1 - D(G))]``. As in
StyleGAN2 (and every practical GAN since Goodfellow et al.) the generator side uses the
non-saturating form ``-log sigmoid(D(G))``, which has the same fixed point but does not
vanish when D wins early. All losses take raw logits ``[B, 1]`` (or ``[B]``); ``softplus``
keeps them stable for large logits.

Regularisers (StyleGAN2, Karras et al. 2020): lazy R1 on real images every
``d_reg_every`` D steps, scaled by ``gamma / 2 * d_reg_every``; path-length regularisation
of G every ``g_reg_every`` steps with a running mean of path lengths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GANRegConfig:
    """StyleGAN2's defaults (rosinality's train.py / the StyleGAN2 paper, config F)."""

    r1_gamma: float = 10.0  # R1 weight gamma; the penalty is gamma/2 * ||grad||^2
    d_reg_every: int = 16  # lazy R1: apply every N discriminator steps
    pl_weight: float = 2.0  # path-length weight
    g_reg_every: int = 4  # lazy path-length: apply every N generator steps
    pl_decay: float = 0.01  # running-mean decay of the path length
    pl_batch_shrink: int = 2  # path-length uses batch // shrink samples


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``-log sigmoid(D(real)) - log(1 - sigmoid(D(fake)))``, batch mean."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Generator (or encoder) loss ``-log sigmoid(D(fake))``, batch mean."""
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """R1: batch mean of ``||d D(real) / d real||^2``. ``real_img`` must have had
    ``requires_grad_(True)`` before the D forward. Built with ``create_graph=True`` so it
    trains D. Multiply by :func:`r1_weight` for the lazy-regularised StyleGAN2 term."""
    if not real_img.requires_grad:
        raise ValueError("r1_penalty: call real_img.requires_grad_(True) before computing real_pred = D(real_img)")
    (grad,) = torch.autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def r1_weight(config: GANRegConfig) -> float:
    """Scale of the lazy R1 term: ``gamma / 2 * d_reg_every`` (compensates for skipped steps)."""
    return config.r1_gamma / 2 * config.d_reg_every


def path_length_penalty(
    fake_img: torch.Tensor,
    latents: torch.Tensor,
    mean_path_length: torch.Tensor | float,
    decay: float = 0.01,
    *,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """StyleGAN2 path-length regulariser.

    ``J^T y`` with ``y ~ N(0, I) / sqrt(H*W)`` is taken w.r.t. ``latents`` (W ``[B, D]`` or
    W+ ``[B, n_latent, D]``, which must be part of the graph of ``fake_img``); its length
    per sample (sum over D, mean over layers, sqrt) should stay near its running mean.
    Returns ``(penalty, new_mean, path_lengths [B])``; ``new_mean`` is detached.
    ``noise`` (same shape as ``fake_img``) or ``generator`` make the draw reproducible.
    """
    path_lengths = _path_lengths(fake_img, latents, noise, generator)
    mean = torch.as_tensor(mean_path_length, dtype=path_lengths.dtype, device=path_lengths.device)
    batch_mean = path_lengths.detach().mean()
    new_mean = (mean + decay * (batch_mean - mean)).detach()
    penalty = (path_lengths - new_mean).pow(2).mean()
    return penalty, new_mean, path_lengths


class PathLengthPenalty(nn.Module):
    """:func:`path_length_penalty` with its running mean kept as a buffer (so the module's
    ``state_dict`` resumes it). Under ``torch.distributed`` the batch mean is averaged over
    ranks before the running-mean update, so every rank keeps the same mean."""

    def __init__(self, decay: float = 0.01) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros(()))

    def forward(
        self,
        fake_img: torch.Tensor,
        latents: torch.Tensor,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(penalty, mean path length of this batch)`` and updates the running mean."""
        path_lengths = _path_lengths(fake_img, latents, noise, generator)
        batch_mean = path_lengths.detach().mean().float()
        batch_mean = _mean_over_ranks(batch_mean)
        with torch.no_grad():
            self.mean.add_(self.decay * (batch_mean.to(self.mean.device) - self.mean))
        penalty = (path_lengths - self.mean.to(path_lengths.dtype)).pow(2).mean()
        return penalty, batch_mean


def _path_lengths(
    fake_img: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """Per-sample ``||J^T y||`` (sum over D, mean over W+ layers, sqrt), differentiable."""
    if noise is None:  # drawn on CPU so the same generator gives the same noise on any device
        noise = torch.randn(fake_img.shape, generator=generator, dtype=fake_img.dtype, device="cpu")
    noise = noise.to(fake_img.device) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = torch.autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    if grad.dim() == 2:
        grad = grad[:, None, :]
    return grad.pow(2).sum(2).mean(1).sqrt()


def _mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()
