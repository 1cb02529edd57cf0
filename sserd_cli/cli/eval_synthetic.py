"""`sserd eval synthetic`: score emotion edits of synthetic clips against their exact ground truth."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SserdError
from .console import err_console, line, out_console, say
from .timeline import SMOOTH_MAX, SMOOTH_RADIUS

COLUMNS = (("emotion_accuracy", "emotion accuracy ↑", "{:.3f}"), ("target_probability", "p(target) ↑", "{:.3f}"),
           ("expression_mae", "expression MAE ↓", "{:.3f}"), ("mouth_open_mae", "mouth-open MAE vs source ↓", "{:.3f}"),
           ("lip_round_mae", "lip-round MAE vs source ↓", "{:.3f}"),
           ("mouth_open_vs_truth", "mouth-open MAE vs truth ↓", "{:.3f}"),
           ("lip_round_vs_truth", "lip-round MAE vs truth ↓", "{:.3f}"), ("identity_mae", "identity MAE ↓", "{:.3f}"),
           ("identity_cosine", "identity cosine ↑", "{:.3f}"), ("psnr", "PSNR dB ↑", "{:.2f}"), ("ssim", "SSIM ↑", "{:.3f}"),
           ("frechet", "Fréchet (oracle) ↓", "{:.3f}"), ("flicker", "flicker vs truth (1 = as smooth) ↓", "{:.2f}"),
           ("agreement", "change agreement with truth ↑", "{:.3f}"),
           ("mouth_agreement", "mouth change agreement ↑", "{:.3f}"),
           ("sharpness", "face sharpness vs source ↑", "{:.2f}"))


def _fmt(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str) or (isinstance(value, float) and math.isinf(value)):
        return str(value)
    return fmt.format(value)


def synthetic(
    edited: Optional[List[Path]] = typer.Argument(None, help="Edited clip(s) of the source clip (same frame count "
                                                  "and size). Leave out with --model."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Benchmark mode: a bundle (path or "
                                              "shipped name, optionally LABEL=PATH) to edit the held-out set with; "
                                              "repeat for side-by-side rows. The first one also gives the "
                                              "reconstruction and direction-edit rows."),
    clip: Optional[Path] = typer.Option(None, "--clip", "--truth", help="The source clip written by 'sserd synth "
                                        "videos' (its .mp4, its .truth.json, or the folder holding its truth files)."),
    emotion: Optional[str] = typer.Option(None, "--emotion", "-e", help="The target emotion of the edit."),
    label: Optional[List[str]] = typer.Option(None, "--label", help="Row name per edited clip (default: file name)."),
    intensity: Optional[float] = typer.Option(None, "--intensity", help="Target intensity 0..1 (default: the clip's)."),
    baselines: bool = typer.Option(False, "--baselines", help="Add rows for 'no edit' (the source itself) and "
                                   "'true answer' (the rendered ground truth: the ceiling)."),
    speakers: int = typer.Option(4, "--speakers", help="Benchmark mode: held-out identities, one clip each (2..100)."),
    duration: float = typer.Option(1.0, "--duration", help="Benchmark mode: seconds per held-out clip."),
    set_dir: Optional[Path] = typer.Option(None, "--set", help="Benchmark mode: folder for the held-out clips "
                                           "(kept and reused; default: a temporary folder)."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Benchmark mode: write a PNG of source / "
                                         "reference / each method / true answer for every target emotion."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the results as JSON to this file."),
    device: str = typer.Option("auto", "--device", help="Benchmark mode: auto, cpu, cuda or cuda:N."),
    oracle: Optional[Path] = typer.Option(None, "--oracle", help="Oracle directory (default: the shipped one)."),
    crop_size: int = typer.Option(256, "--crop-size", help="Aligned crop size for PSNR/SSIM and the oracle."),
    smooth: int = typer.Option(SMOOTH_RADIUS, "--smooth", min=0, max=SMOOTH_MAX, help="Benchmark mode: frames "
                               "each side over which the edits' codes are smoothed, as in 'sserd edit' (0: off)."),
    render: Optional[List[str]] = typer.Option(None, "--render", help="Benchmark mode: how each bundle's edit "
                                               "reaches the frame, as in 'sserd edit' (transfer, generate); repeat "
                                               "for a row each (default: both)."),
    seed: int = typer.Option(0, "--seed", min=0, max=899, help="Benchmark mode: which held-out identities and "
                             "clips (tune on one seed, report on another)."),
    real_ref: Optional[List[str]] = typer.Option(None, "--real-ref", help="Benchmark mode: also edit every clip "
                                                 "towards this reference file (a photo, or a video's frame two "
                                                 "thirds in), scored as its emotion: [EMOTION=]PATH, the emotion "
                                                 "else read from the file name (W011_angry.png). Repeatable."),
    real_sheet: Optional[Path] = typer.Option(None, "--real-sheet", help="Benchmark mode: write a PNG of "
                                              "reference / source / edit for each --real-ref."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of a table."),
) -> None:
    """Emotion accuracy, expression error, speech kept (mouth error vs the source), identity, PSNR/SSIM and Fréchet
    distance of edits against the exact true answer of the synthetic world.

    Two modes. Benchmark (--model): held-out synthetic clips edited to all 7 targets with same-identity and
    other-identity references by no edit, reconstruction only, the plain direction edit and each bundle.
    Clip (EDITED... --clip --emotion): score clips you edited yourself.

    Examples: sserd eval synthetic --model sserd-synthetic --sheet sheet.png;
    sserd eval synthetic out.mp4 --clip data/synth_talk/videos/synth0003_neutral_000.mp4 -e happy --baselines
    """
    from ..metrics.oracle import Oracle

    if not 32 <= crop_size <= 1024:
        raise SserdError(f"--crop-size {crop_size} is impossible: use 32..1024")
    from ..media.atomic import check_output

    if (real_ref or real_sheet) and not model:
        raise SserdError("--real-ref and --real-sheet belong to the benchmark mode: add --model BUNDLE")
    if real_sheet is not None and not real_ref:
        raise SserdError("--real-sheet shows the --real-ref edits: give at least one --real-ref")
    references = _real_references(real_ref or [])
    for report in (json_out, sheet, real_sheet):  # reports are replaced when they exist; a bad folder fails before any work
        if report is not None:
            check_output(report, overwrite=True)
    if model:
        if edited:
            raise SserdError("give either edited clips (with --clip and --emotion) or --model bundles, not both")
        results = _benchmark(model, Oracle.load(oracle), crop_size, speakers, duration, set_dir, sheet, device,
                             smooth, _render_modes(render), references, real_sheet, seed)
    else:
        if not edited:
            raise SserdError("nothing to score: give edited clips with --clip and --emotion, or --model BUNDLE "
                             "for the held-out benchmark")
        if clip is None or emotion is None:
            raise SserdError("scoring edited clips needs --clip (the source) and --emotion (the target)")
        results = _score_clips(edited, clip, emotion, label, intensity, baselines, Oracle.load(oracle), crop_size)
    if json_out is not None:
        _write_json(json_out, results["json"])
    if as_json:
        print(json.dumps(results["json"], indent=1))
        return
    for table in results["tables"]:
        out_console.print(table)
    say(results["legend"])


LEGEND = ("emotion/expression: read by the oracle vs the target; mouth/lip: vs the source's speech (was it kept?) "
          "and vs the true answer's (the same speech with the target emotion's mouth); "
          "identity, PSNR, SSIM, Fréchet: vs the true answer (aligned face crops); flicker: the face's frame-to-frame "
          "change over the true answer's.")


def _write_json(path: Path, data: dict) -> None:
    from ..media.atomic import atomic_output

    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")


def _score_clips(edited, clip, emotion, label, intensity, baselines, oracle, crop_size) -> dict:
    from ..data.synth.truth import read_video_frames, render_true_answer
    from ..metrics.synthetic import EditCase, SyntheticEvaluator, resolve_truth

    if intensity is not None and not 0 <= intensity <= 1:
        raise SserdError(f"--intensity {intensity} is outside 0..1")
    if label and len(label) != len(edited):
        raise SserdError(f"got {len(label)} --label values for {len(edited)} edited clips: give one per clip or none")
    source = resolve_truth(clip)
    evaluator = SyntheticEvaluator(oracle, crop_size=crop_size)
    truth = evaluator.truth(source)
    video = source.with_name(truth.meta["video"]) if source.name.endswith(".truth.json") else source
    cases = [EditCase(source, emotion, path, (label[i] if label else path.name), intensity)
             for i, path in enumerate(edited)]
    if baselines:
        import numpy as np

        cases.append(EditCase(source, emotion, read_video_frames(video), "no edit", intensity))
        frames = [r.image for r in render_true_answer(truth, emotion, intensity)]
        cases.append(EditCase(source, emotion, np.stack(frames), "true answer", intensity))
    with err_console.status("scoring"):
        scores = evaluator.evaluate_many(cases)
    rows = [s.to_dict() for s in scores]
    title = f"synthetic evaluation: {source.name} -> {scores[0].emotion}"
    return {"json": {"clip": str(source), "emotion": emotion, "oracle": str(evaluator.oracle.path), "results": rows},
            "tables": [_metric_table(title, [s.label for s in scores], [str(s.frames) for s in scores], rows)],
            "legend": LEGEND}


def _metric_table(title: str, labels: list[str], counts: list[str], rows: list[dict], counted: str = "frames"):
    """One column per method, one row per metric: fits a terminal for the usual handful of methods."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")  # titles and labels hold file names: no markup
    table.add_column("metric")
    for name in labels:
        table.add_column(Text(str(name)), justify="right", overflow="fold")
    table.add_row(counted, *counts)
    for key, head, fmt in COLUMNS:
        table.add_row(head, *[_fmt(fmt, d.get(key)) for d in rows])
    return table


