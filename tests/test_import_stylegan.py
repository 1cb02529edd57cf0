"""Import of rosinality .pt and NVlabs .pkl StyleGAN2 weights.

The fixtures are tiny (32 px, 8 channels, style_dim 16) but format-faithful: the
same key names, shapes and pickle structure as the real files (a torch.save'd
checkpoint dict with an argparse Namespace; an NVlabs pickle of
``torch_utils.persistence`` objects with embedded source, written while a fake
``torch_utils.persistence`` module is registered). Each imported generator is
compared against a forward pass written here from the format's own semantics.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sserd_cli.bundles import load_bundle
from sserd_cli.cli import run

RES, D, C, N_MLP, LR_MLP = 32, 16, 8, 2, 0.01
RESOLUTIONS = [4, 8, 16, 32]
N_LATENT = 2 * int(math.log2(RES)) - 2  # 8
SQRT2 = math.sqrt(2.0)


# ------------------------------------------------------------------------------------------ helpers


def fir_filter() -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[:, None] * k[None, :]
    return k / k.sum()


def upfirdn(x: torch.Tensor, kernel: torch.Tensor, up: int, pad0: int, pad1: int) -> torch.Tensor:
    """Zero-insertion upsampling, padding, true convolution with ``kernel`` (gain included)."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    k = kernel.flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


def grouped_modconv(x, weight, styles, demodulate, up=1, padding=0, fir=None, fir_pads=(0, 0)):
    """Per-sample weights as one grouped convolution (the fused path of both reference codes).

    ``weight`` [O, I, k, k] already carries any gain. With ``up=2`` the convolution is transposed
    with stride 2 using the unflipped weight, then FIR-filtered with ``fir`` (gain included).
    """
    batch, _, h, w_ = x.shape
    out_ch, in_ch, kh, kw = weight.shape
    w = weight[None] * styles.reshape(batch, 1, in_ch, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(batch, out_ch, 1, 1, 1)
    x = x.reshape(1, batch * in_ch, h, w_)
    if up == 1:
        x = F.conv2d(x, w.reshape(batch * out_ch, in_ch, kh, kw), padding=padding, groups=batch)
    else:
        wt = w.transpose(1, 2).reshape(batch * in_ch, out_ch, kh, kw)
        x = F.conv_transpose2d(x, wt, stride=up, groups=batch)
        x = upfirdn(x, fir, 1, *fir_pads)
    return x.reshape(batch, out_ch, *x.shape[2:])


# ------------------------------------------------------------------------------- rosinality fixture


def rosinality_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """A g_ema state dict with rosinality's keys and shapes (random, every term non-zero)."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    sd: dict[str, torch.Tensor] = {}
    for i in range(1, N_MLP + 1):
        sd[f"style.{i}.weight"] = r(D, D) / LR_MLP
        sd[f"style.{i}.bias"] = 0.1 * r(D)
    sd["input.input"] = r(1, C, 4, 4)

    def styled(prefix, up):
        sd[f"{prefix}.conv.weight"] = r(1, C, C, 3, 3)
        sd[f"{prefix}.conv.modulation.weight"] = r(C, D)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + 0.1 * r(C)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = fir_filter() * 4
        sd[f"{prefix}.noise.weight"] = 0.3 * r(1)
        sd[f"{prefix}.activate.bias"] = 0.1 * r(C)

    def rgb(prefix, up):
        sd[f"{prefix}.conv.weight"] = r(1, 3, C, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = r(C, D)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + 0.1 * r(C)
        sd[f"{prefix}.bias"] = 0.1 * r(1, 3, 1, 1)
        if up:
            sd[f"{prefix}.upsample.kernel"] = fir_filter() * 4

    styled("conv1", False)
    rgb("to_rgb1", False)
    for j in range(len(RESOLUTIONS) - 1):
        styled(f"convs.{2 * j}", True)
        styled(f"convs.{2 * j + 1}", False)
        rgb(f"to_rgbs.{j}", True)
    for i in range(2 * len(RESOLUTIONS) - 1):
        res = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = r(1, 1, res, res)
    return sd


def write_rosinality_checkpoint(path, legacy: bool = False) -> dict:
    """A training checkpoint as rosinality's train.py saves it."""
    g_ema, g = rosinality_state_dict(0), rosinality_state_dict(1)
    d = {"convs.0.0.weight": torch.randn(C, 3, 1, 1), "convs.0.1.bias": torch.zeros(C),
         "final_linear.1.weight": torch.randn(1, C), "final_linear.1.bias": torch.zeros(1)}
    # torch.optim.Adam(...).state_dict() after one step (built by hand: a real step costs seconds of imports)
    g_optim = {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.randn(v.shape),
                             "exp_avg_sq": torch.rand(v.shape)} for i, v in enumerate(list(g.values())[:3])},
               "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                                 "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                                 "fused": None, "params": [0, 1, 2]}]}
    latent_avg = torch.randn(D)
    ckpt = {"g": g, "d": d, "g_ema": g_ema, "g_optim": g_optim, "d_optim": g_optim,
            "args": argparse.Namespace(path="lmdb/ffhq", size=RES, channel_multiplier=2, batch=16, r1=10.0,
                                       iter=800000, wandb=False, local_rank=0, distributed=False),
            "latent_avg": latent_avg}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return {"g_ema": g_ema, "latent_avg": latent_avg}


