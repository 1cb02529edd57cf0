"""StyleGAN2 generator / discriminator: shapes, rosinality layout, noise, truncation, gradients."""

import copy
import dataclasses

import pytest
import torch

from sserd_cli.errors import SserdError
from sserd_cli.nets.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    accumulate,
    channel_table,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run fastest on one thread; on a busy machine two-thread barriers stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_g(size=64, **kw):
    return Generator(GeneratorConfig(size=size, style_dim=32, n_mlp=2, channel_max=16, **kw))


def tiny_d(size=64):
    return Discriminator(DiscriminatorConfig(size=size, channel_max=16))


@pytest.mark.parametrize("size,n_latent", [(64, 10), (256, 14)])
def test_generator_shapes(size, n_latent):
    g = tiny_g(size)
    assert g.n_latent == n_latent == 2 * (size.bit_length() - 1) - 2
    z = torch.randn(2, 32)
    w = g.mapping(z)
    assert w.shape == (2, 32)
    img = g.synthesis(w[:, None].repeat(1, n_latent, 1), noise_mode="const")
    assert img.shape == (2, 3, size, size) and torch.isfinite(img).all()
    img2, latent = g(z, return_latents=True)
    assert img2.shape == img.shape and latent.shape == (2, n_latent, 32)
    assert g.mean_latent(64).shape == (1, 32)
    d = tiny_d(size)
    assert d(img).shape == (2, 1)


def test_1024_shapes_on_meta_device():
    """Full-size config-f at 1024 (30.37M / 29.01M parameters as rosinality) without allocating memory."""
    with torch.device("meta"):
        g = Generator(GeneratorConfig(size=1024))
        d = Discriminator(DiscriminatorConfig(size=1024))
        assert g.n_latent == 18
        img = g.synthesis(torch.empty(1, 18, 512), noise_mode="random")
        assert img.shape == (1, 3, 1024, 1024)
        assert d(img).shape == (1, 1)
    assert sum(p.numel() for p in g.parameters()) == 30_370_060
    assert sum(p.numel() for p in d.parameters()) == 29_012_513
    assert getattr(g.noises, "noise_16").shape == (1, 1, 1024, 1024)


# rosinality/stylegan2-pytorch Generator(64, 512, 8) state dict, written out by hand.
ROSINALITY_G64 = """
style.1.weight 512,512
style.1.bias 512
style.2.weight 512,512
style.2.bias 512
style.3.weight 512,512
style.3.bias 512
style.4.weight 512,512
style.4.bias 512
style.5.weight 512,512
style.5.bias 512
style.6.weight 512,512
style.6.bias 512
style.7.weight 512,512
style.7.bias 512
style.8.weight 512,512
style.8.bias 512
input.input 1,512,4,4
conv1.conv.weight 1,512,512,3,3
conv1.conv.modulation.weight 512,512
conv1.conv.modulation.bias 512
conv1.noise.weight 1
conv1.activate.bias 512
to_rgb1.bias 1,3,1,1
to_rgb1.conv.weight 1,3,512,1,1
to_rgb1.conv.modulation.weight 512,512
to_rgb1.conv.modulation.bias 512
convs.0.conv.weight 1,512,512,3,3
convs.0.conv.blur.kernel 4,4
convs.0.conv.modulation.weight 512,512
convs.0.conv.modulation.bias 512
convs.0.noise.weight 1
convs.0.activate.bias 512
convs.1.conv.weight 1,512,512,3,3
convs.1.conv.modulation.weight 512,512
convs.1.conv.modulation.bias 512
convs.1.noise.weight 1
convs.1.activate.bias 512
convs.2.conv.weight 1,512,512,3,3
convs.2.conv.blur.kernel 4,4
convs.2.conv.modulation.weight 512,512
convs.2.conv.modulation.bias 512
convs.2.noise.weight 1
convs.2.activate.bias 512
convs.3.conv.weight 1,512,512,3,3
convs.3.conv.modulation.weight 512,512
convs.3.conv.modulation.bias 512
convs.3.noise.weight 1
convs.3.activate.bias 512
convs.4.conv.weight 1,512,512,3,3
convs.4.conv.blur.kernel 4,4
convs.4.conv.modulation.weight 512,512
convs.4.conv.modulation.bias 512
convs.4.noise.weight 1
convs.4.activate.bias 512
convs.5.conv.weight 1,512,512,3,3
convs.5.conv.modulation.weight 512,512
convs.5.conv.modulation.bias 512
convs.5.noise.weight 1
convs.5.activate.bias 512
convs.6.conv.weight 1,512,512,3,3
convs.6.conv.blur.kernel 4,4
convs.6.conv.modulation.weight 512,512
convs.6.conv.modulation.bias 512
convs.6.noise.weight 1
convs.6.activate.bias 512
convs.7.conv.weight 1,512,512,3,3
convs.7.conv.modulation.weight 512,512
convs.7.conv.modulation.bias 512
convs.7.noise.weight 1
convs.7.activate.bias 512
to_rgbs.0.bias 1,3,1,1
to_rgbs.0.upsample.kernel 4,4
to_rgbs.0.conv.weight 1,3,512,1,1
to_rgbs.0.conv.modulation.weight 512,512
to_rgbs.0.conv.modulation.bias 512
to_rgbs.1.bias 1,3,1,1
to_rgbs.1.upsample.kernel 4,4
to_rgbs.1.conv.weight 1,3,512,1,1
to_rgbs.1.conv.modulation.weight 512,512
to_rgbs.1.conv.modulation.bias 512
to_rgbs.2.bias 1,3,1,1
to_rgbs.2.upsample.kernel 4,4
to_rgbs.2.conv.weight 1,3,512,1,1
to_rgbs.2.conv.modulation.weight 512,512
to_rgbs.2.conv.modulation.bias 512
to_rgbs.3.bias 1,3,1,1
to_rgbs.3.upsample.kernel 4,4
to_rgbs.3.conv.weight 1,3,512,1,1
to_rgbs.3.conv.modulation.weight 512,512
to_rgbs.3.conv.modulation.bias 512
noises.noise_0 1,1,4,4
noises.noise_1 1,1,8,8
noises.noise_2 1,1,8,8
noises.noise_3 1,1,16,16
noises.noise_4 1,1,16,16
noises.noise_5 1,1,32,32
noises.noise_6 1,1,32,32
noises.noise_7 1,1,64,64
noises.noise_8 1,1,64,64
"""

