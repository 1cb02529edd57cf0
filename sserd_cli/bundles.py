"""Model bundles: a directory with a card (``model.json``) and one safetensors file per part.

Layout::

    BUNDLE/
      model.json                 the card: format, version, name, resolution, n_latent, style_dim,
                                 generator/encoder/celcl/discriminator config dicts, emotions, parts,
                                 dtype, recipe, provenance, metrics
      generator.safetensors      StyleGAN2 G state dict (rosinality keys) + "latent_avg" [D]
      encoder.safetensors        LatentEncoder state dict
      celcl.safetensors          CELCL state dict
      directions.safetensors     one [n_latent, D] edit direction per emotion name
      mean_codes.safetensors     one [n_latent, D] mean W+ code per emotion name
      discriminator.safetensors  StyleGAN2 D (optional, for fine-tuning)

A bundle may hold only some parts (a generator alone, generator + encoder, a
full SSERD model); asking for a missing part raises a
:class:`~sserd_cli.errors.SserdError` that names it and says how to get it.
Weights are safetensors only (no pickles); loading is bit-exact, and a bundle
saved with ``half=True`` stores floating tensors as float16 (loaded back into
float32 modules).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import SserdError
from .resources import bundled_models_dir

if TYPE_CHECKING:
    from torch import nn

BUNDLE_FORMAT = "sserd-bundle"
BUNDLE_VERSION = 1
CARD_FILE = "model.json"
PARTS = ("generator", "encoder", "celcl", "directions", "mean_codes", "discriminator")
NETWORK_PARTS = ("generator", "encoder", "celcl", "discriminator")
LATENT_AVG_KEY = "latent_avg"  # stored beside G's weights in generator.safetensors

# What to run to get each part; shown whenever a part is missing.
HOW_TO_GET = {
    "generator": "train one with 'sserd train-stylegan' or import StyleGAN2 weights with "
                 "'sserd import-stylegan FILE -o BUNDLE'",
    "encoder": "train one for this generator with 'sserd train-encoder'",
    "celcl": "train the emotion editor with 'sserd train' (after 'sserd train-encoder' and 'sserd build-pairs')",
    "directions": "compute the emotion directions with 'sserd build-pairs'",
    "mean_codes": "compute the per-emotion mean codes with 'sserd build-pairs'",
    "discriminator": "only bundles written by 'sserd train-stylegan' keep a discriminator (needed to fine-tune)",
}

# part -> (module, network class, config class)
_NETWORKS = {
    "generator": ("sserd_cli.nets.stylegan2", "Generator", "GeneratorConfig"),
    "discriminator": ("sserd_cli.nets.stylegan2", "Discriminator", "DiscriminatorConfig"),
    "encoder": ("sserd_cli.nets.encoder", "LatentEncoder", "EncoderConfig"),
    "celcl": ("sserd_cli.nets.celcl", "CELCL", "CELCLConfig"),
}


def part_file(part: str) -> str:
    return f"{part}.safetensors"


def _network_classes(part: str):
    import importlib

    module_name, net_name, cfg_name = _NETWORKS[part]
    module = importlib.import_module(module_name)
    return getattr(module, net_name), getattr(module, cfg_name)


def _fmt_shape(shape) -> str:
    return "[" + ",".join(str(int(s)) for s in shape) + "]"


class Bundle:
    """A model bundle on disk: the card is read eagerly, weights only when a part is asked for."""

    def __init__(self, path: Path, card: dict):
        self.path = Path(path)
        self.card = card

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, parts={self.parts})"

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.path.name)

    @property
    def parts(self) -> list[str]:
        return [p for p in PARTS if p in self.card.get("parts", [])]

    @property
    def resolution(self) -> int:
        return int(self.card["resolution"])

    @property
    def n_latent(self) -> int:
        return int(self.card["n_latent"])

    @property
    def style_dim(self) -> int:
        return int(self.card["style_dim"])

    @property
    def emotions(self) -> list[str]:
        return list(self.card.get("emotions") or [])

    def has(self, part: str) -> bool:
        if part not in PARTS:
            raise ValueError(f"unknown bundle part {part!r}; parts are {', '.join(PARTS)}")
        return part in self.card.get("parts", []) and (self.path / part_file(part)).is_file()

    def require(self, part: str) -> None:
        """Raise a SserdError naming the missing part and how to get it."""
        if not self.has(part):
            present = ", ".join(self.parts) or "nothing"
            raise SserdError(f"model bundle '{self.name}' ({self.path}) has no {part} (it holds: {present}): "
                             f"{HOW_TO_GET[part]}")

    # -- raw tensors

    def tensors(self, part: str) -> dict[str, torch.Tensor]:
        """The part's file as ``name -> tensor`` (as stored: float16 in a half bundle)."""
        self.require(part)
        return _read_safetensors(self.path / part_file(part))

    # -- networks

    def _config(self, part: str):
        _, cfg_cls = _network_classes(part)
        raw = self.card.get(part)
        if not isinstance(raw, dict):
            raise SserdError(f"{self.path / CARD_FILE} has no '{part}' config although the bundle holds a {part}: "
                             "the card is damaged; re-save the bundle")
        try:
            return cfg_cls(**raw)
        except TypeError as exc:
            raise SserdError(f"{self.path / CARD_FILE}: the '{part}' config does not fit this sserd version "
                             f"({exc}); re-save the bundle with this version") from None

    def _network(self, part: str, device) -> "nn.Module":
        self.require(part)
        net_cls, _ = _network_classes(part)
        config = self._config(part)
        weights = self.tensors(part)
        if part == "generator":
            weights.pop(LATENT_AVG_KEY, None)
        net = net_cls(config)
        _check_against(net.state_dict(), weights, self.path / part_file(part), part)
        net.load_state_dict(weights, strict=True)
        return net.eval().to(device)

    def generator(self, device="cpu"):
        """The StyleGAN2 generator (``sserd_cli.nets.stylegan2.Generator``) in eval mode."""
        return self._network("generator", device)

    def encoder(self, device="cpu"):
        """The W+ encoder (``sserd_cli.nets.encoder.LatentEncoder``) in eval mode."""
        return self._network("encoder", device)

    def celcl(self, device="cpu"):
        """The CELCL emotion editor (``sserd_cli.nets.celcl.CELCL``) in eval mode."""
        return self._network("celcl", device)

    def discriminator(self, device="cpu"):
        """The StyleGAN2 discriminator, kept for fine-tuning."""
        return self._network("discriminator", device)

    def latent_avg(self, device="cpu") -> torch.Tensor:
        """The generator's mean latent w (truncation centre, encoder offset base), shape [style_dim], float32."""
        weights = self.tensors("generator")
        if LATENT_AVG_KEY not in weights:
            raise SserdError(f"{self.path / part_file('generator')} has no '{LATENT_AVG_KEY}': re-save the bundle")
        return weights[LATENT_AVG_KEY].float().to(device)

    # -- per-emotion codes

    def _codes(self, part: str) -> dict[str, torch.Tensor]:
        codes = self.tensors(part)
        expected = (self.n_latent, self.style_dim)
        for name, tensor in codes.items():
            if tuple(tensor.shape) != expected:
                raise SserdError(f"{self.path / part_file(part)}: '{name}' has shape {_fmt_shape(tensor.shape)}, "
                                 f"the card says {_fmt_shape(expected)} (n_latent, style_dim): the bundle is "
                                 "inconsistent; rebuild it")
        return {k: v.float() for k, v in codes.items()}

    def directions(self) -> dict[str, torch.Tensor]:
        """Emotion name -> edit direction [n_latent, style_dim] (float32)."""
        return self._codes("directions")

    def mean_codes(self) -> dict[str, torch.Tensor]:
        """Emotion name -> mean W+ code [n_latent, style_dim] (float32)."""
        return self._codes("mean_codes")


