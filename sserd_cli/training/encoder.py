"""``sserd train-encoder``: StyleGAN inversion, eq. 7-10, with the generator G frozen.

    w_s = E(I_s)                         (eq. 1)
    I_s' = G(w_s)                        (eq. 7)
    L_rec = ||I_s' - I_s||^2 + alpha ||phi(I_s') - phi(I_s)||^2      (eq. 8, phi = VGG19)
    L_adv: D judges I_s (real) vs I_s' (fake); E minimises the non-saturating loss   (eq. 9)
    L_inv = L_rec + lambda1 L_adv + lambda2 L_cl                     (eq. 10)

L_cl is eq. 5-6 on the codes w_s with the frames' emotion labels. The codes are taken
relative to the encoder's ``latent_avg`` (w_s - w_avg): every W+ code shares that large
mean, so cosine similarities of raw codes are all close to 1 and carry no emotion signal.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch

from ..bundles import load_bundle, save_bundle
from ..errors import SserdError
from ..losses.contrastive import CodeCache, contrastive_loss, distributed_gather
from ..losses.adversarial import g_nonsaturating_loss
from ..losses.perceptual import PerceptualFallbackWarning, load_perceptual
from ..losses.reconstruction import l2_loss
from ..nets.encoder import EncoderConfig, LatentEncoder
from ..nets.stylegan2 import Discriminator, DiscriminatorConfig
from . import distributed as ddp
from .cards import base_card
from .config import EncoderTrainConfig
from .critic import Critic, set_requires_grad
from .dataset import FrameSet, shard_positions
from .domain_stats import held_out_statistics
from .ranger import Ranger
from .run import Coach


def load_frozen_generator(model: str, size: int | None, device: torch.device, need: tuple[str, ...] = ("generator",)):
    """The bundle, its generator (frozen, eval) and a check that its resolution is ``size`` (None: any)."""
    bundle = load_bundle(model)
    for part in need:
        bundle.require(part)  # names the missing part and the command that makes it
    G = bundle.generator(device=device).eval()
    if size is not None and G.size != size:
        raise SserdError(f"bundle {bundle.path} renders {G.size}x{G.size} faces but --size is {size}: "
                         f"use --size {G.size} or another bundle")
    set_requires_grad(G, False)
    return bundle, G


def discriminator_for(bundle, G, device: torch.device) -> tuple[torch.nn.Module, str]:
    """The bundle's discriminator when it has one (trained with G), else a fresh one shaped like G."""
    if bundle.has("discriminator"):
        return bundle.discriminator(device=device), "from the bundle"
    gc = G.config
    D = Discriminator(DiscriminatorConfig(size=gc.size, channel_multiplier=gc.channel_multiplier,
                                          channel_max=gc.channel_max)).to(device)
    return D, "fresh (the bundle has none)"


def load_criterion(kind: str, weights, device, vgg16=None) -> tuple[torch.nn.Module, dict]:
    """The perceptual network; the fallback warning is recorded (the CLI prints it once) instead of raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerceptualFallbackWarning)
        kwargs = {"vgg16_path": vgg16} if kind == "lpips" else {}
        module, description = load_perceptual(kind, weights, device=device, **kwargs)
    return module, {"kind": kind, "description": description, "fallback": bool(getattr(module, "is_fallback", False))}


@torch.no_grad()
def inversion_samples(E, G, real: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A sample grid of crops over their reconstructions G(E(x)); E in eval mode meanwhile (BatchNorm: sample grids
    must not touch the running statistics)."""
    E.eval()
    try:
        recon = G.synthesis(E(real), noise_mode="const")
    finally:
        E.train()
    return torch.cat([real, recon.float()]), len(real)


