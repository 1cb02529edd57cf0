"""The synthetic-world oracle: a small CNN that reads a rendered face crop back into its parameters.

From an aligned crop (any size; resized to ``OracleConfig.size``) it predicts the emotion (7-way),
the expression controls, the speech controls (mouth opening, lip rounding) and the identity
parameters; its penultimate layer is the feature space of the synthetic Fréchet distance.

It is trained on fresh renders (``sserd synth train-oracle``) with held-out speakers for its card,
and augmented with small alignment jitter, blur, noise and colour changes so it reads crops of
edited videos (detector landmarks, codec artefacts) as well as clean renders. Weights ship in
``models/oracle/`` as safetensors beside ``oracle.json`` (config + held-out measurements).
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..emotions import EMOTIONS
from ..errors import SserdError
from ..data.synth.params import Expression, Identity, Speech, field_names, to_vector
from ..data.synth.render import RENDERER_VERSION

WEIGHTS_FILE = "oracle.safetensors"
CARD_FILE = "oracle.json"
CARD_FORMAT = "sserd-oracle"
N_EXPRESSION = len(fields(Expression))
N_SPEECH = len(fields(Speech))
N_IDENTITY = len(fields(Identity))


@dataclass(frozen=True)
class OracleConfig:
    size: int = 64  # input side in pixels
    stem: int = 16  # channels of the stride-2 stem
    widths: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128


class _Stage(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class OracleNet(nn.Module):
    """Stride-2 stem, conv stages (stride 2 each) -> global average pool -> features -> four heads."""

    def __init__(self, config: OracleConfig = OracleConfig()):
        super().__init__()
        self.config = config
        stages = [nn.Sequential(nn.Conv2d(3, config.stem, 3, stride=2, padding=1, bias=False),
                                nn.BatchNorm2d(config.stem), nn.ReLU(inplace=True))]
        cin = config.stem
        for w in config.widths:
            stages.append(_Stage(cin, w))
            cin = w
        self.body = nn.Sequential(*stages)
        self.features = nn.Sequential(nn.Linear(cin, config.feature_dim), nn.ReLU(inplace=True))
        self.emotion = nn.Linear(config.feature_dim, len(EMOTIONS))
        self.expression = nn.Linear(config.feature_dim, N_EXPRESSION)
        self.speech = nn.Linear(config.feature_dim, N_SPEECH)
        self.identity = nn.Linear(config.feature_dim, N_IDENTITY)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: [B, 3, size, size] in [-1, 1]."""
        h = self.body(x).mean(dim=(2, 3))
        f = self.features(h)
        return {"features": f, "emotion": self.emotion(f), "expression": self.expression(f),
                "speech": torch.sigmoid(self.speech(f)), "identity": torch.sigmoid(self.identity(f))}


@dataclass
class OracleReading:
    """What the oracle reads from N crops."""

    emotion_probs: np.ndarray  # [N, 7]
    expression: np.ndarray  # [N, 13]
    speech: np.ndarray  # [N, 2] (mouth_open, lip_round)
    identity: np.ndarray  # [N, 19] identity parameters in [0, 1]
    features: np.ndarray  # [N, feature_dim]

    @property
    def emotion(self) -> np.ndarray:
        return self.emotion_probs.argmax(axis=1)


def crops_to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """uint8 RGB crops [N, S, S, 3] -> float [N, 3, size, size] in [-1, 1] (area-resized)."""
    import cv2

    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise SserdError(f"oracle input must be RGB crops [N, S, S, 3], got shape {crops.shape}")
    if crops.shape[1] != size or crops.shape[2] != size:
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


