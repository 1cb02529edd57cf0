"""StyleGAN2 adversarial losses and regularisers against closed forms."""

import math

import pytest
import torch
import torch.nn as nn

from sserd_cli.losses.adversarial import (
    GANRegConfig,
    PathLengthPenalty,
    d_logistic_loss,
    g_nonsaturating_loss,
    path_length_penalty,
    r1_penalty,
    r1_weight,
)


def softplus(x):
    return math.log1p(math.exp(x))


def test_logistic_losses_match_closed_forms():
    real = torch.tensor([[2.0], [-1.0]])
    fake = torch.tensor([[0.5], [3.0]])
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected_d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(3.0)) / 2
    assert d_logistic_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    expected_g = (softplus(-0.5) + softplus(-3.0)) / 2
    assert g_nonsaturating_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)
    # at logit 0 both are log 2 per term
    zero = torch.zeros(4, 1)
    assert d_logistic_loss(zero, zero).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_logistic_losses_are_stable_for_large_logits():
    big = torch.tensor([[200.0]])
    assert d_logistic_loss(big, -big).item() == pytest.approx(0.0, abs=1e-6)
    assert g_nonsaturating_loss(-big).item() == pytest.approx(200.0, rel=1e-6)
    fake = torch.tensor([[-200.0]], requires_grad=True)
    g_nonsaturating_loss(fake).backward()
    assert fake.grad.item() == pytest.approx(-1.0)  # non-saturating: full gradient when D wins


def test_r1_is_zero_for_a_constant_discriminator_and_norm_squared_for_a_linear_one():
    img = torch.randn(3, 3, 8, 8, requires_grad=True)
    disc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    with torch.no_grad():
        disc[1].weight.zero_()
        disc[1].bias.fill_(1.5)
    assert r1_penalty(disc(img), img).item() == 0.0
    with torch.no_grad():
        disc[1].weight.copy_(torch.randn_like(disc[1].weight))
    expected = disc[1].weight.pow(2).sum().item()  # the gradient of w.x is w for every sample
    penalty = r1_penalty(disc(img), img)
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    penalty.backward()  # trains D: create_graph=True reaches the weights
    assert torch.allclose(disc[1].weight.grad, 2 * disc[1].weight, rtol=1e-5)


def test_r1_explains_a_missing_requires_grad():
    img = torch.randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(img.sum().reshape(1, 1), img)


def test_lazy_r1_weight_follows_stylegan2():
    assert r1_weight(GANRegConfig()) == 10.0 / 2 * 16


def _linear_generator(batch=2, n_latent=3, dim=4, size=4):
    torch.manual_seed(0)
    mix = torch.randn(3 * size * size, n_latent * dim, requires_grad=True)
    latents = torch.randn(batch, n_latent, dim, requires_grad=True)
    img = (latents.reshape(batch, -1) @ mix.t()).reshape(batch, 3, size, size)
    return mix, latents, img


def test_path_length_matches_the_jacobian_closed_form():
    mix, latents, img = _linear_generator()
    noise = torch.randn_like(img)
    penalty, new_mean, lengths = path_length_penalty(img, latents, 0.5, decay=0.01, noise=noise)
    # J^T y for a linear map is mix^T y, y = noise / sqrt(H*W)
    y = (noise / 4.0).reshape(2, -1)
    grad = (y @ mix).reshape(2, 3, 4)
    expected = grad.pow(2).sum(2).mean(1).sqrt()
    assert torch.allclose(lengths, expected, rtol=1e-5)
    mean = 0.5 + 0.01 * (expected.mean().item() - 0.5)
    assert new_mean.item() == pytest.approx(mean, rel=1e-5)
    assert penalty.item() == pytest.approx((expected - mean).pow(2).mean().item(), rel=1e-5)
    penalty.backward()
    assert mix.grad is not None and torch.count_nonzero(mix.grad) > 0


def test_path_length_module_keeps_its_running_mean_in_state_dict():
    reg = PathLengthPenalty(decay=0.1)
    mix, latents, img = _linear_generator()
    gen = torch.Generator().manual_seed(5)
    _, batch_mean = reg(img, latents, generator=gen)
    assert reg.mean.item() == pytest.approx(0.1 * batch_mean.item(), rel=1e-6)
    restored = PathLengthPenalty(decay=0.1)
    restored.load_state_dict(reg.state_dict())
    assert torch.equal(restored.mean, reg.mean)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    p1, _ = reg(img, latents, generator=g1)
    p2, _ = restored(img, latents, generator=g2)
    assert torch.equal(p1, p2) and torch.equal(reg.mean, restored.mean)
