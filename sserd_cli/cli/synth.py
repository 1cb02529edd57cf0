"""`sserd synth`: the synthetic talking-face world (image datasets, talking videos, true answers, oracle)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import SserdError
from ..media.atomic import atomic_output, check_output, check_output_folder
from .console import make_progress, say

synth_app = typer.Typer(help="Render the synthetic talking-face world: image datasets and talking videos with ground truth.",
                        no_args_is_help=True)


def _workers(workers: int) -> int:
    if workers < 0:
        raise SserdError(f"--workers must be 0 (all cores) or more, got {workers}")
    return workers or (os.cpu_count() or 1)


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SserdError(f"--frame-size '{text}' is not WIDTHxHEIGHT (e.g. 640x360)") from None
    return w, h


@synth_app.command("images")
def images(
    out: Path = typer.Option(..., "-o", "--out", help="Dataset directory to create (index.csv, dataset.json, images/)."),
    count: int = typer.Option(1000, "--count", "-n", help="Number of aligned crops."),
    size: int = typer.Option(256, "--size", help="Crop side in pixels (32..1024)."),
    resize: Optional[int] = typer.Option(None, "--resize", help="Aligned image side before the centre crop, as in "
                                         "'sserd prepare' (default 1.25 x --size: the paper's 320 -> 256; "
                                         "= --size for FFHQ framing)."),
    speakers: int = typer.Option(50, "--speakers", help="Size of the identity pool (last 10% -> test split)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same files."),
    workers: int = typer.Option(0, "--workers", help="Processes (0 = one per core)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render an image dataset of aligned synthetic faces with labels (speaker, emotion, intensity, all parameters).

    Example: sserd synth images -o data/synth_faces --count 5000 --size 256
    """
    from ..data.synth.dataset import ImageSetConfig, check_image_config, make_image_dataset

    cfg = ImageSetConfig(count=count, size=size, resize=resize, speakers=speakers, seed=seed)
    check_image_config(cfg)  # before the progress bar: a bad value or place gets its one line alone
    check_output_folder(out)
    chunk = 25
    with make_progress(quiet, "images") as progress:
        task = progress.add_task("rendering", total=count, rate="")
        t0 = time.time()
        done = [0]

        def step(k):
            done[0] = min(count, done[0] + chunk)
            progress.update(task, completed=done[0], rate=f"{done[0] / max(time.time() - t0, 1e-6):.1f} img/s")

        path, n = make_image_dataset(out, cfg, workers=_workers(workers), overwrite=overwrite, progress=step, chunk=chunk)
    say(f"wrote {n} crops to {path}")


