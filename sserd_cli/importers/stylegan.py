"""``sserd import-stylegan``: recognise a foreign StyleGAN2 weight file, infer its config, save a generator bundle."""

from __future__ import annotations

import datetime as _dt
import hashlib
import pickle
from pathlib import Path

import torch

from ..bundles import Bundle, save_bundle
from ..errors import SserdError
from ..nets.stylegan2 import Generator, GeneratorConfig, channel_table
from .foreign import ForeignGenerator, first_line

FORMATS = ("rosinality-pt", "nvlabs-pkl", "safetensors")
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER of pre-1.6 torch.save files
_LEGACY_PREFIXES = tuple(pickle.dumps(_TORCH_LEGACY_MAGIC, protocol=p)[:-1] for p in (2, 3))


def detect_format(path: Path) -> str:
    """``rosinality-pt`` (torch zip or legacy torch.save), ``nvlabs-pkl`` (plain pickle) or ``safetensors``."""
    if not path.exists():
        raise SserdError(f"{path} not found: give the path of a StyleGAN2 .pt (rosinality) or .pkl (NVlabs) file")
    if path.is_dir():
        raise SserdError(f"{path} is a directory: give the .pt or .pkl weight file itself")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise SserdError(f"{path} is empty: the download or copy did not finish")
    if head.startswith(b"PK\x03\x04"):
        return "rosinality-pt"
    if any(head.startswith(prefix) for prefix in _LEGACY_PREFIXES):
        return "rosinality-pt"
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        return "nvlabs-pkl"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30):
        return "safetensors"
    raise SserdError(f"{path} is not a StyleGAN2 weight file: expected a rosinality .pt (torch checkpoint with "
                     "'g_ema'), an NVlabs .pkl network pickle, or a safetensors state dict")


def read_stylegan(path: Path) -> ForeignGenerator:
    """Read the generator of any supported file, never executing code from it."""
    fmt = detect_format(path)
    if fmt == "rosinality-pt":
        from .rosinality import read_rosinality

        return read_rosinality(path)
    if fmt == "nvlabs-pkl":
        from .nvlabs import read_nvlabs

        return read_nvlabs(path)
    return _read_safetensors_state_dict(path)


def _read_safetensors_state_dict(path: Path) -> ForeignGenerator:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SserdError(f"{path.name} cannot be read as safetensors ({first_line(exc)}): the file is truncated "
                         "or damaged") from None
    avg = tensors.pop("latent_avg", None)
    if "style.1.weight" not in tensors:
        raise SserdError(f"{path.name} holds no rosinality-keyed StyleGAN2 generator ('style.1.weight' missing)")
    return ForeignGenerator(state_dict={k: v.float() for k, v in tensors.items()},
                            latent_avg=avg.float().reshape(-1) if avg is not None else None,
                            format="safetensors", notes={"network": "state_dict"})


def _detected_layout(sd: dict[str, torch.Tensor], source: str) -> tuple[int, int, int, dict[int, int]]:
    """(size, style_dim, n_mlp, channels per resolution) read off the tensor shapes."""
    try:
        style_dim = int(sd["style.1.weight"].shape[0])
        n_mlp = 0
        while f"style.{n_mlp + 1}.weight" in sd:
            n_mlp += 1
        channels = {4: int(sd["input.input"].shape[1])}
        j = 0
        while f"convs.{2 * j}.conv.weight" in sd:
            channels[2 ** (j + 3)] = int(sd[f"convs.{2 * j}.conv.weight"].shape[1])
            j += 1
    except (KeyError, IndexError) as exc:
        raise SserdError(f"{source}: the generator lacks tensor {exc}; not a complete StyleGAN2 generator") from None
    return max(channels), style_dim, n_mlp, channels


def infer_config(fg: ForeignGenerator, source: str, size: int | None = None,
                 channel_multiplier: int | None = None) -> GeneratorConfig:
    """The GeneratorConfig whose network has exactly the file's tensor shapes."""
    detected_size, style_dim, n_mlp, channels = _detected_layout(fg.state_dict, source)
    if size is not None and size != detected_size:
        raise SserdError(f"{source} holds a {detected_size}x{detected_size} generator but --size says {size}: "
                         "leave --size out to use the detected size")
    multipliers = [channel_multiplier] if channel_multiplier else (
        [fg.channel_multiplier] if fg.channel_multiplier else [2, 1, 4, 8, 3, 5, 6, 7])
    caps = sorted({512, *channels.values()})
    lr_mlp = fg.lr_mlp if fg.lr_mlp is not None else 0.01
    for cm in multipliers:
        for cap in [512] + [c for c in caps if c != 512]:
            if channel_table(detected_size, cm, cap) == channels:
                config = GeneratorConfig(size=detected_size, style_dim=style_dim, n_mlp=n_mlp,
                                         channel_multiplier=cm, channel_max=cap, lr_mlp=lr_mlp)
                _check_shapes(config, fg.state_dict, source)
                return config
    table = ", ".join(f"{r}: {c}" for r, c in sorted(channels.items()))
    asked = f" with --channel-multiplier {channel_multiplier}" if channel_multiplier else ""
    raise SserdError(f"{source}: the channel layout ({table}) is not a StyleGAN2 channel table{asked}; "
                     "try --channel-multiplier auto")


def _check_shapes(config: GeneratorConfig, sd: dict[str, torch.Tensor], source: str) -> None:
    with torch.device("meta"):
        expected = Generator(config).state_dict()
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    if missing or extra:
        what = f"tensor '{missing[0]}' is missing" if missing else f"unexpected tensor '{extra[0]}'"
        raise SserdError(f"{source}: {what}; not a StyleGAN2 generator in rosinality's layout")
    for key, ref in expected.items():
        if tuple(ref.shape) != tuple(sd[key].shape):
            raise SserdError(f"{source}: '{key}' has shape {list(sd[key].shape)}, a {config.size}px generator "
                             f"needs {list(ref.shape)}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_generator(fg: ForeignGenerator, config: GeneratorConfig) -> Generator:
    generator = Generator(config)
    generator.load_state_dict(fg.state_dict, strict=True)
    return generator.eval()


def import_stylegan(source: str | Path, output: str | Path, *, size: int | None = None,
                    channel_multiplier: int | None = None, half: bool = False, overwrite: bool = False,
                    name: str | None = None) -> Bundle:
    """Convert a rosinality ``.pt`` / NVlabs ``.pkl`` / safetensors StyleGAN2 into a generator-only bundle."""
    src, out = Path(source), Path(output)
    if out.exists() and not overwrite:
        raise SserdError(f"{out} already exists: choose another -o or pass --overwrite")
    fg = read_stylegan(src)
    config = infer_config(fg, src.name, size, channel_multiplier)
    generator = build_generator(fg, config)
    provenance = {
        "source": src.name,
        "format": fg.format,
        "sha256": sha256_of(src),
        "imported": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "latent_avg": "from the file" if fg.latent_avg is not None else "estimated: mean of 4096 mapped z (seed 0)",
        **fg.notes,
    }
    # the recipe is a list of stages (the training commands append theirs); this one trained elsewhere
    card = {"name": name or out.name, "provenance": provenance,
            "recipe": [{"stage": "import-stylegan", "source": src.name, "format": fg.format,
                        "training": "external, see provenance"}]}
    return save_bundle(out, card, generator=generator, latent_avg=fg.latent_avg, half=half, overwrite=overwrite)