def _emotion_table(rows: dict):
    """Per target emotion (cross-identity references): each row's change agreement with the truth and its
    mouth-opening error against the true answer's mouth."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("per emotion (another identity): change agreement with truth ↑ / mouth-open MAE vs "
                             "truth ↓"), title_justify="left")
    table.add_column("target")
    for name in rows:
        table.add_column(Text(str(name)), justify="right", overflow="fold")
    emotions = list(next(iter(rows.values()))["by_emotion"])
    for emotion in emotions:
        cells = []
        for row in rows.values():
            v = row["by_emotion"].get(emotion, {})
            cells.append(f"{_fmt('{:.2f}', v.get('agreement'))} / {_fmt('{:.3f}', v.get('mouth_open_vs_truth'))}")
        table.add_row(emotion, *cells)
    return table


def _real_table(rows: dict):
    """Per emotion of the --real-ref files: how often each row's edit is read as the reference's emotion."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("real references, per emotion: read as the reference's emotion ↑ / mouth-open MAE "
                             "vs source ↓"), title_justify="left")
    table.add_column("reference")
    for name in rows:
        table.add_column(Text(str(name)), justify="right", overflow="fold")
    for emotion in next(iter(rows.values()))["by_emotion"]:
        cells = [f"{_fmt('{:.2f}', row['by_emotion'].get(emotion, {}).get('emotion_accuracy'))} / "
                 f"{_fmt('{:.3f}', row['by_emotion'].get(emotion, {}).get('mouth_open_mae'))}" for row in rows.values()]
        table.add_row(emotion, *cells)
    return table


