"""E's codes of the paired set and of real reference frames, for the latent-step term of ``sserd train``.

The latent-step loss needs no rendering: it compares the CELCL code of (w_s, w_r) with the W+ step that
built the pair. Drawn from this bank, a batch of it costs a few milliseconds instead of the generator
passes of eq. 13, so the term can see many pairs per step (measured: with the two samples of a rendered
batch the CELCL did not learn the steps in 3000 steps; with 64 banked codes per step it does in hundreds)
and can train alone for ``latent_warmup`` steps before the image losses start.

Both inputs are what the CELCL sees at edit time: E(I_s) of the rendered pair image (not the stored w_s,
which E does not recover exactly) and E(reference frame). The target is the stored step w_t - w_s.
"""

from __future__ import annotations

import numpy as np
import torch

from ..emotions import EMOTIONS
from .dataset import FrameSet
from .pairs import encode_all

ENCODE_BATCH = 64


class LatentBank:
    """Pair groups (E codes of every row, stored codes) and, per target emotion, E codes of real frames."""

    def __init__(self, E, pairs: FrameSet, groups: list[list[int]], stored: torch.Tensor, real: FrameSet, *,
                 refs_per_emotion: int, max_groups: int, seed: int, device):
        rng = np.random.default_rng([seed, 13])
        if len(groups) > max_groups:
            groups = [groups[i] for i in sorted(rng.choice(len(groups), max_groups, replace=False))]
        emotions = sorted({pairs.rows[m].emotion for g in groups for m in g}, key=EMOTIONS.index)
        self.refs: dict[int, torch.Tensor] = {}
        for emotion in emotions:
            frames = [i for i, r in enumerate(real.rows) if r.emotion == emotion]
            if frames:
                pick = sorted(rng.choice(len(frames), min(refs_per_emotion, len(frames)), replace=False))
                self.refs[EMOTIONS.index(emotion)] = encode_all(E, real, ENCODE_BATCH, device,
                                                                indices=[frames[k] for k in pick]).to(device)
        # a group is usable with at least two rows, one of them an emotion the real set can show
        self.groups = [g for g in groups if len(g) >= 2
                       and any(EMOTIONS.index(pairs.rows[m].emotion) in self.refs for m in g)]
        rows = sorted({m for g in self.groups for m in g})
        slot = {m: k for k, m in enumerate(rows)}
        self.encoded = encode_all(E, pairs, ENCODE_BATCH, device, indices=rows).to(device)
        self.stored = stored[rows].to(device)
        self.emotion = [EMOTIONS.index(pairs.rows[m].emotion) for m in rows]
        # per group: its rows as bank slots, and those of them whose emotion a reference can show (targets)
        self._members = [[slot[m] for m in g] for g in self.groups]
        self._targets = [[k for k in members if self.emotion[k] in self.refs] for members in self._members]
        self.seed = seed

    def __len__(self) -> int:
        return len(self.groups)

    def batch(self, iteration: int, size: int, rank: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(E(I_s), E(reference), stored step w_t - w_s) for ``size`` random (source, target) pairs of a group.

        As in the hybrid sampler, the source is any row of the group but the target, and the reference
        a real frame showing the target's emotion; the draw depends only on (seed, iteration, rank)."""
        rng = np.random.default_rng([self.seed, iteration, rank, 11])
        src, tgt, ref = [], [], []
        for g in rng.integers(len(self.groups), size=size):
            targets = self._targets[int(g)]
            t = targets[int(rng.integers(len(targets)))]
            sources = [m for m in self._members[int(g)] if m != t]
            src.append(sources[int(rng.integers(len(sources)))])
            tgt.append(t)
            bank = self.refs[self.emotion[t]]
            ref.append(bank[int(rng.integers(len(bank)))])
        step = self.stored[tgt] - self.stored[src]
        return self.encoded[src], torch.stack(ref), step