class Oracle:
    """A loaded oracle: ``Oracle.load()`` for the shipped one, ``.read(crops)`` to use it."""

    def __init__(self, net: OracleNet, card: dict, path: Path | None = None):
        self.net = net.eval()
        self.card = card
        self.path = path

    @property
    def config(self) -> OracleConfig:
        return self.net.config

    @staticmethod
    def default_path() -> Path:
        from ..resources import bundled_models_dir

        return bundled_models_dir() / "oracle"

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Oracle":
        from safetensors.torch import load_file

        path = Path(path) if path is not None else cls.default_path()
        card_path, weights_path = path / CARD_FILE, path / WEIGHTS_FILE
        if not card_path.is_file() or not weights_path.is_file():
            raise SserdError(f"no oracle in {path} (needs {CARD_FILE} and {WEIGHTS_FILE}): "
                             "train one with 'sserd synth train-oracle -o DIR'")
        card = json.loads(card_path.read_text())
        if card.get("format") != CARD_FORMAT:
            raise SserdError(f"{card_path} is not an sserd oracle card")
        cfg = card["config"]
        net = OracleNet(OracleConfig(size=cfg["size"], stem=cfg["stem"], widths=tuple(cfg["widths"]),
                                     feature_dim=cfg["feature_dim"]))
        state = load_file(str(weights_path))
        net.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(net, card, path)

    @torch.no_grad()
    def read(self, crops: np.ndarray, batch: int = 64) -> OracleReading:
        """Read aligned RGB uint8 crops [N, S, S, 3]."""
        outs: dict[str, list] = {k: [] for k in ("emotion", "expression", "speech", "identity", "features")}
        for i in range(0, len(crops), batch):
            res = self.net(crops_to_tensor(crops[i:i + batch], self.config.size))
            for k in outs:
                outs[k].append(res[k])
        cat = {k: torch.cat(v).numpy() for k, v in outs.items()}
        return OracleReading(torch.softmax(torch.from_numpy(cat["emotion"]), 1).numpy(), cat["expression"],
                             cat["speech"], cat["identity"], cat["features"])


# ---------------------------------------------------------------------------------------------- training

@dataclass(frozen=True)
class OracleTrainConfig:
    train_images: int = 8000
    test_images: int = 1400
    speakers: int = 2000  # the last 10% are held out for the card
    render_size: int = 128  # crops are rendered at this size, then area-resized to the oracle's input
    epochs: int = 10
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0
    min_intensity: float = 0.3
    workers: int = 2
    config: OracleConfig = field(default_factory=OracleConfig)


def _render_chunk(args):
    from ..data.synth.dataset import crop_frame_size, random_face, render_crop, split_of
    from ..data.synth.video import make_background
    import cv2

    seed, start, stop, speakers, render_size, size, min_intensity, want_split = args
    xs, labels = [], []
    choices = np.array([s for s in range(speakers) if split_of(s, speakers) == want_split])
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i, 3])
        emotion = EMOTIONS[i % len(EMOTIONS)]
        speaker, intensity, state = random_face(rng, seed, speakers, emotion, min_intensity, choices)
        frame = crop_frame_size(render_size)
        crop, _ = render_crop(state, render_size, make_background(frame, frame, rng))
        xs.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        labels.append((EMOTIONS.index(emotion), to_vector(state.expression), to_vector(state.speech),
                       to_vector(state.identity), speaker))
    return np.stack(xs), labels


