"""Latent encoder E: aligned face crop -> W+ code (SSERD eq. 1, "implemented by IResNet50").

Backbone: the improved ResNet of ArcFace (IResNet, Duta et al. / Deng et al.):
a stride-1 3x3 stem (conv-BN-PReLU) and four stages of ``IBasicBlock``
(BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus identity or 1x1-conv+BN
shortcut), each stage halving the resolution. ``iresnet50`` has [3, 4, 14, 3]
blocks with 64/128/256/512 channels.

Head: pixel2style2pixel's feature pyramid with one "map2style" block per W+ row.
With a 256 input the stages 2/3/4 give 64x64 / 32x32 / 16x16 maps (fine / medium /
coarse). The pyramid adds upsampled coarse features to 1x1-projected finer ones;
rows ``[0, coarse)`` read the coarse map, ``[coarse, coarse+medium)`` the medium map and
the rest the fine map (pSp: 3 / 4 / rest). Each map2style block halves its map with
stride-2 3x3 convs + leaky ReLU down to 1x1, then an equalised linear layer gives a
``style_dim`` vector.

Output: ``latent_avg + offsets`` ([B, n_latent, style_dim]); ``latent_avg`` is a buffer
set from the generator (``set_latent_avg(G.mean_latent(n))``), so an untrained encoder
starts near the average face.

Input: images [B, 3, H, W] in [-1, 1]. If H, W differ from ``config.size`` the image is
resized (bilinear, antialiased) to ``config.size`` inside ``forward``, so a 1024
generator can use a 256 encoder as in pSp.

Backbones: ``iresnet50`` (paper), ``iresnet34``, ``iresnet18``, and ``small``
([1, 1, 1, 1] blocks, 16 base channels, 64-channel heads) for bundles that must run
at interactive speed on a CPU. ``base_channels`` / ``head_channels`` override the preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SserdError
from .stylegan2 import EqualLinear

BACKBONES = {
    # name: (blocks per stage, base channels, head channels; None = style_dim)
    "iresnet50": ((3, 4, 14, 3), 64, None),
    "iresnet34": ((3, 4, 6, 3), 64, None),
    "iresnet18": ((2, 2, 2, 2), 64, None),
    "small": ((1, 1, 1, 1), 16, 64),
}


@dataclass
class EncoderConfig:
    size: int = 256
    n_latent: int = 14
    style_dim: int = 512
    backbone: str = "iresnet50"
    base_channels: int | None = None  # None: the backbone's preset
    head_channels: int | None = None  # None: the backbone's preset
    coarse: int = 3  # W+ rows read from the coarse (lowest resolution) map
    medium: int = 4  # next rows from the medium map; the rest from the fine map


# ----------------------------------------------------------------------------- IResNet


class IBasicBlock(nn.Module):
    """BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus a shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, eps=1e-5)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=1e-5)
        self.prelu = nn.PReLU(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch, eps=1e-5)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """IResNet trunk without the ArcFace embedding head; returns the four stage outputs."""

    def __init__(self, blocks: tuple[int, ...], base: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(base, eps=1e-5)
        self.prelu = nn.PReLU(base)
        self.channels = [base * 2**i for i in range(4)]
        layers = []
        in_ch = base
        for n, out_ch in zip(blocks, self.channels):
            stage = [IBasicBlock(in_ch, out_ch, stride=2)] + [IBasicBlock(out_ch, out_ch) for _ in range(n - 1)]
            layers.append(nn.Sequential(*stage))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.prelu(self.bn1(self.conv1(x)))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]


# ----------------------------------------------------------------------------- map2style head


class MapToStyle(nn.Module):
    """Stride-2 convs down to 1x1, then an equalised linear layer -> one style vector."""

    def __init__(self, in_ch: int, hidden: int, style_dim: int, spatial: int):
        super().__init__()
        n_down = max(int(math.log2(spatial)), 1)
        layers: list[nn.Module] = []
        ch = in_ch
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, hidden, 3, 2, 1), nn.LeakyReLU(0.2)]
            ch = hidden
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(hidden, style_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        x = x.mean(dim=(2, 3))  # 1x1 already when the map is a power of two; mean keeps odd sizes safe
        return self.linear(x)


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class LatentEncoder(nn.Module):
    """Encoder E: image [B, 3, S, S] in [-1, 1] -> W+ [B, n_latent, style_dim] = latent_avg + offsets."""

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        self.config = config = config or EncoderConfig()
        if config.backbone not in BACKBONES:
            raise SserdError(f"unknown encoder backbone '{config.backbone}': use one of {', '.join(BACKBONES)}")
        if config.size < 16 or config.size & (config.size - 1):
            raise SserdError(f"encoder input size {config.size} is not supported: use a power of two >= 16")
        blocks, base, head = BACKBONES[config.backbone]
        base = config.base_channels or base
        head = config.head_channels or head or config.style_dim
        self.n_latent, self.style_dim = config.n_latent, config.style_dim
        self.n_coarse = min(config.coarse, config.n_latent)
        self.n_medium = min(config.medium, config.n_latent - self.n_coarse)

        self.backbone = IResNet(blocks, base)
        _, c_fine, c_medium, c_coarse = self.backbone.channels
        # stage outputs are size/4 (fine), size/8 (medium), size/16 (coarse) pixels wide
        s = config.size
        self.lateral_medium = nn.Conv2d(c_medium, c_coarse, 1)
        self.lateral_fine = nn.Conv2d(c_fine, c_coarse, 1)
        self.styles = nn.ModuleList()
        for i in range(config.n_latent):
            spatial = s // 16 if i < self.n_coarse else s // 8 if i < self.n_coarse + self.n_medium else s // 4
            self.styles.append(MapToStyle(c_coarse, head, config.style_dim, spatial))
        self.register_buffer("latent_avg", torch.zeros(config.n_latent, config.style_dim))

    def set_latent_avg(self, latent: torch.Tensor) -> None:
        """Set the code offsets are added to: [D] or [1, D] (repeated per row) or [n_latent, D]."""
        latent = latent.detach().to(self.latent_avg)
        if latent.ndim == 2 and latent.shape[0] == 1:
            latent = latent[0]
        if latent.ndim == 1:
            latent = latent.expand(self.n_latent, -1)
        if latent.shape != self.latent_avg.shape:
            raise ValueError(f"latent_avg must be [{self.style_dim}] or [{self.n_latent}, {self.style_dim}], got {list(latent.shape)}")
        self.latent_avg.copy_(latent)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        s = self.config.size
        if img.shape[-2:] != (s, s):
            img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        _, fine, medium, coarse = self.backbone(img)
        p_medium = _upsample_add(coarse, self.lateral_medium(medium))
        p_fine = _upsample_add(p_medium, self.lateral_fine(fine))
        codes = []
        for i, head in enumerate(self.styles):
            feat = coarse if i < self.n_coarse else p_medium if i < self.n_coarse + self.n_medium else p_fine
            codes.append(head(feat))
        offsets = torch.stack(codes, dim=1)
        return self.latent_avg.to(offsets.dtype) + offsets
