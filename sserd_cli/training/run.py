"""The run directory and the training loop every stage shares.

A run directory holds::

    config.json          the resolved stage config (+ what the run found: perceptual fallback, world size)
    train.log            human-readable log, one line per event
    losses.jsonl         one JSON object per logged iteration (for curves)
    checkpoints/iter_XXXXXXXX.safetensors   models, optimisers, EMA, code cache, RNG of every rank
    samples/iter_XXXXXXXX.png               sample grids
    bundle/              the exported model bundle (at the end)
    summary.json         final numbers (iterations, step time, rank checksums)

Checkpoints are one safetensors file each: tensors under ``model/<name>/...``,
``optim/<name>/...``, ``extra/...`` and ``rng/<rank>/...``; the JSON tree that rebuilds the
nested optimiser and cache states sits in the file's metadata. No pickles anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import SserdError
from . import distributed as ddp
from .dataset import to_uint8
from .state import capture_rng, flatten, restore_rng, unflatten

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
SAMPLE_DIR = "samples"
BUNDLE_DIR = "bundle"

ProgressFn = Callable[[int, int, dict], None]


class RunDir:
    """A training run's directory. Only rank 0 writes; other ranks get a read-only view."""

    def __init__(self, path: Path, ctx: ddp.DistContext):
        self.path = Path(path)
        self.ctx = ctx

    # -- creation ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, stage: str, config: dict, ctx: ddp.DistContext) -> "RunDir":
        path = Path(path)
        # only rank 0 looks: the others may look after rank 0 has made it (callers check all ranks earlier)
        if ctx.is_main and path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise SserdError(f"run directory {path} already exists: continue it with --resume or choose another -o")
        run = cls(path, ctx)
        if ctx.is_main:
            path.mkdir(parents=True, exist_ok=True)
            (path / CHECKPOINT_DIR).mkdir(exist_ok=True)
            (path / SAMPLE_DIR).mkdir(exist_ok=True)
            run.write_config(stage, config)
        ctx.barrier()
        return run

    @classmethod
    def open(cls, path: str | Path, stage: str, ctx: ddp.DistContext) -> tuple["RunDir", dict]:
        """An existing run (for --resume): returns it with its saved config."""
        path = Path(path)
        cfg_path = path / CONFIG_FILE
        if not cfg_path.is_file():
            raise SserdError(f"cannot resume: {path} is not a run directory (no {CONFIG_FILE})")
        saved = json.loads(cfg_path.read_text())
        if saved.get("stage") != stage:
            raise SserdError(f"cannot resume: {path} is a '{saved.get('stage')}' run, not '{stage}'")
        return cls(path, ctx), saved

    def write_config(self, stage: str, config: dict, extra: Optional[dict] = None) -> None:
        if not self.ctx.is_main:
            return
        body = {"stage": stage, "config": config, **(extra or {})}
        _atomic_write_text(self.path / CONFIG_FILE, json.dumps(body, indent=2, sort_keys=True) + "\n")

    def update_config(self, **extra: Any) -> None:
        if not self.ctx.is_main:
            return
        body = json.loads((self.path / CONFIG_FILE).read_text())
        body.update(extra)
        _atomic_write_text(self.path / CONFIG_FILE, json.dumps(body, indent=2, sort_keys=True) + "\n")

    # -- logs ----------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.ctx.is_main:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with (self.path / "train.log").open("a") as handle:
                handle.write(f"{stamp} {message}\n")

    def log_losses(self, iteration: int, losses: dict, seconds_per_step: float) -> None:
        if not self.ctx.is_main:
            return
        record = {"iteration": iteration, "sec_per_step": round(seconds_per_step, 5), **{k: float(v) for k, v in losses.items()}}
        with (self.path / "losses.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.log(f"iter {iteration} " + " ".join(f"{k}={v:.4f}" for k, v in losses.items()))

    def read_losses(self) -> list[dict]:
        path = self.path / "losses.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    # -- samples -------------------------------------------------------------------------------
    def write_samples(self, iteration: int, images: torch.Tensor, ncol: int) -> Optional[Path]:
        if not self.ctx.is_main:
            return None
        target = self.path / SAMPLE_DIR / f"iter_{iteration:08d}.png"
        grid = make_grid(to_uint8(images), ncol)
        tmp = target.with_name(target.stem + ".tmp.png")
        try:
            if not cv2.imwrite(str(tmp), grid[:, :, ::-1]):
                raise SserdError(f"cannot write {target}: is the disk full?")
            os.replace(tmp, target)
        except BaseException:  # Ctrl-C, SIGTERM or a full disk between the write and the rename: no stray file
            tmp.unlink(missing_ok=True)
            raise
        return target

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_path(self, iteration: int) -> Path:
        return self.path / CHECKPOINT_DIR / f"iter_{iteration:08d}.safetensors"

    def checkpoints(self) -> list[Path]:
        folder = self.path / CHECKPOINT_DIR
        return sorted(folder.glob("iter_*.safetensors")) if folder.is_dir() else []

    def latest_checkpoint(self) -> Optional[Path]:
        found = self.checkpoints()
        return found[-1] if found else None

    def write_checkpoint(self, iteration: int, tensors: dict, tree: dict, keep: int) -> Optional[Path]:
        if not self.ctx.is_main:
            return None
        target = self.checkpoint_path(iteration)
        tmp = target.with_suffix(".tmp")
        try:
            save_file(tensors, str(tmp), metadata={"sserd": json.dumps(tree)})
            os.replace(tmp, target)
        except BaseException:  # as above: an interrupted checkpoint leaves the earlier ones and nothing else
            tmp.unlink(missing_ok=True)
            raise
        for old in self.checkpoints()[:-keep] if keep > 0 else []:
            old.unlink()
        return target


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            tree = json.loads((handle.metadata() or {})["sserd"])
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (KeyError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise SserdError(f"checkpoint {path} cannot be read ({exc}): resume from an earlier one by deleting it") from None
    return tensors, tree


def make_grid(images: np.ndarray, ncol: int, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, 3] -> one uint8 image with ``ncol`` columns and a black border."""
    n, h, w, _ = images.shape
    ncol = max(1, min(ncol, n))
    nrow = (n + ncol - 1) // ncol
    grid = np.zeros((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Coach:
    """One training stage. Subclasses build their networks in ``__init__`` and implement
    :meth:`step`, :meth:`samples`, :meth:`export`; the loop, checkpoints and resume live here."""

    stage = "base"

    def __init__(self, config: Any, ctx: ddp.DistContext):
        self.config = config
        self.ctx = ctx
        self.device = ctx.device
        self.iteration = 0
        self.run_info: dict = {}  # facts recorded into config.json and the bundle card

    # -- what a checkpoint holds
    def modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def generators(self) -> dict[str, torch.Generator]:
        return {}

    # -- what a stage does
    def step(self, iteration: int) -> dict[str, float]:
        raise NotImplementedError

    def samples(self) -> tuple[torch.Tensor, int]:
        """Images [N, 3, H, W] in [-1, 1] and the number of columns of the grid."""
        raise NotImplementedError

    def export(self, path: Path) -> None:
        raise NotImplementedError

    def autocast(self):
        """bfloat16 autocast on CUDA when enabled (no loss scaling needed); nothing on CPU."""
        if self.device.type == "cuda" and getattr(self.config, "amp", False):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    # -- checkpoints
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.modules().items():
            for key, value in module.state_dict().items():
                tensors[f"model/{name}/{key}"] = value.detach().cpu().clone().contiguous()
        tree: dict = {"iteration": self.iteration, "stage": self.stage, "world_size": self.ctx.world_size,
                      "modules": sorted(self.modules())}
        tree["optim"] = {name: flatten(opt.state_dict(), f"optim/{name}", tensors) for name, opt in self.optimizers().items()}
        tree["extra"] = flatten(self.extra_state(), "extra", tensors)
        rng = capture_rng(self.device, self.generators())
        for key in sorted(rng):
            for rank, value in enumerate(ddp.all_gather_tensor(rng[key], self.ctx)):
                tensors[f"rng/{rank}/{key}"] = value.cpu().clone()
        return tensors, tree

    def load_state(self, tensors: dict[str, torch.Tensor], tree: dict) -> None:
        if tree.get("stage") != self.stage:
            raise SserdError(f"checkpoint is from stage '{tree.get('stage')}', not '{self.stage}'")
        for name, module in self.modules().items():
            prefix = f"model/{name}/"
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise SserdError(f"checkpoint does not match the network '{name}' of this config: "
                                 f"{str(exc).splitlines()[0]}") from None
        for name, opt in self.optimizers().items():
            opt.load_state_dict(unflatten(tree["optim"][name], tensors))
        self.load_extra_state(unflatten(tree["extra"], tensors))
        self.iteration = int(tree["iteration"])
        rank_prefix = f"rng/{self.ctx.rank}/"
        rng = {k[len(rank_prefix):]: v for k, v in tensors.items() if k.startswith(rank_prefix)}
        if not rng or tree.get("world_size", 1) != self.ctx.world_size:
            # Another world size: data shards differ anyway; reseed deterministically instead.
            torch.manual_seed(self.config.seed + 1_000_003 * self.iteration + self.ctx.rank)
        else:
            restore_rng(rng, self.device, self.generators())


def fit(coach: Coach, run: RunDir, on_progress: Optional[ProgressFn] = None, resume: bool = False) -> dict:
    """Train ``coach`` until ``config.iterations``, checkpointing, sampling and logging on the way;
    export the bundle at the end. Returns the summary written to ``summary.json``."""
    config, ctx = coach.config, coach.ctx
    if resume:
        latest = run.latest_checkpoint()
        if latest is None:
            raise SserdError(f"cannot resume: {run.path} has no checkpoint yet; start it again without --resume")
        coach.load_state(*read_checkpoint(latest))
        run.log(f"resumed from {latest.name} at iteration {coach.iteration}")
    else:
        run.log(f"start {coach.stage}: {config.iterations} iterations, batch {config.batch_size} x {ctx.world_size} ranks, "
                f"device {coach.device}")
    total = config.iterations
    if coach.iteration >= total:
        raise SserdError(f"run {run.path} already reached iteration {coach.iteration}: raise --iterations to continue")
    step_times: list[float] = []
    losses: dict = {}
    window: dict[str, list[float]] = {}  # losses since the last log line: the log shows their mean
    window_steps = 0
    logged: dict = {}
    # --time-limit: stop at a log step once the wall time is spent (every rank stops at the same step), then
    # checkpoint and export as at the end; --resume continues towards --iterations
    deadline = time.monotonic() + 60.0 * config.time_limit if config.time_limit > 0 else None
    stopped_early = False
    tick = time.perf_counter()
    for it in range(coach.iteration, total):
        losses = coach.step(it)
        coach.iteration = it + 1
        now = time.perf_counter()
        step_times.append(now - tick)
        tick = now
        done = coach.iteration
        for key, value in losses.items():
            window.setdefault(key, []).append(float(value))
        window_steps += 1
        if deadline is not None and done % config.log_every == 0 and done < total:
            stopped_early = ddp.mean_scalars({"late": float(time.monotonic() >= deadline)}, ctx)["late"] > 0
        last = done == total or stopped_early
        if done % config.log_every == 0 or last:
            logged = ddp.mean_scalars({k: float(np.mean(v)) for k, v in sorted(window.items())}, ctx)
            run.log_losses(done, logged, float(np.mean(step_times[-window_steps:])))
            window, window_steps = {}, 0
        if on_progress is not None and ctx.is_main:
            on_progress(done, total, logged or losses)
        if done % config.sample_every == 0 or last:
            if ctx.is_main:
                images, ncol = coach.samples()
                run.write_samples(done, images, ncol)
        if done % config.checkpoint_every == 0 or last:
            tensors, tree = coach.state()
            run.write_checkpoint(done, tensors, tree, config.keep_checkpoints)
            ctx.barrier()
        if stopped_early:
            run.log(f"time limit of {config.time_limit:g} min reached at iteration {done} of {total}: "
                    "checkpointed; --resume continues")
            break
        tick = time.perf_counter()  # checkpoint and sample time are not step time
    checksum = ddp.module_checksum(coach.modules().values())
    checksums = ddp.checksums_of_all_ranks(checksum, ctx)
    if len(set(checksums)) != 1:
        raise SserdError(f"ranks diverged: weight checksums {checksums}; please report this as a bug")
    timed = step_times[1:] or step_times
    summary = {"stage": coach.stage, "iterations": coach.iteration, "world_size": ctx.world_size,
               "device": str(coach.device), "sec_per_step": float(np.mean(timed)) if timed else 0.0,
               "rank_checksums": checksums, "final_losses": logged,  # mean over the last --log-every steps
               **coach.run_info}
    if stopped_early:
        summary["stopped"] = {"reason": "time limit", "time_limit_min": config.time_limit, "target_iterations": total}
    if ctx.is_main:
        bundle_path = run.path / BUNDLE_DIR
        if bundle_path.exists():  # an earlier export of this same run (before --resume): replace it
            shutil.rmtree(bundle_path)
        coach.export(bundle_path)
        summary["bundle"] = str(bundle_path)
        _atomic_write_text(run.path / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
        run.log(f"done: {coach.iteration} iterations, {summary['sec_per_step']:.3f} s/step, bundle {bundle_path}")
    ctx.barrier()
    return summary
