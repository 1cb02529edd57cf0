"""What every importer returns: a generator state dict in sserd's (rosinality's) keys plus what is known about it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ForeignGenerator:
    state_dict: dict[str, torch.Tensor]  # rosinality / sserd keys, float32
    latent_avg: torch.Tensor | None  # [D], the mean w, when the file has one
    format: str  # "rosinality-pt", "nvlabs-pkl", "safetensors"
    lr_mlp: float | None = None  # mapping-network learning-rate multiplier, when the file says
    channel_multiplier: int | None = None  # when the file says
    notes: dict = field(default_factory=dict)  # provenance details for the card


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
