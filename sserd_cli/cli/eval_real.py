"""`sserd eval real`: the paper's protocol on a prepared MEAD/RAVDESS dataset (FAD, LSE-D, CSIM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SserdError
from .console import make_progress, out_console, say, warn
from .timeline import check_strength

METRIC_COLUMNS = ("FAD", "LSE-D", "LSE-C", "CSIM", "ID-dlib")


def real(
    model: str = typer.Option(..., "--model", "-m", help="Model bundle (path or bundled name), or 'identity' (no edit: a baseline)."),
    data: Path = typer.Option(..., "--data", "-d", help="Dataset made by 'sserd prepare' (its test split is evaluated)."),
    arcface: Optional[Path] = typer.Option(None, "--arcface", help="ArcFace ONNX model for FAD (e.g. insightface w600k_r50.onnx)."),
    syncnet: Optional[Path] = typer.Option(None, "--syncnet", help="SyncNet weights syncnet_v2.model (syncnet_python) for LSE-D/LSE-C."),
    expression: Optional[Path] = typer.Option(None, "--expression", help="Expression recognition ONNX model for CSIM."),
    expression_output: Optional[str] = typer.Option(None, "--expression-output", help="Which output of the expression model holds the features (default: its first)."),
    identity_proxy: bool = typer.Option(True, "--id-dlib/--no-id-dlib", help="Also report ID-dlib (dlib face-descriptor cosine, offline; not a paper metric)."),
    settings: str = typer.Option("intra,cross", "--settings", help="intra (reference from the same speaker), cross (another speaker), or both."),
    emotions: Optional[List[str]] = typer.Option(None, "--emotions", help="Target emotions (default: all seven)."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", help="At most this many test clips per speaker (quick runs)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Only the first N frames of each clip."),
    strength: float = typer.Option(1.0, "--strength", help="Edit strength handed to the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed", help="Seed of the reference draw."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout instead of tables."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the JSON results to this file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Edit the test clips towards each emotion and score them as the paper does (Table 1).

    Needs networks you supply (nothing is downloaded): a metric whose file is
    not given is skipped and named; a given file that is missing is an error.

    Example:

      sserd eval real --model runs/mead/bundle --data data/mead --arcface w600k_r50.onnx --syncnet syncnet_v2.model --expression expr.onnx

      sserd eval real --model identity --data data/mead --syncnet syncnet_v2.model --json
    """
    from ..data.prepare.clips import parse_emotions
    from ..metrics.real import METRIC_NEEDS, RealEvalConfig, evaluate_real, model_editor

    chosen_settings = tuple(s.strip() for s in settings.split(",") if s.strip())
    if not chosen_settings or any(s not in ("intra", "cross") for s in chosen_settings):
        raise SserdError(f"--settings must be intra, cross or intra,cross; got '{settings}'")
    if not data.is_dir():
        raise SserdError(f"dataset {data} not found: make one with 'sserd prepare'")
    check_strength(strength)
    if output is not None:
        from ..media.atomic import check_output

        check_output(output, overwrite=True)  # the results file is replaced; a bad folder fails before any work
    nets = _load_nets(arcface, syncnet, expression, expression_output, identity_proxy, device)
    for name in ("FAD", "LSE-D", "CSIM"):
        if {"FAD": nets.arcface, "LSE-D": nets.syncnet, "CSIM": nets.expression}[name] is None:
            warn(f"{name} not computed: it needs {METRIC_NEEDS[name]}")
    if nets.arcface is None and nets.syncnet is None and nets.expression is None and nets.identity is None:
        raise SserdError("no metric to compute: give --arcface, --syncnet and/or --expression (or keep --id-dlib)")

    from ..pipeline.models import load_model

    editor_model = load_model(model, device=device, strength=strength, warn=warn)
    config = RealEvalConfig(settings=chosen_settings, emotions=parse_emotions(emotions), max_clips=max_clips,
                            max_frames=max_frames, seed=seed)
    with make_progress(quiet, unit="clips") as progress:
        task = progress.add_task("eval real", total=None, rate="")
        results = evaluate_real(data, model_editor(editor_model), nets, config,
                                on_step=lambda what: progress.update(task, advance=1, rate=what),
                                steps=lambda n: progress.update(task, total=n))
    results["model"] = model
    text = json.dumps(results, indent=2, default=float)
    if output is not None:
        from ..media.atomic import atomic_output

        with atomic_output(output) as tmp:
            tmp.write_text(text + "\n")
    if as_json:
        out_console.print_json(text) if out_console.is_terminal else print(text)
        return
    _print_tables(results)


def _load_nets(arcface, syncnet, expression, expression_output, identity_proxy, device):
    from ..metrics.real import MetricNets

    nets = MetricNets()
    if arcface is not None:
        from ..metrics.arcface import ArcFaceEmbedder

        nets.arcface = ArcFaceEmbedder(arcface)
    if syncnet is not None:
        from ..metrics.syncnet import load_syncnet
        from ..runtime import select_device

        nets.syncnet = load_syncnet(syncnet, select_device(device))
    if expression is not None:
        from ..metrics.expression import ExpressionFeatures

        nets.expression = ExpressionFeatures(expression, output=expression_output)
    if identity_proxy:
        from ..metrics.identity import DlibIdentity

        nets.identity = DlibIdentity()
    return nets


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_tables(results: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    for setting, block in results["settings"].items():
        # the dataset and model are paths or names the user gave: shown as they are, not read as markup
        table = Table(title=Text(f"{results['dataset']} - {setting}-identity ({results['model']})"))
        table.add_column("emotion")
        for column in METRIC_COLUMNS:
            table.add_column(column, justify="right")
        table.add_column("clips", justify="right")
        for emotion, row in block["per_emotion"].items():
            table.add_row(emotion, *(_fmt(row.get(c)) for c in METRIC_COLUMNS), str(row["clips"]))
        overall = block["overall"]
        table.add_row("[bold]average[/]", *(_fmt(overall.get(c)) for c in METRIC_COLUMNS), str(overall["clips"]),
                      end_section=True)
        for method, values in results.get("paper", {}).items():
            paper = values.get(setting, {})
            table.add_row(f"[dim]{method}[/]", *(f"[dim]{_fmt(paper.get(c))}[/]" if c in paper else "" for c in METRIC_COLUMNS), "")
        out_console.print(table)
    for name, needs in results.get("missing", {}).items():
        say(f"{name}: not computed (needs {needs})")
    if results.get("skipped"):
        warn(f"{len(results['skipped'])} (clip, emotion) pairs had no reference clip and were skipped")
