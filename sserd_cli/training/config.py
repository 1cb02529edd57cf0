"""Configuration of every training stage as plain dataclasses (saved as ``config.json`` in the run directory).

Defaults are the paper's numbers where it gives them (section 3 and 4.1): Ranger, lr 1e-4,
batch 2, 50k iterations, alpha = 0.8, lambda1 = lambda2 = 0.1, tau = 0.1, beta = 15, faces
aligned at 320 and centre-cropped to 256 (done once, by ``sserd prepare`` / ``sserd synth``, whose
datasets record it; ``load_size`` can add a further zoom at load time). The StyleGAN2 stage uses the StyleGAN2 paper's
recipe (Adam 0.002, betas (0, 0.99), lazy R1 gamma 10 every 16 D steps, path length 2 every
4 G steps, mixing 0.9, EMA half-life 10k images).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import SserdError


@dataclass
class RunConfig:
    """What every stage shares: data, run directory, schedule, device and seeds."""

    data: str = ""
    run_dir: str = ""
    size: int = 256
    # resize before the centre crop; 0 -> size (no further zoom: datasets of `sserd prepare` / `sserd synth`
    # already have the paper's 320 -> 256 framing, recorded in dataset.json)
    load_size: int = 0
    iterations: int = 50_000
    batch_size: int = 2
    lr: float = 1e-4
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3
    workers: int = 2  # threads that decode images
    amp: bool = True  # bfloat16 autocast, used on CUDA only
    time_limit: float = 0.0  # minutes of training in this invocation before it checkpoints and exports; 0 = none

    def resolved_load_size(self) -> int:
        return self.load_size or self.size


@dataclass
class AdversarialConfig:
    """The discriminator trained alongside a generator-side network (non-saturating loss, lazy R1)."""

    d_lr: float = 1e-4
    d_betas: tuple = (0.0, 0.99)
    r1_gamma: float = 10.0
    d_reg_every: int = 16


@dataclass
class StyleGANConfig(RunConfig):
    """``sserd train-stylegan``: StyleGAN2 (config F) from scratch."""

    iterations: int = 100_000
    batch_size: int = 16
    lr: float = 0.002
    checkpoint_every: int = 5000
    sample_every: int = 1000
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    lr_mlp: float = 0.01
    r1_gamma: float = 10.0
    d_reg_every: int = 16
    path_length_weight: float = 2.0  # 0 disables the path length regulariser
    g_reg_every: int = 4
    path_batch_shrink: int = 2
    mixing: float = 0.9
    ema_kimg: float = 10.0  # EMA half-life in thousands of images
    ema_rampup: float = 0.05  # half-life at most this fraction of the images seen so far (StyleGAN2-ADA); 0 = off
    n_samples: int = 16


@dataclass
class EncoderTrainConfig(RunConfig, AdversarialConfig):
    """``sserd train-encoder``: inversion, eq. 8-10, G frozen."""

    model: str = ""
    backbone: str = "iresnet50"
    alpha: float = 0.8  # perceptual weight in L_rec (eq. 8)
    lambda_adv: float = 0.1  # lambda1 (eq. 10)
    lambda_cl: float = 0.1  # lambda2 (eq. 10)
    tau: float = 0.1
    contrastive: bool = True
    cache_per_emotion: int = 64
    vgg_weights: Optional[str] = None
    n_samples: int = 8


@dataclass
class PairsConfig:
    """``sserd build-pairs``: SVM edit directions (eq. 11) and the paired set (eq. 12)."""

    data: str = ""
    out: str = ""
    model: str = ""
    beta: Optional[float] = 15.0  # None: "auto", each direction's class separation
    direction: str = "svm"  # svm (eq. 11) | regression (intensity slopes, speech projected out)
    layers: Optional[list] = None  # W+ layers a direction may move; None = all
    svm_c: float = 0.001  # a wide margin: W+ has far more dimensions than there are codes
    holdout: float = 0.2  # fraction held out when the dataset has no test split for an emotion
    max_sources: int = 0  # 0 = every neutral training frame
    batch_size: int = 8
    device: str = "auto"
    seed: int = 0
    load_size: int = 0
    workers: int = 2
    mouth_probe: int = 16  # neutral codes used to measure how much a direction moves the mouth


@dataclass
class SSERDConfig(RunConfig, AdversarialConfig):
    """``sserd train``: hybrid training of CELCL, eq. 13-14, E and G frozen."""

    model: str = ""
    pairs: str = ""
    data_mode: str = "hybrid"  # paired | unpaired | hybrid (table 5 ablation)
    real_fraction: float = 0.5  # hybrid: chance that a sample's source is a real frame
    contrastive: bool = True  # --no-contrastive for the table 3 ablation
    alpha: float = 0.8
    lambda_adv: float = 0.1
    lambda_cl: float = 0.1
    lambda_latent: float = 0.0  # the latent-step loss on banked pair codes (not the paper's: 0 is eq. 14)
    latent_batch: int = 64  # banked (source, reference, step) triples per step for the latent-step loss
    latent_warmup: int = 0  # first iterations train the CELCL on the latent-step loss alone (no rendering)
    latent_refs: int = 256  # real reference frames encoded per emotion for the bank
    latent_groups: int = 2048  # at most this many pair groups are encoded for the bank
    tau: float = 0.1
    cache_per_emotion: int = 64
    lpips_weights: Optional[str] = None
    vgg_weights: Optional[str] = None
    heads: int = 8
    ffn_layers: int = 2
    transformer_layers: int = 2
    ffn_dim: int = 1024
    n_samples: int = 4


@dataclass
class FeatureTrainConfig(RunConfig):
    """``sserd train-features``: the domain feature network F of a dataset (a loss for inversion)."""

    size: int = 64
    iterations: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    checkpoint_every: int = 500
    sample_every: int = 1000
    stem: int = 16
    widths: tuple = (32, 64, 128, 192)
    noise: float = 0.1  # the strongest per-sample pixel noise of the jitter
    param_weight: float = 1.0  # weight of the parameter regression beside the emotion cross-entropy


@dataclass
class AutoencoderConfig(RunConfig, AdversarialConfig):
    """``sserd train-autoencoder``: G and E trained together on reconstruction, G(E(x)) = x.

    ``model``: a bundle whose generator (and encoder, when it has one) start the run; "" builds both
    from scratch with the generator options below. ``features``: a ``train-features`` network whose
    activations and heads must agree on x and G(E(x)).
    """

    size: int = 64
    iterations: int = 20_000
    batch_size: int = 8
    lr: float = 1e-3  # Adam, for G and E
    warmup: int = 500  # steps of linear learning-rate warm-up
    checkpoint_every: int = 500
    sample_every: int = 500
    model: str = ""
    features: str = ""
    backbone: str = "small"
    encoder_channels: int = 0  # 0: the backbone's preset base width
    style_dim: int = 128
    n_mlp: int = 4
    channel_multiplier: int = 2
    channel_max: int = 64
    region_weight: float = 10.0  # pixel-loss weight on the eye, brow and mouth boxes (1 elsewhere)
    lambda_feat: float = 0.5  # F's normalised activations
    # F's emotion probabilities (KL) and parameters: off by default. Measured (160-step probes from the shipped bundle):
    # with them G learns to move F's outputs while its activations and the pixel error get worse (L2 0.018 -> 0.07);
    # the activations alone lower F's head error as well (3.0 -> 0.8) with the pixel error unchanged
    lambda_params: float = 0.0
    feat_blur: float = 1.0  # Gaussian sigma (pixels) applied before F: F judges shapes, not pixel texture
    feat_ramp: int = 1000  # steps over which the F terms rise from 0 to their weight
    alpha: float = 0.0  # VGG19 perceptual weight (eq. 8), for real data with --vgg-weights
    vgg_weights: Optional[str] = None
    # adversarial term: off by default; on this CPU it costs 2.4x the step time (D, R1) and raised the pixel error
    # in a 160-step probe (0.018 -> 0.020) without lowering F's error
    lambda_adv: float = 0.0
    lambda_aux: float = 0.1  # E's auxiliary head: emotion and (where labelled) parameters from the code
    d_lr: float = 5e-4
    n_samples: int = 8


DATA_MODES = ("paired", "unpaired", "hybrid")


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict) -> Any:
    """Rebuild a config, refusing unknown keys (a config from another stage or version)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SserdError(f"config has unknown keys {unknown} for {cls.__name__}: was it written by another stage?")
    values = dict(values)
    for key in ("d_betas", "widths"):  # JSON has no tuples
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return cls(**values)


