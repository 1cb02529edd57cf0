"""The options the training commands share, defined once.

Every training stage (``train-stylegan``, ``train-encoder``, ``train``, ``train-features``,
``train-autoencoder``) reads a dataset, writes a run folder and runs the same way: on a device, from a seed,
resumable, on a schedule of checkpoints, samples and log lines, within an optional time limit. Those run
options are added to each command by :func:`stage_options` (after the command's own, in one order, with one
help text) and reach it as one :class:`RunOptions`; a command's signature holds only what it trains. Typer
reads a command's parameters from its signature, so the added ones are options like any other in ``--help``.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import asdict, dataclass
from typing import Optional

import typer

# arguments and options more than one command takes word for word (Typer option objects are plain metadata,
# copied when a command is built: safe to share)
DATA = typer.Argument(..., help="Dataset folder written by 'sserd prepare' or 'sserd synth' (index.csv + crops).",
                      show_default=False)
OUT = typer.Option(..., "-o", "--out", help="Run directory (created; must not exist unless --resume).", show_default=False)
LOAD_SIZE = typer.Option(None, "--load-size", help="Resize crops to this before the centre crop, a further zoom "
                         "(default: size, no further zoom: prepare/synth datasets already have the paper framing).")

# the run options, in the order --help lists them: (parameter, type, option)
RUN_OPTIONS = (
    ("device", Optional[str], typer.Option(None, help="auto, cpu, cuda or cuda:N (default: auto).")),
    ("seed", Optional[int], typer.Option(None, help="Random seed (default: 0).")),
    ("resume", bool, typer.Option(False, "--resume", help="Continue the run in -o from its last checkpoint.")),
    ("checkpoint_every", Optional[int], typer.Option(None, "--checkpoint-every", help="Steps between checkpoints.")),
    ("sample_every", Optional[int], typer.Option(None, "--sample-every", help="Steps between sample grids.")),
    ("log_every", Optional[int], typer.Option(None, "--log-every", help="Steps between loss log lines (default: 10).")),
    ("workers", Optional[int], typer.Option(None, help="Image decoding threads (default: 2).")),
    ("amp", bool, typer.Option(True, "--amp/--no-amp", help="bfloat16 mixed precision on CUDA (ignored on CPU).")),
    ("time_limit", Optional[float], typer.Option(None, "--time-limit", help="Minutes of training steps in this run "
                                                 "(start-up and export come on top), then checkpoint and export the "
                                                 "bundle; --resume continues towards --iterations (default: no limit).")),
    ("quiet", bool, typer.Option(False, "--quiet", "-q", help="No progress bar.")),
)


@dataclass(frozen=True)
class RunOptions:
    """How a stage runs, as the command line gave it (None: the stage's default)."""

    device: Optional[str] = None
    seed: Optional[int] = None
    resume: bool = False
    checkpoint_every: Optional[int] = None
    sample_every: Optional[int] = None
    log_every: Optional[int] = None
    workers: Optional[int] = None
    amp: Optional[bool] = None  # None: the stage has no mixed precision to switch
    time_limit: Optional[float] = None
    quiet: bool = False

    def config(self) -> dict:
        """The values that go into the stage's config: those set, without --resume and --quiet (they steer the
        command, not the training)."""
        return given(**{k: v for k, v in asdict(self).items() if k not in ("resume", "quiet")})


def given(**options) -> dict:
    """The options the user set (None: the stage's default)."""
    return {k: v for k, v in options.items() if v is not None}


def stage_options(*, amp: bool = True):
    """Add :data:`RUN_OPTIONS` to a training command (``amp=False``: a stage without mixed precision), after its
    own; the command receives them as ``run_options``."""
    added = [(name, kind, option) for name, kind, option in RUN_OPTIONS if amp or name != "amp"]

    def add(command):
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "run_options"]
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for name, kind, option in added]

        @functools.wraps(command)
        def with_run_options(**values):
            run_options = RunOptions(**{name: values.pop(name) for name, _, _ in added})
            return command(**values, run_options=run_options)

        with_run_options.__signature__ = signature.replace(parameters=own + extra)
        with_run_options.__annotations__ = {**{p.name: p.annotation for p in own}, **{n: k for n, k, _ in added}}
        return with_run_options

    return add


__all__ = ["DATA", "OUT", "LOAD_SIZE", "RUN_OPTIONS", "RunOptions", "given", "stage_options"]