ROSINALITY_D64 = """
convs.0.0.weight 512,3,1,1
convs.0.1.bias 512
convs.1.conv1.0.weight 512,512,3,3
convs.1.conv1.1.bias 512
convs.1.conv2.0.kernel 4,4
convs.1.conv2.1.weight 512,512,3,3
convs.1.conv2.2.bias 512
convs.1.skip.0.kernel 4,4
convs.1.skip.1.weight 512,512,1,1
convs.2.conv1.0.weight 512,512,3,3
convs.2.conv1.1.bias 512
convs.2.conv2.0.kernel 4,4
convs.2.conv2.1.weight 512,512,3,3
convs.2.conv2.2.bias 512
convs.2.skip.0.kernel 4,4
convs.2.skip.1.weight 512,512,1,1
convs.3.conv1.0.weight 512,512,3,3
convs.3.conv1.1.bias 512
convs.3.conv2.0.kernel 4,4
convs.3.conv2.1.weight 512,512,3,3
convs.3.conv2.2.bias 512
convs.3.skip.0.kernel 4,4
convs.3.skip.1.weight 512,512,1,1
convs.4.conv1.0.weight 512,512,3,3
convs.4.conv1.1.bias 512
convs.4.conv2.0.kernel 4,4
convs.4.conv2.1.weight 512,512,3,3
convs.4.conv2.2.bias 512
convs.4.skip.0.kernel 4,4
convs.4.skip.1.weight 512,512,1,1
final_conv.0.weight 512,513,3,3
final_conv.1.bias 512
final_linear.0.weight 512,8192
final_linear.0.bias 512
final_linear.1.weight 1,512
final_linear.1.bias 1
"""


def _table(text):
    rows = [line.split() for line in text.strip().splitlines()]
    return {name: tuple(int(v) for v in shape.split(",")) for name, shape in rows}


def test_state_dict_layout_is_rosinality():
    with torch.device("meta"):
        g = Generator(GeneratorConfig(size=64))
        d = Discriminator(DiscriminatorConfig(size=64))
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == _table(ROSINALITY_G64)
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == _table(ROSINALITY_D64)


def test_rosinality_style_state_dict_loads_strict_and_reproduces():
    g = tiny_g()
    sd = {k: v.clone() for k, v in g.state_dict().items()}
    g2 = tiny_g()
    g2.load_state_dict(sd, strict=True)
    w = torch.randn(1, g.n_latent, 32)
    torch.testing.assert_close(g2.synthesis(w), g.synthesis(w))


