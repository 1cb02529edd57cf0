"""``sserd train-features``: the domain feature network F of a dataset (see :mod:`sserd_cli.nets.features`).

F learns to read the training domain: the emotion label of every crop (cross-entropy) and, where the
dataset has per-crop parameters (``labels.jsonl``), those parameters standardised to zero mean and unit
variance (mean squared error). Inputs are jittered (:mod:`.augment`) so that pixel noise and speckle
carry no information for it. ``train-autoencoder --features RUN`` then uses F as a perceptual and
parameter-consistency loss. F is a training tool: it must never be the benchmark's oracle, and is not
(another architecture, another seed, trained on the dataset, not on fresh renders).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.labels import read_param_labels, standardised_param_labels
from ..errors import SserdError
from ..nets.features import FeatureNet, FeatureNetConfig, save_feature_net
from . import distributed as ddp
from .augment import jitter
from .config import FeatureTrainConfig
from .dataset import FrameSet, shard_positions
from .run import Coach


class FeaturesCoach(Coach):
    stage = "features"

    def __init__(self, config: FeatureTrainConfig, ctx: ddp.DistContext):
        super().__init__(config, ctx)
        c = config
        self.data = FrameSet(c.data, c.size, c.resolved_load_size(), split="train", workers=c.workers)
        labels = standardised_param_labels(c.data, [r.path for r in self.data.rows])
        self.param_names: list[str] = []
        self.params = None
        if labels is not None:
            self.param_names, values, self.param_mean, self.param_std = labels
            self.params = torch.from_numpy(values)
        self.net = FeatureNet(FeatureNetConfig(size=c.size, stem=c.stem, widths=tuple(c.widths),
                                               n_params=len(self.param_names))).to(self.device)
        ddp.broadcast_module(self.net, ctx)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=c.lr)
        self.gen = torch.Generator().manual_seed(c.seed + 7919 * (1 + ctx.rank))
        self.run_info["data"] = {"frames": len(self.data), "emotions": self.data.emotions,
                                 "params": len(self.param_names)}

    def modules(self):
        return {"features": self.net}

    def optimizers(self):
        return {"features": self.optimizer}

    def generators(self):
        return {"augment": self.gen}

    def step(self, iteration: int) -> dict[str, float]:
        c = self.config
        for group in self.optimizer.param_groups:  # cosine decay: a short schedule still ends converged
            group["lr"] = c.lr * 0.5 * (1 + np.cos(np.pi * iteration / c.iterations))
        idx = shard_positions(len(self.data), c.seed, iteration, c.batch_size, self.ctx.rank, self.ctx.world_size)
        x = jitter(self.data.load(idx), self.gen, c.noise).to(self.device)
        out = self.net(x)
        ce = F.cross_entropy(out["emotion"], self.data.labels(idx).to(self.device))
        total, losses = ce, {"ce": ce.detach().item()}
        if self.params is not None:
            mse = F.mse_loss(out["params"], self.params[idx].to(self.device))
            total = total + c.param_weight * mse
            losses["params"] = mse.detach().item()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        ddp.average_gradients(self.net.parameters(), self.ctx)
        self.optimizer.step()
        losses["total"] = total.detach().item()
        return losses

    @torch.no_grad()
    def samples(self):
        x = jitter(self.data.load(list(range(min(16, len(self.data))))), torch.Generator().manual_seed(0), self.config.noise)
        return x, 8

    @torch.no_grad()
    def held_out(self) -> dict:
        """Emotion accuracy and parameter MAE (in standard deviations) on the test split, when there is one."""
        c = self.config
        try:
            test = FrameSet(c.data, c.size, c.resolved_load_size(), split="test", workers=c.workers)
        except SserdError:  # a dataset without a test split: nothing to measure
            return {}
        n = min(len(test), 2000)
        self.net.eval()
        correct, errors = 0, []
        test_params = None
        if self.params is not None:
            names, values = read_param_labels(c.data, [r.path for r in test.rows[:n]])
            cols = [names.index(p) for p in self.param_names]
            test_params = (values[:, cols] - self.param_mean) / self.param_std
        for s in range(0, n, 128):
            idx = list(range(s, min(n, s + 128)))
            out = self.net(test.load(idx).to(self.device))
            correct += int((out["emotion"].argmax(1).cpu() == test.labels(idx)).sum())
            if test_params is not None:
                errors.append(np.abs(out["params"].cpu().numpy() - test_params[s:s + len(idx)]).mean(0))
        self.net.train()
        result = {"test_frames": n, "emotion_accuracy": correct / n}
        if errors:
            result["param_mae_std"] = float(np.mean(errors))
        return result

    def export(self, path: Path) -> None:
        card = {"name": Path(self.config.run_dir).name or "features", "data": str(self.config.data),
                "size": self.config.size, "emotions": self.data.emotions, "param_names": self.param_names,
                "framing": self.data.meta.get("framing", {}), "iterations": self.iteration,
                "metrics": self.held_out(), "noise": self.config.noise}
        if self.params is not None:
            card["param_mean"] = [float(v) for v in self.param_mean]
            card["param_std"] = [float(v) for v in self.param_std]
        self.run_info["held_out"] = card["metrics"]
        save_feature_net(path, self.net, card)
