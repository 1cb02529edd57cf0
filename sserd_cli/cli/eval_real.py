"""`sserd eval real` (not implemented yet)."""

from __future__ import annotations

from typing import List, Optional

import typer

from ..errors import NotImplementedYet


def real(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Not implemented yet."""
    raise NotImplementedYet("'sserd eval real' is not implemented yet")
