"""``sserd train-autoencoder``: the generator G and the encoder E trained together, so G(E(x)) keeps the face.

With G frozen (eq. 8-10, ``train-encoder``) the encoder can only find codes a given generator renders.
A generator trained for a short time on a small machine renders expressions weakly, and even
per-image optimisation of its W+ codes brings back a fraction of them (docs/inversion-and-direction-gates.md,
"GAN-then-encoder against joint training"). Here both networks learn from dense reconstruction gradients:

    w = E(x),  x' = G.synthesis(w)
    L = L_pix(x', x; 1 + (region_weight - 1) * parts)          L1 + L2, eyes/brows/mouth weighted up
      + ramp * (lambda_feat * L_F,act + lambda_params * L_F,heads)   the dataset's feature network F
      + alpha * VGG19(x', x)                                      (optional; for real data with weights)
      + lambda_adv * L_adv(D(x'))                                 non-saturating; D: logistic + lazy R1
      + lambda_aux * L_aux(h(w - w_avg), labels)                  E's code carries emotion and parameters

``ramp`` rises linearly over ``feat_ramp`` steps, so the pixel terms shape the faces before the feature
network pulls on details. The auxiliary head h is linear: what it reads from the code is what the SVM
directions of ``build-pairs`` can move. G's mapping network is not trained here (W+ codes come from E);
the bundle keeps the one it started with, so sampling z gives faces of the starting generator's space only.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..bundles import load_bundle, save_bundle
from ..data.labels import crop_size, standardised_param_labels
from ..errors import SserdError
from ..faces.mask import parts_mask
from ..losses.adversarial import g_nonsaturating_loss
from ..losses.domain_features import DomainFeatureLoss
from ..losses.reconstruction import weighted_pixel_loss
from ..nets.encoder import EncoderConfig, LatentEncoder
from ..nets.features import load_feature_net
from ..nets.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from . import distributed as ddp
from .cards import base_card, framing_zoom
from .config import AutoencoderConfig
from .critic import Critic
from .dataset import FrameSet, shard_positions
from .domain_stats import held_out_statistics
from .encoder import inversion_samples, load_criterion
from .run import Coach


class AutoencoderCoach(Coach):
    stage = "autoencoder"

    def __init__(self, config: AutoencoderConfig, ctx: ddp.DistContext):
        super().__init__(config, ctx)
        c = config
        self.parent = load_bundle(c.model) if c.model else None
        if self.parent is not None:
            self.parent.require("generator")
            self.G = self.parent.generator(device=self.device).float()
            if self.G.size != c.size:
                raise SserdError(f"bundle {self.parent.path} renders {self.G.size}x{self.G.size} faces but --size is "
                                 f"{c.size}: use --size {self.G.size} or another bundle")
        else:
            self.G = Generator(GeneratorConfig(size=c.size, style_dim=c.style_dim, n_mlp=c.n_mlp,
                                               channel_multiplier=c.channel_multiplier,
                                               channel_max=c.channel_max)).to(self.device)
        self.G.train()
        self.data = FrameSet(c.data, c.size, c.resolved_load_size(), split="train", workers=c.workers)
        crop = crop_size(self.data.meta)
        if crop is not None and crop != c.resolved_load_size():
            raise SserdError(f"dataset {c.data} holds {crop}-px crops but this run trains at {c.size} px: "
                             f"make the dataset at --size {c.size} ('sserd synth images --size {c.size}' or "
                             f"'sserd prepare ... --size {c.size}'), or pass --load-size {crop}")
        self.E = self._encoder()
        self.latent_avg = self.E.latent_avg.detach().clone()
        # D: the bundle's when it has one (kept in the export even when not trained here: later stages start from it),
        # a fresh one only when the adversarial term needs it
        self.D = None
        if self.parent is not None and self.parent.has("discriminator"):
            self.D = self.parent.discriminator(device=self.device).float()
        elif c.lambda_adv > 0:
            self.D = Discriminator(DiscriminatorConfig(size=c.size, channel_multiplier=self.G.config.channel_multiplier,
                                                       channel_max=self.G.config.channel_max)).to(self.device)
        # labels for E's auxiliary head: the emotion always, the renderer's parameters where the dataset has them
        labels = standardised_param_labels(c.data, [r.path for r in self.data.rows])
        self.params = None if labels is None else torch.from_numpy(labels[1])
        n_params = 0 if labels is None else len(labels[0])
        self.aux = torch.nn.Linear(self.G.n_latent * self.G.style_dim, 7 + n_params).to(self.device)
        for module in self.modules().values():
            ddp.broadcast_module(module, ctx)
        synthesis = [p for name, p in self.G.named_parameters() if not name.startswith("style.")]
        self.optimizer = torch.optim.Adam([{"params": synthesis}, {"params": self.E.parameters()},
                                           {"params": self.aux.parameters()}], lr=c.lr, betas=(0.9, 0.99))
        self._trained = synthesis + list(self.E.parameters()) + list(self.aux.parameters())
        self.critic = Critic(self.D, c.d_lr, c.d_betas, c.r1_gamma, c.d_reg_every, ctx) if c.lambda_adv > 0 else None
        zoom = framing_zoom(c.data, c.size, c.resolved_load_size())
        self.weight = torch.from_numpy(1.0 + (c.region_weight - 1.0) * parts_mask(c.size, zoom)).to(self.device)
        self.features = None
        if c.features:
            net, card = load_feature_net(c.features, self.device)
            if int(card.get("size", net.config.size)) != c.size:
                raise SserdError(f"feature network {c.features} reads {card.get('size')}-px crops but this run trains "
                                 f"at {c.size} px: train one on this dataset with 'sserd train-features'")
            self.features = DomainFeatureLoss(net, blur=c.feat_blur)
            feature_info = {"path": str(c.features), "held_out": card.get("metrics", {})}
        elif c.lambda_feat > 0 or c.lambda_params > 0:
            feature_info = "none given (--features): pixel, adversarial and auxiliary terms only"
        else:
            feature_info = "off"
        self.perceptual, perceptual_info = (load_criterion("vgg19", c.vgg_weights, self.device) if c.alpha > 0
                                            else (None, {"kind": "none", "fallback": False}))
        self.sample_idx = list(range(min(c.n_samples, len(self.data))))
        self.run_info.update({"features": feature_info, "perceptual": perceptual_info,
                              "init": str(self.parent.path) if self.parent is not None else "scratch",
                              "data": {"frames": len(self.data), "emotions": self.data.emotions, "params": n_params}})

    def _encoder(self) -> LatentEncoder:
        c = self.config
        if self.parent is not None and self.parent.has("encoder"):
            E = self.parent.encoder(device=self.device).float()
            if E.config.backbone != c.backbone or (c.encoder_channels and E.config.base_channels != c.encoder_channels):
                warnings.warn(f"the bundle's encoder is {E.config.backbone}; it is trained on as it is", stacklevel=2)
            return E.train()
        E = LatentEncoder(EncoderConfig(size=c.size, n_latent=self.G.n_latent, style_dim=self.G.style_dim,
                                        backbone=c.backbone, base_channels=c.encoder_channels or None)).to(self.device)
        if self.parent is not None:
            E.set_latent_avg(self.parent.latent_avg(self.device))
        else:
            E.set_latent_avg(self.G.mean_latent(4096, generator=torch.Generator().manual_seed(c.seed)))
        return E

    def modules(self):
        nets = {"generator": self.G, "encoder": self.E, "aux": self.aux}
        if self.D is not None:
            nets["discriminator"] = self.D
        return nets

    def optimizers(self):
        opts = {"autoencoder": self.optimizer}
        if self.critic is not None:
            opts["discriminator"] = self.critic.optimizer
        return opts

    def step(self, iteration: int) -> dict[str, float]:
        c = self.config
        for group in self.optimizer.param_groups:  # linear warm-up: Adam's first steps must not wreck a started G
            group["lr"] = c.lr * min(1.0, (iteration + 1) / c.warmup) if c.warmup > 0 else c.lr
        idx = shard_positions(len(self.data), c.seed, iteration, c.batch_size, self.ctx.rank, self.ctx.world_size)
        real = self.data.load(idx).to(self.device)
        with self.autocast():
            w = self.E(real)
            recon = self.G.synthesis(w, noise_mode="const")
        losses = self.critic.step(real, recon.detach().float(), iteration) if self.critic is not None else {}
        recon = recon.float()
        pixel = weighted_pixel_loss(recon, real, self.weight)
        total = pixel
        losses["pix"] = pixel.detach().item()
        ramp = min(1.0, (iteration + 1) / c.feat_ramp) if c.feat_ramp > 0 else 1.0
        if self.features is not None:
            acts, heads = self.features(recon, real)
            total = total + ramp * (c.lambda_feat * acts + c.lambda_params * heads)
            losses.update({"feat": acts.detach().item(), "heads": heads.detach().item()})
        if self.perceptual is not None:
            perceptual = self.perceptual(recon, real)
            total = total + c.alpha * perceptual
            losses["perceptual"] = perceptual.detach().item()
        if self.critic is not None:
            with self.autocast():
                adv = g_nonsaturating_loss(self.D(recon).float())
            total = total + c.lambda_adv * adv
            losses["adv"] = adv.detach().item()
        if c.lambda_aux > 0:
            out = self.aux((w.float() - self.latent_avg).flatten(1))
            aux = F.cross_entropy(out[:, :7], self.data.labels(idx).to(self.device))
            if self.params is not None:
                aux = aux + F.mse_loss(out[:, 7:], self.params[idx].to(self.device))
            total = total + c.lambda_aux * aux
            losses["aux"] = aux.detach().item()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        ddp.average_gradients(self._trained, self.ctx)
        self.optimizer.step()
        ddp.broadcast_buffers(self.E, self.ctx)
        with torch.no_grad():
            losses["l2"] = F.mse_loss(recon, real).item()
        losses["total"] = total.detach().item()
        return losses

    def samples(self):
        return inversion_samples(self.E, self.G, self.data.load(self.sample_idx).to(self.device))

    def export(self, path: Path) -> None:
        parent_card = self.parent.card if self.parent is not None else None
        card = base_card(name=Path(self.config.run_dir).name or "autoencoder", generator=self.G, stage=self.stage,
                         config=self.config, run_info=self.run_info, parent=parent_card)
        card["encoder"] = dataclasses.asdict(self.E.config)
        card["generator"] = dataclasses.asdict(self.G.config)
        for stale in ("celcl", "edit_betas"):  # a parent's CELCL and directions were fitted to the old codes
            card.pop(stale, None)
        latent_avg = self.latent_avg.mean(0) if self.latent_avg.ndim == 2 else self.latent_avg
        self.G.eval()
        self.E.eval()
        try:
            c = self.config
            card["domain"] = held_out_statistics(self.G, self.E, c.data, c.size, c.resolved_load_size(),
                                                 card["framing"]["zoom"], self.device)
            save_bundle(path, card, generator=self.G, encoder=self.E, discriminator=self.D, latent_avg=latent_avg)
        finally:
            self.G.train()
            self.E.train()
