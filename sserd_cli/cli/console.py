"""Where messages go: everything human-readable to stderr, so stdout stays for data (JSON) and pipes.

Messages carry user paths and names, and a name such as ``Talk [abc123].mp4`` is console markup to rich:
printed as a markup string it would lose its brackets or crash the print. So user text is always handed
to rich as :class:`~rich.text.Text` (never parsed); only our own fixed labels are styled.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

err_console = Console(stderr=True)
out_console = Console()


def make_progress(quiet: bool = False, unit: str = "frames") -> Progress:
    """A rich progress bar with count, rate and ETA columns; silent when ``quiet``."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),  # descriptions are file names
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}", style="cyan", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )


def line(*parts: str | tuple[str, str]) -> Text:
    """A message line from plain strings (shown exactly as they are) and ``(text, style)`` pairs."""
    return Text.assemble(*((str(p) if isinstance(p, str) else (str(p[0]), p[1])) for p in parts))


def say(*parts: str | tuple[str, str]) -> None:
    """Print a message line on stderr (see :func:`line`)."""
    err_console.print(line(*parts), highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    say(("warning:", "bold yellow"), " ", str(message))


def error(message: str) -> None:
    say(("error:", "bold red"), " ", str(message))
