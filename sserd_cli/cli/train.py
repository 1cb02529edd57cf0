"""Training commands: ``train-stylegan``, ``train-encoder``, ``build-pairs``, ``train``.

Thin wrappers: typed options -> a stage config (sserd_cli.training.config) -> the stage's
coach (:func:`.stage.run_stage`). Options left unset take the stage's defaults (the paper's numbers); the
options every stage shares are defined once in :mod:`.stage_options`. With ``--resume`` the run's saved
config is used; only the schedule options given on the command line (--iterations, --checkpoint-every,
--sample-every, --workers, --device, --time-limit) change it, and the paths it gives (DATA, PAIRS, --model,
-o) replace the saved ones, so a moved run folder resumes. Multi-GPU / multi-process: start the same command
with ``torchrun --nproc-per-node N $(which sserd) ...``; each rank reads its shard of every batch and only
rank 0 writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ..errors import SserdError
from .console import err_console, make_progress, say
from .numbers import check_number
from .stage import run_stage
from .stage_options import DATA, LOAD_SIZE, OUT, RunOptions, given, stage_options


@stage_options()
def train_stylegan(
    data: Path = DATA,
    out: Path = OUT,
    size: Optional[int] = typer.Option(None, "--size", help="Image size, a power of two (default: 256)."),
    load_size: Optional[int] = LOAD_SIZE,
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default: 100000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per rank and step (default: 16)."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate (default: 0.002)."),
    style_dim: Optional[int] = typer.Option(None, help="Latent width (default: 512)."),
    n_mlp: Optional[int] = typer.Option(None, help="Mapping network depth (default: 8)."),
    channel_multiplier: Optional[int] = typer.Option(None, help="StyleGAN2 channel multiplier (default: 2)."),
    channel_max: Optional[int] = typer.Option(None, help="Cap on channels per layer, for small models (default: 512)."),
    path_length: bool = typer.Option(True, "--path-length/--no-path-length", help="Path length regulariser (weight 2)."),
    mixing: Optional[float] = typer.Option(None, help="Style mixing probability (default: 0.9)."),
    run_options: RunOptions = RunOptions(),
) -> None:
    """Train a StyleGAN2 generator on a dataset of face crops (for domains without a public one).

    Non-saturating logistic loss, lazy R1 (gamma 10), path length regulariser, style mixing,
    EMA generator. Exports RUN/bundle (generator + discriminator).

    Example: sserd train-stylegan crops/ -o runs/gan --size 256
    """
    explicit = given(data=str(data), size=size, load_size=load_size, iterations=iterations, batch_size=batch_size, lr=lr,
                     style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier, channel_max=channel_max,
                     mixing=mixing, **run_options.config())
    if not path_length:
        explicit["path_length_weight"] = 0.0
    run_stage("stylegan", "stylegan.StyleGANCoach", "StyleGANConfig", explicit, out, run_options)


def _bundle_size(model: str, size: Optional[int]) -> int:
    if size is not None:
        return size
    from ..bundles import load_bundle

    return int(load_bundle(model).resolution)


@stage_options()
def train_encoder(
    data: Path = DATA,
    model: str = typer.Option(..., "--model", "-m", help="Bundle with the generator to invert (kept frozen).",
                              show_default=False),
    out: Path = OUT,
    size: Optional[int] = typer.Option(None, "--size", help="Image size (default: the bundle's resolution)."),
    load_size: Optional[int] = LOAD_SIZE,
    backbone: Optional[str] = typer.Option(None, help="iresnet50 (paper), iresnet34, iresnet18 or small."),
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default: 50000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per rank and step (default: 2)."),
    lr: Optional[float] = typer.Option(None, help="Ranger learning rate (default: 1e-4)."),
    alpha: Optional[float] = typer.Option(None, help="Perceptual weight in eq. 8 (default: 0.8)."),
    lambda_adv: Optional[float] = typer.Option(None, "--lambda-adv", help="lambda1 of eq. 10 (default: 0.1)."),
    lambda_cl: Optional[float] = typer.Option(None, "--lambda-cl", help="lambda2 of eq. 10 (default: 0.1)."),
    contrastive: bool = typer.Option(True, "--contrastive/--no-contrastive", help="Contrastive loss on w_s."),
    vgg_weights: Optional[Path] = typer.Option(None, "--vgg-weights",
                                               help="torchvision VGG19 state dict for the perceptual loss."),
    run_options: RunOptions = RunOptions(),
) -> None:
    """Train the latent encoder E by StyleGAN inversion (eq. 8-10), generator frozen.

    L2 + 0.8 VGG19 perceptual + 0.1 adversarial (a discriminator trained alongside)
    + 0.1 contrastive on w_s by emotion label; Ranger, lr 1e-4, batch 2.
    Exports RUN/bundle (generator + encoder + discriminator).

    Example: sserd train-encoder crops/ --model runs/gan/bundle -o runs/enc --vgg-weights vgg19.pth
    """
    explicit = given(data=str(data), model=model, size=_bundle_size(model, size) if not run_options.resume else size,
                     load_size=load_size, backbone=backbone, iterations=iterations, batch_size=batch_size, lr=lr, alpha=alpha,
                     lambda_adv=lambda_adv, lambda_cl=lambda_cl, contrastive=contrastive,
                     vgg_weights=str(vgg_weights) if vgg_weights else None, **run_options.config())
    run_stage("encoder", "encoder.EncoderCoach", "EncoderTrainConfig", explicit, out, run_options)


def _parse_beta(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise SserdError(f"--beta {text}: give a finite positive number or 'auto'")
    return value


def build_pairs(
    data: Path = DATA,
    model: str = typer.Option(..., "--model", "-m", help="Bundle with generator + encoder (from train-encoder).",
                              show_default=False),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder for the paired set (must not exist).",
                             show_default=False),
    beta: str = typer.Option("15", help="Edit strength beta of eq. 12, or 'auto': per emotion, how far its codes "
                             "lie from the neutral ones along the direction (for latent spaces unlike FFHQ's)."),
    layers: Optional[str] = typer.Option(None, help="W+ rows a direction may move, e.g. 0-7 (default: all)."),
    direction: str = typer.Option("svm", help="svm: the paper's SVM normal (eq. 11); regression: how the codes "
                                  "move with each emotion's intensity, least squares, with the speech controls' "
                                  "own slopes projected out where the dataset has renderer labels (docs/training.md)."),
    svm_c: float = typer.Option(0.001, "--svm-c", help="LinearSVC regularisation C (small: a wide margin, "
                                "as W+ has more dimensions than there are codes)."),
    load_size: int = typer.Option(0, "--load-size", help="Resize crops to this before the centre crop, a further zoom (0: size, none)."),
    max_sources: int = typer.Option(0, "--max-sources", help="Cap on neutral source frames (0 = all)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Frames per encoder batch."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, help="Random seed (hold-out split, source subset)."),
    workers: int = typer.Option(2, help="Image decoding threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no table."),
) -> None:
    """Fit emotion edit directions (eq. 11) and synthesise the paired set (eq. 12).

    Encodes every frame, fits one linear SVM neutral-vs-emotion per emotion in W+ (reports
    held-out accuracy), renders I_t = G(w_s + beta*dir) for every neutral frame, reports how
    much each direction moves the mouth, and writes OUT/ (index.csv, images/, latents,
    report.json) with OUT/bundle (directions + mean codes added).

    Example: sserd build-pairs crops/ --model runs/enc/bundle -o pairs/ --layers 0-7
    """
    from rich.table import Table

    from ..training.config import PairsConfig
    from ..training.pairs import build_pairs as run_build_pairs, parse_layers

    from ..media.atomic import check_output_folder

    step = _parse_beta(beta)
    check_number(svm_c, "--svm-c", low=0.0, above=True)
    check_output_folder(out)
    config = PairsConfig(data=str(data), out=str(out), model=model, beta=step, direction=direction,
                         layers=parse_layers(layers), svm_c=svm_c,
                         max_sources=max_sources, batch_size=batch_size, device=device, seed=seed, workers=workers,
                         load_size=load_size)
    with make_progress(quiet, unit="frames") as progress:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total, rate="")
            progress.update(tasks[phase], completed=done)

        report = run_build_pairs(config, progress=on_progress)
    if quiet:
        return
    table = Table(title=f"edit directions ({direction}, beta {beta})")
    for column in ("emotion", "held-out acc.", "from", "train acc.", "beta", "mouth change", "rest change", "mouth/rest"):
        table.add_column(column)
    for emotion, svm in report["svm"].items():
        mouth = report["mouth_change"][emotion]
        acc = "n/a" if svm["heldout_accuracy"] is None else f"{svm['heldout_accuracy']:.3f}"
        table.add_row(emotion, acc, svm["heldout_from"], f"{svm['train_accuracy']:.3f}", f"{svm['beta']:.3g}",
                      f"{mouth['mouth']:.4f}", f"{mouth['rest']:.4f}", str(mouth["ratio"]))
    err_console.print(table)
    say(f"{report['pairs']} images from {report['sources']} neutral sources in ", (str(report["out"]), "bold"),
        "; bundle ", (str(report["bundle"]), "bold"))


@stage_options()
def train(
    data: Path = DATA,
    pairs: Optional[Path] = typer.Argument(None, help="Paired set from 'sserd build-pairs' (not needed for --data unpaired)."),
    out: Path = OUT,
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Bundle with generator + encoder (default: PAIRS/bundle)."),
    data_mode: Optional[str] = typer.Option(None, "--data", help="paired, unpaired or hybrid (default: hybrid)."),
    contrastive: bool = typer.Option(True, "--contrastive/--no-contrastive", help="Contrastive loss (eq. 5-6)."),
    size: Optional[int] = typer.Option(None, "--size", help="Image size (default: the bundle's resolution)."),
    load_size: Optional[int] = LOAD_SIZE,
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default: 50000)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Samples per rank and step (default: 2)."),
    lr: Optional[float] = typer.Option(None, help="Ranger learning rate (default: 1e-4)."),
    alpha: Optional[float] = typer.Option(None, help="L_lips weight alpha of eq. 14 (default: 0.8)."),
    lambda_adv: Optional[float] = typer.Option(None, "--lambda-adv", help="lambda1 of eq. 14 (default: 0.1)."),
    lambda_cl: Optional[float] = typer.Option(None, "--lambda-cl", help="lambda2 of eq. 14 (default: 0.1)."),
    lambda_latent: Optional[float] = typer.Option(None, "--lambda-latent",
                                                  help="Weight of the latent-step loss: the CELCL code of banked pair "
                                                  "codes against each pair's own W+ step (not the paper's; default 0)."),
    latent_warmup: Optional[int] = typer.Option(None, "--latent-warmup",
                                                help="First N iterations train on the latent-step loss alone, rendering "
                                                "nothing (milliseconds each; needs --lambda-latent; default 0)."),
    latent_batch: Optional[int] = typer.Option(None, "--latent-batch",
                                               help="Banked pair codes per step for the latent-step loss (default: 64)."),
    real_fraction: Optional[float] = typer.Option(None, "--real-fraction",
                                                  help="hybrid: share of real (unpaired) sources (default: 0.5)."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="LPIPS heads (lpips vgg.pth)."),
    vgg_weights: Optional[Path] = typer.Option(None, "--vgg-weights", help="torchvision VGG16 trunk for LPIPS."),
    run_options: RunOptions = RunOptions(),
) -> None:
    """Hybrid SSERD training of the CELCL emotion editor (eq. 13-14), E and G frozen.

    Per sample: source, reference r1 (same speaker), r2 (other speaker), target; pixel L2 and
    0.8 LPIPS only for synthetic sources, 0.1 adversarial, 0.1 contrastive. Ranger, lr 1e-4,
    batch 2, 50k iterations. Exports RUN/bundle (the full SSERD model).

    Example: sserd train crops/ pairs/ -o runs/sserd            (model: pairs/bundle)
    """
    from ..errors import SserdError

    if model is None and not run_options.resume:
        if pairs is None:
            raise SserdError("give --model BUNDLE (generator + encoder) or a PAIRS folder holding one")
        model = str(pairs / "bundle")
    explicit = given(data=str(data), pairs=str(pairs) if pairs else "", model=model, data_mode=data_mode,
                     contrastive=contrastive, size=_bundle_size(model, size) if not run_options.resume else size, load_size=load_size,
                     iterations=iterations, batch_size=batch_size, lr=lr, alpha=alpha, lambda_adv=lambda_adv,
                     lambda_cl=lambda_cl, lambda_latent=lambda_latent, latent_warmup=latent_warmup,
                     latent_batch=latent_batch, real_fraction=real_fraction,
                     lpips_weights=str(lpips_weights) if lpips_weights else None,
                     vgg_weights=str(vgg_weights) if vgg_weights else None, **run_options.config())
    run_stage("sserd", "sserd.SSERDCoach", "SSERDConfig", explicit, out, run_options)
