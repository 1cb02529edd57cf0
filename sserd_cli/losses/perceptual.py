"""Perceptual losses computed by project code from weight files the user supplies.

- :class:`VGG19Features` / :class:`VGGPerceptualLoss`: the ``phi_p`` of eq. 8 (VGG19, as the
  paper says). Parameter names are torchvision's (``features.N.weight`` / ``.bias``), so a
  state dict saved from ``torchvision.models.vgg19(weights=...)`` (``.pth``, read with
  ``weights_only=True``, or ``.safetensors``) loads as is; ``classifier.*`` keys are ignored.
  Taps: relu1_2, relu2_2, relu3_4, relu4_4, relu5_4 (the last ReLU of each block); the loss
  is the sum over taps of the mean squared feature difference (equal weights). Input
  images are in [-1, 1] and are mapped to ImageNet statistics inside.
- :class:`LPIPS`: the learned perceptual metric of Zhang et al. 2018 (the ``phi_p`` of the lips
  term of eq. 13, the paper's reference [40]), VGG variant: a torchvision-format VGG16 trunk
  (taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), features unit-normalised over
  channels, squared difference, non-negative 1x1 linear heads, spatial mean, sum over
  layers. Heads load from the official ``lpips`` package file (``weights/v0.1/vgg.pth``:
  ``lin0.model.1.weight`` .. ``lin4.model.1.weight``, shapes ``[1, C, 1, 1]``); a full
  ``lpips.LPIPS`` state dict (``net.sliceK.N.*`` + ``linK.*``) also carries the trunk.

Weights come from the ``weights_path`` argument or the environment
(``SSERD_VGG19_WEIGHTS``, ``SSERD_LPIPS_WEIGHTS``, ``SSERD_VGG16_WEIGHTS`` for the LPIPS
trunk). Nothing is ever downloaded.

Fallback when no weights are given (explicit, reported, never silent): the same
architecture with **fixed random weights** (He-normal fan-in, seed 0, so every run and
every resume uses identical features). Random-weight VGG features still encode local
image structure at several scales; He, Wang & Hopcroft (NeurIPS 2016) reconstruct and
synthesise images from them. The loss remains a real multi-scale feature loss, but weaker
than an ImageNet-trained one; for LPIPS without heads the heads are uniform (the LPIPS
paper's uncalibrated "baseline" distance). ``load_perceptual`` returns a description that
says exactly which variant is in use, sets ``module.is_fallback`` and emits one
:class:`PerceptualFallbackWarning` so runs and bundle cards can record it.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SserdError
from .reconstruction import reduce_per_sample

ENV_VGG19 = "SSERD_VGG19_WEIGHTS"
ENV_VGG16 = "SSERD_VGG16_WEIGHTS"
ENV_LPIPS = "SSERD_LPIPS_WEIGHTS"
FALLBACK_SEED = 0

# torchvision's VGG "features" layouts (configs D and E): channel counts, "M" = 2x2 max pool
VGG_LAYOUTS: Mapping[str, tuple[int | str, ...]] = MappingProxyType({
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
})
VGG19_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
LPIPS_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)

# ImageNet statistics for [0, 1] images; LPIPS' own scaling layer constants for [-1, 1] images
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


class PerceptualFallbackWarning(UserWarning):
    """No perceptual weights were given: a documented fallback network is in use."""


def relu_indices(arch: str) -> dict[str, int]:
    """``{"relu1_1": 1, "relu1_2": 3, ...}``: index of every ReLU in torchvision's ``features``."""
    indices: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for item in VGG_LAYOUTS[arch]:
        if item == "M":
            index += 1
            block, conv = block + 1, 0
        else:
            conv += 1
            indices[f"relu{block}_{conv}"] = index + 1
            index += 2
    return indices


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` dict from a ``.safetensors`` file or a weights-only
    PyTorch file (never a full unpickle). A top-level ``state_dict`` entry and a
    ``module.`` prefix (DataParallel) are unwrapped."""
    file = Path(path)
    if not file.is_file():
        raise SserdError(f"weights file not found: {file}: check the path")
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: object = load_file(str(file), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise SserdError(f"cannot read {file} as safetensors ({err}): give an intact .safetensors file") from None
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SserdError(
                f"cannot read {file} as a weights-only PyTorch file ({first[:160]}): save a plain state dict "
                "with torch.save(model.state_dict(), path) or convert it to .safetensors"
            ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SserdError(f"{file} does not hold a state dict (a mapping of names to tensors): give a model's state_dict()")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def _from_lpips_trunk(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a full ``lpips.LPIPS`` state dict's ``net.sliceK.N.*`` keys to ``features.N.*``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 4 and parts[0] == "net" and parts[1].startswith("slice"):
            out[f"features.{parts[2]}.{parts[3]}"] = value
    return out


class VGGFeatures(nn.Module):
    """torchvision's VGG ``features`` (up to the last tap) returning the activations at
    ``taps``. ``forward`` takes images in [-1, 1]; ``input_norm`` "imagenet" maps them to
    ImageNet statistics, "lpips" uses LPIPS' scaling layer (the same map, rounded as the
    official package does). Parameters are frozen: the network is a fixed criterion."""

    def __init__(self, arch: str = "vgg19", taps: Sequence[str] = VGG19_TAPS, input_norm: str = "imagenet") -> None:
        super().__init__()
        if arch not in VGG_LAYOUTS:
            raise ValueError(f"arch must be one of {sorted(VGG_LAYOUTS)}, got {arch!r}")
        names = relu_indices(arch)
        unknown = [t for t in taps if t not in names]
        if unknown or not taps:
            raise ValueError(f"unknown {arch} taps {unknown or '(none)'}: choose from {list(names)}")
        self.arch = arch
        self.taps = tuple(taps)
        self.tap_indices = tuple(names[t] for t in taps)
        last = max(self.tap_indices)
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG_LAYOUTS[arch]:
            if len(layers) > last:
                break
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers[: last + 1])
        if input_norm == "imagenet":
            mean = torch.tensor(_IMAGENET_MEAN) * 2 - 1  # statistics of the same images in [-1, 1]
            std = torch.tensor(_IMAGENET_STD) * 2
        elif input_norm == "lpips":
            mean, std = torch.tensor(_LPIPS_SHIFT), torch.tensor(_LPIPS_SCALE)
        else:
            raise ValueError(f"input_norm must be 'imagenet' or 'lpips', got {input_norm!r}")
        # non-persistent: state_dict() keys stay exactly torchvision's features.N.*
        self.register_buffer("shift", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # a fixed criterion: no train mode (there is no BN/dropout anyway)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift.to(images.dtype)) / self.scale.to(images.dtype)
        wanted = set(self.tap_indices)
        found: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                found[index] = x
        return [found[i] for i in self.tap_indices]

    @torch.no_grad()
    def random_init(self, seed: int = FALLBACK_SEED) -> "VGGFeatures":
        """Fixed random weights (the fallback): He-normal with fan-in, so each tap keeps the
        input's scale; zero biases; drawn from a private generator (global RNG untouched)."""
        gen = torch.Generator().manual_seed(seed)
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
                weight = torch.randn(layer.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
                layer.weight.copy_(weight)
                layer.bias.zero_()
        return self

    def load_torchvision(self, state: Mapping[str, torch.Tensor], source: str = "the state dict") -> "VGGFeatures":
        """Load torchvision-format ``features.N.weight/bias`` (extra keys are ignored); a
        missing key or wrong shape is a :class:`SserdError` that names it."""
        if not any(k.startswith("features.") for k in state) and any(k.startswith("net.slice") for k in state):
            state = _from_lpips_trunk(state)
        expected = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        n_convs = sum(1 for k in state if k.startswith("features.") and k.endswith(".weight"))
        want_convs = sum(1 for item in VGG_LAYOUTS[self.arch] if item != "M")
        hint = (
            f" (it holds {n_convs} conv layers, a torchvision {self.arch} has {want_convs})"
            if n_convs and n_convs != want_convs
            else ""
        )
        for key, ref in expected.items():
            if key not in state:
                raise SserdError(
                    f"{source} is not a torchvision {self.arch} state dict: '{key}' is missing{hint}: "
                    f"give the file saved from torchvision.models.{self.arch}(...).state_dict()"
                )
            if tuple(state[key].shape) != tuple(ref.shape):
                raise SserdError(
                    f"{source} is not a torchvision {self.arch} state dict: '{key}' has shape "
                    f"{list(state[key].shape)}, expected {list(ref.shape)}{hint}"
                )
        self.features.load_state_dict({k[len("features."):]: state[k].float() for k in expected}, strict=True)
        return self


class VGG19Features(VGGFeatures):
    """VGG19 feature taps (default relu1_2, relu2_2, relu3_4, relu4_4, relu5_4), ImageNet input norm."""

    def __init__(self, taps: Sequence[str] = VGG19_TAPS) -> None:
        super().__init__("vgg19", taps, input_norm="imagenet")

    @classmethod
    def from_file(cls, path: str | os.PathLike, taps: Sequence[str] = VGG19_TAPS) -> "VGG19Features":
        return cls(taps).load_torchvision(read_weights_file(path), source=str(path))


class VGGPerceptualLoss(nn.Module):
    """Eq. 8's ``||phi(a) - phi(b)||^2``: sum over taps of ``weight * mean((phi_l(a) - phi_l(b))^2)``.

    ``forward(a, b, reduction="mean")``: images ``[B, 3, H, W]`` in [-1, 1]; ``"none"``
    returns one value per sample ``[B]``. H, W >= 16 (four pools before relu5_4).
    """

    def __init__(
        self,
        features: VGGFeatures,
        layer_weights: Sequence[float] | None = None,
        *,
        description: str = "",
        is_fallback: bool = False,
    ) -> None:
        super().__init__()
        self.net = features
        weights = tuple(float(w) for w in (layer_weights or [1.0] * len(features.taps)))
        if len(weights) != len(features.taps):
            raise ValueError(f"{len(features.taps)} taps but {len(weights)} layer weights")
        self.layer_weights = weights
        self.description = description
        self.is_fallback = is_fallback

    def forward(self, a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"perceptual loss: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
        feats = self.net(torch.cat([a, b]))  # one pass for both: half the Python overhead
        batch = a.shape[0]
        per_sample = a.new_zeros(batch, dtype=torch.float32)
        for weight, f in zip(self.layer_weights, feats):
            # float32: squared relu5 activations can exceed float16's range under autocast
            fa, fb = f[:batch].float(), f[batch:].float()
            per_sample = per_sample + weight * (fa - fb).pow(2).reshape(batch, -1).mean(1)
        return reduce_per_sample(per_sample, reduction)


class LPIPS(nn.Module):
    """LPIPS (VGG variant) as defined by Zhang et al. 2018 and the official ``lpips`` package.

    ``forward(a, b, reduction="mean")``: images in [-1, 1]; per sample
    ``sum_l mean_hw(w_l . (n(f_l(a)) - n(f_l(b)))^2)`` with ``n`` the unit-norm over
    channels. Heads start uniform (all ones = the uncalibrated baseline) until
    :meth:`load_heads`; the trunk starts empty until :meth:`load_trunk` or ``random_init``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = VGGFeatures("vgg16", LPIPS_TAPS, input_norm="lpips")
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in LPIPS_CHANNELS)
        with torch.no_grad():
            for lin in self.lins:
                lin.weight.fill_(1.0)
        self.requires_grad_(False)
        self.description = ""
        self.is_fallback = False
        self.eval()

    def train(self, mode: bool = True) -> "LPIPS":
        return super().train(False)

    def load_trunk(self, state: Mapping[str, torch.Tensor], source: str = "the state dict") -> "LPIPS":
        self.net.load_torchvision(state, source)
        return self

    @torch.no_grad()
    def load_heads(self, state: Mapping[str, torch.Tensor], source: str = "the state dict") -> "LPIPS":
        """Official heads: ``lin{k}.model.1.weight`` (saved with dropout, the package default) or
        ``lin{k}.model.0.weight`` (saved without), shape ``[1, C, 1, 1]``."""
        for k, (lin, channels) in enumerate(zip(self.lins, LPIPS_CHANNELS)):
            key = next((c for c in (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight") if c in state), None)
            if key is None:
                raise SserdError(
                    f"{source} is not an LPIPS VGG heads file: 'lin{k}.model.1.weight' is missing: give the "
                    "official lpips weights/v0.1/vgg.pth (or a full lpips.LPIPS(net='vgg') state dict)"
                )
            if tuple(state[key].shape) != (1, channels, 1, 1):
                raise SserdError(
                    f"{source} is not an LPIPS VGG heads file: '{key}' has shape {list(state[key].shape)}, "
                    f"expected [1, {channels}, 1, 1] (heads of another trunk, e.g. alex or squeeze?)"
                )
            lin.weight.copy_(state[key].float())
        return self

    def forward(self, a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"LPIPS: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
        batch = a.shape[0]
        feats = self.net(torch.cat([a, b]))
        per_sample = a.new_zeros(batch, dtype=torch.float32)
        for lin, f in zip(self.lins, feats):
            # F.normalize divides by max(norm, eps): no NaN gradient where a ReLU map is all zero;
            # float32 because eps = 1e-10 is 0 in float16 (autocast)
            f = F.normalize(f.float(), dim=1, eps=1e-10)
            diff = (f[:batch] - f[batch:]).pow(2)
            # the 1x1 head as a weighted channel sum (elementwise: autocast leaves it in float32)
            weighted = (diff * lin.weight.float().view(1, -1, 1, 1)).sum(dim=1)
            per_sample = per_sample + weighted.mean(dim=(1, 2))
        return reduce_per_sample(per_sample, reduction)


def perceptual_weight_sources() -> dict[str, str | None]:
    """Where weights would come from now (environment), for ``sserd doctor``."""
    return {
        "vgg19": os.environ.get(ENV_VGG19) or None,
        "lpips": os.environ.get(ENV_LPIPS) or None,
        "vgg16": os.environ.get(ENV_VGG16) or None,
    }


def _resolve(path: str | os.PathLike | None, env: str) -> tuple[str | None, str]:
    """The path to use and where it came from ("argument", the variable name, or "")."""
    if path:
        return str(path), "argument"
    value = os.environ.get(env)
    if value:
        if not Path(value).is_file():
            raise SserdError(f"{env} points to {value}, which is not a file: fix or unset {env}")
        return value, env
    return None, ""


def _warn_fallback(description: str) -> None:
    warnings.warn(description, PerceptualFallbackWarning, stacklevel=3)


def load_perceptual(
    kind: str,
    weights_path: str | os.PathLike | None = None,
    *,
    vgg16_path: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, str]:
    """Build the perceptual criterion ``kind`` ("vgg19" for eq. 8, "lpips" for eq. 13).

    ``weights_path``: the torchvision VGG19 state dict (vgg19) or the LPIPS heads / full
    LPIPS state dict (lpips); ``None`` reads ``SSERD_VGG19_WEIGHTS`` / ``SSERD_LPIPS_WEIGHTS``.
    ``vgg16_path`` (or ``SSERD_VGG16_WEIGHTS``): the torchvision VGG16 trunk for LPIPS.
    Returns ``(module, description)``; the module is frozen, in eval mode, callable as
    ``module(a, b, reduction="mean")`` and carries ``.description`` and ``.is_fallback``.
    A fallback also emits one :class:`PerceptualFallbackWarning`.
    """
    if kind == "vgg19":
        path, origin = _resolve(weights_path, ENV_VGG19)
        if path is not None:
            features = VGG19Features.from_file(path)
            description = f"vgg19: torchvision VGG19 weights from {path} ({origin}); taps {', '.join(VGG19_TAPS)}, MSE"
            module = VGGPerceptualLoss(features, description=description, is_fallback=False)
        else:
            description = (
                f"vgg19-random (fallback): no VGG19 weights given (pass a torchvision vgg19 state dict or set "
                f"{ENV_VGG19}); using a fixed random-weight VGG19 (He-normal, seed {FALLBACK_SEED}), "
                "a weaker weights-free perceptual prior"
            )
            features = VGG19Features().random_init(FALLBACK_SEED)
            module = VGGPerceptualLoss(features, description=description, is_fallback=True)
            _warn_fallback(description)
        return module.to(device), description

    if kind == "lpips":
        heads_path, heads_origin = _resolve(weights_path, ENV_LPIPS)
        trunk_path, trunk_origin = _resolve(vgg16_path, ENV_VGG16)
        module = LPIPS()
        heads = read_weights_file(heads_path) if heads_path else None
        if trunk_path is not None:
            module.load_trunk(read_weights_file(trunk_path), source=trunk_path)
            trunk_text = f"VGG16 trunk from {trunk_path} ({trunk_origin})"
        elif heads is not None and any(k.startswith("net.slice") for k in heads):
            module.load_trunk(heads, source=str(heads_path))
            trunk_text = f"VGG16 trunk from {heads_path} ({heads_origin})"
        elif heads is not None:
            raise SserdError(
                f"LPIPS heads given ({heads_path}) but no VGG16 trunk: set {ENV_VGG16} to a torchvision vgg16 "
                "state dict, or give a full lpips.LPIPS(net='vgg') state dict that holds net.slice* keys"
            )
        else:
            module.net.random_init(FALLBACK_SEED)
            trunk_text = None
        if heads is not None:
            module.load_heads(heads, source=str(heads_path))
            description = f"lpips: LPIPS v0.1 VGG heads from {heads_path} ({heads_origin}), {trunk_text}"
            module.is_fallback = False
        elif trunk_text is not None:
            description = (
                f"lpips-uncalibrated (fallback): {trunk_text}, but no LPIPS heads (set {ENV_LPIPS} to the "
                "lpips vgg.pth); using uniform heads, the LPIPS paper's uncalibrated baseline"
            )
            module.is_fallback = True
        else:
            description = (
                f"lpips-random (fallback): no LPIPS weights given (set {ENV_LPIPS} to the lpips vgg.pth and "
                f"{ENV_VGG16} to a torchvision vgg16 state dict); using a fixed random-weight VGG16 trunk "
                f"(He-normal, seed {FALLBACK_SEED}) with uniform heads, a weaker weights-free perceptual prior"
            )
            module.is_fallback = True
        module.description = description
        if module.is_fallback:
            _warn_fallback(description)
        return module.to(device), description

    raise SserdError(f"unknown perceptual network '{kind}': choose vgg19 or lpips")