def _check_against(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], file: Path,
                   part: str) -> None:
    """One clear line for the first mismatch between a weight file and the network the card describes."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing:
        raise SserdError(f"{file} does not match the {part} config in {CARD_FILE}: tensor '{missing[0]}' is missing "
                         f"({len(missing)} missing in all); the file belongs to another model or is damaged")
    if extra:
        raise SserdError(f"{file} does not match the {part} config in {CARD_FILE}: unexpected tensor '{extra[0]}' "
                         f"({len(extra)} unexpected in all); the file belongs to another model")
    for key, ref in expected.items():
        if tuple(ref.shape) != tuple(got[key].shape):
            raise SserdError(f"{file} does not match the {part} config in {CARD_FILE}: '{key}' is "
                             f"{_fmt_shape(got[key].shape)}, the config needs {_fmt_shape(ref.shape)}")


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SserdError(f"{file} is not a readable safetensors file (truncated or corrupt: {_one_line(exc)}): "
                         "restore it or re-save the bundle") from None


def _validate_safetensors_header(file: Path) -> None:
    """Cheap check at load time: the header parses and the data it announces is all there."""
    try:
        with safe_open(str(file), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SserdError(f"{file} is not a readable safetensors file (truncated or corrupt: {_one_line(exc)}): "
                         "restore it or re-save the bundle") from None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------------------------- loading


def list_bundled() -> list[str]:
    """Names of the bundles shipped in ``models/`` (directories holding a model.json)."""
    root = bundled_models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD_FILE).is_file())


def resolve_bundle_path(name_or_path: str | os.PathLike) -> Path:
    """A path as given, or the bundled directory of that name; SserdError when neither exists."""
    text = str(name_or_path)
    if text == "identity":
        raise SserdError("'identity' is not a model bundle: it is the test model of 'sserd edit --model identity' "
                         "(the crop itself instead of G(E(x)))")
    path = Path(text).expanduser()
    if path.exists():
        return path
    if os.sep not in text and "/" not in text:
        bundled = bundled_models_dir() / text
        if bundled.is_dir():
            return bundled
    names = ", ".join(list_bundled()) or "none installed"
    raise SserdError(f"model bundle '{text}' not found: give a bundle directory or a bundled name ({names}); "
                     "make one with 'sserd import-stylegan' or the training commands")


def read_card(path: Path) -> dict:
    """Read and check ``model.json``; SserdError for a missing, unparsable or foreign card."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise SserdError(f"{path} is not a model bundle: {CARD_FILE} is missing (a bundle is a directory written by "
                         "'sserd import-stylegan' or the training commands)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SserdError(f"{card_path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): "
                         "restore the file or re-save the bundle") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SserdError(f"cannot read {card_path}: {_one_line(exc)}") from None
    if not isinstance(card, dict) or card.get("format") != BUNDLE_FORMAT:
        raise SserdError(f"{card_path} is not an sserd model card (format is not '{BUNDLE_FORMAT}')")
    version = card.get("version")
    if not isinstance(version, int) or version > BUNDLE_VERSION:
        raise SserdError(f"{card_path} has bundle version {version!r}; this sserd reads versions up to "
                         f"{BUNDLE_VERSION}: upgrade sserd")
    for key in ("resolution", "n_latent", "style_dim"):
        if not isinstance(card.get(key), int):
            raise SserdError(f"{card_path} lacks an integer '{key}': the card is damaged; re-save the bundle")
    parts = card.get("parts")
    if not isinstance(parts, list) or any(p not in PARTS for p in parts):
        raise SserdError(f"{card_path}: 'parts' must be a list drawn from {', '.join(PARTS)}")
    return card


