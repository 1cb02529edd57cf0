"""``sserd build-pairs``: emotion edit directions (eq. 11) and the synthetic paired set (eq. 12).

1. Encode every frame of the dataset with E (W+ codes).
2. Per emotion e != neutral, one edit direction over the W+ rows it may use (``layers``; all by default):
   - ``svm`` (the paper's eq. 11): a linear SVM separates neutral (label 0) from e (label 1) codes; the
     L2-normalised normal of its boundary is the direction, pointing towards e. Accuracy is measured on
     held-out frames: the dataset's test split, or a stratified ``holdout`` fraction of the training
     frames when the test split lacks them. beta is the paper's fixed step or, with ``auto``, each
     direction's class separation.
   - ``regression``: one least-squares fit of every training code on the emotion intensities (one column
     per emotion) and, where the dataset has renderer labels, its speech controls. Each emotion's slope
     is how E's codes really move from neutral to full intensity (the SVM normal is only the part of it a
     classifier needs: measured cosines 0.2-0.6 on the default model); the speech slopes are projected
     out of it, so the edit keeps the mouth's speech. With ``auto`` beta is the slope's length (a step to
     intensity 1); held-out accuracy is that of the midpoint between the class means along the direction.
3. Report how much each direction moves the mouth: G(w + beta d) - G(w) inside a mouth mask
   vs the rest of the face, on a few neutral codes (the paper wants directions that change
   the emotion and not the mouth shape; restrict ``layers`` if the mouth moves).
4. Write the paired set: for every neutral training frame, I_s = G(w_s) and, per emotion,
   I_t = G(w_s + beta d_e); latents + PNG crops + an index in the shared dataset format
   (kind "synthetic"; rows of one source share its clip and frame).
5. Write a bundle (the input's networks + directions + per-emotion mean codes) inside the
   output folder.

Everything is written to a temporary folder beside the output and renamed at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
import torch
from safetensors.torch import save_file

from ..bundles import save_bundle
from ..data.index import IndexRow, write_index
from ..emotions import EMOTIONS
from ..errors import SserdError
from ..runtime import select_device, seed_everything
from .cards import base_card, framing_zoom
from .config import PairsConfig
from .dataset import FrameSet, to_uint8
from .encoder import load_frozen_generator

ProgressFn = Callable[[str, int, int], None]


@dataclass
class DirectionFit:
    emotion: str
    direction: torch.Tensor  # [n_latent, D], unit L2 norm over all entries
    train_accuracy: float
    heldout_accuracy: Optional[float]
    heldout_source: str  # "test split", "holdout" or "none (too few frames)"
    n_neutral: int
    n_emotion: int
    separation: float = 0.0  # mean emotion code minus mean neutral code, projected on the direction
    speech_share: Optional[float] = None  # regression: the part of the slope's length the speech slopes explained


def layer_mask(n_latent: int, layers: Optional[list]) -> np.ndarray:
    """Boolean [n_latent]: which W+ rows a direction may use."""
    if not layers:
        return np.ones(n_latent, dtype=bool)
    bad = [row for row in layers if not 0 <= int(row) < n_latent]
    if bad:
        raise SserdError(f"--layers {bad}: W+ rows of this model are 0..{n_latent - 1}")
    mask = np.zeros(n_latent, dtype=bool)
    mask[[int(row) for row in layers]] = True
    return mask


def parse_layers(text: Optional[str]) -> Optional[list]:
    """'0-5,8' -> [0, 1, 2, 3, 4, 5, 8]."""
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise SserdError(f"--layers '{text}': write rows like 0-5,8")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise SserdError(f"--layers '{text}': range {part} is reversed")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


def fit_direction(neutral_train: np.ndarray, emotion_train: np.ndarray, *, emotion: str = "emotion",
                  neutral_test: Optional[np.ndarray] = None, emotion_test: Optional[np.ndarray] = None,
                  layers: Optional[list] = None, C: float = 1.0, holdout: float = 0.2, seed: int = 0) -> DirectionFit:
    """Eq. 11: linear SVM neutral (0) vs emotion (1) on W+ codes [N, n_latent, D]; unit normal -> direction."""
    from sklearn.model_selection import train_test_split
    from sklearn.svm import LinearSVC

    n_latent, dim = neutral_train.shape[1:]
    mask = layer_mask(n_latent, layers)
    flat = lambda a: a[:, mask].reshape(len(a), -1).astype(np.float64)  # noqa: E731
    x = np.concatenate([flat(neutral_train), flat(emotion_train)])
    y = np.concatenate([np.zeros(len(neutral_train)), np.ones(len(emotion_train))])
    source = "test split"
    x_test = y_test = None
    if neutral_test is not None and emotion_test is not None and len(neutral_test) and len(emotion_test):
        x_test = np.concatenate([flat(neutral_test), flat(emotion_test)])
        y_test = np.concatenate([np.zeros(len(neutral_test)), np.ones(len(emotion_test))])
    elif min(len(neutral_train), len(emotion_train)) >= 4 and holdout > 0:
        x, x_test, y, y_test = train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y)
        source = "holdout"
    else:
        source = "none (too few frames)"
    # The SVM works in W+ units (centred only): per-dimension scaling would divide the normal by each
    # dimension's spread and so favour the near-constant dimensions, where G barely reacts. With far more
    # dimensions than codes the classes separate along such noise directions too; a small C (a wide soft
    # margin) keeps the normal on the directions the classes really differ in.
    mean = x.mean(0)
    svm = LinearSVC(C=C, max_iter=50000, random_state=seed)
    svm.fit(x - mean, y)
    normal = svm.coef_[0]
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm == 0:
        raise SserdError(f"the SVM for {emotion} found no boundary: are its codes identical to the neutral ones?")
    direction = np.zeros((n_latent, dim))
    direction[mask] = (normal / norm).reshape(int(mask.sum()), dim)
    train_acc = float(svm.score(x - mean, y))
    test_acc = float(svm.score(x_test - mean, y_test)) if x_test is not None else None
    # how far apart the two classes' mean codes lie along the direction: the natural step from neutral to e
    along = (x - mean) @ (normal / norm)
    separation = float(along[y == 1].mean() - along[y == 0].mean())
    return DirectionFit(emotion, torch.from_numpy(direction).float(), train_acc, test_acc, source,
                        int(len(neutral_train)), int(len(emotion_train)), separation)


def fit_regression(codes: np.ndarray, emotions: np.ndarray, intensities: np.ndarray, targets: list, *,
                   speech: Optional[np.ndarray] = None, train: Optional[np.ndarray] = None,
                   layers: Optional[list] = None) -> dict:
    """Directions by least squares: code = b + sum_e intensity_e * D_e (+ sum_k speech_k * S_k).

    ``codes`` [N, n_latent, D], ``emotions`` names [N], ``intensities`` [N] (neutral rows count as 0),
    ``speech`` [N, K] or None, ``train`` a boolean mask of the frames to fit on (the rest score the held-out
    accuracy). Every D_e has the span of the S_k projected out. Returns {emotion: DirectionFit}; a fit's
    ``separation`` is |D_e| (a step from neutral to intensity 1)."""
    n_latent, dim = codes.shape[1:]
    mask = layer_mask(n_latent, layers)
    y = codes[:, mask].reshape(len(codes), -1).astype(np.float64)
    train = np.ones(len(codes), bool) if train is None else np.asarray(train, bool)
    columns = [np.ones(len(codes))]
    for e in targets:
        columns.append(np.where(emotions == e, intensities, 0.0))
    if speech is not None:
        columns += list((speech - speech[train].mean(0)).T)
    x = np.stack(columns, 1)
    coef = np.linalg.lstsq(x[train], y[train], rcond=None)[0]  # [1 + E + K, features]
    slopes = coef[1:1 + len(targets)]
    basis = None
    if speech is not None and speech.shape[1]:
        basis = np.linalg.qr(coef[1 + len(targets):].T)[0]  # orthonormal [features, K]
    fits = {}
    neutral = emotions == "neutral"
    for k, e in enumerate(targets):
        raw = slopes[k]
        step = raw if basis is None else raw - basis @ (basis.T @ raw)
        length = float(np.linalg.norm(step))
        if not np.isfinite(length) or length == 0:
            raise SserdError(f"the {e} codes do not move with its intensity: are they identical to the neutral ones?")
        unit = step / length
        ours = emotions == e
        along = y @ unit
        threshold = (along[train & neutral].mean() + along[train & ours].mean()) / 2

        def accuracy(rows):
            n, m = rows & neutral, rows & ours
            if not n.any() or not m.any():
                return None
            return float(np.concatenate([along[n] < threshold, along[m] >= threshold]).mean())

        direction = np.zeros((n_latent, dim))
        direction[mask] = unit.reshape(int(mask.sum()), dim)
        test = accuracy(~train)
        fits[e] = DirectionFit(e, torch.from_numpy(direction).float(), accuracy(train), test,
                               "test split" if test is not None else "none (no test frames)",
                               int((train & neutral).sum()), int((train & ours).sum()), length,
                               None if basis is None else round(1.0 - length / float(np.linalg.norm(raw)), 4))
    return fits


def speech_labels(root, paths: list) -> tuple[list, np.ndarray] | tuple[None, None]:
    """(names, [N, K]) of the renderer's speech controls for ``paths``, or (None, None) without labels."""
    from ..data.labels import read_param_labels

    labels = read_param_labels(root, paths)
    if labels is None:
        return None, None
    names, values = labels
    keep = [i for i, n in enumerate(names) if n.startswith("speech.") and values[:, i].std() > 1e-6]
    return ([names[i] for i in keep], values[:, keep]) if keep else (None, None)


