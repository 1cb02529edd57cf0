"""The latent-step loss: the CELCL code of a pair's source against the step its pair was built with.

A pair of ``sserd build-pairs`` is I_s = G(w_s) and I_t = G(w_s + beta * d_e), and both codes are stored
(``latents.safetensors``), so the edit that turns one into the other is known exactly in W+: w_t - w_s.
Eq. 14's pixel terms see that edit only through the few pixels an expression changes, where their gradient
is small against the adversarial and contrastive terms (measured: after 3000 steps the CELCL's codes had
norm 2 against the pairs' 16 and cosine 0.0 with them). This term supervises the code itself; it is not
one of the paper's losses (``--lambda-latent 0`` is the paper's eq. 14).
"""

from __future__ import annotations

import torch


def latent_step_loss(w_e: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the CELCL codes ``w_e`` and the pairs' steps, both [B, n_latent, D]."""
    if w_e.shape != step.shape:
        raise ValueError(f"latent_step_loss: shapes differ, {tuple(w_e.shape)} vs {tuple(step.shape)}")
    return (w_e - step).pow(2).mean()


__all__ = ["latent_step_loss"]
