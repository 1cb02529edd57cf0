"""Running a training stage from its command: options -> the stage's config -> its coach, in a run folder.

With ``--resume`` the run's saved config is used; only the schedule options given on the command line
(:data:`RESUMABLE`) change it, and the paths it gives (DATA, PAIRS, --model, -o) replace the saved ones, so a
moved run folder resumes. Multi-GPU / multi-process: each rank runs this; only rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SserdError
from .console import make_progress, say, warn
from .numbers import check_training_numbers
from .stage_options import RunOptions

RESUMABLE = ("iterations", "checkpoint_every", "sample_every", "workers", "device", "log_every", "keep_checkpoints",
             "time_limit")
# where a run reads from and writes to: on --resume the command line's paths win over the saved ones
LOCATIONS = ("data", "pairs", "model")


def _moved_locations(saved: dict, explicit: dict, out: Path) -> dict:
    """The paths a resumed run reads, as this command line gives them: the run may have been moved, or the command
    run from another folder, since relative paths were saved."""
    moved = {k: explicit[k] for k in LOCATIONS if explicit.get(k) and k in saved}
    if "pairs" in moved and "model" not in moved and saved.get("pairs") and saved.get("model") == str(Path(saved["pairs"]) / "bundle"):
        moved["model"] = str(Path(moved["pairs"]) / "bundle")  # the model that came with the pairs moves with them
    return {**moved, "run_dir": str(out)}


def run_stage(stage: str, coach_name: str, config_name: str, explicit: dict, out: Path, run_options: RunOptions) -> None:
    """Train ``stage`` with the coach ``coach_name`` (``module.Class`` in sserd_cli.training) on the config
    ``config_name`` made of ``explicit`` (the options given) into the run folder ``out``; ``run_options`` says
    whether to resume and whether to be quiet (their other values are in ``explicit`` already)."""
    resume, quiet = run_options.resume, run_options.quiet
    import dataclasses
    import importlib

    from ..runtime import seed_everything
    from ..training import config as configs
    from ..training import distributed
    from ..training.run import RunDir, fit

    from ..media.atomic import check_output_folder

    check_training_numbers(explicit)
    check_output_folder(out)  # an unwritable place fails here, in one line, before any data is read
    config_cls = getattr(configs, config_name)
    device = explicit.get("device")
    if device is None and resume:  # keep the run's device unless --device says otherwise
        device = RunDir.open(out, stage, distributed.DistContext())[1]["config"].get("device")
    ctx = distributed.setup(device or "auto")
    finished = False
    try:
        if resume:
            run, saved = RunDir.open(out, stage, ctx)
            values = dict(saved["config"])
            ignored = [k for k, v in explicit.items() if k not in RESUMABLE and k not in LOCATIONS and k in values
                       and values[k] != v]
            if ignored and ctx.is_main:
                warn(f"--resume keeps the run's saved {', '.join(ignored)}; only {', '.join(RESUMABLE)} can change")
            values.update({k: v for k, v in explicit.items() if k in RESUMABLE})
            values.update(_moved_locations(values, explicit, out))
            values["time_limit"] = explicit.get("time_limit", 0.0)  # a limit holds for one invocation only
            config = configs.from_dict(config_cls, values)
        else:
            config = config_cls(**explicit, run_dir=str(out))
        configs.validate(config)
        if not resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise SserdError(f"run directory {out} already exists: continue it with --resume or choose another -o")
        ctx.barrier()  # every rank has looked before rank 0 creates anything
        seed_everything(config.seed)
        module_name, cls_name = coach_name.rsplit(".", 1)
        coach = getattr(importlib.import_module(f"sserd_cli.training.{module_name}"), cls_name)(config, ctx)
        perceptual = coach.run_info.get("perceptual")
        if perceptual and perceptual.get("fallback") and ctx.is_main:
            warn(perceptual["description"])
        lonely = (coach.run_info.get("data") or {}).get("single_clip_speakers")  # the sserd stage records them
        if lonely and ctx.is_main:
            warn(f"{len(lonely)} speaker(s) have one training clip ({', '.join(lonely[:3])}{', ...' if len(lonely) > 3 else ''}): "
                 "with no same-speaker reference from another clip their frames are not used as sources, only as "
                 "other speakers' references")
        if not resume:
            run = RunDir.create(out, stage, dataclasses.asdict(config), ctx)
        run.update_config(run_info=coach.run_info, world_size=ctx.world_size, config=dataclasses.asdict(config))
        seed_everything(config.seed + ctx.rank)  # per-rank random streams from here on
        with make_progress(quiet or not ctx.is_main, unit="steps") as progress:
            task = progress.add_task(stage, total=config.iterations, completed=coach.iteration, rate="")

            def on_progress(done: int, total: int, losses: dict) -> None:
                shown = " ".join(f"{k}={v:.3f}" for k, v in losses.items() if k in ("d", "g", "total", "l2", "pix", "cl"))
                progress.update(task, completed=done, rate=shown)

            summary = fit(coach, run, on_progress=on_progress, resume=resume)
        if ctx.is_main and not quiet:
            say(f"{stage}: {summary['iterations']} iterations, {summary['sec_per_step']:.3f} s/step; bundle ",
                (str(summary.get("bundle")), "bold"))
        finished = True
    finally:
        distributed.teardown(ctx, finished)