def rosinality_mapping(sd, z):
    x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, N_MLP + 1):
        weight = sd[f"style.{i}.weight"]
        x = F.linear(x, weight * (LR_MLP / math.sqrt(weight.shape[1])))
        x = F.leaky_relu(x + sd[f"style.{i}.bias"] * LR_MLP, 0.2) * SQRT2
    return x


def rosinality_synthesis(sd, wplus):
    """rosinality's Generator.forward on W+ with the stored noise (randomize_noise=False)."""

    def modulation(prefix, w):
        weight = sd[f"{prefix}.modulation.weight"]
        return F.linear(w, weight / math.sqrt(weight.shape[1]), sd[f"{prefix}.modulation.bias"])

    def styled(x, prefix, w, noise, up):
        weight = sd[f"{prefix}.conv.weight"][0]
        scale = 1 / math.sqrt(weight.shape[1] * 9)
        x = grouped_modconv(x, weight * scale, modulation(f"{prefix}.conv", w), True, up=2 if up else 1,
                            padding=1, fir=sd.get(f"{prefix}.conv.blur.kernel"), fir_pads=(1, 1))
        x = x + sd[f"{prefix}.noise.weight"] * noise
        return F.leaky_relu(x + sd[f"{prefix}.activate.bias"].view(1, -1, 1, 1), 0.2) * SQRT2

    def to_rgb(x, prefix, w, skip):
        weight = sd[f"{prefix}.conv.weight"][0]
        out = grouped_modconv(x, weight / math.sqrt(weight.shape[1]), modulation(f"{prefix}.conv", w), False)
        out = out + sd[f"{prefix}.bias"]
        if skip is not None:
            out = out + upfirdn(skip, sd[f"{prefix}.upsample.kernel"], 2, 2, 1)
        return out

    x = sd["input.input"].repeat(wplus.shape[0], 1, 1, 1)
    x = styled(x, "conv1", wplus[:, 0], sd["noises.noise_0"], False)
    skip = to_rgb(x, "to_rgb1", wplus[:, 1], None)
    i = 1
    for j in range(len(RESOLUTIONS) - 1):
        x = styled(x, f"convs.{2 * j}", wplus[:, i], sd[f"noises.noise_{2 * j + 1}"], True)
        x = styled(x, f"convs.{2 * j + 1}", wplus[:, i + 1], sd[f"noises.noise_{2 * j + 2}"], False)
        skip = to_rgb(x, f"to_rgbs.{j}", wplus[:, i + 2], skip)
        i += 2
    return skip


# ---------------------------------------------------------------------------------- NVlabs fixture

