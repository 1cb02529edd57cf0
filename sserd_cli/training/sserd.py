"""``sserd train``: hybrid training of the CELCL module, eq. 13-14 (E and G frozen).

Per sample: a source I_s, a reference r1 of the same speaker (another clip) and r2 of
another speaker, both showing the target emotion, and, when I_s is synthetic, the target
I_t of the same pair (same mouth, target emotion). With w = E(.)::

    I_o1 = G(w_s + CELCL(w_s, w_r1)),  I_o2 = G(w_s + CELCL(w_s, w_r2))
    L_pix  = ||I_o1 - I_t||^2 + ||I_o2 - I_t||^2                          (eq. 13)
    L_lips = ||phi(I_o1) - phi(I_t)||^2 + ||phi(I_o2) - phi(I_t)||^2        (phi = LPIPS)
    L_all  = 1(I_s) [L_pix + alpha L_lips] + lambda1 L_adv + lambda2 L_cl    (eq. 14)

1(I_s) is 1 for synthetic (paired) sources and 0 for real ones, per sample. L_adv: a
discriminator trained alongside judges real frames against I_o1 and I_o2. L_cl is eq. 5-6
on the emotion codes w_e with the target emotion as label and the cached codes of earlier
iterations as positives and negatives. ``--data paired|unpaired|hybrid`` chooses the
sources (table 5), ``--no-contrastive`` drops L_cl (table 3).

Not the paper's: ``--lambda-latent`` adds the latent-step loss on a bank of E's pair codes
(``latent_bank``), and ``--latent-warmup N`` trains the CELCL on that loss alone for the first N
iterations, which render nothing and so cost milliseconds each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..errors import SserdError
from ..bundles import save_bundle
from ..losses.adversarial import g_nonsaturating_loss
from ..losses.contrastive import CodeCache, contrastive_loss, distributed_gather
from ..losses.latent import latent_step_loss
from ..losses.reconstruction import l2_loss
from ..nets.celcl import CELCL, CELCLConfig
from . import distributed as ddp
from .cards import base_card
from .config import SSERDConfig
from .critic import Critic, set_requires_grad
from .dataset import FrameSet, HybridSampler
from .encoder import discriminator_for, load_criterion, load_frozen_generator
from .latent_bank import LatentBank
from .ranger import Ranger
from .run import Coach


def hybrid_objective(out1: torch.Tensor, out2: torch.Tensor, target: torch.Tensor, synthetic: torch.Tensor,
                     perceptual, alpha: float) -> dict[str, torch.Tensor]:
    """The supervised part of eq. 14, ``mean_i 1(I_s,i) [L_pix,i + alpha L_lips,i]``, and its terms.

    Real sources (indicator 0) contribute exactly nothing, not even a gradient; their
    ``target`` entries are ignored (any placeholder works)."""
    ind = synthetic.to(out1.dtype)
    if not bool(synthetic.any()):
        zero = (out1.sum() + out2.sum()) * 0.0
        return {"pix": zero, "lips": zero, "supervised": zero}
    sel = synthetic.nonzero().squeeze(1)
    o1, o2, t = out1[sel], out2[sel], target[sel]
    fraction = ind.mean()  # mean over the batch of indicator * per-sample loss
    pix = fraction * (l2_loss(o1, t) + l2_loss(o2, t))
    lips = fraction * (perceptual(o1, t) + perceptual(o2, t))
    return {"pix": pix, "lips": lips, "supervised": pix + alpha * lips}


def pair_codes(folder: str, pairs: FrameSet) -> torch.Tensor:
    """The stored W+ code of every row of ``pairs`` (a split of the paired set in ``folder``), [rows, n_latent, D]."""
    from safetensors.torch import load_file

    from ..data.index import read_index

    file = Path(folder) / "latents.safetensors"
    if not file.is_file():
        raise SserdError(f"paired set {folder} has no latents.safetensors, which --lambda-latent needs: rebuild it with "
                         "'sserd build-pairs', or pass --lambda-latent 0")
    codes = load_file(str(file))["codes"]
    position = {r.path: i for i, r in enumerate(read_index(folder))}
    if len(position) != len(codes):
        raise SserdError(f"{file} holds {len(codes)} codes for {len(position)} rows of {folder}/index.csv: "
                         "rebuild the paired set with 'sserd build-pairs'")
    return codes[[position[r.path] for r in pairs.rows]].float()


class SSERDCoach(Coach):
    stage = "sserd"

    def __init__(self, config: SSERDConfig, ctx: ddp.DistContext):
        super().__init__(config, ctx)
        c = config
        self.bundle, self.G = load_frozen_generator(c.model, c.size, self.device, need=("generator", "encoder"))
        self.E = self.bundle.encoder(device=self.device).eval()
        set_requires_grad(self.E, False)
        self.real = FrameSet(c.data, c.size, c.resolved_load_size(), split="train", workers=c.workers)
        self.pairs = None
        if c.data_mode != "unpaired":
            if not c.pairs:
                raise SserdError(f"--data {c.data_mode} needs the paired set of 'sserd build-pairs' (PAIRS argument)")
            # paired images are G renders, already in the training framing: no second resize/crop
            self.pairs = FrameSet(c.pairs, c.size, c.size, split="train", workers=c.workers, what="paired set")
            if int(self.pairs.meta.get("size", c.size)) != c.size:
                raise SserdError(f"paired set {c.pairs} holds {self.pairs.meta.get('size')} px images but --size is {c.size}")
        self.sampler = HybridSampler(self.real, self.pairs, c.data_mode, c.real_fraction, c.seed)
        if c.latent_warmup > 0 and not (c.lambda_latent > 0 and self.pairs is not None):
            raise SserdError("--latent-warmup trains on the latent-step loss alone: it needs --lambda-latent > 0 and "
                             "paired data (--data paired or hybrid)")
        self.bank = None
        if self.pairs is not None and c.lambda_latent > 0:
            self.bank = LatentBank(self.E, self.pairs, self.sampler.groups, pair_codes(c.pairs, self.pairs), self.real,
                                   refs_per_emotion=c.latent_refs, max_groups=c.latent_groups, seed=c.seed,
                                   device=self.device)
        self.D, d_origin = discriminator_for(self.bundle, self.G, self.device)
        self.celcl = CELCL(CELCLConfig(n_latent=self.G.n_latent, style_dim=self.G.style_dim, heads=c.heads,
                                       ffn_layers=c.ffn_layers, transformer_layers=c.transformer_layers,
                                       ffn_dim=c.ffn_dim)).to(self.device)
        ddp.broadcast_module(self.celcl, ctx)
        ddp.broadcast_module(self.D, ctx)
        self.optimizer = Ranger(self.celcl.parameters(), lr=c.lr)
        self.critic = Critic(self.D, c.d_lr, c.d_betas, c.r1_gamma, c.d_reg_every, ctx)
        self.perceptual, perceptual_info = load_criterion("lpips", c.lpips_weights, self.device, vgg16=c.vgg_weights)
        self.cache = CodeCache(per_emotion=c.cache_per_emotion, dim=self.G.n_latent * self.G.style_dim,
                               seed=c.seed, gather=distributed_gather).to(self.device)
        self.sample_items = self.sampler.batch(10**9, c.n_samples)  # fixed tuples for the sample grids
        self.run_info.update({"perceptual": perceptual_info, "discriminator": d_origin, "data_mode": c.data_mode,
                              "contrastive": c.contrastive,
                              "data": {"real_frames": len(self.real), "pair_groups": len(self.sampler.groups),
                                       "speakers": self.real.speakers,
                                       "single_clip_speakers": self.sampler.single_clip_speakers}})

    def modules(self):
        return {"celcl": self.celcl, "discriminator": self.D}

    def optimizers(self):
        return {"celcl": self.optimizer, "discriminator": self.critic.optimizer}

    def extra_state(self):
        return {"code_cache": self.cache.state_dict()}

    def load_extra_state(self, state):
        self.cache.load_state_dict(state["code_cache"])

    def _load(self, items) -> dict[str, torch.Tensor]:
        """Source, target (zeros for real sources), r1, r2 images and labels of a list of HybridItem."""
        dev = self.device
        syn = [k for k, it in enumerate(items) if it.synthetic]
        real = [k for k, it in enumerate(items) if not it.synthetic]
        size = self.config.size
        source = torch.zeros(len(items), 3, size, size)
        target = torch.zeros(len(items), 3, size, size)
        if syn:
            source[syn] = self.pairs.load([items[k].source for k in syn])
            target[syn] = self.pairs.load([items[k].target for k in syn])
        if real:
            source[real] = self.real.load([items[k].source for k in real])
        batch = {"source": source.to(dev), "target": target.to(dev),
                 "r1": self.real.load([it.r1 for it in items]).to(dev), "r2": self.real.load([it.r2 for it in items]).to(dev),
                 "synthetic": torch.tensor([it.synthetic for it in items], device=dev),
                 "labels": torch.tensor([it.emotion for it in items], dtype=torch.long, device=dev)}
        return batch

    def _forward(self, batch):
        with torch.no_grad():
            w_s, w_r1, w_r2 = (self.E(batch[k]).float() for k in ("source", "r1", "r2"))
        w_e1 = self.celcl(w_s, w_r1)
        w_e2 = self.celcl(w_s, w_r2)
        out1 = self.G.synthesis(w_s + w_e1, noise_mode="const")
        out2 = self.G.synthesis(w_s + w_e2, noise_mode="const")
        return out1.float(), out2.float(), w_e1.float(), w_e2.float()

    def _latent_loss(self, iteration: int) -> torch.Tensor:
        w_s, w_r, step = self.bank.batch(iteration, self.config.latent_batch, self.ctx.rank)
        return latent_step_loss(self.celcl(w_s, w_r).float(), step)

    def _update(self, total: torch.Tensor) -> None:
        """One CELCL step on ``total``, its gradients averaged over the ranks."""
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        ddp.average_gradients(self.celcl.parameters(), self.ctx)
        self.optimizer.step()

    def step(self, iteration: int) -> dict[str, float]:
        c = self.config
        if iteration < c.latent_warmup:  # the latent-step loss alone: no rendering, no discriminator step
            lat = self._latent_loss(iteration)
            self._update(c.lambda_latent * lat)
            return {"total": c.lambda_latent * lat.detach().item(), "lat": lat.detach().item()}
        batch = self._load(self.sampler.batch(iteration, c.batch_size, self.ctx.rank, self.ctx.world_size))
        with self.autocast():
            out1, out2, w_e1, w_e2 = self._forward(batch)
        real_images = torch.cat([batch["r1"], batch["r2"]])
        losses = self.critic.step(real_images, torch.cat([out1, out2]).detach(), iteration)

        with self.autocast():
            sup = hybrid_objective(out1, out2, batch["target"], batch["synthetic"], self.perceptual, c.alpha)
            adv = g_nonsaturating_loss(self.D(torch.cat([out1, out2])).float())
        codes = torch.cat([w_e1, w_e2])
        labels = torch.cat([batch["labels"], batch["labels"]])
        cl = contrastive_loss(codes, labels, self.cache, tau=c.tau) if c.contrastive else codes.sum() * 0.0
        total = sup["supervised"] + c.lambda_adv * adv + c.lambda_cl * cl
        if self.bank is not None:
            lat = self._latent_loss(iteration)
            total = total + c.lambda_latent * lat
        self._update(total)
        if c.contrastive:
            self.cache.push(codes.detach(), labels)
        losses.update({"total": total.detach().item(), "pix": sup["pix"].detach().item(), "lips": sup["lips"].detach().item(),
                       "adv": adv.detach().item(), "cl": cl.detach().item(), "synthetic": float(batch["synthetic"].float().mean())})
        if self.bank is not None:
            losses["lat"] = lat.detach().item()
        return losses

    @torch.no_grad()
    def samples(self):
        batch = self._load(self.sample_items)
        out1, out2, _, _ = self._forward(batch)
        # columns: source, r1, output(r1), r2, output(r2), target (flat grey for real sources: none)
        rows = torch.stack([batch["source"], batch["r1"], out1, batch["r2"], out2, batch["target"]], dim=1)
        return rows.reshape(-1, *rows.shape[2:]), 6

    def export(self, path: Path) -> None:
        card = base_card(name=Path(self.config.run_dir).name or "sserd", generator=self.G, stage=self.stage,
                         config=self.config, run_info=self.run_info, parent=self.bundle.card)
        card["celcl"] = dataclasses.asdict(self.celcl.config)
        extra = {}
        if self.bundle.has("directions"):
            extra["directions"] = self.bundle.directions()
        if self.bundle.has("mean_codes"):
            extra["mean_codes"] = self.bundle.mean_codes()
        save_bundle(path, card, generator=self.G, encoder=self.E, celcl=self.celcl, discriminator=self.D,
                    latent_avg=self.bundle.latent_avg(), **extra)
