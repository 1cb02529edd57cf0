"""``sserd train-features`` and ``sserd train-autoencoder``: inversion that keeps the face (G and E together).

Thin wrappers like :mod:`.train`: typed options -> a stage config -> the stage's coach, with the same
run folders, ``--resume``, ``--time-limit``, devices and ``torchrun`` support.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import SserdError
from .stage import run_stage
from .stage_options import DATA, OUT, RunOptions, given, stage_options


def _data_size(data: Path, size: Optional[int], model: Optional[str] = None) -> Optional[int]:
    """--size when given, else the bundle's resolution, else the dataset's crop size."""
    if size is not None:
        return size
    if model:
        from ..bundles import load_bundle

        return int(load_bundle(model).resolution)
    from ..data.index import read_meta
    from ..data.labels import crop_size

    if not Path(data).exists():
        raise SserdError(f"dataset {data} does not exist: create it with 'sserd prepare' or 'sserd synth'")
    found = crop_size(read_meta(Path(data)))
    if not found:
        raise SserdError(f"dataset {data} does not record its crop size: pass --size")
    return found


@stage_options(amp=False)  # its coach runs no mixed precision: no --amp to offer
def train_features(
    data: Path = DATA,
    out: Path = OUT,
    size: Optional[int] = typer.Option(None, "--size", help="Input size (default: the dataset's crop size)."),
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default: 3000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per rank and step (default: 64)."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate, cosine-decayed (default: 0.002)."),
    noise: Optional[float] = typer.Option(None, help="Strongest pixel noise of the input jitter, in [0, 1] (default: 0.1)."),
    run_options: RunOptions = RunOptions(),
) -> None:
    """Train the domain feature network F of a dataset: a loss that sees the expression.

    A small residual CNN reads each crop's emotion and, where the dataset has them (sserd synth's
    labels.jsonl), its expression, speech, pose and identity parameters, from jittered and noised
    crops. Exports RUN/bundle (features.json + features.safetensors) with its held-out accuracy.

    Example: sserd train-features data/synth -o runs/features
    """
    explicit = given(data=str(data), size=_data_size(data, size) if not run_options.resume else size,
                     iterations=iterations, batch_size=batch_size, lr=lr, noise=noise, **run_options.config())
    run_stage("features", "features.FeaturesCoach", "FeatureTrainConfig", explicit, out, run_options)


@stage_options()
def train_autoencoder(
    data: Path = DATA,
    out: Path = OUT,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Bundle whose generator (and encoder) start the "
                                        "run (default: both from scratch)."),
    features: Optional[Path] = typer.Option(None, "--features", help="Feature network from 'sserd train-features' "
                                            "(its run folder or bundle): the loss that sees the expression."),
    size: Optional[int] = typer.Option(None, "--size", help="Image size (default: the bundle's, else the dataset's)."),
    load_size: Optional[int] = typer.Option(None, "--load-size", help="Resize crops to this before the centre crop "
                                            "(default: size)."),
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default: 20000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per rank and step (default: 8)."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate of G and E (default: 0.001)."),
    warmup: Optional[int] = typer.Option(None, help="Steps of linear learning-rate warm-up (default: 500)."),
    backbone: Optional[str] = typer.Option(None, help="Encoder backbone for a new encoder (default: small)."),
    encoder_channels: Optional[int] = typer.Option(None, "--encoder-channels",
                                                   help="Base width of a new encoder (default: the backbone's)."),
    style_dim: Optional[int] = typer.Option(None, help="Latent width of a new generator (default: 128)."),
    channel_max: Optional[int] = typer.Option(None, help="Channel cap of a new generator (default: 64)."),
    region_weight: Optional[float] = typer.Option(None, "--region-weight", help="Pixel-loss weight on the eyes, brows "
                                                  "and mouth, >= 1 (default: 10)."),
    lambda_feat: Optional[float] = typer.Option(None, "--lambda-feat", help="Weight of F's activations (default: 0.5)."),
    lambda_params: Optional[float] = typer.Option(None, "--lambda-params",
                                                  help="Weight of F's emotion and parameter heads (default: 0)."),
    feat_blur: Optional[float] = typer.Option(None, "--feat-blur", help="Blur sigma in pixels before F (default: 1)."),
    feat_ramp: Optional[int] = typer.Option(None, "--feat-ramp", help="Steps over which the F terms rise to their "
                                            "weight (default: 1000)."),
    lambda_adv: Optional[float] = typer.Option(None, "--lambda-adv", help="Adversarial weight; 0 trains no "
                                               "discriminator (default: 0)."),
    lambda_aux: Optional[float] = typer.Option(None, "--lambda-aux", help="Weight of E's auxiliary head (default: 0.1)."),
    alpha: Optional[float] = typer.Option(None, help="VGG19 perceptual weight, for real data (default: 0)."),
    vgg_weights: Optional[Path] = typer.Option(None, "--vgg-weights", help="torchvision VGG19 state dict (with --alpha)."),
    run_options: RunOptions = RunOptions(),
) -> None:
    """Train the generator G and the encoder E together, so that G(E(x)) keeps expression, mouth and identity.

    L1 + L2 with 10x weight on the eyes, brows and mouth, the feature network's activations and
    heads (--features), a small adversarial term, and an auxiliary head that reads the emotion and
    parameters from E's code. Exports RUN/bundle (generator + encoder + discriminator) for
    build-pairs and train.

    Example: sserd train-autoencoder data/synth -o runs/ae --model runs/gan/bundle --features runs/features
    """
    if features is not None and not run_options.resume:
        from ..nets.features import load_feature_net

        load_feature_net(features)  # a missing or wrong file: one line now, not after start-up
    explicit = given(data=str(data), model=model, features=str(features) if features else None,
                     size=_data_size(data, size, model) if not run_options.resume else size, load_size=load_size,
                     iterations=iterations, batch_size=batch_size, lr=lr, warmup=warmup, backbone=backbone,
                     encoder_channels=encoder_channels, style_dim=style_dim, channel_max=channel_max,
                     region_weight=region_weight, lambda_feat=lambda_feat, lambda_params=lambda_params,
                     feat_blur=feat_blur, feat_ramp=feat_ramp, lambda_adv=lambda_adv, lambda_aux=lambda_aux,
                     alpha=alpha, vgg_weights=str(vgg_weights) if vgg_weights else None, **run_options.config())
    run_stage("autoencoder", "autoencoder.AutoencoderCoach", "AutoencoderConfig", explicit, out, run_options)
