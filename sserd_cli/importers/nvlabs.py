"""NVlabs network pickles (stylegan2-ada-pytorch, and StyleGAN2 networks saved by stylegan3's code).

The file is a plain pickle of ``{"G", "D", "G_ema", "training_set_kwargs",
"augment_pipe"}``; each network is a ``torch_utils.persistence`` object whose
pickle embeds its class's source code. :mod:`.safe_pickle` turns those objects
into :class:`PersistentObject` state trees without running anything; this module
maps the config-f (``architecture="skip"``) generator onto sserd's keys:

==============================================  =====================================
NVlabs ``G_ema``                                sserd / rosinality
==============================================  =====================================
``mapping.fc{i}.weight/bias``                   ``style.{i+1}.weight/bias``
``mapping.w_avg``                               latent_avg
``synthesis.b4.const`` [C,4,4]                  ``input.input`` [1,C,4,4]
``synthesis.b4.conv1.*``                        ``conv1.*``
``synthesis.b4.torgb.*``                        ``to_rgb1.*``
``synthesis.b{r}.conv0 / conv1 / torgb``        ``convs.{2j} / convs.{2j+1} / to_rgbs.{j}``, r = 2**(j+3)
layer ``weight`` [O,I,k,k]                      ``conv.weight`` [1,O,I,k,k]
layer ``affine.weight/bias``                    ``conv.modulation.weight/bias``
layer ``noise_strength`` []                     ``noise.weight`` [1]
layer ``noise_const`` [r,r]                     ``noises.noise_{n}`` [1,1,r,r]
layer ``bias`` [O]                              ``activate.bias`` [O] (toRGB: ``bias`` [1,3,1,1])
``resample_filter`` (sums to 1)                 ``blur.kernel`` / ``upsample.kernel`` = filter * 4
==============================================  =====================================

Why the numbers carry over unchanged: both codes store weights N(0,1) and scale
them at run time with the same gains (fully-connected: ``lr_mul / sqrt(fan_in)``
on the weight and ``lr_mul`` on the bias; affine bias initialised to 1; toRGB
styles times ``1/sqrt(fan_in)``); the 3x3 convs are demodulated, so their weight
gain cancels (both add eps 1e-8 to the sum of squares, on differently scaled
weights: a relative difference far below float32 rounding for real weights).
Both upsample with a transposed stride-2 convolution of the *unflipped* weight
followed by the [1,3,3,1] FIR filter with gain 4 and pads (1, 1); the skip
images are upsampled with the same filter and pads (2, 1); activations are
``leaky_relu(x + b, 0.2) * sqrt(2)`` after the noise is added.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..errors import SserdError
from .foreign import ForeignGenerator, first_line
from .safe_pickle import PersistentObject, UnsafePickle, load_nvlabs_pickle


def read_nvlabs(path: Path) -> ForeignGenerator:
    """Read ``G_ema`` of an NVlabs pickle and return it in sserd's keys."""
    try:
        with open(path, "rb") as handle:
            data = load_nvlabs_pickle(handle, source=path.name)
    except (UnsafePickle, SserdError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, MemoryError) as exc:
        raise SserdError(f"{path.name} cannot be read as an NVlabs network pickle ({first_line(exc)}): the file is "
                         "truncated, damaged or in another format") from None
    if not isinstance(data, dict):
        raise SserdError(f"{path.name} holds a {type(data).__name__}, not an NVlabs network pickle dict with 'G_ema'")
    network = "G_ema" if isinstance(data.get("G_ema"), PersistentObject) else "G"
    gen = data.get(network)
    if not isinstance(gen, PersistentObject):
        raise SserdError(f"{path.name} holds no generator network ('G_ema' missing): not an NVlabs StyleGAN2 pickle")
    return convert_generator(gen, path.name, network)


def _fail(source: str, what: str) -> SserdError:
    return SserdError(f"{source}: {what}")


