"""The domain feature network F: a small residual CNN that reads a face crop of the training domain.

No ImageNet VGG can be had offline, and a random-weight VGG does not see an expression. F is trained
on the dataset itself (``sserd train-features``): it classifies the emotion label of every crop and, where
the dataset carries per-crop parameters (the synthetic world's ``labels.jsonl``: expression, speech and
identity controls), regresses them. Its stage activations then serve as a perceptual loss and its
head outputs as a parameter-consistency loss for inversion (``sserd train-autoencoder``).

Architecture (unlike the benchmark's oracle, a plain stride-2 CNN on unzoomed crops with a feature
layer and four heads): a full-resolution 3x3 stem, then one residual block per width (stride 2, 1x1
shortcut), global average pooling, an emotion head and a parameter head. Used as a loss it runs in eval
mode (BatchNorm running statistics), so its output does not depend on the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..emotions import EMOTIONS


@dataclass
class FeatureNetConfig:
    size: int = 64  # input side; other sizes are resized inside forward
    stem: int = 16
    widths: tuple = (32, 64, 128, 192)
    n_params: int = 0  # regressed per-crop parameters (0: the dataset has none)


class _Block(nn.Module):
    """Residual block: conv3x3 (stride 2) - BN - ReLU - conv3x3 - BN, plus a 1x1 stride-2 shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class FeatureNet(nn.Module):
    """F: image [B, 3, S, S] in [-1, 1] -> stage activations, emotion logits and parameters."""

    def __init__(self, config: FeatureNetConfig | None = None):
        super().__init__()
        self.config = c = config or FeatureNetConfig()
        # a full-resolution stem: lids, lip lines and teeth are one or two pixels at 64 px
        self.stem = nn.Sequential(nn.Conv2d(3, c.stem, 3, 1, 1, bias=False), nn.BatchNorm2d(c.stem), nn.ReLU(inplace=True))
        stages, cin = [], c.stem
        for w in c.widths:
            stages.append(_Block(cin, w))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.emotion = nn.Linear(cin, len(EMOTIONS))
        self.params = nn.Linear(cin, c.n_params) if c.n_params else None

    def forward(self, x: torch.Tensor) -> dict:
        s = self.config.size
        if x.shape[-2:] != (s, s):
            x = nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        h = self.stem(x)
        taps = [h]
        for stage in self.stages:
            h = stage(h)
            taps.append(h)
        pooled = h.mean(dim=(2, 3))
        out = {"taps": taps, "emotion": self.emotion(pooled)}
        if self.params is not None:
            out["params"] = self.params(pooled)
        return out


__all__ = ["FeatureNet", "FeatureNetConfig"]


# ---------------------------------------------------------------------------------------------- files

FEATURES_CARD = "features.json"
FEATURES_WEIGHTS = "features.safetensors"
FEATURES_FORMAT = "sserd-features"


def save_feature_net(path, net: FeatureNet, card: dict) -> None:
    """Write F as a folder: ``features.json`` (config, parameter names, held-out numbers) + safetensors."""
    import dataclasses
    import json
    import os
    import shutil
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    body = {"format": FEATURES_FORMAT, **card, "config": dataclasses.asdict(net.config)}
    (tmp / FEATURES_CARD).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp / FEATURES_WEIGHTS))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def load_feature_net(path, device="cpu") -> tuple[FeatureNet, dict]:
    """(F in eval mode, its card) from a folder written by :func:`save_feature_net` (or its run folder)."""
    import json
    from pathlib import Path

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..errors import SserdError

    path = Path(path)
    if (path / "bundle" / FEATURES_CARD).is_file():  # a train-features run folder
        path = path / "bundle"
    card_file, weights = path / FEATURES_CARD, path / FEATURES_WEIGHTS
    if not card_file.is_file() or not weights.is_file():
        raise SserdError(f"no feature network in {path} (needs {FEATURES_CARD} and {FEATURES_WEIGHTS}): "
                         "train one with 'sserd train-features DATA -o DIR'")
    try:
        card = json.loads(card_file.read_text())
        if card.get("format") != FEATURES_FORMAT:
            raise ValueError("not a feature-network card")
        cfg = dict(card["config"])
        cfg["widths"] = tuple(cfg["widths"])
        net = FeatureNet(FeatureNetConfig(**cfg))
        net.load_state_dict(load_file(str(weights)))
    except (ValueError, KeyError, TypeError, RuntimeError, SafetensorError, json.JSONDecodeError) as exc:
        raise SserdError(f"{path} does not hold a readable feature network ({str(exc).splitlines()[0]}): "
                         "train one with 'sserd train-features DATA -o DIR'") from None
    return net.to(device).eval(), card


__all__ += ["save_feature_net", "load_feature_net", "FEATURES_CARD", "FEATURES_WEIGHTS"]