def edit_beta(beta: Optional[float], fit: DirectionFit) -> float:
    """The step along a direction: ``beta`` when given (the paper's 15 suits FFHQ StyleGAN2's 18 x 512 W+),
    else ("auto") the class separation along it, which moves a neutral code as far as the emotion's codes
    lie from the neutral ones in this model's latent space."""
    if beta is not None:
        return float(beta)
    if fit.separation <= 0:
        raise SserdError(f"the {fit.emotion} codes do not lie beyond the neutral ones along the SVM direction: "
                         "pass a fixed --beta")
    return round(fit.separation, 4)


def mouth_mask(size: int, zoom: float) -> np.ndarray:
    """Float [size, size]: an ellipse around the mouth of the canonical crop, in the training framing
    (``zoom``: see :func:`sserd_cli.training.cards.framing_zoom`)."""
    from ..faces.align import canonical_landmarks

    pts = canonical_landmarks(size, zoom).astype(np.float64)
    left, right = pts[3], pts[4]
    centre = (left + right) / 2
    width = np.linalg.norm(right - left)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ax, ay = 0.8 * width, 0.55 * width
    return ((((xx - centre[0]) / ax) ** 2 + ((yy - centre[1]) / ay) ** 2) <= 1.0).astype(np.float32)


@torch.no_grad()
def mouth_change(G, codes: torch.Tensor, direction: torch.Tensor, beta: float, mask: np.ndarray,
                 batch: int = 4) -> dict:
    """Mean |G(w + beta d) - G(w)| (in [0, 2] units) inside the mouth mask and over the rest of the image."""
    inside = torch.from_numpy(mask).to(codes.device)
    outside = 1.0 - inside
    sums = np.zeros(2)
    for chunk in codes.split(batch):
        base = G.synthesis(chunk, noise_mode="const")
        moved = G.synthesis(chunk + beta * direction.to(chunk), noise_mode="const")
        diff = (moved - base).abs().mean(1)  # [B, H, W]
        sums += [float((diff * inside).sum() / inside.sum().clamp(min=1)), float((diff * outside).sum() / outside.sum())]
    mouth, rest = sums / len(codes)
    return {"mouth": round(float(mouth), 5), "rest": round(float(rest), 5),
            "ratio": round(float(mouth / rest), 4) if rest > 0 else None}


