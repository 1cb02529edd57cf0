"""Model cards (``model.json``) of the bundles the training stages export."""

from __future__ import annotations

import dataclasses
import platform
import time
from typing import Any, Optional

import torch

from ..emotions import EMOTIONS


def base_card(name: str, generator: torch.nn.Module, stage: str, config: Any, run_info: dict,
              parent: Optional[dict] = None) -> dict:
    """A card for a bundle exported by ``stage``; ``parent`` is the card of the input bundle,
    whose recipe and provenance are carried forward so a bundle tells its whole history."""
    parent = parent or {}
    recipe = list(parent.get("recipe", [])) if isinstance(parent.get("recipe"), list) else []
    recipe.append({"stage": stage, "config": dataclasses.asdict(config), **run_info})
    card = {
        "name": name,
        "resolution": int(generator.size),
        "n_latent": int(generator.n_latent),
        "style_dim": int(generator.style_dim),
        "generator": dataclasses.asdict(generator.config),
        "emotions": list(parent.get("emotions", EMOTIONS)),
        "recipe": recipe,
        "provenance": {
            **(parent.get("provenance") or {}),
            f"{stage}_trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            f"{stage}_data": str(getattr(config, "data", "")),
            "software": f"sserd, torch {torch.__version__}, python {platform.python_version()}",
        },
        "metrics": dict(parent.get("metrics") or {}),
    }
    for key in ("encoder", "celcl"):
        if key in parent:
            card[key] = parent[key]
    # How training crops were framed: the aligned crop resized to resize_to, then centre-cropped to
    # centre_crop (paper: 320 -> 256). Editing must frame faces the same way before E.
    size = int(generator.size)
    load = getattr(config, "load_size", 0) or int(round(size * 320 / 256))
    card["framing"] = parent.get("framing") or {"resize_to": int(load), "centre_crop": size}
    return card
