"""The paper's real-data protocol (section 4.1): FAD, LSE-D (+LSE-C), CSIM, intra- and cross-identity.

For every test clip (source) and every target emotion other than its own, a
reference clip of the target emotion is drawn (seeded) from the same speaker
(intra-identity) or from another speaker (cross-identity), test split first,
train split if the test split has none. The editor turns the source crops into
edited crops given the reference crops. Then, per setting and target emotion:

- FAD: Fréchet distance between ArcFace embeddings of all edited frames and of
  all real test frames of the target emotion;
- LSE-D / LSE-C: SyncNet on the edited frames (resampled to 25 fps) against the
  source clip's audio, averaged over clips;
- CSIM: cosine of expression features, edited frames vs the reference clip;
- ID-dlib (extra, offline): dlib descriptor cosine, source vs edited frames.

"overall" is the mean of the per-emotion values, as the paper averages over emotions.
Metrics whose network was not given are left out and named in ``missing``.
"""

from __future__ import annotations

import random
import wave
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.index import read_index, read_meta
from ..emotions import EMOTIONS
from ..errors import SserdError
from .expression import csim
from .frechet import frechet_distance
from .identity import identity_similarity
from .paper_values import TABLE1

# (source crops [N,S,S,3], reference crops [M,S,S,3]) -> edited crops [N,S,S,3], all RGB uint8 at the dataset size
EditFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
SETTINGS = ("intra", "cross")
METRIC_NEEDS = {
    "FAD": "an ArcFace ONNX model (--arcface FILE.onnx)",
    "LSE-D": "the SyncNet weight file syncnet_v2.model (--syncnet FILE)",
    "LSE-C": "the SyncNet weight file syncnet_v2.model (--syncnet FILE)",
    "CSIM": "an expression recognition ONNX model (--expression FILE.onnx)",
}


@dataclass
class RealEvalConfig:
    settings: tuple[str, ...] = SETTINGS
    emotions: tuple[str, ...] = EMOTIONS  # target emotions
    max_clips: int | None = None  # source test clips per speaker (None: all)
    max_frames: int | None = None  # leading frames per clip (None: all)
    reference_frames: int = 8  # reference frames handed to the editor (evenly spaced)
    identity_frames: int = 8  # frames per clip for ID-dlib
    seed: int = 0


@dataclass
class MetricNets:
    """The networks the metrics run; None = that metric is not computed."""

    arcface: object | None = None  # ArcFaceEmbedder
    syncnet: object | None = None  # SyncNet
    expression: object | None = None  # ExpressionFeatures
    identity: object | None = None  # DlibIdentity


@dataclass
class _Clip:
    clip: str
    speaker: str
    emotion: str
    split: str
    frames: list[int]
    paths: list[Path]
    meta: dict = field(default_factory=dict)


def crop_template(meta: dict) -> np.ndarray:
    """The 5 template points inside the dataset's crops (from the framing ``sserd prepare`` recorded)."""
    from ..faces.align import canonical_landmarks

    framing = meta.get("framing")
    if not framing:
        raise SserdError("the dataset records no crop framing: 'sserd eval real' needs data made by 'sserd prepare'")
    return canonical_landmarks(int(framing["align_size"])) - float(framing["crop_offset"])


def load_crops(paths: list[Path]) -> np.ndarray:
    import cv2

    images = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SserdError(f"cannot read crop {path}: re-run 'sserd prepare' on this dataset")
        images.append(image[:, :, ::-1])
    return np.ascontiguousarray(np.stack(images))


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1 or handle.getframerate() != 16000:
            raise SserdError(f"{path} is not 16 kHz mono 16-bit audio: re-run 'sserd prepare'")
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.float64)


def _clips(root: Path, meta: dict, max_frames: int | None) -> dict[str, _Clip]:
    clips: dict[str, _Clip] = {}
    for row in read_index(root):
        if max_frames is not None and row.frame >= max_frames:
            continue
        clip = clips.setdefault(row.clip, _Clip(row.clip, row.speaker, row.emotion, row.split, [], [],
                                                meta.get("clips", {}).get(row.clip, {})))
        clip.frames.append(row.frame)
        clip.paths.append(root / row.path)
    for clip in clips.values():
        order = np.argsort(clip.frames)
        clip.frames = [clip.frames[i] for i in order]
        clip.paths = [clip.paths[i] for i in order]
    return clips


def _evenly(n_total: int, n_take: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_total - 1, num=min(n_take, n_total)).round().astype(int))


