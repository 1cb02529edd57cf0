"""``sserd train-stylegan``: StyleGAN2 from scratch (Karras et al. 2020, config F).

Per iteration: one D step (logistic loss, lazy R1), one G step (non-saturating loss), every
``g_reg_every`` steps a path-length step, then the EMA generator follows G with a half-life
of ``ema_kimg`` thousand images (ramped up over the first images as in StyleGAN2-ADA). Latents use style
mixing with probability ``mixing``.
The exported bundle holds the EMA generator (what users render with) and D (for the
adversarial terms of the later stages).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch

from ..bundles import save_bundle
from ..losses.adversarial import PathLengthPenalty, g_nonsaturating_loss
from ..nets.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, accumulate
from . import distributed as ddp
from .cards import base_card
from .config import StyleGANConfig
from .critic import Critic, set_requires_grad
from .dataset import FrameSet, shard_positions
from .run import Coach


class StyleGANCoach(Coach):
    stage = "stylegan"

    def __init__(self, config: StyleGANConfig, ctx: ddp.DistContext):
        super().__init__(config, ctx)
        c = config
        self.data = FrameSet(c.data, c.size, c.resolved_load_size(), split="train", workers=c.workers)
        self.G = Generator(GeneratorConfig(size=c.size, style_dim=c.style_dim, n_mlp=c.n_mlp,
                                           channel_multiplier=c.channel_multiplier, channel_max=c.channel_max,
                                           lr_mlp=c.lr_mlp)).to(self.device)
        self.D = Discriminator(DiscriminatorConfig(size=c.size, channel_multiplier=c.channel_multiplier,
                                                   channel_max=c.channel_max)).to(self.device)
        ddp.broadcast_module(self.G, ctx)
        ddp.broadcast_module(self.D, ctx)
        self.g_ema = copy.deepcopy(self.G).eval()
        set_requires_grad(self.g_ema, False)
        self.use_pl = c.path_length_weight > 0
        g_ratio = c.g_reg_every / (c.g_reg_every + 1) if self.use_pl else 1.0
        self.g_optim = torch.optim.Adam(self.G.parameters(), lr=c.lr * g_ratio, betas=(0.0, 0.99 ** g_ratio))
        self.critic = Critic(self.D, c.lr, (0.0, 0.99), c.r1_gamma, c.d_reg_every, ctx)
        self.path_length = PathLengthPenalty(decay=0.01).to(self.device)
        fixed = torch.Generator().manual_seed(c.seed)
        self.sample_z = torch.randn(c.n_samples, c.style_dim, generator=fixed).to(self.device)
        self.run_info["data"] = {"frames": len(self.data), "speakers": len(self.data.speakers)}

    def ema_decay(self, iteration: int) -> float:
        """EMA decay with a half-life of ema_kimg thousand images, ramped up over the first images
        (StyleGAN2-ADA's rampup): a short run's EMA generator must not stay at its initial weights."""
        c = self.config
        per_step = c.batch_size * self.ctx.world_size
        half_life = c.ema_kimg * 1000
        if c.ema_rampup > 0:
            half_life = min(half_life, (iteration + 1) * per_step * c.ema_rampup)
        return 0.5 ** (per_step / max(half_life, 1e-8))

    def modules(self):
        return {"generator": self.G, "discriminator": self.D, "g_ema": self.g_ema, "path_length": self.path_length}

    def optimizers(self):
        return {"g": self.g_optim, "d": self.critic.optimizer}

    def _latents(self, batch: int) -> torch.Tensor:
        """W+ codes with style mixing: two mapped z, crossing over at a random layer."""
        n_latent, dim = self.G.n_latent, self.G.style_dim
        z = torch.randn(2, batch, dim).to(self.device)
        w1 = self.G.mapping(z[0])
        mix = float(torch.rand(())) < self.config.mixing
        if not mix:
            return w1[:, None].expand(-1, n_latent, -1)
        cross = int(torch.randint(1, n_latent, ()))
        w2 = self.G.mapping(z[1])
        return torch.cat([w1[:, None].expand(-1, cross, -1), w2[:, None].expand(-1, n_latent - cross, -1)], dim=1)

    def step(self, iteration: int) -> dict[str, float]:
        c = self.config
        idx = shard_positions(len(self.data), c.seed, iteration, c.batch_size, self.ctx.rank, self.ctx.world_size)
        real = self.data.load(idx).to(self.device)

        with torch.no_grad(), self.autocast():
            fake = self.G.synthesis(self._latents(c.batch_size), noise_mode="random")
        losses = self.critic.step(real, fake.float(), iteration)

        with self.autocast():
            fake = self.G.synthesis(self._latents(c.batch_size), noise_mode="random")
            g_loss = g_nonsaturating_loss(self.D(fake).float())
        self.g_optim.zero_grad(set_to_none=True)
        g_loss.backward()
        ddp.average_gradients(self.G.parameters(), self.ctx)
        self.g_optim.step()
        losses["g"] = g_loss.detach().item()

        if self.use_pl and iteration % c.g_reg_every == 0:
            pl_batch = max(1, c.batch_size // c.path_batch_shrink)
            wplus = self._latents(pl_batch)
            fake = self.G.synthesis(wplus, noise_mode="random")
            penalty, mean_len = self.path_length(fake, wplus)
            self.g_optim.zero_grad(set_to_none=True)
            (c.path_length_weight * c.g_reg_every * penalty + 0 * fake[0, 0, 0, 0]).backward()
            ddp.average_gradients(self.G.parameters(), self.ctx)
            self.g_optim.step()
            losses["path_length"] = mean_len.detach().item()

        accumulate(self.g_ema, self.G, self.ema_decay(iteration))
        return losses

    @torch.no_grad()
    def samples(self):
        images = self.g_ema.synthesis(self.g_ema.mapping(self.sample_z)[:, None].expand(-1, self.g_ema.n_latent, -1),
                                      noise_mode="const")
        return images, 4

    def export(self, path: Path) -> None:
        card = base_card(name=Path(self.config.run_dir).name or "stylegan", generator=self.g_ema,
                         stage=self.stage, config=self.config, run_info=self.run_info)
        card["generator"] = dataclasses.asdict(self.g_ema.config)
        w_avg = self.g_ema.mean_latent(4096, generator=torch.Generator().manual_seed(self.config.seed))
        save_bundle(path, card, generator=self.g_ema, discriminator=self.D, latent_avg=w_avg[0])
