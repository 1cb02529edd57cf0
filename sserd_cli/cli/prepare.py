"""`sserd prepare`: MEAD / RAVDESS / a labelled folder -> aligned face crops + the dataset index."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SserdError
from .console import make_progress, say, warn


class Layout(str, Enum):
    mead = "mead"
    ravdess = "ravdess"
    folder = "folder"


def prepare(
    layout: Layout = typer.Argument(..., help="Dataset layout: mead, ravdess, or folder (a labels.csv of path,speaker,emotion)."),
    root: Path = typer.Argument(..., help="Dataset root (MEAD: holds M003/...; RAVDESS: holds Actor_01/...; folder: labels.csv or its folder)."),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset directory to write (crops/, audio/, index.csv, dataset.json)."),
    speakers: Optional[List[str]] = typer.Option(None, "--speakers", help="Speakers to take (MEAD ids like M003; RAVDESS actor numbers 1-24); default: the paper's six."),
    emotions: Optional[List[str]] = typer.Option(None, "--emotions", help="Emotions to take (comma list or repeated); default: all seven."),
    levels: Optional[List[int]] = typer.Option(None, "--levels", help="Intensity levels (MEAD 1-3, RAVDESS 1-2); default: all."),
    drop_calm: bool = typer.Option(False, "--drop-calm", help="RAVDESS: drop 'calm' clips instead of folding them into neutral."),
    every_n_frames: int = typer.Option(1, "--every-n-frames", min=1, help="Keep every n-th frame (frame numbers stay those of the video)."),
    size: int = typer.Option(256, "--size", help="Crop side in pixels (the paper: 256)."),
    resize: int = typer.Option(320, "--resize", help="Aligned image side before the centre crop (the paper: 320; equal to --size for FFHQ framing)."),
    test_fraction: float = typer.Option(0.1, "--test-fraction", help="Share of clips per speaker and emotion in the test split (the paper: 0.1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/test draw."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes (one clip each at a time)."),
    detect_width: int = typer.Option(640, "--detect-width", help="Frames are shrunk to this width for face detection."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Align every frame of a dataset's videos to face crops and write the shared index.

    Resumable: clips already finished in OUTPUT are skipped; broken videos are
    skipped and listed at the end.

    Examples:

      sserd prepare mead /data/MEAD -o data/mead --workers 8

      sserd prepare ravdess /data/RAVDESS -o data/ravdess --speakers 1,2,3,4,5,6

      sserd prepare folder my_clips/labels.csv -o data/mine --every-n-frames 2
    """
    from ..data.prepare.clips import parse_emotions, split_list
    from ..data.prepare.crops import CropConfig
    from ..data.prepare.runner import run_prepare

    root, output = Path(root), Path(output)
    if not root.exists():
        raise SserdError(f"{root} does not exist: give the dataset's root folder")
    if output.resolve() == root.resolve():
        raise SserdError(f"output {output} is the dataset root itself: write the prepared data to another folder")
    if not 0.0 <= test_fraction < 1.0:
        raise SserdError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    from ..media.atomic import check_output_folder

    check_output_folder(output)
    chosen = parse_emotions(emotions)
    config = CropConfig(size=size, resize=resize, every_n_frames=every_n_frames, detect_width=detect_width)
    _check_resume(output, layout.value, config)
    names = split_list(speakers)
    if layout == Layout.mead:
        from ..data.prepare.mead import walk_mead

        clips = walk_mead(root, speakers=names or None, emotions=chosen, levels=levels)
    elif layout == Layout.ravdess:
        from ..data.prepare.ravdess import walk_ravdess

        try:
            actors = [int(name.removeprefix("Actor_")) for name in names]
        except ValueError:
            raise SserdError(f"RAVDESS speakers are actor numbers (1-24), got {names}") from None
        clips = walk_ravdess(root, actors=actors or None, emotions=chosen, levels=levels,
                             calm="drop" if drop_calm else "neutral")
    else:
        from ..data.prepare.folder import walk_folder

        clips = walk_folder(root, speakers=names or None, emotions=chosen if emotions else None)

    say(f"{len(clips)} clips from {len({c.speaker for c in clips})} speakers -> {output}")
    with make_progress(quiet, unit="clips") as progress:
        task = progress.add_task("prepare", total=len(clips), rate="")
        crops = 0

        def on_clip(report) -> None:
            nonlocal crops
            crops += report.crops
            progress.update(task, advance=1, rate=f"{crops} crops")
            if report.status == "broken":
                warn(f"skipping broken video {report.clip}: {report.message}")

        summary = run_prepare(clips, output, config, workers=workers, test_fraction=test_fraction, seed=seed,
                              source=f"{layout.value}:{root}",
                              meta_extra={"layout": layout.value, "seed": seed, "test_fraction": test_fraction},
                              on_clip=on_clip)
    say(
        f"wrote {summary.rows} crops ({summary.splits.get('train', 0)} train / {summary.splits.get('test', 0)} test) "
        f"from {summary.done} new + {summary.skipped} resumed clips to {output / 'index.csv'}")
    for clip in summary.no_face:
        warn(f"no face found in any frame of {clip}")
    if summary.broken:
        warn(f"{len(summary.broken)} broken video(s) skipped:")
        for _, path, why in summary.broken:
            say(f"  {path}: {why}")


def _check_resume(output: Path, layout: str, config) -> None:
    """Resuming into a dataset made with other crop settings would mix two framings: refuse."""
    meta_path = output / "dataset.json"
    if not meta_path.is_file():
        return
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return
    if meta.get("kind") != "real" or meta.get("layout", layout) != layout:
        raise SserdError(f"{output} already holds another dataset ({meta.get('kind')}/{meta.get('layout')}): choose a new -o")
    if meta.get("framing") and meta["framing"] != config.framing():
        raise SserdError(f"{output} was prepared with framing {meta['framing']}: use the same --size/--resize or a new -o")
    if meta.get("crop", {}).get("every_n_frames", config.every_n_frames) != config.every_n_frames:
        raise SserdError(f"{output} was prepared with --every-n-frames {meta['crop']['every_n_frames']}: use the same or a new -o")
