"""`sserd edit`: change the emotion of the face in videos or still images."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SserdError
from .console import err_console, make_progress, warn

EXAMPLES = """

Examples:

  sserd edit clip.mp4 --ref angry.png -o out.mp4

  sserd edit clip.mp4 --emotion happy --strength 0.7 --start 0:05 --end 0:12 -o happy.mp4

  sserd edit takes/*.mov --emotion sad -o edited/          (batch: one output per source)

  sserd edit examples/clips/speaker_a.mp4 --ref examples/refs/angry.png -o out.mp4   (the bundled example)

  sserd edit examples/astronaut_talking.mp4 --emotion happy --model identity -o out.mp4   (no face change)
"""


def edit(
    sources: list[Path] = typer.Argument(..., help="Video files (mp4, mov, mkv, webm, avi) or still images "
                                         "(png, jpg, ...), or folders of them.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Output file; a folder when there are several sources.",
                                show_default=False),
    ref: Path | None = typer.Option(None, "--ref", help="Reference image or video showing the wanted emotion."),
    emotion: str | None = typer.Option(None, "--emotion", help="Wanted emotion instead of --ref: neutral, "
                                          "happy, angry, surprised, fear, sad, disgusted."),
    strength: float = typer.Option(1.0, "--strength", help="Edit strength: 0 keeps the source, 1 is the model's edit."),
    model: str = typer.Option("sserd-synthetic", "--model", help="Model bundle (a folder, or the name of a bundled "
                              "model), or 'identity' (pass-through, to test the pipeline)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Face crops per network batch."),
    start: str | None = typer.Option(None, "--start", help="Edit from this time (seconds, mm:ss or hh:mm:ss)."),
    end: str | None = typer.Option(None, "--end", help="Edit up to this time (seconds, mm:ss or hh:mm:ss)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Video quality (H.264/VP9 CRF, lower is better)."),
    lossless: bool = typer.Option(False, "--lossless", help="Exact RGB H.264 (qp 0): large files, for checking."),
    color_match: bool = typer.Option(False, "--color-match", help="Match the edited face's colours to the frame."),
    face_detector: str = typer.Option("dlib", "--face-detector", help="dlib (built in, offline) or insightface "
                                      "(your SCRFD .onnx models from --face-models; needs onnxruntime)."),
    face_models: Path | None = typer.Option(None, "--face-models", help="Folder with the insightface SCRFD "
                                            "detector model (det_*.onnx or scrfd*.onnx)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary (warnings and errors only)."),
) -> None:
    """Change the emotion of the face in videos or still images while keeping the speech.

    Audio, frame rate, timestamps and rotation of each video are kept; frames without a face pass through unchanged. Outputs are written to a temporary file and renamed when complete.
    """
    from ..media.encode import EncodeSettings
    from ..pipeline.batch import plan_outputs, run_edits
    from ..pipeline.edit import EditOptions
    from ..pipeline.faces import FaceSettings
    from ..pipeline.models import Target, load_model
    from ..pipeline.reference import make_target

    if (ref is None) == (emotion is None):
        raise SserdError("give exactly one of --ref REF (an image or video of the wanted emotion) or --emotion NAME")
    if emotion is not None:
        Target(emotion=emotion)  # unknown names fail before anything is loaded
    t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
    if t0 is not None and t1 is not None and t1 <= t0:
        raise SserdError(f"--end ({end}) must be after --start ({start})")
    if strength < 0:
        raise SserdError(f"--strength must be 0 or more, got {strength}")
    if face_detector not in ("dlib", "insightface"):
        raise SserdError(f"unknown --face-detector '{face_detector}': use dlib or insightface")
    if (face_detector == "insightface") != (face_models is not None):
        raise SserdError("--face-models DIR goes with --face-detector insightface (and is required by it)")
    jobs = plan_outputs(sources, output)
    model_notes: list[str] = []  # said once the reference is read: a mistyped path gets its error line alone
    edit_model = load_model(model, device, strength, warn=model_notes.append)
    faces = FaceSettings(detector=face_detector, model_dir=str(face_models) if face_models else None)
    target = make_target(ref, emotion, edit_model.resolution, edit_model.zoom, faces=faces)
    edit_model.set_target(target)
    for note in model_notes:
        warn(note)
    options = EditOptions(batch_size=batch_size, start=t0, end=t1, color_match=color_match, faces=faces,
                          encode=EncodeSettings(crf=crf, lossless=lossless))
    try:
        with make_progress(quiet) as progress:
            reports, failures = run_edits(jobs, edit_model, options, overwrite=overwrite, progress=progress,
                                          note=warn, error=_report_error)
    except KeyboardInterrupt:
        # Typer turns KeyboardInterrupt into exit code 130 without a word: say what state things are in
        err_console.print("[bold red]interrupted[/]: the unfinished output was removed", highlight=False)
        raise
    if not quiet:
        for report in reports:
            err_console.print(report.summary(), highlight=False, soft_wrap=True)
    if failures:
        raise SserdError(f"{failures} of {len(jobs)} sources failed (see above); the others were written")


def _report_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def parse_time(text: str | None, flag: str) -> float | None:
    """Seconds from '12.5', '1:02.5' or '0:01:02.5'."""
    if text is None:
        return None
    try:
        seconds = 0.0
        for part in text.strip().split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        raise SserdError(f"{flag} '{text}' is not a time: use seconds (12.5) or [hh:]mm:ss (1:02.5)") from None
    if seconds < 0 or len(text.split(":")) > 3:
        raise SserdError(f"{flag} '{text}' is not a time: use seconds (12.5) or [hh:]mm:ss (1:02.5)")
    return seconds


edit.__doc__ = (edit.__doc__ or "") + EXAMPLES