def convert_generator(gen: PersistentObject, source: str, network: str = "G_ema") -> ForeignGenerator:
    """Map an NVlabs StyleGAN2 ``Generator`` state tree onto sserd's generator keys."""
    if gen.class_name != "Generator":
        raise _fail(source, f"'{network}' is a {gen.class_name!r}, not a StyleGAN2 Generator")
    mapping, synthesis = gen.child("mapping"), gen.child("synthesis")
    if mapping is None or synthesis is None:
        raise _fail(source, f"'{network}' has no mapping/synthesis networks")
    if synthesis.child("input") is not None or "SynthesisInput" in {c.class_name for c in synthesis.children().values()
                                                                    if isinstance(c, PersistentObject)}:
        raise _fail(source, "this is a StyleGAN3 (alias-free) generator; sserd imports StyleGAN2 (config-f) "
                            "generators only")
    if int(gen.get("c_dim", 0) or 0) > 0:
        raise _fail(source, "this is a class-conditional generator (c_dim > 0); sserd needs an unconditional one")
    if int(gen.get("img_channels", 3) or 3) != 3:
        raise _fail(source, "the generator does not produce 3-channel (RGB) images")
    z_dim, w_dim = gen.get("z_dim"), gen.get("w_dim")
    if z_dim is not None and w_dim is not None and int(z_dim) != int(w_dim):
        raise _fail(source, f"z_dim {z_dim} differs from w_dim {w_dim}; sserd's mapping network needs them equal")

    nv = gen.state_dict()
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in nv:
            raise _fail(source, f"tensor '{key}' is missing from '{network}'; not a config-f StyleGAN2 generator")
        return nv[key].detach().float()

    fc_names = sorted((name for name in mapping.children() if name.startswith("fc")), key=lambda n: int(n[2:]))
    if not fc_names or fc_names != [f"fc{i}" for i in range(len(fc_names))]:
        raise _fail(source, "the mapping network has no fc0..fcN layers")
    lr_mul = None
    for i, name in enumerate(fc_names):
        layer = mapping.child(name)
        if layer is not None and layer.get("activation", "lrelu") != "lrelu":
            raise _fail(source, f"mapping.{name} uses activation {layer.get('activation')!r}; expected lrelu")
        out[f"style.{i + 1}.weight"] = take(f"mapping.{name}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.{name}.bias")
        layer_lr = _lr_multiplier(layer, mapping)
        if lr_mul is None:
            lr_mul = layer_lr
        elif abs(layer_lr - lr_mul) > 1e-12:
            raise _fail(source, "the mapping layers use different learning-rate multipliers")
    if "embed" in mapping.children():
        raise _fail(source, "the mapping network embeds a class label; sserd needs an unconditional generator")

    resolutions = sorted(int(name[1:]) for name in synthesis.children() if name.startswith("b") and name[1:].isdigit())
    if not resolutions or resolutions[0] != 4 or resolutions != [2**i for i in range(2, 2 + len(resolutions))]:
        raise _fail(source, f"unexpected synthesis blocks {resolutions}; expected b4, b8, ... up to the image size")
    notes: dict = {"network": network, "class": "stylegan2-ada-pytorch Generator"}
    clamps = set()
    noise_index = 0

    def styled_layer(nv_prefix: str, ours: str) -> None:
        nonlocal noise_index
        layer = _layer(synthesis, nv_prefix, source)
        if layer.get("activation", "lrelu") != "lrelu":
            raise _fail(source, f"{nv_prefix} uses activation {layer.get('activation')!r}; expected lrelu")
        if layer.get("conv_clamp") is not None:
            clamps.add(layer.get("conv_clamp"))
        weight = take(f"synthesis.{nv_prefix}.weight")
        out[f"{ours}.conv.weight"] = weight.unsqueeze(0)
        out[f"{ours}.conv.modulation.weight"] = take(f"synthesis.{nv_prefix}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"synthesis.{nv_prefix}.affine.bias")
        out[f"{ours}.noise.weight"] = take(f"synthesis.{nv_prefix}.noise_strength").reshape(1)
        out[f"{ours}.activate.bias"] = take(f"synthesis.{nv_prefix}.bias")
        out[f"noises.noise_{noise_index}"] = take(f"synthesis.{nv_prefix}.noise_const")[None, None]
        if int(layer.get("up", 1) or 1) == 2:
            out[f"{ours}.conv.blur.kernel"] = take(f"synthesis.{nv_prefix}.resample_filter") * 4
        noise_index += 1

    def to_rgb(nv_prefix: str, ours: str, skip_filter: str | None) -> None:
        layer = _layer(synthesis, nv_prefix, source)
        if layer.get("conv_clamp") is not None:
            clamps.add(layer.get("conv_clamp"))
        out[f"{ours}.conv.weight"] = take(f"synthesis.{nv_prefix}.weight").unsqueeze(0)
        out[f"{ours}.conv.modulation.weight"] = take(f"synthesis.{nv_prefix}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"synthesis.{nv_prefix}.affine.bias")
        out[f"{ours}.bias"] = take(f"synthesis.{nv_prefix}.bias").reshape(1, -1, 1, 1)
        if skip_filter is not None:
            out[f"{ours}.upsample.kernel"] = take(skip_filter) * 4

    for j, res in enumerate(resolutions):
        block = synthesis.child(f"b{res}")
        if block is None:
            raise _fail(source, f"synthesis.b{res} is not a network block")
        if block.get("architecture", "skip") != "skip":
            raise _fail(source, f"synthesis block b{res} uses architecture {block.get('architecture')!r}; sserd "
                                "imports the 'skip' generator of config-f only")
        if res == 4:
            out["input.input"] = take("synthesis.b4.const")[None]
            styled_layer("b4.conv1", "conv1")
            to_rgb("b4.torgb", "to_rgb1", None)
        else:
            k = j - 1  # index of this block among the upsampling blocks
            styled_layer(f"b{res}.conv0", f"convs.{2 * k}")
            styled_layer(f"b{res}.conv1", f"convs.{2 * k + 1}")
            to_rgb(f"b{res}.torgb", f"to_rgbs.{k}", f"synthesis.b{res}.resample_filter")

    if clamps:
        notes["conv_clamp"] = sorted(clamps)[0]
        notes["warning"] = (f"the NVlabs generator clamps activations at +-{notes['conv_clamp']}; sserd's does not "
                            "(images differ only where activations exceed it)")
    w_avg = nv.get("mapping.w_avg")
    return ForeignGenerator(
        state_dict=out,
        latent_avg=w_avg.detach().float().reshape(-1) if w_avg is not None else None,
        format="nvlabs-pkl",
        lr_mlp=lr_mul,
        channel_multiplier=None,
        notes=notes,
    )


def _lr_multiplier(layer: PersistentObject | None, mapping: PersistentObject) -> float:
    """A mapping layer's learning-rate multiplier: its stored bias gain (= lr_multiplier), else its init kwargs."""
    for value in ((layer.get("bias_gain") if layer else None),
                  (layer.init_kwargs.get("lr_multiplier") if layer else None),
                  mapping.init_kwargs.get("lr_multiplier")):
        if value is not None:
            return float(value)
    return 0.01  # MappingNetwork's default


def _layer(synthesis: PersistentObject, dotted: str, source: str) -> PersistentObject:
    node: PersistentObject | None = synthesis
    for name in dotted.split("."):
        node = node.child(name) if node is not None else None
    if node is None:
        raise _fail(source, f"synthesis.{dotted} is missing; not a config-f StyleGAN2 generator")
    return node
