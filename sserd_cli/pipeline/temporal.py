"""Smoothing over time in ``sserd edit``: per-frame codes make a face shimmer.

The encoder reads every frame on its own, so the code of a face that barely moves wanders a little from frame
to frame, and G turns that into a shimmer of skin, brows and eyes the source never had. What should be smooth
is averaged over a centred window of ``radius`` frames each side (Gaussian weights, sigma = radius / 2; a
window ends at the edges of a stretch of tracked frames, it never reaches across a frame without a face):

- the emotion code w_e: the target does not change from frame to frame, so neither should the edit;
- the face code w_s, row by row, in proportion to how little each row moves the mouth. That is read from the
  bundle's card where it records it (:func:`card_mouth_shares`), else measured on the clip's own first tracked
  frames (:func:`mouth_changes`, on the first batch, and on up to
  :data:`PROBE_BATCHES` while no row stands out), so it holds for any bundle: the row that moves the mouth
  most keeps its per-frame value, a row that moves it a quarter as much is smoothed three quarters of the
  way, and the lips follow the speech frame by frame. (Keeping the square root of the share instead cost as
  much mouth error on the benchmark and left more shimmer);
- the colour match of the paste-back (``--color-match``), whose per-frame statistics move with the dark of an
  opening mouth.

A frame leaves once the frames after it that it averages are in: the look-ahead is ``radius`` frames for
the codes and ``radius`` more for the colour, and memory holds a few batches of codes and crops.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..faces.mask import face_mask, mouth_mask
from ..faces.paste import ColorShift, color_shift
from .faces import Transfer, aligned_crops, batch_weights, crop_and_paste, paste_item
from .models import LatentModel

PROBE_PAIRS = 2     # frame pairs of one mouth probe: (rows + 1) renders of this many crops
PROBE_GAP = 2       # frames between the two codes of a pair: speech moves the mouth in that time
PROBE_BATCHES = 3   # at most this many batches probed (their changes summed): a clip may open silent
CLEAR_SHARE = 0.5   # a probe whose second row is below this share of the first has found the mouth: no more


@dataclass(frozen=True)
class SmoothSettings:
    """What ``sserd edit`` smooths over time (see the module docstring); ``radius`` 0 edits every frame from
    its own codes alone."""

    radius: int = 2          # frames each side (the look-ahead); sigma = radius / 2
    emotion: bool = True     # the emotion code w_e
    face_code: bool = True   # w_s, each row as far as it does not move the mouth
    colors: bool = True      # the colour match of the paste-back (with --color-match)

    def __post_init__(self):
        if self.radius < 0:
            raise ValueError(f"smoothing radius must be >= 0, got {self.radius}")

    @property
    def active(self) -> bool:
        return self.radius > 0 and (self.emotion or self.face_code or self.colors)


def gaussian_weights(radius: int) -> np.ndarray:
    """Weights of offsets -radius..radius: a Gaussian with sigma radius / 2 (not normalised)."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (offsets / max(radius / 2.0, 1e-6)) ** 2)


class CentredWindow:
    """Weighted means over a centred window of one stretch of values (tensors or arrays of one shape).

    :meth:`push` returns the ``(key, value, mean)`` of every value whose ``radius`` later values are now in;
    :meth:`end` returns the rest (their windows cut at the stretch's end) and starts a new stretch."""

    def __init__(self, radius: int):
        self.radius = int(radius)
        self.weights = gaussian_weights(self.radius)
        self.values: deque = deque()  # (key, value) from position self.first on
        self.first = 0                # stretch position of values[0]
        self.next = 0                 # stretch position of the next value to come out

    def push(self, key, value) -> list:
        self.values.append((key, value))
        return self._emit(self.first + len(self.values) - 1 - self.radius)

    def end(self) -> list:
        out = self._emit(self.first + len(self.values) - 1)
        self.values.clear()
        self.first = self.next = 0
        return out

    def _emit(self, last: int) -> list:
        out = []
        stop = self.first + len(self.values)  # one past the newest position
        while self.next <= last:
            p = self.next
            lo, hi = max(self.first, p - self.radius), min(stop, p + self.radius + 1)
            w = self.weights[lo - p + self.radius:hi - p + self.radius]
            mean = sum(float(wi) * self.values[q - self.first][1] for wi, q in zip(w, range(lo, hi))) / float(w.sum())
            key, value = self.values[p - self.first]
            out.append((key, value, mean))
            self.next += 1
        while self.values and self.first < self.next - self.radius:  # older values no window needs any more
            self.values.popleft()
            self.first += 1
        return out


