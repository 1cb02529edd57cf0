"""Training commands (not implemented yet)."""

from __future__ import annotations

from typing import List, Optional

import typer

from ..errors import NotImplementedYet


def train_stylegan(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Train a StyleGAN2 generator on a dataset (not implemented yet)."""
    raise NotImplementedYet("'sserd train-stylegan' is not implemented yet")


def train_encoder(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Train the latent encoder E by inversion, eq. 8-10 (not implemented yet)."""
    raise NotImplementedYet("'sserd train-encoder' is not implemented yet")


def build_pairs(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Fit SVM edit directions and synthesise paired data, eq. 11-12 (not implemented yet)."""
    raise NotImplementedYet("'sserd build-pairs' is not implemented yet")


def train(args: Optional[List[str]] = typer.Argument(None, hidden=True)) -> None:
    """Hybrid SSERD training, eq. 13-14 (not implemented yet)."""
    raise NotImplementedYet("'sserd train' is not implemented yet")