@torch.no_grad()
def encode_all(E, frames: FrameSet, batch: int, device, progress: Optional[ProgressFn] = None,
               indices: Optional[list[int]] = None) -> torch.Tensor:
    """E's W+ codes (float32, on the CPU) of ``indices`` of ``frames`` (default: every frame), ``batch`` at a time."""
    indices = list(range(len(frames))) if indices is None else list(indices)
    out = []
    for start in range(0, len(indices), batch):
        idx = indices[start:start + batch]
        out.append(E(frames.load(idx).to(device)).float().cpu())
        if progress:
            progress("encode", start + len(idx), len(indices))
    return torch.cat(out) if out else torch.zeros(0)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def build_pairs(config: PairsConfig, progress: Optional[ProgressFn] = None) -> dict:
    """Run the whole stage; returns the report (also written to ``OUT/report.json``)."""
    out = Path(config.out)
    if out.exists():
        raise SserdError(f"{out} already exists: choose another output folder (inputs are never overwritten)")
    if config.direction not in ("svm", "regression"):
        raise SserdError(f"--direction {config.direction}: use svm or regression")
    device = select_device(config.device)
    seed_everything(config.seed)
    bundle, G = load_frozen_generator(config.model, None, device, need=("generator", "encoder"))
    size = G.size
    load_size = config.load_size or size
    E = bundle.encoder(device=device).eval()
    frames = FrameSet(config.data, size, load_size, split=None, workers=config.workers)
    emotions_present = frames.emotions
    train_rows = [i for i, r in enumerate(frames.rows) if r.split == "train"]
    if not any(frames.rows[i].emotion == "neutral" for i in train_rows):
        raise SserdError(f"dataset {config.data} has no neutral training frames: build-pairs edits neutral codes "
                         "and fits neutral-vs-emotion boundaries, so it needs them")
    targets = [e for e in emotions_present if e != "neutral"
               and sum(frames.rows[i].emotion == e for i in train_rows) >= 2]
    if not targets:
        raise SserdError(f"dataset {config.data} has no emotion besides neutral with at least 2 training frames: "
                         "nothing to fit a direction for")
    if config.beta is not None and config.beta <= 0:
        raise SserdError("--beta must be positive (or 'auto')")
    layers = config.layers
    layer_mask(G.n_latent, layers)  # validate before any work

    codes = encode_all(E, frames, config.batch_size, device, progress)
    codes_np = codes.numpy()
    by = lambda emo, split: np.array([i for i, r in enumerate(frames.rows) if r.emotion == emo and r.split == split],  # noqa: E731
                                     dtype=np.int64)
    fits: dict[str, DirectionFit] = {}
    speech_names = None
    if config.direction == "regression":
        rows = frames.rows
        speech_names, speech = speech_labels(config.data, [r.path for r in rows])
        emotions = np.array([r.emotion for r in rows])
        intensity = np.array([0.0 if r.emotion == "neutral" else float(r.intensity) for r in rows])
        in_fit = np.isin(emotions, ["neutral", *targets])
        fitted = fit_regression(codes_np[in_fit], emotions[in_fit], intensity[in_fit], targets,
                                speech=None if speech is None else speech[in_fit],
                                train=np.array([r.split == "train" for r in rows])[in_fit], layers=layers)
        fits.update(fitted)
        if progress:
            progress("regression", len(targets), len(targets))
    else:
        for k, emotion in enumerate(targets):
            fits[emotion] = fit_direction(codes_np[by("neutral", "train")], codes_np[by(emotion, "train")],
                                          emotion=emotion, neutral_test=codes_np[by("neutral", "test")],
                                          emotion_test=codes_np[by(emotion, "test")], layers=layers, C=config.svm_c,
                                          holdout=config.holdout, seed=config.seed)
            if progress:
                progress("svm", k + 1, len(targets))
    directions = {e: f.direction for e, f in fits.items()}
    betas = {e: edit_beta(config.beta, f) for e, f in fits.items()}
    mean_codes = {e: codes[by(e, "train")].mean(0) if len(by(e, "train")) else codes[by(e, "test")].mean(0)
                  for e in emotions_present}

    neutral_idx = by("neutral", "train")
    rng = np.random.default_rng(config.seed)
    if config.max_sources and len(neutral_idx) > config.max_sources:
        neutral_idx = np.sort(rng.choice(neutral_idx, size=config.max_sources, replace=False))
    probe = torch.from_numpy(codes_np[neutral_idx[: config.mouth_probe]]).to(device)
    zoom = framing_zoom(config.data, size, load_size)
    mask = mouth_mask(size, zoom)
    mouth = {e: mouth_change(G, probe, d.to(device), betas[e], mask) for e, d in directions.items()}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        rows, latents = _synthesise(G, codes, frames, neutral_idx, directions, betas, tmp, device, progress)
        meta = {"size": size, "source": "build-pairs", "pairs": True, "beta": betas, "layers": layers,
                "direction": config.direction,
                "from_dataset": str(Path(config.data).resolve()), "from_model": str(bundle.path),
                "emotions": ["neutral", *directions],
                # G renders are already in the training framing: loading them with load_size = size adds no zoom
                "framing": {"template": "ffhq5", "zoom": zoom}}
        write_index(tmp, rows, meta)
        save_file({"codes": latents.contiguous()}, str(tmp / "latents.safetensors"),
                  metadata={"rows": "index.csv order", "shape": "[rows, n_latent, style_dim]"})
        report = {
            "svm": {e: {"heldout_accuracy": f.heldout_accuracy, "heldout_from": f.heldout_source,
                        "train_accuracy": f.train_accuracy, "neutral_frames": f.n_neutral, "emotion_frames": f.n_emotion,
                        "separation": f.separation, "beta": betas[e], "speech_share": f.speech_share}
                    for e, f in fits.items()},
            "direction": config.direction, "speech_controls": speech_names,
            "mouth_change": mouth, "beta": betas, "layers": layers, "sources": int(len(neutral_idx)),
            "pairs": len(rows), "frames_encoded": len(frames), "mouth_mask": "ellipse around the canonical mouth corners",
        }
        card = base_card(name=f"{bundle.name}-pairs", generator=G, stage="build-pairs", config=config,
                         run_info={"svm": report["svm"], "mouth_change": mouth}, parent=bundle.card)
        card["metrics"]["svm_heldout_accuracy"] = {e: f.heldout_accuracy for e, f in fits.items()}
        card["edit_betas"] = betas  # the step along each direction the pairs were built with
        save_bundle(tmp / "bundle", card, generator=G, encoder=E, latent_avg=bundle.latent_avg(),
                    discriminator=bundle.discriminator(device) if bundle.has("discriminator") else None,
                    directions=directions, mean_codes=mean_codes)
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (tmp / "config.json").write_text(json.dumps({"stage": "build-pairs", "config": dataclasses.asdict(config)},
                                                    indent=2) + "\n")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        frames.close()
    report["out"] = str(out)
    report["bundle"] = str(out / "bundle")
    return report


