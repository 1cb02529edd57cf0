"""Latent encoder E: IResNet backbone + map2style heads -> W+."""

import dataclasses

import pytest
import torch

from sserd_cli.errors import SserdError
from sserd_cli.nets.encoder import BACKBONES, EncoderConfig, IResNet, LatentEncoder


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run fastest on one thread; on a busy machine two-thread barriers stall."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small(size=64, n_latent=10, **kw):
    return LatentEncoder(EncoderConfig(size=size, n_latent=n_latent, style_dim=32, backbone="small", **kw))


def test_small_encoder_shape_and_latent_avg():
    enc = small().eval()
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    out = enc(img)
    assert out.shape == (2, 10, 32)
    avg = torch.randn(32)
    enc.set_latent_avg(avg)
    torch.testing.assert_close(enc(img) - out, avg.expand(2, 10, 32))
    rows = torch.randn(10, 32)
    enc.set_latent_avg(rows)
    assert torch.equal(enc.latent_avg, rows)
    enc.set_latent_avg(avg[None])  # G.mean_latent() gives [1, D]
    assert torch.equal(enc.latent_avg[3], avg)
    with pytest.raises(ValueError, match="latent_avg"):
        enc.set_latent_avg(torch.randn(9, 32))
    assert "latent_avg" in enc.state_dict()


def test_iresnet50_layout_and_shapes():
    """The paper's backbone: [3, 4, 14, 3] IBasicBlocks (narrowed here so the test stays fast)."""
    assert BACKBONES["iresnet50"][0] == (3, 4, 14, 3)
    enc = LatentEncoder(EncoderConfig(size=64, n_latent=10, style_dim=32, backbone="iresnet50", base_channels=8, head_channels=16))
    stages = [enc.backbone.layer1, enc.backbone.layer2, enc.backbone.layer3, enc.backbone.layer4]
    assert [len(s) for s in stages] == [3, 4, 14, 3]
    block = enc.backbone.layer3[0]
    assert [type(m).__name__ for m in block.children()][:6] == ["BatchNorm2d", "Conv2d", "BatchNorm2d", "PReLU", "Conv2d", "BatchNorm2d"]
    assert enc.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10, 32)


def test_default_iresnet50_stage_resolutions_on_meta():
    with torch.device("meta"):
        trunk = IResNet(BACKBONES["iresnet50"][0])
        feats = trunk(torch.empty(1, 3, 256, 256))
        enc = LatentEncoder(EncoderConfig())
        assert enc(torch.empty(1, 3, 256, 256)).shape == (1, 14, 512)
    # fine / medium / coarse maps as in pSp (64, 32, 16 at a 256 input)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 128, 128), (128, 64, 64), (256, 32, 32), (512, 16, 16)]


def test_input_is_resized_to_the_encoder_size():
    enc = small().eval()
    big = torch.rand(1, 3, 128, 128) * 2 - 1
    out = enc(big)
    assert out.shape == (1, 10, 32)
    resized = torch.nn.functional.interpolate(big, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(out, enc(resized))


def test_gradients_flow_to_input_and_all_stages():
    enc = small().train()
    img = torch.randn(2, 3, 64, 64, requires_grad=True)
    enc(img).square().mean().backward()
    assert img.grad.abs().sum() > 0
    for name in ["backbone.conv1.weight", "backbone.layer1.0.conv1.weight", "backbone.layer4.0.conv2.weight",
                 "lateral_fine.weight", "styles.0.linear.weight", "styles.9.convs.0.weight"]:
        grad = dict(enc.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_heads_read_coarse_medium_fine_maps():
    enc = small(n_latent=10)
    assert enc.n_coarse == 3 and enc.n_medium == 4
    # 64 input: coarse 4x4 -> 2 halvings, medium 8x8 -> 3, fine 16x16 -> 4
    assert [len(enc.styles[i].convs) // 2 for i in (0, 3, 7)] == [2, 3, 4]


def test_config_roundtrip_and_errors():
    cfg = EncoderConfig(size=128, n_latent=12, backbone="small")
    assert EncoderConfig(**dataclasses.asdict(cfg)) == cfg
    with pytest.raises(SserdError, match="backbone"):
        LatentEncoder(EncoderConfig(backbone="resnet9000"))
    with pytest.raises(SserdError, match="power of two"):
        LatentEncoder(EncoderConfig(size=100, backbone="small"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_encoder_autocast_cuda():
    enc = small().cuda().eval()
    img = torch.randn(2, 3, 64, 64, device="cuda")
    ref = enc(img)
    with torch.autocast("cuda", dtype=torch.float16):
        amp = enc(img)
    torch.testing.assert_close(amp.float(), ref, rtol=0.05, atol=0.05)