def load_bundle(name_or_path: str | os.PathLike) -> Bundle:
    """Open a bundle by path or by the name of a bundled model; checks the card and each listed weight file."""
    path = resolve_bundle_path(name_or_path)
    if path.is_file():
        hint = (f"import it with 'sserd import-stylegan {path} -o BUNDLE'" if path.suffix in (".pt", ".pkl", ".pth")
                else "give the bundle directory")
        raise SserdError(f"{path} is a file, not a model bundle directory: {hint}")
    card = read_card(path)
    for part in card["parts"]:
        file = path / part_file(part)
        if not file.is_file():
            raise SserdError(f"model bundle {path} lists a {part} but {file.name} is missing: the bundle is "
                             "incomplete; copy the whole directory again or re-save it")
        _validate_safetensors_header(file)
    return Bundle(path, card)


# ----------------------------------------------------------------------------------------- saving


def _config_dict(module: Any) -> dict | None:
    config = getattr(module, "config", None)
    if config is not None and dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return None


def _as_tensors(part: str, value: Any, half: bool) -> dict[str, torch.Tensor]:
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if not isinstance(value, Mapping) or not all(isinstance(v, torch.Tensor) for v in value.values()):
        raise TypeError(f"{part} must be an nn.Module or a mapping name -> tensor")
    out = {}
    for key, tensor in value.items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        # contiguous private copies: safetensors refuses views that share memory
        out[str(key)] = tensor.contiguous().clone()
    return out


@torch.no_grad()
def _estimate_latent_avg(generator: "nn.Module", n: int = 4096) -> torch.Tensor:
    return generator.mean_latent(n, generator=torch.Generator().manual_seed(0)).reshape(-1).float().cpu()