class EncoderCoach(Coach):
    stage = "encoder"

    def __init__(self, config: EncoderTrainConfig, ctx: ddp.DistContext):
        super().__init__(config, ctx)
        c = config
        self.bundle, self.G = load_frozen_generator(c.model, c.size, self.device)
        self.data = FrameSet(c.data, c.size, c.resolved_load_size(), split="train", workers=c.workers)
        if c.contrastive and c.lambda_cl > 0 and len(self.data.emotions) < 2:
            raise SserdError(f"dataset {c.data} has only '{self.data.emotions[0]}' frames: the contrastive loss needs "
                             "at least two emotions; add frames or pass --no-contrastive")
        self.D, d_origin = discriminator_for(self.bundle, self.G, self.device)
        self.E = LatentEncoder(EncoderConfig(size=c.size, n_latent=self.G.n_latent, style_dim=self.G.style_dim,
                                             backbone=c.backbone)).to(self.device)
        self.E.set_latent_avg(self.bundle.latent_avg(self.device))  # offsets start from G's mean w
        ddp.broadcast_module(self.E, ctx)
        ddp.broadcast_module(self.D, ctx)
        self.optimizer = Ranger(self.E.parameters(), lr=c.lr)
        self.critic = Critic(self.D, c.d_lr, c.d_betas, c.r1_gamma, c.d_reg_every, ctx)
        self.perceptual, perceptual_info = load_criterion("vgg19", c.vgg_weights, self.device)
        self.cache = CodeCache(per_emotion=c.cache_per_emotion, dim=self.G.n_latent * self.G.style_dim,
                               seed=c.seed, gather=distributed_gather).to(self.device)
        # fixed frames shown in every sample grid (the first of each emotion, then the rest)
        self.sample_idx = list(range(min(c.n_samples, len(self.data))))
        self.run_info.update({"perceptual": perceptual_info, "discriminator": d_origin,
                              "data": {"frames": len(self.data), "emotions": self.data.emotions}})

    def modules(self):
        return {"encoder": self.E, "discriminator": self.D}

    def optimizers(self):
        return {"encoder": self.optimizer, "discriminator": self.critic.optimizer}

    def extra_state(self):
        return {"code_cache": self.cache.state_dict()}

    def load_extra_state(self, state):
        self.cache.load_state_dict(state["code_cache"])

    def step(self, iteration: int) -> dict[str, float]:
        c = self.config
        idx = shard_positions(len(self.data), c.seed, iteration, c.batch_size, self.ctx.rank, self.ctx.world_size)
        real = self.data.load(idx).to(self.device)
        labels = self.data.labels(idx).to(self.device)

        with self.autocast():
            w = self.E(real)
            recon = self.G.synthesis(w, noise_mode="const")
        losses = self.critic.step(real, recon.detach().float(), iteration)

        with self.autocast():
            recon_f = recon.float()
            l2 = l2_loss(recon_f, real)
            perceptual = self.perceptual(recon_f, real)
            adv = g_nonsaturating_loss(self.D(recon).float())
        offsets = (w.float() - self.E.latent_avg)
        cl = (contrastive_loss(offsets, labels, self.cache, tau=c.tau) if c.contrastive
              else offsets.sum() * 0.0)
        rec = l2 + c.alpha * perceptual
        total = rec + c.lambda_adv * adv + c.lambda_cl * cl
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        ddp.average_gradients(self.E.parameters(), self.ctx)
        self.optimizer.step()
        ddp.broadcast_buffers(self.E, self.ctx)
        if c.contrastive:
            self.cache.push(offsets.detach(), labels)
        losses.update({"total": total.detach().item(), "l2": l2.detach().item(), "perceptual": perceptual.detach().item(),
                       "adv": adv.detach().item(), "cl": cl.detach().item()})
        return losses

    def samples(self):
        return inversion_samples(self.E, self.G, self.data.load(self.sample_idx).to(self.device))

    def export(self, path: Path) -> None:
        card = base_card(name=Path(self.config.run_dir).name or "encoder", generator=self.G, stage=self.stage,
                         config=self.config, run_info=self.run_info, parent=self.bundle.card)
        card["encoder"] = dataclasses.asdict(self.E.config)
        c = self.config
        self.E.eval()
        try:
            card["domain"] = held_out_statistics(self.G, self.E, c.data, c.size, c.resolved_load_size(),
                                                 card["framing"]["zoom"], self.device)
        finally:
            self.E.train()
        save_bundle(path, card, generator=self.G, encoder=self.E, discriminator=self.D,
                    latent_avg=self.bundle.latent_avg())