def test_channel_table_defaults_and_cap():
    assert channel_table(1024) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert set(channel_table(256, channel_max=32).values()) == {32}
    assert channel_table(64, channel_multiplier=1)[64] == 256


def test_noise_modes():
    g = tiny_g()
    for conv in [g.conv1, *g.convs]:
        conv.noise.weight.data.fill_(0.5)  # trained models have non-zero noise strength
    w = torch.randn(2, g.n_latent, 32)
    const_a, const_b = g.synthesis(w, noise_mode="const"), g.synthesis(w, noise_mode="const")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(g.synthesis(w, noise_mode="random"), g.synthesis(w, noise_mode="random"))
    none = g.synthesis(w, noise_mode="none")
    zeros = [torch.zeros_like(n) for n in g.make_noise()]
    torch.testing.assert_close(none, g.synthesis(w, noise=zeros))
    assert not torch.allclose(none, const_a)
    # rosinality flag: randomize_noise=False means the stored buffers
    img, _ = g(w, randomize_noise=False)
    assert torch.equal(img, const_a)
    with pytest.raises(ValueError, match="noise_mode"):
        g.synthesis(w, noise_mode="fresh")


def test_truncation():
    g = tiny_g()
    z = torch.randn(2, 32)
    w_avg = g.mean_latent(256)
    plain, lat = g(z, noise_mode="const", return_latents=True)
    same, _ = g(z, noise_mode="const", truncation=1.0, truncation_latent=w_avg)
    assert torch.equal(plain, same)
    _, lat0 = g(z, truncation=0.0, truncation_latent=w_avg, return_latents=True)
    torch.testing.assert_close(lat0, w_avg[:, None].expand(2, g.n_latent, -1))
    _, lat_half = g(z, truncation=0.5, truncation_latent=w_avg, return_latents=True)
    torch.testing.assert_close(lat_half, w_avg + 0.5 * (lat - w_avg))
    with pytest.raises(ValueError, match="truncation_latent"):
        g(z, truncation=0.7)


def test_style_mixing_and_wplus_input():
    g = tiny_g()
    z1, z2 = torch.randn(1, 32), torch.randn(1, 32)
    img, lat = g([z1, z2], inject_index=4, noise_mode="const", return_latents=True)
    w1, w2 = g.mapping(z1), g.mapping(z2)
    assert torch.equal(lat[0, :4], w1.expand(4, -1)) and torch.equal(lat[0, 4:], w2.expand(g.n_latent - 4, -1))
    torch.testing.assert_close(img, g.synthesis(lat, noise_mode="const"))
    # a W+ tensor is taken as latent as is
    img_wplus, _ = g(lat, noise_mode="const")
    torch.testing.assert_close(img_wplus, img)
    img_list, _ = g([lat], input_is_latent=True, randomize_noise=False)
    torch.testing.assert_close(img_list, img)
    with pytest.raises(ValueError, match="W\\+ must have shape"):
        g.synthesis(torch.randn(1, g.n_latent - 1, 32))


def test_gradients_reach_wplus_and_weights():
    g = tiny_g()
    w = torch.randn(2, g.n_latent, 32, requires_grad=True)
    g.synthesis(w, noise_mode="random").square().mean().backward()
    assert w.grad is not None and (w.grad.abs().sum(dim=(0, 2)) > 0).all()  # every W+ row matters
    named = dict(g.named_parameters())
    for name in ["input.input", "conv1.conv.weight", "convs.7.conv.modulation.weight", "to_rgbs.3.bias", "conv1.noise.weight"]:
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name
    # the mapping network trains through forward(z)
    g.zero_grad()
    g(torch.randn(2, 32))[0].mean().backward()
    assert g.style[1].weight.grad.abs().sum() > 0


def test_discriminator_batch_and_gradients():
    d = tiny_d()
    img = torch.randn(6, 3, 64, 64, requires_grad=True)  # 6 is not a multiple of the stddev group 4
    out = d(img)
    assert out.shape == (6, 1)
    out.sum().backward()
    assert img.grad.abs().sum() > 0 and d.convs[0][0].weight.grad.abs().sum() > 0