def mouth_changes(model: LatentModel, w_s) -> np.ndarray:
    """How much each W+ row of ``model`` moves the mouth (float [n_latent], grey levels), measured on codes
    ``w_s`` [T, n_latent, D] of consecutive frames (T >= 2): for the PROBE_PAIRS frames t whose code moved most
    by t + PROBE_GAP, each row of t's code is swapped for t + PROBE_GAP's, the crop rendered, and the mean
    change inside the mouth taken. Speech moves one row (or two) far more than the others; in a stretch without
    speech the changes are small and alike. Measured on the benchmark's clips, the two most moving pairs of the
    first batch found the mouth's row in each of 6 clips; the first two pairs of a clip, often silent, in none."""
    import torch

    gap = min(PROBE_GAP, len(w_s) - 1)
    # the pairs whose codes moved most: where the batch has speech, those are its syllables
    moved = (w_s[gap:] - w_s[:-gap]).flatten(1).norm(dim=1)
    a = torch.argsort(moved, descending=True)[:PROBE_PAIRS]
    base_codes, later = w_s[a], w_s[a + gap]
    mouth = torch.from_numpy(np.array(mouth_mask(model.resolution, model.zoom))) > 0.5
    with torch.inference_mode():
        base = torch.from_numpy(model.render(base_codes)).float()[:, mouth]
        change = []
        for row in range(w_s.shape[1]):
            swapped = base_codes.clone()
            swapped[:, row] = later[:, row]
            change.append(float((torch.from_numpy(model.render(swapped)).float()[:, mouth] - base).abs().mean()))
    return np.asarray(change)


def card_mouth_shares(model) -> np.ndarray | None:
    """The mouth probe's shares a bundle's card records (``smoothing.mouth_shares``, measured once on clips of its
    own world by ``examples/card_mouth_shares.py``), or None: then each clip is probed. The row that moves the
    mouth is the generator's, not the clip's; probing it on every clip cost up to 3 probes (about 0.5-1.2 s on
    2 CPU cores) on a face the model does not know, where no row stands out."""
    card = getattr(getattr(model, "bundle", None), "card", None) or {}
    shares = (card.get("smoothing") or {}).get("mouth_shares") if isinstance(card.get("smoothing"), dict) else None
    if not isinstance(shares, list) or not shares or not all(isinstance(v, (int, float)) for v in shares):
        return None
    shares = np.asarray(shares, dtype=np.float64)
    if len(shares) != int(card.get("n_latent", len(shares))) or not np.isfinite(shares).all() or shares.max() <= 0:
        return None
    return shares / shares.max()


def measure_mouth_shares(model: LatentModel, batches) -> np.ndarray:
    """:func:`mouth_changes` summed over batches of uint8 crops [B, S, S, 3] (consecutive frames each) and
    divided by the largest: what :func:`card_mouth_shares` reads."""
    total = 0.0
    for crops in batches:
        total = total + mouth_changes(model, model.encode(crops).float())
    return np.asarray(total) / max(float(np.max(total)), 1e-12)


@dataclass
class _Coded:
    item: object            # the FrameItem
    crop: np.ndarray        # its aligned source crop (uint8)


