"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020), in plain PyTorch.

Written from the paper; the parameter layout follows rosinality/stylegan2-pytorch so a
rosinality ``g_ema`` state dict loads into :class:`Generator` with ``strict=True``.
Config-f numbers: 8-layer mapping network with learning-rate multiplier 0.01,
equalised learning rate everywhere, modulated convolutions with demodulation
(eps 1e-8), per-layer noise with a learned strength, skip generator (toRGB at every
resolution, upsampled and summed), residual discriminator with minibatch stddev.

Sizes: any power of two from 8 to 1024 (the project uses 64..1024). With
``log_size = log2(size)``, the generator has ``n_latent = 2*log_size - 2`` style
inputs (W+ rows), ``num_layers = 2*log_size - 3`` noise inputs.

Channels per resolution (:func:`channel_table`), ``cm = channel_multiplier``::

    4..32: 512   64: 256*cm   128: 128*cm   256: 64*cm   512: 32*cm   1024: 16*cm

each capped at ``channel_max`` (set it small, e.g. 32, for tiny models; for
``cm > 2`` raise it above 512 to reproduce rosinality's uncapped table).

Generator state-dict keys (``C[r]`` = channels at resolution r, ``D`` = style_dim,
``L = log_size``; ``i`` counts from 0)::

    style.{1..n_mlp}.weight              [D, D]       mapping (style.0 is PixelNorm)
    style.{1..n_mlp}.bias                [D]
    input.input                          [1, C[4], 4, 4]
    conv1.conv.weight                    [1, C[4], C[4], 3, 3]
    conv1.conv.modulation.weight         [C[4], D]
    conv1.conv.modulation.bias           [C[4]]       initialised to 1
    conv1.noise.weight                   [1]
    conv1.activate.bias                  [C[4]]
    to_rgb1.conv.weight                  [1, 3, C[4], 1, 1]
    to_rgb1.conv.modulation.weight/bias  [C[4], D] / [C[4]]
    to_rgb1.bias                         [1, 3, 1, 1]
    convs.{2j}.conv.weight               [1, C[r], C[r/2], 3, 3]   r = 2**(j+3), upsampling conv
    convs.{2j}.conv.blur.kernel          [4, 4]       FIR kernel * 4 (buffer)
    convs.{2j}.conv.modulation.*         [C[r/2], D] / [C[r/2]]
    convs.{2j}.noise.weight, .activate.bias
    convs.{2j+1}.conv.weight             [1, C[r], C[r], 3, 3]
    convs.{2j+1}.conv.modulation.*, .noise.weight, .activate.bias
    to_rgbs.{j}.conv.weight              [1, 3, C[r], 1, 1]
    to_rgbs.{j}.conv.modulation.*, to_rgbs.{j}.bias
    to_rgbs.{j}.upsample.kernel          [4, 4]       FIR kernel * 4 (buffer)
    noises.noise_{i}                     [1, 1, 2**((i+5)//2), same]   i < num_layers (buffers)

for ``j = 0 .. L-3``. W+ row use: conv1 <- 0, to_rgb1 <- 1, then for block j
the two convs take rows ``2j+1, 2j+2`` and its toRGB row ``2j+3``; noise
``noise_0`` feeds conv1 and ``noise_{k+1}`` feeds ``convs.{k}``.

Discriminator keys (rosinality ``Discriminator``)::

    convs.0.0.weight [C[size], 3, 1, 1], convs.0.1.bias         fromRGB
    convs.{n}.conv1.0.weight, convs.{n}.conv1.1.bias            n = 1 .. L-2, ResBlocks
    convs.{n}.conv2.0.kernel (blur buffer), conv2.1.weight, conv2.2.bias
    convs.{n}.skip.0.kernel (blur buffer), skip.1.weight        (no bias)
    final_conv.0.weight [C[4], C[4]+1, 3, 3], final_conv.1.bias
    final_linear.0.weight [C[4], C[4]*16], .0.bias, final_linear.1.weight [1, C[4]], .1.bias
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import SserdError
from .ops import blur2d, fused_leaky_relu, make_kernel, upsample2d

BLUR_TAPS = (1, 3, 3, 1)
NOISE_MODES = ("const", "random", "none")


def _check_size(size: int, what: str) -> int:
    if size < 8 or size > 1024 or size & (size - 1):
        raise SserdError(f"{what} size {size} is not supported: use a power of two from 8 to 1024 (e.g. 64, 256, 1024)")
    return int(math.log2(size))


def channel_table(size: int, channel_multiplier: int = 2, channel_max: int = 512) -> dict[int, int]:
    """Channels per resolution 4..size (rosinality's table, capped at ``channel_max``)."""
    cm = channel_multiplier
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    return {res: min(ch, channel_max) for res, ch in base.items() if res <= size}


@dataclass
class GeneratorConfig:
    size: int = 256
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    lr_mlp: float = 0.01


@dataclass
class DiscriminatorConfig:
    size: int = 256
    channel_multiplier: int = 2
    channel_max: int = 512


# ----------------------------------------------------------------------------- layers


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit root-mean-square."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weights stored N(0,1)/lr_mul, scaled at run time."""

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate (He-constant scaling at run time)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, then leaky ReLU with gain sqrt(2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR low-pass with fixed padding; ``upsample_factor`` scales the kernel to keep the gain after zero insertion."""

    def __init__(self, taps, pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur2d(x, self.kernel, self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling (used on the toRGB skip path)."""

    def __init__(self, taps, factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(x, self.kernel, self.factor)


class ModulatedConv2d(nn.Module):
    """Modulated convolution: scale input channels by an affine map of w, convolve, demodulate.

    Written as "modulate activations, shared weight, scale outputs", which equals the
    paper's per-sample weight ``w'_ijk = s_i w_ijk / sqrt(sum_ik (s_i w_ijk)^2 + eps)``
    but needs no grouped convolution. With ``upsample`` the convolution is transposed
    with stride 2 and followed by a blur (the FIR-filtered upsampling of StyleGAN2).
    """

    def __init__(self, in_ch, out_ch, kernel_size, style_dim, demodulate=True, upsample=False, blur_taps=BLUR_TAPS, eps=1e-8):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.demodulate, self.upsample, self.eps = demodulate, upsample, eps
        self.padding = kernel_size // 2
        if upsample:
            factor = 2
            p = (len(blur_taps) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        styles = self.modulation(w)  # [B, in]
        if self.demodulate and x.dtype == torch.float16:
            # Demodulation cancels any per-sample scale of the styles; dividing by their
            # largest magnitude keeps x * styles inside the float16 range (as NVlabs do).
            styles = styles / styles.abs().amax(dim=1, keepdim=True).clamp_min(1e-4)
        weight = (self.weight[0] * self.scale).to(x.dtype)  # [out, in, k, k]
        x = x * styles.to(x.dtype).view(batch, -1, 1, 1)
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum over (in, k, k) of (s_i w_oikk)^2, computed in float32 for fp16 safety
            w2 = (self.weight[0].float() * self.scale).pow(2).sum(dim=(2, 3))  # [out, in]
            demod = torch.rsqrt(styles.float().pow(2) @ w2.t() + self.eps)  # [B, out]
            x = x * demod.to(x.dtype).view(batch, -1, 1, 1)
        if self.upsample:
            x = self.blur(x)
        return x


class NoiseInjection(nn.Module):
    """Add single-channel noise scaled by a learned per-layer strength (initialised to 0)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis network starts from."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated 3x3 conv + noise + bias + leaky ReLU: one synthesis layer."""

    def __init__(self, in_ch, out_ch, kernel_size, style_dim, upsample=False, blur_taps=BLUR_TAPS, demodulate=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, demodulate, upsample, blur_taps)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x, w, noise=None):
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation) added to the upsampled skip image."""

    def __init__(self, in_ch, style_dim, upsample=True, blur_taps=BLUR_TAPS):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_taps)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, w, skip=None):
        out = self.conv(x, w) + self.bias.to(x.dtype)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# ----------------------------------------------------------------------------- generator


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation trick: pull ``w`` towards ``w_avg`` (psi=1 leaves it unchanged)."""
    if psi == 1:
        return w
    return w_avg + psi * (w - w_avg)


class Generator(nn.Module):
    """StyleGAN2 generator: mapping network ``z -> w`` and synthesis network ``W+ -> image``.

    - ``mapping(z [B,D]) -> w [B,D]``; ``mean_latent(n) -> [1,D]`` (mean of n mapped z).
    - ``synthesis(wplus [B,n_latent,D], noise_mode) -> image [B,3,size,size]`` in about [-1, 1].
    - ``forward(styles, ...)`` is the rosinality-style entry point returning ``(image, latent or None)``.

    ``noise_mode``: ``"const"`` uses the stored buffers ``noises.noise_i`` (deterministic),
    ``"random"`` draws fresh noise, ``"none"`` adds no noise.
    """

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or GeneratorConfig()
        self.size, self.style_dim = config.size, config.style_dim
        self.log_size = _check_size(config.size, "generator")
        self.n_latent = 2 * self.log_size - 2
        self.num_layers = 2 * self.log_size - 3
        self.channels = ch = channel_table(config.size, config.channel_multiplier, config.channel_max)
        d = config.style_dim

        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(d, d, lr_mul=config.lr_mlp, activation=True) for _ in range(config.n_mlp)])

        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, d)
        self.to_rgb1 = ToRGB(ch[4], d, upsample=False)

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, d, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, 3, d))
            self.to_rgbs.append(ToRGB(out_ch, d))
            in_ch = out_ch

        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))

    # -- mapping

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Map z [B, D] to w [B, D]."""
        return self.style(z)

    get_latent = mapping  # rosinality's name

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Average w of ``n`` random z (the truncation centre), shape [1, D]."""
        dev = self.input.input.device
        z = torch.randn(n, self.style_dim, generator=generator, device="cpu").to(dev)
        return torch.cat([self.mapping(chunk) for chunk in z.split(1024)]).mean(0, keepdim=True)

    # -- synthesis

    def make_noise(self, batch: int = 1, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh noise maps, one per layer, each [batch, 1, r, r]."""
        dev = self.input.input.device
        return [torch.randn(batch, 1, b.shape[-2], b.shape[-1], generator=generator).to(dev) for b in self._noise_buffers()]

    def _noise_buffers(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def _resolve_noise(self, x: torch.Tensor, noise_mode: str, noise) -> list:
        if noise is not None:
            if len(noise) != self.num_layers:
                raise ValueError(f"noise must hold {self.num_layers} maps, got {len(noise)}")
            return list(noise)
        if noise_mode == "const":
            return self._noise_buffers()
        if noise_mode == "random":
            b = x.shape[0]
            return [torch.randn(b, 1, n.shape[-2], n.shape[-1], device=x.device, dtype=x.dtype) for n in self._noise_buffers()]
        if noise_mode == "none":
            return [None] * self.num_layers
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")

    def synthesis(self, wplus: torch.Tensor, noise_mode: str = "const", noise: Sequence[torch.Tensor] | None = None,
                  channels_last: bool = False) -> torch.Tensor:
        """Render W+ codes [B, n_latent, D] to images [B, 3, size, size]. ``channels_last`` keeps the activations
        in NHWC memory order, the same numbers up to float rounding: oneDNN's convolutions on CPU ran 1.6x
        faster so (a 64-px render of the default bundle 7.6 -> 4.8 ms on 2 cores), as do cuDNN's in float16."""
        if wplus.ndim != 3 or wplus.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(f"W+ must have shape [B, {self.n_latent}, {self.style_dim}], got {list(wplus.shape)}")
        x = self.input(wplus.shape[0]).to(wplus.dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # the convolutions and pointwise ops keep it
        noise = self._resolve_noise(wplus, noise_mode, noise)
        x = self.conv1(x, wplus[:, 0], noise[0])
        skip = self.to_rgb1(x, wplus[:, 1])
        i = 1
        for conv_up, conv, to_rgb, n1, n2 in zip(self.convs[::2], self.convs[1::2], self.to_rgbs, noise[1::2], noise[2::2]):
            x = conv_up(x, wplus[:, i], n1)
            x = conv(x, wplus[:, i + 1], n2)
            skip = to_rgb(x, wplus[:, i + 2], skip)
            i += 2
        return skip

    # -- rosinality-style convenience

    def forward(
        self,
        styles: torch.Tensor | Sequence[torch.Tensor],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[torch.Tensor] | None = None,
        noise_mode: str = "random",
        randomize_noise: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate from z, w, W+ or two styles (style mixing); returns ``(image, W+ or None)``.

        ``styles``: a tensor [B, D] (z, or w with ``input_is_latent``), a W+ tensor
        [B, n_latent, D] alone or in a one-item list (always taken as latent), or a list
        of one or two [B, D] tensors;
        with two, rows ``< inject_index`` (random in [1, n_latent) when None) come from the
        first and the rest from the second. ``truncation < 1`` needs ``truncation_latent``
        (e.g. ``G.mean_latent(4096)``). ``randomize_noise`` (rosinality's flag) overrides
        ``noise_mode``: True -> "random", False -> "const".
        """
        if randomize_noise is not None:
            noise_mode = "random" if randomize_noise else "const"
        if truncation != 1 and truncation_latent is None:
            raise ValueError("truncation < 1 needs truncation_latent, e.g. G.mean_latent(4096)")

        if isinstance(styles, torch.Tensor):
            styles = [styles]
        if len(styles) == 1 and styles[0].ndim == 3:  # W+ (rosinality: [wplus] with input_is_latent)
            latent = truncate(styles[0], truncation_latent, truncation)
        else:
            if not 1 <= len(styles) <= 2:
                raise ValueError(f"give one or two style tensors, got {len(styles)}")
            if not input_is_latent:
                styles = [self.mapping(s) for s in styles]
            styles = [truncate(s, truncation_latent, truncation) for s in styles]
            if len(styles) == 1:
                latent = styles[0][:, None].expand(-1, self.n_latent, -1)
            else:
                if inject_index is None:
                    inject_index = int(torch.randint(1, self.n_latent, ()).item())
                first = styles[0][:, None].expand(-1, inject_index, -1)
                second = styles[1][:, None].expand(-1, self.n_latent - inject_index, -1)
                latent = torch.cat([first, second], dim=1)

        image = self.synthesis(latent, noise_mode=noise_mode, noise=noise)
        return image, (latent if return_latents else None)


@torch.no_grad()
def accumulate(ema: nn.Module, model: nn.Module, decay: float = 0.999) -> None:
    """EMA update ``ema = decay*ema + (1-decay)*model`` of parameters; buffers are copied."""
    ema_params = dict(ema.named_parameters())
    for name, p in model.named_parameters():
        ema_params[name].lerp_(p.detach(), 1 - decay)
    ema_buffers = dict(ema.named_buffers())
    for name, b in model.named_buffers():
        ema_buffers[name].copy_(b)


# ----------------------------------------------------------------------------- discriminator


class ConvLayer(nn.Sequential):
    """[blur] + equalised conv (+ bias + leaky ReLU); ``downsample`` blurs then convolves with stride 2."""

    def __init__(self, in_ch, out_ch, kernel_size, downsample=False, blur_taps=BLUR_TAPS, bias=True, activate=True):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_taps) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_taps, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:  # the bias lives in the activation, as in the generator
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsamples) plus a 1x1 downsampling skip, summed / sqrt(2)."""

    def __init__(self, in_ch, out_ch, blur_taps=BLUR_TAPS):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_taps=blur_taps)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, blur_taps=blur_taps, activate=False, bias=False)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image [B,3,size,size] -> realness logit [B,1]."""

    def __init__(self, config: DiscriminatorConfig | None = None, stddev_group: int = 4):
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        log_size = _check_size(config.size, "discriminator")
        ch = channel_table(config.size, config.channel_multiplier, config.channel_max)
        blocks: list[nn.Module] = [ConvLayer(3, ch[config.size], 1)]
        in_ch = ch[config.size]
        for i in range(log_size, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            blocks.append(ResBlock(in_ch, out_ch))
            in_ch = out_ch
        self.convs = nn.Sequential(*blocks)
        self.stddev_group, self.stddev_feat = stddev_group, 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activation=True), EqualLinear(ch[4], 1))

    def minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        """Append the std of features across groups of samples as one extra channel."""
        b, c, h, w = x.shape
        group = min(b, self.stddev_group)
        while b % group:  # largest group size that divides the batch
            group -= 1
        y = x.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        y = torch.sqrt(y.float().var(0, unbiased=False) + 1e-8).to(x.dtype)
        y = y.mean(dim=(2, 3, 4), keepdim=True).squeeze(2)  # [b/group, 1, 1, 1]
        y = y.repeat(group, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.convs(img)
        x = self.final_conv(self.minibatch_stddev(x))
        return self.final_linear(x.flatten(1))
