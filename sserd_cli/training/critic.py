"""The discriminator side of every adversarial stage: logistic loss with lazy R1 (StyleGAN2).

Shared by ``train-stylegan`` (the GAN itself), ``train-encoder`` (eq. 9: D judges the
reconstructions while G stays frozen) and ``train`` (eq. 14: D judges the edited faces).
Lazy regularisation follows StyleGAN2: R1 is applied every ``d_reg_every`` steps with its
weight multiplied by ``d_reg_every``, and Adam's lr and betas are scaled by
``c = d_reg_every / (d_reg_every + 1)`` to compensate for the extra steps.
"""

from __future__ import annotations

import torch

from ..losses.adversarial import d_logistic_loss, r1_penalty
from . import distributed as ddp


def set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Critic:
    def __init__(self, discriminator: torch.nn.Module, lr: float, betas: tuple, r1_gamma: float, d_reg_every: int,
                 ctx: ddp.DistContext):
        self.D = discriminator
        self.ctx = ctx
        self.r1_gamma, self.d_reg_every = r1_gamma, max(1, d_reg_every)
        ratio = self.d_reg_every / (self.d_reg_every + 1)
        self.optimizer = torch.optim.Adam(self.D.parameters(), lr=lr * ratio,
                                          betas=(betas[0] ** ratio, betas[1] ** ratio))
        set_requires_grad(self.D, False)

    def step(self, real: torch.Tensor, fake: torch.Tensor, iteration: int) -> dict[str, float]:
        """One D update on ``real`` vs ``fake`` (detached); R1 every ``d_reg_every`` iterations."""
        set_requires_grad(self.D, True)
        real_pred = self.D(real)
        fake_pred = self.D(fake.detach())
        loss = d_logistic_loss(real_pred.float(), fake_pred.float())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ddp.average_gradients(self.D.parameters(), self.ctx)
        self.optimizer.step()
        out = {"d": loss.detach().item(), "real_score": real_pred.detach().mean().item(), "fake_score": fake_pred.detach().mean().item()}
        if self.r1_gamma > 0 and iteration % self.d_reg_every == 0:
            real_r1 = real.detach().float().requires_grad_(True)
            pred = self.D(real_r1)
            r1 = r1_penalty(pred, real_r1)
            self.optimizer.zero_grad(set_to_none=True)
            # "+ 0 * pred[0]" keeps every D output in the graph (unused-parameter-free backward)
            (self.r1_gamma / 2 * r1 * self.d_reg_every + 0 * pred[0].sum()).backward()
            ddp.average_gradients(self.D.parameters(), self.ctx)
            self.optimizer.step()
            out["r1"] = r1.detach().item()
        set_requires_grad(self.D, False)
        return out