def save_bundle(
    path: str | os.PathLike,
    card: dict,
    *,
    generator=None,
    encoder=None,
    celcl=None,
    discriminator=None,
    directions: Mapping[str, torch.Tensor] | None = None,
    mean_codes: Mapping[str, torch.Tensor] | None = None,
    latent_avg: torch.Tensor | None = None,
    half: bool = False,
    overwrite: bool = False,
) -> Bundle:
    """Write a bundle atomically (a temp directory beside ``path``, renamed at the end) and return it loaded.

    Networks may be given as modules (their ``.config`` dataclass goes into the
    card) or as state dicts (then ``card`` must hold the config under the
    part's name). ``latent_avg`` [D] is stored with the generator; when omitted
    it is estimated as the mean of 4096 mapped z (seed 0). ``half`` stores
    floating tensors as float16. An existing ``path`` is replaced only with
    ``overwrite``.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise SserdError(f"{target} already exists: choose another output or pass --overwrite")
    card = json.loads(json.dumps(card))  # private, JSON-clean copy (fails early on non-JSON values)
    nets = {"generator": generator, "encoder": encoder, "celcl": celcl, "discriminator": discriminator}
    files: dict[str, dict[str, torch.Tensor]] = {}
    for part, value in nets.items():
        if value is None:
            continue
        cfg = _config_dict(value)
        if cfg is not None:
            card[part] = cfg
        elif not isinstance(card.get(part), dict):
            raise SserdError(f"saving a {part} from a state dict needs its config in card['{part}']")
        files[part] = _as_tensors(part, value, half)
    if generator is not None:
        if latent_avg is None:
            if not isinstance(generator, torch.nn.Module):
                raise SserdError("saving a generator state dict needs latent_avg (the mean w)")
            latent_avg = _estimate_latent_avg(generator)
        avg = latent_avg.detach().float().reshape(-1).cpu()
        files["generator"][LATENT_AVG_KEY] = (avg.half() if half else avg).contiguous().clone()
    for part, codes in (("directions", directions), ("mean_codes", mean_codes)):
        if codes is not None:
            files[part] = _as_tensors(part, dict(codes), half)

    card = _complete_card(card, target, list(files), half)
    _check_card_consistency(card, files)

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as exc:
        raise SserdError(f"{target.parent}: output folder is not writable ({exc.strerror or exc})") from None
    try:
        for part, tensors in files.items():
            save_file(tensors, str(tmp / part_file(part)), metadata={"format": "pt", "sserd_part": part})
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        _apply_default_permissions(tmp)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(target)


def _apply_default_permissions(folder: Path) -> None:
    """mkdtemp (and safetensors' own temp file) make owner-only entries; give the bundle the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for file in folder.iterdir():
        os.chmod(file, 0o666 & ~umask)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished temp directory into place; an old bundle is swapped out, then removed."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _complete_card(card: dict, target: Path, parts: list[str], half: bool) -> dict:
    gen, enc = card.get("generator"), card.get("encoder")
    if isinstance(gen, dict) and "size" in gen:
        card.setdefault("resolution", int(gen["size"]))
        card.setdefault("n_latent", 2 * (int(gen["size"]).bit_length() - 1) - 2)
        card.setdefault("style_dim", int(gen.get("style_dim", 512)))
    if isinstance(enc, dict):
        card.setdefault("resolution", int(enc.get("size", 256)))
        card.setdefault("n_latent", int(enc.get("n_latent", 14)))
        card.setdefault("style_dim", int(enc.get("style_dim", 512)))
    for key in ("resolution", "n_latent", "style_dim"):
        if not isinstance(card.get(key), int):
            raise SserdError(f"the card needs '{key}' (give a generator or encoder, or set it)")
    ordered = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "name": card.pop("name", None) or target.name,
        "resolution": card.pop("resolution"),
        "n_latent": card.pop("n_latent"),
        "style_dim": card.pop("style_dim"),
        "parts": [p for p in PARTS if p in parts],
        "dtype": "float16" if half else "float32",
        "emotions": card.pop("emotions", None),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "sserd_version": __version__,
    }
    for key in ("format", "version", "parts", "dtype", "created", "sserd_version"):
        card.pop(key, None)
    for part in NETWORK_PARTS:
        if part in card:
            ordered[part] = card.pop(part)
    ordered.setdefault("recipe", card.pop("recipe", {}))
    ordered.setdefault("provenance", card.pop("provenance", {}))
    ordered.setdefault("metrics", card.pop("metrics", {}))
    ordered.update(card)  # anything else the caller recorded
    return ordered


def _check_card_consistency(card: dict, files: dict[str, dict[str, torch.Tensor]]) -> None:
    shape = (card["n_latent"], card["style_dim"])
    gen = card.get("generator")
    if isinstance(gen, dict) and "size" in gen and int(gen["size"]) != card["resolution"]:
        raise SserdError(f"generator size {gen['size']} differs from the card's resolution {card['resolution']}")
    enc = card.get("encoder")
    if isinstance(enc, dict) and "n_latent" in enc and int(enc["n_latent"]) != card["n_latent"]:
        raise SserdError(f"encoder n_latent {enc['n_latent']} differs from the card's n_latent {card['n_latent']}")
    names: list[str] = []
    for part in ("directions", "mean_codes"):
        for key, tensor in files.get(part, {}).items():
            if tuple(tensor.shape) != shape:
                raise SserdError(f"{part} '{key}' has shape {_fmt_shape(tensor.shape)}, expected "
                                 f"{_fmt_shape(shape)} (n_latent, style_dim)")
            if key not in names:
                names.append(key)
    if card.get("emotions") is None and names:
        from .emotions import EMOTIONS

        card["emotions"] = [e for e in EMOTIONS if e in names] + [n for n in names if n not in EMOTIONS]
    if card.get("emotions") is None:
        card["emotions"] = []