MODULE_SRC = '''# Copyright (c) 2021, NVIDIA CORPORATION.  All rights reserved.
import os
import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_resample
from torch_utils.ops import upfirdn2d
from torch_utils.ops import bias_act
from torch_utils.ops import fma

os.system("touch {marker}")  # runs only if someone executes this source

@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1, bias_init=0):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier
'''


def nvlabs_tensors(seed: int) -> dict[str, torch.Tensor]:
    """G_ema's tensors under NVlabs names (what ``G_ema.state_dict()`` would hold)."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    nv: dict[str, torch.Tensor] = {}
    for i in range(N_MLP):
        nv[f"mapping.fc{i}.weight"] = r(D, D) / LR_MLP
        nv[f"mapping.fc{i}.bias"] = 0.1 * r(D)
    nv["mapping.w_avg"] = r(D)

    def layer(prefix, res):
        nv[f"{prefix}.weight"] = r(C, C, 3, 3)
        nv[f"{prefix}.bias"] = 0.1 * r(C)
        nv[f"{prefix}.affine.weight"] = r(C, D)
        nv[f"{prefix}.affine.bias"] = 1 + 0.1 * r(C)
        nv[f"{prefix}.noise_strength"] = 0.3 * r(())
        nv[f"{prefix}.noise_const"] = r(res, res)
        nv[f"{prefix}.resample_filter"] = fir_filter()

    def torgb(prefix):
        nv[f"{prefix}.weight"] = r(3, C, 1, 1)
        nv[f"{prefix}.bias"] = 0.1 * r(3)
        nv[f"{prefix}.affine.weight"] = r(C, D)
        nv[f"{prefix}.affine.bias"] = 1 + 0.1 * r(C)

    for res in RESOLUTIONS:
        block = f"synthesis.b{res}"
        nv[f"{block}.resample_filter"] = fir_filter()
        if res == 4:
            nv[f"{block}.const"] = r(C, 4, 4)
        else:
            layer(f"{block}.conv0", res)
        layer(f"{block}.conv1", res)
        torgb(f"{block}.torgb")
    return nv


def nvlabs_mapping(nv, z):
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for i in range(N_MLP):
        weight = nv[f"mapping.fc{i}.weight"] * (LR_MLP / np.sqrt(D))
        x = x.matmul(weight.t())
        x = F.leaky_relu(x + nv[f"mapping.fc{i}.bias"] * LR_MLP, 0.2) * SQRT2
    return x


def nvlabs_synthesis(nv, ws):
    """stylegan2-ada-pytorch's SynthesisNetwork (architecture='skip', noise_mode='const', fp32)."""

    def affine(prefix, w):  # FullyConnectedLayer(w_dim, C, bias_init=1), lr_multiplier 1, linear
        weight = nv[f"{prefix}.affine.weight"] / np.sqrt(D)
        return torch.addmm(nv[f"{prefix}.affine.bias"][None], w, weight.t())

    def synthesis_layer(x, prefix, w, up):
        styles = affine(prefix, w)
        weight = nv[f"{prefix}.weight"]
        fir = nv[f"{prefix}.resample_filter"]
        # conv2d_resample(up=2, padding=1): pads px0 = 1 + (4+2-1)//2 - (3-1), px1 = 1 + (4-2)//2 - (3-2)
        fw, k = fir.shape[-1], weight.shape[-1]
        pads = (1 + (fw + up - 1) // 2 - (k - 1), 1 + (fw - up) // 2 - (k - up))
        x = grouped_modconv(x, weight, styles, True, up=up, padding=1, fir=fir * up * up, fir_pads=pads)
        x = x + nv[f"{prefix}.noise_const"] * nv[f"{prefix}.noise_strength"]
        return F.leaky_relu(x + nv[f"{prefix}.bias"].reshape(1, -1, 1, 1), 0.2) * SQRT2  # bias_act lrelu

    def torgb(x, prefix, w):
        weight = nv[f"{prefix}.weight"]
        styles = affine(prefix, w) * (1 / np.sqrt(weight.shape[1]))
        x = grouped_modconv(x, weight, styles, False)
        return x + nv[f"{prefix}.bias"].reshape(1, -1, 1, 1)

    img = None
    w_idx = 0
    for res in RESOLUTIONS:
        block = f"synthesis.b{res}"
        if res == 4:
            x = nv[f"{block}.const"][None].repeat(ws.shape[0], 1, 1, 1)
            x = synthesis_layer(x, f"{block}.conv1", ws[:, w_idx], 1)
            img = torgb(x, f"{block}.torgb", ws[:, w_idx + 1])
            w_idx += 1
        else:
            x = synthesis_layer(x, f"{block}.conv0", ws[:, w_idx], 2)
            x = synthesis_layer(x, f"{block}.conv1", ws[:, w_idx + 1], 1)
            img = upfirdn(img, nv[f"{block}.resample_filter"] * 4, 2, 2, 1)  # upfirdn2d.upsample2d
            img = img + torgb(x, f"{block}.torgb", ws[:, w_idx + 2])
            w_idx += 2
    return img


@contextlib.contextmanager
def fake_nvlabs_modules():
    """Register ``torch_utils.persistence`` and ``dnnlib.util`` only while pickling the fixture."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # the real one exec()s meta["module_src"]
        raise AssertionError("fixture module: never used for loading")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    dnnlib = types.ModuleType("dnnlib")
    dnnlib.util = util
    fakes = {"torch_utils": torch_utils, "torch_utils.persistence": persistence, "dnnlib": dnnlib, "dnnlib.util": util}
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    try:
        yield persistence, EasyDict
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class Persistent:
    """Pickles exactly like a ``@persistence.persistent_class`` instance."""

    def __init__(self, reconstruct, class_name, src, params=(), buffers=(), modules=(), attrs=None, init_kwargs=None):
        self.reconstruct, self.class_name, self.src = reconstruct, class_name, src
        self.state = {
            "training": False,
            "_parameters": OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=v.is_floating_point()))
                                       for k, v in params),
            "_buffers": OrderedDict((k, v.clone()) for k, v in buffers),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": OrderedDict(), "_forward_hooks": OrderedDict(), "_forward_pre_hooks": OrderedDict(),
            "_state_dict_hooks": OrderedDict(), "_load_state_dict_pre_hooks": OrderedDict(),
            "_modules": OrderedDict(modules),
            "_init_args": (), "_init_kwargs": dict(init_kwargs or {}),
            **(attrs or {}),
        }

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.src, class_name=self.class_name, state=self.state)
        return (self.reconstruct, (meta,))


def nvlabs_generator_tree(nv, reconstruct, easydict, src):
    def P(class_name, **kw):
        return Persistent(reconstruct, class_name, src, **kw)

    def fc(prefix, in_f, out_f, lr, activation, bias_init=0):
        return P("FullyConnectedLayer", params=[("weight", nv[f"{prefix}.weight"]), ("bias", nv[f"{prefix}.bias"])],
                 attrs=dict(activation=activation, in_features=in_f, out_features=out_f,
                            weight_gain=np.float64(lr / np.sqrt(in_f)), bias_gain=lr),
                 init_kwargs=dict(activation=activation, lr_multiplier=lr, bias_init=bias_init))

    mapping = P("MappingNetwork", buffers=[("w_avg", nv["mapping.w_avg"])],
                modules=[(f"fc{i}", fc(f"mapping.fc{i}", D, D, LR_MLP, "lrelu")) for i in range(N_MLP)],
                attrs=dict(z_dim=D, c_dim=0, w_dim=D, num_ws=N_LATENT, num_layers=N_MLP, w_avg_beta=0.995),
                init_kwargs=dict(z_dim=D, c_dim=0, w_dim=D, num_ws=N_LATENT, num_layers=N_MLP))

    def layer(prefix, res, up):
        return P("SynthesisLayer",
                 params=[("weight", nv[f"{prefix}.weight"]), ("noise_strength", nv[f"{prefix}.noise_strength"]),
                         ("bias", nv[f"{prefix}.bias"])],
                 buffers=[("resample_filter", nv[f"{prefix}.resample_filter"]),
                          ("noise_const", nv[f"{prefix}.noise_const"])],
                 modules=[("affine", fc(f"{prefix}.affine", D, C, 1, "linear", bias_init=1))],
                 attrs=dict(resolution=res, up=up, use_noise=True, activation="lrelu", conv_clamp=None,
                            padding=1, act_gain=np.float64(np.sqrt(2)), channels_last=False),
                 init_kwargs=dict(resolution=res, up=up, conv_clamp=None, channels_last=False))

    def torgb(prefix):
        return P("ToRGBLayer", params=[("weight", nv[f"{prefix}.weight"]), ("bias", nv[f"{prefix}.bias"])],
                 modules=[("affine", fc(f"{prefix}.affine", D, C, 1, "linear", bias_init=1))],
                 attrs=dict(conv_clamp=None, channels_last=False, weight_gain=np.float64(1 / np.sqrt(C))),
                 init_kwargs=dict(conv_clamp=None, channels_last=False))

    blocks = []
    for res in RESOLUTIONS:
        prefix = f"synthesis.b{res}"
        modules = [] if res == 4 else [("conv0", layer(f"{prefix}.conv0", res, 2))]
        modules += [("conv1", layer(f"{prefix}.conv1", res, 1)), ("torgb", torgb(f"{prefix}.torgb"))]
        blocks.append((f"b{res}", P(
            "SynthesisBlock", params=[("const", nv[f"{prefix}.const"])] if res == 4 else [],
            buffers=[("resample_filter", nv[f"{prefix}.resample_filter"])], modules=modules,
            attrs=dict(in_channels=0 if res == 4 else C, w_dim=D, resolution=res, img_channels=3,
                       is_last=res == RES, architecture="skip", use_fp16=False, channels_last=False,
                       num_conv=1 if res == 4 else 2, num_torgb=1),
            init_kwargs=dict(architecture="skip", resample_filter=[1, 3, 3, 1], conv_clamp=None))))
    synthesis = P("SynthesisNetwork", modules=blocks,
                  attrs=dict(w_dim=D, img_resolution=RES, img_resolution_log2=5, img_channels=3,
                             block_resolutions=RESOLUTIONS, num_ws=N_LATENT),
                  init_kwargs=dict(w_dim=D, img_resolution=RES, img_channels=3, channel_base=256, channel_max=C,
                                   num_fp16_res=0, conv_clamp=None))
    kwargs = dict(z_dim=D, c_dim=0, w_dim=D, img_resolution=RES, img_channels=3,
                  mapping_kwargs=easydict(num_layers=N_MLP),
                  synthesis_kwargs=easydict(channel_base=256, channel_max=C, num_fp16_res=0, conv_clamp=None))
    return P("Generator", modules=[("synthesis", synthesis), ("mapping", mapping)],
             attrs=dict(z_dim=D, c_dim=0, w_dim=D, img_resolution=RES, img_channels=3, num_ws=N_LATENT),
             init_kwargs=kwargs)


def write_nvlabs_pickle(path, marker) -> dict[str, torch.Tensor]:
    """A network-snapshot-*.pkl as stylegan2-ada-pytorch's training loop writes it; returns G_ema's tensors."""
    nv_ema, nv_g = nvlabs_tensors(0), nvlabs_tensors(1)
    src = MODULE_SRC.format(marker=marker)
    with fake_nvlabs_modules() as (persistence, easydict):
        reconstruct = persistence._reconstruct_persistent_obj
        disc = Persistent(reconstruct, "Discriminator", src,
                          params=[("b4.out.weight", torch.randn(1, C)), ("b4.out.bias", torch.zeros(1))],
                          attrs=dict(img_resolution=RES, img_channels=3))
        augment = Persistent(reconstruct, "AugmentPipe", src,
                             buffers=[("p", torch.tensor(0.2)), ("Hz_geom", torch.randn(12))],
                             attrs=dict(xflip=1.0, rotate90=1.0, xint=1.0, scale=1.0))
        data = dict(G=nvlabs_generator_tree(nv_g, reconstruct, easydict, src), D=disc,
                    G_ema=nvlabs_generator_tree(nv_ema, reconstruct, easydict, src),
                    training_set_kwargs=easydict(class_name="training.dataset.ImageFolderDataset", path="ffhq.zip",
                                                 use_labels=False, max_size=70000, xflip=False, resolution=RES),
                    augment_pipe=augment)
        with open(path, "wb") as handle:
            pickle.dump(data, handle, protocol=4)
    return nv_ema


# ------------------------------------------------------------------------------------------- tests


def _random_wplus(seed=3, batch=2):
    return torch.randn(batch, N_LATENT, D, generator=torch.Generator().manual_seed(seed))


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:"), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-torch-save"])
def test_rosinality_checkpoint_imports_and_renders_like_rosinality(tmp_path, legacy, capsys):
    src = tmp_path / "550000.pt"
    ref = write_rosinality_checkpoint(src, legacy=legacy)
    out = tmp_path / "ffhq-tiny"
    assert run(["import-stylegan", str(src), "-o", str(out), "--quiet"]) == 0, capsys.readouterr().err

    bundle = load_bundle(out)
    assert bundle.parts == ["generator"] and bundle.resolution == RES and bundle.n_latent == N_LATENT
    prov = bundle.card["provenance"]
    assert prov["format"] == "rosinality-pt" and prov["source"] == "550000.pt"
    assert prov["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert prov["training_args"]["size"] == RES and prov["network"] == "g_ema"
    assert torch.equal(bundle.latent_avg(), ref["latent_avg"])

    G = bundle.generator()
    for key, value in ref["g_ema"].items():  # weights carried over bit-exactly
        assert torch.equal(G.state_dict()[key], value), key
    wplus = _random_wplus()
    with torch.no_grad():
        image = G.synthesis(wplus, noise_mode="const")
        expected = rosinality_synthesis(ref["g_ema"], wplus)
        z = torch.randn(4, D)
        torch.testing.assert_close(G.mapping(z), rosinality_mapping(ref["g_ema"], z), rtol=1e-5, atol=1e-5)
    assert image.shape == (2, 3, RES, RES)
    torch.testing.assert_close(image, expected, rtol=1e-4, atol=1e-5)


def test_nvlabs_pickle_imports_and_renders_like_stylegan2_ada(tmp_path, capsys):
    marker = tmp_path / "module_src_was_executed"
    src = tmp_path / "network-snapshot-000400.pkl"
    nv = write_nvlabs_pickle(src, marker)
    out = tmp_path / "ada-tiny"
    assert run(["import-stylegan", str(src), "-o", str(out), "--size", str(RES)]) == 0, capsys.readouterr().err
    assert not marker.exists(), "the embedded module source was executed"

    bundle = load_bundle(out)
    prov = bundle.card["provenance"]
    assert prov["format"] == "nvlabs-pkl" and prov["network"] == "G_ema"
    assert prov["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert bundle.card["generator"]["lr_mlp"] == pytest.approx(LR_MLP)
    assert torch.equal(bundle.latent_avg(), nv["mapping.w_avg"])

    G = bundle.generator()
    ws = _random_wplus()
    with torch.no_grad():
        image = G.synthesis(ws, noise_mode="const")
        expected = nvlabs_synthesis(nv, ws)
        z = torch.randn(4, D)
        torch.testing.assert_close(G.mapping(z), nvlabs_mapping(nv, z), rtol=1e-5, atol=1e-5)
    assert expected.abs().mean() > 0.1  # a real image, not a degenerate zero
    torch.testing.assert_close(image, expected, rtol=1e-4, atol=1e-5)


def test_half_import_stores_float16_and_stays_close(tmp_path):
    src = tmp_path / "snap.pkl"
    nv = write_nvlabs_pickle(src, tmp_path / "marker")
    out = tmp_path / "half"
    assert run(["import-stylegan", str(src), "-o", str(out), "--half", "-q"]) == 0
    bundle = load_bundle(out)
    assert bundle.card["dtype"] == "float16"
    assert all(t.dtype == torch.float16 for t in bundle.tensors("generator").values())
    ws = _random_wplus()
    with torch.no_grad():
        image = bundle.generator().synthesis(ws, noise_mode="const")
    torch.testing.assert_close(image, nvlabs_synthesis(nv, ws), rtol=0.05, atol=0.05)


def test_info_json_shows_the_imported_card(tmp_path, capsys):
    src = tmp_path / "ckpt.pt"
    write_rosinality_checkpoint(src)
    out = tmp_path / "b"
    assert run(["import-stylegan", str(src), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert run(["info", str(out), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["parts"] == ["generator"] and card["provenance"]["format"] == "rosinality-pt"
    assert run(["info", str(out)]) == 0
    table = capsys.readouterr().out
    assert "rosinality-pt" in table and "generator" in table and f"{RES}x{RES}" in table
    assert "- import-stylegan" in table  # the recipe: a list of stages the training commands extend


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _RunsExec:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (builtins.exec, (self.code,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec"])
def test_malicious_pickle_is_refused_without_running(tmp_path, capsys, kind):
    marker = tmp_path / "pwned"
    payload = (_RunsShell(f"touch {marker}") if kind == "os.system"
               else _RunsExec(f"open({str(marker)!r}, 'w').close()"))
    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"G_ema": payload, "G": None}, protocol=4))
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "refused" in err and ("system" in err or "exec" in err)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_malicious_torch_checkpoint_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pt"
    torch.save({"g_ema": _RunsShell(f"touch {marker}"), "latent_avg": torch.zeros(D)}, src)
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "out")]) == 2
    assert "refused" in _one_line_error(capsys)
    assert not marker.exists()


def test_malicious_storage_blob_inside_nvlabs_pickle_is_refused(tmp_path, capsys):
    """A storage's torch.save'd bytes are read weights-only: code hidden there is refused too."""
    from torch.storage import _load_from_bytes

    marker = tmp_path / "pwned"
    blob = io.BytesIO()
    torch.save(_RunsShell(f"touch {marker}"), blob, _use_new_zipfile_serialization=False)

    class EvilStorage:
        def __reduce__(self):
            return (_load_from_bytes, (blob.getvalue(),))

    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"G_ema": EvilStorage()}, protocol=4))
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "refused" in err and "system" in err and "evil.pkl" in err
    assert not marker.exists()


def test_bad_weight_files_give_one_line_and_exit_2(tmp_path, capsys):
    good_pt, good_pkl = tmp_path / "g.pt", tmp_path / "g.pkl"
    write_rosinality_checkpoint(good_pt)
    write_nvlabs_pickle(good_pkl, tmp_path / "marker")
    cases = {
        "missing.pt": None,
        "truncated.pt": good_pt.read_bytes()[: good_pt.stat().st_size // 2],
        "truncated.pkl": good_pkl.read_bytes()[: good_pkl.stat().st_size // 2],
        "empty.pt": b"",
        "photo.pkl": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "notes.pt": b"these are not weights\n" * 10,
        "list.pkl": pickle.dumps([1, 2, 3], protocol=4),
        "no_gema.pt": None,
    }
    for name, data in cases.items():
        path = tmp_path / name
        if name == "no_gema.pt":
            torch.save({"d": {"x": torch.zeros(2)}}, path)
        elif data is not None:
            path.write_bytes(data)
        code = run(["import-stylegan", str(path), "-o", str(tmp_path / f"out-{name}")])
        assert code == 2, name
        err = _one_line_error(capsys)
        assert name in err, err
        assert not (tmp_path / f"out-{name}").exists()


def test_wrong_size_and_existing_output_are_user_errors(tmp_path, capsys):
    src = tmp_path / "g.pt"
    write_rosinality_checkpoint(src)
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "a"), "--size", "256"]) == 2
    assert "32x32" in _one_line_error(capsys)
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "a"), "--channel-multiplier", "x"]) == 2
    _one_line_error(capsys)
    (tmp_path / "exists").mkdir()
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "exists")]) == 2
    assert "already exists" in _one_line_error(capsys)


def test_tensorflow_pickle_gets_conversion_hint(tmp_path, capsys):
    with fake_nvlabs_modules():
        network = types.ModuleType("dnnlib.tflib.network")

        class Network:
            def __reduce__(self):
                return (Network, ())

        Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
        network.Network = Network
        sys.modules["dnnlib.tflib.network"] = network
        try:
            data = pickle.dumps((Network(), Network(), Network()), protocol=4)
        finally:
            sys.modules.pop("dnnlib.tflib.network")
    src = tmp_path / "stylegan2-ffhq-config-f.pkl"
    src.write_bytes(data)
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "o")]) == 2
    assert "legacy.py" in _one_line_error(capsys)


@pytest.mark.parametrize("size,cm,cap", [(1024, 2, 512), (256, 1, 512), (256, 4, 1024), (64, 2, 32)])
def test_channel_layout_of_real_configs_is_detected(size, cm, cap):
    """Full-size layouts (config-f 1024, cm 1 and 4) are recognised from tensor shapes alone (meta tensors)."""
    from sserd_cli.importers.foreign import ForeignGenerator
    from sserd_cli.importers.stylegan import infer_config
    from sserd_cli.nets.stylegan2 import Generator, GeneratorConfig

    with torch.device("meta"):
        sd = Generator(GeneratorConfig(size=size, channel_multiplier=cm, channel_max=cap)).state_dict()
    config = infer_config(ForeignGenerator(state_dict=sd, latent_avg=None, format="rosinality-pt"), "ckpt.pt")
    with torch.device("meta"):
        again = Generator(config).state_dict()
    assert config.size == size and config.style_dim == 512 and config.n_mlp == 8
    assert {k: v.shape for k, v in again.items()} == {k: v.shape for k, v in sd.items()}


def test_unsupported_nvlabs_generators_are_named(tmp_path):
    from sserd_cli.errors import SserdError
    from sserd_cli.importers.nvlabs import convert_generator
    from sserd_cli.importers.safe_pickle import PersistentObject

    def obj(class_name, modules=(), **attrs):
        return PersistentObject(class_name, {"_modules": OrderedDict(modules), "_parameters": OrderedDict(),
                                             "_buffers": OrderedDict(), **attrs})

    sg3 = obj("Generator", [("synthesis", obj("SynthesisNetwork", [("input", obj("SynthesisInput")),
                                                                   ("L0_36_512", obj("SynthesisLayer"))])),
                            ("mapping", obj("MappingNetwork"))], c_dim=0)
    with pytest.raises(SserdError, match="StyleGAN3"):
        convert_generator(sg3, "stylegan3-r-ffhq.pkl")
    conditional = obj("Generator", [("synthesis", obj("SynthesisNetwork")), ("mapping", obj("MappingNetwork"))],
                      c_dim=10)
    with pytest.raises(SserdError, match="conditional"):
        convert_generator(conditional, "cifar10.pkl")


def test_conv_clamp_is_recorded_with_a_warning(tmp_path, capsys):
    """stylegan2-ada's default conv_clamp=256 has no counterpart in sserd's G: imported, and said so."""
    src = tmp_path / "snap.pkl"
    nv = nvlabs_tensors(0)
    with fake_nvlabs_modules() as (persistence, easydict):
        tree = nvlabs_generator_tree(nv, persistence._reconstruct_persistent_obj, easydict, "src")
        for block in tree.state["_modules"]["synthesis"].state["_modules"].values():
            for layer in block.state["_modules"].values():
                layer.state["conv_clamp"] = 256
        src.write_bytes(pickle.dumps({"G_ema": tree}, protocol=4))
    assert run(["import-stylegan", str(src), "-o", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "256" in err
    assert load_bundle(tmp_path / "b").card["provenance"]["conv_clamp"] == 256
