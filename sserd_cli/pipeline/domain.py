"""Does the model know this face? The domain check of ``sserd edit``, run before anything is written.

A latent editor can only edit a face it can reconstruct: on a face unlike its training faces the encoder's
code decodes to some face of its own world (the synthetic default turns a real speaker into a blurred mask
whose mouth never moves), and the edit is ruined however good the emotion code is. So the first few
tracked crops of the clip are reconstructed, G(E(x)) against x inside the face mask (the same measure,
:func:`sserd_cli.faces.domain.reconstruction_errors`, that the training stages record on their held-out
faces in ``card["domain"]``), and the median is compared with the bundle's own range.

The rule: refuse when the median error is above ``FACTOR`` times the bundle's 99th percentile. Held-out
faces of the bundle's own kind sit at or below that percentile by definition, a face the model does not know
is many times above it (the numbers are in docs/editing.md, "Domain check"); the factor leaves room for the codec,
the aligner's jitter and lighting a dataset lacked. The median of several crops keeps one bad crop (a blink,
a motion blur) from deciding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SserdError
from ..faces.align import warp_to_crop
from ..faces.domain import reconstruction_errors

FACTOR = 1.5       # times the held-out 99th percentile (see the module docstring)
# A reference only lends its expression, and its most expressive frames are the ones least like the held-out
# faces, so a reference gets more room: the bundled synthetic references of an unseen seed reach 1.8x the
# 99th percentile, real photos of people start near 4.7x (docs/references.md); 3x sits between them.
REFERENCE_FACTOR = 3.0
CROPS = 4          # tracked crops measured: a bounded cost, a median that one odd crop cannot move
ADVICE = ("edit anyway with --force, or use a model trained on such faces (sserd prepare, then the training "
          "recipe in docs/training.md)")


def card_statistics(card: dict) -> dict | None:
    """The held-out reconstruction statistics a card records (None for an older card without them)."""
    stats = card.get("domain")
    if isinstance(stats, dict) and stats.get("metric") == "masked_mse" and isinstance(stats.get("q99"), (int, float)):
        return stats
    return None


@dataclass(frozen=True)
class DomainCheck:
    """What the check measured on one source, against the bundle's own range."""

    model: str
    measured: float  # median masked MSE of the crops
    crops: int
    stats: dict
    factor: float = FACTOR

    @property
    def limit(self) -> float:
        return self.factor * float(self.stats["q99"])

    @property
    def known(self) -> bool:
        return self.measured <= self.limit

    def describe(self, source) -> str:
        s = self.stats
        return (f"{source}: model '{self.model}' does not know this face: reconstructing the first {self.crops} "
                f"face crops gives an error of {self.measured:.4f} (masked MSE), against {s['q50']:.4f} "
                f"(median) to {s['q99']:.4f} (99th percentile) on its own held-out training faces, above its "
                f"limit of {self.limit:.4f}")


def measure(model, crops: np.ndarray, stats: dict, factor: float = FACTOR) -> DomainCheck:
    """Reconstruct uint8 crops [N, S, S, 3] with a latent model's G and E and compare them with ``stats``
    (``factor``: the limit in 99th percentiles; :data:`REFERENCE_FACTOR` for a reference)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(crops)).to(model.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.inference_mode():
        errors = reconstruction_errors(model.generator, model.encoder, x, model.zoom)
    return DomainCheck(model.name, float(np.median(errors)), len(errors), stats, factor)


class DomainGate:
    """The check inside a running edit: it sees the model stage's first tracked crops (their pixels are warped
    once more; the model's E and G run once more on them, a bounded cost) and decides once ``count`` crops are
    seen, or at the end of a clip with fewer. A refusal raises :class:`SserdError` in the model stage: the
    run stops, and the temporary output is removed (nothing is written). With ``force`` the edit goes on and
    :attr:`check` says what was measured."""

    def __init__(self, model, force: bool = False, source="", count: int = CROPS):
        self.model, self.force, self.source, self.count = model, force, source, count
        self.stats = card_statistics(getattr(getattr(model, "bundle", None), "card", {}) or {})
        self.crops: list[np.ndarray] = []
        self.check: DomainCheck | None = None

    @property
    def pending(self) -> bool:
        return self.stats is not None and self.check is None

    def see(self, items) -> None:
        """Items about to be edited (with ``.m`` and ``.rgb``)."""
        if not self.pending:
            return
        for item in items:
            if item.m is not None and len(self.crops) < self.count:
                self.crops.append(warp_to_crop(item.rgb, item.m, self.model.resolution))
        if len(self.crops) >= self.count:
            self.finish()

    def finish(self) -> None:
        """Decide on the crops seen so far (none: nothing to decide, the clip had no face)."""
        if self.pending and self.crops:
            self.check = check_source(self.source, np.stack(self.crops), self.model, self.force)


def check_source(source, crops: np.ndarray, model, force: bool) -> DomainCheck | None:
    """Refuse (SserdError) a source whose crops the model does not know, unless ``force``. None when there is
    nothing to check: no crops, or a model without a card's statistics."""
    stats = card_statistics(getattr(getattr(model, "bundle", None), "card", {}) or {})
    if stats is None or len(crops) == 0:
        return None
    check = measure(model, crops, stats)
    if not check.known and not force:
        raise SserdError(f"{check.describe(source)}; {ADVICE}")
    return check