class TemporalEditor:
    """Edits frame items in order: batches of crops -> E -> codes smoothed over time -> G -> paste-back.

    :meth:`push` takes one item (faced or not, with ``.m``, ``.rgb``, ``.weights``, ``.presence``) and returns
    the items that are done, in order; :meth:`finish` returns the rest. An item without a face ends the stretch
    the windows average over. A model that is not a latent editor (``identity``), or smoothing turned off,
    edits batch by batch as :func:`~.faces.crop_and_paste` does. With ``transfer`` each frame gets the motion
    from the plain render of its smoothed face code to the edited one (both rendered in one batch) instead of
    the edited render itself."""

    def __init__(self, model, settings: SmoothSettings = SmoothSettings(), batch_size: int = 8,
                 color_match: bool = False, gate=None, transfer: Transfer | None = None):
        self.model, self.settings, self.gate, self.transfer = model, settings, gate, transfer
        self.batch_size = max(1, int(batch_size))
        self.color_match = color_match
        self.latent = isinstance(model, LatentModel) and settings.active
        self.smooth_colors = color_match and settings.colors and settings.radius > 0 and transfer is None
        self.codes = CentredWindow(settings.radius)
        self.colors = CentredWindow(settings.radius)
        self.changes = 0.0                     # per row, the mouth changes of the probes so far, summed
        self.shares: np.ndarray | None = None  # ... over the largest: 1 for the row that moves the mouth most
        self.keep = None                       # the shares as a [n_latent, 1] tensor on the model's device
        self.probes = 0
        self.probing = True
        known = card_mouth_shares(model) if self.latent and settings.face_code else None
        if known is not None:  # the bundle's own measure: no probe renders in this run
            import torch

            self.shares, self.probing = known, False
            self.keep = torch.from_numpy(known).float().to(model.device)[:, None]
        self.incoming: list = []             # items waiting for a batch (plain mode: for a batch edit)
        self.to_render: list = []            # (_Coded, smoothed w_s, edited W+ code) ready for G
        self.done: list = []

    def push(self, item) -> list:
        if self.gate is not None:
            self.gate.see([item])  # the first crops decide whether the model knows this face (see .domain)
        if item.m is None and self.latent:
            self._end_stretch()
            self.done.append(item)
        else:
            self.incoming.append(item)
            if len(self.incoming) >= self.batch_size:
                self._encode()
        return self._take()

    def edit_all(self, items) -> list:
        """Every item of ``items`` (a whole clip) through :meth:`push` and :meth:`finish`, in order."""
        out = []
        for item in items:
            out += self.push(item)
        return out + self.finish()

    def finish(self) -> list:
        if self.gate is not None:
            self.gate.finish()
        if self.latent:
            self._end_stretch()
        else:
            self._encode()
        return self._take()

    def _take(self) -> list:
        out, self.done = self.done, []
        return out

    def _encode(self) -> None:
        import torch

        items, self.incoming = self.incoming, []
        if not items:
            return
        if not self.latent:
            crop_and_paste(items, self.model, self.color_match, self.transfer)
            self.done += items
            return
        crops = aligned_crops(items, self.model.resolution)
        w_s, w = self.model.latent(crops, batch_weights(items))
        w_e = w - w_s
        if self.probing and self.settings.face_code and len(w_s) > PROBE_GAP:
            # summed over the probes, the batches with speech outweigh a silent one
            self.changes = self.changes + mouth_changes(self.model, w_s)
            self.shares = self.changes / max(float(self.changes.max()), 1e-12)
            self.keep = torch.from_numpy(self.shares).float().to(w_s.device)[:, None]  # 1: own row; 0: the mean
            self.probes += 1
            # one row standing out ends the probing (G's renders are most of an edit's time)
            self.probing = self.probes < PROBE_BATCHES and np.sort(self.shares)[-2] >= CLEAR_SHARE
        with torch.inference_mode():
            for item, crop, s, e in zip(items, crops, w_s, w_e):
                for coded, own, mean in self.codes.push(_Coded(item, crop), torch.stack([s, e])):
                    self._ready(coded, own, mean)

    def _ready(self, coded: _Coded, own, mean) -> None:
        """Frame ``coded``'s edited code from its own [w_s, w_e] (stacked) and their means over its window."""
        w_s, w_e = own
        if self.settings.face_code and self.keep is not None:
            w_s = mean[0] + self.keep * (w_s - mean[0])
        self.to_render.append((coded, w_s, w_s + (mean[1] if self.settings.emotion else w_e)))
        if len(self.to_render) >= self.batch_size:
            self._render()

    def _render(self) -> None:
        import torch

        batch, self.to_render = self.to_render, []
        if not batch:
            return
        if self.transfer is not None:
            # the plain and the edited code of each frame in one call: their difference is the edit alone
            both = self.model.render(torch.stack([w for _, w, _ in batch] + [w for _, _, w in batch]))
            for (coded, _, _), recon, edited in zip(batch, both[:len(batch)], both[len(batch):]):
                self.transfer.paste(coded.item, recon, edited, coded.crop)
                self.done.append(coded.item)
            return
        edited = self.model.render(torch.stack([w for _, _, w in batch]))
        mask = face_mask(self.model.resolution, self.model.zoom)
        for (coded, _, _), crop in zip(batch, edited):
            if self.smooth_colors:
                shift = color_shift(crop, coded.crop, mask)
                for (done, out), _, mean in self.colors.push((coded, crop), shift.as_array()):
                    self._paste(done, out, ColorShift.from_array(mean))
            else:
                self._paste(coded, crop, None)

    def _paste(self, coded: _Coded, crop: np.ndarray, colors: ColorShift | None) -> None:
        paste_item(coded.item, crop, face_mask(self.model.resolution, self.model.zoom), self.color_match, colors)
        self.done.append(coded.item)

    def _end_stretch(self) -> None:
        """Flush every stage: the windows end here."""
        import torch

        self._encode()
        with torch.inference_mode():
            for coded, own, mean in self.codes.end():
                self._ready(coded, own, mean)
        self._render()
        for (coded, crop), _, mean in self.colors.end():
            self._paste(coded, crop, ColorShift.from_array(mean))
