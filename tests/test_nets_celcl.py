"""CELCL (eq. 2-4): cross-attention from source to reference code, FFN, two transformer layers."""

import dataclasses

import pytest
import torch

from sserd_cli.nets.celcl import CELCL, CELCLConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run fastest on one thread; on a busy machine two-thread barriers stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cfg(**kw):
    return CELCLConfig(n_latent=6, style_dim=32, heads=4, ffn_dim=64, **kw)


def test_untrained_module_is_the_identity_edit():
    m = CELCL(cfg())
    w_s = torch.randn(3, 6, 32)
    assert torch.equal(m.edit(w_s, w_s), w_s)  # reference equal to source
    assert torch.equal(m.edit(w_s, torch.randn(3, 6, 32), strength=2.0), w_s)


def test_shapes_strength_and_reference_broadcast():
    m = CELCL(cfg(zero_init=False)).eval()
    w_s, w_r = torch.randn(4, 6, 32), torch.randn(1, 6, 32)
    w_e = m(w_s, w_r)
    assert w_e.shape == w_s.shape and w_e.abs().sum() > 0
    torch.testing.assert_close(m(w_s, w_r.expand(4, -1, -1)), w_e)
    torch.testing.assert_close(m.edit(w_s, w_r, 0.5), w_s + 0.5 * w_e)
    torch.testing.assert_close(m.edit(w_s, w_r, 0.0), w_s)
    with pytest.raises(ValueError, match="must both be"):
        m(torch.randn(2, 5, 32), torch.randn(2, 5, 32))


def test_query_comes_from_source_and_keys_values_from_reference():
    m = CELCL(cfg(zero_init=False)).eval()
    w_s, w_r = torch.randn(2, 6, 32), torch.randn(2, 6, 32)
    base = m(w_s, w_r)
    assert not torch.allclose(m(w_s, torch.randn(2, 6, 32)), base)  # the reference matters
    assert not torch.allclose(m(torch.randn(2, 6, 32), w_r), base)  # the source matters
    att = m.attention
    assert att.q is not att.k and att.k is not att.v
    assert all(layer.bias is not None for layer in (att.q, att.k, att.v))


def test_attention_matches_torch_multihead_attention():
    """The explicit eq. 2 + scaled dot-product heads equal nn.MultiheadAttention with the same weights."""
    m = CELCL(cfg())
    att = m.attention
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([att.q.weight, att.k.weight, att.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([att.q.bias, att.k.bias, att.v.bias]))
        ref.out_proj.weight.copy_(att.out.weight)
        ref.out_proj.bias.copy_(att.out.bias)
    w_s, w_r = torch.randn(2, 6, 32), torch.randn(2, 6, 32)
    expected, _ = ref(w_s, w_r, w_r, need_weights=False)
    torch.testing.assert_close(att(w_s, w_r), expected, rtol=1e-5, atol=1e-5)


def test_structure_follows_the_paper():
    m = CELCL(cfg())
    assert len(m.transformer) == 2
    assert sum(isinstance(x, torch.nn.Linear) for x in m.ffn) == 2


def test_gradients_flow():
    m = CELCL(cfg(zero_init=False)).train()
    w_s = torch.randn(2, 6, 32, requires_grad=True)
    w_r = torch.randn(2, 6, 32, requires_grad=True)
    m.edit(w_s, w_r).square().mean().backward()
    assert w_s.grad.abs().sum() > 0 and w_r.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # zero-initialised output still learns: its own gradient is non-zero from step one
    z = CELCL(cfg())
    (z(w_s.detach(), w_r.detach()) - 1).square().mean().backward()
    assert z.out.weight.grad.abs().sum() > 0 and z.out.bias.grad.abs().sum() > 0


def test_config_roundtrip():
    c = cfg(dropout=0.1)
    assert CELCLConfig(**dataclasses.asdict(c)) == c
