"""Ranger (RAdam + Lookahead + gradient centralisation): correctness and exact resume."""

import io

import pytest
import torch
import torch.nn as nn

from sserd_cli.training.ranger import Ranger


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))


def _batch(step):
    gen = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 5, generator=gen)
    return x, x[:, :1] * 2 - x[:, 1:2] + 0.5


def _train(model, opt, steps, start=0):
    for step in range(start, start + steps):
        x, y = _batch(step)
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def test_ranger_decreases_a_quadratic():
    torch.manual_seed(0)
    a = torch.randn(4, 4) + 3 * torch.eye(4)
    x_star = torch.tensor([1.0, -2.0, 0.5, 3.0])
    x = torch.zeros(4, requires_grad=True)
    opt = Ranger([x], lr=0.05)

    def loss():
        return (a @ (x - x_star)).pow(2).sum()

    start = loss().item()
    for _ in range(1000):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 1e-3 * start
    assert torch.allclose(x.detach(), x_star, atol=0.05)


def test_resume_from_state_dict_is_bit_exact():
    steps = 20  # crosses RAdam's rectification threshold and three Lookahead syncs (k=6)
    straight = _model()
    opt = Ranger(straight.parameters(), lr=1e-2)
    _train(straight, opt, steps)

    first = _model()
    opt_first = Ranger(first.parameters(), lr=1e-2)
    _train(first, opt_first, steps // 2)
    buffer = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt_first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed = _model(seed=123)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(saved["model"])
    opt_resumed = Ranger(resumed.parameters(), lr=1e-2)
    opt_resumed.load_state_dict(saved["opt"])
    _train(resumed, opt_resumed, steps - steps // 2, start=steps // 2)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


def test_without_gc_and_lookahead_it_is_radam():
    ours_model, ref_model = _model(), _model()
    ours = Ranger(ours_model.parameters(), lr=1e-2, alpha=1.0, use_gc=False)  # alpha=1: slow = fast
    ref = torch.optim.RAdam(ref_model.parameters(), lr=1e-2, betas=(0.95, 0.999), eps=1e-5)
    _train(ours_model, ours, 15)
    _train(ref_model, ref, 15)
    for p, q in zip(ours_model.parameters(), ref_model.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7)


def test_lookahead_pulls_back_halfway_every_k_steps():
    c = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    w_fast = torch.zeros(2, 2, requires_grad=True)
    w_look = torch.zeros(2, 2, requires_grad=True)
    fast = Ranger([w_fast], lr=0.1, alpha=1.0, k=3, use_gc=False)
    look = Ranger([w_look], lr=0.1, alpha=0.5, k=3, use_gc=False)
    for _ in range(3):  # constant gradient c: both see the same gradients until the sync
        for w, opt in ((w_fast, fast), (w_look, look)):
            opt.zero_grad()
            (w * c).sum().backward()
            opt.step()
    assert torch.allclose(w_look, 0.5 * w_fast, rtol=1e-6)  # slow (0) + 0.5 * (fast - 0)


def test_gradient_centralisation_removes_the_row_mean_of_matrix_gradients():
    c = torch.tensor([[1.0, 3.0], [2.0, 6.0]])
    w = torch.zeros(2, 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    opt = Ranger([w, b], lr=0.1)
    ((w * c).sum() + (b * torch.tensor([1.0, 3.0])).sum()).backward()
    opt.step()  # first step is the un-adapted momentum step: -lr * grad
    centred = c - c.mean(dim=1, keepdim=True)
    assert torch.allclose(w, -0.1 * centred, rtol=1e-6)
    assert torch.allclose(b, -0.1 * torch.tensor([1.0, 3.0]), rtol=1e-6)  # 1-D: left alone


def test_invalid_hyper_parameters_are_refused():
    p = [torch.zeros(1, requires_grad=True)]
    for kwargs in ({"lr": 0.0}, {"alpha": 1.5}, {"k": 0}, {"betas": (1.0, 0.9)}, {"eps": 0.0}):
        with pytest.raises(ValueError):
            Ranger(p, **kwargs)
