"""Training data: the shared dataset index (``sserd prepare`` / ``sserd synth``) as batches of tensors.

Images are read with OpenCV, resized to ``load_size`` and centre-cropped to ``size`` (a further
zoom on top of the dataset's own framing; by default none, since ``sserd prepare`` and ``sserd
synth`` already frame crops as the paper's 320 -> 256), and scaled to [-1, 1]. Batches are a pure
function of (seed, iteration, rank): the data order of every rank is a shard of a seeded
permutation per epoch, like ``DistributedSampler``, so a resumed run reads exactly the batches
an uninterrupted run would have read, without any sampler state in the checkpoint.
"""

from __future__ import annotations

from collections import abc, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..data.index import IndexRow, read_index, read_meta
from ..emotions import EMOTIONS
from ..errors import SserdError


def load_image(path: Path, size: int, load_size: int) -> np.ndarray:
    """RGB uint8 [size, size, 3]: resize the image to load_size x load_size, then centre-crop."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SserdError(f"cannot read image {path}: the dataset is damaged, re-run the command that made it")
    h, w = bgr.shape[:2]
    if (h, w) != (load_size, load_size):
        shrink = load_size < min(h, w)
        bgr = cv2.resize(bgr, (load_size, load_size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    top = (load_size - size) // 2
    crop = bgr[top:top + size, top:top + size]
    return np.ascontiguousarray(crop[:, :, ::-1])


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 HWC RGB images -> float [B, 3, H, W] in [-1, 1]."""
    arr = np.stack(images).astype(np.float32)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def shard_positions(n: int, seed: int, iteration: int, batch: int, rank: int = 0, world: int = 1) -> list[int]:
    """Dataset indices of one rank's batch at ``iteration`` (0-based): epoch-wise seeded permutations,
    rank r taking slots r*batch .. (r+1)*batch of each global batch."""
    if n <= 0:
        raise SserdError("the dataset has no usable frames")
    out = []
    start = (iteration * world + rank) * batch
    cache: dict[int, np.ndarray] = {}
    for pos in range(start, start + batch):
        epoch, slot = divmod(pos, n)
        if epoch not in cache:
            cache[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(cache[epoch][slot]))
    return out


class FrameSet:
    """The rows of one split of a dataset, with image loading."""

    def __init__(self, root: str | Path, size: int, load_size: int, split: str | None = "train",
                 workers: int = 2, what: str = "dataset"):
        self.root = Path(root)
        if not self.root.exists():
            raise SserdError(f"{what} {self.root} does not exist: create it with 'sserd prepare' or 'sserd synth'")
        self.meta = read_meta(self.root)
        rows = read_index(self.root)
        self.rows: list[IndexRow] = [r for r in rows if split is None or r.split == split]
        if not self.rows:
            which = f"no '{split}' frames" if split else "no frames"
            raise SserdError(f"{what} {self.root} has {which}: nothing to train on")
        missing = [r.path for r in self.rows[:1000] if not (self.root / r.path).is_file()]
        if missing:
            raise SserdError(f"{what} {self.root} lists {missing[0]} but the file is missing ({len(missing)} missing): "
                             "re-run the command that made it")
        self.size, self.load_size, self.workers = size, load_size, workers
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self.by_speaker_emotion: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, r in enumerate(self.rows):
            self.by_speaker_emotion[(r.speaker, r.emotion)].append(i)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.rows})

    @property
    def emotions(self) -> list[str]:
        present = {r.emotion for r in self.rows}
        return [e for e in EMOTIONS if e in present]

    def labels(self, indices: Sequence[int]) -> torch.Tensor:
        return torch.tensor([EMOTIONS.index(self.rows[i].emotion) for i in indices], dtype=torch.long)

    def load(self, indices: Sequence[int]) -> torch.Tensor:
        paths = [self.root / self.rows[i].path for i in indices]
        read = lambda p: load_image(p, self.size, self.load_size)  # noqa: E731
        images = list(self._pool.map(read, paths)) if self._pool else [read(p) for p in paths]
        return to_tensor(images)

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False)


@dataclass
class HybridItem:
    """One training sample of eq. 13-14 (indices into the real set R or the paired set P)."""

    source: int  # into P when synthetic, else into R
    synthetic: bool
    target: int  # into P (same pair group, target emotion); -1 for a real source
    r1: int  # into R: same speaker, target emotion, another clip
    r2: int  # into R: another speaker, target emotion
    emotion: int  # target emotion index (the contrastive label)


class _Without(abc.Sequence):
    """``frames`` less the slice ``[start, stop)``, as a sequence that copies nothing."""

    def __init__(self, frames: list[int], start: int, stop: int):
        self.frames, self.start, self.gap = frames, start, stop - start

    def __len__(self) -> int:
        return len(self.frames) - self.gap

    def __getitem__(self, k: int) -> int:  # type: ignore[override]
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.frames[k if k < self.start else k + self.gap]