def validate(config: Any) -> None:
    """Reject numbers that cannot work, with one line each."""
    if isinstance(config, RunConfig):
        if config.size < 8 or config.size & (config.size - 1):
            raise SserdError(f"--size {config.size}: must be a power of two >= 8")
        if config.resolved_load_size() < config.size:
            raise SserdError(f"load size {config.load_size} is smaller than --size {config.size}")
        for name in ("iterations", "batch_size", "checkpoint_every", "sample_every", "log_every"):
            if getattr(config, name) < 1:
                raise SserdError(f"--{name.replace('_', '-')} must be at least 1")
        if not math.isfinite(config.lr) or config.lr <= 0:
            raise SserdError(f"--lr {config.lr}: must be a finite positive number")
        if config.workers < 0:
            raise SserdError("--workers must be >= 0")
        if config.time_limit < 0:
            raise SserdError("--time-limit must be >= 0 minutes (0: no limit)")
    if isinstance(config, AutoencoderConfig):
        for name in ("region_weight", "lambda_feat", "lambda_params", "feat_blur", "alpha", "lambda_adv", "lambda_aux",
                     "d_lr", "feat_ramp", "warmup"):
            value = getattr(config, name)
            if not math.isfinite(value) or value < 0:
                raise SserdError(f"--{name.replace('_', '-')} {value}: must be a finite number >= 0")
        if config.region_weight < 1:
            raise SserdError(f"--region-weight {config.region_weight}: must be >= 1 (1 = no extra weight)")
    if isinstance(config, FeatureTrainConfig) and not (math.isfinite(config.noise) and 0 <= config.noise <= 1):
        raise SserdError(f"--noise {config.noise}: must lie in [0, 1]")
    if isinstance(config, SSERDConfig) and config.data_mode not in DATA_MODES:
        raise SserdError(f"--data {config.data_mode}: choose one of {', '.join(DATA_MODES)}")
    if isinstance(config, SSERDConfig) and not 0.0 <= config.real_fraction <= 1.0:
        raise SserdError("--real-fraction must lie in [0, 1]")


__all__ = ["RunConfig", "AdversarialConfig", "StyleGANConfig", "EncoderTrainConfig", "PairsConfig", "SSERDConfig",
           "FeatureTrainConfig", "AutoencoderConfig",
           "DATA_MODES", "to_dict", "from_dict", "validate"]
