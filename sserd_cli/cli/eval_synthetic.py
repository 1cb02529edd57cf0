"""`sserd eval synthetic`: score emotion edits of synthetic clips against their exact ground truth."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SserdError
from .console import err_console, out_console

COLUMNS = (("emotion_accuracy", "emotion accuracy ↑", "{:.3f}"), ("target_probability", "p(target) ↑", "{:.3f}"),
           ("expression_mae", "expression MAE ↓", "{:.3f}"), ("mouth_open_mae", "mouth-open MAE vs source ↓", "{:.3f}"),
           ("lip_round_mae", "lip-round MAE vs source ↓", "{:.3f}"), ("identity_mae", "identity MAE ↓", "{:.3f}"),
           ("identity_cosine", "identity cosine ↑", "{:.3f}"), ("psnr", "PSNR dB ↑", "{:.2f}"), ("ssim", "SSIM ↑", "{:.3f}"),
           ("frechet", "Fréchet (oracle) ↓", "{:.3f}"))


def _fmt(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str) or (isinstance(value, float) and math.isinf(value)):
        return str(value)
    return fmt.format(value)


def synthetic(
    edited: List[Path] = typer.Argument(..., help="Edited clip(s) of the source clip (same frame count and size)."),
    clip: Path = typer.Option(..., "--clip", "--truth", help="The source clip written by 'sserd synth videos' "
                              "(its .mp4, its .truth.json, or the folder holding its truth files)."),
    emotion: str = typer.Option(..., "--emotion", "-e", help="The target emotion of the edit."),
    label: Optional[List[str]] = typer.Option(None, "--label", help="Row name per edited clip (default: file name)."),
    intensity: Optional[float] = typer.Option(None, "--intensity", help="Target intensity 0..1 (default: the clip's)."),
    baselines: bool = typer.Option(False, "--baselines", help="Add rows for 'no edit' (the source itself) and "
                                   "'true answer' (the rendered ground truth: the ceiling)."),
    oracle: Optional[Path] = typer.Option(None, "--oracle", help="Oracle directory (default: the shipped one)."),
    crop_size: int = typer.Option(256, "--crop-size", help="Aligned crop size for PSNR/SSIM and the oracle."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of a table."),
) -> None:
    """Emotion accuracy, expression error, speech kept (mouth error vs the source), identity, PSNR/SSIM and Fréchet
    distance of edited clips against the exact true answer of the synthetic world.

    Example: sserd eval synthetic out.mp4 --clip data/synth_talk/videos/synth0003_neutral_000.mp4 -e happy --baselines
    """
    from ..data.synth.truth import read_video_frames
    from ..metrics.oracle import Oracle
    from ..metrics.synthetic import EditCase, SyntheticEvaluator, resolve_truth

    if intensity is not None and not 0 <= intensity <= 1:
        raise SserdError(f"--intensity {intensity} is outside 0..1")
    if label and len(label) != len(edited):
        raise SserdError(f"got {len(label)} --label values for {len(edited)} edited clips: give one per clip or none")
    if not 32 <= crop_size <= 1024:
        raise SserdError(f"--crop-size {crop_size} is impossible: use 32..1024")
    source = resolve_truth(clip)
    evaluator = SyntheticEvaluator(Oracle.load(oracle), crop_size=crop_size)
    truth = evaluator.truth(source)
    video = source.with_name(truth.meta["video"]) if source.name.endswith(".truth.json") else source
    cases = [EditCase(source, emotion, path, (label[i] if label else path.name), intensity)
             for i, path in enumerate(edited)]
    if baselines:
        from ..data.synth.truth import render_true_answer

        cases.append(EditCase(source, emotion, read_video_frames(video), "no edit", intensity))
        frames = [r.image for r in render_true_answer(truth, emotion, intensity)]
        import numpy as np

        cases.append(EditCase(source, emotion, np.stack(frames), "true answer", intensity))
    with err_console.status("scoring"):
        scores = evaluator.evaluate_many(cases)
    if as_json:
        print(json.dumps({"clip": str(source), "emotion": emotion, "oracle": str(evaluator.oracle.path),
                          "results": [s.to_dict() for s in scores]}, indent=1))
        return
    from rich.table import Table

    # one column per method, one row per metric: fits a terminal for the usual handful of methods
    table = Table(title=f"synthetic evaluation: {source.name} -> {scores[0].emotion}", title_justify="left")
    table.add_column("metric")
    for s in scores:
        table.add_column(s.label, justify="right", overflow="fold")
    table.add_row("frames", *[str(s.frames) for s in scores])
    rows = [s.to_dict() for s in scores]
    for key, head, fmt in COLUMNS:
        table.add_row(head, *[_fmt(fmt, d[key]) for d in rows])
    out_console.print(table)
    err_console.print("emotion/expression: read by the oracle vs the target; mouth/lip: vs the source's speech "
                      "(was it kept?); identity, PSNR, SSIM, Fréchet: vs the true answer (aligned face crops).",
                      highlight=False)
