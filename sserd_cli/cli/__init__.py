"""The ``sserd`` command line (Typer + rich). Argument parsing and messages only; no maths.

Each command lives in its own module; this file wires them into one app and
turns :class:`~sserd_cli.errors.SserdError` into one line on stderr and exit
code 2 (never a traceback).
"""

from __future__ import annotations

import sys

import typer

from ..errors import SserdError
from . import edit, eval_real, eval_synthetic, models, prepare, synth, train, train_autoencoder
from .console import err_console

app = typer.Typer(
    name="sserd",
    help="Change the emotion of a talking face in a video while keeping its speech (SSERD, ACM MM 2024).\n\n"
    "Example: sserd edit clip.mp4 --ref angry.png -o out.mp4",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
eval_app = typer.Typer(help="Evaluate a model: on the synthetic world (exact ground truth) or on real data (FAD, LSE-D, CSIM).",
                       no_args_is_help=True)

app.command("edit")(edit.edit)
app.command("prepare")(prepare.prepare)
app.add_typer(synth.synth_app, name="synth")
app.command("train-stylegan")(train.train_stylegan)
app.command("train-encoder")(train.train_encoder)
app.command("train-features")(train_autoencoder.train_features)
app.command("train-autoencoder")(train_autoencoder.train_autoencoder)
app.command("build-pairs")(train.build_pairs)
app.command("train")(train.train)
app.add_typer(eval_app, name="eval")
eval_app.command("synthetic")(eval_synthetic.synthetic)
eval_app.command("real")(eval_real.real)
app.command("import-stylegan")(models.import_stylegan)
app.command("info")(models.info)
app.command("doctor")(models.doctor)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (what ``main`` exits with)."""
    try:
        app(args=argv, prog_name="sserd", standalone_mode=True)
    except SystemExit as exc:  # click exits through SystemExit in standalone mode
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except SserdError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]: nothing was left half-written", highlight=False)
        return 130
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