def test_configs_roundtrip_and_bad_size():
    cfg = GeneratorConfig(size=128, channel_max=64)
    assert GeneratorConfig(**dataclasses.asdict(cfg)) == cfg
    dcfg = DiscriminatorConfig(size=128)
    assert DiscriminatorConfig(**dataclasses.asdict(dcfg)) == dcfg
    with pytest.raises(SserdError, match="power of two"):
        Generator(GeneratorConfig(size=100))
    with pytest.raises(SserdError, match="power of two"):
        Discriminator(DiscriminatorConfig(size=2048))


def test_ema_accumulate():
    g = tiny_g()
    ema = copy.deepcopy(g).requires_grad_(False)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    before = ema.input.input.clone()
    accumulate(ema, g, decay=0.75)
    torch.testing.assert_close(ema.input.input, before + 0.25)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_generator_fp16_cuda_matches_fp32():
    g = tiny_g().cuda()
    w = torch.randn(2, g.n_latent, 32, device="cuda")
    ref = g.synthesis(w, noise_mode="const")
    with torch.autocast("cuda", dtype=torch.float16):
        amp = g.synthesis(w, noise_mode="const")
    half = copy.deepcopy(g).half().synthesis(w.half(), noise_mode="const")
    assert half.dtype == torch.float16
    torch.testing.assert_close(amp.float(), ref, rtol=0.05, atol=0.05)
    torch.testing.assert_close(half.float(), ref, rtol=0.05, atol=0.05)
    d = tiny_d().cuda().half()
    assert d(half).shape == (2, 1)


def _paper_modconv(conv, x, w):
    """The paper's per-sample weights w'_oikk = s_i w_oikk / sqrt(sum (s_i w_oikk)^2 + eps), grouped conv."""
    from torch.nn import functional as F

    b, cin, h, wd = x.shape
    s = conv.modulation(w).view(b, 1, cin, 1, 1)
    weight = conv.weight * conv.scale * s  # [B, out, in, k, k]
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    k = weight.shape[-1]
    if not conv.upsample:
        out = F.conv2d(x.reshape(1, b * cin, h, wd), weight.reshape(-1, cin, k, k), padding=k // 2, groups=b)
        return out.view(b, -1, h, wd)
    wt = weight.transpose(1, 2).reshape(b * cin, -1, k, k)
    out = F.conv_transpose2d(x.reshape(1, b * cin, h, wd), wt, stride=2, groups=b)
    return conv.blur(out.view(b, -1, *out.shape[-2:]))


@pytest.mark.parametrize("index", [0, 1])
def test_modulated_conv_equals_per_sample_weight_formula(index):
    g = tiny_g()
    conv = g.convs[index].conv  # 0: upsampling conv, 1: plain conv
    x = torch.randn(3, 16, 8, 8) if index == 0 else torch.randn(3, 16, 16, 16)
    w = torch.randn(3, 32)
    torch.testing.assert_close(conv(x, w), _paper_modconv(conv, x, w), rtol=1e-4, atol=1e-5)
    rgb = g.to_rgbs[0].conv
    torch.testing.assert_close(rgb(x, w), _paper_modconv(rgb, x, w), rtol=1e-4, atol=1e-5)


def test_half_precision_runs_and_stays_close():
    """float16 weights and activations (the CPU kernels exist in recent torch; CUDA is the real use)."""
    g = tiny_g(size=16)  # CPU float16 convolutions are slow: keep it tiny
    w = torch.randn(2, g.n_latent, 32)
    ref = g.synthesis(w, noise_mode="const")
    half = copy.deepcopy(g).half().synthesis(w.half(), noise_mode="const")
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), ref, rtol=0.05, atol=0.05)
    assert tiny_d(size=16).half()(half).dtype == torch.float16


def test_double_backward_for_r1_and_path_length():
    """R1 (grad of D w.r.t. images) and path length (grad of G w.r.t. W+) need second-order gradients."""
    d = tiny_d()
    real = torch.randn(2, 3, 64, 64, requires_grad=True)
    (grad_real,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    grad_real.pow(2).sum().backward()
    assert d.convs[1].conv1[0].weight.grad.abs().sum() > 0

    g = tiny_g()
    w = torch.randn(2, g.n_latent, 32, requires_grad=True)
    img = g.synthesis(w, noise_mode="random")
    (grad_w,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), w, create_graph=True)
    grad_w.pow(2).sum().backward()
    assert g.convs[2].conv.weight.grad.abs().sum() > 0
