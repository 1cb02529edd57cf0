"""upfirdn2d / fused leaky ReLU reference ops against direct, loop-based definitions."""

import math

import numpy as np
import pytest
import torch

from sserd_cli.nets.ops import downsample2d, fused_leaky_relu, make_kernel, upfirdn2d, upsample2d


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run fastest on one thread; on a busy machine two-thread barriers stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def naive_upfirdn2d(x, k, up, down, pad):
    """Textbook definition on one channel: zero-insert, pad/crop, full 2-D convolution, decimate."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    p0, p1 = pad
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    u[::up, ::up] = x
    padded = np.zeros((h * up + max(p0, 0) + max(p1, 0), w * up + max(p0, 0) + max(p1, 0)))
    padded[max(p0, 0) : max(p0, 0) + h * up, max(p0, 0) : max(p0, 0) + w * up] = u
    padded = padded[max(-p0, 0) : padded.shape[0] - max(-p1, 0), max(-p0, 0) : padded.shape[1] - max(-p1, 0)]
    kh, kw = k.shape
    oh, ow = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            # convolution: kernel flipped
            out[i, j] = (padded[i : i + kh, j : j + kw] * k[::-1, ::-1]).sum()
    return out[::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2)), (2, 1, (2, 1)), (2, 1, (0, 0)), (2, 1, (5, 4)), (1, 2, (1, 1)), (2, 2, (-1, 2)), (1, 1, (-1, -1))])
def test_upfirdn2d_matches_definition(up, down, pad):
    x = torch.randn(2, 3, 7, 7)
    k = torch.rand(4, 3)  # asymmetric and non-square, so flips and axes are exercised
    out = upfirdn2d(x, k, up=up, down=down, pad=pad)
    for b in range(2):
        for c in range(3):
            ref = naive_upfirdn2d(x[b, c].numpy(), k.numpy(), up, down, pad)
            np.testing.assert_allclose(out[b, c].numpy(), ref, rtol=1e-5, atol=1e-5)


def test_resampling_keeps_a_flat_image_flat_and_sizes_exact():
    kernel = make_kernel([1, 3, 3, 1])
    assert torch.isclose(kernel.sum(), torch.tensor(1.0))
    x = torch.full((1, 2, 8, 8), 0.5)
    up = upsample2d(x, kernel * 4)
    down = downsample2d(x, kernel)
    assert up.shape[-2:] == (16, 16) and down.shape[-2:] == (4, 4)
    # away from the zero-padded border the gain is exactly 1
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.5))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.5))


def test_fused_leaky_relu_values_and_gain():
    x = torch.tensor([[-1.0, 2.0], [0.5, -3.0]])
    bias = torch.tensor([0.5, -1.0])
    out = fused_leaky_relu(x, bias)
    expected = torch.tensor([[-0.5 * 0.2, 1.0], [1.0, -4.0 * 0.2]]) * math.sqrt(2)
    torch.testing.assert_close(out, expected)
    # gain sqrt(2) keeps the second moment of a unit Gaussian near 1 (slope 0.2 -> (1+0.04)/2*2)
    z = fused_leaky_relu(torch.randn(200_000))
    assert abs(z.pow(2).mean().item() - 1.04) < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_ops_fp16_cuda_match_cpu():
    x = torch.randn(2, 4, 16, 16)
    k = make_kernel([1, 3, 3, 1])
    ref = upfirdn2d(x, k * 4, up=2, pad=(2, 1))
    out = upfirdn2d(x.cuda().half(), k.cuda() * 4, up=2, pad=(2, 1))  # the same kernel (and gain) as the reference
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float().cpu(), ref, rtol=1e-2, atol=1e-2)
    b = torch.randn(4)
    torch.testing.assert_close(fused_leaky_relu(x.cuda().half(), b.cuda()).float().cpu(), fused_leaky_relu(x, b), rtol=1e-2, atol=1e-2)
