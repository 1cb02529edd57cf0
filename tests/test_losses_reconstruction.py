"""Pixel L2 of eq. 8 / 13 and its masked variant."""

import pytest
import torch
import torch.nn.functional as F

from sserd_cli.losses.reconstruction import l2_loss, masked_l2_loss


def test_l2_is_mean_squared_error_with_per_sample_option():
    a, b = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    assert torch.allclose(l2_loss(a, b), F.mse_loss(a, b))
    per_sample = l2_loss(a, b, reduction="none")
    assert per_sample.shape == (3,)
    assert per_sample[1].item() == pytest.approx(F.mse_loss(a[1], b[1]).item(), rel=1e-6)
    # eq. 14's indicator: zeroing real-source samples removes exactly their terms
    indicator = torch.tensor([1.0, 0.0, 1.0])
    assert (per_sample * indicator).sum().item() == pytest.approx(per_sample[[0, 2]].sum().item(), rel=1e-6)
    with pytest.raises(ValueError):
        l2_loss(a, b[:, :, :4])


def test_masked_l2_only_counts_pixels_inside_the_mask():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.zeros(2, 3, 4, 4)
    b[:, :, :2] = 2.0  # differences only in the top half
    top = torch.zeros(4, 4)
    top[:2] = 1.0
    assert masked_l2_loss(a, b, top).item() == pytest.approx(4.0)
    assert masked_l2_loss(a, b, 1 - top).item() == 0.0
    assert masked_l2_loss(a, b, torch.zeros(4, 4)).item() == 0.0
    per_batch_masks = torch.stack([top, 1 - top])[:, None]
    assert masked_l2_loss(a, b, per_batch_masks, reduction="none").tolist() == [4.0, 0.0]