def _parse_models(specs: List[str]) -> list[tuple[str | None, str]]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        out.append((name, path) if sep and name and path else (None, spec))
    return out


EMOTION_WORDS = {"anger": "angry", "happiness": "happy", "happy": "happy", "surprise": "surprised",
                 "fearful": "fear", "sadness": "sad", "disgust": "disgusted", "calm": "neutral"}


def _real_references(specs: List[str]) -> tuple[tuple[str, str], ...]:
    """(emotion, path) of each --real-ref: EMOTION=PATH, or the one emotion word of the file name."""
    import re

    from ..emotions import EMOTIONS, emotion_index

    out = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if sep and name.strip().lower() in EMOTIONS:
            emotion, path = name.strip().lower(), Path(rest)
        else:
            path = Path(spec)
            words = {EMOTION_WORDS.get(w, w) for w in re.split(r"[^a-z]+", path.stem.lower())}
            found = [e for e in EMOTIONS if e in words]
            if len(found) != 1:
                raise SserdError(f"--real-ref {spec}: cannot tell its emotion from the file name "
                                 f"({'none' if not found else ' and '.join(found)} found); give it as EMOTION=PATH")
            emotion = found[0]
        emotion_index(emotion)
        if not path.is_file():
            raise SserdError(f"--real-ref {path}: no such file")
        out.append((emotion, str(path)))
    names = [Path(p).name for _, p in out]
    if len(set(names)) != len(names):
        raise SserdError("two --real-ref files share a name: the tables and the sheet name references by file name")
    return tuple(out)


def _render_modes(render) -> tuple[str, ...]:
    from ..pipeline.faces import RENDER_MODES

    modes = tuple(dict.fromkeys(m.strip().lower() for m in (render or RENDER_MODES)))
    for mode in modes:
        if mode not in RENDER_MODES:
            raise SserdError(f"unknown --render '{mode}': use {' or '.join(RENDER_MODES)}")
    return modes


