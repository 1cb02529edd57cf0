"""Emotion contrastive loss of the paper (eq. 5-6) and the cache of earlier codes it draws from.

For every code ``w_i`` of emotion ``k`` in the batch, one cached code of emotion ``k``
is the positive and one cached code of each other emotion ``k' != k`` is a negative:

    l_i = -log( exp(s(w_i, w+)/tau) / (exp(s(w_i, w+)/tau) + sum_k' exp(s(w_i, w_k')/tau)) )
    L_cl = sum_i l_i                                   (eq. 6; ``reduction="mean"`` divides)

Similarity ``s`` is the cosine (both codes L2-normalised over the flattened W+ code),
not the raw dot product the paper writes. Why: a W+ code has 14x512 = 7168 (18x512 at
1024 px) entries; raw dot products of such codes are in the hundreds to thousands, so
``/ tau = 0.1`` gives logits of 1e3-1e4. The softmax is then one-hot, the loss is either
exactly 0 or grows linearly, and its gradient rewards inflating the norm of the codes,
which pushes ``w_s + w_e`` out of the generator's latent distribution. The cosine bounds
the logits to [-1/tau, 1/tau] = [-10, 10], the usual regime of InfoNCE with tau = 0.1.

Cache semantics (paper: "we cache emotion latent codes from previous iterations"):
- the loss only reads the cache; call ``cache.push(codes, labels)`` *after* the loss,
  so positives and negatives always come from earlier iterations;
- an emotion with no cached code yet contributes nothing: it is dropped from the
  negatives of every sample, and a sample whose own emotion has no cached code (no
  positive) or for which no negative exists is skipped (its term is 0). When every
  sample is skipped (the very first iteration) the loss is an exact 0 that is still
  connected to ``codes`` (zero gradient, valid ``backward()``, no unused-parameter
  surprise under DDP). ``contrastive_terms`` reports which samples were active;
- each emotion keeps its ``per_emotion`` most recent codes (ring buffer, oldest
  replaced first);
- sampling uses a ``torch.Generator`` owned by the cache (seeded, saved in
  ``state_dict``), so a resumed run draws exactly the same codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..emotions import EMOTIONS

GatherFn = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]


def distributed_gather(codes: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather ``codes``/``labels`` over the default process group (DDP hook for ``CodeCache``).

    Every rank then pushes the same codes in rank order, so caches (and, with the same
    seed, their samples) stay identical across ranks. A no-op outside
    ``torch.distributed``. Ranks may push different batch sizes (padded, then trimmed).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return codes, labels
    world = dist.get_world_size()
    codes = codes.detach().contiguous()
    labels = labels.to(device=codes.device, dtype=torch.int64).reshape(-1).contiguous()
    size = torch.tensor([codes.shape[0]], device=codes.device, dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(n) for n in sizes]
    longest = max(counts)
    pad = longest - codes.shape[0]
    if pad:
        codes = torch.cat([codes, codes.new_zeros(pad, *codes.shape[1:])])
        labels = torch.cat([labels, labels.new_zeros(pad)])
    all_codes = [torch.empty_like(codes) for _ in range(world)]
    all_labels = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(all_codes, codes)
    dist.all_gather(all_labels, labels)
    return (
        torch.cat([c[:n] for c, n in zip(all_codes, counts)]),
        torch.cat([lab[:n] for lab, n in zip(all_labels, counts)]),
    )


class CodeCache:
    """Per-emotion ring buffer of detached, flattened codes from earlier iterations.

    ``dim`` is the flattened code size (``n_latent * style_dim``); ``None`` takes it from
    the first ``push``. Codes are stored in float32 on the device of the first push.
    ``gather`` (e.g. :func:`distributed_gather`) is applied to every push.
    """

    def __init__(
        self,
        n_emotions: int = len(EMOTIONS),
        per_emotion: int = 64,
        dim: int | None = None,
        *,
        seed: int = 0,
        gather: GatherFn | None = None,
    ) -> None:
        if n_emotions < 2:
            raise ValueError(f"CodeCache needs at least 2 emotions, got {n_emotions}")
        if per_emotion < 1:
            raise ValueError(f"CodeCache per_emotion must be >= 1, got {per_emotion}")
        self.n_emotions = n_emotions
        self.per_emotion = per_emotion
        self.dim = dim
        self.gather = gather
        self.generator = torch.Generator().manual_seed(seed)
        self._codes: torch.Tensor | None = None
        if dim is not None:
            self._codes = torch.zeros(n_emotions, per_emotion, dim)
        # count: filled slots per emotion; next: slot the next push of that emotion overwrites
        self.count = torch.zeros(n_emotions, dtype=torch.int64)
        self.next = torch.zeros(n_emotions, dtype=torch.int64)

    # -- filling -----------------------------------------------------------------------------
    @torch.no_grad()
    def push(self, codes: torch.Tensor, labels: torch.Tensor) -> None:
        """Store ``codes [B, ...]`` (detached, flattened) under ``labels [B]`` (emotion indices)."""
        codes, labels = self._check(codes, labels)
        if self.gather is not None:
            codes, labels = self.gather(codes, labels)
        flat = codes.detach().reshape(codes.shape[0], -1).float()
        if self._codes is None:
            self.dim = flat.shape[1]
            self._codes = torch.zeros(self.n_emotions, self.per_emotion, self.dim, device=flat.device)
        elif flat.shape[1] != self.dim:
            raise ValueError(f"CodeCache holds codes of size {self.dim}, got codes of size {flat.shape[1]}")
        flat = flat.to(self._codes.device)
        for row, emotion in zip(flat, labels.tolist()):
            slot = int(self.next[emotion])
            self._codes[emotion, slot] = row
            self.next[emotion] = (slot + 1) % self.per_emotion
            self.count[emotion] = min(int(self.count[emotion]) + 1, self.per_emotion)

    def _check(self, codes: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.as_tensor(labels).reshape(-1).to(torch.int64)
        if codes.shape[0] != labels.shape[0]:
            raise ValueError(f"{codes.shape[0]} codes but {labels.shape[0]} labels")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_emotions):
            raise ValueError(f"emotion labels must lie in [0, {self.n_emotions}), got {labels.tolist()}")
        return codes, labels

    # -- reading -----------------------------------------------------------------------------
    def size(self, emotion: int) -> int:
        """How many codes of ``emotion`` are cached."""
        return int(self.count[emotion])

    def codes(self, emotion: int) -> torch.Tensor:
        """All cached codes of ``emotion``, ``[size, dim]`` (oldest-slot order, not time order)."""
        if self._codes is None:
            return torch.zeros(0, self.dim or 0)
        return self._codes[emotion, : self.size(emotion)]

    def sample(self, emotion: int, generator: torch.Generator | None = None, n: int | None = None) -> torch.Tensor | None:
        """One cached code ``[dim]`` of ``emotion`` (or ``[n, dim]`` with ``n``), drawn uniformly
        with replacement; ``None`` when that emotion has no code yet. ``generator``
        defaults to the cache's own (saved in ``state_dict``)."""
        size = self.size(emotion)
        if size == 0:
            return None
        gen = self.generator if generator is None else generator
        idx = torch.randint(size, (1 if n is None else n,), generator=gen)
        picked = self._codes[emotion, idx.to(self._codes.device)]
        return picked[0] if n is None else picked

    def sample_all(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws of one code per emotion: codes ``[n, n_emotions, dim]`` and a bool mask
        ``[n_emotions]`` of emotions that had any code (rows of empty emotions are zeros)."""
        gen = self.generator if generator is None else generator
        dim = self.dim or 0
        device = self._codes.device if self._codes is not None else torch.device("cpu")
        out = torch.zeros(n, self.n_emotions, dim, device=device)
        present = torch.zeros(self.n_emotions, dtype=torch.bool)
        for emotion in range(self.n_emotions):  # fixed order: the generator stream is reproducible
            drawn = self.sample(emotion, gen, n=n)
            if drawn is not None:
                out[:, emotion] = drawn
                present[emotion] = True
        return out, present

    # -- resume ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (safetensors-friendly): codes, count, next and the generator state."""
        codes = self._codes if self._codes is not None else torch.zeros(self.n_emotions, self.per_emotion, 0)
        return {
            "codes": codes.detach().cpu().clone(),
            "count": self.count.clone(),
            "next": self.next.clone(),
            "rng": self.generator.get_state().clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        codes = state["codes"]
        if tuple(codes.shape[:2]) != (self.n_emotions, self.per_emotion):
            raise ValueError(
                f"code cache checkpoint holds {tuple(codes.shape[:2])} (emotions, per_emotion), "
                f"this cache is {(self.n_emotions, self.per_emotion)}"
            )
        if self.dim is not None and codes.shape[2] not in (0, self.dim):
            raise ValueError(f"code cache checkpoint has codes of size {codes.shape[2]}, expected {self.dim}")
        device = self._codes.device if self._codes is not None else torch.device("cpu")
        if codes.shape[2] == 0:
            self._codes = None if self.dim is None else torch.zeros(self.n_emotions, self.per_emotion, self.dim, device=device)
        else:
            self.dim = codes.shape[2]
            self._codes = codes.to(device=device, dtype=torch.float32).clone()
        self.count = state["count"].to(torch.int64).cpu().clone()
        self.next = state["next"].to(torch.int64).cpu().clone()
        self.generator.set_state(state["rng"].cpu().to(torch.uint8).clone())

    def to(self, device: torch.device | str) -> "CodeCache":
        """Move the stored codes (the generator stays on CPU; only indices come from it)."""
        if self._codes is not None:
            self._codes = self._codes.to(device)
        return self


@dataclass
class ContrastiveTerms:
    """Per-sample result of eq. 5: ``loss [B]`` (0 where skipped) and ``active [B]`` (bool)."""

    loss: torch.Tensor
    active: torch.Tensor


def contrastive_terms(
    codes: torch.Tensor,
    labels: torch.Tensor,
    cache: CodeCache,
    tau: float = 0.1,
    generator: torch.Generator | None = None,
) -> ContrastiveTerms:
    """The per-sample terms ``l_i`` of eq. 5 (see the module docstring for the rules)."""
    if tau <= 0:
        raise ValueError(f"temperature tau must be > 0, got {tau}")
    codes, labels = cache._check(codes, labels)
    batch = codes.shape[0]
    flat = codes.reshape(batch, -1)
    labels = labels.to(flat.device)
    zero = flat.sum(dim=1) * 0.0  # connected to the graph: backward() works when nothing is active
    if cache.dim is None or cache._codes is None:
        return ContrastiveTerms(loss=zero, active=torch.zeros(batch, dtype=torch.bool, device=flat.device))
    if flat.shape[1] != cache.dim:
        raise ValueError(f"codes have size {flat.shape[1]} but the cache holds codes of size {cache.dim}")

    drawn, present = cache.sample_all(batch, generator)  # [B, E, D], [E]
    drawn = drawn.to(flat.device)
    present = present.to(flat.device)
    query = F.normalize(flat.float(), dim=1)
    keys = F.normalize(drawn, dim=2)
    logits = torch.einsum("bd,bed->be", query, keys) / tau  # [B, E]
    logits = logits.masked_fill(~present[None, :], float("-inf"))  # missing emotions drop out

    has_positive = present[labels]
    has_negative = (present.sum() - present[labels].to(torch.int64)) > 0
    active = has_positive & has_negative
    # -log softmax at the positive's column = logsumexp(all present) - positive logit
    safe = torch.where(active[:, None], logits, torch.zeros_like(logits))
    pos = safe.gather(1, labels[:, None]).squeeze(1)
    per_sample = torch.logsumexp(safe, dim=1) - pos
    loss = torch.where(active, per_sample, zero.float())  # float32 even under autocast
    return ContrastiveTerms(loss=loss, active=active)


def contrastive_loss(
    codes: torch.Tensor,
    labels: torch.Tensor,
    cache: CodeCache,
    tau: float = 0.1,
    *,
    generator: torch.Generator | None = None,
    reduction: str = "sum",
) -> torch.Tensor:
    """Eq. 5-6: ``sum_i l_i`` over the batch (``reduction="mean"`` averages over *active*
    samples instead). ``codes [B, ...]`` are flattened per sample; ``labels [B]`` are
    emotion indices (:data:`sserd_cli.emotions.EMOTIONS`). Does not push into the cache."""
    terms = contrastive_terms(codes, labels, cache, tau, generator)
    if reduction == "sum":
        return terms.loss.sum()
    if reduction == "mean":
        return terms.loss.sum() / terms.active.sum().clamp(min=1)
    if reduction == "none":
        return terms.loss
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
