"""What the edit pipeline asks of a model: aligned face crops in, edited crops out.

- :class:`IdentityModel` (``--model identity``): the "edit" is the aligned crop itself. With it the
  whole pipeline (decode, faces, warp, paste-back, encode, audio) can be tested and timed without
  trained weights, and must reproduce its input.
- :class:`SserdModel`: the paper's inference (section 3): crops -> E -> w_s; the reference -> E -> w_r
  once (codes averaged over the reference's frames), or the bundle's mean code of ``--emotion``, or, for a
  reference face the model does not know, the mean codes weighted by what a real-face classifier read on it;
  CELCL -> w_e; G(w_s + strength * w_e) at the bundle's resolution. Batched, on the chosen device,
  fp16 autocast on CUDA.
- :class:`ReconstructionModel` (G(E(x))) and :class:`DirectionModel` (w_s + beta * d_e): the baselines
  of ``sserd eval synthetic --model``, through the same crop -> model -> paste-back path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..emotions import emotion_index
from ..errors import SserdError

IDENTITY = "identity"
DEFAULT_MODEL = "sserd-synthetic"
# auto: float16 autocast on CUDA, float32 on a CPU; float32: every network in float32 everywhere; bfloat16: the
# generator's renders in bfloat16 (on a CPU only where it runs natively, AVX512-BF16 or AMX)
PRECISIONS = ("auto", "float32", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise SserdError(f"unknown precision '{precision}': use {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class Target:
    """What to edit towards: an emotion name, or aligned reference crops [N, S, S, 3] uint8, with (where a
    real-face classifier read them, see :mod:`.reference`) their p(class) as ``reading``."""

    emotion: str | None = None
    reference: np.ndarray | None = None
    reading: dict[str, float] | None = None

    def __post_init__(self):
        if (self.emotion is None) == (self.reference is None):
            raise SserdError("give exactly one of --ref REF or --emotion NAME")
        if self.emotion is not None:
            emotion_index(self.emotion)  # a clear error for unknown names


class EditModel(ABC):
    """An editor of aligned face crops. ``resolution`` is the crop side it works at, ``zoom`` the
    framing of its crops (1.0: FFHQ framing; see :mod:`sserd_cli.faces.align`).

    A run may edit towards several targets (one per span of the video, see :mod:`.spans`): they are set
    once, and each :meth:`edit` call says per crop how strongly to go towards each."""

    name: str
    resolution: int
    zoom: float = 1.0

    def set_target(self, target: Target) -> None:
        """Fix the one target every following :meth:`edit` call edits towards (computed once per run)."""
        self.set_targets([target])

    @abstractmethod
    def set_targets(self, targets: list[Target]) -> None:
        """Fix the targets that :meth:`edit`'s ``weights`` columns refer to (computed once per run)."""

    @abstractmethod
    def edit(self, crops: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Edited crops: uint8 [B, S, S, 3] RGB in, same shape out. ``weights`` [B, n_targets] is the
        strength towards each target per crop (None: 1 towards the first target, for every crop)."""

    def edit_pair(self, crops: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(the model's picture of the crops unedited, edited crops): what transfer rendering carries from one
        to the other (see :mod:`sserd_cli.faces.transfer`). A model without a picture of its own gives the
        crops themselves."""
        return crops, self.edit(crops, weights)


class IdentityModel(EditModel):
    """The pass-through model: returns the aligned crops unchanged (the target is validated, then unused)."""

    name = IDENTITY

    def __init__(self, resolution: int = 512):
        # 512 px keeps a face of up to ~400 px frame height at full detail through warp and paste-back
        self.resolution = int(resolution)

    def set_targets(self, targets: list[Target]) -> None:
        self.targets = list(targets)

    def edit(self, crops: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return crops


class LatentModel(EditModel):
    """An editor in the generator's latent space: crops -> E -> w_s -> :meth:`codes` -> G. Subclasses
    say how the code is changed; batched, on the chosen device, fp16 autocast on CUDA (``precision`` auto).
    ``precision`` bfloat16 renders the generator alone in bfloat16 (2.3 ms a 64-px render of the default
    bundle against 5.3 in float32 on 2 cores; 50 dB PSNR from the float32 render, at most 7 grey levels); the
    encoder and CELCL stay float32, so the codes, the domain check and the smoothing's probes do not move. It
    is not the CPU default: on the benchmark its rounding, different in every frame, raised the flicker from
    1.18 to 1.24 of the truth's (accuracy 0.949 -> 0.947, agreement 0.752 -> 0.751)."""

    precision = "auto"  # see PRECISIONS; set_precision() changes it

    n_targets = 1  # set by set_targets()

    def __init__(self, bundle, device="cpu"):
        import torch

        self.bundle = bundle
        self.name = str(bundle.card.get("name") or bundle.path.name)
        self.resolution = int(bundle.card["resolution"])
        # crops must have the framing the bundle was trained on (the paper's 320 -> 256 is zoom 1.25)
        self.zoom = float(bundle.card.get("framing", {}).get("zoom", 1.0))
        self.device = torch.device(device)
        self.encoder = bundle.encoder(self.device).eval()
        self.generator = bundle.generator(self.device).eval()

    def set_precision(self, precision: str) -> None:
        from ..runtime import cpu_runs_bfloat16

        check_precision(precision)
        if precision == "bfloat16" and self.device.type == "cpu" and not cpu_runs_bfloat16():
            raise SserdError("this CPU does not run bfloat16 natively (no AVX512-BF16 or AMX), so it would be "
                             "slower than float32: use --precision auto")
        self.precision = precision

    @abstractmethod
    def codes(self, w_s, weights=None):
        """The edited W+ codes of source codes ``w_s`` [B, n_latent, D]; ``weights`` [B, n_targets] as in
        :meth:`EditModel.edit` (a tensor on ``w_s``'s device, or None)."""

    def edit(self, crops: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._autocast():
            return self.render(self.codes(self.encode(crops), weights))

    def edit_pair(self, crops: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(G(w_s), G(edited code)) of uint8 crops, rendered in one batch."""
        import torch

        with torch.inference_mode(), self._autocast():
            w_s = self.encode(crops)
            both = self.render(torch.cat([w_s, self.codes(w_s, weights)]))
        return both[:len(crops)], both[len(crops):]

    def latent(self, crops: np.ndarray, weights: np.ndarray | None = None):
        """(w_s, edited codes) of uint8 crops, float32 [B, n_latent, D] each: what :meth:`edit` renders."""
        import torch

        with torch.inference_mode(), self._autocast():
            w_s = self.encode(crops)
            return w_s.float(), self.codes(w_s, weights).float()

    def render(self, w) -> np.ndarray:
        """G(w): W+ codes [B, n_latent, D] -> uint8 crops [B, S, S, 3]."""
        import torch

        with torch.inference_mode(), self._autocast(), self._render_autocast():
            return _to_uint8(self.generator.synthesis(w, noise_mode="const", channels_last=True))

    def _weights(self, weights, batch: int, like):
        """``weights`` as a [batch, n_targets] tensor like ``like``; None: 1 towards the first target."""
        import torch

        if torch.is_tensor(weights):
            return weights.to(device=like.device, dtype=like.dtype)
        if weights is None:
            weights = np.zeros((batch, max(1, self.n_targets)))
            weights[:, 0] = 1.0
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (batch, max(1, self.n_targets)):
            raise ValueError(f"weights {weights.shape} do not match {batch} crops and {self.n_targets} targets")
        return torch.from_numpy(weights).to(device=like.device, dtype=like.dtype)

    def encode(self, crops: np.ndarray):
        """E(x): uint8 crops [B, S, S, 3] -> W+ codes [B, n_latent, D] on the model's device."""
        import torch

        with torch.inference_mode(), self._autocast():
            x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
            return self.encoder(x)

    def _autocast(self):
        import contextlib

        import torch

        if self.device.type == "cuda" and self.precision == "auto":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _render_autocast(self):
        """bfloat16 for the generator with ``precision`` bfloat16 (see the class docstring)."""
        import contextlib

        import torch

        if self.precision == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


REFERENCE_PATHS = ("auto", "latent", "reading")  # how a reference becomes w_r; see SserdModel


class SserdModel(LatentModel):
    """SSERD inference from a model bundle (section 3): the reference -> E -> w_r once (codes averaged
    over the reference's frames), or the bundle's mean code of ``--emotion``; CELCL(w_s, w_r) -> w_e;
    G(w_s + strength * w_e).

    ``reference_path`` says how a reference becomes w_r: ``latent`` is the paper's E(reference); ``reading``
    is sum_k p_k * mean code_k with p the real-face classifier's reading of the reference (its mouth cannot
    reach the edit: only seven numbers pass); ``auto`` takes the paper's path for a reference the model knows
    (the source's domain check, :mod:`.domain`, on the reference's crops, with a reference's wider limit)
    and the reading for one it does not. An encoder trained on one world maps a face of another to a code of
    its own world, and CELCL then reads from it partly that face's mouth (docs/references.md)."""

    def __init__(self, bundle, device="cpu", strength: float = 1.0, reference_path: str = "auto",
                 reading_power: float = 4.0):
        super().__init__(bundle, device)
        if reference_path not in REFERENCE_PATHS:
            raise SserdError(f"unknown reference path '{reference_path}': use {', '.join(REFERENCE_PATHS)}")
        self.strength = float(strength)
        self.reference_path = reference_path
        self.reading_power = float(reading_power)  # p_k ** power, renormalised: a clear top class, less blur
        self.celcl = bundle.celcl(self.device).eval()
        self.w_r: list = []
        self.target_notes: list[str] = []  # how each reference was taken, for the run's summary

    def set_targets(self, targets: list[Target]) -> None:
        self.target_notes = []
        self.w_r = [self._reference_code(target) for target in targets]
        self.n_targets = len(self.w_r)

    def _reference_code(self, target: Target):
        import torch

        if target.emotion is not None:
            return self._mean_code(target.emotion)
        if self._reads(target):
            read = {k: v for k, v in target.reading.items() if k in self.bundle.mean_codes()}
            p = {k: v ** self.reading_power for k, v in read.items()}
            total = sum(p.values())
            if total <= 0:
                raise SserdError(f"model '{self.name}' has no mean code for any class the reference was read as")
            code = sum((v / total) * self._mean_code(k) for k, v in p.items())
            top = sorted(read.items(), key=lambda kv: -kv[1])[:2]
            read_total = sum(read.values())
            why = (" (the model does not know this face; --reference-path latent uses its code anyway)"
                   if self.reference_path == "auto" else "")
            self.target_notes.append("reference read as " + ", ".join(f"{k} {v / read_total:.2f}" for k, v in top)
                                     + " by the real-face emotion classifier" + why)
            return code
        codes = [self.encode(chunk) for chunk in np.array_split(target.reference, max(1, len(target.reference) // 8))]
        return torch.cat(codes).float().mean(dim=0, keepdim=True)

    def _reads(self, target: Target) -> bool:
        """Whether this reference goes through its reading (see the class docstring)."""
        if self.reference_path == "latent":
            return False
        if target.reading is None:
            if self.reference_path == "reading":
                raise SserdError("--reference-path reading needs the real-face emotion classifier, which this "
                                 "installation lacks (models/emotion-fer): reinstall sserd")
            return False
        if self.reference_path == "reading":
            return True
        from .domain import REFERENCE_FACTOR, card_statistics, measure

        stats = card_statistics(self.bundle.card)
        if stats is None:
            return False  # an older card cannot say which faces are its own: the paper's path
        return not measure(self, target.reference, stats, REFERENCE_FACTOR).known

    def _mean_code(self, emotion: str):
        import torch

        codes = self.bundle.mean_codes()
        key = emotion.strip().lower()
        if key not in codes:
            have = ", ".join(sorted(codes)) or "none"
            raise SserdError(f"model '{self.name}' has no mean code for '{key}' (it has: {have}); "
                             "use --ref with a reference image of that emotion instead")
        code = codes[key].to(self.device, torch.float32)
        return code.reshape(1, *code.shape[-2:])

    def codes(self, w_s, weights=None):
        if not self.w_r:
            raise RuntimeError("set_target() must be called before edit()")
        weights = self._weights(weights, len(w_s), w_s)
        w = w_s.clone()
        for t, w_r in enumerate(self.w_r):
            rows = weights[:, t] != 0  # each target's emotion code only for the crops that go towards it
            if bool(rows.any()):
                w_e = self.celcl(w_s[rows], w_r.expand(int(rows.sum()), -1, -1).to(w_s.dtype))
                w[rows] = w[rows] + (self.strength * weights[rows, t])[:, None, None] * w_e
        return w


class ReconstructionModel(LatentModel):
    """G(E(x)) with no emotion code: what inversion alone does to a face (a benchmark baseline)."""

    def set_targets(self, targets: list[Target]) -> None:
        self.targets = list(targets)
        self.n_targets = len(self.targets)

    def codes(self, w_s, weights=None):
        return w_s


class DirectionModel(LatentModel):
    """The pair-building edit used as an editor: w_s + beta * d_e with the bundle's SVM direction of the
    target emotion (eq. 12; a benchmark baseline). It needs an emotion name; a neutral target keeps w_s."""

    def __init__(self, bundle, device="cpu", beta: float | None = None):
        super().__init__(bundle, device)
        self.betas = {e: float(beta) for e in bundle.directions()} if beta is not None else pairs_betas(bundle.card)
        self.directions = bundle.directions()
        self.steps: list = []

    def set_targets(self, targets: list[Target]) -> None:
        self.steps = [self._step(target) for target in targets]
        self.n_targets = len(self.steps)

    def _step(self, target: Target):
        if target.emotion is None:
            raise SserdError("the direction edit needs an emotion name (--emotion), not a reference")
        key = target.emotion.strip().lower()
        if key != "neutral" and key not in self.directions:
            raise SserdError(f"model '{self.name}' has no direction for '{key}'; rebuild it with 'sserd build-pairs'")
        return None if key == "neutral" else self.betas.get(key, DEFAULT_BETA) * self.directions[key].to(self.device)

    def codes(self, w_s, weights=None):
        weights = self._weights(weights, len(w_s), w_s)
        w = w_s
        for t, step in enumerate(self.steps):
            if step is not None:  # a neutral target keeps the source code
                w = w + weights[:, t, None, None] * step.to(w_s.dtype)
        return w


DEFAULT_BETA = 15.0  # build-pairs' default step along a direction (the paper's)


def pairs_betas(card: dict) -> dict[str, float]:
    """The step per emotion ``sserd build-pairs`` used for a bundle: the card's ``edit_betas``, else the fixed
    beta of its recipe, else the default (missing emotions fall back to the default too)."""
    if isinstance(card.get("edit_betas"), dict):
        return {str(k): float(v) for k, v in card["edit_betas"].items()}
    for entry in reversed(card.get("recipe") or []):
        if isinstance(entry, dict) and entry.get("stage") == "build-pairs":
            beta = entry.get("config", {}).get("beta")
            if isinstance(beta, (int, float)):
                return {e: float(beta) for e in card.get("emotions", [])}
    return {}


def _to_uint8(image) -> np.ndarray:
    """[-1, 1] float [B, 3, S, S] -> uint8 [B, S, S, 3]."""
    x = image.float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to("cpu").byte().permute(0, 2, 3, 1).contiguous().numpy()


def trained_only_on_synthetic(card: dict) -> bool:
    """Whether a bundle's card says its training data was the synthetic world only: a ``domain`` of
    "synthetic" (top level or in ``provenance``), the default bundle's name, or every ``*_data`` entry of
    the provenance (the training stages record their data folders there) naming a synthetic set."""
    provenance = card.get("provenance") if isinstance(card.get("provenance"), dict) else {}
    for holder in (card, provenance):
        for key in ("domain", "training_domain", "trained_on"):
            value = holder.get(key)
            if isinstance(value, str) and value.strip().lower().startswith("synthetic"):
                return True
    if card.get("name") == DEFAULT_MODEL:
        return True
    data = [str(v).lower() for k, v in provenance.items() if k.endswith("_data") and v]
    return bool(data) and all("synth" in v for v in data)


SYNTHETIC_WARNING = ("model '{name}' was trained only on synthetic faces (like the clips in examples/): on real "
                     "faces it will edit poorly. "
                     "For real faces train one (sserd prepare / train-encoder / build-pairs / train) or import "
                     "StyleGAN2 weights (sserd import-stylegan) and train on them.")


def load_model(name: str, device: str = "auto", strength: float = 1.0, warn=None,
               reference_path: str = "auto", precision: str = "auto") -> EditModel:
    """``identity``, a bundle path, or the name of a bundle shipped in ``models/``; ``precision`` one of
    :data:`PRECISIONS` (the identity model has no networks: it takes any)."""
    check_precision(precision)  # the identity model has no networks to set, but a wrong name is still wrong
    if name == IDENTITY:
        return IdentityModel()
    from ..resources import bundled_models_dir
    from ..runtime import select_device

    if name == DEFAULT_MODEL and not (bundled_models_dir() / name).is_dir():
        raise SserdError(f"the default model '{DEFAULT_MODEL}' is missing from this install "
                         f"({bundled_models_dir() / name}): reinstall sserd, or pass --model identity or "
                         "--model PATH/TO/BUNDLE")
    try:
        from ..bundles import load_bundle
    except ImportError as exc:  # the bundles module is part of the package; a broken install lands here
        raise SserdError(f"cannot load model bundles in this install ({exc}): reinstall sserd") from None
    bundle = load_bundle(name)
    model = SserdModel(bundle, select_device(device), strength, reference_path)
    model.set_precision(precision)
    from .domain import card_statistics

    # a card with held-out statistics gets the domain check of each source instead (see .domain): the warning
    # is for older cards only, which cannot say whether a face is theirs
    if warn is not None and card_statistics(bundle.card) is None and trained_only_on_synthetic(bundle.card):
        warn(SYNTHETIC_WARNING.format(name=model.name))
    return model
