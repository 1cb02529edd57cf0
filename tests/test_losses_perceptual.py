"""VGG19 / LPIPS perceptual losses: torchvision- and lpips-format weight files, fallback."""

import argparse

import pytest
import torch
from safetensors.torch import save_file

from sserd_cli.errors import SserdError
from sserd_cli.losses.perceptual import (
    ENV_LPIPS,
    ENV_VGG16,
    ENV_VGG19,
    LPIPS,
    LPIPS_CHANNELS,
    VGG_LAYOUTS,
    PerceptualFallbackWarning,
    VGG19Features,
    load_perceptual,
    relu_indices,
)


def torchvision_vgg_state(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """What torchvision.models.<arch>().state_dict() holds for ``features`` (names, shapes),
    plus the last classifier layer (extra keys a real file has and the loader ignores)."""
    gen = torch.Generator().manual_seed(seed)
    state, index, channels = {}, 0, 3
    for item in VGG_LAYOUTS[arch]:
        if item == "M":
            index += 1
            continue
        std = (2.0 / (channels * 9)) ** 0.5
        state[f"features.{index}.weight"] = torch.randn(item, channels, 3, 3, generator=gen) * std
        state[f"features.{index}.bias"] = torch.randn(item, generator=gen) * 0.01
        channels, index = item, index + 2
    state["classifier.6.weight"] = torch.zeros(10, 4096)
    state["classifier.6.bias"] = torch.zeros(10)
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    vgg19 = torchvision_vgg_state("vgg19", 1)
    vgg16 = torchvision_vgg_state("vgg16", 2)
    gen = torch.Generator().manual_seed(3)
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for k, c in enumerate(LPIPS_CHANNELS)}
    files = {
        "vgg19_pth": root / "vgg19.pth",
        "vgg19_st": root / "vgg19.safetensors",
        "vgg16_pth": root / "vgg16.pth",
        "heads": root / "vgg.pth",
    }
    torch.save(vgg19, files["vgg19_pth"])
    save_file(vgg19, str(files["vgg19_st"]))
    torch.save(vgg16, files["vgg16_pth"])
    torch.save(heads, files["heads"])
    return {"files": files, "vgg19": vgg19, "vgg16": vgg16, "heads": heads}


@pytest.fixture(autouse=True)
def _no_weight_env(monkeypatch):
    for name in (ENV_VGG19, ENV_VGG16, ENV_LPIPS):
        monkeypatch.delenv(name, raising=False)


def _images(seed=0, n=2, size=16):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