# Transfer rendering moves the source's own face, so it does not need the model to reconstruct it: what it
# needs is a motion field that a face survives. The first crops' fields are measured (at strength 1: the model's
# own edit) and a source is refused only where they would tear the face: displacements near the field's bound
# (the default model's largest is 0.05-0.19 eye distances on the bundled clips, the astronaut and a MEAD
# speaker, with no fold) or a warp that folds over.
MAX_DISPLACEMENT = 0.35   # eye distances, the median over the crops of each field's largest displacement
MAX_FOLD = 0.01           # share of a field's pixels where the warp folds over (median over the crops)


@dataclass(frozen=True)
class TransferCheck:
    """What the transfer check measured on one source."""

    model: str
    displacement: float  # eye distances (median over the crops of the largest)
    fold: float          # share of the field that folds over (median)
    crops: int

    @property
    def known(self) -> bool:
        return self.displacement <= MAX_DISPLACEMENT and self.fold <= MAX_FOLD

    def describe(self, source) -> str:
        return (f"{source}: model '{self.model}' cannot carry its edit onto this face: on the first {self.crops} "
                f"face crops its motion field moves the face by up to {self.displacement:.2f} eye distances "
                f"(limit {MAX_DISPLACEMENT}) and folds over on {100 * self.fold:.1f} % of it (limit "
                f"{100 * MAX_FOLD:.0f} %)")


class TransferGate:
    """The check of transfer rendering inside a running edit, with :class:`DomainGate`'s interface: it sees the
    first tracked crops, renders their edits once more (a bounded cost) and decides once ``count`` are seen.
    For latent models (a model with no picture of its own, ``identity``, moves nothing)."""

    def __init__(self, model, transfer, force: bool = False, source="", count: int = CROPS):
        self.model, self.transfer, self.force, self.source, self.count = model, transfer, force, source, count
        self.items: list = []
        self.check: TransferCheck | None = None

    @property
    def pending(self) -> bool:
        return self.check is None

    def see(self, items) -> None:
        if not self.pending:
            return
        for item in items:
            if item.m is not None and len(self.items) < self.count:
                self.items.append(item)
        if len(self.items) >= self.count:
            self.finish()

    def finish(self) -> None:
        if not (self.pending and self.items):
            return
        from .faces import aligned_crops, batch_weights

        crops = aligned_crops(self.items, self.model.resolution)
        weights = batch_weights(self.items)
        if weights is not None:  # the model's own edit, at strength 1: the user's --strength is the user's choice
            weights = weights / np.maximum(np.abs(weights).max(axis=1, keepdims=True), 1e-12)
        recon, edited = self.model.edit_pair(crops, weights)
        eye = self.transfer.estimator.eye_distance
        moved, folds = [], []
        for r, e in zip(recon, edited):
            motion = self.transfer.motion(r, e)
            moved.append(motion.magnitude() / eye)
            folds.append(motion.fold_fraction())
        self.items = []
        self.check = TransferCheck(self.model.name, float(np.median(moved)), float(np.median(folds)), len(crops))
        if not self.check.known and not self.force:
            raise SserdError(f"{self.check.describe(self.source)}; edit anyway with --force, or use --render "
                             "generate")