@torch.no_grad()
def _synthesise(G, codes, frames, neutral_idx, directions, betas, folder: Path, device, progress):
    """Render I_s = G(w_s) and I_t = G(w_s + beta d_e) for every source; rows + latents in index order."""
    image_dir = folder / "images"
    image_dir.mkdir()
    rows: list[IndexRow] = []
    latents: list[torch.Tensor] = []
    names = ["neutral", *directions]
    for k, i in enumerate(neutral_idx):
        src = frames.rows[int(i)]
        w_s = codes[int(i)].to(device)
        batch = torch.stack([w_s] + [w_s + betas[e] * directions[e].to(device) for e in names[1:]])
        images = to_uint8(G.synthesis(batch, noise_mode="const"))
        stem = f"{_safe_name(src.speaker)}_{_safe_name(src.clip)}_{src.frame:06d}"
        for emotion, image, code in zip(names, images, batch):
            rel = f"images/{stem}_{emotion}.png"
            if not cv2.imwrite(str(folder / rel), image[:, :, ::-1]):
                raise SserdError(f"cannot write {folder / rel}: is the disk full?")
            rows.append(IndexRow(rel, src.speaker, emotion, 1.0 if emotion != "neutral" else 0.0, src.clip, src.frame,
                                 src.split, "synthetic"))
            latents.append(code.cpu())
        if progress:
            progress("synthesise", k + 1, len(neutral_idx))
    return rows, torch.stack(latents)


__all__ = ["build_pairs", "fit_direction", "fit_regression", "speech_labels", "parse_layers", "layer_mask", "mouth_mask", "mouth_change", "DirectionFit",
           "EMOTIONS"]