def _benchmark(specs, oracle, crop_size, speakers, duration, set_dir, sheet, device, smooth=SMOOTH_RADIUS,
               renders=("transfer", "generate"), real_refs=(), real_sheet=None, seed=0) -> dict:
    import tempfile

    from ..bundles import load_bundle
    from ..metrics.benchmark import (DIRECTION, NO_EDIT, REAL, RECONSTRUCTION, TRUE_ANSWER, BenchmarkConfig, Method,
                                     contact_sheet, run_benchmark)
    from ..metrics.synthetic import SyntheticEvaluator
    from ..pipeline.models import DirectionModel, ReconstructionModel, SserdModel
    from ..pipeline.temporal import SmoothSettings
    from ..runtime import select_device

    if not 2 <= speakers <= 100:
        raise SserdError(f"--speakers {speakers}: use 2..100 (a cross-identity reference needs another speaker)")
    if not 0.2 <= duration <= 60:
        raise SserdError(f"--duration {duration}: use 0.2..60 seconds")
    if sheet is not None and sheet.suffix.lower() != ".png":
        raise SserdError(f"--sheet {sheet}: give a .png path")
    dev = select_device(device)
    bundles = [(name, load_bundle(path)) for name, path in _parse_models(specs)]
    first = bundles[0][1]
    first.require("encoder")
    methods = [Method(TRUE_ANSWER, None, by_emotion=True), Method(NO_EDIT, None, reference_free=True),
               Method(RECONSTRUCTION, ReconstructionModel(first, dev), reference_free=True)]
    if first.has("directions"):
        methods.append(Method(DIRECTION, DirectionModel(first, dev), by_emotion=True))
    for name, bundle in bundles:
        bundle.require("celcl")
        label = name or str(bundle.card.get("name") or bundle.path.name)
        model_ = SserdModel(bundle, dev)
        for mode in renders:  # the generate row keeps the bundle's name, as in earlier results
            methods.append(Method(label if mode == "generate" else f"{label} (transfer)", model_, render=mode))
    labels = [m.label for m in methods if m.label != TRUE_ANSWER]  # the sheet shows the truth in its own column
    if len(set(labels)) != len(labels) or TRUE_ANSWER in [m.label for m in methods[1:]]:
        raise SserdError(f"two rows share a name ({', '.join(labels)}): name them with --model LABEL=PATH")
    config = BenchmarkConfig(speakers=speakers, duration=duration, crop_size=crop_size, real_refs=real_refs,
                             seed=seed)
    evaluator = SyntheticEvaluator(oracle, crop_size=crop_size)
    with tempfile.TemporaryDirectory(prefix="sserd-bench-") as tmp, err_console.status("benchmark") as status:
        folder = set_dir if set_dir is not None else Path(tmp)
        result = run_benchmark(methods, evaluator, folder, config, smooth=SmoothSettings(radius=smooth),
                               progress=lambda m: status.update(line(f"benchmark: {m}")))
    from ..media.atomic import atomic_output
    from ..media.image import write_image

    if sheet is not None:
        with atomic_output(sheet) as tmp_png:
            write_image(tmp_png, contact_sheet(result, labels), suffix=".png")
    if real_sheet is not None:
        readers = [m.label for m in methods if isinstance(m.model, SserdModel)]
        with atomic_output(real_sheet) as tmp_png:
            write_image(tmp_png, contact_sheet(result, readers, REAL), suffix=".png")
    summary = result.summary()
    tables = []
    for kind, rows in summary.items():
        who = {"intra": "reference of same identity", "cross": "reference of another identity",
               REAL: "the --real-ref files"}[kind]
        count = len(real_refs) if kind == REAL else len(config.emotions)
        tables.append(_metric_table(f"benchmark: {config.speakers} held-out clips x {count} targets, "
                                    f"{who} ({kind})", list(rows),
                                    [str(r["cases"]) for r in rows.values()], list(rows.values()), "cases"))
    tables.append(_emotion_table(summary["cross"]))
    if REAL in summary:
        tables.append(_real_table(summary[REAL]))
    data = {"config": dataclasses.asdict(config), "smooth": smooth, "renders": list(renders),
            "oracle": str(evaluator.oracle.path),
            "models": {m.label: str(m.model.bundle.path) for m in methods if isinstance(m.model, SserdModel)},
            "summary": _clean(summary),
            "cases": {kind: [s.to_dict() for s in scores] for kind, scores in result.scores.items()}}
    return {"json": data, "tables": tables, "legend": LEGEND + " The direction edit is given the emotion name, "
            "not the reference; no edit and reconstruction ignore the target."}


def _clean(value):
    """JSON-safe: NaN -> None, inf -> "inf"."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
