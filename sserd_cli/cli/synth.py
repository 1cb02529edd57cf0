"""`sserd synth`: the synthetic talking-face world (not implemented yet)."""

from __future__ import annotations

from typing import List, Optional

import typer

from ..errors import NotImplementedYet

synth_app = typer.Typer(help="Render the synthetic talking-face world: image datasets and talking videos with ground truth.",
                        no_args_is_help=True)


@synth_app.command("images")
def images(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Render an image dataset of aligned synthetic faces (not implemented yet)."""
    raise NotImplementedYet("'sserd synth images' is not implemented yet")


@synth_app.command("videos")
def videos(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Render talking videos with audio and per-frame ground truth (not implemented yet)."""
    raise NotImplementedYet("'sserd synth videos' is not implemented yet")
