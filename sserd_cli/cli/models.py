"""Model bundle commands: import-stylegan, info, doctor (not implemented yet)."""

from __future__ import annotations

from typing import List, Optional

import typer

from ..errors import NotImplementedYet


def import_stylegan(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Import external StyleGAN2 weights (rosinality .pt, NVlabs .pkl) into a bundle (not implemented yet)."""
    raise NotImplementedYet("'sserd import-stylegan' is not implemented yet")


def info(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Show a model bundle's card (not implemented yet)."""
    raise NotImplementedYet("'sserd info' is not implemented yet")


def doctor(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Check torch, CUDA, codecs and face models (not implemented yet)."""
    raise NotImplementedYet("'sserd doctor' is not implemented yet")
