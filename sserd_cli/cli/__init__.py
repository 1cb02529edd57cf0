"""The ``sserd`` command line (Typer + rich). Argument parsing and messages only; no maths.

Each command lives in its own module; this file wires them into one app and
turns :class:`~sserd_cli.errors.SserdError` into one line on stderr and exit
code 2 (never a traceback).
"""

from __future__ import annotations

import sys

import typer

from ..errors import SserdError
from ..interrupts import Terminated, exit_code, signal_name, terminations_as_interrupts
from . import edit, eval_real, eval_synthetic, eval_video, models, prepare, synth, train, train_autoencoder
from .console import error, say


def _flags_without_a_type() -> None:
    """Typer's help prints a value type after every option; after a flag, ``<bool>`` reads as if the flag
    took a value (``--overwrite <bool>``). Flags show no type; every other option keeps its own."""
    import typer.core

    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_without_a_type", False):
        return  # another Typer: nothing to adjust, or already adjusted

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_without_a_type = True
    option.display_type_rich = display_type_rich


_flags_without_a_type()

app = typer.Typer(
    name="sserd",
    help="Change the emotion of a talking face in a video while keeping its speech (SSERD, ACM MM 2024).\n\n"
    "Example: sserd edit clip.mp4 --ref angry.png -o out.mp4",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
eval_app = typer.Typer(help="Evaluate a model: on the synthetic world (exact ground truth), on real data (FAD, LSE-D, CSIM), or one edited clip against its source.",
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
eval_app.command("video")(eval_video.video)
app.command("import-stylegan")(models.import_stylegan)
app.command("info")(models.info)
app.command("doctor")(models.doctor)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (what ``main`` exits with).

    Ctrl-C, SIGTERM and SIGHUP all end a run as an interrupt (see :mod:`sserd_cli.interrupts`): the
    clean-up of partial outputs runs, one line says so, and the code is 128 + the signal number."""
    try:
        with terminations_as_interrupts():
            app(args=argv, prog_name="sserd", standalone_mode=True)
    except SystemExit as exc:  # click exits through SystemExit in standalone mode
        code = exc.code
        if _interrupt_in(exc) is not None:  # Typer turns KeyboardInterrupt into exit code 130 without a word
            return _interrupted(_interrupt_in(exc))
        return code if isinstance(code, int) else (0 if code is None else 1)
    except SserdError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except OSError as exc:
        if exc.filename is None:
            raise  # not about a path the user gave: a bug to see in full
        # a path the user gave that cannot be read or written, met where no check caught it
        error(f"{exc.filename}: {exc.strerror or exc}")
        return 2
    return 0


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or :class:`~sserd_cli.interrupts.Terminated`) behind an exit, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _interrupted(exc: KeyboardInterrupt) -> int:
    what = f"stopped by {signal_name(exc.signum)}" if isinstance(exc, Terminated) else "interrupted"
    try:
        say((what, "bold red"), ": nothing was left half-written (unfinished outputs were removed)")
    except OSError:
        pass  # SIGHUP: the terminal may be gone; the exit code still tells
    return exit_code(exc)


def main() -> None:
    sys.exit(run(sys.argv[1:]))
