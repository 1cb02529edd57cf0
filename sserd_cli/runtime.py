"""Device selection and deterministic seeding shared by every command."""

from __future__ import annotations

import random

import numpy as np
import torch

from .errors import SserdError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; an unavailable device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SserdError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SserdError(f"device '{name}' requested but this torch build sees no CUDA GPU: use --device cpu")
    return device


def cpu_runs_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (AVX512-BF16 or AMX); elsewhere it
    emulates them, slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN, or one that lacks the query
        return False


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so runs repeat exactly on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
