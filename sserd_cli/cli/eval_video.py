"""`sserd eval video`: speech, identity, emotion and stability of an edit, measured on any pair of real clips."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

from ..errors import SserdError
from .console import make_progress, out_console

EXAMPLES = """

Examples:

  sserd eval video clip.mp4 edited.mp4 -e happy

  sserd eval video clip.mp4 edited.mp4 -e angry --json > report.json

  sserd eval video clip.mp4 edited.mp4 -e sad --plot report.png --emotion-model ~/fer/emotion_model.hdf5
"""


def video(
    source: Path = typer.Argument(..., help="The source clip.", show_default=False),
    edited: Path = typer.Argument(..., help="Its edit (same frames: edited without --trim).", show_default=False),
    emotion: str | None = typer.Option(None, "--emotion", "-e", help="The emotion edited towards: its probability "
                                       "in source and edit is reported (needs the emotion classifier)."),
    emotion_model: Path | None = typer.Option(None, "--emotion-model", help="An emotion classifier of your own: a "
                                              "Keras HDF5 of FER2013's seven classes, or a converted folder "
                                              "(default: the FER2013 mini-Xception shipped in models/emotion-fer)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout instead of a table."),
    plot_path: Path | None = typer.Option(None, "--plot", help="Write a PNG of mouth opening and p(EMOTION) over "
                                          "time, source against edit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Compare an edited clip with its source: is the speech kept, the person the same, the emotion reached, the face stable?

    Faces are found in the source and both clips are read at that box. Models: dlib's 68-point landmarks (iBUG 300-W: non-commercial use) and face-recognition ResNet (CC0) from face-recognition-models; the FER2013 mini-Xception of the `fer` package (MIT), shipped converted with sserd.
    """
    from ..emotions import emotion_index
    from ..faces.fer import EmotionClassifier
    from ..metrics.video import check_pair, compare_videos, plot

    for path in (source, edited):
        if not path.is_file():
            raise SserdError(f"{path}: no such file")
    if emotion is not None:
        emotion_index(emotion)  # an unknown name fails before any work
        emotion = emotion.strip().lower()
    if plot_path is not None and plot_path.suffix.lower() != ".png":
        raise SserdError(f"{plot_path}: --plot writes a PNG: give a name ending in .png")
    # the classifier is needed when an emotion is asked for, or a file named; else it is used when installed
    wanted = emotion is not None or emotion_model is not None
    try:
        classifier = EmotionClassifier(emotion_model)
    except SserdError:
        if wanted:
            raise
        classifier = None
    total = check_pair(source, edited)[0].frames or None  # the usual mistake said before the progress bar
    with make_progress(quiet or as_json) as progress:
        task = progress.add_task(source.name, total=total, rate="")
        try:
            report, series = compare_videos(source, edited, emotion, classifier,
                                            progress=lambda n: progress.update(task, advance=n))
        except BaseException:
            progress.remove_task(task)  # a failed run's bar would stand above its error line
            raise
    if plot_path is not None:
        plot(series, emotion, plot_path)
        report["plot"] = str(plot_path)
    if as_json:
        text = json.dumps(report, indent=2)
        out_console.print_json(text) if out_console.is_terminal else print(text)
    else:
        out_console.print(table(report))


def table(report: dict):
    from rich.table import Table

    from ..faces.fer import MISSING
    from ..metrics.video import FLICKER_RATIO, SPEECH_CORRELATION

    def verdict(ok: bool) -> Text:
        return Text("kept" if ok else "LOST", style="green" if ok else "bold red")

    t = Table(title=Text(f"{report['edited']} against {report['source']}"))
    for column in ("measure", "value", "reading"):
        t.add_column(column)
    s = report["speech"]
    reading = (f"correlation >= {SPEECH_CORRELATION} keeps the speech" if s["source_speaks"]
               else "the source's mouth hardly moves: judged by the MAE")
    t.add_row("speech: mouth-opening correlation", f"{s['mouth_correlation']:.3f}", reading)
    t.add_row("speech: mouth-opening MAE", f"{s['mouth_mae']:.3f}", verdict(s["kept"]))
    i = report["identity"]
    t.add_row("identity: embedding distance", f"{i['distance_mean']:.3f} (max {i['distance_max']:.3f})",
              Text.assemble(f"same person below {i['same_person_below']}: ", verdict(i["kept"])))
    e = report["emotion_probability"]
    if e is None:
        t.add_row("emotion", "not measured", MISSING)
    else:
        t.add_row(f"emotion: p({e['class']})", f"{e['source']:.3f} -> {e['edited']:.3f}",
                  f"change {e['change']:+.3f} (FER2013 classifier: it reads brows and blur as much as emotion)")
    f = report["flicker"]
    if f is not None:
        t.add_row("flicker: edit / source", f"{f['ratio']:.2f} ({f['edited']:.2f} / {f['source']:.2f})",
                  Text(f"stable (<= {FLICKER_RATIO})" if f["stable"] else f"FLICKERS (> {FLICKER_RATIO})",
                       style="green" if f["stable"] else "bold red"))
    sharp = report.get("sharpness")
    if sharp is not None:
        t.add_row("face sharpness: edit / source", f"{sharp['ratio']:.2f}",
                  "variance of the Laplacian on the face box (1: as sharp)")
    for code, action in (report.get("expression") or {}).items():
        t.add_row(f"expression: {code} {action['name']}", f"{action['change']:+.3f}",
                  "eye distances, edit - source (median of frame pairs)")
    st = report["streams"]
    t.add_row("frames, pts", "equal" if st["frames_equal"] and st["pts_equal"] else "DIFFER",
              f"{report['frames']['compared']} frames, {report['frames']['with_face']} with a face")
    t.add_row("audio packets", "equal" if st["audio_equal"] else "DIFFER", f"{st['audio_packets'][0]} / {st['audio_packets'][1]}")
    return t


video.__doc__ = (video.__doc__ or "") + EXAMPLES