def render_oracle_set(n: int, split: str, tcfg: OracleTrainConfig, progress: Callable[[int], None] | None = None):
    """(crops uint8 [n, size, size, 3], label dict) of fresh renders from speakers of ``split``."""
    chunk = 100
    offset = 0 if split == "train" else 10**7  # disjoint sample numbers for the two splits
    tasks = [(tcfg.seed, offset + s, offset + s + min(chunk, n - s), tcfg.speakers, tcfg.render_size,
              tcfg.config.size, tcfg.min_intensity, split) for s in range(0, n, chunk)]
    xs, labels = [], []
    if tcfg.workers > 1:
        with ProcessPoolExecutor(max_workers=tcfg.workers) as pool:
            results = pool.map(_render_chunk, tasks)
            for x, lab in results:
                xs.append(x)
                labels += lab
                if progress:
                    progress(len(x))
    else:
        for t in tasks:
            x, lab = _render_chunk(t)
            xs.append(x)
            labels += lab
            if progress:
                progress(len(x))
    return np.concatenate(xs), {
        "emotion": np.array([l[0] for l in labels]), "expression": np.stack([l[1] for l in labels]).astype(np.float32),
        "speech": np.stack([l[2] for l in labels]).astype(np.float32),
        "identity": np.stack([l[3] for l in labels]).astype(np.float32),
        "speaker": np.array([l[4] for l in labels])}


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Alignment jitter (shift, scale, rotation), blur, colour/brightness and noise, per sample."""
    b = x.shape[0]
    ang = (torch.rand(b, generator=gen) - 0.5) * math.radians(10)
    scale = 1 + (torch.rand(b, generator=gen) - 0.5) * 0.10
    shift = (torch.rand(b, 2, generator=gen) - 0.5) * 0.08
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # blur half of the batch a little (codec softness)
    k = torch.tensor([0.25, 0.5, 0.25])
    k2 = (k[:, None] * k[None, :]).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    sel = (torch.rand(b, 1, 1, 1, generator=gen) < 0.5).float()
    x = sel * blurred + (1 - sel) * x
    gain = 1 + (torch.rand(b, 3, 1, 1, generator=gen) - 0.5) * 0.2
    bias = (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.2
    x = x * gain + bias + torch.randn(x.shape, generator=gen) * 0.02
    return x.clamp(-1, 1)


def _losses(out: dict, y: dict) -> tuple[torch.Tensor, dict]:
    ce = F.cross_entropy(out["emotion"], y["emotion"])
    ex = F.mse_loss(out["expression"], y["expression"])
    sp = F.mse_loss(out["speech"], y["speech"])
    idl = F.mse_loss(out["identity"], y["identity"])
    total = ce + 4.0 * ex + 8.0 * sp + 10.0 * idl
    return total, {"ce": ce.item(), "expr": ex.item(), "speech": sp.item(), "id": idl.item()}


def evaluate(oracle_or_net, crops: np.ndarray, labels: dict) -> dict:
    """Held-out measurements: emotion accuracy (overall, per emotion), MAEs, identity cosines."""
    oracle = oracle_or_net if isinstance(oracle_or_net, Oracle) else Oracle(oracle_or_net, {})
    was_training = oracle.net.training
    oracle.net.eval()
    r = oracle.read(crops)
    if was_training:
        oracle.net.train()
    pred = r.emotion
    acc = float((pred == labels["emotion"]).mean())
    per = {e: float((pred[labels["emotion"] == i] == i).mean()) for i, e in enumerate(EMOTIONS)
           if (labels["emotion"] == i).any()}
    sp_mae = np.abs(r.speech - labels["speech"]).mean(axis=0)
    ex_mae = np.abs(r.expression - labels["expression"]).mean(axis=0)
    id_mae = float(np.abs(r.identity - labels["identity"]).mean())
    # identity cosine of centred predictions: same speaker vs different speakers
    emb = r.identity - 0.5
    emb = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-8)
    sims = emb @ emb.T
    same = labels["speaker"][:, None] == labels["speaker"][None, :]
    off = ~np.eye(len(emb), dtype=bool)
    return {
        "emotion_accuracy": acc, "emotion_accuracy_per_class": per,
        "mouth_open_mae": float(sp_mae[0]), "lip_round_mae": float(sp_mae[1]),
        "expression_mae": float(ex_mae.mean()),
        "expression_mae_per_control": dict(zip(field_names(Expression), map(float, ex_mae))),
        "identity_param_mae": id_mae,
        "identity_cosine_same_speaker": float(sims[same & off].mean()) if (same & off).any() else None,
        "identity_cosine_other_speakers": float(sims[~same].mean()) if (~same).any() else None,
        "n": int(len(crops)),
    }


def train_oracle(out: Path, tcfg: OracleTrainConfig = OracleTrainConfig(), log: Callable[[str], None] = print,
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Render data, train, measure on held-out speakers, save ``oracle.safetensors`` + ``oracle.json``."""
    if tcfg.train_images < tcfg.batch or tcfg.test_images < 7:
        raise SserdError(f"the oracle needs at least {tcfg.batch} training and 7 test images")
    t0 = time.time()

    def bar(stage, total):
        done = [0]

        def step(k):
            done[0] += k
            if progress:
                progress(stage, done[0], total)
        return step

    x_tr, y_tr = render_oracle_set(tcfg.train_images, "train", tcfg, bar("render train", tcfg.train_images))
    x_te, y_te = render_oracle_set(tcfg.test_images, "test", tcfg, bar("render test", tcfg.test_images))
    render_s = time.time() - t0
    log(f"rendered {len(x_tr)} training and {len(x_te)} held-out crops in {render_s:.0f} s")
    net = fit_oracle(x_tr, y_tr, tcfg, log, progress)
    return save_oracle(out, net, tcfg, evaluate(net, x_te, y_te), render_s, time.time() - t0)


