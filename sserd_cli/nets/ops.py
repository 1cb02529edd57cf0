"""Reference implementations of the low-level StyleGAN2 operations, in plain PyTorch.

These are the "truth" versions (as NVlabs call their ``impl='ref'`` path): no custom
CUDA, nothing compiled at import, so they run on CPU, on CUDA and in float16 on CUDA.

- :func:`upfirdn2d`: upsample by zero insertion, pad (negative pads crop), convolve
  with a 2-D FIR filter, downsample by keeping every ``down``-th pixel.
- :func:`fused_leaky_relu`: add a per-channel bias, leaky ReLU (slope 0.2), multiply
  by ``sqrt(2)`` so the activation keeps unit variance (StyleGAN2's gain).
- :func:`make_kernel`, :func:`blur2d`, :func:`upsample2d`, :func:`downsample2d`: the
  FIR resampling built on ``upfirdn2d`` with StyleGAN2's padding rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def make_kernel(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A 2-D FIR kernel normalised to sum 1; a 1-D list of taps becomes its outer product."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pads(pad: Sequence[int]) -> tuple[int, int, int, int]:
    """``(p0, p1)`` pads both axes alike; ``(x0, x1, y0, y1)`` pads them separately."""
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return tuple(pad)  # type: ignore[return-value]
    raise ValueError(f"pad must have 2 or 4 entries, got {len(pad)}")


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: Sequence[int] = (0, 0),
) -> torch.Tensor:
    """Upsample, FIR-filter and downsample ``x`` [B, C, H, W] with a 2-D ``kernel`` [kh, kw].

    Output size per axis: ``(H * up + pad0 + pad1 - kh) // down + 1``. The kernel is
    applied as a true convolution (flipped), the same to every channel.
    """
    b, c, h, w = x.shape
    px0, px1, py0, py1 = _pads(pad)
    kh, kw = kernel.shape
    weight = kernel.to(device=x.device, dtype=x.dtype)
    if up > 1:
        # Zero insertion + convolution is a transposed convolution with stride `up`
        # (no zeros are materialised): full[i] = sum_j x[j] k[i - up*j], length (h-1)*up + kh.
        # The padded reference output starts at full[kh-1-pad0]; crop or zero-extend to it.
        full = F.conv_transpose2d(x, weight[None, None].expand(c, 1, kh, kw), stride=up, groups=c)
        out_h, out_w = h * up + py0 + py1 - kh + 1, w * up + px0 + px1 - kw + 1
        y0, x0 = kh - 1 - py0, kw - 1 - px0
        out = F.pad(full, [-x0, x0 + out_w - full.shape[3], -y0, y0 + out_h - full.shape[2]])
        return out[:, :, ::down, ::down]
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    # Negative pads crop.
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    # conv2d correlates, so flip the kernel for a true convolution; stride = decimation.
    return F.conv2d(x, weight.flip([0, 1])[None, None].expand(c, 1, kh, kw), stride=down, groups=c)


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = LRELU_SLOPE,
    scale: float = LRELU_GAIN,
) -> torch.Tensor:
    """``leaky_relu(x + bias) * scale`` with ``bias`` [C] broadcast over dim 1 of ``x``."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).view(shape)
    return F.leaky_relu(x, negative_slope) * scale


def blur2d(x: torch.Tensor, kernel: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """Low-pass filter with explicit padding (the ``Blur`` of StyleGAN2)."""
    return upfirdn2d(x, kernel, pad=pad)


def upsample2d(x: torch.Tensor, kernel: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Exact ``factor``-times upsampling; ``kernel`` must already carry the ``factor**2`` gain."""
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample2d(x: torch.Tensor, kernel: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Exact ``factor``-times downsampling with an anti-alias FIR filter."""
    p = kernel.shape[0] - factor
    return upfirdn2d(x, kernel, down=factor, pad=((p + 1) // 2, p // 2))
