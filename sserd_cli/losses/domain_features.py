"""The domain feature loss: G(E(x)) must look like x to the dataset's own feature network F.

Two terms, both against F's reading of the real crop x (no labels needed, so the loss works on any
dataset F was trained on):

- activations: at every stage of F, channel-normalised activations (as LPIPS normalises VGG's)
  compared by mean squared difference, averaged over stages;
- heads: the KL divergence of F's emotion probabilities, plus the mean squared difference of its
  parameter predictions (expression, speech, pose, identity on the synthetic world, in standard
  deviations of the training set).

Both images are blurred by a small Gaussian first. An autoencoder trained against an unblurred
feature network learned to paint red/green speckle that moved the network without being an
expression a person sees; after the blur, a pattern finer than ``blur`` pixels cannot reach F, so the
loss can only be lowered by changing shapes: the mouth opening, the lids, the brows. F is frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with reflect padding (sigma in pixels; 0 = none)."""
    if sigma <= 0:
        return x
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _normalise(t: torch.Tensor) -> torch.Tensor:
    return t / (t.pow(2).sum(dim=1, keepdim=True).add(1e-10).sqrt())


class DomainFeatureLoss(nn.Module):
    """``loss(fake, real) -> (activation term, head term)``; gradients flow into ``fake`` only."""

    def __init__(self, net: nn.Module, blur: float = 1.0):
        super().__init__()
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.blur = blur

    def train(self, mode: bool = True):  # F stays in eval mode inside any training loop
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            ref = self.net(gaussian_blur(real.float(), self.blur))
        out = self.net(gaussian_blur(fake.float(), self.blur))
        acts = torch.stack([(_normalise(a) - _normalise(b)).pow(2).sum(1).mean()
                            for a, b in zip(out["taps"], ref["taps"])]).mean()
        # KL(p_real || p_fake): logits of a confident classifier are large, their squared difference would
        # outweigh every other term; the probabilities' divergence stays on the scale of the others
        heads = F.kl_div(F.log_softmax(out["emotion"], 1), F.log_softmax(ref["emotion"], 1), log_target=True,
                         reduction="batchmean")
        if "params" in out:
            heads = heads + F.mse_loss(out["params"], ref["params"])
        return acts, heads


__all__ = ["DomainFeatureLoss", "gaussian_blur"]