class HybridSampler:
    """Draws (I_s, I_t, r1, r2) tuples for ``paired``, ``unpaired`` or ``hybrid`` training.

    Paired sources come from the synthetic paired set: a group of images sharing (clip, frame)
    renders one neutral code and its edits, so any two emotions of a group are a pair with the
    same mouth. Real sources are training frames of the real set (no target: the indicator of
    eq. 14 is 0). References are real frames with the target emotion: r1 of the source's
    speaker but from another clip, r2 of another speaker.
    """

    def __init__(self, real: FrameSet, pairs: FrameSet | None, mode: str, real_fraction: float, seed: int):
        self.real, self.pairs, self.mode, self.seed = real, pairs, mode, seed
        self.real_fraction = {"paired": 0.0, "unpaired": 1.0}.get(mode, real_fraction)
        if mode != "unpaired" and pairs is None:
            raise SserdError(f"--data {mode} needs a paired set: build one with 'sserd build-pairs'")
        speakers = real.speakers
        if len(speakers) < 2:
            raise SserdError(f"dataset {real.root} has one speaker ({speakers[0]}): the cross-speaker reference r2 "
                             "needs at least two speakers")
        clips_per_speaker = defaultdict(set)
        for r in real.rows:
            clips_per_speaker[r.speaker].add(r.clip)
        # a speaker with one clip has no same-speaker reference r1 from another clip: its frames cannot be
        # sources (they still serve as other speakers' r2); callers report these speakers
        self.single_clip_speakers = sorted(s for s, clips in clips_per_speaker.items() if len(clips) < 2)
        self._r1: dict[tuple[str, str, str], list[int]] = {}
        # r2 candidates without one list per (speaker, emotion), which costs O(speakers x frames): per emotion,
        # its frames grouped by speaker (sorted), and where each speaker's run of them starts and stops
        self._by_emotion: dict[str, list[int]] = defaultdict(list)
        self._span: dict[tuple[str, str], tuple[int, int]] = {}
        for (speaker, emotion), idx in sorted(real.by_speaker_emotion.items()):
            frames = self._by_emotion[emotion]
            self._span[(speaker, emotion)] = (len(frames), len(frames) + len(idx))
            frames.extend(idx)
        # Real sources: each needs a target emotion with r1 and r2 candidates.
        self.real_sources = [i for i in range(len(real)) if self._targets_for(real.rows[i].speaker, real.rows[i].clip)]
        self.groups: list[list[int]] = []
        if pairs is not None and mode != "unpaired":
            grouped: dict[tuple[str, int], list[int]] = defaultdict(list)
            for i, r in enumerate(pairs.rows):
                grouped[(r.clip, r.frame)].append(i)
            for key in sorted(grouped):
                members = grouped[key]
                row = pairs.rows[members[0]]
                usable = set(self._targets_for(row.speaker, row.clip))
                if len(members) >= 2 and any(pairs.rows[m].emotion in usable for m in members):
                    self.groups.append(members)
            if not self.groups:
                raise SserdError(f"paired set {pairs.root} has no pair whose speaker has reference frames (same speaker, "
                                 f"other clip, target emotion) in {real.root}: the speakers of the two sets must match")
        if self.real_fraction > 0 and not self.real_sources:
            raise SserdError(f"dataset {real.root}: no speaker has two clips, so the same-speaker reference r1 "
                             "(another clip) is impossible: add clips or use --data paired")

    def _targets_for(self, speaker: str, clip: str) -> list[str]:
        """Emotions that have an r1 (same speaker, other clip) and an r2 (other speaker)."""
        out = []
        for emotion in EMOTIONS:
            r1 = self._r1_candidates(speaker, clip, emotion)
            r2 = self._r2_candidates(speaker, emotion)
            if r1 and r2:
                out.append(emotion)
        return out

    def _r1_candidates(self, speaker: str, clip: str, emotion: str) -> list[int]:
        key = (speaker, clip, emotion)
        if key not in self._r1:
            self._r1[key] = [i for i in self.real.by_speaker_emotion.get((speaker, emotion), [])
                             if self.real.rows[i].clip != clip]
        return self._r1[key]

    def _r2_candidates(self, speaker: str, emotion: str) -> "_Without":
        """Frames of ``emotion`` of every other speaker, in (speaker, row) order."""
        frames = self._by_emotion.get(emotion, [])
        start, stop = self._span.get((speaker, emotion), (0, 0))
        return _Without(frames, start, stop)

    def batch(self, iteration: int, batch: int, rank: int = 0, world: int = 1) -> list[HybridItem]:
        rng = np.random.default_rng([self.seed, iteration, rank, 7])
        items = []
        n_pairs_slots = n_real_slots = 0
        kinds = [bool(rng.random() < self.real_fraction) for _ in range(batch)]
        real_pos = shard_positions(len(self.real_sources), self.seed, iteration, batch, rank, world) if any(kinds) else []
        pair_pos = (shard_positions(len(self.groups), self.seed + 1, iteration, batch, rank, world)
                    if not all(kinds) else [])
        for is_real in kinds:
            if is_real:
                src = self.real_sources[real_pos[n_real_slots]]
                n_real_slots += 1
                row = self.real.rows[src]
                emotion = str(rng.choice(self._targets_for(row.speaker, row.clip)))
                items.append(HybridItem(src, False, -1, self._pick(rng, self._r1_candidates(row.speaker, row.clip, emotion)),
                                        self._pick(rng, self._r2_candidates(row.speaker, emotion)),
                                        EMOTIONS.index(emotion)))
            else:
                group = self.groups[pair_pos[n_pairs_slots]]
                n_pairs_slots += 1
                first = self.pairs.rows[group[0]]
                usable = set(self._targets_for(first.speaker, first.clip))
                targets = [m for m in group if self.pairs.rows[m].emotion in usable]
                tgt = targets[int(rng.integers(len(targets)))]
                sources = [m for m in group if m != tgt]
                src = sources[int(rng.integers(len(sources)))]
                emotion = self.pairs.rows[tgt].emotion
                items.append(HybridItem(src, True, tgt, self._pick(rng, self._r1_candidates(first.speaker, first.clip, emotion)),
                                        self._pick(rng, self._r2_candidates(first.speaker, emotion)),
                                        EMOTIONS.index(emotion)))
        return items

    @staticmethod
    def _pick(rng: np.random.Generator, candidates: list[int]) -> int:
        return candidates[int(rng.integers(len(candidates)))]