def pick_reference(source: _Clip, emotion: str, setting: str, clips: dict[str, _Clip], seed: int) -> _Clip | None:
    """A clip of ``emotion`` from the same (intra) or another (cross) speaker; test split first; seeded."""
    same = setting == "intra"
    pool = [c for c in clips.values() if c.emotion == emotion and c.clip != source.clip
            and (c.speaker == source.speaker) == same]
    for split in ("test", "train"):
        candidates = sorted((c for c in pool if c.split == split), key=lambda c: c.clip)
        if candidates:
            rng = random.Random(zlib.crc32(f"{seed}/{setting}/{source.clip}/{emotion}".encode()))
            return rng.choice(candidates)
    return None


def _sync(nets: MetricNets, clip: _Clip, edited: np.ndarray, template: np.ndarray, root: Path,
          every_n: int) -> tuple[float, float] | str:
    from .syncnet import evaluate_sync, resample_to_25fps, syncnet_views

    if every_n != 1:
        return "dataset prepared with --every-n-frames > 1 (LSE-D needs every frame)"
    audio_rel, fps = clip.meta.get("audio"), float(clip.meta.get("fps") or 0)
    if not audio_rel:
        return "clip has no audio"
    n_frames = clip.frames[-1] + 1
    positions = resample_to_25fps(clip.frames, fps, n_frames)
    if len(positions) <= 5:
        return "clip too short"
    audio = read_wav(root / audio_rel)[: int(round(len(positions) / 25 * 16000))]
    views = syncnet_views(edited, template)[positions]
    result = evaluate_sync(nets.syncnet, views, audio)
    return result.lse_d, result.lse_c