def fit_oracle(x_tr: np.ndarray, y_tr: dict, tcfg: OracleTrainConfig, log: Callable[[str], None] = print,
               progress: Callable[[str, int, int], None] | None = None) -> OracleNet:
    """The training loop: AdamW + one-cycle schedule, augmented batches, four losses."""
    torch.manual_seed(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    net = OracleNet(tcfg.config)
    xt = crops_to_tensor(x_tr, tcfg.config.size)
    yt = {"emotion": torch.from_numpy(y_tr["emotion"]).long(), "expression": torch.from_numpy(y_tr["expression"]),
          "speech": torch.from_numpy(y_tr["speech"]), "identity": torch.from_numpy(y_tr["identity"])}
    steps_per_epoch = max(1, len(xt) // tcfg.batch)
    total_steps = steps_per_epoch * tcfg.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=total_steps, pct_start=0.15)
    net.train()
    step = 0
    for epoch in range(tcfg.epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * tcfg.batch:(b + 1) * tcfg.batch]
            out = net(_augment(xt[idx], gen))
            loss, parts = _losses(out, {k: v[idx] for k, v in yt.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress:
                progress("train", step, total_steps)
        log(f"epoch {epoch + 1}/{tcfg.epochs}: loss {loss.item():.3f} " + " ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    return net.eval()


def save_oracle(out: Path, net: OracleNet, tcfg: OracleTrainConfig, metrics: dict, render_s: float,
                total_s: float) -> dict:
    """Write ``oracle.safetensors`` and its card ``oracle.json`` (atomically, file by file)."""
    from safetensors.torch import save_file

    card = {
        "format": CARD_FORMAT, "version": 1,
        "renderer_version": RENDERER_VERSION,
        "config": asdict(tcfg.config),
        "inputs": "aligned RGB face crop (FFHQ-like 5-point alignment, sserd_cli.faces.align), any size",
        "outputs": {"emotion": list(EMOTIONS), "expression": list(field_names(Expression)),
                    "speech": list(field_names(Speech)), "identity": list(field_names(Identity))},
        "training": {**{k: v for k, v in asdict(tcfg).items() if k != "config"},
                     "render_seconds": round(render_s, 1), "total_seconds": round(total_s, 1),
                     "torch": torch.__version__},
        "held_out": {"what": "fresh clean renders of held-out speakers (last 10% of the speaker pool)", **metrics},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp_w = out / f".{WEIGHTS_FILE}.tmp{os.getpid()}"
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(tmp_w))
    tmp_c = out / f".{CARD_FILE}.tmp{os.getpid()}"
    tmp_c.write_text(json.dumps(card, indent=1) + "\n")
    tmp_w.replace(out / WEIGHTS_FILE)
    tmp_c.replace(out / CARD_FILE)
    return card
