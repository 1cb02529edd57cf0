"""The latent-step loss of paired sources (sserd_cli.losses.latent)."""

import pytest
import torch

from sserd_cli.losses.latent import latent_step_loss


def test_latent_step_loss_is_the_mean_squared_code_error():
    w_e = torch.zeros(2, 2, 4, requires_grad=True)
    step = torch.stack([torch.full((2, 4), 2.0), torch.full((2, 4), 1.0)])
    loss = latent_step_loss(w_e, step)
    assert torch.isclose(loss, torch.tensor((4.0 + 1.0) / 2))
    loss.backward()
    assert torch.all(w_e.grad < 0)  # pulled towards the step
    assert latent_step_loss(step.clone(), step) == 0


def test_latent_step_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        latent_step_loss(torch.zeros(2, 2, 4), torch.zeros(2, 3, 4))