def evaluate_real(root: Path, edit: EditFn, nets: MetricNets, config: RealEvalConfig = RealEvalConfig(),
                  on_step: Callable[[str], None] | None = None, steps: Callable[[int], None] | None = None) -> dict:
    """Run the protocol on ``root`` (a ``sserd prepare`` dataset); returns a JSON-able result."""
    root = Path(root)
    meta = read_meta(root)
    if meta.get("kind") != "real":
        raise SserdError(f"{root} is not a real dataset (kind {meta.get('kind')}): use 'sserd eval synthetic' for synthetic data")
    template = crop_template(meta)
    every_n = int(meta.get("crop", {}).get("every_n_frames", 1))
    clips = _clips(root, meta, config.max_frames)
    sources = sorted((c for c in clips.values() if c.split == "test"), key=lambda c: (c.speaker, c.clip))
    if config.max_clips is not None:
        per_speaker: dict[str, int] = {}
        kept = []
        for clip in sources:
            if per_speaker.get(clip.speaker, 0) < config.max_clips:
                kept.append(clip)
                per_speaker[clip.speaker] = per_speaker.get(clip.speaker, 0) + 1
        sources = kept
    if not sources:
        raise SserdError(f"{root} has no test clips: prepare it with a test split (--test-fraction > 0)")

    jobs = []
    skipped = []
    for setting in config.settings:
        for source in sources:
            for emotion in config.emotions:
                if emotion == source.emotion:
                    continue
                ref = pick_reference(source, emotion, setting, clips, config.seed)
                if ref is None:
                    skipped.append({"setting": setting, "clip": source.clip, "emotion": emotion,
                                    "why": f"no {emotion} clip from {'the same' if setting == 'intra' else 'another'} speaker"})
                else:
                    jobs.append((setting, source, emotion, ref))
    if steps is not None:
        steps(len(jobs))

    real_feats: dict[str, np.ndarray] = {}
    if nets.arcface is not None:
        for emotion in {e for _, _, e, _ in jobs}:
            paths = [p for c in clips.values() if c.split == "test" and c.emotion == emotion for p in c.paths]
            if len(paths) < 2:
                paths = [p for c in clips.values() if c.emotion == emotion for p in c.paths]
            # in chunks: a full MEAD test split is too many crops to hold at once
            real_feats[emotion] = np.concatenate([nets.arcface.embed(load_crops(paths[i:i + 256]), template)
                                                  for i in range(0, len(paths), 256)])

    acc: dict[tuple[str, str], dict[str, list]] = {}
    cache: dict[str, np.ndarray] = {}
    source_ids: dict[str, np.ndarray] = {}

    def crops_of(clip: _Clip) -> np.ndarray:
        if clip.clip not in cache:
            if len(cache) >= 4:  # jobs come grouped by source clip: a small cache holds the source and references
                cache.pop(next(iter(cache)))
            cache[clip.clip] = load_crops(clip.paths)
        cache[clip.clip] = cache.pop(clip.clip)  # most recently used last: the source stays while references rotate
        return cache[clip.clip]

    for setting, source, emotion, ref in jobs:
        src = crops_of(source)
        ref_crops = crops_of(ref)
        edited = edit(src, ref_crops[_evenly(len(ref_crops), config.reference_frames)])
        if edited.shape != src.shape:
            raise RuntimeError(f"the editor returned {edited.shape} for input {src.shape}")
        slot = acc.setdefault((setting, emotion), {"arcface": [], "lse_d": [], "lse_c": [], "csim": [], "id": [],
                                                   "clips": 0, "notes": []})
        slot["clips"] += 1
        if nets.arcface is not None:
            slot["arcface"].append(nets.arcface.embed(edited, template))
        if nets.syncnet is not None:
            result = _sync(nets, source, edited, template, root, every_n)
            if isinstance(result, str):
                slot["notes"].append(f"{source.clip}: no LSE ({result})")
            else:
                slot["lse_d"].append(result[0])
                slot["lse_c"].append(result[1])
        if nets.expression is not None:
            slot["csim"].append(csim(nets.expression.features(edited), nets.expression.features(ref_crops)))
        if nets.identity is not None:
            pick = _evenly(len(src), config.identity_frames)
            if source.clip not in source_ids:
                source_ids[source.clip] = nets.identity.descriptors(src[pick])
            value = identity_similarity(source_ids[source.clip], nets.identity.descriptors(edited[pick]))
            if np.isfinite(value):
                slot["id"].append(value)
        if on_step is not None:
            on_step(f"{setting} {source.clip} -> {emotion}")

    results: dict = {"dataset": meta.get("layout", meta.get("source", "")), "settings": {}, "skipped": skipped,
                     "missing": {}}
    for name, needs in METRIC_NEEDS.items():
        net = {"FAD": nets.arcface, "LSE-D": nets.syncnet, "LSE-C": nets.syncnet, "CSIM": nets.expression}[name]
        if net is None:
            results["missing"][name] = needs
    for setting in config.settings:
        per_emotion = {}
        for emotion in config.emotions:
            slot = acc.get((setting, emotion))
            if slot is None:
                continue
            row: dict = {"clips": slot["clips"]}
            if nets.arcface is not None:
                feats = np.concatenate(slot["arcface"])
                row["FAD"] = frechet_distance(feats, real_feats[emotion]) if len(feats) >= 2 and len(real_feats[emotion]) >= 2 else None
            if nets.syncnet is not None:
                row["LSE-D"] = float(np.mean(slot["lse_d"])) if slot["lse_d"] else None
                row["LSE-C"] = float(np.mean(slot["lse_c"])) if slot["lse_c"] else None
            if nets.expression is not None:
                row["CSIM"] = float(np.mean(slot["csim"]))
            if nets.identity is not None:
                row["ID-dlib"] = float(np.mean(slot["id"])) if slot["id"] else None
            if slot["notes"]:
                row["notes"] = slot["notes"]
            per_emotion[emotion] = row
        overall = {"clips": sum(r["clips"] for r in per_emotion.values())}
        for key in ("FAD", "LSE-D", "LSE-C", "CSIM", "ID-dlib"):
            values = [r[key] for r in per_emotion.values() if r.get(key) is not None]
            if values:
                overall[key] = float(np.mean(values))
        results["settings"][setting] = {"per_emotion": per_emotion, "overall": overall}
    results["paper"] = TABLE1.get(str(results["dataset"]).lower(), {})
    return results


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if images.shape[1] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(image, (size, size), interpolation=interp) for image in images])


def model_editor(model, batch_size: int = 8) -> EditFn:
    """The editing step: an edit-pipeline model (``resolution``, ``set_target``, ``edit``) as an :data:`EditFn`.

    Crops go to the model at its resolution and come back at the dataset's
    crop size; the reference is given as aligned crops (the model averages their codes).
    This is the one place where evaluation calls the edit pipeline.
    """
    from ..pipeline.models import Target

    # the identity baseline returns its input whatever the size: keep the crops as they are
    passthrough = getattr(model, "name", "") == "identity"

    def edit(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
        size = source.shape[1] if passthrough else model.resolution
        model.set_target(Target(reference=_resize_all(reference, size)))
        parts = [model.edit(_resize_all(source[i:i + batch_size], size)) for i in range(0, len(source), batch_size)]
        return _resize_all(np.concatenate(parts), source.shape[1])

    return edit