def test_relu_indices_follow_torchvision_layout():
    assert [relu_indices("vgg19")[t] for t in ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")] == [3, 8, 17, 26, 35]
    assert [relu_indices("vgg16")[t] for t in ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")] == [3, 8, 15, 22, 29]


@pytest.mark.parametrize("key", ["vgg19_pth", "vgg19_st"])
def test_vgg19_loads_a_torchvision_state_dict(weights, key):
    path = weights["files"][key]
    loss, description = load_perceptual("vgg19", str(path))
    assert not loss.is_fallback and str(path) in description and "fallback" not in description
    params = loss.net.state_dict()
    assert set(params) == {k for k in weights["vgg19"] if k.startswith("features.")}
    assert torch.equal(params["features.34.weight"], weights["vgg19"]["features.34.weight"])
    feats = loss.net(_images(size=32))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]


def test_vgg19_file_from_environment(weights, monkeypatch):
    monkeypatch.setenv(ENV_VGG19, str(weights["files"]["vgg19_st"]))
    loss, description = load_perceptual("vgg19")
    assert not loss.is_fallback and ENV_VGG19 in description
    monkeypatch.setenv(ENV_VGG19, str(weights["files"]["vgg19_st"]) + ".missing")
    with pytest.raises(SserdError, match=ENV_VGG19):
        load_perceptual("vgg19")


def test_vgg19_rejects_wrong_files_with_a_clear_error(weights, tmp_path):
    with pytest.raises(SserdError, match=r"not a torchvision vgg19 state dict.*features\.16\.weight.*13 conv layers"):
        load_perceptual("vgg19", str(weights["files"]["vgg16_pth"]))  # a VGG16 file
    bad = dict(weights["vgg19"])
    bad["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(bad, tmp_path / "gray.pth")
    with pytest.raises(SserdError, match=r"features\.0\.weight.*\[64, 1, 3, 3\].*\[64, 3, 3, 3\]"):
        load_perceptual("vgg19", str(tmp_path / "gray.pth"))
    # a training checkpoint that needs a full unpickle is refused, never executed
    torch.save({"args": argparse.Namespace(lr=1.0), "features.0.weight": torch.zeros(1)}, tmp_path / "ckpt.pt")
    with pytest.raises(SserdError, match="weights-only"):
        load_perceptual("vgg19", str(tmp_path / "ckpt.pt"))
    with pytest.raises(SserdError, match="not found"):
        load_perceptual("vgg19", str(tmp_path / "nope.pth"))
    with pytest.raises(SserdError, match="vgg19 or lpips"):
        load_perceptual("alexnet")


def test_vgg_perceptual_loss_is_zero_for_identical_images_and_differentiable(weights):
    loss, _ = load_perceptual("vgg19", str(weights["files"]["vgg19_st"]))
    a, b = _images(0), _images(1)
    assert loss(a, a).item() == 0.0
    a.requires_grad_(True)
    value = loss(a, b)
    value.backward()
    assert value.item() > 0 and a.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    per_sample = loss(a.detach(), b, reduction="none")
    assert per_sample.shape == (2,) and torch.allclose(per_sample.mean(), value.detach())


def test_fallback_is_reported_and_deterministic():
    with pytest.warns(PerceptualFallbackWarning, match="vgg19-random"):
        loss, description = load_perceptual("vgg19", None)
    assert loss.is_fallback and "fallback" in description and loss.description == description
    with pytest.warns(PerceptualFallbackWarning):
        again, _ = load_perceptual("vgg19")
    assert torch.equal(loss.net.features[0].weight, again.net.features[0].weight)
    a, b = _images(0), _images(1)
    assert loss(a, b).item() > 0 and loss(a, a).item() == 0.0
    with pytest.warns(PerceptualFallbackWarning, match="lpips-random"):
        lp, lp_description = load_perceptual("lpips")
    assert lp.is_fallback and "uniform heads" in lp_description


def test_lpips_official_format_identical_is_zero_different_is_positive(weights):
    files = weights["files"]
    lp, description = load_perceptual("lpips", str(files["heads"]), vgg16_path=str(files["vgg16_pth"]))
    assert not lp.is_fallback and str(files["heads"]) in description
    assert torch.equal(lp.lins[3].weight, weights["heads"]["lin3.model.1.weight"])
    a, b = _images(0), _images(1)
    assert lp(a, a).item() == 0.0
    d = lp(a, b, reduction="none")
    assert d.shape == (2,) and bool((d > 0).all())
    # independent computation of the definition: unit-normalise over channels, weighted
    # squared difference, spatial mean, sum over layers
    feats_a, feats_b = lp.net(a), lp.net(b)
    expected = torch.zeros(2)
    for k, (fa, fb) in enumerate(zip(feats_a, feats_b)):
        na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = weights["heads"][f"lin{k}.model.1.weight"].view(1, -1, 1, 1)
        expected += ((na - nb).pow(2) * w).sum(1).mean((1, 2))
    assert torch.allclose(d, expected, rtol=1e-4)


def test_lpips_full_state_dict_and_environment(weights, tmp_path, monkeypatch):
    # a full lpips.LPIPS(net='vgg') state dict: net.sliceK.N.* trunk + linK heads + scaling buffers
    slices = [(1, 0, 4), (2, 4, 9), (3, 9, 16), (4, 16, 23), (5, 23, 30)]
    full = {"scaling_layer.shift": torch.zeros(1, 3, 1, 1), "scaling_layer.scale": torch.ones(1, 3, 1, 1)}
    for key, value in weights["vgg16"].items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            k = next(s for s, lo, hi in slices if lo <= index < hi)
            full[f"net.slice{k}.{index}.{key.split('.')[2]}"] = value
    full.update(weights["heads"])
    torch.save(full, tmp_path / "lpips_full.pth")
    monkeypatch.setenv(ENV_LPIPS, str(tmp_path / "lpips_full.pth"))
    lp, description = load_perceptual("lpips")
    assert not lp.is_fallback and ENV_LPIPS in description
    assert torch.equal(lp.net.features[28].weight, weights["vgg16"]["features.28.weight"])


def test_lpips_rejects_heads_without_trunk_and_foreign_heads(weights, tmp_path):
    with pytest.raises(SserdError, match=ENV_VGG16):
        load_perceptual("lpips", str(weights["files"]["heads"]))
    alex = dict(weights["heads"])
    alex["lin1.model.1.weight"] = torch.rand(1, 192, 1, 1)
    torch.save(alex, tmp_path / "alex.pth")
    with pytest.raises(SserdError, match=r"lin1\.model\.1\.weight.*\[1, 128, 1, 1\]"):
        load_perceptual("lpips", str(tmp_path / "alex.pth"), vgg16_path=str(weights["files"]["vgg16_pth"]))


def test_lpips_with_trunk_but_no_heads_is_a_reported_fallback(weights):
    with pytest.warns(PerceptualFallbackWarning, match="uncalibrated"):
        lp, description = load_perceptual("lpips", None, vgg16_path=str(weights["files"]["vgg16_pth"]))
    assert lp.is_fallback and "uncalibrated" in description
    assert isinstance(lp, LPIPS)


def test_vgg19_features_state_dict_names_match_torchvision():
    names = list(VGG19Features().state_dict())
    assert names[:2] == ["features.0.weight", "features.0.bias"] and names[-1] == "features.34.bias"
    assert len(names) == 32


def test_losses_stay_float32_and_finite_under_autocast():
    with pytest.warns(PerceptualFallbackWarning):
        criteria = [load_perceptual("vgg19")[0], load_perceptual("lpips")[0]]
    a, b = _images(0), _images(1)
    for criterion in criteria:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value, same = criterion(a, b), criterion(a, a)
        assert value.dtype == torch.float32 and torch.isfinite(value) and value.item() > 0
        assert same.item() == 0.0
