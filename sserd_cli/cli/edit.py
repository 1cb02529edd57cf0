"""`sserd edit`: change the emotion of the face in videos or still images."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SserdError
from .console import error, make_progress, say, warn
from .timeline import (DEFAULT_RAMP, MAX_STRENGTH, SMOOTH_MAX, SMOOTH_RADIUS, TargetSpec, build_timeline, check_ramp,
                       check_strength)

EXAMPLES = """

Examples:

  sserd edit clip.mp4 --ref angry.png -o out.mp4

  sserd edit clip.mp4 --emotion happy --strength 0.7 --start 0:05 --end 0:12 -o happy.mp4   (the whole clip back, 0:05-0:12 edited)

  sserd edit clip.mp4 --span 0:02-0:05=happy --span 0:07-0:09=sad@0.5 -o timeline.mp4   (several spans, one pass)

  sserd edit clip.mp4 --span 0:02-0:05=refs/angry.png --span 0:07-=happy -o refs.mp4   (a reference per span; 0:07 to the end)

  sserd edit clip.mp4 --emotion angry --start 0:05 --end 0:12 --trim -o cut.mp4   (only 0:05-0:12 written)

  sserd edit takes/*.mov --emotion sad -o edited/          (batch: one output per source)

  sserd edit examples/clips/speaker_a.mp4 --ref examples/refs/angry.png -o out.mp4   (the bundled example)

  sserd edit examples/astronaut_talking.mp4 --emotion angry -o out.mp4   (a real face: the edit moves its own pixels)

  sserd edit examples/clips/speaker_a.mp4 --emotion angry --render generate -o pasted.mp4   (the model's render pasted)

  sserd edit examples/astronaut_talking.mp4 --emotion happy --model identity -o out.mp4   (no face change)
"""


def edit(
    sources: list[Path] = typer.Argument(..., help="Video files (mp4, mov, mkv, webm, avi) or still images "
                                         "(png, jpg, ...), or folders of them.", show_default=False),
    output: str = typer.Option(..., "-o", "--output", help="Output file; a folder when there are several sources "
                               "(or when the name ends with /).", show_default=False),
    ref: Path | None = typer.Option(None, "--ref", help="Reference image or video showing the wanted emotion."),
    emotion: str | None = typer.Option(None, "--emotion", help="Wanted emotion instead of --ref: neutral, "
                                          "happy, angry, surprised, fear, sad, disgusted."),
    reference_path: str = typer.Option("auto", "--reference-path", help="How --ref becomes the emotion code: "
                                       "latent (the paper's: the model's encoder reads the reference), reading "
                                       "(a real-face emotion classifier reads it; its mouth never reaches the "
                                       "edit), auto (latent for faces the model knows, reading for others)."),
    strength: float = typer.Option(1.0, "--strength", help=f"Edit strength, 0 to {MAX_STRENGTH:g}: 0 keeps the "
                                   "source, 1 is the model's edit, above 1 exaggerates it."),
    model: str = typer.Option("sserd-synthetic", "--model", help="Model bundle (a folder, or the name of a bundled "
                              "model), or 'identity' (pass-through, to test the pipeline)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", "--precision", help="auto (float16 on CUDA, float32 on a CPU), "
                                  "float32 (everywhere), or bfloat16 (the generator in bfloat16: on a CPU that "
                                  "runs it natively about 1.2x faster end to end, 50 dB from float32, a little "
                                  "more flicker)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Face crops per network batch."),
    start: str | None = typer.Option(None, "--start", help="Edit from this time (seconds, mm:ss or hh:mm:ss); the "
                                     "rest of the video is kept unchanged."),
    end: str | None = typer.Option(None, "--end", help="Edit up to this time (seconds, mm:ss or hh:mm:ss)."),
    span: list[str] | None = typer.Option(None, "--span", help="START-END[=TARGET][@STRENGTH], repeatable: edit "
                                          "this span towards TARGET (an emotion or a reference file; default "
                                          "--emotion/--ref) at STRENGTH (default --strength). START or END may be "
                                          "left out: the beginning, the end.", show_default=False),
    ramp: float = typer.Option(DEFAULT_RAMP, "--ramp", help="Seconds over which the edit fades in before each "
                               "span and out after it (0: switch at the span's edges)."),
    trim: bool = typer.Option(False, "--trim", help="Write only from the first span's start to the last "
                              "span's end, instead of the whole video."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Video quality (H.264/VP9 CRF, lower is better)."),
    lossless: bool = typer.Option(False, "--lossless", help="Exact RGB H.264 (qp 0): large files, for checking."),
    render: str = typer.Option("transfer", "--render", help="transfer: the model's edit moves the source's own "
                               "face (sharp, the same person, any face); generate: the model's face is pasted "
                               "over it (only for faces the model knows)."),
    color_match: bool = typer.Option(False, "--color-match", help="With --render generate: match the generated "
                                     "face's colours to the frame."),
    smooth: int = typer.Option(SMOOTH_RADIUS, "--smooth", min=0, max=SMOOTH_MAX, help="Frames each side over which "
                               "the emotion code, the face code (each row as far as it does not move the mouth) "
                               "and the colour match are averaged, against shimmer (0: every frame on its own)."),
    face_detector: str = typer.Option("dlib", "--face-detector", help="dlib (built in, offline) or insightface "
                                      "(your SCRFD .onnx models from --face-models; needs onnxruntime)."),
    face_models: Path | None = typer.Option(None, "--face-models", help="Folder with the insightface SCRFD "
                                            "detector model (det_*.onnx or scrfd*.onnx)."),
    force: bool = typer.Option(False, "--force", help="Edit even where the check before editing refuses: with "
                               "transfer, a motion field that would tear the face; with generate, a face the model "
                               "cannot reconstruct."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary (warnings and errors only)."),
) -> None:
    """Change the emotion of the face in videos or still images while keeping the speech.

    Audio, subtitles, frame rate, timestamps and rotation of each video are kept; frames without a face, or outside the spans given by --start/--end or --span, pass through unchanged. Outputs are written to a temporary file and renamed when complete.
    """
    import os

    # OpenMP threads that spin after each network call take the core the decode, face and paste threads need:
    # with passive waiting the default edit used 6-15% less CPU time on 2 cores (640x360: 31.2 and 28.1 fps in
    # two runs, 27.7 without). Read when torch loads, so set before any import of it; a user's value is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..media.encode import EncodeSettings
    from ..pipeline.batch import plan_outputs, run_edits
    from ..pipeline.edit import EditOptions
    from ..pipeline.faces import RENDER_MODES, FaceSettings
    from ..pipeline.models import PRECISIONS, REFERENCE_PATHS, Target, load_model
    from ..pipeline.reference import make_target
    from ..pipeline.temporal import SmoothSettings

    if ref is not None and emotion is not None:
        raise SserdError("give exactly one of --ref REF (an image or video of the wanted emotion) or --emotion NAME")
    if emotion is not None:
        Target(emotion=emotion)  # unknown names fail before anything is loaded
    default = TargetSpec(emotion=emotion.strip().lower()) if emotion is not None else (
        TargetSpec(ref=ref) if ref is not None else None)
    timeline, specs = build_timeline(span or [], start, end, default, check_strength(strength), check_ramp(ramp))
    if trim and not (span or start is not None or end is not None):
        raise SserdError("--trim needs --start/--end or --span: it writes only the edited stretch")
    if reference_path not in REFERENCE_PATHS:
        raise SserdError(f"unknown --reference-path '{reference_path}': use {', '.join(REFERENCE_PATHS)}")
    if precision not in PRECISIONS:  # before anything loads
        raise SserdError(f"unknown --precision '{precision}': use {', '.join(PRECISIONS)}")
    if render not in RENDER_MODES:
        raise SserdError(f"unknown --render '{render}': use {' or '.join(RENDER_MODES)}")
    if color_match and render == "transfer":
        raise SserdError("--color-match matches a generated face's colours to the frame; with --render transfer "
                         "the face keeps its own colours: drop --color-match, or add --render generate")
    if face_detector not in ("dlib", "insightface"):
        raise SserdError(f"unknown --face-detector '{face_detector}': use dlib or insightface")
    if (face_detector == "insightface") != (face_models is not None):
        raise SserdError("--face-models DIR goes with --face-detector insightface (and is required by it)")
    jobs = plan_outputs(sources, output)
    for spec in specs:
        if spec.ref is not None and not spec.ref.exists():  # a mistyped path is said before the model loads
            raise SserdError(f"{spec.ref}: no such file")
    model_notes: list[str] = []  # said once the reference is read: a mistyped path gets its error line alone
    # the strength travels with each span (see the timeline), so the model itself edits at 1
    edit_model = load_model(model, device, 1.0, warn=model_notes.append, reference_path=reference_path,
                            precision=precision)
    faces = FaceSettings(detector=face_detector, model_dir=str(face_models) if face_models else None)
    edit_model.set_targets([make_target(spec.ref, spec.emotion, edit_model.resolution, edit_model.zoom, faces=faces)
                            for spec in specs])
    for note in model_notes:
        warn(note)
    if not quiet:
        for note in getattr(edit_model, "target_notes", []):
            say(note)
    trimmed = timeline.extent() if trim else (None, None)
    options = EditOptions(batch_size=batch_size, timeline=timeline, start=trimmed[0], end=trimmed[1],
                          color_match=color_match, smooth=SmoothSettings(radius=smooth), faces=faces, force=force,
                          render=render,
                          encode=EncodeSettings(crf=crf, lossless=lossless))
    with make_progress(quiet) as progress:
        reports, failures = run_edits(jobs, edit_model, options, overwrite=overwrite, progress=progress,
                                      note=warn, error=error)
    if not quiet:
        for report in reports:
            say(report.summary())
    if failures == len(jobs):
        raise SserdError(f"all {failures} sources failed (see above); nothing was written")
    if failures:
        raise SserdError(f"{failures} of {len(jobs)} sources failed (see above); the others were written")


edit.__doc__ = (edit.__doc__ or "") + EXAMPLES
