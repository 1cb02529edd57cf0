"""Model cards (``model.json``) of the bundles the training stages export."""

from __future__ import annotations

import dataclasses
import platform
import time
from typing import Any, Optional

import torch

from ..data.index import read_meta
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
    # edit_betas: build-pairs' steps, kept for the direction edit; domain: G(E(x))'s error on held-out faces of the
    # training domain (sserd_cli.training.domain_stats), unchanged while G and E are
    for key in ("encoder", "celcl", "edit_betas", "domain"):
        if key in parent:
            card[key] = parent[key]
    # How training crops were framed; `sserd edit` aligns faces with the same zoom before E.
    size = int(generator.size)
    load = int(getattr(config, "load_size", 0) or size)
    card["framing"] = {"template": "ffhq5", "zoom": framing_zoom(getattr(config, "data", ""), size, load)}
    return card


def framing_zoom(data: str, size: int, load_size: int) -> float:
    """Total zoom of training crops about the FFHQ framing (see :mod:`sserd_cli.faces.align`): the
    dataset's own framing (``dataset.json``; the paper's 320 -> 256 is 1.25) times the load-time
    resize-and-centre-crop ``load_size / size``."""
    # every stage has read `data` through read_index already, so its dataset.json exists
    dataset_zoom = float(read_meta(data).get("framing", {}).get("zoom", 1.0)) if data else 1.0
    return dataset_zoom * load_size / size
