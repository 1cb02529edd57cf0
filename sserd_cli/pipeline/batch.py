"""One source or many: which output each source gets, and a run that reports failures and carries on."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SserdError
from ..media.atomic import can_write_in
from ..media.probe import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_image_path
from .edit import EditOptions, EditReport, edit_path
from .models import EditModel


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


def plan_outputs(sources: list[Path], output: str | Path) -> list[Job]:
    """Pair each source with its output. Several sources (or a folder source) need ``output`` to be a
    folder (created if missing): each result keeps its source's file name there. One source goes into a
    folder when ``output`` is one, or is a name ending with a slash (``-o edited/``)."""
    folder_named = isinstance(output, str) and output.endswith(("/", os.sep))
    sources = [Path(s) for s in sources]
    expanded: list[Path] = []
    batch = len(sources) > 1
    for source in sources:
        if source.is_dir():
            batch = True
            found = sorted(p for p in source.iterdir()
                           if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                raise SserdError(f"{source}: folder holds no video or image files")
            expanded.extend(found)
        else:
            expanded.append(source)
    output = Path(output)
    if not batch:
        # a lone missing source is the first thing to say (before any model is looked for or loaded)
        if not expanded[0].exists():
            raise SserdError(f"{expanded[0]}: no such file")
        if output.is_dir():
            return [Job(expanded[0], output / expanded[0].name)]
        if folder_named:
            if output.exists():
                raise SserdError(f"{output}: -o ends with / but this is a file, not a folder")
            _make_folder(output)
            return [Job(expanded[0], output / expanded[0].name)]
        return [Job(expanded[0], output)]
    if output.exists() and not output.is_dir():
        raise SserdError(f"{output}: several sources need a folder as output, and this is a file")
    if output.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES and not output.exists():
        raise SserdError(f"{output}: several sources need a folder as output, not a {output.suffix} file name")
    _make_folder(output)
    jobs, taken = [], set()
    for source in expanded:
        target = output / source.name
        if target in taken:
            target = output / f"{source.stem}-{len(taken)}{source.suffix}"
        taken.add(target)
        jobs.append(Job(source, target))
    return jobs


def _make_folder(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SserdError(f"{output}: cannot create the output folder ({exc.strerror})") from None
    if not can_write_in(output):
        raise SserdError(f"{output}: output folder is not writable")


def run_edits(jobs: list[Job], model: EditModel, options: EditOptions, *, overwrite: bool = False, progress=None,
              note: Callable[[str], None] | None = None,
              error: Callable[[str], None] | None = None) -> tuple[list[EditReport], int]:
    """Edit every job. With one job an error is raised; with several, each failure is reported through
    ``error`` and the rest go on. Returns the reports and the number of failures. Ctrl-C stops all."""
    reports, failures = [], 0
    for job in jobs:
        try:
            reports.append(_run_one(job, model, options, overwrite, progress, note))
        except SserdError as exc:
            if len(jobs) == 1:
                raise
            failures += 1
            if error is not None:
                error(str(exc))
    return reports, failures


def _run_one(job: Job, model, options, overwrite, progress, note) -> EditReport:
    advance = None
    if progress is not None:
        total = None if is_image_path(job.source) else _frame_estimate(job.source, options)
        task = progress.add_task(job.source.name, total=total, rate="")
        state = {"done": 0, "t0": time.perf_counter()}

        def advance(n: int) -> None:
            now = time.perf_counter()
            state["done"] += n
            elapsed = now - state["t0"]
            rate = f"{state['done'] / elapsed:.1f} fps" if elapsed > 0 else ""
            progress.update(task, advance=n, rate=rate)

    try:
        report = edit_path(job.source, job.output, model, options, overwrite=overwrite, progress=advance, note=note)
    except BaseException:
        if progress is not None:
            progress.remove_task(task)  # a failed job's empty bar would stand above its error line
        raise
    if progress is not None:
        progress.update(task, total=max(report.frames, 1), completed=max(report.frames, 1))
    return report


def _frame_estimate(source: Path, options: EditOptions) -> int | None:
    """Frames to expect (for the ETA), from the header; None when unknown or unreadable (the edit says why)."""
    from ..media.probe import probe_video

    try:
        info = probe_video(source)
    except SserdError:
        return None
    frames = info.frames or (int(info.duration * float(info.rate)) if info.duration and info.rate else 0)
    if not frames:
        return None
    if info.rate and (options.start is not None or options.end is not None):
        start = options.start or 0.0
        end = min(options.end, info.duration) if options.end is not None and info.duration else (options.end or info.duration)
        return max(1, int(round((end - start) * float(info.rate)))) if end else None
    return frames