@synth_app.command("videos")
def videos(
    out: Path = typer.Option(..., "-o", "--out", help="Dataset directory to create (videos/, crops/, index.csv)."),
    speakers: int = typer.Option(4, "--speakers", help="Number of synthetic speakers (last 10% -> test split)."),
    clips_per_emotion: int = typer.Option(2, "--clips-per-emotion", help="Clips per speaker and emotion."),
    duration: float = typer.Option(3.0, "--duration", help="Clip length in seconds."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate."),
    frame_size: str = typer.Option("640x360", "--frame-size", help="Video frame WIDTHxHEIGHT."),
    crop_size: int = typer.Option(256, "--crop-size", help="Side of the aligned crops in the index."),
    resize: Optional[int] = typer.Option(None, "--resize", help="Aligned image side before the centre crop "
                                         "(default 1.25 x --crop-size, as 'sserd prepare')."),
    stride: int = typer.Option(1, "--stride", help="Keep the crop of every N-th frame in the index."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same files."),
    workers: int = typer.Option(0, "--workers", help="Processes (0 = one per core)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing non-empty output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render talking clips (H.264 + AAC) with per-frame ground truth, and their aligned crops as a dataset.

    Example: sserd synth videos -o data/synth_talk --speakers 10 --clips-per-emotion 3
    """
    from ..data.synth.dataset import VideoSetConfig, check_video_config, make_video_dataset, video_tasks

    w, h = _frame_size(frame_size)
    cfg = VideoSetConfig(speakers=speakers, clips_per_emotion=clips_per_emotion, duration=duration, fps=fps, width=w,
                         height=h, crop_size=crop_size, resize=resize, stride=stride, seed=seed)
    check_video_config(cfg)  # before the progress bar (see images)
    check_output_folder(out)
    total = len(video_tasks(cfg))
    with make_progress(quiet, "clips") as progress:
        task = progress.add_task("rendering clips", total=total, rate="")
        t0 = time.time()

        def step(k):
            progress.advance(task, k)
            done = progress.tasks[0].completed
            progress.update(task, rate=f"{done * cfg.duration * cfg.fps / max(time.time() - t0, 1e-6):.1f} frames/s")

        path, n = make_video_dataset(out, cfg, workers=_workers(workers), overwrite=overwrite, progress=step)
    say(f"wrote {total} clips and {n} crops to {path}")


@synth_app.command("truth")
def truth(
    clip: Path = typer.Argument(..., help="A clip written by 'sserd synth videos' (its .truth.json/.npz beside it)."),
    emotion: str = typer.Option(..., "--emotion", "-e", help="Target emotion."),
    out: Path = typer.Option(..., "-o", "--out", help="Output MP4."),
    intensity: float = typer.Option(None, "--intensity", help="Emotion intensity 0..1 (default: the clip's)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Render the true answer of an emotion edit: the same clip (identity, pose, light, speech) with another emotion.

    Example: sserd synth truth data/synth_talk/videos/synth0000_neutral_000.mp4 -e happy -o happy_truth.mp4
    """
    from ..data.synth.truth import write_true_answer
    from ..emotions import emotion_index

    emotion_index(emotion)
    if intensity is not None and not 0 <= intensity <= 1:
        raise SserdError(f"--intensity {intensity} is outside 0..1")
    if out.exists() and not overwrite:
        raise SserdError(f"{out} exists: choose another -o or pass --overwrite")
    if out.resolve() == clip.resolve():
        raise SserdError("the output would overwrite the input clip: choose another -o")
    check_output(out, overwrite)
    write_true_answer(clip, emotion, out, intensity)
    say(f"wrote {out}")


@synth_app.command("sheet")
def sheet(
    out: Path = typer.Option(..., "-o", "--out", help="Output PNG."),
    size: int = typer.Option(128, "--size", help="Tile size in pixels."),
    identities: int = typer.Option(4, "--identities", help="Number of identities (rows of 3 mouth openings each)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """A contact sheet: the 7 emotions across, identities x 3 mouth openings down (aligned crops).

    Example: sserd synth sheet -o examples/synth_contact_sheet.png
    """
    import cv2

    from ..data.synth.dataset import check_size
    from ..data.synth.sheet import contact_sheet

    check_size("--size", size)
    if identities < 1:
        raise SserdError("--identities must be at least 1")
    if out.suffix.lower() != ".png":
        raise SserdError(f"{out}: the contact sheet is a PNG: give an -o ending in .png")
    check_output(out, overwrite=True)
    img = contact_sheet(size, identities, seed=seed)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise SserdError(f"cannot write {out}: choose a writable path")
    with atomic_output(out) as tmp:
        png.tofile(str(tmp))
    say(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")


@synth_app.command("train-oracle")
def train_oracle(
    out: Path = typer.Option(Path("models/oracle"), "-o", "--out", help="Directory for oracle.safetensors + oracle.json."),
    train_images: int = typer.Option(8000, "--train-images", help="Fresh renders to train on."),
    test_images: int = typer.Option(1400, "--test-images", help="Renders of held-out speakers for the card."),
    epochs: int = typer.Option(10, "--epochs"),
    size: int = typer.Option(64, "--size", help="Oracle input side in pixels."),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(0, "--workers", help="Rendering processes (0 = one per core)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the synthetic-world oracle (emotion, expression, speech and identity reader) and write its card.

    Example: sserd synth train-oracle -o models/oracle
    """
    from ..metrics.oracle import OracleConfig, OracleTrainConfig, train_oracle as run_training
    from ..runtime import seed_everything

    if epochs < 1:
        raise SserdError("--epochs must be at least 1")
    if not 32 <= size <= 256:
        raise SserdError(f"--size {size} is impossible for the oracle: use 32..256")
    check_output_folder(out)
    seed_everything(seed)
    tcfg = OracleTrainConfig(train_images=train_images, test_images=test_images, epochs=epochs, seed=seed,
                             workers=_workers(workers), config=OracleConfig(size=size))
    with make_progress(quiet, "steps") as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage, done, total):
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total, rate="")
            progress.update(tasks[stage], completed=done)

        card = run_training(out, tcfg, log=lambda m: say(m), progress=on_progress)
    h = card["held_out"]
    say(f"held-out emotion accuracy {h['emotion_accuracy']:.3f}, mouth-opening MAE {h['mouth_open_mae']:.3f}, "
        f"expression MAE {h['expression_mae']:.3f}; wrote {out}")
